"""Which layer answers a 401, and with which body.

keystonemiddleware's ``auth_token`` answers a missing or invalid token
itself, with its own JSON body (``{"error": {...}}``, as Nova and every
OpenStack API answer); the service's own 401s (the context middleware's,
and a 401 from the Image service) are Compute faults (``unauthorized``).
Both carry ``WWW-Authenticate`` and the request ids. These tests run the
production pipeline with the real auth_token (a request without a token
never reaches Keystone).
"""

import json
import os

import fixtures
from oslotest import base as test_base
import webob

from compute_api import deploy
from tests.unit import base
from tests.unit import fakes

KEYSTONE = 'http://127.0.0.1:9/v3'  # nothing answers (discard port)
IMAGE = '/v2.1/images/70a599e0-31e7-49b7-b260-868f441e862b'
SAMPLE_401 = os.path.join(base.REPO, 'api-ref', 'source', 'samples',
                          'images', 'image-delete-401-resp.json')


def real_pipeline_conf(directory, extra=''):
    with open(os.path.join(directory, deploy.CONFIG_FILE), 'w') as f:
        f.write('[keystone_authtoken]\n'
                f'www_authenticate_uri = {KEYSTONE}\n'
                f'auth_url = {KEYSTONE}\n'
                'auth_type = password\n'
                'username = compute\n'
                'password = secret\n'
                'project_name = service\n'
                'user_domain_name = Default\n'
                'project_domain_name = Default\n' + extra)
    return deploy.load_conf(directory=directory)


class _Assertions:

    keystone = KEYSTONE

    def assertAuthenticateHeaders(self, resp):
        # exactly once: auth_token adds it to every 401 that passes it
        self.assertEqual([f'Keystone uri="{self.keystone}"'],
                         resp.headers.getall('WWW-Authenticate'))
        rid = resp.headers['x-openstack-request-id']
        self.assertRegex(rid, r'^req-[0-9a-f-]{36}$')
        self.assertEqual(rid, resp.headers['x-compute-request-id'])
        self.assertEqual('application/json', resp.content_type)

    def assertComputeFault401(self, resp, message):
        self.assertEqual(401, resp.status_int, resp.body)
        self.assertEqual({'unauthorized': {'code': 401, 'message': message}},
                         resp.json)
        self.assertAuthenticateHeaders(resp)


class TestAuthTokenAnswers(_Assertions, test_base.BaseTestCase):
    """The shipped pipeline, auth_token included."""

    def setUp(self):
        super().setUp()
        self.config_dir = self.useFixture(fixtures.TempDir()).path

    def request(self, conf, path=IMAGE, **kwargs):
        app = deploy.loadapp(conf)
        return webob.Request.blank(path, method='DELETE',
                                   **kwargs).get_response(app)

    def test_no_token_is_auth_tokens_own_body(self):
        resp = self.request(real_pipeline_conf(self.config_dir))
        self.assertEqual(401, resp.status_int)
        self.assertEqual({'error': {
            'code': 401, 'title': 'Unauthorized',
            'message': 'The request you have made requires authentication.'}},
            resp.json)
        self.assertAuthenticateHeaders(resp)

    def test_api_reference_sample_is_auth_tokens_body(self):
        resp = self.request(real_pipeline_conf(self.config_dir))
        with open(SAMPLE_401) as f:
            self.assertEqual(json.load(f), resp.json)

    def test_context_middleware_401_is_a_compute_fault(self):
        # With delay_auth_decision, auth_token lets a request without a
        # valid token through; the context middleware refuses it.
        conf = real_pipeline_conf(self.config_dir,
                                  'delay_auth_decision = true\n')
        resp = self.request(conf, headers={'X-User-Id': 'forged',
                                           'X-Identity-Status': 'Confirmed'})
        self.assertComputeFault401(resp, 'Authentication required.')


class TestKeystoneUnreachable(_Assertions, test_base.BaseTestCase):
    """auth_token's 503 when it cannot validate a token (its Keystone is a
    closed port) is webob's rendering of an error, in the format the client
    accepts; the client gets the Compute fault whatever that format."""

    def test_auth_tokens_503_is_a_compute_fault(self):
        config_dir = self.useFixture(fixtures.TempDir()).path
        app = deploy.loadapp(real_pipeline_conf(
            config_dir, 'http_request_max_retries = 0\n'))
        for accept in ('application/json', 'text/html', '*/*'):
            req = webob.Request.blank(IMAGE, method='DELETE', headers={
                'X-Auth-Token': 'some-token', 'Accept': accept})
            resp = req.get_response(app)
            self.assertEqual(503, resp.status_int, resp.body)
            self.assertEqual('application/json', resp.content_type)
            self.assertEqual(['serviceUnavailable'], list(resp.json))
            self.assertNotIn(b'<', resp.body)


class TestImageService401(_Assertions, base.APITestCase):
    """With the auth_token double (which adds WWW-Authenticate to a 401 as
    auth_token does); on the real stack in tests.functional.test_tokens."""

    keystone = fakes.KEYSTONE

    def test_glance_401_is_a_compute_fault(self):
        self.glance.default = (401, b'{"error": "token rejected"}', 0)
        resp = self.delete_image()
        self.assertComputeFault401(
            resp, 'The Image service rejected the credentials of this '
                  'request; authenticate again.')
        self.assertEqual(1, len(self.glance.requests))
