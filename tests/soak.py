"""Load and soak test of Delete Image on the real stack (run on demand).

    python -m tests.soak [--deletes 2000] [--clients 8] [--workers 4]
                         [--server uwsgi|gunicorn] [--time-limit 900]
                         [--stack DIR/stack.json]

Without ``--stack`` it starts its own stack in a temporary directory (with
``--workers`` compute-api workers under ``--server``, uWSGI unless told:
the server is always chosen here, and named in the report, so that a
figure says which server it is of) and stops it at the end. It creates the
images first (not timed), in two projects, then ``--clients`` threads delete
them through compute-api; about one image in ten is deleted twice by
different clients at about the same time, and Glance is restarted once in
the middle of the run. Everything is on 127.0.0.1 and bounded by the count
and by ``--time-limit``.

The accounting at the end fails the run (exit 1) unless:

* every image that got a 204 is gone from Glance;
* every image that got only errors still exists, unless another request
  for it got a 204 or a 404 (a double delete, or a retry after a lost
  answer during the restart);
* no status is outside {204, 404, 503};
* every 503 was in flight at some moment of the Glance restart window,
  which starts when the restart begins;
* RSS of the compute-api workers grew less than 10% over the run.
"""

import argparse
import collections
import concurrent.futures
import os
import pathlib
import queue
import random
import statistics
import sys
import tempfile
import threading
import time

import requests

from tests import stack

ALLOWED = {204, 404, 503}
# The WSGI server the soak runs compute-api under unless told: chosen here,
# not left to the stack's default, so that the figures of
# doc/source/reliability.rst stay the figures of the server they name.
SERVER = 'uwsgi'
# [glance] defaults: timeout 10 s, 2 connect retries, 1 status retry.
OWNERS = ('demo-member', 'alt-member')


def rss_kib(pid):
    for line in pathlib.Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1])
    return 0


def total_rss(master_pid):
    return sum(rss_kib(pid) for pid in stack.children(master_pid))


def create_images(state, count):
    """``count`` images alternating between the two owners, in parallel."""
    sessions = {owner: stack.get_session(state, owner) for owner in OWNERS}

    def create(i):
        owner = OWNERS[i % 2]
        return owner, stack.create_image(state, sessions[owner],
                                         name=f'soak-{i}')
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        return list(pool.map(create, range(count)))


def plan(images, double_ratio=0.1):
    """The work queue: every image once, one in ten twice (adjacent)."""
    work = []
    for owner, image_id in images:
        work.append((owner, image_id))
        if random.random() < double_ratio:
            work.append((owner, image_id))
    return work


