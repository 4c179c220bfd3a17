"""Load against a stack: the images to delete, the delete phases (one
client going round the paths, or blocks of concurrent clients) and the
options of the scripts that run them.

A failed delete is counted apart (``PathResult``), never in the
latencies, the throughput or the pictures.
"""

import collections
import concurrent.futures
import sys
import threading
import time
import uuid

from keystoneauth1 import token_endpoint

from benchmarks import processes

# After the last response, before reading CPU counters: the worker still
# closes the response (and the probe counts it) after the client has it.
SETTLE_S = 0.3


class PathResult:
    """The deletes sent through one path: the successful ones' latencies,
    the failures counted apart (statuses, and the first one's text)."""

    def __init__(self):
        self.latencies = []
        self.wall = 0.0
        self.statuses = collections.Counter()
        self.first_error = None

    def add(self, latency, status, error=None):
        """One delete: ``error`` is None for a 204, else what went wrong."""
        self.statuses[str(status)] += 1
        if error is None:
            self.latencies.append(latency)
        elif self.first_error is None:
            self.first_error = error

    @property
    def done(self):
        return len(self.latencies)

    @property
    def errors(self):
        return sum(n for status, n in self.statuses.items()
                   if status != '204')

    def throughput(self):
        """Successful deletes per second of the path's own time."""
        return self.done / self.wall if self.wall else 0.0

    def as_json(self):
        return {'latencies': self.latencies, 'wall': self.wall,
                'statuses': dict(self.statuses),
                'first_error': self.first_error}


def session(token):
    from keystoneauth1 import session as ks_session
    return ks_session.Session(auth=token_endpoint.Token(None, token))


def delete_one(sess, url):
    """``(seconds, status, error)``; ``error`` is None for a 204."""
    t0 = time.perf_counter()
    try:
        resp = sess.delete(url, raise_exc=False, redirect=False, timeout=30,
                           headers={'Accept': 'application/json'})
    except Exception as exc:  # counted and reported apart
        return (time.perf_counter() - t0, type(exc).__name__,
                f'{type(exc).__name__}: {exc}')
    elapsed = time.perf_counter() - t0
    if resp.status_code == 204:
        return elapsed, 204, None
    return elapsed, resp.status_code, \
        f'HTTP {resp.status_code}: {resp.text[:300]}'


