"""Load and soak test of the scaled stack, with faults (run on demand).

    python -m tests.soak_scaled [--deletes 1500] [--clients 8]
                                [--workers 2] [--server uwsgi|gunicorn]
                                [--time-limit 900]
    python -m tests.soak_scaled --figure [--per-run 300] [--clients 16]

It starts its own scaled stack in a temporary directory (Keystone and
Glance on PostgreSQL with two workers each, two compute-api instances with
``--workers`` workers each under ``--server``, uWSGI unless told, behind
HAProxy over TLS) and stops it at the end. Like ``tests.soak`` it creates
the images first, in two projects, one in ten to be deleted twice, then
``--clients`` threads delete them through HAProxy. During the run, at a
quarter, a half and three quarters of the work: one compute-api instance
is killed with SIGKILL and started again, memcached is restarted (empty),
and Glance is restarted.

The accounting fails the run (exit 1) unless:

* every image that got a 204 is gone from Glance;
* every image that got only errors gets a 204 or a 404 when the client
  retries the delete afterwards, and is then gone;
* no status is outside {204, 404, 502, 503}, but for connections closed
  without an answer (what HAProxy does instead of a 502 on a kept-alive
  connection that already served a request);
* every 502, 503 or closed connection was in flight at some moment of a
  fault window. A window starts when the fault begins and ends when
  deletes are served again through HAProxy: every instance up in HAProxy's
  health checks and a delete answered by Glance.

The report gives the figures, the fault windows and how many deletes
HAProxy sent to each instance (from its log).

``--figure`` measures deletes per second at ``--clients`` concurrency
instead: straight to Glance, through HAProxy to one instance (the other
drained), and to two, on the same stack.
"""

import argparse
import collections
import concurrent.futures
import os
import pathlib
import re
import signal
import sys
import tempfile
import threading
import time
import uuid

import requests

from tests import soak
from tests import stack
from tests.stack import compute
from tests.stack import haproxy
from tests.stack import memcached

# An instance killed while serving a request: HAProxy answers 502, or, on
# a kept-alive client connection that served a request before, closes it
# without an answer (as after a keep-alive race, so that the client
# retries); the client sees a connection error.
NO_ANSWER = 'connection-error'
ALLOWED = {204, 404, 502, 503, NO_ANSWER}
KILLED = 'compute-api-1'
SERVED_AGAIN_TIMEOUT = 60


class Run(soak.Run):
    """``tests.soak.Run`` with three faults instead of one."""

    def at(self, fraction):
        """Wait until ``fraction`` of the work is answered; False if the
        time limit passed first."""
        while len(self.results) < self.total * fraction:
            if time.monotonic() > self.deadline:
                return False
            time.sleep(0.05)
        return True

    def kill_instance(self):
        os.killpg(self.state['pids'][KILLED], signal.SIGKILL)
        time.sleep(1.0)
        compute.restart_instance(self.state, KILLED)

    def served_again(self):
        """When deletes are served again on the path the clients use: HAProxy
        has every instance up, and a delete through it reaches Glance (404
        for an unknown image). A fault ends there, not when the service
        that failed answers again: HAProxy marks instances whose workers
        were all waiting on Glance down, and takes them back only after
        its health checks pass."""
        url = f'{self.state["compute_endpoint"]}/images/{uuid.uuid4()}'
        token = stack.get_session(self.state, soak.OWNERS[0]).get_token()
        deadline = time.monotonic() + SERVED_AGAIN_TIMEOUT
        while time.monotonic() < deadline:
            haproxy.wait_status(self.state, 'UP',
                                timeout=SERVED_AGAIN_TIMEOUT)
            try:
                status = requests.delete(url, timeout=60, headers={
                    'X-Auth-Token': token}).status_code
            except requests.ConnectionError:
                status = None
            if status == 404:
                return time.monotonic()
            time.sleep(0.1)
        raise stack.StackError('deletes are not served again within '
                               f'{SERVED_AGAIN_TIMEOUT} s of a fault')

    def inject(self, windows):
        faults = (
            (0.25, f'{KILLED} killed (SIGKILL)', self.kill_instance),
            (0.5, 'memcached restarted',
             lambda: memcached.restart(self.state)),
            (0.75, 'Glance restarted',
             lambda: stack.restart_glance(self.state)),
        )
        for fraction, what, fault in faults:
            if not self.at(fraction):
                return
            began = time.monotonic()
            fault()
            windows[what] = began, self.served_again()

    def go(self):
        windows = {}
        return self.with_clients(self.inject, windows), windows


def in_a_window(start, end, windows):
    """Whether a request was in flight at some moment of a fault window."""
    return any(start <= b and end >= a for a, b in windows.values())


def account(state, images, results, windows):
    """Check the invariants; returns (problems, retried)."""
    admin = stack.get_session(state, 'admin')
    tokens = {owner: stack.get_session(state, owner).get_token()
              for owner in soak.OWNERS}
    by_image = collections.defaultdict(list)
    for _owner, image_id, status, start, end in results:
        by_image[image_id].append((status, start, end))
    problems = []
    retried = collections.Counter()
    for owner, image_id in images:
        calls = by_image.get(image_id, [])
        statuses = {c[0] for c in calls}
        for status, start, end in calls:
            if status not in ALLOWED:
                problems.append(f'{image_id}: status {status}')
            elif status not in (204, 404) and not in_a_window(
                    start, end, windows):
                problems.append(f'{image_id}: {status} outside the fault '
                                'windows')
        if 204 in statuses:
            if stack.glance_image(state, admin, image_id) is not None:
                problems.append(f'{image_id}: 204 but still in Glance')
        elif calls and 404 not in statuses:
            # Only errors: the client retries.
            retry = requests.delete(
                f'{state["compute_endpoint"]}/images/{image_id}',
                headers={'X-Auth-Token': tokens[owner]}, timeout=120)
            retried[retry.status_code] += 1
            if retry.status_code not in (204, 404):
                problems.append(f'{image_id}: retry answered '
                                f'{retry.status_code}')
            if stack.glance_image(state, admin, image_id) is not None:
                problems.append(f'{image_id}: still in Glance after the '
                                'retry')
    return problems, retried


