"""The machinery the benchmark scripts share.

The scripts say what is measured and how it is reported; what they have in
common is here, in this order:

* the stand-ins: the identity filter (benchmarks.identity_filter; the
  pipeline with it, ``noauth_paste_ini``) in place of keystonemiddleware's
  auth_token, and ``NullGlance`` (benchmarks.null_glance), a 204-only
  server;
* output: statistics (``summarize``), plain-text tables, the machine and the
  commit measured;
* processes: CPU time and memory from ``/proc``, and ``run_child`` (each
  in-process variant runs in a fresh interpreter);
* in process: the application (``write_app_config``, ``build_app``), the
  WSGI client that calls it as a server does (``PipelineClient``), the
  direct keystoneauth1 client (``DirectClient``), the interleaved measuring
  loop (``interleaved``), the time of each layer (``time_layers``) and
  profiles (``profile_calls``);
* over HTTP on a stack: the images to delete, the delete phases (one client
  going round the paths, or blocks of concurrent clients) and their tables;
  a failed delete is counted apart (``PathResult``), never in the
  latencies, the throughput or the pictures;
* dedicated compute-api instances (``start_instance``) under gunicorn (sync
  or gthread) or uWSGI, each with an optional ``Probe`` that sums the CPU
  time its workers spend inside the WSGI application.

The probe (benchmarks.cpu_probe), the identity stand-in and the null Glance
are modules of their own because they run in other processes: the WSGI
servers and the services measured.
"""

import collections
import configparser
import io
import json
import os
import pathlib
import platform
import select
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from keystoneauth1 import token_endpoint

# The stand-in's identity, for the scripts.
from benchmarks.identity_filter import BENCH_PROJECT  # noqa: F401
from benchmarks.identity_filter import BENCH_TOKEN  # noqa: F401
from benchmarks.identity_filter import BENCH_USER  # noqa: F401

REPO = pathlib.Path(__file__).resolve().parents[1]
PASTE_INI = REPO / 'etc' / 'compute_api' / 'api-paste.ini'
AUTHTOKEN_FACTORY = 'compute_api.middleware.factories:authtoken'
IDENTITY_FACTORY = 'benchmarks.identity_filter:filter_factory'

SERVERS = ('gunicorn-sync', 'gunicorn-gthread', 'uwsgi')
GTHREADS = 4
KEEPALIVE = 5
# After the last response, before reading CPU counters: the worker still
# closes the response (and the probe counts it) after the client has it.
SETTLE_S = 0.3


# --------------------------------------------------------------------------
# The stand-ins


def noauth_paste_ini():
    """The production Paste file with auth_token replaced by the stand-in.

    Everything else (order, filters, factories) is the shipped pipeline.
    """
    text = PASTE_INI.read_text()
    if AUTHTOKEN_FACTORY not in text:
        raise SystemExit(f'{PASTE_INI} no longer names {AUTHTOKEN_FACTORY};'
                         ' update benchmarks/harness.py')
    return text.replace(AUTHTOKEN_FACTORY, IDENTITY_FACTORY)


