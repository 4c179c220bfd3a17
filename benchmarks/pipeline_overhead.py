"""What the compute-api pipeline adds to one Delete Image, in process.

The full Paste application (built as the service builds it, from
``compute_api.conf`` and ``api-paste.ini`` through ``compute_api.deploy``)
is called directly as a WSGI callable, with ``[glance] endpoint_override``
pointing at ``benchmarks.null_glance`` (a loopback HTTP/1.1 server in its
own process that answers every request 204 on a kept-alive connection).
The baseline is the same DELETE sent straight to that server with a
keystoneauth1 session, which reuses its connection the same way. Direct and
pipeline calls are interleaved (alternating which goes first), so drift on
the machine affects both equally.

Variants (each runs in a fresh child process):

``noauth``
    auth_token replaced by a stand-in filter that only sets the identity
    headers and ``keystone.token_auth`` (benchmarks.common.IdentityFilter);
    logging not set up, as in the unit tests.
``noauth-log``
    the same, with logging set up as the WSGI entry point does
    (``deploy.init_application``): one INFO access line per request to a
    file.
``authtoken-memcached`` (needs ``--stack``)
    the real keystonemiddleware auth_token with the stack's
    ``[keystone_authtoken]`` settings; the demo-member token is validated by
    Keystone once (during warm-up) and then served from auth_token's cache
    in the stack's memcached. Logging as in ``noauth-log``.
``authtoken-memory`` (needs ``--stack``)
    the same without ``memcached_servers``: auth_token's in-process cache.

Usage::

    .venv/bin/python -m benchmarks.pipeline_overhead
    .venv/bin/python -m benchmarks.pipeline_overhead \\
        --stack /tmp/bench-stack/stack.json
    .venv/bin/python -m benchmarks.pipeline_overhead --layers
    .venv/bin/python -m benchmarks.pipeline_overhead --profile cprofile

``--layers`` adds, per variant, a separate instrumented pass giving the
time spent in each pipeline layer itself (its own code, not the layers
inside it). ``--profile`` profiles the ``noauth-log`` pipeline (or
``--profile-variant``) and prints the top functions per request and the
cost per package. ``--authtoken-option NAME=VALUE`` sets a
``[keystone_authtoken]`` option in the authtoken variants.

The added cost is reported three ways: difference of the medians, median
of the per-iteration differences, and difference of the median CPU times of
the measuring process (the null Glance runs in another process).
"""

import argparse
import collections
import configparser
import cProfile
import io
import json
import os
import pathlib
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

from benchmarks import common

VARIANTS = ('noauth', 'noauth-log', 'authtoken-memcached',
            'authtoken-memory')
STACK_VARIANTS = ('authtoken-memcached', 'authtoken-memory')
TOKEN_ENV = 'COMPUTE_API_BENCH_TOKEN'  # noqa: S105 (a variable name)
NOVA_ANCHOR_MS = 3.6
TARGET_MS = 0.75


# --------------------------------------------------------------------------
# The application under test (child process)


def _write_config(directory, variant, glance_url, stack_conf,
                  extra_authtoken=None):
    directory = pathlib.Path(directory)
    if variant.startswith('noauth'):
        paste = common.noauth_paste_ini()
    else:
        paste = common.PASTE_INI.read_text()
    (directory / 'api-paste.ini').write_text(paste)
    (directory / 'policy.yaml').write_text('{}\n')
    parser = configparser.ConfigParser(interpolation=None)
    parser['DEFAULT'] = {'debug': 'False',
                         'log_file': str(directory / 'compute-api.log')}
    parser['glance'] = {'endpoint_override': glance_url}
    parser['oslo_policy'] = {'policy_file': 'policy.yaml'}
    if variant in STACK_VARIANTS:
        authtoken = dict(stack_conf['keystone_authtoken'])
        if variant == 'authtoken-memory':
            authtoken.pop('memcached_servers', None)
        authtoken.update(extra_authtoken or {})
        parser['keystone_authtoken'] = authtoken
    with open(directory / 'compute_api.conf', 'w') as f:
        parser.write(f)


