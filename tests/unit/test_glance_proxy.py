"""Proxy environment variables apply to Glance calls, read once per
endpoint."""

import uuid

import fixtures

from tests.unit import base
from tests.unit import fakes

# Never resolved: only a proxy can deliver a request to it.
GLANCE = 'http://glance.invalid:9292'
PROXY_VARIABLES = ('http_proxy', 'https_proxy', 'all_proxy', 'no_proxy')


class ProxyTestCase(base.APITestCase):
    """``proxy`` is a loopback server that records what it is sent."""

    def proxy_env(self):
        return {}

    def setUp(self):
        # The environment is set before the application is built, as the
        # WSGI server's environment is before its workers start.
        self.proxy = fakes.FakeGlance()
        self.addCleanup(self.proxy.stop)
        env = self.proxy_env()
        for name in PROXY_VARIABLES:
            for variable in (name, name.upper()):
                self.useFixture(fixtures.EnvironmentVariable(
                    variable, env.get(name)))
        super().setUp()


class TestProxyFromEnvironment(ProxyTestCase):

    def proxy_env(self):
        return {'http_proxy': self.proxy.url}

    def base_conf(self):
        return super().base_conf().replace(
            f'endpoint_override = {self.glance.url}',
            f'endpoint_override = {GLANCE}')

    def test_glance_calls_go_through_the_proxy(self):
        image_ids = [str(uuid.uuid4()) for _ in range(3)]
        for image_id in image_ids:
            self.assertEqual(204, self.delete_image(image_id).status_int)
        self.assertEqual(
            [('DELETE', f'{GLANCE}/v2/images/{image_id}')
             for image_id in image_ids],
            [(sent.method, sent.path) for sent in self.proxy.requests])
        self.assertGlanceNotCalled()


class TestNoProxy(ProxyTestCase):

    def proxy_env(self):
        return {'http_proxy': self.proxy.url, 'no_proxy': '127.0.0.1'}

    def test_hosts_in_no_proxy_are_called_directly(self):
        for _ in range(2):
            self.assertEqual(204, self.delete_image().status_int)
        self.assertEqual(2, len(self.glance.requests))
        self.assertEqual([], self.proxy.requests)
