"""Slow clients, and who decides the scheme and host of the service's URLs.

A sync worker of gunicorn or uwsgi serves one connection at a time and waits
for a request header as long as the client takes to send it: a handful of
connections that send half a header hold every worker. The shipped nginx
example (``etc/compute_api/nginx-compute-api.conf.example``) reads whole
requests before it connects to the WSGI server. These tests run it, with a
throw-away CA, in front of a compute-api instance with two workers, and
show that the same slow connections stall the WSGI server alone but not
through nginx.

The WSGI servers' own handling of ``X-Forwarded-Proto`` and friends is
turned off in the shipped gunicorn and uwsgi examples, so that only
``[oslo_middleware] enable_proxy_headers_parsing`` decides the URLs in the
version documents.
"""

import json
import os
import pathlib
import signal
import socket
import ssl
import subprocess
import time

import fixtures
import requests

from tests import stack
from tests.functional import base

EXAMPLES = stack.REPO_ROOT / 'etc' / 'compute_api'
NGINX_EXAMPLE = EXAMPLES / 'nginx-compute-api.conf.example'
UWSGI_EXAMPLE = EXAMPLES / 'uwsgi.ini.example'
# Debian's programs: the proxy, and the uwsgi the uwsgi example is for.
NGINX = '/usr/sbin/nginx'
UWSGI = '/usr/bin/uwsgi'
UWSGI_PYTHON3 = '/usr/lib/uwsgi/plugins/python3_plugin.so'
OVERLIMIT_SAMPLE = (stack.REPO_ROOT / 'api-ref' / 'source' / 'samples' /
                    'images' / 'image-delete-413-resp.json')

# The name clients use for the service (the certificate's, nginx's).
SERVER_NAME = 'compute-api.test'
WORKERS = 2
SLOW_CLIENTS = 8
# Seconds: ample for one request on a busy two-core machine, far less than
# a worker held by a slow client waits (the WSGI server's timeout).
PROMPT = 5
MAX_BODY = 114688  # [oslo_middleware] max_request_body_size's default
# A request cut off in the middle of its header, as a slow client sends it.
HALF_HEADER = (f'GET /v2.1/ HTTP/1.1\r\nHost: {SERVER_NAME}\r\n'
               'User-Agent: slow').encode()
# What a client may send to choose the URLs the service hands out.
SPOOFED = {
    'X-Forwarded-Proto': 'https',
    'X-Forwarded-Host': 'evil.example',
    'X-Forwarded-Ssl': 'on',
    'X-Forwarded-Protocol': 'ssl',
    'Forwarded': 'proto=https;host=evil.example',
    'X-Forwarded-Prefix': '/evil',
}


def debian_package(package, *paths):
    """Install Debian's ``package`` unless all of ``paths`` exist."""
    if all(os.path.exists(path) for path in paths):
        return
    sudo = [] if os.geteuid() == 0 else ['sudo']
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    for argv in (['apt-get', 'update', '-qq'],
                 ['apt-get', 'install', '-y', '-qq', package]):
        subprocess.run(sudo + argv, env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, check=False)
    missing = [path for path in paths if not os.path.exists(path)]
    if missing:
        raise stack.StackError(f'{", ".join(missing)} missing, and "apt-get '
                               f'install {package}" did not install it: run '
                               'tools/bootstrap.sh')


def openssl(*args, cwd):
    subprocess.run(['openssl', *args], cwd=cwd, check=True,
                   stdin=subprocess.DEVNULL, capture_output=True)


def make_certificates(directory):
    """A throw-away CA and a server certificate signed by it.

    The server certificate names ``SERVER_NAME`` and 127.0.0.1. Returns the
    paths of the CA certificate, the server certificate and its key.
    """
    key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
           '-nodes']
    openssl('req', '-x509', *key, '-days', '2', '-subj',
            '/CN=compute-api test CA', '-keyout', 'ca.key', '-out', 'ca.pem',
            cwd=directory)
    openssl('req', *key, '-subj', f'/CN={SERVER_NAME}',
            '-keyout', 'server.key', '-out', 'server.csr', cwd=directory)
    pathlib.Path(directory, 'server.ext').write_text(
        f'subjectAltName = DNS:{SERVER_NAME}, IP:{stack.HOST}\n'
        'basicConstraints = CA:FALSE\n'
        'keyUsage = digitalSignature\n'
        'extendedKeyUsage = serverAuth\n'
        'subjectKeyIdentifier = hash\n'
        'authorityKeyIdentifier = keyid\n')
    openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem',
            '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2',
            '-extfile', 'server.ext', '-out', 'server.pem', cwd=directory)
    return tuple(os.path.join(directory, name)
                 for name in ('ca.pem', 'server.pem', 'server.key'))


def substitute(text, replacements, source):
    """Replace each ``old`` by ``new``; each must occur exactly once, so
    that a changed example fails here instead of being half adapted."""
    for old, new in replacements:
        if text.count(old) != 1:
            raise AssertionError(f'{source} should contain {old!r} once')
        text = text.replace(old, new)
    return text


