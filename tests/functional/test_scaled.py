"""The scaled stack: compute-api instances behind HAProxy over TLS.

This module starts a stack of its own, once (``Stack(scaled=True)``):
Keystone and Glance on a private PostgreSQL cluster with two workers each,
two compute-api instances sharing memcached behind HAProxy, which
terminates TLS with a certificate of the stack's own CA and checks the
instances' ``/healthcheck``. The catalog's ``compute`` endpoint is
HAProxy's, and so is its ``image`` endpoint: compute-api reaches Glance
over HTTPS with ``[glance] cafile``. HAProxy logs one line per request
naming the instance that served it (``logs/haproxy.log``); each instance
logs its requests in ``logs/<instance>-app.log``.
"""

import concurrent.futures
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import ssl
import tempfile
import threading
import time
import uuid

import openstack
import requests
from tempest.lib import auth
from tempest.lib.services.compute import images_client
import testtools
from testtools import content

from tests import stack
from tests.stack import compute
from tests.stack import haproxy
from tests.stack import tls

USER = 'demo-member'


class TestScaledStack(testtools.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp(prefix='compute-api-scaled-')
        # PostgreSQL runs as its own user, which must reach its cluster.
        os.chmod(cls.tmp, 0o711)  # noqa: S103 (enter only, no listing)
        cls.the_stack = stack.Stack(pathlib.Path(cls.tmp) / 'stack',
                                    compute_workers=1, scaled=True)
        started = time.monotonic()
        try:
            cls.state = cls.the_stack.up()
        except BaseException:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise
        cls.startup_seconds = time.monotonic() - started
        cls.logs = pathlib.Path(cls.state['workdir']) / 'logs'
        cls.admin = stack.get_session(cls.state, 'admin')
        cls.member = stack.get_session(cls.state, USER)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.the_stack.down()
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()

    # helpers ---------------------------------------------------------------

    def create_images(self, count):
        return [stack.create_image(self.state, self.member,
                                   name=f'scaled-{n}')
                for n in range(count)]

    def token(self):
        return stack.get_session(self.state, USER).get_token()

    def delete(self, image_id, token, base=None, verify=None):
        """DELETE through HAProxy (https, the stack's CA) or ``base``."""
        base = base or self.state['compute_endpoint']
        return requests.delete(f'{base}/images/{image_id}',
                               headers={'X-Auth-Token': token},
                               verify=verify or self.state['ca_file'],
                               timeout=60)

    def assertGone(self, image_id):
        self.assertIsNone(stack.glance_image(self.state, self.admin,
                                             image_id))

    def served_by(self, image_ids):
        """``{instance: image ids}`` of the DELETEs in each instance's log.
        """
        found = {}
        for name in self.state['instances']:
            text = (self.logs / f'{name}-app.log').read_text()
            found[name] = {i for i in image_ids
                           if re.search(rf'DELETE \S*/images/{i} ', text)}
        return found

    def keystone_validations(self):
        text = (self.logs / 'keystone-access.log').read_text()
        return text.count('"GET /v3/auth/tokens ')

    # tests -----------------------------------------------------------------

    def test_deletes_land_on_every_instance(self):
        images = self.create_images(6)
        token = self.token()
        for image_id in images:
            self.assertEqual(204, self.delete(image_id, token).status_code)
            self.assertGone(image_id)
        served = self.served_by(images)
        for name, ids in served.items():
            self.assertTrue(ids, f'{name} served none of {images}')
        self.assertEqual(set(images), set().union(*served.values()))
        # HAProxy's log names the instance of every DELETE too.
        log = (self.logs / 'haproxy.log').read_text()
        for image_id in images:
            self.assertRegex(log, rf'compute_api_instances/compute-api-\d '
                                  rf'.* 204 .*"DELETE \S*/images/{image_id} ')

    def test_token_validated_by_one_instance_is_a_cache_hit_on_another(self):
        first, second = sorted(self.state['instances'].values(),
                               key=lambda i: i['url'])
        # Both instances get their own service token first.
        warm = self.token()
        for instance in (first, second):
            response = self.delete(uuid.uuid4(), warm,
                                   base=instance['url'] + '/v2.1')
            self.assertEqual(404, response.status_code)
        token = self.token()
        before = self.keystone_validations()
        response = self.delete(uuid.uuid4(), token,
                               base=first['url'] + '/v2.1')
        self.assertEqual(404, response.status_code)
        validated = self.keystone_validations()
        self.assertGreater(validated, before)
        image_id = self.create_images(1)[0]
        response = self.delete(image_id, token, base=second['url'] + '/v2.1')
        self.assertEqual(204, response.status_code)
        self.assertGone(image_id)
        # The second instance found the token in memcached.
        self.assertEqual(validated, self.keystone_validations())

    def test_version_links_are_https(self):
        response = requests.get(self.state['compute_endpoint'] + '/',
                                verify=self.state['ca_file'], timeout=10)
        self.assertEqual(200, response.status_code)
        links = [link['href'] for link in response.json()['version']['links']
                 if link['rel'] == 'self']
        self.assertEqual([self.state['compute_endpoint'] + '/'], links)

    def test_certificate_of_an_unknown_ca_is_refused(self):
        image_id = self.create_images(1)[0]
        self.assertRaises(requests.exceptions.SSLError, self.delete,
                          image_id, self.token(), verify=True)
        self.assertIsNotNone(stack.glance_image(self.state, self.admin,
                                                image_id))

    def test_tempest_images_client_over_https(self):
        info = self.state['users'][USER]
        creds = auth.KeystoneV3Credentials(
            username=USER, password=info['password'],
            project_name=info['project_name'], user_domain_name='Default',
            project_domain_name='Default')
        provider = auth.KeystoneV3AuthProvider(
            creds, self.state['keystone_url'],
            ca_certs=self.state['ca_file'])
        client = images_client.ImagesClient(
            provider, 'compute', self.state['region'],
            ca_certs=self.state['ca_file'])
        self.assertTrue(client.base_url.startswith('https://'))
        image_id = self.create_images(1)[0]
        body = client.delete_image(image_id)
        self.assertEqual(204, body.response.status)
        self.assertGone(image_id)

    def test_openstacksdk_over_https(self):
        info = self.state['users'][USER]
        conn = openstack.connect(
            auth_url=self.state['keystone_url'], username=USER,
            password=info['password'], project_name=info['project_name'],
            user_domain_name='Default', project_domain_name='Default',
            region_name=self.state['region'], cacert=self.state['ca_file'])
        self.addCleanup(conn.close)
        self.assertTrue(conn.compute.get_endpoint().startswith('https://'))
        image_id = self.create_images(1)[0]
        conn.compute.delete_image(image_id, ignore_missing=False)
        self.assertGone(image_id)

    # What HAProxy itself answers and logs ----------------------------------

    def tls_connection(self, ciphers=None):
        """A TLS socket to HAProxy, verified with the stack's CA; with
        ``ciphers``, TLS 1.2 with only these."""
        context = ssl.create_default_context(cafile=self.state['ca_file'])
        if ciphers:
            context.maximum_version = ssl.TLSVersion.TLSv1_2
            context.set_ciphers(ciphers)
        raw = socket.create_connection(
            ('127.0.0.1', self.state['ports']['haproxy']), timeout=20)
        self.addCleanup(raw.close)
        return context.wrap_socket(raw, server_hostname='127.0.0.1')

    def start_chunked_delete(self, image_id):
        """A DELETE whose chunked body never comes; returns its socket."""
        conn = self.tls_connection()
        conn.sendall(f'DELETE /v2.1/images/{image_id} HTTP/1.1\r\n'
                     'Host: 127.0.0.1\r\n'
                     'Transfer-Encoding: chunked\r\n\r\n'.encode())
        return conn

    def read_answer(self, conn):
        """``(status, {lowercase header: value}, body)`` of one answer
        that ends with the connection."""
        data = b''
        while chunk := conn.recv(65536):
            data += chunk
        head, _, body = data.partition(b'\r\n\r\n')
        lines = head.decode('latin-1').split('\r\n')
        headers = dict((k.strip().lower(), v.strip()) for k, v in
                       (line.split(':', 1) for line in lines[1:]))
        return int(lines[0].split()[1]), headers, body

    def assertHAProxyFault(self, status, name, headers, body):
        self.assertTrue(headers['content-type'].startswith(
            'application/json'), headers)
        fault = json.loads(body)
        self.assertEqual([name], list(fault))
        self.assertEqual(status, fault[name]['code'])
        self.assertTrue(fault[name]['message'])
        request_id = headers['x-openstack-request-id']
        self.assertRegex(request_id, r'^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]'
                                     r'{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$')
        self.assertEqual(request_id, headers['x-compute-request-id'])

    def test_stalled_chunked_requests_do_not_take_instances_down(self):
        # More DELETEs that never send their body than the instances have
        # workers: HAProxy holds them itself until the request timeout.
        stalled = [self.start_chunked_delete(uuid.uuid4()) for _ in range(6)]
        time.sleep(3.5)  # more than two health checks
        self.assertEqual({'UP'}, set(haproxy.server_status(self.state)
                                     .values()))
        image_id = self.create_images(1)[0]
        token = self.token()
        sent = time.monotonic()
        self.assertEqual(204, self.delete(image_id, token).status_code)
        self.assertLess(time.monotonic() - sent, 5)
        self.assertGone(image_id)
        # The stalled requests end with HAProxy's 408, as a fault.
        status, headers, body = self.read_answer(stalled[0])
        self.assertEqual(408, status)
        self.assertHAProxyFault(408, 'computeFault', headers, body)

    def test_haproxy_answers_a_bad_chunked_body_with_a_fault(self):
        image_id = self.create_images(1)[0]
        conn = self.start_chunked_delete(image_id)
        time.sleep(0.5)
        conn.sendall(b'not-a-chunk-size\r\n')
        status, headers, body = self.read_answer(conn)
        self.assertEqual(400, status)
        self.assertHAProxyFault(400, 'badRequest', headers, body)
        self.assertIsNotNone(stack.glance_image(self.state, self.admin,
                                                image_id))

    def test_no_instance_up_is_a_fault_with_a_request_id(self):
        image_id = self.create_images(1)[0]
        token = self.token()
        files = [pathlib.Path(instance['disable_file'])
                 for instance in self.state['instances'].values()]

        def restore():
            for path in files:
                path.unlink(missing_ok=True)
            haproxy.wait_status(self.state, 'UP')
        self.addCleanup(restore)
        for path in files:
            path.touch()
        haproxy.wait_status(self.state, 'DOWN')
        response = self.delete(image_id, token)
        self.assertEqual(503, response.status_code)
        self.assertHAProxyFault(
            503, 'serviceUnavailable',
            {k.lower(): v for k, v in response.headers.items()},
            response.content)
        self.assertIsNotNone(stack.glance_image(self.state, self.admin,
                                                image_id))

    def test_query_strings_are_not_logged(self):
        image_id = self.create_images(1)[0]
        canary = f'canary-{uuid.uuid4()}'
        response = requests.delete(
            f'{self.state["compute_endpoint"]}/images/{image_id}',
            params={'token': canary},
            headers={'X-Auth-Token': self.token()},
            verify=self.state['ca_file'], timeout=60)
        self.assertIn(response.status_code, (204, 400))
        # HAProxy logs a request once its answer is sent.
        line = f'"DELETE /v2.1/images/{image_id} HTTP/1.1"'
        deadline = time.monotonic() + 5
        while (line not in (log := (self.logs / 'haproxy.log').read_text())
               and time.monotonic() < deadline):
            time.sleep(0.1)
        self.assertTrue(line in log, f'no {line} in haproxy.log')
        self.assertFalse(canary in log, f'{canary} in haproxy.log')

    def test_tls_1_2_only_with_ecdhe_and_aead(self):
        # RSA key exchange, and CBC ciphers, are refused.
        for cipher in ('AES128-SHA', 'AES128-GCM-SHA256',
                       'ECDHE-RSA-AES128-SHA'):
            self.assertRaises(ssl.SSLError, self.tls_connection, cipher)
        conn = self.tls_connection('ECDHE-RSA-AES128-GCM-SHA256')
        self.assertEqual(('ECDHE-RSA-AES128-GCM-SHA256', 'TLSv1.2'),
                         conn.cipher()[:2])

    # Glance over HTTPS ------------------------------------------------------

    def instance_with(self, **glance):
        """An extra compute-api with these ``[glance]`` options."""
        name = f'compute-{uuid.uuid4().hex[:12]}'
        instance = stack.start_compute_api(self.state, name,
                                           conf_overrides={'glance': glance})
        self.addCleanup(stack.stop_process, instance['pid'])
        return instance['url'] + '/v2.1'

    def other_ca(self):
        directory = tempfile.mkdtemp(dir=self.tmp)
        return str(tls.make_ca(directory, pathlib.Path(directory) / 'log',
                               subject='/CN=another CA'))

    def assertNeverReachedGlance(self, image_id):
        """No request for ``image_id`` arrived at HAProxy or Glance: the
        TLS handshake failed before the token could be sent."""
        for log in ('haproxy.log', 'glance-access.log'):
            self.assertNotIn(f'/v2/images/{image_id}',
                             (self.logs / log).read_text(), log)
        self.assertIsNotNone(stack.glance_image(self.state, self.admin,
                                                image_id))

    def test_glance_is_reached_over_https(self):
        endpoint = self.admin.get_endpoint(service_type='image',
                                           interface='public')
        self.assertEqual(self.state['glance_endpoint'], endpoint)
        self.assertTrue(endpoint.startswith('https://'))
        image_id = self.create_images(1)[0]
        self.assertEqual(204, self.delete(image_id, self.token()).status_code)
        self.assertGone(image_id)
        self.assertRegex((self.logs / 'haproxy.log').read_text(),
                         rf'glance_https~ glance/glance .* 204 .*'
                         rf'"DELETE /v2/images/{image_id} ')

    def test_glance_certificate_of_another_ca_is_503(self):
        base = self.instance_with(cafile=self.other_ca())
        image_id = self.create_images(1)[0]
        response = self.delete(image_id, self.token(), base=base)
        self.assertEqual(503, response.status_code)
        self.assertNeverReachedGlance(image_id)

    def test_glance_certificate_for_another_host_is_503(self):
        base = self.instance_with(
            endpoint_override=self.state['glance_wrong_name_url'])
        image_id = self.create_images(1)[0]
        response = self.delete(image_id, self.token(), base=base)
        self.assertEqual(503, response.status_code)
        self.assertNeverReachedGlance(image_id)

    def test_insecure_accepts_a_certificate_that_does_not_verify(self):
        base = self.instance_with(
            endpoint_override=self.state['glance_wrong_name_url'],
            cafile=self.other_ca(), insecure=True)
        image_id = self.create_images(1)[0]
        response = self.delete(image_id, self.token(), base=base)
        self.assertEqual(204, response.status_code)
        self.assertGone(image_id)

    # Instances failing and restarted under load -----------------------------

    def run_load(self, images, action, concurrency, rate, linger=1.5):
        """Delete ``images`` through HAProxy from ``concurrency`` clients,
        ``rate`` requests a second in all, while ``action()`` runs and
        ``linger`` seconds after; returns the results
        ``[(image_id, status, sent_at, answered_at)]`` and what ``action``
        returned. Images left over are deleted afterwards."""
        token = self.token()
        lock = threading.Lock()
        todo = list(images)
        results = []
        interval = concurrency / rate
        done = threading.Event()

        def client():
            while not done.is_set():
                with lock:
                    if not todo:
                        return
                    image_id = todo.pop()
                sent = time.monotonic()
                try:
                    status = self.delete(image_id, token).status_code
                except requests.RequestException as exc:
                    status = type(exc).__name__
                answered = time.monotonic()
                with lock:
                    results.append((image_id, status, sent, answered))
                time.sleep(max(0.0, interval - (answered - sent)))

        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
            clients = [pool.submit(client) for _ in range(concurrency)]
            try:
                outcome = action()
                time.sleep(linger)
            finally:
                done.set()
            for future in clients:
                future.result()
        for image_id in todo:
            self.assertIn(self.delete(image_id, token).status_code, (204,))
        return results, outcome

    def summarize(self, results, windows):
        """Record the load's figures in the test's details."""
        counts = {}
        for _, status, _, _ in results:
            counts[status] = counts.get(status, 0) + 1
        start = min(sent for _, _, sent, _ in results)
        end = max(answered for _, _, _, answered in results)
        lines = [f'{len(results)} requests in {end - start:.1f}s: '
                 + ', '.join(f'{n} x {s}' for s, n in sorted(
                     counts.items(), key=str))]
        lines += [f'{what}: {a - start:.2f}s to {b - start:.2f}s'
                  for what, (a, b) in windows.items()]
        self.addDetail('load', content.text_content('\n'.join(lines)))

    def test_instance_killed_mid_load(self):
        images = self.create_images(100)
        name = 'compute-api-1'

        def kill_and_restart():
            time.sleep(1.0)
            killed_at = time.monotonic()
            os.killpg(self.state['pids'][name], signal.SIGKILL)
            time.sleep(0.5)
            compute.restart_instance(self.state, name)
            haproxy.wait_status(self.state, 'UP', [name])
            return killed_at, time.monotonic()

        results, (killed_at, back_at) = self.run_load(
            images, kill_and_restart, concurrency=4, rate=16)
        self.summarize(results, {'killed until back in HAProxy':
                                 (killed_at, back_at)})
        statuses = {status for _, status, _, _ in results}
        self.assertLessEqual(statuses, {204, 404, 502, 503}, results)
        for _, status, sent, answered in results:
            if status in (502, 503):
                # Only a request in flight while the instance was down.
                self.assertLessEqual(sent, back_at + 1.0)
                self.assertGreaterEqual(answered, killed_at)
        for image_id, status, _, _ in results:
            if status in (502, 503):
                # The client's retry: the image is deleted either way.
                retry = self.delete(image_id, self.token()).status_code
                self.assertIn(retry, (204, 404))
            self.assertGone(image_id)
        # The restarted instance serves again.
        later = self.create_images(4)
        token = self.token()
        for image_id in later:
            self.assertEqual(204, self.delete(image_id, token).status_code)
        self.assertTrue(self.served_by(later)[name])

    def test_rolling_restart_without_failed_requests(self):
        images = self.create_images(120)
        name = 'compute-api-2'
        instance = self.state['instances'][name]

        def drain_restart_and_return():
            time.sleep(0.5)
            drained_at = time.monotonic()
            # Drain: /healthcheck answers 503, HAProxy stops sending it new
            # requests; the ones it serves finish.
            pathlib.Path(instance['disable_file']).touch()
            haproxy.wait_status(self.state, 'DOWN', [name])
            stack.stop_process(self.state['pids'][name])
            compute.restart_instance(self.state, name)
            # Back in service.
            pathlib.Path(instance['disable_file']).unlink()
            haproxy.wait_status(self.state, 'UP', [name])
            return drained_at, time.monotonic()

        results, (drained_at, back_at) = self.run_load(
            images, drain_restart_and_return, concurrency=2, rate=8)
        self.summarize(results, {'drained until back in HAProxy':
                                 (drained_at, back_at)})
        failed = [r for r in results if r[1] != 204]
        self.assertEqual([], failed)
        for image_id, _, _, _ in results:
            self.assertGone(image_id)
        served_after = [image_id for image_id, _, sent, _ in results
                        if sent > back_at]
        self.assertTrue(served_after, 'the load ended before the restart')
