"""What an operator changes: Glance's reachability and the policy file.

These tests start their own compute-api instance (same Keystone and Glance,
own config directory and port) so they can change its configuration without
disturbing the other tests.
"""

import concurrent.futures
import os
import socket
import time
from urllib import parse
import uuid

import requests

from tests import stack
from tests.functional import base

RULE = 'os_compute_api:images:delete'


def closed_port():
    """A loopback port nothing listens on."""
    return stack.free_ports(1)[0]


class TestGlanceUnreachable(base.FunctionalTestCase):

    def test_503_within_the_configured_bound(self):
        instance = self.stack.start_compute_api(conf_overrides={'glance': {
            'endpoint_override': f'http://127.0.0.1:{closed_port()}',
            'connect_retries': 2, 'connect_retry_delay': 0.5}})
        image_id = self.stack.create_image()
        start = time.monotonic()
        resp = self.delete(image_id, url=instance['url'])
        elapsed = time.monotonic() - start
        self.assertFault(resp, 503, 'serviceUnavailable')
        # two retries, 0.5 s apart: about 1 s; the bound with these
        # settings is well under 5 s
        self.assertGreater(elapsed, 0.9)
        self.assertLess(elapsed, 5)
        self.assertImageKept(image_id)
        log = os.path.join(self.state['workdir'], 'logs',
                           os.path.basename(instance['config_dir']) +
                           '-app.log')
        with open(log) as f:
            text = f.read()
        self.assertIn('Image service unreachable', text)
        self.assertNotIn('Traceback', text)


class TestPolicyFile(base.FunctionalTestCase):

    def write_policy(self, instance, text, bump):
        path = os.path.join(instance['config_dir'], 'policy.yaml')
        with open(path, 'w') as f:
            f.write(text)
        stamp = time.time() + bump
        os.utime(path, (stamp, stamp))

    def test_override_applies_at_runtime_in_every_worker(self):
        instance = self.stack.start_compute_api(
            workers=2, policy_yaml=f'"{RULE}": "role:admin"\n')
        url = instance['url']
        first = self.stack.create_image()
        for _ in range(4):  # both workers answer at least once, likely
            self.assertFault(self.delete(first, url=url), 403, 'forbidden',
                             RULE)
        self.assertImageKept(first)
        self.assertDeleted(self.delete(first, user='demo-admin', url=url),
                           first)

        self.write_policy(instance, f'"{RULE}": "!"\n', 2)
        second = self.stack.create_image()
        for _ in range(4):
            self.assertFault(self.delete(second, user='demo-admin', url=url),
                             403, 'forbidden', RULE)
        self.assertImageKept(second)

        self.write_policy(instance, '{}\n', 4)
        for _ in range(4):
            self.assertFault(self.delete(second, user='demo-reader',
                                         url=url), 403, 'forbidden', RULE)
        self.assertDeleted(self.delete(second, url=url), second)

    def held_delete(self, instance, image_id):
        """Start a DELETE whose headers are not finished: the worker that
        took it waits for the rest, so another worker must serve whatever
        is sent meanwhile. Returns a function that finishes the request and
        returns its status and body."""
        url = parse.urlsplit(instance['url'])
        conn = socket.create_connection((url.hostname, url.port), timeout=30)
        self.addCleanup(conn.close)
        conn.sendall(f'DELETE /v2.1/images/{image_id} HTTP/1.1\r\n'
                     f'Host: {url.netloc}\r\n'.encode())
        token = self.stack.token('demo-member')

        def finish():
            conn.sendall(f'X-Auth-Token: {token}\r\nContent-Length: 0\r\n'
                         'Connection: close\r\n\r\n'.encode())
            data = b''
            while chunk := conn.recv(65536):
                data += chunk
            head, _, body = data.partition(b'\r\n\r\n')
            return int(head.split()[1]), body
        return finish

    def policy_errors(self, instance):
        log = os.path.join(self.state['workdir'], 'logs',
                           os.path.basename(instance['config_dir']) +
                           '-app.log')
        with open(log) as f:
            return [line for line in f
                    if ' ERROR compute_api.policy ' in line]

    def test_malformed_edit_is_503_in_every_worker_until_fixed(self):
        instance = self.stack.start_compute_api(workers=2)
        url = instance['url']
        image_id = self.stack.create_image()
        finish = self.held_delete(instance, image_id)
        # answered by the other worker: both have loaded the application
        self.assertEqual(200, self.call('/', method='GET', user=None,
                                        url=url).status_code)
        # a deny edit with its closing quote missing: it must not leave the
        # previous rules (which allow the member) in force
        self.write_policy(instance, f'"{RULE}": "role:admin\n', 2)
        for _ in range(3):
            resp = self.delete(image_id, url=url)
            self.assertFault(resp, 503, 'serviceUnavailable',
                             'policy of this service could not be loaded')
            self.assertNotIn('policy.yaml', resp.text)
        status, body = finish()
        self.assertEqual(503, status, body)
        self.assertIn(b'serviceUnavailable', body)
        self.assertImageKept(image_id)
        # logged once by each worker, naming the file and the position
        errors = self.policy_errors(instance)
        self.assertEqual(2, len(errors), errors)
        self.assertEqual(2, len({line.split()[2] for line in errors}))
        path = os.path.join(instance['config_dir'], 'policy.yaml')
        for line in errors:
            self.assertIn(f'Policy file {path} is not valid YAML: line 2, '
                          'column 1', line)

        self.write_policy(instance, '{}\n', 4)
        other = self.stack.create_image()
        finish = self.held_delete(instance, other)
        self.assertDeleted(self.delete(image_id, url=url), image_id)
        status, body = finish()
        self.assertEqual(204, status, body)
        self.assertIsNone(self.stack.glance_image(other))

    def test_broken_policy_file_at_start_is_503_until_corrected(self):
        # Workers that start while the file is broken serve like the others
        # (a worker refusing to load would stop gunicorn altogether).
        instance = self.stack.start_compute_api(
            workers=2, policy_yaml=f'"{RULE}": [role:admin\n')
        url = instance['url']
        self.assertEqual(200, self.call('/healthcheck', method='GET',
                                        user=None, url=url).status_code)
        image_id = self.stack.create_image()
        resp = self.delete(image_id, url=url)
        self.assertFault(resp, 503, 'serviceUnavailable',
                         'policy of this service could not be loaded')
        self.assertImageKept(image_id)
        path = os.path.join(instance['config_dir'], 'policy.yaml')
        errors = self.policy_errors(instance)
        self.assertNotEqual([], errors)
        for line in errors:
            self.assertIn(f'Policy file {path} is not valid YAML: line 2, '
                          'column 1', line)
        self.write_policy(instance, '{}\n', 2)
        self.assertDeleted(self.delete(image_id, url=url), image_id)