def repo_env(**extra):
    """This process's environment, the repository first on PYTHONPATH."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [str(REPO), env.get('PYTHONPATH', '')]).rstrip(os.pathsep)
    env.update(extra)
    return env


class NullGlance:
    """``with NullGlance() as url:`` -- a 204-only HTTP server on loopback.

    ``benchmarks.null_glance`` in its own process, so that it never competes
    for the GIL with what is measured.
    """

    def __init__(self, max_seconds=900, close=False):
        self.max_seconds = max_seconds
        self.close = close
        self.proc = None
        # connections the null Glance accepted, known once it has stopped
        self.connections = None

    def __enter__(self):
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'benchmarks.null_glance',
             '--max-seconds', str(self.max_seconds),
             *(['--close'] if self.close else [])],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=repo_env(),
            cwd=str(REPO), text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        line = self.proc.stdout.readline() if ready else ''
        if not line.startswith('PORT '):
            self.__exit__(None, None, None)
            raise RuntimeError('the null Glance server did not start')
        return f'http://127.0.0.1:{int(line.split()[1])}'

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc is not None:
            for line in self.proc.stdout:
                if line.startswith('CONNECTIONS '):
                    self.connections = int(line.split()[1])
            self.proc.stdout.close()
        return False


# --------------------------------------------------------------------------
# Output


def summarize(samples_s):
    """median, p90, p99, mean, min (milliseconds) and n of durations."""
    data = sorted(samples_s)
    if len(data) < 2:
        value = data[0] * 1000 if data else float('nan')
        return {'n': len(data), 'median': value, 'p90': value,
                'p99': value, 'mean': value, 'min': value}
    cuts = statistics.quantiles(data, n=100, method='inclusive')
    return {
        'n': len(data),
        'median': statistics.median(data) * 1000,
        'p90': cuts[89] * 1000,
        'p99': cuts[98] * 1000,
        'mean': statistics.fmean(data) * 1000,
        'min': data[0] * 1000,
    }


def table(headers, rows):
    """A plain-text table (also valid reStructuredText simple table)."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    rule = '  '.join('=' * w for w in widths)

    def line(values):
        return '  '.join(v.rjust(w) if i else v.ljust(w)
                         for i, (v, w) in enumerate(zip(values, widths,
                                                        strict=True)))
    out = [rule, line(headers), rule]
    out += [line(r) for r in cells]
    out.append(rule)
    return '\n'.join(out)


def fmt(value, digits=3):
    return f'{value:.{digits}f}'


def per_delete(seconds, deletes):
    """Milliseconds per delete, formatted."""
    return fmt(seconds * 1000 / max(1, deletes), 2)


def machine():
    """One line describing the machine and interpreter."""
    model = 'unknown CPU'
    try:
        for text in pathlib.Path('/proc/cpuinfo').read_text().splitlines():
            if text.startswith('model name'):
                model = text.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    return (f'{os.cpu_count()} CPUs ({model}), Python '
            f'{platform.python_version()}, {platform.system()} '
            f'{platform.release()}; load average {load_average()}')


def load_average():
    return ' '.join(f'{x:.2f}' for x in os.getloadavg())


def source_revision():
    """The commit measured, and whether the service's files differ from it."""
    def git(*args):
        return subprocess.run(
            ['git', *args], cwd=str(REPO), capture_output=True, text=True,
            check=False).stdout.strip()
    head = git('rev-parse', '--short', 'HEAD') or 'unknown'
    dirty = git('status', '--porcelain', '--', 'compute_api', 'etc')
    return head + (' + uncommitted changes in compute_api/ or etc/'
                   if dirty else '')


def print_header():
    """The machine and the commit, printed before any figure."""
    print(f'Machine: {machine()}')
    print(f'Source: {source_revision()}')


class Deadline:
    """A time bound: ``expired()`` once ``seconds`` have passed."""

    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def expired(self):
        return time.monotonic() >= self.end

    def left(self):
        return max(0.0, self.end - time.monotonic())


def parse_overrides(items):
    """``['section.name=value', ...]`` -> ``{section: {name: value}}``.

    Raises ValueError on a malformed item.
    """
    overrides = {}
    for item in items:
        key, sep, value = item.partition('=')
        section, dot, name = key.partition('.')
        if not (sep and dot and section and name):
            raise ValueError(f'{item!r} is not SECTION.NAME=VALUE')
        overrides.setdefault(section, {})[name] = value
    return overrides


# --------------------------------------------------------------------------
# Processes


def cpu_seconds(pids):
    """CPU time used so far by ``pids`` (all their threads), in seconds.

    From ``/proc/<pid>/task/<tid>/schedstat`` (nanoseconds: the clock of
    ``time.thread_time``); where the kernel has no schedstat, from
    ``/proc/<pid>/stat`` in clock ticks (usually 10 ms: use it over many
    requests). Threads and processes that have ended count as zero.
    """
    total = 0.0
    for pid in pids:
        try:
            tids = os.listdir(f'/proc/{pid}/task')
        except OSError:
            continue
        for tid in tids:
            try:
                total += int(pathlib.Path(
                    f'/proc/{pid}/task/{tid}/schedstat').read_text().split()[
                        0]) / 1e9
            except FileNotFoundError:
                return _stat_seconds(pids)
            except (OSError, ValueError, IndexError):
                continue
    return total


