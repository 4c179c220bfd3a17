"""Faults of the neighbours, on the real stack.

A dedicated compute-api instance reaches Glance, Keystone or memcached
through a FaultProxy on 127.0.0.1, so each test can make one neighbour fail
in one way without disturbing the shared stack; every test ends with the
proxy passing traffic again and a request that succeeds.
"""

import time
from urllib import parse

import requests

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


class _GlanceProxiedTestCase(_ProxiedTestCase):
    """A compute-api instance reaching Glance through a FaultProxy, with
    ``glance_conf`` as its [glance] options."""

    glance_conf = GLANCE_CONF

    def setUp(self):
        super().setUp()
        self.proxy = self.proxy_for(self.state['glance_url'])
        conf = dict(self.glance_conf, endpoint_override=self.proxy.url())
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

    def recorded_delete(self, mode, user='demo-member'):
        """Delete an image of ``user`` through the proxy in ``mode`` (which
        relays to Glance); return the headers Glance was sent."""
        image_id = self.stack.create_image(user)
        self.proxy.set_mode(mode)
        self.proxy.requests.clear()
        resp = self.delete(image_id, user=user, url=self.instance['url'])
        self.assertDeleted(resp, image_id)
        (headers,) = self.proxy.requests
        return headers


class TestGlanceFaults(_GlanceProxiedTestCase):

    def test_glance_down(self):
        self.assertUnavailable('refuse', 2)     # 1 + connect_retries

    def test_glance_stalled(self):
        # A read timeout is retried as a connection failure would be: one
        # attempt plus connect_retries, each waiting for the timeout.
        image_id = self.stack.create_image()
        self.proxy.set_mode('stall')
        self.proxy.connections = 0
        resp, elapsed = self.timed_delete(image_id)
        self.assertFault(resp, 503, 'serviceUnavailable')
        self.assertEqual(2, self.proxy.connections)
        self.assertGreaterEqual(elapsed, 2 * 2)  # waited for each timeout
        self.assertLess(elapsed, GLANCE_BOUND)
        self.assertImageKept(image_id)
        self.assertRecovers()

    def test_glance_401_is_not_retried(self):
        image_id = self.stack.create_image()
        self.proxy.set_mode('status:401')
        self.proxy.connections = 0
        resp, _ = self.timed_delete(image_id)
        self.assertFault(resp, 401, 'unauthorized')
        self.assertEqual(1, self.proxy.connections)
        self.assertImageKept(image_id)
        self.assertRecovers()

    def test_service_token_sent_by_default(self):
        headers = self.recorded_delete('record')
        service_token = headers['x-service-token']
        self.assertNotEqual(headers['x-auth-token'], service_token)
        # It is the service user's, and that user has only "service".
        keystone = self.state['keystone_url']
        token = self.stack.session('admin').get(
            f'{keystone}/auth/tokens',
            headers={'X-Subject-Token': service_token}).json()['token']
        self.assertEqual('compute', token['user']['name'])
        self.assertEqual(['service'], [r['name'] for r in token['roles']])

    def test_cookies_set_for_one_user_are_not_sent_for_another(self):
        # Whatever fronts Glance sets a cookie on every answer; the service
        # keeps none, so no user's request carries another's cookie.
        self.recorded_delete('cookie', user='demo-member')
        headers = self.recorded_delete('cookie', user='alt-member')
        self.assertNotIn('cookie', headers)

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


class TestGlanceWithoutServiceToken(_GlanceProxiedTestCase):

    glance_conf = dict(GLANCE_CONF, send_service_token=False)

    def test_only_the_callers_token_is_sent(self):
        headers = self.recorded_delete('record')
        self.assertIn('x-auth-token', headers)
        self.assertNotIn('x-service-token', headers)


class TestGlanceTotalTimeout(_GlanceProxiedTestCase):
    """``total_timeout`` bounds the attempts; the worker timeout bounds an
    answer that trickles in."""

    glance_conf = dict(GLANCE_CONF, connect_retries=3, total_timeout=5)
    HARAKIRI = 8

    def setUp(self):
        _ProxiedTestCase.setUp(self)
        self.proxy = self.proxy_for(self.state['glance_url'])
        conf = dict(self.glance_conf, endpoint_override=self.proxy.url())
        self.instance = self.stack.start_compute_api(
            conf_overrides={'glance': conf}, server='uwsgi',
            server_settings={'harakiri': self.HARAKIRI})

    def test_retries_of_a_stalled_glance_are_cut(self):
        # 1 + 3 connect retries of 2 s each would take 8.6 s: the third
        # attempt is cut short and there is no fourth.
        image_id = self.stack.create_image()
        self.proxy.set_mode('stall')
        self.proxy.connections = 0
        resp, elapsed = self.timed_delete(image_id)
        self.assertFault(resp, 503, 'serviceUnavailable')  # with request ids
        self.assertGreaterEqual(elapsed, 5 - 0.1)
        self.assertLess(elapsed, 5 + 1)
        self.assertEqual(3, self.proxy.connections)
        self.assertImageKept(image_id)
        self.assertRecovers()

    def test_a_trickling_answer_is_ended_by_the_worker_timeout(self):
        # One header line a second: no read ever waits for the 2 s timeout,
        # and total_timeout does not cut an attempt: uWSGI's harakiri ends
        # the worker, and the client's connection closes without an answer.
        image_id = self.stack.create_image()
        self.proxy.set_mode('drip:1')
        self.proxy.connections = 0
        started = time.monotonic()
        self.assertRaises(requests.ConnectionError, self.delete, image_id,
                          url=self.instance['url'])
        elapsed = time.monotonic() - started
        # uWSGI's master checks harakiri in whole seconds: it may strike up
        # to a second or so early, still well past total_timeout (5 s)
        self.assertGreaterEqual(elapsed, self.HARAKIRI - 1.5)
        self.assertLess(elapsed, self.HARAKIRI + 3)
        self.assertEqual(1, self.proxy.connections)
        self.assertImageKept(image_id)
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
