"""Delete Image through compute-api under three WSGI servers, side by side.

On a running stack, one dedicated compute-api per server is started for the
run, all with the stack's configuration, the same number of workers
(``--workers``, default 2) and the service's runtime environment:

* ``gunicorn-sync``: the shipped gunicorn example as the stack runs it;
* ``gunicorn-gthread``: the same with ``worker_class = 'gthread'``,
  ``threads`` and ``keepalive`` (the client's connection is reused);
* ``uwsgi``: the shipped ``uwsgi.ini.example`` with only the port, the
  worker count, the log file and the places changed.

Images are created in Glance beforehand (not timed). At concurrency 1 one
client goes round the paths request by request (Glance direct and each
server), rotating which goes first; at higher concurrency the paths take
turns in blocks in the same rotating order. Reported per level and server:
the added median over Glance direct, the throughput ratio and the
compute-api CPU time per delete (all the server's processes, ``/proc``).
``--png PATH`` draws the latency distributions (needs matplotlib).

Usage::

    .venv/bin/python -m benchmarks.servers \\
        --stack /tmp/bench-stack/stack.json --png latency.png
"""

import argparse
import configparser
import json
import os
import pathlib
import sys
import time

from benchmarks import common
from benchmarks import end_to_end
from tests import stack

SERVERS = ('gunicorn-sync', 'gunicorn-gthread', 'uwsgi')
GTHREADS = 4
KEEPALIVE = 5


def _config_dir(state, name):
    """The stack's compute_api.conf with this instance's own log file."""
    workdir = pathlib.Path(state['workdir'])
    config_dir = workdir / name
    sections = stack.read_ini(pathlib.Path(state['compute_config_dir'])
                              / 'compute_api.conf')
    sections['DEFAULT']['log_file'] = str(workdir / 'logs' / f'{name}-app.log')
    stack.write_compute_config(config_dir, sections)
    return workdir, config_dir


def _start_gthread(state, name, workers):
    workdir, config_dir = _config_dir(state, name)
    port = stack.free_ports(1)[0]
    conf = config_dir / 'gunicorn.conf.py'
    stack.write_compute_gunicorn_conf(conf, port=port, workers=workers,
                                      log_name=name, workdir=workdir)
    with open(conf, 'a') as f:
        f.write(f"worker_class = 'gthread'\nthreads = {GTHREADS}\n"
                f'keepalive = {KEEPALIVE}\n')
    pid = stack.start_gunicorn(name, conf, workdir,
                               {stack.COMPUTE_CONFIG_ENV: str(config_dir)},
                               service=True)
    return pid, f'http://127.0.0.1:{port}', workdir / 'logs' / f'{name}.log'


def _start_uwsgi(state, name, workers):
    workdir, config_dir = _config_dir(state, name)
    parser = configparser.ConfigParser(strict=False,
                                       inline_comment_prefixes=(';',))
    parser.read(stack.EXAMPLES_DIR / 'uwsgi.ini.example')
    settings = dict(parser['uwsgi'])
    port = stack.free_ports(1)[0]
    log = workdir / 'logs' / f'{name}.log'
    # uwsgi from PyPI has Python built in (no plugin); the virtual
    # environment is the service's runtime one.
    settings.pop('plugins', None)
    settings.update({
        'virtualenv': str(stack.SERVICE_VENV),
        'http-socket': f'127.0.0.1:{port}',
        'processes': str(workers), 'logto': str(log),
        'env': f'{stack.COMPUTE_CONFIG_ENV}={config_dir}'})
    ini = config_dir / 'uwsgi.ini'
    ini.write_text('[uwsgi]\n' + ''.join(f'{k} = {v}\n'
                                         for k, v in settings.items()))
    env = dict(os.environ)
    for var in ('PYTHONPATH', 'VIRTUAL_ENV', 'PYTHONHOME'):
        env.pop(var, None)
    pid = stack.spawn([stack.service_program('uwsgi'), '--ini', str(ini)],
                      log, env, cwd=workdir)
    return pid, f'http://127.0.0.1:{port}', log


