"""Start-up time and memory of compute-api.

1. Import + application load: a fresh interpreter of the service's runtime
   environment (.venv-service, the installed package) imports
   ``compute_api.wsgi.api`` (which reads the configuration, sets up logging
   and builds the Paste pipeline) with ``OS_COMPUTE_API_CONFIG_DIR``
   pointing at a temporary directory holding a minimal ``compute_api.conf``.
   Timed inside the child (split into ``import compute_api.deploy`` and the
   rest), and as the child's whole wall time; median of ``--runs`` (5).
   One more run with ``python -X importtime`` gives the import cost per
   top-level package.
2. Memory: a compute-api instance with one gunicorn sync worker serves
   ``--requests`` (1,000) Delete Image calls, answered by the null Glance
   (benchmarks.null_glance); the worker's VmRSS is read from
   /proc/<pid>/status after start-up, after the first request and after
   the last. With ``--stack`` the instance is the stack's configuration
   (real keystonemiddleware auth_token, token cache in the stack's
   memcached) started by ``tests.stack.start_compute_api``; without it,
   gunicorn is started here on the production pipeline with auth_token
   replaced by benchmarks.common.IdentityFilter.

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

from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint

from benchmarks import common
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

MINIMAL_CONF = '''[DEFAULT]
log_file = {log}

[glance]
endpoint_override = http://127.0.0.1:9

[keystone_authtoken]
www_authenticate_uri = http://127.0.0.1:9/v3
auth_url = http://127.0.0.1:9/v3
auth_type = password
username = compute
password = unused
user_domain_name = Default
project_name = service
project_domain_name = Default
'''


def _child_env(config_dir):
    env = dict(os.environ)
    env[stack.COMPUTE_CONFIG_ENV] = str(config_dir)
    env.pop('PYTHONPATH', None)
    return env


def measure_load(runs):
    """[(name, median seconds)] and the -X importtime package table."""
    with tempfile.TemporaryDirectory(prefix='bench-startup-') as tmp:
        conf = pathlib.Path(tmp, 'compute_api.conf')
        conf.write_text(MINIMAL_CONF.format(log=pathlib.Path(tmp, 'log')))
        env = _child_env(tmp)
        samples = collections.defaultdict(list)
        for _ in range(runs):
            t0 = time.perf_counter()
            out = subprocess.run([SERVICE_PYTHON, '-c', _CHILD], env=env,
                                 cwd=tmp, capture_output=True, text=True,
                                 timeout=60, check=True).stdout
            samples['process'].append(time.perf_counter() - t0)
            for key, value in json.loads(out.splitlines()[-1]).items():
                samples[key].append(value)
            t0 = time.perf_counter()
            subprocess.run([SERVICE_PYTHON, '-c', 'pass'], env=env, cwd=tmp,
                           timeout=60, check=True)
            samples['bare'].append(time.perf_counter() - t0)
        err = subprocess.run([SERVICE_PYTHON, '-X', 'importtime', '-c',
                              _CHILD], env=env, cwd=tmp, capture_output=True,
                             text=True, timeout=60, check=True).stderr
    medians = {k: statistics.median(v) for k, v in samples.items()}
    return medians, samples, _import_packages(err)


def _import_packages(stderr):
    """Self import time summed by top-level package, in seconds."""
    totals = collections.defaultdict(float)
    for line in stderr.splitlines():
        if not line.startswith('import time:') or 'self [us]' in line:
            continue
        parts = line[len('import time:'):].split('|')
        if len(parts) != 3:
            continue
        name = parts[2].strip().split('.')[0]
        totals[name] += int(parts[0]) / 1e6
    return sorted(totals.items(), key=lambda kv: -kv[1])


# --------------------------------------------------------------------------
# Memory of a gunicorn worker


def _start_noauth_instance(workdir, glance_url):
    """gunicorn, 1 worker, production pipeline with the identity stand-in."""
    workdir = pathlib.Path(workdir)
    (workdir / 'logs').mkdir()
    config_dir = workdir / 'compute'
    config_dir.mkdir()
    (config_dir / 'api-paste.ini').write_text(common.noauth_paste_ini())
    (config_dir / 'policy.yaml').write_text('{}\n')
    (config_dir / 'compute_api.conf').write_text(
        f'[DEFAULT]\nlog_file = {workdir}/logs/{INSTANCE_NAME}-app.log\n'
        f'[glance]\nendpoint_override = {glance_url}\n'
        '[oslo_policy]\npolicy_file = policy.yaml\n')
    port = stack.free_ports(1)[0]
    stack.write_gunicorn_conf(config_dir / 'gunicorn.conf.py',
                              app=stack.COMPUTE_APP, port=port, workers=1,
                              log_name=INSTANCE_NAME, workdir=workdir)
    pid = stack.start_gunicorn(
        INSTANCE_NAME, config_dir / 'gunicorn.conf.py', workdir,
        {stack.COMPUTE_CONFIG_ENV: str(config_dir),
         'PYTHONPATH': str(common.REPO)})
    url = f'http://127.0.0.1:{port}'
    try:
        stack.wait_http(INSTANCE_NAME, url + '/', pid,
                        workdir / 'logs' / f'{INSTANCE_NAME}.log',
                        stack.COMPUTE_START_TIMEOUT)
    except BaseException:
        stack.stop_process(pid)
        raise
    return {'url': url, 'pid': pid}


def _worker(master):
    deadline = common.Deadline(10)
    while not deadline.expired():
        workers = stack.children(master)
        if workers:
            return workers[0]
        time.sleep(0.1)
    raise SystemExit(f'gunicorn {master} has no worker')


def measure_rss(instance, token, requests, time_limit, pace=0.0):
    master = instance['pid']
    worker = _worker(master)
    session = ks_session.Session(auth=token_endpoint.Token(None, token))
    prefix = instance['url'] + '/v2.1/images/'
    rows = [('after start-up', common.proc_status(worker))]
    statuses = collections.Counter()
    deadline = common.Deadline(time_limit)
    sent = 0
    latencies = []
    cpu_start = None
    for i in range(requests):
        if deadline.expired():
            break
        if i == 1:  # the first request loads what auth_token needs
            cpu_start = common.cpu_seconds([worker])
        t0 = time.perf_counter()
        resp = session.delete(prefix + str(uuid.uuid4()), raise_exc=False,
                              timeout=30)
        if i:
            latencies.append(time.perf_counter() - t0)
        statuses[resp.status_code] += 1
        sent += 1
        if pace:
            time.sleep(pace)
        if i == 0:
            rows.append(('after 1 delete', common.proc_status(worker)))
        if i + 1 == requests // 10:
            rows.append((f'after {i + 1} deletes',
                         common.proc_status(worker)))
    rows.append((f'after {sent} deletes', common.proc_status(worker)))
    cpu = {}
    if cpu_start is not None and latencies:
        cpu = {'cpu_ms': (common.cpu_seconds([worker]) - cpu_start) * 1000
               / len(latencies),
               'latency_ms': statistics.median(latencies) * 1000}
    if _worker(master) != worker:
        raise SystemExit('the gunicorn worker was replaced during the run')
    return rows, statuses, common.proc_status(master), cpu


def _stack_worker_rss(state):
    """VmRSS of the stack's own Glance and Keystone workers (context)."""
    found = []
    for name in ('glance', 'keystone', 'compute-api'):
        pid = state['pids'].get(name)
        if not pid:
            continue
        for worker in stack.children(pid):
            try:
                found.append((name, worker,
                              common.proc_status(worker)['VmRSS']))
            except OSError:
                pass
    return found


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
    parser.add_argument('--skip-load', action='store_true')
    parser.add_argument('--skip-rss', action='store_true')
    args = parser.parse_args(argv)
    if args.runs < 1 or args.requests < 1 or not 0 <= args.pace <= 100:
        parser.error('--runs and --requests must be positive, --pace '
                     'between 0 and 100 ms')
    try:
        overrides = common.parse_overrides(args.conf_override)
    except ValueError as exc:
        parser.error(str(exc))
    overrides.setdefault('glance', {})

    print(f'Machine: {common.machine()}')
    print(f'Source: {common.source_revision()}\n')
    if not args.skip_load:
        medians, samples, packages = measure_load(args.runs)
        rows = [
            ('import compute_api.deploy', medians['import_deploy']),
            ('then import compute_api.wsgi.api (conf, logging, pipeline)',
             medians['load']),
            ('import + load (in the child)', medians['total']),
            ('whole child process (interpreter start to exit)',
             medians['process']),
            ('bare interpreter (python -c pass)', medians['bare']),
        ]
        print(f'Import + load of compute_api.wsgi.api, median of '
              f'{args.runs} fresh processes:')
        print(common.table(['step', 'median s', 'min s', 'max s'], [
            (name, common.fmt(value),
             common.fmt(min(samples[key])), common.fmt(max(samples[key])))
            for (name, value), key in zip(
                rows, ('import_deploy', 'load', 'total', 'process', 'bare'),
                strict=True)]))
        met = 'met' if medians['total'] <= TARGET_LOAD_S else 'NOT met'
        print(f'Target import + load <= {TARGET_LOAD_S} s: {met}.\n')
        print('Import time by top-level package (python -X importtime, '
              'self times summed, one run):')
        print(common.table(['package', 'ms'], [
            (name, common.fmt(sec * 1000, 1)) for name, sec in packages[:15]]))
        print()

    if args.skip_rss:
        return 0
    state = stack.load_state(args.stack) if args.stack else None
    with common.NullGlance() as glance_url, \
            tempfile.TemporaryDirectory(prefix='bench-rss-') as tmp:
        if state is not None:
            token = stack.get_session(state, 'demo-member').get_token()
            overrides['glance']['endpoint_override'] = glance_url
            instance = stack.start_compute_api(
                state, INSTANCE_NAME, overrides, workers=1)
            mode = ('stack configuration: real auth_token, token cache in '
                    'memcached')
            if args.conf_override:
                mode += '; ' + ', '.join(args.conf_override)
        else:
            if args.conf_override:
                parser.error('--conf-override needs --stack')
            token = common.BENCH_TOKEN
            instance = _start_noauth_instance(tmp, glance_url)
            mode = 'auth_token replaced by the identity stand-in'
        try:
            rows, statuses, master, cpu = measure_rss(
                instance, token, args.requests, args.time_limit,
                args.pace / 1000)
        finally:
            stack.stop_process(instance['pid'])
    print(f'gunicorn worker memory (1 sync worker; {mode}; null Glance):')
    print(common.table(['when', 'VmRSS MiB', 'RssAnon MiB', 'RssFile MiB',
                        'VmHWM MiB'], [
        (when, common.fmt(v['VmRSS'], 1), common.fmt(v['RssAnon'], 1),
         common.fmt(v['RssFile'], 1), common.fmt(v['VmHWM'], 1))
        for when, v in rows]))
    print(f'gunicorn master VmRSS: {master["VmRSS"]:.1f} MiB; statuses: '
          f'{dict(statuses)}')
    if cpu:
        paced = f', {args.pace:g} ms apart' if args.pace else ''
        print(f'Worker CPU per delete (after the first{paced}): '
              f'{cpu["cpu_ms"]:.2f} ms; client-side median latency '
              f'{cpu["latency_ms"]:.2f} ms (gunicorn, null Glance).')
    final = rows[-1][1]['VmRSS']
    met = 'met' if final <= TARGET_RSS_MIB else 'NOT met'
    print(f'Target worker RSS <= {TARGET_RSS_MIB:g} MiB: {met} '
          f'({final:.1f} MiB).')
    if state is not None:
        print('\nFor comparison, the stack\'s own workers (VmRSS MiB):')
        print(common.table(['service', 'pid', 'VmRSS MiB'], [
            (n, p, common.fmt(v, 1)) for n, p, v in _stack_worker_rss(state)]))
    return 0


if __name__ == '__main__':
    sys.exit(main())