class TestKeystoneUnreachable(base.FunctionalTestCase):

    def test_uncached_token_is_503_from_auth_token(self):
        port = closed_port()
        instance = self.stack.start_compute_api(conf_overrides={
            'keystone_authtoken': {
                'auth_url': f'http://127.0.0.1:{port}/v3',
                'www_authenticate_uri': f'http://127.0.0.1:{port}/v3',
                'http_connect_timeout': 2, 'http_request_max_retries': 1}})
        image_id = self.stack.create_image()
        resp = self.delete(image_id, url=instance['url'])
        self.assertEqual(503, resp.status_code, resp.text)
        self.assertTrue(resp.headers['Content-Type'].startswith(
            'application/json'))
        self.assertNotIn('Traceback', resp.text)
        self.assertImageKept(image_id)


class TestLogs(base.FunctionalTestCase):

    def test_debug_logs_carry_request_ids_and_never_a_token(self):
        instance = self.stack.start_compute_api(
            conf_overrides={'DEFAULT': {'debug': True}})
        token = self.stack.token('demo-member')
        image_id = self.stack.create_image()
        ok = self.delete(image_id, url=instance['url'], token=token)
        self.assertDeleted(ok, image_id)
        bad = self.delete(image_id, url=instance['url'], token='x' + token)
        self.assertEqual(401, bad.status_code)
        log = os.path.join(self.state['workdir'], 'logs',
                           os.path.basename(instance['config_dir']) +
                           '-app.log')
        with open(log) as f:
            text = f.read()
        self.assertNotIn(token, text)
        self.assertNotIn(token[:32], text)
        for resp in (ok, bad):
            rid = resp.headers['x-openstack-request-id']
            access = [line for line in text.splitlines()
                      if 'compute_api.access' in line and rid in line]
            self.assertEqual(1, len(access), rid)
            self.assertIn(f'status: {resp.status_code}', access[0])