def served_by(state):
    """``{instance: DELETEs}`` from HAProxy's log."""
    text = (pathlib.Path(state['workdir']) / 'logs' / 'haproxy.log'
            ).read_text()
    return collections.Counter(re.findall(
        rf'{haproxy.BACKEND}/(\S+) .*"DELETE ', text))


def report(args, results, elapsed, windows, retried, problems, state,
           started):
    print(f'requests: {len(results)} from {args.clients} clients, 2 '
          f'instances x {args.workers} {args.server} workers behind '
          f'HAProxy, in {elapsed:.1f} s ({len(results) / elapsed:.1f}/s)')
    soak.print_statuses_and_latency(results)
    for what, (a, b) in windows.items():
        print(f'{what}: {a - started:.1f} s to {b - started:.1f} s '
              f'({b - a:.1f} s)')
    errors = [(r[3] - started, r[2]) for r in results if r[2] != 204
              and r[2] != 404]
    if errors:
        print('errors at: ' + ', '.join(f'{t:.1f} s {s}'
                                        for t, s in errors[:20]))
    print('client retries: ' + (', '.join(
        f'{k}: {v}' for k, v in sorted(retried.items())) or 'none'))
    print('HAProxy sent DELETEs to: ' + ', '.join(
        f'{k}: {v}' for k, v in sorted(served_by(state).items())))
    for problem in problems[:50]:
        print('PROBLEM:', problem)
    print('soak: ' + ('passed' if not problems else
                      f'{len(problems)} problems'))


def soak_run(args, state):
    images = soak.create_images(state, args.deletes)
    work = soak.plan(images)
    warm = Run(state, work[:50], args.clients, args.time_limit)
    soak.Run.go(warm)   # warm-up, no faults
    run = Run(state, work[50:], args.clients, args.time_limit)
    run.served_again()  # the measured run starts with every instance up
    started = time.monotonic()
    elapsed, windows = run.go()
    measured = list(dict.fromkeys(work[50:]))
    problems, retried = account(state, measured, run.results, windows)
    report(args, run.results, elapsed, windows, retried, problems, state,
           started)
    return 1 if problems else 0


def rate(state, url, images, clients):
    """Deletes/s of ``images`` at ``url`` (``.../images/<id>``)."""
    tokens = {owner: stack.get_session(state, owner).get_token()
              for owner in soak.OWNERS}
    local = threading.local()

    def delete(item):
        owner, image_id = item
        if not hasattr(local, 'http'):
            local.http = requests.Session()
        return local.http.delete(f'{url}/images/{image_id}',
                                 headers={'X-Auth-Token': tokens[owner]},
                                 timeout=120).status_code

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        statuses = collections.Counter(pool.map(delete, images))
    elapsed = time.monotonic() - started
    return len(images) / elapsed, statuses


def figure(args, state):
    drained = state['instances']['compute-api-2']
    runs = (
        ('Glance directly', state['glance_url'] + '/v2', None),
        ('HAProxy, 1 instance', state['compute_endpoint'], 'drain'),
        ('HAProxy, 2 instances', state['compute_endpoint'], 'back'),
    )
    for what, url, change in runs:
        if change == 'drain':
            pathlib.Path(drained['disable_file']).touch()
            haproxy.wait_status(state, 'DOWN', ['compute-api-2'])
        elif change == 'back':
            pathlib.Path(drained['disable_file']).unlink()
            haproxy.wait_status(state, 'UP')
        images = soak.create_images(state, args.per_run + 20)
        rate(state, url, images[:20], args.clients)   # warm-up
        per_second, statuses = rate(state, url, images[20:], args.clients)
        print(f'{what}: {per_second:.1f} deletes/s at concurrency '
              f'{args.clients}, {args.server} ({dict(statuses)})')
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m tests.soak_scaled')
    parser.add_argument('--deletes', type=int, default=1500)
    parser.add_argument('--clients', type=int, default=8)
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--server', choices=stack.SERVERS,
                        default=soak.SERVER,
                        help='the WSGI server of the compute-api instances '
                             '(default: %(default)s)')
    parser.add_argument('--time-limit', type=float, default=900)
    parser.add_argument('--figure', action='store_true',
                        help='measure deletes/s instead of soaking')
    parser.add_argument('--per-run', type=int, default=300,
                        help='--figure: deletes per measurement')
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix='compute-api-soak.') as tmp:
        # PostgreSQL runs as its own user, which must reach its cluster.
        os.chmod(tmp, 0o711)  # noqa: S103 (enter only, no listing)
        the_stack = stack.Stack(os.path.join(tmp, 'stack'),
                                compute_workers=args.workers, scaled=True,
                                server=args.server)
        try:
            state = the_stack.up()
            # requests verifies HAProxy's certificate with the stack's CA.
            os.environ['REQUESTS_CA_BUNDLE'] = state['ca_file']
            return (figure if args.figure else soak_run)(args, state)
        finally:
            the_stack.down()


if __name__ == '__main__':
    sys.exit(main())
