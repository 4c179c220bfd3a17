"""The ``Stack``: memcached, Keystone, Glance and compute-api together."""

import concurrent.futures
import pathlib
import shutil

from tests.stack import compute
from tests.stack import glance
from tests.stack import haproxy
from tests.stack import keystone
from tests.stack import memcached
from tests.stack import postgres
from tests.stack import tls
from tests.stack.common import COMPUTE_START_TIMEOUT
from tests.stack.common import DEFAULT_WORKDIR
from tests.stack.common import SCALED_INSTANCES
from tests.stack.common import STACK_PATHS
from tests.stack.common import STATE_FILE
from tests.stack.common import StackError
from tests.stack.processes import stop_process
from tests.stack.processes import wait_http
from tests.stack.processes import write_pid_file
from tests.stack.progress import step
from tests.stack.state import load_state
from tests.stack.state import new_state
from tests.stack.state import process_status
from tests.stack.state import save_state


class Stack:
    """One stack of memcached, Keystone, Glance and compute-api.

    ``scaled=True`` adds PostgreSQL for Keystone and Glance, which then run
    several workers each, and runs ``instances`` compute-api instances,
    sharing memcached, behind HAProxy, which terminates TLS with a
    certificate of the stack's own CA (``state['ca_file']``).
    """

    def __init__(self, workdir=DEFAULT_WORKDIR, compute_workers=2,
                 scaled=False, instances=SCALED_INSTANCES,
                 server=compute.DEFAULT_SERVER):
        self.workdir = pathlib.Path(workdir).resolve()
        self.compute_workers = compute_workers
        # the WSGI server compute-api runs under (compute.SERVERS)
        self.server = server
        # Keystone and Glance on PostgreSQL with several workers each;
        # ``instances`` compute-api instances behind HAProxy over TLS.
        self.scaled = scaled
        self.instances = instances
        self.register_compute = True
        # A progress.Progress that announces each step of ``up`` (the
        # command line sets one), or None: silent.
        self.progress = None
        self.state = {}
        if (self.workdir / STATE_FILE).exists():
            self.state = load_state(self.workdir)

    @property
    def logs(self):
        return self.workdir / 'logs'

    def running(self):
        """``{name: pid}`` of this workdir's processes still running."""
        status = process_status({'workdir': str(self.workdir),
                                 'pids': self.state.get('pids', {})})
        return {name: pid for name, pid in status.items() if pid}

    def up(self, start_compute=True, register_compute=True):
        """Start the stack and return its state (also in stack.json).

        ``register_compute=False`` (which implies no compute-api either)
        leaves the catalog without a ``compute`` service: a cloud with only
        Keystone and Glance, where the install guide starts.
        """
        self.register_compute = register_compute
        start_compute = start_compute and register_compute
        running = self.running()
        if running:
            raise StackError(f'a stack is already running in {self.workdir}'
                             f' ({", ".join(running)}); run "down" first')
        self._reset_workdir()
        self.state = new_state(self.workdir, scaled=self.scaled,
                               instances=self.instances,
                               compute_workers=self.compute_workers)
        self.state['compute_server'] = self.server
        try:
            self._start(start_compute)
        except BaseException:
            self.down()
            raise
        save_state(self.state)
        return self.state

    def down(self):
        """Stop every process of this stack; returns ``{name: pid}``."""
        stopped = {}
        for name, pid in self.running().items():
            if stop_process(pid):
                stopped[name] = pid
        return stopped

    def _reset_workdir(self):
        """Remove what a previous stack left here (not the workdir)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for name in STACK_PATHS:
            path = self.workdir / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        for name in ('logs', 'logs/setup', 'pids', 'keystone', 'glance'):
            (self.workdir / name).mkdir()

    def _step(self, what):
        return step(self.progress, what)

    def _start(self, start_compute):
        """Start everything, in parallel where the order allows."""
        if self.scaled:
            with self._step('making the TLS certificates'):
                tls.start(self)
            if not start_compute:
                self.state['instances'] = {}
        keystone.write_config(self)
        glance.write_config(self)
        compute.write_compute_config(self.state['compute_config_dir'],
                                     compute.compute_conf_sections(self.state))
        with self._step('starting memcached'):
            memcached.start(self)
        if self.scaled:
            with self._step(f'starting {len(self.state["instances"])} '
                            f'compute-api instances under {self.server} '
                            'and HAProxy'):
                for name in self.state['instances']:
                    compute.spawn_instance(self.state, name)
                # In front of the instances, and of Glance over HTTPS.
                haproxy.start(self)
        elif start_compute:
            with self._step(f'starting compute-api under {self.server} '
                            f'({self.compute_workers} processes)'):
                compute.start(self)
        if self.scaled:
            with self._step('starting PostgreSQL'):
                postgres.start(self)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            setup_glance = pool.submit(self._in_step, 'Glance: database and '
                                       'start', glance.setup, self)
            keys = pool.submit(self._in_step, 'Keystone: keys',
                               keystone.setup_keys, self)
            with self._step('Keystone: database (db_sync, bootstrap)'):
                keystone.setup_db(self)
            keys.result()
            with self._step('starting Keystone'):
                keystone.start(self)
            with self._step('Keystone: projects, users, roles, catalog'):
                keystone.create_identities(self)
            setup_glance.result()
        with self._step('uploading the sample image to Glance'):
            glance.upload_sample_image(self)
        if start_compute and self.scaled:
            with self._step('waiting for the compute-api instances'):
                for name in self.state['instances']:
                    compute.wait_instance(self.state, name)
                haproxy.wait_status(self.state, 'UP')
        elif start_compute:
            with self._step('waiting for compute-api'):
                wait_http('compute-api', self.state['compute_url'] + '/',
                          self.state['pids']['compute-api'],
                          self.logs / 'compute-api.log',
                          COMPUTE_START_TIMEOUT)

    def _in_step(self, what, function, *args):
        with self._step(what):
            return function(*args)

    def _record(self, name, pid):
        self.state['pids'][name] = pid
        write_pid_file(self.workdir, name, pid)
