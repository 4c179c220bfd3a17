"""Version documents and the healthcheck are served without a token."""

import webob

from compute_api import deploy
from compute_api.middleware import context as context_mw
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

    def test_a_disabled_healthcheck_is_a_compute_fault(self):
        # oslo.middleware answers 503 in the format the client accepts;
        # the client gets the Compute fault whatever that is
        flag = self.write('healthcheck_disable', '')
        self.write('compute_api.conf', self.base_conf()
                   + '[healthcheck]\nbackends = disable_by_file\n'
                   f'disable_by_file_path = {flag}\n')
        self.app = deploy.loadapp(deploy.load_conf(directory=self.config_dir))
        for accept in ('application/json', 'text/html', 'text/plain'):
            resp = self.request('/healthcheck', method='GET', identity=None,
                                headers={'Accept': accept})
            self.assertFault(resp, 503, 'serviceUnavailable')

    def test_a_declined_healthcheck_goes_down_the_pipeline(self):
        # oslo.middleware declines a source outside allowed_source_ranges
        # and, with ignore_proxied_requests, a proxied request: the rest of
        # the pipeline answers (here auth_token's 401: no route is open
        # without a token), never a 5xx
        for conf_text, headers in (
                ('allowed_source_ranges = 192.0.2.0/24\n', {}),
                ('ignore_proxied_requests = true\n',
                 {'X-Forwarded-For': '198.51.100.7'})):
            self.write('compute_api.conf', self.base_conf()
                       + '[healthcheck]\n' + conf_text)
            self.app = deploy.loadapp(
                deploy.load_conf(directory=self.config_dir))
            req = webob.Request.blank('/healthcheck', method='GET',
                                      headers=headers,
                                      remote_addr='127.0.0.1')
            resp = req.get_response(self.app)
            self.assertEqual(401, resp.status_int, resp.body)
            self.assertIn('WWW-Authenticate', resp.headers)
        # and a source inside the ranges gets the healthcheck
        self.write('compute_api.conf', self.base_conf()
                   + '[healthcheck]\nallowed_source_ranges = 127.0.0.0/8\n')
        self.app = deploy.loadapp(deploy.load_conf(directory=self.config_dir))
        req = webob.Request.blank('/healthcheck', method='GET',
                                  remote_addr='127.0.0.1')
        self.assertEqual(200, req.get_response(self.app).status_int)

    def test_other_methods_on_version_document_need_a_token(self):
        resp = self.request('/v2.1/', method='DELETE', identity=None)
        self.assertEqual(401, resp.status_int)
        self.assertEqual(fakes.KEYSTONE_401, resp.json)
        self.assertIn('WWW-Authenticate', resp.headers)


class TestCORS(base.APITestCase):

    conf_text = '[cors]\nallowed_origin = https://dash.test\n'

    def test_preflight_allows_the_microversion_and_request_id_headers(self):
        resp = self.request(
            '/v2.1/images/6f1c3a6e-4a59-4b8e-9a43-0c6f1f9b1a11',
            method='OPTIONS', identity=None, headers={
                'Origin': 'https://dash.test',
                'Access-Control-Request-Method': 'DELETE',
                'Access-Control-Request-Headers':
                    'X-Auth-Token, OpenStack-API-Version, '
                    'X-OpenStack-Request-ID'})
        self.assertEqual(200, resp.status_int)
        self.assertEqual('https://dash.test',
                         resp.headers['Access-Control-Allow-Origin'])
        allowed = resp.headers['Access-Control-Allow-Headers'].lower()
        for header in ('x-auth-token', 'openstack-api-version',
                       'x-openstack-request-id'):
            self.assertIn(header, allowed)
        self.assertIn('x-openstack-request-id', resp.headers)

    def test_responses_expose_the_microversion_and_request_ids(self):
        resp = self.delete_image(headers={'Origin': 'https://dash.test'})
        self.assertEqual(204, resp.status_int)
        exposed = resp.headers['Access-Control-Expose-Headers'].lower()
        for header in ('openstack-api-version',
                       'x-openstack-nova-api-version',
                       'x-openstack-request-id', 'x-compute-request-id'):
            self.assertIn(header, exposed)

    def test_other_origins_get_no_cors_headers(self):
        resp = self.delete_image(headers={'Origin': 'https://evil.test'})
        self.assertEqual(204, resp.status_int)
        self.assertNotIn('Access-Control-Allow-Origin', resp.headers)


class TestContextWithoutIdentity(base.base.BaseTestCase):

    def test_unconfirmed_identity_is_401(self):
        app = context_mw.ContextMiddleware(None, None)
        req = webob.Request.blank('/v2.1/images/x', method='DELETE',
                                  headers={'X-Identity-Status': 'Invalid'})
        resp = req.get_response(app)
        self.assertEqual(401, resp.status_int)
        self.assertIn('unauthorized', resp.json)
        # auth_token, outside this layer, adds WWW-Authenticate (once: see
        # tests.unit.test_auth)
        self.assertNotIn('WWW-Authenticate', resp.headers)
