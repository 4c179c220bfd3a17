"""Canaries: what compute-api relies on in its libraries beyond their
documented interfaces (doc/source/contributor.rst lists each). Each test
fails loudly when a release of the library changes the behaviour, rather
than letting the service's code go silently inert. They run with the
libraries of every supported series (tools/run-tests compat)."""

import os

from keystoneauth1 import loading as ks_loading
from oslo_config import cfg
from oslo_middleware import sizelimit
from oslotest import base as oslo_base
import requests
import webob
import webob.dec
import webob.exc

from compute_api import policy
from compute_api.api import faults
from tests.unit import base

RULE = 'os_compute_api:images:delete'


class TestWebob(oslo_base.BaseTestCase):

    def test_its_json_error_body_has_the_shape_faults_translate(self):
        # compute_api.api.faults._is_webob_error: auth_token's 503 is a
        # webob error, rendered by webob as JSON for a JSON client
        @webob.dec.wsgify
        def app(req):
            raise webob.exc.HTTPServiceUnavailable('Keystone is down.')
        req = webob.Request.blank('/', headers={'Accept': 'application/json'})
        resp = req.get_response(app)
        body = resp.json
        self.assertEqual({'code', 'title', 'message'}, set(body))
        self.assertEqual('503 Service Unavailable', body['code'])
        self.assertTrue(faults._is_webob_error(resp))

    def test_an_http_exception_answers_its_wsgi_response(self):
        # faults.http_error: webob.exc.HTTPException(message, wsgi_response)
        exc = faults.http_error(400, 'nope')
        resp = webob.Request.blank('/').get_response(exc)
        self.assertEqual(400, resp.status_int)
        self.assertEqual({'badRequest': {'code': 400, 'message': 'nope'}},
                         resp.json)


class TestOsloMiddleware(oslo_base.BaseTestCase):

    def test_configurable_middleware_conf_get(self):
        # compute_api.middleware.sizelimit reads its limit with _conf_get
        conf = cfg.ConfigOpts()
        limiter = sizelimit.RequestBodySizeLimiter(None, conf)
        conf([])
        conf.set_override('max_request_body_size', 1234, 'oslo_middleware')
        self.assertEqual(1234, limiter._conf_get('max_request_body_size'))


class TestOsloPolicy(base.APITestCase):

    def test_an_enforcer_with_use_conf_off_is_never_reloaded(self):
        # compute_api.policy.load: the rules in force are never edited in
        # place; a change of the files makes a new enforcer
        path = os.path.join(self.config_dir, 'policy.yaml')
        with open(path, 'w') as f:
            f.write(f'"{RULE}": "role:admin"\n')
        enforcer = policy.load(self.conf)
        rules = enforcer.rules
        with open(path, 'w') as f:
            f.write(f'"{RULE}": "role:member"\n')
        os.utime(path, (1, 1))
        enforcer.load_rules()
        self.assertIs(rules, enforcer.rules)
        self.assertEqual('role:admin', str(enforcer.rules[RULE]))


class TestKeystoneauth(oslo_base.BaseTestCase):

    def test_the_session_of_a_keystoneauth_session(self):
        # compute_api.image.glance: the cookie policy is set on the
        # requests session keystoneauth1 builds (Session.session)
        conf = cfg.ConfigOpts()
        conf.register_opts(ks_loading.get_session_conf_options(), 'glance')
        conf([])
        session = ks_loading.load_session_from_conf_options(conf, 'glance')
        self.assertIsInstance(session.session, requests.Session)