def _stat_seconds(pids):
    ticks = 0
    for pid in pids:
        try:
            fields = pathlib.Path(f'/proc/{pid}/stat').read_text().rsplit(
                ')', 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf('SC_CLK_TCK')


def proc_status(pid, keys=('VmRSS', 'VmHWM', 'RssAnon', 'RssFile')):
    """Memory fields of /proc/<pid>/status, in MiB."""
    values = {}
    for line in pathlib.Path(f'/proc/{pid}/status').read_text().splitlines():
        key, _, rest = line.partition(':')
        if key in keys:
            values[key] = int(rest.split()[0]) / 1024
    return values


def run_child(module, argv, what, timeout, **env):
    """``python -m module *argv`` from the repository; returns its stdout.

    Exits (with the end of its standard error) if the child fails.
    """
    proc = subprocess.run([sys.executable, '-m', module, *argv],
                          env=repo_env(**env), cwd=str(REPO),
                          capture_output=True, text=True, timeout=timeout,
                          check=False)
    if proc.returncode:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f'{what} failed (exit {proc.returncode})')
    return proc.stdout


# --------------------------------------------------------------------------
# In process: the application, its clients, the measuring loop


def write_app_config(directory, glance_url, authtoken=None):
    """compute_api.conf, api-paste.ini and policy.yaml in ``directory``.

    Glance is ``glance_url``; with ``authtoken`` (the options of
    ``[keystone_authtoken]``) the shipped pipeline, without it the
    identity stand-in in place of auth_token.
    """
    directory = pathlib.Path(directory)
    paste = noauth_paste_ini() if authtoken is None else \
        PASTE_INI.read_text()
    (directory / 'api-paste.ini').write_text(paste)
    (directory / 'policy.yaml').write_text('{}\n')
    parser = configparser.ConfigParser(interpolation=None)
    parser['DEFAULT'] = {'debug': 'False',
                         'log_file': str(directory / 'compute-api.log')}
    parser['glance'] = {'endpoint_override': glance_url}
    parser['oslo_policy'] = {'policy_file': 'policy.yaml'}
    if authtoken is not None:
        parser['keystone_authtoken'] = authtoken
    with open(directory / 'compute_api.conf', 'w') as f:
        parser.write(f)


def build_app(directory, logging=True):
    """The application as the WSGI entry point builds it (logging set up
    from the configuration), or, without ``logging``, as the unit tests
    do."""
    from compute_api import deploy
    if not logging:
        return deploy.loadapp(deploy.load_conf(directory=str(directory)))
    return deploy.init_application(directory=str(directory))


def environ_template(token):
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
    """Calls a WSGI application the way a WSGI server does, for one DELETE.

    ``prepare()`` builds the environ of a new image id (not timed);
    ``call(environ)`` runs the application, iterates and closes its
    response, and answers the status line.
    """

    def __init__(self, app, token):
        self.app = app
        self.template = environ_template(token)
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

    def prepare(self):
        return self.environ(str(uuid.uuid4()))

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
    """The same DELETE sent straight to Glance with a keystoneauth1 session
    (which keeps its connection alive); ``prepare()`` is a new image id."""

    def __init__(self, glance_url, token):
        from keystoneauth1 import session as ks_session
        self.session = ks_session.Session()
        self.auth = token_endpoint.Token(None, token)
        self.base = glance_url + '/v2/images/'

    def prepare(self):
        return str(uuid.uuid4())

    def call(self, image_id):
        resp = self.session.delete(
            self.base + image_id, auth=self.auth, raise_exc=False,
            redirect=False, timeout=10,
            headers={'Accept': 'application/json'})
        return resp.status_code