def run_phase(result, prefix, image_ids, concurrency, token, time_limit):
    """Delete ``image_ids`` with ``concurrency`` threads into ``result``
    (which gains the phase's wall time); returns the ids deleted."""
    pending = list(reversed(image_ids))
    lock = threading.Lock()
    deleted = []
    barrier = threading.Barrier(concurrency + 1)
    deadline = processes.Deadline(time_limit)

    def worker():
        sess = session(token)
        barrier.wait()
        while not deadline.expired():
            with lock:
                if not pending:
                    return
                image_id = pending.pop()
            elapsed, status, error = delete_one(sess, prefix + image_id)
            with lock:
                result.add(elapsed, status, error)
                if error is None:
                    deleted.append(image_id)

    threads = [threading.Thread(target=worker, daemon=True)
               for _ in range(concurrency)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join(time_limit + 60)
    result.wall += time.perf_counter() - start
    return deleted


def delete_level(prefixes, shares, token, level, blocks, deadline):
    """Delete each path's share of images, the paths interleaved.

    At concurrency 1 one client goes round the paths request by request
    (a path's throughput is then its deletes over the time of its
    successful requests); above, the paths take turns in ``blocks`` blocks
    each. Each round starts with the next path. Returns ``({path:
    PathResult}, ids not deleted)``.
    """
    names = list(prefixes)
    results = {name: PathResult() for name in names}
    leftovers = []
    count = len(shares[names[0]])
    if level == 1:
        sess = session(token)
        for i in range(count):
            for name in processes.rotate(names, i):
                image_id = shares[name][i]
                if deadline.expired():
                    leftovers.append(image_id)
                    continue
                elapsed, status, error = delete_one(
                    sess, prefixes[name] + image_id)
                results[name].add(elapsed, status, error)
                if error is None:
                    results[name].wall += elapsed
                else:
                    leftovers.append(image_id)
        return results, leftovers
    size = max(1, count // blocks)
    rounds = [(name, shares[name][s:s + size])
              for n, s in enumerate(range(0, count, size))
              for name in processes.rotate(names, n)]
    for i, (name, batch) in enumerate(rounds):
        done = set(run_phase(results[name], prefixes[name], batch, level,
                             token,
                             max(5.0, deadline.left() / (len(rounds) - i))))
        leftovers += [x for x in batch if x not in done]
    return results, leftovers


def create_images(state, token, count, threads=4, deadline=None):
    """Create ``count`` queued images in Glance; returns their ids."""
    from tests import stack

    def work(n):
        sess = session(token)
        ids = []
        for _ in range(n):
            if deadline is not None and deadline.expired():
                break
            ids.append(stack.create_image(
                state, sess, name='bench-e2e', visibility='private'))
        return ids
    shares = [count // threads + (1 if i < count % threads else 0)
              for i in range(threads)]
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        return [i for ids in pool.map(work, shares) for i in ids]


def warm_up(prefixes, token, concurrency):
    """Unknown ids through every path: fills auth_token caches, no data."""
    for prefix in prefixes:
        ids = [str(uuid.uuid4()) for _ in range(max(4, concurrency))]
        run_phase(PathResult(), prefix, ids, min(concurrency, len(ids)),
                  token, 30)


def cleanup(state, token, image_ids):
    """Best effort: delete images a phase left behind (bounded)."""
    sess = session(token)
    deadline = processes.Deadline(60)
    for image_id in image_ids:
        if deadline.expired():
            print(f'warning: {len(image_ids)} images may be left in Glance',
                  file=sys.stderr)
            return
        sess.delete(f'{state["glance_url"]}/v2/images/{image_id}',
                    raise_exc=False)


def add_load_arguments(parser, levels, count, time_limit):
    """The options of the scripts that delete through a stack."""
    parser.add_argument('--stack', required=True,
                        help='DIR/stack.json of python -m tests.stack up')
    parser.add_argument('--levels', type=int, nargs='+', default=levels)
    parser.add_argument('--count', type=int, default=count,
                        help=f'deletes per path and level (default {count})')
    parser.add_argument('--blocks', type=int, default=4,
                        help='concurrency > 1: alternating blocks per path '
                             '(default 4: D C C D D C C D)')
    parser.add_argument('--time-limit', type=float, default=time_limit,
                        help='seconds per level at most, image creation '
                             f'included (default {time_limit:g})')
    parser.add_argument('--json', help='also write the results here')


def check_load_arguments(parser, args):
    if args.count < 2 or args.blocks < 1 or any(
            level < 1 for level in args.levels):
        parser.error('--count must be >= 2, --blocks and levels >= 1')


def measure_levels(state, prefixes, token, args, counters=None):
    """Per level of ``args.levels``: warm up, create ``args.count`` images
    per path (timed out by ``args.time_limit`` with the deletes), delete
    them (``delete_level``). ``counters()`` (CPU times, ...) is read just
    before the deletes and after them; its differences are the level's
    ``'counters'``. Returns ``{level: {'paths': {path: PathResult},
    'counters': {name: difference}}}``; images left over are deleted."""
    all_results, leftovers = {}, []
    try:
        for level in args.levels:
            warm_up(list(prefixes.values()), token, level)
            deadline = processes.Deadline(args.time_limit)
            wanted = len(prefixes) * args.count
            images = create_images(state, token, wanted, deadline=deadline)
            leftovers += images  # until they are deleted
            if len(images) < wanted:
                raise SystemExit(f'only {len(images)} of {wanted} images '
                                 f'created in {args.time_limit:.0f} s')
            shares = {name: images[i * args.count:(i + 1) * args.count]
                      for i, name in enumerate(prefixes)}
            before = counters() if counters else {}
            results, left = delete_level(prefixes, shares, token, level,
                                         args.blocks, deadline)
            if counters:
                time.sleep(SETTLE_S)
            after = counters() if counters else {}
            leftovers = leftovers[:-len(images)] + left
            all_results[level] = {
                'paths': results,
                'counters': {k: after[k] - before[k] for k in before}}
    finally:
        if leftovers:
            cleanup(state, token, leftovers)
    return all_results