class Run:

    def __init__(self, state, work, clients, time_limit):
        self.state = state
        self.url = state['compute_endpoint']
        self.work = queue.Queue()
        for item in work:
            self.work.put(item)
        self.total = len(work)
        self.clients = clients
        self.deadline = time.monotonic() + time_limit
        self.results = []   # (owner, image_id, status, start, end)
        self.lock = threading.Lock()
        self.tokens = {owner: stack.get_session(state, owner).get_token()
                       for owner in OWNERS}

    def client(self):
        http = requests.Session()
        while time.monotonic() < self.deadline:
            try:
                owner, image_id = self.work.get_nowait()
            except queue.Empty:
                return
            start = time.monotonic()
            try:
                resp = http.delete(f'{self.url}/images/{image_id}',
                                   headers={'X-Auth-Token':
                                            self.tokens[owner]},
                                   timeout=120)
                status = resp.status_code
            except requests.RequestException:
                status = 'connection-error'
            with self.lock:
                self.results.append((owner, image_id, status, start,
                                     time.monotonic()))

    def restart_glance_midway(self, window):
        while len(self.results) < self.total // 2:
            if time.monotonic() > self.deadline:
                return
            time.sleep(0.05)
        began = time.monotonic()
        window.extend((began, stack.restart_glance(self.state)[1]))

    def go(self):
        window = []
        took = self.with_clients(self.restart_glance_midway, window)
        return took, window

    def with_clients(self, fault, record):
        """Run ``fault(record)`` in a thread beside the clients; return the
        clients' wall time, once both are done."""
        injector = threading.Thread(target=fault, args=(record,))
        injector.start()
        threads = [threading.Thread(target=self.client)
                   for _ in range(self.clients)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        injector.join()
        return time.monotonic() - started


def account(state, images, results, window):
    """Check the invariants; return (problems, figures)."""
    admin = stack.get_session(state, 'admin')
    by_image = collections.defaultdict(list)
    for _owner, image_id, status, start, end in results:
        by_image[image_id].append((status, start, end))
    problems = []
    for _, image_id in images:
        calls = by_image.get(image_id, [])
        statuses = [c[0] for c in calls]
        present = stack.glance_image(state, admin, image_id) is not None
        if 204 in statuses and present:
            problems.append(f'{image_id}: 204 but still in Glance')
        if calls and not ({204, 404} & set(statuses)) and not present:
            problems.append(f'{image_id}: only errors {statuses} but gone')
        for status, start, end in calls:
            if status not in ALLOWED:
                problems.append(f'{image_id}: status {status}')
            if status == 503 and not (
                    window and start <= window[1] and end >= window[0]):
                problems.append(f'{image_id}: 503 outside the restart '
                                'window')
    return problems


def print_statuses_and_latency(results):
    """The 'by status' and 'latency ms' lines of a soak's results."""
    durations = sorted((end - start) * 1000
                       for *_, start, end in results)
    counts = collections.Counter(r[2] for r in results)
    q = statistics.quantiles(durations, n=100) if len(durations) > 1 else [0]
    print('by status: ' + ', '.join(f'{k}: {v}' for k, v in
                                    sorted(counts.items(), key=str)))
    print(f'latency ms: median {statistics.median(durations):.1f}, '
          f'p90 {q[89]:.1f}, p99 {q[98]:.1f}, max {durations[-1]:.1f}')


def report(args, results, elapsed, window, rss, problems):
    print(f'requests: {len(results)} from {args.clients} clients, '
          f'{args.workers} compute-api workers under {args.server}, in '
          f'{elapsed:.1f} s ({len(results) / elapsed:.1f}/s)')
    print_statuses_and_latency(results)
    if window:
        print(f'glance restart: down for {window[1] - window[0]:.1f} s')
    print(f'compute-api worker RSS: {rss[0] / 1024:.1f} MiB -> '
          f'{rss[1] / 1024:.1f} MiB ({(rss[1] / rss[0] - 1) * 100:+.1f}%)')
    for problem in problems[:50]:
        print('PROBLEM:', problem)
    print('soak: ' + ('passed' if not problems else
                      f'{len(problems)} problems'))


def soak(args, state):
    images = create_images(state, args.deletes)
    work = plan(images)
    master = state['pids']['compute-api']
    run = Run(state, work[:50], args.clients, args.time_limit)
    run.go()   # warm-up: workers import, connect and cache tokens
    warm_rss = total_rss(master)
    run = Run(state, work[50:], args.clients, args.time_limit)
    elapsed, window = run.go()
    end_rss = total_rss(master)
    measured = list(dict.fromkeys(work[50:]))   # each image once, in order
    problems = account(state, measured, run.results, window)
    if end_rss > warm_rss * 1.10:
        problems.append('worker RSS grew by 10% or more')
    report(args, run.results, elapsed, window, (warm_rss, end_rss),
           problems)
    return 1 if problems else 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m tests.soak')
    parser.add_argument('--deletes', type=int, default=2000)
    parser.add_argument('--clients', type=int, default=8)
    parser.add_argument('--workers', type=int, default=4)
    parser.add_argument('--server', choices=stack.SERVERS, default=SERVER,
                        help='the WSGI server compute-api runs under '
                             '(default: %(default)s)')
    parser.add_argument('--time-limit', type=float, default=900)
    parser.add_argument('--stack', help='use this running stack.json')
    args = parser.parse_args(argv)
    if args.stack:
        state = stack.load_state(args.stack)
        args.server = state.get('compute_server', stack.DEFAULT_SERVER)
        return soak(args, state)
    with tempfile.TemporaryDirectory(prefix='compute-api-soak.') as tmp:
        the_stack = stack.Stack(os.path.join(tmp, 'stack'),
                                compute_workers=args.workers,
                                server=args.server)
        try:
            return soak(args, the_stack.up())
        finally:
            the_stack.down()


if __name__ == '__main__':
    sys.exit(main())