def build_app(directory, variant):
    from compute_api import deploy
    if variant == 'noauth':
        # As tests/unit/base.py does: no logging set-up.
        return deploy.loadapp(deploy.load_conf(directory=str(directory)))
    # As compute_api.wsgi.api does: logging set up from the config.
    return deploy.init_application(directory=str(directory))


def _environ_template(token):
    """What gunicorn hands the application for a client's DELETE."""
    environ = {
        'REQUEST_METHOD': 'DELETE',
        'SCRIPT_NAME': '',
        'QUERY_STRING': '',
        'SERVER_NAME': '127.0.0.1',
        'SERVER_PORT': '8774',
        'SERVER_PROTOCOL': 'HTTP/1.1',
        'REMOTE_ADDR': '127.0.0.1',
        'REMOTE_PORT': '50000',
        'RAW_URI': '',
        'CONTENT_LENGTH': '0',
        'HTTP_HOST': '127.0.0.1:8774',
        'HTTP_USER_AGENT': 'compute-api-benchmark keystoneauth1',
        'HTTP_ACCEPT': '*/*',
        'HTTP_ACCEPT_ENCODING': 'gzip, deflate',
        'HTTP_CONNECTION': 'keep-alive',
        'wsgi.version': (1, 0),
        'wsgi.url_scheme': 'http',
        'wsgi.errors': sys.stderr,
        'wsgi.multithread': False,
        'wsgi.multiprocess': True,
        'wsgi.run_once': False,
    }
    if token:
        environ['HTTP_X_AUTH_TOKEN'] = token
    return environ


class PipelineClient:
    """Calls the WSGI app the way a WSGI server does, for one DELETE."""

    def __init__(self, app, token):
        self.app = app
        self.template = _environ_template(token)
        self.status = None

    def _start_response(self, status, headers, exc_info=None):
        self.status = status

    def environ(self, image_id):
        environ = dict(self.template)
        path = f'/v2.1/images/{image_id}'
        environ['PATH_INFO'] = path
        environ['RAW_URI'] = path
        environ['wsgi.input'] = io.BytesIO(b'')
        return environ

    def call(self, environ):
        body = self.app(environ, self._start_response)
        try:
            for _ in body:
                pass
        finally:
            close = getattr(body, 'close', None)
            if close is not None:
                close()
        return self.status


class DirectClient:
    """The same DELETE sent straight to the server with keystoneauth1."""

    def __init__(self, glance_url, token):
        from keystoneauth1 import session as ks_session
        from keystoneauth1 import token_endpoint
        self.session = ks_session.Session()
        self.auth = token_endpoint.Token(None, token)
        self.base = glance_url + '/v2/images/'

    def call(self, image_id):
        resp = self.session.delete(
            self.base + image_id, auth=self.auth, raise_exc=False,
            redirect=False, timeout=10,
            headers={'Accept': 'application/json'})
        return resp.status_code


def _check(status, what):
    if not str(status).startswith('204'):
        raise SystemExit(f'{what} answered {status}, expected 204')


