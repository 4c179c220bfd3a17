"""Start-up time and memory of compute-api.

1. Import + application load: a fresh interpreter of the service's runtime
   environment (.venv-service) imports ``compute_api.wsgi.api`` (which
   reads a minimal ``compute_api.conf``, sets up logging and builds the
   pipeline); timed inside the child (``import compute_api.deploy``, then
   the rest) and as the child's whole wall time, median of ``--runs`` (5);
   then one ``python -X importtime`` run, summed per top-level package.
2. Memory: a compute-api instance with one gunicorn sync worker serves
   ``--requests`` (1,000) Delete Image calls, answered by the null Glance
   (benchmarks.null_glance); the worker's VmRSS is read from
   /proc/<pid>/status after start-up, after the first request and after
   the last. With ``--stack`` the instance is the stack's configuration
   (real keystonemiddleware auth_token, token cache in the stack's
   memcached); without it, the production pipeline with auth_token
   replaced by benchmarks.identity_filter.

Usage::

    .venv/bin/python -m benchmarks.startup_memory
    .venv/bin/python -m benchmarks.startup_memory \\
        --stack /tmp/bench-stack/stack.json
"""

import argparse
import collections
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

from benchmarks import identity_filter
from benchmarks import instances
from benchmarks import load
from benchmarks import processes
from benchmarks import report
from benchmarks import standins
from tests import stack

TARGET_LOAD_S = 0.8
TARGET_RSS_MIB = 70.0
INSTANCE_NAME = 'bench-rss'

_CHILD = '''
import json, time
t0 = time.perf_counter()
from compute_api import deploy
t1 = time.perf_counter()
from compute_api.wsgi import api
t2 = time.perf_counter()
print(json.dumps({"import_deploy": t1 - t0, "load": t2 - t1,
                  "total": t2 - t0}))
'''

# The import and load are measured as operators run the service: the
# package installed in its runtime environment (tools/bootstrap.sh), started
# outside the source tree.
SERVICE_PYTHON = str(stack.SERVICE_BIN_DIR / 'python')

# Enough for the application to load; nothing is called.
MINIMAL_CONF = {
    'glance': {'endpoint_override': 'http://127.0.0.1:9'},
    'keystone_authtoken': {
        'www_authenticate_uri': 'http://127.0.0.1:9/v3',
        'auth_url': 'http://127.0.0.1:9/v3', 'auth_type': 'password',
        'username': 'compute', 'password': 'unused',
        'user_domain_name': 'Default', 'project_name': 'service',
        'project_domain_name': 'Default'},
}


def measure_load(runs):
    """[(name, median seconds)] and the -X importtime package table."""
    with tempfile.TemporaryDirectory(prefix='bench-startup-') as tmp:
        stack.write_ini(pathlib.Path(tmp, 'compute_api.conf'), {
            'DEFAULT': {'log_file': str(pathlib.Path(tmp, 'log'))},
            **MINIMAL_CONF})
        env = dict(os.environ)
        env[stack.COMPUTE_CONFIG_ENV] = tmp
        env.pop('PYTHONPATH', None)
        if processes.chosen_tree() is not None:
            env['PYTHONPATH'] = str(processes.chosen_tree())
        samples = collections.defaultdict(list)

        def python(*argv):
            t0 = time.perf_counter()
            proc = subprocess.run([SERVICE_PYTHON, *argv], env=env, cwd=tmp,
                                  capture_output=True, text=True,
                                  timeout=60, check=True)
            return proc, time.perf_counter() - t0

        for _ in range(runs):
            proc, seconds = python('-c', _CHILD)
            samples['process'].append(seconds)
            for key, value in json.loads(
                    proc.stdout.splitlines()[-1]).items():
                samples[key].append(value)
            samples['bare'].append(python('-c', 'pass')[1])
        err = python('-X', 'importtime', '-c', _CHILD)[0].stderr
    medians = {k: statistics.median(v) for k, v in samples.items()}
    return medians, samples, _import_packages(err)