class TestDeploymentExamples(base.FunctionalTestCase):

    def assertKeptAliveClientsServed(self, url, threads=8, each=60):
        """Clients that keep connections alive (as keystoneauth1 and
        requests do) get every answer: a worker that closes the connection
        after its response says so, or a client may send its next request
        on a connection being closed ("Remote end closed connection")."""
        def client():
            session = requests.Session()
            answers = []
            for _ in range(each):
                try:
                    resp = session.get(url + '/')
                except requests.ConnectionError as exc:
                    answers.append(repr(exc))
                else:
                    answers.append((resp.status_code,
                                    resp.headers.get('Connection')))
            session.close()
            return answers
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            answers = [answer for result in
                       pool.map(lambda _: client(), range(threads))
                       for answer in result]
        self.assertEqual([(200, 'close')] * threads * each, answers)

    def test_gunicorn_example_config_serves_deletes(self):
        example = os.path.join(stack.REPO_ROOT, 'etc', 'compute_api',
                               'gunicorn.conf.py.example')
        workdir = self.state['workdir']
        name = f'gunicorn-example-{uuid.uuid4().hex[:12]}'
        port = stack.free_ports(1)[0]
        log = os.path.join(workdir, 'logs', f'{name}.log')
        conf = os.path.join(workdir, f'{name}.conf.py')
        with open(conf, 'w') as f:
            f.write(f'exec(open({example!r}).read())\n'
                    f'bind = "127.0.0.1:{port}"\n'
                    'workers = 2\n'
                    f'errorlog = {log!r}\n'
                    'control_socket_disable = True\n')
        # the stack's configuration without log_file: the service logs to
        # standard output, as the install guide has it (the journal)
        config_dir = os.path.join(workdir, name)
        sections = stack.read_ini(os.path.join(
            self.state['compute_config_dir'], 'compute_api.conf'))
        del sections['DEFAULT']['log_file']
        stack.write_compute_config(config_dir, sections)
        pid = stack.start_gunicorn(
            name, conf, workdir, {'OS_COMPUTE_API_CONFIG_DIR': config_dir},
            service=True)
        self.addCleanup(stack.stop_process, pid)
        url = f'http://127.0.0.1:{port}'
        stack.wait_http(name, url + '/', pid, log, 30)
        self.assertKeptAliveClientsServed(url)
        image_id = self.stack.create_image()
        # a client that wrongly puts a secret in the query string
        canary = f'canary-{uuid.uuid4().hex}'
        resp = self.call(f'/v2.1/images/{image_id}?token={canary}', url=url)
        self.assertDeleted(resp, image_id)
        with open(log) as f:
            logged = f.read()
        # one access line, by the service, with the request id, and the
        # query string nowhere (gunicorn's own access log is off)
        access = [line for line in logged.splitlines()
                  if 'compute_api.access' in line and 'DELETE' in line]
        self.assertEqual(1, len(access), logged)
        self.assertIn(resp.headers['x-openstack-request-id'], access[0])
        self.assertIn(f'DELETE /v2.1/images/{image_id} status: 204',
                      access[0])
        self.assertNotIn(canary, logged)

    def test_uwsgi_example_config_serves_deletes(self):
        # the stack's own way of starting the shipped example (uwsgi from
        # PyPI: no plugin line; the service's runtime environment)
        instance = self.stack.start_compute_api(workers=2, server='uwsgi')
        url = instance['url']
        self.assertKeptAliveClientsServed(url)
        image_id = self.stack.create_image()
        self.assertDeleted(self.delete(image_id, url=url), image_id)
        other = self.stack.create_image()
        self.assertFault(self.delete(other, user='demo-reader', url=url),
                         403, 'forbidden')
        self.assertImageKept(other)


class TestRefusesToStart(base.FunctionalTestCase):
    """A compute-api that could not serve does not start: gunicorn (the
    shipped example, from the service's runtime environment) exits, the
    log names what is missing, and nothing ever answers /healthcheck."""

    def start_with(self, config_dir):
        workdir = self.state['workdir']
        name = f'refused-{self.getUniqueInteger()}'
        port = stack.free_ports(1)[0]
        conf = os.path.join(workdir, f'{name}.conf.py')
        stack.write_compute_gunicorn_conf(conf, port=port, workers=2,
                                          log_name=name, workdir=workdir)
        pid = stack.start_gunicorn(name, conf, workdir,
                                   {stack.COMPUTE_CONFIG_ENV: config_dir},
                                   service=True)
        self.addCleanup(stack.stop_process, pid)
        log = os.path.join(workdir, 'logs', f'{name}.log')
        deadline = time.monotonic() + 30
        health = []
        while stack.pid_alive(pid) and time.monotonic() < deadline:
            status = stack.answer_status(
                f'http://127.0.0.1:{port}/healthcheck')
            if status is not None:
                health.append(status)
            time.sleep(0.2)
        self.assertFalse(stack.pid_alive(pid), 'gunicorn kept running')
        self.assertEqual([], [s for s in health if s == 200])
        with open(log) as f:
            return f.read()

    def test_missing_config_directory(self):
        log = self.start_with('/nonexistent')
        self.assertIn('/nonexistent/compute_api.conf does not exist', log)

    def test_missing_service_credentials(self):
        config_dir = os.path.join(self.state['workdir'],
                                  f'nocreds-{self.getUniqueInteger()}')
        sections = stack.read_ini(os.path.join(
            self.state['compute_config_dir'], 'compute_api.conf'))
        for option in ('auth_type', 'password', 'username'):
            del sections['keystone_authtoken'][option]
        stack.write_compute_config(config_dir, sections)
        log = self.start_with(config_dir)
        self.assertIn('[keystone_authtoken] has no auth_type', log)