class LayerTimer:
    """Wraps every layer of the pipeline to time its own (self) share.

    Each layer's call into the next one is timed, and so are the HTTP calls
    the router makes (keystoneauth1's ``Session.request``, patched for the
    run; calls made by other layers, such as auth_token's to Keystone, stay
    in those layers). A layer's own time per request is the time inside it
    minus the time inside what it calls. Medians and means are reported.
    """

    GLANCE = 'Glance call (keystoneauth1 Session.request)'

    def __init__(self, app):
        from keystoneauth1 import session as ks_session
        self.names = []
        self.samples = collections.defaultdict(list)
        self._in_router = False
        self._glance = 0.0
        layer = app
        timed = None
        while layer is not None:
            name = type(layer).__name__
            # oslo.middleware and compute-api keep the next app in
            # ``application``; keystonemiddleware's auth_token in ``_app``.
            attr = next((a for a in ('application', '_app')
                         if getattr(layer, a, None) is not None), None)
            self.names.append(name)
            if attr is None:
                break
            inner = getattr(layer, attr)
            timed = _Timed(inner, self, name)
            setattr(layer, attr, timed)
            layer = inner
        if timed is not None:
            timed.marks_router = True
        self.app = _Timed(app, self, None)
        original = ks_session.Session.request
        timer = self

        def request(session, *args, **kwargs):
            if not timer._in_router:
                return original(session, *args, **kwargs)
            start = time.perf_counter()
            try:
                return original(session, *args, **kwargs)
            finally:
                timer._glance += time.perf_counter() - start
        ks_session.Session.request = request

    def per_layer(self):
        """[(layer, median us, mean us)] from outer to inner, then Glance."""
        rows = []
        glance = self.samples[self.GLANCE]
        for i, name in enumerate(self.names):
            inside = self.samples[self.names[i - 1] if i else None]
            if i + 1 < len(self.names):
                nested = self.samples[name]
            else:
                nested = glance
            own = [a - b for a, b in zip(inside, nested, strict=True)]
            rows.append((name, statistics.median(own) * 1e6,
                         statistics.fmean(own) * 1e6))
        rows.append((self.GLANCE, statistics.median(glance) * 1e6,
                     statistics.fmean(glance) * 1e6))
        return rows


class _Timed:
    """Times a call into ``app``, keyed by the layer that calls it."""

    marks_router = False

    def __init__(self, app, timer, caller):
        self.app = app
        self.timer = timer
        self.key = caller

    def __call__(self, environ, start_response):
        timer = self.timer
        if self.marks_router:
            timer._in_router = True
        start = time.perf_counter()
        try:
            return self.app(environ, start_response)
        finally:
            timer.samples[self.key].append(time.perf_counter() - start)
            if self.marks_router:
                timer._in_router = False
            if self.key is None:
                timer.samples[timer.GLANCE].append(timer._glance)
                timer._glance = 0.0


def run_variant(variant, glance_url, stack_conf, token, iterations, warmup,
                time_limit, layers=False, extra_authtoken=None):
    """Measure one variant; returns a JSON-able dict."""
    with tempfile.TemporaryDirectory(prefix='bench-pipeline-') as tmp:
        _write_config(tmp, variant, glance_url, stack_conf, extra_authtoken)
        started = time.perf_counter()
        app = build_app(tmp, variant)
        load_s = time.perf_counter() - started
        pipeline = PipelineClient(app, token)
        direct = DirectClient(glance_url, token)
        first = None
        for i in range(warmup):
            env = pipeline.environ(str(uuid.uuid4()))
            t0 = time.perf_counter()
            _check(pipeline.call(env), 'pipeline (warm-up)')
            if i == 0:
                first = time.perf_counter() - t0
            _check(direct.call(str(uuid.uuid4())), 'direct (warm-up)')
        times_pipeline, times_direct = [], []
        cpu_pipeline, cpu_direct = [], []
        deadline = common.Deadline(time_limit)
        perf = time.perf_counter
        cpu = time.process_time
        for i in range(iterations):
            if deadline.expired():
                break
            env = pipeline.environ(str(uuid.uuid4()))
            image_id = str(uuid.uuid4())
            for which in ((0, 1) if i % 2 else (1, 0)):
                if which:
                    c0, t0 = cpu(), perf()
                    status = pipeline.call(env)
                    times_pipeline.append(perf() - t0)
                    cpu_pipeline.append(cpu() - c0)
                    _check(status, 'pipeline')
                else:
                    c0, t0 = cpu(), perf()
                    status = direct.call(image_id)
                    times_direct.append(perf() - t0)
                    cpu_direct.append(cpu() - c0)
                    _check(status, 'direct')
        paired = [p - d for p, d in zip(times_pipeline, times_direct,
                                        strict=False)]
        result = {
            'variant': variant,
            'pipeline': common.summarize(times_pipeline),
            'direct': common.summarize(times_direct),
            'paired_ms': statistics.median(paired) * 1000,
            # CPU time of this process (the null Glance runs elsewhere):
            # less sensitive to the machine's other load than wall time.
            'cpu_pipeline_ms': statistics.median(cpu_pipeline) * 1000,
            'cpu_direct_ms': statistics.median(cpu_direct) * 1000,
            'load_s': load_s,
            'first_call_ms': (first or 0) * 1000,
        }
        if layers:
            # A separate, instrumented pass: the figures above are not.
            timer = LayerTimer(app)
            pipeline.app = timer.app
            deadline = common.Deadline(time_limit / 2)
            for _ in range(min(iterations, 1000)):
                if deadline.expired():
                    break
                _check(pipeline.call(pipeline.environ(str(uuid.uuid4()))),
                       'pipeline (layers)')
            result['layers'] = timer.per_layer()
        return result