def check(status, what):
    if not str(status).startswith('204'):
        raise SystemExit(f'{what} answered {status}, expected 204')


def rotate(names, i):
    """``names`` starting at the ``i``-th (modulo), for round ``i``."""
    k = i % len(names)
    return names[k:] + names[:k]


def interleaved(clients, iterations, warmup, time_limit):
    """Call each client once a round, rotating which goes first.

    ``clients`` maps names to objects with ``prepare()`` (not timed) and
    ``call(prepared)``, which must answer 204. After ``warmup`` rounds, at
    most ``iterations`` rounds within ``time_limit`` seconds. Returns
    ``{'wall': {name: [s]}, 'cpu': {name: [s]}, 'first': {name: s}}``: the
    wall and CPU time (of this process) of each call, and the time of the
    first warm-up call.
    """
    names = list(clients)
    first = {}
    for i in range(warmup):
        for name in names:
            prepared = clients[name].prepare()
            t0 = time.perf_counter()
            check(clients[name].call(prepared), f'{name} (warm-up)')
            if i == 0:
                first[name] = time.perf_counter() - t0
    wall = {name: [] for name in names}
    cpu = {name: [] for name in names}
    perf, process = time.perf_counter, time.process_time
    deadline = Deadline(time_limit)
    for i in range(iterations):
        if deadline.expired():
            break
        prepared = {name: clients[name].prepare() for name in names}
        for name in rotate(names, i):
            c0, t0 = process(), perf()
            status = clients[name].call(prepared[name])
            wall[name].append(perf() - t0)
            cpu[name].append(process() - c0)
            check(status, name)
    return {'wall': wall, 'cpu': cpu, 'first': first}


def time_layers(client, iterations, time_limit):
    """A separate, instrumented pass: each layer's own time per request.

    Returns ``LayerTimer.per_layer()``; ``client`` keeps the instrumented
    application.
    """
    timer = LayerTimer(client.app)
    client.app = timer.app
    deadline = Deadline(time_limit)
    for _ in range(iterations):
        if deadline.expired():
            break
        check(client.call(client.prepare()), 'pipeline (layers)')
    return timer.per_layer()


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


def profile_calls(client, iterations, warmup, profiler, top):
    """Profile ``iterations`` calls of ``client``; returns printable text."""
    for _ in range(warmup):
        check(client.call(client.prepare()), 'pipeline (warm-up)')
    prepared = [client.prepare() for _ in range(iterations)]
    if profiler == 'pyinstrument':
        import pyinstrument
        prof = pyinstrument.Profiler(interval=0.0005)
        prof.start()
        for item in prepared:
            client.call(item)
        prof.stop()
        return prof.output_text(unicode=False, color=False, show_all=False)
    import cProfile
    prof = cProfile.Profile()
    prof.enable()
    for item in prepared:
        client.call(item)
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
    import pstats
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

    def us(value):
        return fmt(value / calls * 1e6, 1)

    def share(value):
        return fmt(100 * value / total, 1)

    out = [f'cProfile of {calls} pipeline calls: {total / calls * 1e6:.0f} '
           f'us per request under the profiler (the profiler itself '
           f'inflates this; use the shares, not the absolute figures).', '',
           'Own time by package, per request:',
           table(['package', 'us/request', '%'], [
               (pkg, us(tt), share(tt)) for pkg, tt in sorted(
                   by_package.items(), key=lambda kv: -kv[1])][:top]), '',
           f'Top {top} functions by own time, per request:',
           table(['function', 'calls/req', 'own us', 'cum us', 'own %'], [
               (short[:70], fmt(nc / calls, 1), us(tt), us(ct), share(tt))
               for tt, ct, nc, _pkg, short in sorted(entries,
                                                     reverse=True)[:top]]),
           '', f'Top {top} functions by cumulative time, per request:',
           table(['function', 'calls/req', 'cum us', 'cum %'], [
               (short[:70], fmt(nc / calls, 1), us(ct), share(ct))
               for _tt, ct, nc, _pkg, short in sorted(
                   entries, key=lambda e: -e[1])[:top]])]
    return '\n'.join(out)