def _import_packages(stderr):
    """Self import time summed by top-level package, in seconds."""
    totals = collections.defaultdict(float)
    for line in stderr.splitlines():
        parts = line.removeprefix('import time:').split('|')
        if len(parts) == 3 and parts[0].strip().isdigit():
            totals[parts[2].strip().split('.')[0]] += int(parts[0]) / 1e6
    return sorted(totals.items(), key=lambda kv: -kv[1])


def measure_rss(instance, token, requests, time_limit, pace=0.0):
    """The worker's memory along the deletes, and its CPU time per delete
    after the first (which loads what auth_token needs)."""
    worker = instance.worker()
    session = load.session(token)
    rows = [('after start-up', processes.proc_status(worker))]
    first, result = load.PathResult(), load.PathResult()
    deadline = processes.Deadline(time_limit)
    for i in range(requests):
        if deadline.expired():
            break
        if i == 1:
            cpu_start = processes.cpu_seconds([worker])
        (result if i else first).add(*load.delete_one(
            session, f'{instance.url}/v2.1/images/{uuid.uuid4()}'))
        if pace:
            time.sleep(pace)
        if i == 0 or i + 1 == requests // 10:
            rows.append((f'after {i + 1} delete{"s" if i else ""}',
                         processes.proc_status(worker)))
    cpu = {}
    if result.done:
        cpu = {'cpu_ms': (processes.cpu_seconds([worker]) - cpu_start) * 1000
               / result.done,
               'latency_ms': statistics.median(result.latencies) * 1000}
    result.statuses.update(first.statuses)
    result.first_error = first.first_error or result.first_error
    rows.append((f'after {sum(result.statuses.values())} deletes',
                 processes.proc_status(worker)))
    if instance.worker() != worker:
        raise SystemExit('the gunicorn worker was replaced during the run')
    return rows, result, processes.proc_status(instance.pid), cpu


def _stack_worker_rss(state):
    """VmRSS of the stack's own workers (for comparison)."""
    return [(name, worker, processes.proc_status(worker)['VmRSS'])
            for name in ('glance', 'keystone', 'compute-api')
            if state['pids'].get(name)
            for worker in stack.children(state['pids'][name])]


def report_load(runs):
    medians, samples, packages = measure_load(runs)
    rows = [
        ('import compute_api.deploy', 'import_deploy'),
        ('then import compute_api.wsgi.api (conf, logging, pipeline)',
         'load'),
        ('import + load (in the child)', 'total'),
        ('whole child process (interpreter start to exit)', 'process'),
        ('bare interpreter (python -c pass)', 'bare'),
    ]
    print(f'Import + load of compute_api.wsgi.api, median of {runs} fresh '
          'processes:')
    print(report.table(['step', 'median s', 'min s', 'max s'], [
        (name, report.fmt(medians[key]), report.fmt(min(samples[key])),
         report.fmt(max(samples[key]))) for name, key in rows]))
    met = 'met' if medians['total'] <= TARGET_LOAD_S else 'NOT met'
    print(f'Target import + load <= {TARGET_LOAD_S} s: {met}.\n')
    print('Import time by top-level package (python -X importtime, '
          'self times summed, one run):')
    print(report.table(['package', 'ms'], [
        (name, report.fmt(sec * 1000, 1)) for name, sec in packages[:15]]))
    print()