def profile_variant(variant, glance_url, stack_conf, token, iterations,
                    warmup, profiler, top, extra_authtoken=None):
    """Profile ``iterations`` pipeline calls; returns printable text."""
    with tempfile.TemporaryDirectory(prefix='bench-profile-') as tmp:
        _write_config(tmp, variant, glance_url, stack_conf, extra_authtoken)
        app = build_app(tmp, variant)
        pipeline = PipelineClient(app, token)
        for _ in range(warmup):
            _check(pipeline.call(pipeline.environ(str(uuid.uuid4()))),
                   'pipeline (warm-up)')
        environs = [pipeline.environ(str(uuid.uuid4()))
                    for _ in range(iterations)]
        if profiler == 'pyinstrument':
            import pyinstrument
            prof = pyinstrument.Profiler(interval=0.0005)
            prof.start()
            for env in environs:
                pipeline.call(env)
            prof.stop()
            return prof.output_text(unicode=False, color=False,
                                    show_all=False)
        prof = cProfile.Profile()
        prof.enable()
        for env in environs:
            pipeline.call(env)
        prof.disable()
        return format_cprofile(prof, iterations, top)


def _package(filename):
    """The package a profiled function belongs to, for grouping."""
    if filename.startswith('~') or filename.startswith('<'):
        return '(built-in / C)'
    path = pathlib.Path(filename)
    parts = path.parts
    if 'site-packages' in parts:
        return parts[parts.index('site-packages') + 1].removesuffix('.py')
    if 'compute_api' in parts:
        return 'compute_api'
    if 'benchmarks' in parts:
        return 'benchmarks'
    stem = path.stem if path.parent.name.startswith('python3') else \
        path.parent.name
    return f'stdlib:{stem}'


def format_cprofile(prof, calls, top):
    stats = pstats.Stats(prof)
    total = stats.total_tt
    entries = []
    by_package = collections.defaultdict(float)
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in \
            stats.stats.items():
        short = (f'{pathlib.Path(filename).name}:{line}({func})'
                 if not filename.startswith('~') else func)
        pkg = _package(filename)
        by_package[pkg] += tt
        entries.append((tt, ct, nc, pkg, short))
    out = [f'cProfile of {calls} pipeline calls: {total / calls * 1e6:.0f} '
           f'us per request under the profiler (the profiler itself '
           f'inflates this; use the shares, not the absolute figures).', '']
    rows = [(pkg, common.fmt(tt / calls * 1e6, 1),
             common.fmt(100 * tt / total, 1))
            for pkg, tt in sorted(by_package.items(), key=lambda kv: -kv[1])]
    out.append('Own time by package, per request:')
    out.append(common.table(['package', 'us/request', '%'], rows[:top]))
    out.append('')
    out.append(f'Top {top} functions by own time, per request:')
    rows = [(short[:70], common.fmt(nc / calls, 1),
             common.fmt(tt / calls * 1e6, 1), common.fmt(ct / calls * 1e6, 1),
             common.fmt(100 * tt / total, 1))
            for tt, ct, nc, _pkg, short in sorted(entries, reverse=True)[:top]]
    out.append(common.table(
        ['function', 'calls/req', 'own us', 'cum us', 'own %'], rows))
    out.append('')
    out.append(f'Top {top} functions by cumulative time, per request:')
    rows = [(short[:70], common.fmt(nc / calls, 1),
             common.fmt(ct / calls * 1e6, 1),
             common.fmt(100 * ct / total, 1))
            for tt, ct, nc, _pkg, short in sorted(
                entries, key=lambda e: -e[1])[:top]]
    out.append(common.table(['function', 'calls/req', 'cum us', 'cum %'],
                            rows))
    return '\n'.join(out)