# --------------------------------------------------------------------------
# Over HTTP on a stack: images, delete phases, tables


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
    deadline = Deadline(time_limit)

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
            for name in rotate(names, i):
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
              for name in rotate(names, n)]
    for i, (name, batch) in enumerate(rounds):
        done = set(run_phase(results[name], prefixes[name], batch, level,
                             token,
                             max(5.0, deadline.left() / (len(rounds) - i))))
        leftovers += [x for x in batch if x not in done]
    return results, leftovers


def create_images(state, token, count, threads=4, deadline=None):
    """Create ``count`` queued images in Glance; returns their ids."""
    import concurrent.futures

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
    deadline = Deadline(60)
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
            deadline = Deadline(args.time_limit)
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


def print_latencies(all_results, labels):
    """The latency table of ``measure_levels``' results (``labels``:
    ``{path: label}``, in order), then a line per path that had failures:
    its statuses and the first failure's text."""
    rows, failures = [], []
    for level, result in all_results.items():
        for i, (name, label) in enumerate(labels.items()):
            r = result['paths'][name]
            s = summarize(r.latencies)
            rows.append((level if i == 0 else '', label, s['n'], r.errors,
                         fmt(s['median'], 2), fmt(s['p90'], 2),
                         fmt(s['p99'], 2), fmt(r.throughput(), 1)))
            if r.errors:
                failures.append(
                    f'concurrency {level}, {label}: {r.errors} failed '
                    f'(statuses {dict(r.statuses)}); first: {r.first_error}')
    print(table(['concurrency', 'path', 'n', 'errors', 'median ms',
                 'p90 ms', 'p99 ms', 'deletes/s'], rows))
    print('(n, latencies and throughput: successful deletes only; '
          'errors: the others.)')
    for line in failures:
        print(line)


def print_cpu_split(all_results, labels):
    """Where each probed instance's CPU per delete goes (``labels``:
    ``{path: label}`` of instances measured with a ``Probe``)."""
    rows = []
    for level, result in all_results.items():
        for name, label in labels.items():
            c = result['counters']
            deletes = result['paths'][name].done
            app = c[f'{name} app']
            rest = c[f'{name} cpu'] - app
            master = c[f'{name} master']
            rows.append((level, label, deletes,
                         int(c[f'{name} app requests']),
                         per_delete(c[f'{name} cpu'], deletes),
                         per_delete(app, deletes), per_delete(rest, deletes),
                         per_delete(master, deletes),
                         per_delete(rest - master, deletes),
                         fmt(100 * app / (c[f'{name} cpu'] or 1), 1) + ' %'))
    print(table(['concurrency', 'server', 'deletes', 'app calls',
                 'process CPU ms/delete', 'app ms/delete',
                 'server (rest) ms/delete', 'of which master ms',
                 'of which workers ms', 'app share'], rows))
    print('(process: all the server\'s processes and threads, from /proc; '
          'app: thread CPU time inside the WSGI callable (the application '
          'call, iterating and closing its response; start_response left '
          'out), summed in each worker by a probe; rest = process - app: '
          'the server\'s accept, parsing and writing, its master, idle '
          'loops and the application\'s other threads. app calls: requests '
          'the probe counted over the deletes.)')


# --------------------------------------------------------------------------
# Dedicated compute-api instances


class Instance:
    """A compute-api started for a run; ``stop()`` it."""

    def __init__(self, name, pid, url, probe=None):
        self.name = name
        self.pid = pid
        self.url = url
        self.probe = probe

    def counters(self, key):
        """CPU seconds so far: ``'<key> cpu'`` (all processes), ``'<key>
        master'``, and with a probe ``'<key> app'`` and ``'<key> app
        requests'``."""
        values = process_counters(key, self.pid)
        if self.probe is not None:
            requests, seconds = self.probe.totals()
            values[f'{key} app'] = seconds
            values[f'{key} app requests'] = requests
        return values

    def worker(self, timeout=10):
        """The first worker process (waiting for one to start)."""
        from tests import stack
        deadline = Deadline(timeout)
        while not deadline.expired():
            workers = stack.children(self.pid)
            if workers:
                return workers[0]
            time.sleep(0.1)
        raise SystemExit(f'{self.name} ({self.pid}) has no worker')

    def stop(self):
        from tests import stack
        try:
            stack.stop_process(self.pid)
        finally:
            if self.probe is not None:
                self.probe.close()


