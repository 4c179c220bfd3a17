"""Test doubles at the service's boundaries.

``FakeGlance`` is a real HTTP server on 127.0.0.1 that records what it is
sent and answers what the test tells it to; ``DripServer`` answers a byte
now and then, for as long as it is told to; ``FakeClock`` is the time the
code under test reads; ``fake_auth_factory`` stands in for
keystonemiddleware's auth_token in the unit-test pipeline, setting the
identity headers that auth_token would set for a valid token, and the same
``keystone.token_auth`` plugin (the caller's token, with the service's own
token as ``X-Service-Token``).
"""

import collections
import http.server
import socket
import threading
import time

from keystoneauth1 import access
from keystoneauth1 import fixture
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
from keystonemiddleware.auth_token import _user_plugin
import webob
import webob.dec

IDENTITY_KEY = 'test.identity'
KEYSTONE = 'http://127.0.0.1:5000/v3'
KEYSTONE_401 = {'error': {'code': 401, 'title': 'Unauthorized',
                          'message': 'The request you have made requires '
                                     'authentication.'}}
SERVICE_TOKEN = 'compute-service-token'
Recorded = collections.namedtuple('Recorded', 'method path headers')
# What auth_token gives its plugin to get the service's own token.
_SERVICE_SESSION = ks_session.Session()
_SERVICE_AUTH = token_endpoint.Token(None, SERVICE_TOKEN)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def _answer(self):
        glance = self.server.glance
        glance.requests.append(
            Recorded(self.command, self.path, dict(self.headers)))
        status, body, delay = glance.next_answer()
        extra = glance.extra_headers
        if delay and glance.clock is not None:
            glance.clock.now += delay  # the time it takes, on that clock
        elif delay:
            glance.stopped.wait(delay)
        if status is None:  # drop the connection without answering
            self.close_connection = True
            return
        try:
            self.send_response(status)
            self.send_header('Content-Type', 'text/html' if status == 204
                             else 'application/json')
            self.send_header('Content-Length', str(len(body)))
            self.send_header('x-openstack-request-id', 'req-glance-fake')
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (timeout tests)

    do_DELETE = do_GET = do_POST = do_PUT = _answer


class FakeGlance:
    """A loopback HTTP server answering from a script of responses.

    ``answers`` is a list of ``(status, body_bytes, delay_seconds)``; once
    it is used up, ``default`` answers (204 unless changed). A status of
    None closes the connection without a response. A delay is waited out
    (until the server stops), or, with a ``clock`` (a ``FakeClock``),
    added to that clock's time.
    """

    def __init__(self):
        self.requests = []
        self.clock = None
        self.stopped = threading.Event()
        self.answers = []
        self.default = (204, b'', 0)
        self.extra_headers = {}
        self._server = http.server.ThreadingHTTPServer(
            ('127.0.0.1', 0), _Handler)
        self._server.daemon_threads = True
        self._server.glance = self
        self.url = f'http://127.0.0.1:{self._server.server_address[1]}'
        # a short poll interval: stop() waits for the loop to notice
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        args=(0.01,), daemon=True)
        self._thread.start()

    def next_answer(self):
        return self.answers.pop(0) if self.answers else self.default

    def stop(self):
        self.stopped.set()
        self._server.shutdown()
        self._server.server_close()


class DripServer:
    """Answers each request with a status line and then one header line
    every ``interval`` seconds: every read gets data well within a socket
    timeout. After ``give_up`` seconds it ends the headers (a 204). Each
    line sent calls ``on_drip``, if given (to move a test's clock)."""

    def __init__(self, interval=0.2, give_up=4, on_drip=None):
        self.interval = interval
        self.give_up = give_up
        self.on_drip = on_drip
        self.connections = 0
        self._listener = socket.create_server(('127.0.0.1', 0))
        self.url = f'http://127.0.0.1:{self._listener.getsockname()[1]}'
        self._stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._drip, args=(client,),
                             daemon=True).start()

    def _drip(self, client):
        with client:
            try:
                client.recv(65536)
                client.sendall(b'HTTP/1.1 204 No Content\r\n')
                end = time.monotonic() + self.give_up
                while (time.monotonic() < end
                       and not self._stopped.wait(self.interval)):
                    if self.on_drip:
                        self.on_drip()
                    client.sendall(b'X-Drip: 1\r\n')
                client.sendall(b'\r\n')
            except OSError:
                pass  # the client hung up

    def stop(self):
        self._stopped.set()
        self._listener.close()


class FakeClock:
    """A monotonic clock (``time.monotonic``) that moves only when the
    code sleeps (``sleep``), when a test moves ``now``, or by ``tick`` at
    each reading."""

    def __init__(self, tick=0.0):
        self.now = 1000.0
        self.tick = tick
        self.slept = []

    def __call__(self):
        now = self.now
        self.now += self.tick
        return now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


class FakeAuth:
    """Sets auth_token's headers from ``environ['test.identity']``."""

    def __init__(self, application):
        self.application = application

    @webob.dec.wsgify
    def __call__(self, req):
        for header in list(req.headers):
            if header.lower().startswith(('x-user', 'x-project', 'x-roles',
                                          'x-identity', 'x-tenant')):
                del req.headers[header]
        identity = req.environ.get(IDENTITY_KEY)
        if identity is None:
            # what keystonemiddleware answers: its own JSON error body
            resp = webob.Response(status=401, json_body=KEYSTONE_401,
                                  content_type='application/json')
            resp.headers['WWW-Authenticate'] = f'Keystone uri="{KEYSTONE}"'
            return resp
        req.headers['X-Identity-Status'] = 'Confirmed'
        req.headers['X-User-Id'] = identity['user_id']
        req.headers['X-Project-Id'] = identity['project_id']
        req.headers['X-Roles'] = ','.join(identity['roles'])
        req.environ['keystone.token_auth'] = user_auth_plugin(identity)
        resp = req.get_response(self.application)
        if resp.status_int == 401:
            # as auth_token does to every 401 of the layers it protects
            resp.headers.add('WWW-Authenticate', f'Keystone uri="{KEYSTONE}"')
        return resp


def user_auth_plugin(identity):
    """The plugin auth_token sets for a valid token; its catalog lists
    ``identity['image_url']`` as the Image service, if given, and it gets
    the service's own token with ``identity['service_auth']``, if given."""
    token = fixture.V3Token(user_id=identity['user_id'],
                            project_id=identity['project_id'])
    if identity.get('image_url'):
        token.add_service('image').add_standard_endpoints(
            public=identity['image_url'], internal=identity['image_url'])
        # ids as Keystone gives them: the same in every token
        for service in token['token']['catalog']:
            service['id'] = 'image-service'
            for endpoint in service['endpoints']:
                endpoint['id'] = endpoint['interface'] + '-endpoint'
    user = access.create(body=token,
                         auth_token=identity.get('token', 'user-token'))
    # with the session and service plugin auth_token gives it
    return _user_plugin.UserAuthPlugin(
        user, None, session=_SERVICE_SESSION,
        auth=identity.get('service_auth', _SERVICE_AUTH))


def fake_auth_factory(global_conf, **local_conf):
    return FakeAuth
