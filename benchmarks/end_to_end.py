"""Delete Image through compute-api under gunicorn, against Glance direct.

On a running stack (``python -m tests.stack up --workdir DIR``), images
owned by project ``demo`` are created in Glance beforehand (not timed), then
deleted at concurrency 1, 4 and 16 by client threads, each with its own
keystoneauth1 session and the same demo-member token:

* through compute-api: ``DELETE {compute}/v2.1/images/{id}`` (gunicorn, the
  stack's instance with 2 sync workers, or ``--workers N`` for a dedicated
  instance started for the run and stopped after it);
* straight to Glance: ``DELETE {glance}/v2/images/{id}``.

The two paths alternate so that drift (Glance's sqlite database grows; the
machine's load changes) weighs on both equally: at concurrency 1 a single
client alternates request by request (throughput is then n / total time of
that path's requests); at higher concurrency the paths take turns in blocks,
direct, compute-api, compute-api, direct, ... (``--blocks`` per path), and
throughput is deletes over the blocks' wall time. Reported per level:
median, p90 and p99 latency per delete, throughput, the added median
latency and the throughput ratio.

Glance runs one sync worker on sqlite here, so it serialises the deletes;
the counts are modest and every phase is bounded in time.

Usage::

    .venv/bin/python -m benchmarks.end_to_end \\
        --stack /tmp/bench-stack/stack.json
"""

import argparse
import concurrent.futures
import json
import pathlib
import sys
import threading
import time
import uuid

from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint

from benchmarks import common
from tests import stack

USER = 'demo-member'
TARGET_ADDED_MS = 2.0
TARGET_RATIO = 0.90


def create_images(state, token, count, threads=4, deadline=None):
    """Create ``count`` queued images in Glance; returns their ids."""
    def work(n):
        session = _session(token)
        ids = []
        for _ in range(n):
            if deadline is not None and deadline.expired():
                break
            ids.append(stack.create_image(
                state, session, name='bench-e2e', visibility='private'))
        return ids
    shares = [count // threads + (1 if i < count % threads else 0)
              for i in range(threads)]
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        return [i for ids in pool.map(work, shares) for i in ids]


def _session(token):
    return ks_session.Session(auth=token_endpoint.Token(None, token))


