"""In process: the application, its clients, the interleaved measuring loop.

The application is built as the service builds it (``write_app_config``,
``build_app``), from the tree measured (``processes.tree()``); the WSGI
client calls it as a server does (``PipelineClient``); the direct client
sends the same DELETE straight to Glance with keystoneauth1
(``DirectClient``); ``interleaved`` measures clients against each other.
"""

import configparser
import io
import pathlib
import sys
import time
import uuid

from keystoneauth1 import token_endpoint

from benchmarks import processes
from benchmarks import standins


def write_app_config(directory, glance_url, authtoken=None):
    """compute_api.conf, api-paste.ini and policy.yaml in ``directory``.

    Glance is ``glance_url``; with ``authtoken`` (the options of
    ``[keystone_authtoken]``) the shipped pipeline, without it the
    identity stand-in in place of auth_token.
    """
    directory = pathlib.Path(directory)
    paste = standins.noauth_paste_ini() if authtoken is None else \
        standins.paste_ini_text()
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
    do; ``compute_api`` from the tree measured (exits if it was already
    imported from elsewhere)."""
    with processes.importing_tree() as place:
        from compute_api import deploy
        origin = pathlib.Path(deploy.__file__).resolve().parents[1]
        if origin != place:
            raise SystemExit(f'compute_api came from {origin}, not {place}')
        if not logging:
            return deploy.loadapp(deploy.load_conf(directory=str(directory)))
        return deploy.init_application(directory=str(directory))


def compute_api_origin():
    """Where the ``compute_api`` in use was imported from."""
    return str(pathlib.Path(sys.modules['compute_api'].__file__).parent)


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
    deadline = processes.Deadline(time_limit)
    for i in range(iterations):
        if deadline.expired():
            break
        prepared = {name: clients[name].prepare() for name in names}
        for name in processes.rotate(names, i):
            c0, t0 = process(), perf()
            status = clients[name].call(prepared[name])
            wall[name].append(perf() - t0)
            cpu[name].append(process() - c0)
            check(status, name)
    return {'wall': wall, 'cpu': cpu, 'first': first}