# --------------------------------------------------------------------------
# Orchestration (parent process)


def _stack_inputs(stack_path):
    from tests import stack
    state = stack.load_state(stack_path)
    conf_path = pathlib.Path(state['compute_config_dir']) / 'compute_api.conf'
    sections = stack.read_ini(conf_path)
    token = stack.get_session(state, 'demo-member').get_token()
    return sections, token


def _run_child(args, variant, glance_url, token, mode):
    argv = [sys.executable, '-m', 'benchmarks.pipeline_overhead',
            '--child', variant, '--glance-url', glance_url,
            '--iterations', str(args.iterations),
            '--warmup', str(args.warmup),
            '--time-limit', str(args.time_limit), '--mode', mode,
            '--profiler', args.profile or 'cprofile', '--top', str(args.top)]
    if args.stack:
        argv += ['--stack', args.stack]
    for option in args.authtoken_option:
        argv += ['--authtoken-option', option]
    if args.layers:
        argv.append('--layers')
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [str(common.REPO), env.get('PYTHONPATH', '')]).rstrip(os.pathsep)
    if token:
        env[TOKEN_ENV] = token
    proc = subprocess.run(argv, env=env, cwd=str(common.REPO),
                          capture_output=True, text=True,
                          timeout=args.time_limit * 3 + 120, check=False)
    if proc.returncode:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f'variant {variant} failed '
                         f'(exit {proc.returncode})')
    return proc.stdout