def start_server(state, server, workers):
    """Start one compute-api; returns ``(pid, url)``."""
    name = f'bench-{server}'
    if server == 'gunicorn-sync':
        instance = stack.start_compute_api(state, name, workers=workers)
        return instance['pid'], instance['url']
    start = _start_gthread if server == 'gunicorn-gthread' else _start_uwsgi
    pid, url, log = start(state, name, workers)
    try:
        stack.wait_http(name, url + '/', pid, log,
                        stack.COMPUTE_START_TIMEOUT)
    except BaseException:
        stack.stop_process(pid)
        raise
    return pid, url


def _empty():
    return {'lat': [], 'wall': 0.0, 'statuses': {}, 'done': 0}


def _record(r, lat, wall, statuses):
    r['lat'] += lat
    r['wall'] += wall
    r['done'] += len(lat)
    for k, v in statuses.items():
        r['statuses'][str(k)] = r['statuses'].get(str(k), 0) + v


def _rotate(names, i):
    k = i % len(names)
    return names[k:] + names[:k]


def delete_level(prefixes, shares, token, level, blocks, deadline):
    """Delete each path's share of images, the paths interleaved.

    Returns ``(results, leftovers)``.
    """
    names = list(prefixes)
    results = {k: _empty() for k in names}
    leftovers = []
    if level == 1:
        session = end_to_end._session(token)
        for i in range(len(shares[names[0]])):
            for which in _rotate(names, i):
                image_id = shares[which][i]
                if deadline.expired():
                    leftovers.append(image_id)
                    continue
                lat, wall, statuses, deleted = _one(
                    session, prefixes[which] + image_id)
                _record(results[which], lat, wall, statuses)
                if not deleted:
                    leftovers.append(image_id)
        return results, leftovers
    count = len(shares[names[0]])
    size = max(1, count // blocks)
    rounds = [(which, shares[which][s:s + size])
              for n, s in enumerate(range(0, count, size))
              for which in _rotate(names, n)]
    for i, (which, batch) in enumerate(rounds):
        lat, wall, statuses, deleted = end_to_end.run_phase(
            prefixes[which], batch, level, token,
            max(5.0, deadline.left() / (len(rounds) - i)))
        _record(results[which], lat, wall, statuses)
        done = set(deleted)
        leftovers += [x for x in batch if x not in done]
    return results, leftovers


def _one(session, url):
    t0 = time.perf_counter()
    try:
        status = session.delete(url, raise_exc=False, redirect=False,
                                timeout=30,
                                headers={'Accept': 'application/json'}
                                ).status_code
    except Exception as exc:  # counted and reported
        status = type(exc).__name__
    elapsed = time.perf_counter() - t0
    return [elapsed], elapsed, {status: 1}, status == 204


def report(all_results, levels, servers):
    rows, summary = [], []
    for level in levels:
        res = all_results[level]
        direct = common.summarize(res['direct']['lat'])
        d_tput = res['direct']['done'] / (res['direct']['wall'] or 1)
        for which in ('direct', *servers):
            r = res[which]
            s = common.summarize(r['lat'])
            tput = r['done'] / r['wall'] if r['wall'] else 0.0
            errors = sum(v for k, v in r['statuses'].items() if k != '204')
            rows.append((level, which, s['n'], errors,
                         common.fmt(s['median'], 2), common.fmt(s['p90'], 2),
                         common.fmt(s['p99'], 2), common.fmt(tput, 1)))
            if which == 'direct':
                continue
            summary.append((
                level, which, common.fmt(s['median'] - direct['median'], 2),
                common.fmt(s['p90'] - direct['p90'], 2),
                common.fmt(tput / d_tput * 100 if d_tput else 0, 1) + ' %',
                common.fmt(res['cpu'][which] * 1000 / max(1, r['done']), 2)))
    print(common.table(['concurrency', 'path', 'n', 'errors', 'median ms',
                        'p90 ms', 'p99 ms', 'deletes/s'], rows))
    print()
    print(common.table(['concurrency', 'server', 'added median ms',
                        'added p90 ms', 'throughput ratio',
                        'compute-api CPU ms/delete'], summary))
    print('(CPU: user + system time of all the processes of each server '
          'over the level, per delete it served; 10 ms ticks.)')
    for level in levels:
        for which in ('direct', *servers):
            st = all_results[level][which]['statuses']
            if set(st) - {'204'}:
                print(f'concurrency {level}, {which}: statuses {st}')


def draw(all_results, levels, servers, path):
    """Latency distributions (empirical CDFs), one panel per level."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot

    fig, axes = pyplot.subplots(1, len(levels), figsize=(5 * len(levels), 4),
                                squeeze=False)
    for ax, level in zip(axes[0], levels, strict=True):
        for which in ('direct', *servers):
            data = sorted(x * 1000 for x in all_results[level][which]['lat'])
            if not data:
                continue
            label = 'Glance direct' if which == 'direct' else (
                f'compute-api, {which}')
            ax.step(data, [(i + 1) / len(data) for i in range(len(data))],
                    where='post', label=label)
        ax.set_xscale('log')
        ax.set_xlabel('Delete Image latency (ms, log scale)')
        ax.set_ylabel('fraction of deletes')
        ax.set_title(f'concurrency {level}')
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize='small')
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Delete Image through compute-api under gunicorn sync, '
                    'gunicorn gthread and uWSGI against Glance direct.')
    parser.add_argument('--stack', required=True,
                        help='DIR/stack.json of python -m tests.stack up')
    parser.add_argument('--servers', nargs='+', choices=SERVERS,
                        default=list(SERVERS))
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--levels', type=int, nargs='+', default=[1, 16])
    parser.add_argument('--count', type=int, default=150,
                        help='deletes per path and level (default 150)')
    parser.add_argument('--blocks', type=int, default=4,
                        help='concurrency > 1: blocks per path (default 4)')
    parser.add_argument('--time-limit', type=float, default=60.0,
                        help='seconds per level at most, image creation '
                             'included (default 60)')
    parser.add_argument('--png', help='draw the latency distributions here')
    parser.add_argument('--json', help='also write the results here')
    args = parser.parse_args(argv)
    if args.count < 2 or any(level < 1 for level in args.levels):
        parser.error('--count must be >= 2 and levels >= 1')

    state = stack.load_state(args.stack)
    token = stack.get_session(state, end_to_end.USER).get_token()
    print(f'Machine: {common.machine()}')
    print(f'Source: {common.source_revision()}')
    pids, prefixes = {}, {
        'direct': f'{state["glance_url"]}/v2/images/'}
    all_results, leftovers = {}, []
    try:
        for server in args.servers:
            pid, url = start_server(state, server, args.workers)
            pids[server] = pid
            prefixes[server] = f'{url}/v2.1/images/'
        print(f'{args.workers} workers per server '
              f'(gthread: {GTHREADS} threads, keepalive {KEEPALIVE} s); '
              f'Glance {state["glance_url"]} (1 worker, sqlite); '
              f'{args.count} deletes per path and level.\n')
        for level in args.levels:
            end_to_end.warm_up(list(prefixes.values()), token, level)
            deadline = common.Deadline(args.time_limit)
            n = len(prefixes)
            images = end_to_end.create_images(state, token, n * args.count,
                                              deadline=deadline)
            if len(images) < n * args.count:
                leftovers += images
                raise SystemExit(f'only {len(images)} of {n * args.count} '
                                 f'images created in {args.time_limit:.0f} s')
            shares = {w: images[i * args.count:(i + 1) * args.count]
                      for i, w in enumerate(prefixes)}
            procs = {s: [p, *stack.children(p)] for s, p in pids.items()}
            cpu0 = {s: common.cpu_seconds(p) for s, p in procs.items()}
            results, left = delete_level(prefixes, shares, token, level,
                                         args.blocks, deadline)
            results['cpu'] = {s: common.cpu_seconds(p) - cpu0[s]
                              for s, p in procs.items()}
            all_results[level] = results
            leftovers += left
    finally:
        if leftovers:
            end_to_end.cleanup(state, token, leftovers)
        for pid in pids.values():
            stack.stop_process(pid)
    print(f'Load average after the run: {os.getloadavg()}')
    report(all_results, args.levels, args.servers)
    if args.png:
        draw(all_results, args.levels, args.servers, args.png)
        print(f'Latency distributions: {args.png}')
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(
            {str(k): v for k, v in all_results.items()}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
