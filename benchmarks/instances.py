"""Dedicated compute-api instances (``start_instance``) under gunicorn
(sync or gthread) or uWSGI, each with an optional ``Probe`` that sums the
CPU time its workers spend inside the WSGI application.

An instance runs the service's runtime environment (``.venv-service``);
its ``compute_api`` is the one installed there, or, with
``$COMPUTE_API_BENCH_TREE`` set, the one of that checkout (put first on
the workers' path, with that checkout's ``api-paste.ini``).
"""

import pathlib
import shutil
import struct
import tempfile
import time

from benchmarks import inprocess
from benchmarks import processes

SERVERS = ('gunicorn-sync', 'gunicorn-gthread', 'uwsgi')
GTHREADS = 4
KEEPALIVE = 5


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
        values = processes.process_counters(key, self.pid)
        if self.probe is not None:
            requests, seconds = self.probe.totals()
            values[f'{key} app'] = seconds
            values[f'{key} app requests'] = requests
        return values

    def worker(self, timeout=10):
        """The first worker process (waiting for one to start)."""
        from tests import stack
        deadline = processes.Deadline(timeout)
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
    repository).
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
    tree = processes.chosen_tree()
    if tree is not None:
        shutil.copyfile(tree / 'etc' / 'compute_api' / 'api-paste.ini',
                        config_dir / 'api-paste.ini')
    port = stack.free_ports(1)[0]
    the_probe = Probe(tree) if probe else None
    extra = {}
    if server == 'gunicorn-gthread':
        extra.update(worker_class='gthread', threads=GTHREADS,
                     keepalive=KEEPALIVE)
    if the_probe is not None:
        extra['wsgi_app' if server != 'uwsgi' else 'module'] = the_probe.app
        extra['pythonpath'] = str(the_probe.directory)
    elif tree is not None:
        extra['pythonpath'] = str(tree)
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
    if processes.chosen_tree() is not None:
        raise SystemExit(f'the instance without a stack runs this '
                         f'repository\'s compute_api: unset '
                         f'{processes.TREE_ENV}')
    workdir = pathlib.Path(workdir)
    (workdir / 'logs').mkdir(exist_ok=True)
    config_dir = workdir / 'compute'
    config_dir.mkdir(exist_ok=True)
    inprocess.write_app_config(config_dir, glance_url)
    port = stack.free_ports(1)[0]
    stack.write_gunicorn_conf(config_dir / 'gunicorn.conf.py',
                              app=stack.COMPUTE_APP, port=port,
                              workers=workers, log_name=name,
                              workdir=workdir)
    pid = stack.start_gunicorn(
        name, config_dir / 'gunicorn.conf.py', workdir,
        {stack.COMPUTE_CONFIG_ENV: str(config_dir),
         'PYTHONPATH': str(processes.REPO)})
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
    application through it. With ``tree``, the probe puts that checkout
    first on the workers' path before it imports the application.
    ``totals()`` sums what the workers counted so far; ``close()`` removes
    the directory.
    """

    MODULE = 'bench_cpu_probe'
    RECORD = struct.Struct('<qd')  # as cpu_probe writes it
    PATH_FILE = 'sys-path.txt'  # as cpu_probe reads it

    def __init__(self, tree=None):
        self.directory = pathlib.Path(tempfile.mkdtemp(prefix='bench-probe-'))
        shutil.copyfile(pathlib.Path(__file__).with_name('cpu_probe.py'),
                        self.directory / f'{self.MODULE}.py')
        if tree is not None:
            (self.directory / self.PATH_FILE).write_text(f'{tree}\n')
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
    """Exit if a probed instance imported compute_api from elsewhere than
    the chosen checkout (``$COMPUTE_API_BENCH_TREE``) or, without one, the
    service's environment; else the places, one line."""
    from tests import stack
    expected = processes.chosen_tree() or stack.SERVICE_VENV
    places = sorted({o for i in instances if i.probe
                     for o in i.probe.origins()})
    if any(not pathlib.Path(p).is_relative_to(expected) for p in places):
        raise SystemExit(f'compute_api was not imported from {expected}: '
                         f'{places}')
    return ', '.join(places)