def _report(results):
    rows = []
    for r in results:
        p, d = r['pipeline'], r['direct']
        for label, s in (('pipeline', p), ('direct', d)):
            rows.append((r['variant'] if label == 'pipeline' else '',
                         label, s['n'], common.fmt(s['median']),
                         common.fmt(s['p90']), common.fmt(s['p99'])))
    print(common.table(['variant', 'path', 'n', 'median ms', 'p90 ms',
                        'p99 ms'], rows))
    print()
    rows = []
    for r in results:
        p, d = r['pipeline'], r['direct']
        added = p['median'] - d['median']
        target = ''
        if r['variant'].startswith('noauth'):
            target = 'met' if added <= TARGET_MS else 'NOT met'
        rows.append((r['variant'], common.fmt(added),
                     common.fmt(r['paired_ms']),
                     common.fmt(r['cpu_pipeline_ms'] - r['cpu_direct_ms']),
                     common.fmt(p['p90'] - d['p90']),
                     common.fmt(p['p99'] - d['p99']),
                     common.fmt(p['median'] / d['median'], 2) + 'x',
                     common.fmt(r['first_call_ms'], 1),
                     target))
    print(common.table(['variant', 'added median ms', 'paired median ms',
                        'added CPU ms',
                        'added p90 ms',
                        'added p99 ms', 'ratio (median)', 'first call ms',
                        f'<= {TARGET_MS} ms'], rows))
    print('(added = difference of the medians; paired = median of the '
          'per-iteration differences, less sensitive to drift; added CPU = '
          'difference of the median CPU times of this process per call, '
          'less sensitive to the machine\'s other load.)')
    print(f'\nAnchor: Nova\'s pipeline adds about {NOVA_ANCHOR_MS} ms; target'
          f' without auth_token: added median <= {TARGET_MS} ms.')
    for r in results:
        if 'layers' in r:
            print(f'\nOwn time per layer, {r["variant"]} (outer to inner; '
                  'the Glance call on its own line):')
            print(common.table(['layer', 'median us', 'mean us'],
                               [(n, common.fmt(med, 1), common.fmt(mean, 1))
                                for n, med, mean in r['layers']]))


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='In-process cost of the compute-api pipeline per '
                    'Delete Image, against a direct keystoneauth1 call.')
    parser.add_argument('--stack', help='stack.json of a running stack '
                        '(python -m tests.stack up): adds the auth_token '
                        'variants')
    parser.add_argument('--variants', nargs='+', choices=VARIANTS,
                        help='default: the noauth variants, and the '
                             'authtoken ones with --stack')
    parser.add_argument('--iterations', type=int, default=2000)
    parser.add_argument('--warmup', type=int, default=200)
    parser.add_argument('--time-limit', type=float, default=25.0,
                        help='seconds of measurement per variant at most')
    parser.add_argument('--layers', action='store_true',
                        help='also time each pipeline layer')
    parser.add_argument('--profile', choices=('cprofile', 'pyinstrument'),
                        help='profile instead of measuring')
    parser.add_argument('--profile-variant', choices=VARIANTS,
                        default='noauth-log')
    parser.add_argument('--top', type=int, default=25)
    parser.add_argument('--authtoken-option', action='append', default=[],
                        metavar='NAME=VALUE',
                        help='authtoken variants: set a [keystone_authtoken] '
                             'option (repeatable), e.g. '
                             'memcache_use_advanced_pool=False')
    parser.add_argument('--json', help='also write the results here')
    # Internal: one variant in a child process.
    parser.add_argument('--child', choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument('--glance-url', help=argparse.SUPPRESS)
    parser.add_argument('--mode', default='measure', help=argparse.SUPPRESS)
    parser.add_argument('--profiler', default='cprofile',
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.time_limit <= 0:
        parser.error('--iterations and --time-limit must be positive')

    if args.child:
        stack_conf = None
        if args.child in STACK_VARIANTS:
            from tests import stack
            state = stack.load_state(args.stack)
            stack_conf = stack.read_ini(
                pathlib.Path(state['compute_config_dir']) /
                'compute_api.conf')
        token = os.environ.get(TOKEN_ENV, common.BENCH_TOKEN)
        extra = dict(o.split('=', 1) for o in args.authtoken_option)
        if args.mode == 'profile':
            print(profile_variant(args.child, args.glance_url, stack_conf,
                                  token, args.iterations, args.warmup,
                                  args.profiler, args.top, extra))
        else:
            print(json.dumps(run_variant(
                args.child, args.glance_url, stack_conf, token,
                args.iterations, args.warmup, args.time_limit,
                args.layers, extra)))
        return 0

    variants = args.variants or (
        VARIANTS if args.stack else VARIANTS[:2])
    if any(v in STACK_VARIANTS for v in variants) and not args.stack:
        parser.error('the authtoken variants need --stack DIR/stack.json')
    if any('=' not in o for o in args.authtoken_option):
        parser.error('--authtoken-option takes NAME=VALUE')
    token = None
    if args.stack:
        _stack_conf, token = _stack_inputs(args.stack)
    print(f'Machine: {common.machine()}')
    print(f'Source: {common.source_revision()}')
    with common.NullGlance() as glance_url:
        if args.profile:
            variant = args.profile_variant
            print(f'Profiling variant {variant} with {args.profile}, '
                  f'{args.iterations} calls.\n')
            print(_run_child(args, variant, glance_url,
                             token if variant in STACK_VARIANTS else None,
                             'profile'))
            return 0
        print(f'{args.iterations} interleaved deletes per path and variant '
              f'(after {args.warmup} warm-up), at most {args.time_limit:.0f}'
              f' s each; null Glance at {glance_url}.\n')
        results = []
        for variant in variants:
            out = _run_child(args, variant, glance_url,
                             token if variant in STACK_VARIANTS else None,
                             'measure')
            results.append(json.loads(out.strip().splitlines()[-1]))
    _report(results)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
