"""Test doubles at the service's boundaries.

``FakeGlance`` is a real HTTP server on 127.0.0.1 that records what it is
sent and answers what the test tells it to; ``fake_auth_factory`` stands in
for keystonemiddleware's auth_token in the unit-test pipeline, setting the
identity headers that auth_token would set for a valid token.
"""

import collections
import http.server
import threading
import time

from keystoneauth1 import token_endpoint
import webob
import webob.dec

IDENTITY_KEY = 'test.identity'
KEYSTONE = 'http://127.0.0.1:5000/v3'
KEYSTONE_401 = {'error': {'code': 401, 'title': 'Unauthorized',
                          'message': 'The request you have made requires '
                                     'authentication.'}}
Recorded = collections.namedtuple('Recorded', 'method path headers')


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
        if delay:
            time.sleep(delay)
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
    None closes the connection without a response.
    """

    def __init__(self):
        self.requests = []
        self.answers = []
        self.default = (204, b'', 0)
        self.extra_headers = {}
        self._server = http.server.ThreadingHTTPServer(
            ('127.0.0.1', 0), _Handler)
        self._server.daemon_threads = True
        self._server.glance = self
        self.url = f'http://127.0.0.1:{self._server.server_address[1]}'
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        daemon=True)
        self._thread.start()

    def next_answer(self):
        return self.answers.pop(0) if self.answers else self.default

    def stop(self):
        self._server.shutdown()
        self._server.server_close()


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
        req.environ['keystone.token_auth'] = token_endpoint.Token(
            None, identity.get('token', 'user-token'))
        return req.get_response(self.application)


def fake_auth_factory(global_conf, **local_conf):
    return FakeAuth