def run_phase(url_prefix, image_ids, concurrency, token, time_limit):
    """Delete ``image_ids`` with ``concurrency`` threads.

    Returns ``(latencies, wall_seconds, statuses, deleted_ids)``.
    """
    pending = list(reversed(image_ids))
    lock = threading.Lock()
    latencies, statuses, deleted = [], {}, []
    barrier = threading.Barrier(concurrency + 1)
    deadline = common.Deadline(time_limit)

    def worker():
        session = _session(token)
        barrier.wait()
        while not deadline.expired():
            with lock:
                if not pending:
                    return
                image_id = pending.pop()
            t0 = time.perf_counter()
            try:
                resp = session.delete(
                    url_prefix + image_id, raise_exc=False, redirect=False,
                    timeout=30, headers={'Accept': 'application/json'})
                status = resp.status_code
            except Exception as exc:  # counted and reported
                status = type(exc).__name__
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed)
                statuses[status] = statuses.get(status, 0) + 1
                if status == 204:
                    deleted.append(image_id)

    threads = [threading.Thread(target=worker, daemon=True)
               for _ in range(concurrency)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join(time_limit + 60)
    wall = time.perf_counter() - start
    return latencies, wall, statuses, deleted


def warm_up(prefixes, token, concurrency):
    """Unknown ids through both paths: fills auth_token caches, no data."""
    for prefix in prefixes:
        ids = [str(uuid.uuid4()) for _ in range(max(4, concurrency))]
        run_phase(prefix, ids, min(concurrency, len(ids)), token, 30)


def _blocks(images, count, blocks):
    """Split ``2 * count`` images into the two paths' alternating blocks.

    Returns ``[(path, ids)]`` in the order D C C D D C C D ...
    """
    size = max(1, count // blocks)
    direct, compute = images[:count], images[count:2 * count]
    chunks = {'direct': [direct[i:i + size] for i in range(0, count, size)],
              'compute': [compute[i:i + size]
                          for i in range(0, count, size)]}
    order = []
    for i in range(len(chunks['direct'])):
        pair = ('direct', 'compute') if i % 2 == 0 else ('compute', 'direct')
        order += [(which, chunks[which][i]) for which in pair]
    return order


def _alternating(prefixes, images, count, token, deadline):
    """Concurrency 1: one client alternating the paths request by request.

    Throughput is then ``n / sum(latencies)`` for each path.
    """
    session = _session(token)
    results = {k: {'lat': [], 'wall': 0.0, 'statuses': {}, 'done': 0}
               for k in prefixes}
    leftovers = []
    pairs = list(zip(images[:count], images[count:2 * count], strict=True))
    for i, (direct_id, compute_id) in enumerate(pairs):
        order = (('direct', direct_id), ('compute', compute_id))
        for which, image_id in (order if i % 2 == 0 else order[::-1]):
            if deadline.expired():
                leftovers.append(image_id)
                continue
            t0 = time.perf_counter()
            try:
                resp = session.delete(
                    prefixes[which] + image_id, raise_exc=False,
                    redirect=False, timeout=30,
                    headers={'Accept': 'application/json'})
                status = resp.status_code
            except Exception as exc:  # counted and reported
                status = type(exc).__name__
            elapsed = time.perf_counter() - t0
            r = results[which]
            r['lat'].append(elapsed)
            r['wall'] += elapsed
            r['done'] += 1
            r['statuses'][str(status)] = r['statuses'].get(str(status),
                                                           0) + 1
            if status != 204:
                leftovers.append(image_id)
    return results, leftovers


def measure_level(state, compute_prefix, glance_prefix, token, level, count,
                  blocks, time_limit, pids):
    """Create the images, delete them; returns (results, leftovers).

    ``pids`` is (compute-api PIDs, Glance PIDs): their CPU time over the
    deletes (creation excluded) is ``results['cpu']``.
    """
    deadline = common.Deadline(time_limit)
    images = create_images(state, token, 2 * count, deadline=deadline)
    if len(images) < 2 * count:
        cleanup(state, token, images)
        raise SystemExit(f'only {len(images)} of {2 * count} images could be'
                         f' created within {time_limit:.0f} s')
    cpu0 = [common.cpu_seconds(p) for p in pids]
    results, leftovers = _delete_all(compute_prefix, glance_prefix, token,
                                     level, count, blocks, images, deadline)
    results['cpu'] = tuple(common.cpu_seconds(p) - c
                           for p, c in zip(pids, cpu0, strict=True))
    return results, leftovers


def _delete_all(compute_prefix, glance_prefix, token, level, count, blocks,
                images, deadline):
    prefixes = {'direct': glance_prefix, 'compute': compute_prefix}
    if level == 1:
        return _alternating(prefixes, images, count, token, deadline)
    results = {k: {'lat': [], 'wall': 0.0, 'statuses': {}, 'done': 0}
               for k in prefixes}
    leftovers = []
    order = _blocks(images, count, blocks)
    for i, (which, batch) in enumerate(order):
        lat, wall, statuses, deleted = run_phase(
            prefixes[which], batch, level, token,
            max(5.0, deadline.left() / (len(order) - i)))
        r = results[which]
        r['lat'] += lat
        r['wall'] += wall
        r['done'] += len(lat)
        for k, v in statuses.items():
            r['statuses'][str(k)] = r['statuses'].get(str(k), 0) + v
        done = set(deleted)
        leftovers += [x for x in batch if x not in done]
    return results, leftovers


def cleanup(state, token, image_ids):
    """Best effort: delete images a phase left behind (bounded)."""
    session = _session(token)
    deadline = common.Deadline(60)
    for image_id in image_ids:
        if deadline.expired():
            print(f'warning: {len(image_ids)} images may be left in Glance',
                  file=sys.stderr)
            return
        session.delete(f'{state["glance_url"]}/v2/images/{image_id}',
                       raise_exc=False)


def report(all_results, levels):
    rows = []
    summary = []
    for level in levels:
        res = all_results[level]
        stats = {}
        for which, label in (('compute', 'compute-api'),
                             ('direct', 'Glance direct')):
            r = res[which]
            s = common.summarize(r['lat'])
            tput = r['done'] / r['wall'] if r['wall'] else 0.0
            errors = sum(v for k, v in r['statuses'].items() if k != '204')
            stats[which] = (s, tput)
            rows.append((level if which == 'compute' else '', label, s['n'],
                         errors, common.fmt(s['median'], 2),
                         common.fmt(s['p90'], 2), common.fmt(s['p99'], 2),
                         common.fmt(tput, 1)))
        (sc, tc), (sd, td) = stats['compute'], stats['direct']
        added = sc['median'] - sd['median']
        ratio = tc / td if td else 0.0
        verdict = []
        if level == 1:
            met = 'met' if added <= TARGET_ADDED_MS else 'NOT met'
            verdict.append(f'added <= {TARGET_ADDED_MS:g} ms: {met}')
        if level == 16:
            met = 'met' if ratio >= TARGET_RATIO else 'NOT met'
            verdict.append(f'ratio >= {TARGET_RATIO:.0%}: {met}')
        cpu_compute, cpu_glance = res['cpu']
        deletes = res['compute']['done'] + res['direct']['done']
        summary.append((level, common.fmt(added, 2),
                        common.fmt(sc['p90'] - sd['p90'], 2),
                        common.fmt(ratio * 100, 1) + ' %',
                        common.fmt(cpu_compute * 1000 / max(
                            1, res['compute']['done']), 2),
                        common.fmt(cpu_glance * 1000 / max(1, deletes), 2),
                        '; '.join(verdict) or '-'))
    print(common.table(['concurrency', 'path', 'n', 'errors', 'median ms',
                        'p90 ms', 'p99 ms', 'deletes/s'], rows))
    print()
    print(common.table(['concurrency', 'added median ms', 'added p90 ms',
                        'throughput ratio', 'compute-api CPU ms/delete',
                        'Glance CPU ms/delete', 'targets'], summary))
    print('(CPU: user + system time of all the gunicorn processes of each '
          'service over the level, per delete it served; 10 ms ticks.)')
    for level in levels:
        for which in ('compute', 'direct'):
            st = all_results[level][which]['statuses']
            if set(st) - {'204'}:
                print(f'concurrency {level}, {which}: statuses {st}')


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Delete Image through compute-api (gunicorn) against '
                    'straight to Glance, on a running stack.')
    parser.add_argument('--stack', required=True,
                        help='DIR/stack.json of python -m tests.stack up')
    parser.add_argument('--levels', type=int, nargs='+', default=[1, 4, 16])
    parser.add_argument('--count', type=int, default=200,
                        help='deletes per path and level (default 200)')
    parser.add_argument('--blocks', type=int, default=4,
                        help='concurrency > 1: alternating blocks per path '
                             '(default 4: D C C D D C C D)')
    parser.add_argument('--workers', type=int,
                        help='start a dedicated compute-api with this many '
                             'gunicorn workers (default: use the stack\'s)')
    parser.add_argument('--conf-override', action='append', default=[],
                        metavar='SECTION.NAME=VALUE',
                        help='with --workers: an option for the dedicated '
                             'instance\'s compute_api.conf (repeatable)')
    parser.add_argument('--time-limit', type=float, default=45.0,
                        help='seconds per level at most, image creation '
                             'included (default 45)')
    parser.add_argument('--json', help='also write the results here')
    args = parser.parse_args(argv)
    if args.count < 2 or any(level < 1 for level in args.levels):
        parser.error('--count must be >= 2 and levels >= 1')
    try:
        overrides = common.parse_overrides(args.conf_override)
    except ValueError as exc:
        parser.error(str(exc))
    if overrides and not args.workers:
        parser.error('--conf-override needs --workers (a dedicated '
                     'instance)')

    state = stack.load_state(args.stack)
    token = stack.get_session(state, USER).get_token()
    print(f'Machine: {common.machine()}')
    print(f'Source: {common.source_revision()}')
    instance = None
    compute_url = state['compute_url']
    workers = 'the stack\'s instance'
    if args.workers:
        instance = stack.start_compute_api(state, 'bench-e2e', overrides,
                                           workers=args.workers)
        compute_url = instance['url']
        workers = f'a dedicated instance, {args.workers} workers'
        if args.conf_override:
            workers += '; ' + ', '.join(args.conf_override)
    master = instance['pid'] if instance else state['pids']['compute-api']
    compute_pids = [master, *stack.children(master)]
    glance_pids = [state['pids']['glance'],
                   *stack.children(state['pids']['glance'])]
    compute_prefix = f'{compute_url}/v2.1/images/'
    glance_prefix = f'{state["glance_url"]}/v2/images/'
    print(f'compute-api: {compute_url} ({workers}); Glance: '
          f'{state["glance_url"]} (1 worker, sqlite); {args.count} deletes '
          f'per path and level.\n')
    all_results = {}
    leftovers = []
    try:
        for level in args.levels:
            warm_up((compute_prefix, glance_prefix), token, level)
            results, left = measure_level(
                state, compute_prefix, glance_prefix, token, level,
                args.count, args.blocks, args.time_limit,
                (compute_pids, glance_pids))
            all_results[level] = results
            leftovers += left
    finally:
        if leftovers:
            cleanup(state, token, leftovers)
        if instance is not None:
            stack.stop_process(instance['pid'])
    report(all_results, args.levels)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(
            {str(k): {w: ({'latencies': r['lat'], 'wall': r['wall'],
                           'statuses': r['statuses']}
                          if w != 'cpu' else r)
                      for w, r in v.items()}
             for k, v in all_results.items()}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