class Nginx(fixtures.Fixture):
    """nginx with the shipped server block, on a free port of 127.0.0.1.

    Only what ties the example to a host changes: the listening address,
    the server name, the certificate and the upstream port. Its logs are
    in ``log_dir``, its pid file and temporary files in a temporary
    directory; it runs in the foreground as a child process and is stopped
    by its PID.
    """

    def __init__(self, upstream_url, log_dir):
        super().__init__()
        self.upstream_url = upstream_url
        self.log_dir = log_dir

    def _setUp(self):
        debian_package('nginx-light', NGINX)
        prefix = self.useFixture(fixtures.TempDir()).path
        # nginx's workers do not run as root; they write request bodies
        # to the temporary directories in here.
        os.chmod(prefix, 0o755)  # noqa: S103 (test files only)
        self.ca, cert, key = make_certificates(prefix)
        self.port = stack.free_ports(1)[0]
        self.url = f'https://{stack.HOST}:{self.port}'
        server = substitute(NGINX_EXAMPLE.read_text(), [
            ('listen 443 ssl;', f'listen {stack.HOST}:{self.port} ssl;'),
            ('server_name compute.example.com;',
             f'server_name {SERVER_NAME};'),
            ('/etc/ssl/certs/compute.example.com.pem', cert),
            ('/etc/ssl/private/compute.example.com.key', key),
            ('proxy_pass http://127.0.0.1:8774;',
             f'proxy_pass {self.upstream_url};'),
        ], NGINX_EXAMPLE)
        temp_paths = ''.join(f'    {kind}_temp_path {prefix}/{kind};\n'
                             for kind in ('client_body', 'proxy', 'fastcgi',
                                          'uwsgi', 'scgi'))
        conf = os.path.join(prefix, 'nginx.conf')
        logs = os.path.join(self.log_dir, f'nginx-{self.port}')
        self.error_log = logs + '-error.log'
        pathlib.Path(conf).write_text(
            f'pid {prefix}/nginx.pid;\n'
            f'error_log {self.error_log};\n'
            'worker_processes 1;\n'
            'events { worker_connections 256; }\n'
            'http {\n'
            f'    access_log {logs}-access.log;\n'
            f'{temp_paths}'
            f'{server}\n'
            '}\n')
        with open(self.error_log, 'ab') as out:
            self.process = subprocess.Popen(
                [NGINX, '-p', prefix, '-c', conf, '-e', self.error_log,
                 '-g', 'daemon off;'],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                start_new_session=True)
        self.addCleanup(self._stop)
        self._wait()

    def _wait(self):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                socket.create_connection((stack.HOST, self.port), 1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise stack.StackError(f'nginx did not start; end of '
                               f'{self.error_log}:\n'
                               f'{stack.log_tail(self.error_log)}')

    def _stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(stack.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def version_links(resp):
    return [link['href'] for link in resp.json()['version']['links']
            if link['rel'] == 'self']


class SlowClientsTestCase(base.FunctionalTestCase):

    def start_instance(self, proxy_parsing):
        """An extra compute-api with two sync workers of gunicorn (the
        stack starts it from the shipped gunicorn example)."""
        return self.stack.start_compute_api(
            workers=WORKERS, server='gunicorn',
            conf_overrides={'oslo_middleware': {
                'enable_proxy_headers_parsing': proxy_parsing}})

    def open_slow_connections(self, port, tls=None):
        """SLOW_CLIENTS connections that each send half a request header
        (after the TLS handshake, with ``tls``) and then nothing. They are
        closed at cleanup, which frees whatever serves them."""
        connections = []
        for _ in range(SLOW_CLIENTS):
            sock = socket.create_connection((stack.HOST, port), PROMPT)
            self.addCleanup(sock.close)
            if tls is not None:
                sock = tls.wrap_socket(sock, server_hostname=SERVER_NAME)
                self.addCleanup(sock.close)
            sock.sendall(HALF_HEADER)
            connections.append(sock)
        return connections


class TestSlowClients(SlowClientsTestCase):

    def setUp(self):
        super().setUp()
        self.instance = self.start_instance(proxy_parsing=True)
        self.nginx = self.useFixture(Nginx(
            self.instance['url'], os.path.join(self.state['workdir'], 'logs')))
        self.tls = ssl.create_default_context(cafile=self.nginx.ca)

    def https(self, method, path, **kwargs):
        """A request to nginx, checked against the throw-away CA."""
        return requests.request(method, self.nginx.url + path,
                                verify=self.nginx.ca, timeout=PROMPT,
                                **kwargs)

    def test_half_sent_headers_hold_every_worker_of_gunicorn_alone(self):
        versions = self.instance['url'] + '/v2.1/'
        self.assertEqual(200, requests.get(versions, timeout=PROMPT)
                         .status_code)
        slow = self.open_slow_connections(
            int(self.instance['url'].rsplit(':', 1)[1]))
        # Both workers wait for the rest of a header: a normal request
        # is accepted by the kernel and then waits in line behind them.
        self.assertRaises(requests.exceptions.ReadTimeout, requests.get,
                          versions, timeout=PROMPT)
        for sock in slow:
            sock.close()
        self.assertEqual(200, requests.get(versions, timeout=PROMPT)
                         .status_code)

    def test_half_sent_headers_never_reach_gunicorn_through_nginx(self):
        image_id = self.stack.create_image()
        token = self.stack.token('demo-member')
        slow = self.open_slow_connections(self.nginx.port, self.tls)
        start = time.monotonic()
        resp = self.https('DELETE', f'/v2.1/images/{image_id}',
                          headers={'X-Auth-Token': token})
        elapsed = time.monotonic() - start
        self.assertRequestIds(resp)
        self.assertDeleted(resp, image_id)
        self.assertLess(elapsed, PROMPT)
        # nginx kept the slow connections waiting, not the workers: the
        # instance itself answers at once as well.
        resp = requests.get(self.instance['url'] + '/v2.1/', timeout=PROMPT)
        self.assertEqual(200, resp.status_code)
        for sock in slow:
            sock.setblocking(False)
            self.assertRaises((BlockingIOError, ssl.SSLWantReadError),
                              sock.recv, 1)

    def test_version_links_carry_the_proxy_scheme_and_name(self):
        for headers in ({}, SPOOFED, {'X-Forwarded-Proto': 'http',
                                      'Host': 'evil.example'}):
            resp = self.https('GET', '/v2.1/', headers=headers)
            self.assertEqual(200, resp.status_code, resp.text)
            self.assertEqual([f'https://{SERVER_NAME}/v2.1/'],
                             version_links(resp), headers)

    def test_body_over_the_limit_is_refused_by_nginx_as_a_fault(self):
        image_id = self.stack.create_image()
        headers = {'X-Auth-Token': self.stack.token('demo-member')}
        resp = self.https('DELETE', f'/v2.1/images/{image_id}',
                          headers=headers, data=b'x' * (MAX_BODY + 1))
        self.assertFault(resp, 413, 'overLimit')
        self.assertEqual(json.loads(OVERLIMIT_SAMPLE.read_text()),
                         resp.json())
        self.assertImageKept(image_id)
        # At the limit, the request is the service's to answer.
        resp = self.https('DELETE', f'/v2.1/images/{image_id}',
                          headers=headers, data=b'x' * MAX_BODY)
        self.assertRequestIds(resp)
        self.assertDeleted(resp, image_id)


class TestSchemeWithoutProxyParsing(SlowClientsTestCase):
    """Without enable_proxy_headers_parsing, no header a client sends
    changes the URLs the service hands out."""

    def test_gunicorn_example_ignores_client_scheme_headers(self):
        instance = self.start_instance(proxy_parsing=False)
        expected = [instance['url'] + '/v2.1/']
        for headers in (SPOOFED, {'X-Forwarded-Proto': 'https'},
                        {'X-Forwarded-Proto': 'https',
                         'X-Forwarded-Ssl': 'off'}):
            resp = requests.get(instance['url'] + '/v2.1/', headers=headers,
                                timeout=PROMPT)
            self.assertEqual(200, resp.status_code, resp.text)
            self.assertRequestIds(resp)
            self.assertEqual(expected, version_links(resp), headers)

    def test_uwsgi_example_ignores_client_scheme_headers(self):
        # Debian's uwsgi, which the example is written for, runs a probe
        # application that shows the scheme uwsgi hands to applications.
        debian_package('uwsgi-plugin-python3', UWSGI, UWSGI_PYTHON3)
        directory = self.useFixture(fixtures.TempDir()).path
        probe = os.path.join(directory, 'scheme.py')
        pathlib.Path(probe).write_text(
            'def application(environ, start_response):\n'
            "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
            "    return [environ['wsgi.url_scheme'].encode()]\n")
        port = stack.free_ports(1)[0]
        log = os.path.join(self.state['workdir'], 'logs',
                           f'uwsgi-scheme-{port}.log')
        # The example, with the probe for the service (and the system's
        # Python: the plugin's) and a port of this test.
        ini = substitute(UWSGI_EXAMPLE.read_text(), [
            ('\nvirtualenv = /opt/compute-api\n', '\n'),
            ('\nmodule = compute_api.wsgi.api:application\n',
             f'\nwsgi-file = {probe}\n'),
            ('\nhttp-socket = 127.0.0.1:8774\n',
             f'\nhttp-socket = {stack.HOST}:{port}\n'),
            ('\nprocesses = 5\n', '\nprocesses = 1\n'),
        ], UWSGI_EXAMPLE) + f'logto = {log}\n'
        ini_path = os.path.join(directory, 'uwsgi.ini')
        pathlib.Path(ini_path).write_text(ini)
        pid = stack.spawn([UWSGI, '--ini', ini_path], log, dict(os.environ))
        self.addCleanup(stack.stop_process, pid)
        url = f'http://{stack.HOST}:{port}/'
        stack.wait_http('uwsgi', url, pid, log, 20)
        for headers in (SPOOFED, {'X-Forwarded-Proto': 'evil'}, {}):
            resp = requests.get(url, headers=headers, timeout=PROMPT)
            self.assertEqual((200, 'http'), (resp.status_code, resp.text),
                             headers)