def process_counters(key, master):
    """``'<key> cpu'``: CPU seconds of ``master`` and its children so far;
    ``'<key> master'``: of ``master`` alone."""
    from tests import stack
    return {f'{key} cpu': cpu_seconds([master, *stack.children(master)]),
            f'{key} master': cpu_seconds([master])}


def start_instance(state, server, workers, name=None, overrides=None,
                   probe=False):
    """Start a compute-api with the stack's configuration under ``server``
    (one of ``SERVERS``) from the service's runtime environment.

    gunicorn runs the shipped example (``gthread``: ``GTHREADS`` threads,
    ``KEEPALIVE``), uWSGI the shipped ``uwsgi.ini.example``, with only the
    port, the worker count, the logs and the places changed.
    ``overrides``: ``{section: {option: value}}`` for its
    compute_api.conf. With ``probe`` the server loads the application
    through a ``Probe`` (in a temporary directory of its own, never the
    repository: compute_api is still imported from the service's
    environment).
    """
    from tests import stack
    name = name or f'bench-{server}'
    workdir = pathlib.Path(state['workdir'])
    config_dir = workdir / name
    sections = stack.read_ini(pathlib.Path(state['compute_config_dir'])
                              / 'compute_api.conf')
    sections['DEFAULT']['log_file'] = str(workdir / 'logs' / f'{name}-app.log')
    for section, options in (overrides or {}).items():
        sections.setdefault(section, {}).update(options)
    stack.write_compute_config(config_dir, sections)
    port = stack.free_ports(1)[0]
    the_probe = Probe() if probe else None
    extra = {}
    if server == 'gunicorn-gthread':
        extra.update(worker_class='gthread', threads=GTHREADS,
                     keepalive=KEEPALIVE)
    if the_probe is not None:
        if server == 'uwsgi':
            extra.update({'module': the_probe.app,
                          'pythonpath': str(the_probe.directory)})
        else:
            extra.update(wsgi_app=the_probe.app,
                         pythonpath=str(the_probe.directory))
    try:
        pid = stack.start_compute_server(
            'uwsgi' if server == 'uwsgi' else 'gunicorn', name, config_dir,
            port=port, workers=workers, workdir=workdir, extra=extra)
        instance = Instance(name, pid, f'http://127.0.0.1:{port}', the_probe)
        wait_or_stop(instance, workdir / 'logs' / f'{name}.log')
    except BaseException:
        if the_probe is not None:
            the_probe.close()
        raise
    return instance


def start_noauth_instance(workdir, glance_url, name, workers=1):
    """gunicorn from this environment on the production pipeline with the
    identity stand-in (so the repository is on its path), Glance at
    ``glance_url``; ``workdir`` is a fresh directory."""
    from tests import stack
    workdir = pathlib.Path(workdir)
    (workdir / 'logs').mkdir(exist_ok=True)
    config_dir = workdir / 'compute'
    config_dir.mkdir(exist_ok=True)
    write_app_config(config_dir, glance_url)
    port = stack.free_ports(1)[0]
    stack.write_gunicorn_conf(config_dir / 'gunicorn.conf.py',
                              app=stack.COMPUTE_APP, port=port,
                              workers=workers, log_name=name,
                              workdir=workdir)
    pid = stack.start_gunicorn(
        name, config_dir / 'gunicorn.conf.py', workdir,
        {stack.COMPUTE_CONFIG_ENV: str(config_dir),
         'PYTHONPATH': str(REPO)})
    instance = Instance(name, pid, f'http://127.0.0.1:{port}')
    wait_or_stop(instance, workdir / 'logs' / f'{name}.log')
    return instance


