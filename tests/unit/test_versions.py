"""Version documents and the healthcheck are served without a token."""

from tests.unit import base
from tests.unit import fakes


class TestVersions(base.APITestCase):

    def test_root_lists_v2_1(self):
        resp = self.request('/', method='GET', identity=None)
        self.assertEqual(200, resp.status_int)
        (version,) = resp.json['versions']
        self.assertEqual('v2.1', version['id'])
        self.assertEqual('CURRENT', version['status'])
        self.assertEqual('2.1', version['min_version'])
        self.assertEqual('2.104', version['version'])
        self.assertEqual('http://localhost/v2.1/',
                         version['links'][0]['href'])

    def test_v2_1_document_with_and_without_slash(self):
        for path in ('/v2.1', '/v2.1/'):
            resp = self.request(path, method='GET', identity=None)
            self.assertEqual(200, resp.status_int)
            doc = resp.json['version']
            self.assertEqual(('v2.1', '2.1', '2.104'),
                             (doc['id'], doc['min_version'], doc['version']))
            self.assertEqual('application/json; charset=UTF-8',
                             resp.headers['Content-Type'])



class TestVersionsBehindProxy(base.APITestCase):

    conf_text = ('[oslo_middleware]\n'
                 'enable_proxy_headers_parsing = True\n')

    def test_links_follow_proxy_headers(self):
        resp = self.request('/', method='GET', identity=None, headers={
            'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'api.test'})
        self.assertEqual('https://api.test/v2.1/',
                         resp.json['versions'][0]['links'][0]['href'])


class TestHealthcheck(base.APITestCase):

    def test_healthcheck(self):
        resp = self.request('/healthcheck', method='GET', identity=None)
        self.assertEqual(200, resp.status_int)

    def test_other_methods_on_version_document_need_a_token(self):
        resp = self.request('/v2.1/', method='DELETE', identity=None)
        self.assertEqual(401, resp.status_int)
        self.assertEqual(fakes.KEYSTONE_401, resp.json)
        self.assertIn('WWW-Authenticate', resp.headers)
