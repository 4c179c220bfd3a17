"""Faults of the neighbours, on the real stack.

A dedicated compute-api instance reaches Glance, Keystone or memcached
through a FaultProxy on 127.0.0.1, so each test can make one neighbour fail
in one way without disturbing the shared stack; every test ends with the
proxy passing traffic again and a request that succeeds.
"""

import time
from urllib import parse

from tests import stack
from tests.functional import base
from tests.functional import fault_proxy

GLANCE_CONF = {'timeout': 2, 'connect_retries': 1, 'connect_retry_delay': 0.2,
               'status_code_retries': 1, 'status_code_retry_delay': 0.2}
# (1 + connect_retries + status_code_retries) * timeout + delays, plus slack
GLANCE_BOUND = 3 * 2 + 0.4 + 1.5


class _ProxiedTestCase(base.FunctionalTestCase):

    def proxy_for(self, url):
        port = parse.urlsplit(url).port
        proxy = fault_proxy.FaultProxy(port)
        self.addCleanup(proxy.stop)
        return proxy


class TestGlanceFaults(_ProxiedTestCase):

    def setUp(self):
        super().setUp()
        self.proxy = self.proxy_for(self.state['glance_url'])
        conf = dict(GLANCE_CONF, endpoint_override=self.proxy.url())
        self.instance = self.stack.start_compute_api(
            conf_overrides={'glance': conf})

    def timed_delete(self, image_id):
        start = time.monotonic()
        resp = self.delete(image_id, url=self.instance['url'])
        return resp, time.monotonic() - start

    def assertRecovers(self):
        self.proxy.set_mode('pass')
        image_id = self.stack.create_image()
        self.assertDeleted(self.delete(image_id, url=self.instance['url']),
                           image_id)

    def assertUnavailable(self, mode, attempts):
        image_id = self.stack.create_image()
        self.proxy.set_mode(mode)
        self.proxy.connections = 0
        resp, elapsed = self.timed_delete(image_id)
        self.assertFault(resp, 503, 'serviceUnavailable')
        self.assertLess(elapsed, GLANCE_BOUND, mode)
        self.assertEqual(attempts, self.proxy.connections, mode)
        self.assertImageKept(image_id)
        self.assertRecovers()

    def test_glance_down(self):
        self.assertUnavailable('refuse', 2)     # 1 + connect_retries

    def test_glance_stalled(self):
        image_id = self.stack.create_image()
        self.proxy.set_mode('stall')
        resp, elapsed = self.timed_delete(image_id)
        self.assertFault(resp, 503, 'serviceUnavailable')
        self.assertGreaterEqual(elapsed, 2)     # waited for the timeout
        self.assertLess(elapsed, GLANCE_BOUND)
        self.assertImageKept(image_id)
        self.assertRecovers()

    def test_glance_500(self):
        self.assertUnavailable('status:500', 1)  # not retried

    def test_glance_overloaded(self):
        for status in (502, 503, 504):           # retried once each
            self.assertUnavailable(f'status:{status}', 2)

    def test_glance_answers_garbage(self):
        self.assertUnavailable('garbage', 2)

    def test_answer_lost_after_glance_deleted(self):
        # Glance deletes the image but its answer never arrives; the retry
        # finds no image: the client is told 404 (the image is gone), never
        # a 204 for a deletion the service did not see succeed.
        image_id = self.stack.create_image()
        self.proxy.set_mode('lose')
        resp, _ = self.timed_delete(image_id)
        self.assertEqual(404, resp.status_code, resp.text)
        self.assertIsNone(self.stack.glance_image(image_id, 'admin'))
        self.assertRecovers()


class TestKeystoneFaults(_ProxiedTestCase):
    """auth_token validates tokens at the identity endpoint of its service
    catalog, so the proxy is registered as the identity endpoint of a
    region of its own, which only this test's compute-api uses."""

    def register_identity_region(self, url):
        admin = self.stack.session('admin')
        keystone = self.state['keystone_url']
        region = f'fault-{self.getUniqueInteger()}-{time.time_ns()}'

        def call(method, path, body=None):
            return admin.request(keystone + path, method, json=body).json()
        call('POST', '/regions', {'region': {'id': region}})
        (identity,) = call('GET', '/services?type=identity')['services']
        for interface in ('public', 'internal', 'admin'):
            endpoint = call('POST', '/endpoints', {'endpoint': {
                'service_id': identity['id'], 'interface': interface,
                'url': url, 'region_id': region}})['endpoint']
            self.addCleanup(admin.delete,
                            f'{keystone}/endpoints/{endpoint["id"]}')
        return region

    def test_cached_tokens_survive_uncached_get_503(self):
        proxy = self.proxy_for(self.state['keystone_url'])
        keystone = proxy.url('/v3')
        region = self.register_identity_region(keystone)
        instance = self.stack.start_compute_api(conf_overrides={
            'keystone_authtoken': {'auth_url': keystone,
                                   'region_name': region,
                                   'http_connect_timeout': 2,
                                   'http_request_max_retries': 1}})
        url = instance['url']
        cached = stack.get_session(self.state, 'demo-member').get_token()
        first = self.stack.create_image()
        self.assertDeleted(self.delete(first, token=cached, url=url), first)
        self.assertGreater(proxy.connections, 0)

        proxy.set_mode('refuse')
        second = self.stack.create_image()
        self.assertDeleted(self.delete(second, token=cached, url=url),
                           second)
        uncached = stack.get_session(self.state, 'demo-member').get_token()
        third = self.stack.create_image()
        resp = self.delete(third, token=uncached, url=url)
        self.assertEqual(503, resp.status_code, resp.text)
        self.assertTrue(resp.headers['Content-Type'].startswith(
            'application/json'))
        self.assertImageKept(third)

        proxy.set_mode('pass')
        self.assertDeleted(self.delete(third, token=uncached, url=url),
                           third)


class TestMemcachedFaults(_ProxiedTestCase):

    def test_service_keeps_serving_without_memcached(self):
        host, port = self.state['memcached'].split(':')
        proxy = fault_proxy.FaultProxy(int(port), mode='refuse')
        self.addCleanup(proxy.stop)
        instance = self.stack.start_compute_api(conf_overrides={
            'keystone_authtoken': {
                'memcached_servers': f'127.0.0.1:{proxy.port}'}})
        for _ in range(2):
            image_id = self.stack.create_image()
            self.assertDeleted(
                self.delete(image_id, url=instance['url']), image_id)
        self.assertGreater(proxy.connections, 0)  # it did try memcached