def wait_or_stop(instance, log):
    """Wait until ``instance`` answers; stop it if it does not."""
    from tests import stack
    try:
        stack.wait_http(instance.name, instance.url + '/', instance.pid, log,
                        stack.COMPUTE_START_TIMEOUT)
    except BaseException:
        stack.stop_process(instance.pid)
        raise


class Probe:
    """Thread CPU time spent inside compute-api's WSGI application, per
    worker of a server.

    Copies ``benchmarks/cpu_probe.py`` into a new temporary directory; a
    server that has that directory on its path and loads ``app`` serves the
    application through it. ``totals()`` sums what the workers counted so
    far; ``close()`` removes the directory.
    """

    MODULE = 'bench_cpu_probe'
    RECORD = struct.Struct('<qd')  # as cpu_probe writes it

    def __init__(self):
        self.directory = pathlib.Path(tempfile.mkdtemp(prefix='bench-probe-'))
        shutil.copyfile(pathlib.Path(__file__).with_name('cpu_probe.py'),
                        self.directory / f'{self.MODULE}.py')
        self.app = f'{self.MODULE}:application'

    def totals(self):
        """``(requests, seconds)`` counted so far by all the workers."""
        requests, seconds = 0, 0.0
        for path in self.directory.glob('app-*.bin'):
            data = path.read_bytes()
            if len(data) >= self.RECORD.size:
                n, s = self.RECORD.unpack_from(data)
                requests += n
                seconds += s
        return requests, seconds

    def origins(self):
        """Where the workers imported the application's package from."""
        return sorted({p.read_text() for p in
                       self.directory.glob('origin-*.txt')})

    def close(self):
        shutil.rmtree(self.directory, ignore_errors=True)


def check_origins(instances):
    """Exit if a probed instance imported compute_api from the repository
    rather than the service's environment; else the places, one line."""
    from tests import stack
    places = sorted({o for i in instances if i.probe
                     for o in i.probe.origins()})
    if any(not pathlib.Path(p).is_relative_to(stack.SERVICE_VENV)
           for p in places):
        raise SystemExit('compute_api was not imported from the service\'s '
                         f'environment {stack.SERVICE_VENV}: {places}')
    return ', '.join(places)


def write_json(path, all_results):
    """``measure_levels``' results as JSON."""
    pathlib.Path(path).write_text(json.dumps({
        str(level): {'paths': {k: r.as_json()
                               for k, r in result['paths'].items()},
                     'counters': result['counters']}
        for level, result in all_results.items()}))


# --------------------------------------------------------------------------
# Pictures


def drawing_unavailable():
    """Why ``draw_cdfs`` cannot draw (matplotlib neither here nor in the
    tools' environment), or None when it can."""
    try:
        import matplotlib  # noqa: F401
        return None
    except ImportError:
        pass
    python = REPO / '.venv' / 'bin' / 'python'
    if python.exists() and subprocess.run(
            [str(python), '-c', 'import matplotlib'],
            capture_output=True).returncode == 0:
        return None
    return ('--png needs matplotlib, which is not a requirement of the '
            'project: .venv/bin/pip install matplotlib')


def draw_cdfs(panels, path):
    """Draw ``{panel title: {curve label: [seconds, ...]}}`` as latency
    distributions into ``path`` (benchmarks/draw.py): here if matplotlib
    is importable, else in the tools' environment (``.venv``)."""
    in_ms = {title: {label: [s * 1000 for s in samples]
                     for label, samples in curves.items()}
             for title, curves in panels.items()}
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with tempfile.NamedTemporaryFile('w', suffix='.json') as f:
            json.dump({'panels': in_ms}, f)
            f.flush()
            subprocess.run([str(REPO / '.venv' / 'bin' / 'python'), '-m',
                            'benchmarks.draw', f.name, str(path)],
                           cwd=REPO, check=True)
        return
    from benchmarks import draw
    draw.draw(in_ms, path)
