"""What an operator changes: Glance's reachability and the policy file.

These tests start their own compute-api instance (same Keystone and Glance,
own config directory and port) so they can change its configuration without
disturbing the other tests.
"""

import configparser
import os
import sys
import time

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

    def test_gunicorn_example_config_serves_deletes(self):
        example = os.path.join(stack.REPO_ROOT, 'etc', 'compute_api',
                               'gunicorn.conf.py.example')
        workdir = self.state['workdir']
        name = f'gunicorn-example-{self.getUniqueInteger()}'
        port = stack.free_ports(1)[0]
        log = os.path.join(workdir, 'logs', f'{name}.log')
        conf = os.path.join(workdir, f'{name}.conf.py')
        with open(conf, 'w') as f:
            f.write(f'exec(open({example!r}).read())\n'
                    f'bind = "127.0.0.1:{port}"\n'
                    'workers = 2\n'
                    f'accesslog = errorlog = {log!r}\n'
                    'control_socket_disable = True\n')
        pid = stack.start_gunicorn(
            name, conf, workdir,
            {'OS_COMPUTE_API_CONFIG_DIR': self.state['compute_config_dir']})
        self.addCleanup(stack.stop_process, pid)
        url = f'http://127.0.0.1:{port}'
        stack.wait_http(name, url + '/', pid, log, 30)
        image_id = self.stack.create_image()
        resp = self.delete(image_id, url=url)
        self.assertDeleted(resp, image_id)
        with open(log) as f:
            access = f.read()
        # the example's access log format records the request id
        self.assertIn(resp.headers['x-openstack-request-id'], access)

    def test_uwsgi_example_config_serves_deletes(self):
        example = os.path.join(stack.REPO_ROOT, 'etc', 'compute_api',
                               'uwsgi.ini.example')
        parser = configparser.ConfigParser(strict=False,
                                           inline_comment_prefixes=(';',))
        parser.read(example)
        settings = dict(parser['uwsgi'])
        port = stack.free_ports(1)[0]
        workdir = self.state['workdir']
        name = f'uwsgi-example-{self.getUniqueInteger()}'
        log = os.path.join(workdir, 'logs', f'{name}.log')
        # uwsgi from PyPI has Python built in: no plugin line, and the
        # virtual environment is the one running these tests.
        settings.pop('plugins')
        settings.update({
            'virtualenv': sys.prefix, 'http-socket': f'127.0.0.1:{port}',
            'processes': '2', 'logto': log,
            'env': 'OS_COMPUTE_API_CONFIG_DIR=' +
                   self.state['compute_config_dir']})
        ini = os.path.join(workdir, f'{name}.ini')
        with open(ini, 'w') as f:
            f.write('[uwsgi]\n' + ''.join(f'{k} = {v}\n'
                                          for k, v in settings.items()))
        uwsgi = os.path.join(os.path.dirname(sys.executable), 'uwsgi')
        pid = stack.spawn([uwsgi, '--ini', ini], log, dict(os.environ))
        self.addCleanup(stack.stop_process, pid)
        url = f'http://127.0.0.1:{port}'
        stack.wait_http(name, url + '/', pid, log, 30)
        image_id = self.stack.create_image()
        self.assertDeleted(self.delete(image_id, url=url), image_id)
        other = self.stack.create_image()
        self.assertFault(self.delete(other, user='demo-reader', url=url),
                         403, 'forbidden')
        self.assertImageKept(other)