def report_rss(args, overrides):
    state = stack.load_state(args.stack) if args.stack else None
    null_glance = standins.NullGlance(close=args.glance_closes)
    with null_glance as glance_url, \
            tempfile.TemporaryDirectory(prefix='bench-rss-') as tmp:
        if state is not None:
            token = stack.get_session(state, 'demo-member').get_token()
            overrides.setdefault('glance', {})['endpoint_override'] = \
                glance_url
            instance = instances.start_instance(
                state, 'gunicorn-sync', 1, name=INSTANCE_NAME,
                overrides=overrides)
            mode = ('; '.join(['stack configuration: real auth_token, '
                               'token cache in memcached',
                               *args.conf_override]))
        else:
            token = identity_filter.BENCH_TOKEN
            instance = instances.start_noauth_instance(tmp, glance_url,
                                                       INSTANCE_NAME)
            mode = 'auth_token replaced by the identity stand-in'
        try:
            rows, result, master, cpu = measure_rss(
                instance, token, args.requests, args.time_limit,
                args.pace / 1000)
        finally:
            instance.stop()
    closes = ', closing every connection' if args.glance_closes else ''
    print(f'gunicorn worker memory (1 sync worker; {mode}; null '
          f'Glance{closes}):')
    print(report.table(['when', 'VmRSS MiB', 'RssAnon MiB', 'RssFile MiB',
                        'VmHWM MiB'], [
        (when, *(report.fmt(v[k], 1)
                 for k in ('VmRSS', 'RssAnon', 'RssFile', 'VmHWM')))
        for when, v in rows]))
    print(f'gunicorn master VmRSS: {master["VmRSS"]:.1f} MiB; statuses: '
          f'{dict(result.statuses)}' + (
              f'; first failure: {result.first_error}'
              if result.errors else ''))
    if cpu:
        paced = f', {args.pace:g} ms apart' if args.pace else ''
        print(f'Worker CPU per delete (after the first{paced}): '
              f'{cpu["cpu_ms"]:.2f} ms; client-side median latency '
              f'{cpu["latency_ms"]:.2f} ms (gunicorn, null Glance).')
    kept = ('it closed each after its answer' if args.glance_closes else
            'the worker keeps its connection alive: one is expected')
    print(f'Connections the null Glance accepted: {null_glance.connections} '
          f'for {sum(result.statuses.values())} deletes ({kept}).')
    final = rows[-1][1]['VmRSS']
    met = 'met' if final <= TARGET_RSS_MIB else 'NOT met'
    print(f'Target worker RSS <= {TARGET_RSS_MIB:g} MiB: {met} '
          f'({final:.1f} MiB).')
    if state is not None:
        print('\nFor comparison, the stack\'s own workers (VmRSS MiB):')
        print(report.table(['service', 'pid', 'VmRSS MiB'], [
            (n, p, report.fmt(v, 1))
            for n, p, v in _stack_worker_rss(state)]))


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='compute-api import + load time, and gunicorn worker '
                    'RSS after many requests.')
    parser.add_argument('--stack', help='stack.json of a running stack: the '
                        'RSS instance then runs the real auth_token')
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--requests', type=int, default=1000)
    parser.add_argument('--time-limit', type=float, default=90.0,
                        help='seconds for the requests at most')
    parser.add_argument('--conf-override', action='append', default=[],
                        metavar='SECTION.NAME=VALUE',
                        help='with --stack: an option for the RSS '
                             'instance\'s compute_api.conf (repeatable), '
                             'e.g. keystone_authtoken.'
                             'memcache_use_advanced_pool=False')
    parser.add_argument('--pace', type=float, default=0.0, metavar='MS',
                        help='pause between deletes, in milliseconds (the '
                             'worker then idles between requests, as it '
                             'does while a real Glance works)')
    parser.add_argument('--glance-closes', action='store_true',
                        help='the null Glance closes every connection after '
                             'its answer, as the stack\'s Glance (gunicorn '
                             'sync) does: a new connection per delete')
    parser.add_argument('--skip-load', action='store_true')
    parser.add_argument('--skip-rss', action='store_true')
    args = parser.parse_args(argv)
    if args.runs < 1 or args.requests < 1 or not 0 <= args.pace <= 100:
        parser.error('--runs and --requests must be positive, --pace '
                     'between 0 and 100 ms')
    try:
        overrides = instances.parse_overrides(args.conf_override)
    except ValueError as exc:
        parser.error(str(exc))
    if overrides and not args.stack:
        parser.error('--conf-override needs --stack')
    report.print_header()
    print()
    if not args.skip_load:
        report_load(args.runs)
    if not args.skip_rss:
        report_rss(args, overrides)
    return 0


if __name__ == '__main__':
    sys.exit(main())
