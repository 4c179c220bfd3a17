"""Every kind of token a cloud issues, on the real stack.

Besides the password-scoped project tokens of the other tests: tokens of
application credentials (with and without access rules), trust-scoped
tokens, and system- and domain-scoped tokens of an operator. The
credentials are made here through Keystone's API and removed at cleanup.

An access rule names a service type, a method and a path. This service's
``auth_token`` checks them because it knows it serves ``compute``
(``[keystone_authtoken] service_type``); Glance is then called with the
caller's token and this service's token, and accepts the restricted token in
such a chained call because it knows it serves ``image`` (the stack
configures Glance so).

A credential withdrawn in Keystone (an application credential deleted, a
trustor's role removed, a trust deleted) keeps working here, and in Glance,
for as long as a token validated before stays in their caches
(``[keystone_authtoken] token_cache_time``, 300 s by default). The tests of
that run their own compute-api instance with a short cache time, and each
uses credentials of its own that nothing else has seen.
"""

import secrets
import time
import uuid

from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from tests.functional import base

ALLOW_DELETE = [{'service': 'compute', 'method': 'DELETE',
                 'path': '/v2.1/images/*'}]
ALLOW_DELETE_BOTH_FORMS = ALLOW_DELETE + [
    {'service': 'compute', 'method': 'DELETE', 'path': '/v2.1/*/images/*'}]
ALLOW_SHOW_ONLY = [{'service': 'compute', 'method': 'GET',
                    'path': '/v2.1/images/*'}]

CACHE_TIME = 8
# memcached counts expiry times in whole seconds: an entry set with a time
# of N seconds lasts between N - 1 and N of them.
SURELY_CACHED = CACHE_TIME - 1.5
SURELY_EXPIRED = CACHE_TIME + 1.5

AUTH_TOKEN_401 = {'error': {
    'code': 401, 'title': 'Unauthorized',
    'message': 'The request you have made requires authentication.'}}


class _CredentialsTestCase(base.FunctionalTestCase):

    def keystone(self, method, path, body=None, session=None, expect=None):
        """A Keystone API call (as admin unless ``session``); the body."""
        resp = (session or self.stack.session('admin')).request(
            self.state['keystone_url'] + path, method, json=body,
            raise_exc=False)
        if expect is not None:
            self.assertEqual(expect, resp.status_code, resp.text)
        return resp.json() if resp.content else {}

    def role_id(self, name):
        (role,) = self.keystone('GET', f'/roles?name={name}',
                                expect=200)['roles']
        return role['id']

    def token_of(self, **auth):
        """A token from ``v3.Password`` or, with ``application_credential_id``,
        ``v3.ApplicationCredential``."""
        auth['auth_url'] = self.state['keystone_url']
        if 'application_credential_id' in auth:
            plugin = v3.ApplicationCredential(**auth)
        else:
            plugin = v3.Password(**auth)
        return ks_session.Session(auth=plugin).get_token()

    def admin_token(self, **scope):
        return self.token_of(username='admin',
                             password=self.stack.user('admin')['password'],
                             user_domain_name='Default', **scope)

    def new_user(self, roles=('member',), project='demo'):
        """A user of its own with ``roles`` on ``project``; removed at
        cleanup. Returns ``(user_id, password)``."""
        password = secrets.token_urlsafe(18)
        user_id = self.keystone('POST', '/users', {'user': {
            'name': f'credentials-{uuid.uuid4().hex[:12]}',
            'password': password, 'domain_id': 'default'}},
            expect=201)['user']['id']
        self.addCleanup(self.keystone, 'DELETE', f'/users/{user_id}')
        project_id = self.state['projects'][project]
        for role in roles:
            self.keystone('PUT', f'/projects/{project_id}/users/{user_id}'
                          f'/roles/{self.role_id(role)}', expect=204)
        return user_id, password

    def application_credential(self, user, access_rules=None):
        """An application credential a stack user makes for itself, for
        its project (removed at cleanup). Returns Keystone's record, with
        the ``secret``."""
        body = {'name': f'credentials-{uuid.uuid4().hex[:12]}'}
        if access_rules is not None:
            body['access_rules'] = access_rules
        session = self.stack.session(user)
        path = (f'/users/{self.stack.user(user)["user_id"]}'
                '/application_credentials')
        cred = self.keystone('POST', path, {'application_credential': body},
                             session=session,
                             expect=201)['application_credential']
        self.addCleanup(self.keystone, 'DELETE', f'{path}/{cred["id"]}',
                        session=session)
        return cred

    def application_credential_token(self, cred):
        return self.token_of(application_credential_id=cred['id'],
                             application_credential_secret=cred['secret'])

    def trust(self, trustor, trustee, roles=('member',), project='demo'):
        """A trust from ``trustor`` to ``trustee`` (both ``new_user``s)
        delegating ``roles`` on ``project``; returns its id."""
        project_id = self.state['projects'][project]
        trustor_session = ks_session.Session(auth=v3.Password(
            auth_url=self.state['keystone_url'], user_id=trustor[0],
            password=trustor[1], project_id=project_id))
        return self.keystone('POST', '/OS-TRUST/trusts', {'trust': {
            'trustor_user_id': trustor[0], 'trustee_user_id': trustee[0],
            'project_id': project_id, 'impersonation': False,
            'roles': [{'name': role} for role in roles]}},
            session=trustor_session, expect=201)['trust']['id']

    def trust_token(self, trustee, trust_id):
        return self.token_of(user_id=trustee[0], password=trustee[1],
                             trust_id=trust_id)

    def assertAuthToken401(self, resp):
        """auth_token's own 401 (the token itself was refused here)."""
        self.assertEqual(401, resp.status_code, resp.text)
        self.assertEqual(AUTH_TOKEN_401, resp.json())
        self.assertEqual(
            f'Keystone uri="{self.state["keystone_url"]}"',
            resp.headers['WWW-Authenticate'])

    def assertPolicyRefused(self, resp, image_id):
        self.assertFault(resp, 403, 'forbidden',
                         'os_compute_api:images:delete')
        self.assertImageKept(image_id)


class TestTokenKinds(_CredentialsTestCase):
    """Which tokens may delete an image, on the stack's compute-api."""

    def test_project_scoped_password_token(self):
        image_id = self.stack.create_image()
        self.assertDeleted(self.delete(image_id), image_id)

    def test_application_credential_without_access_rules(self):
        cred = self.application_credential('demo-member')
        image_id = self.stack.create_image()
        token = self.application_credential_token(cred)
        self.assertDeleted(self.delete(image_id, token=token), image_id)

    def test_access_rule_allowing_the_delete(self):
        cred = self.application_credential('demo-member', ALLOW_DELETE)
        image_id = self.stack.create_image()
        token = self.application_credential_token(cred)
        self.assertDeleted(self.delete(image_id, token=token), image_id)

    def test_access_rule_covers_one_url_form_only(self):
        # "/v2.1/images/*" does not match "/v2.1/{project_id}/images/{id}"
        cred = self.application_credential('demo-member', ALLOW_DELETE)
        image_id = self.stack.create_image()
        token = self.application_credential_token(cred)
        self.assertAuthToken401(self.delete(image_id, token=token,
                                            project=self.project_id(
                                                'demo-member')))
        self.assertImageKept(image_id)

    def test_access_rules_for_both_url_forms(self):
        cred = self.application_credential('demo-member',
                                            ALLOW_DELETE_BOTH_FORMS)
        token = self.application_credential_token(cred)
        first, second = self.stack.create_image(), self.stack.create_image()
        self.assertDeleted(self.delete(first, token=token), first)
        self.assertDeleted(self.delete(second, token=token,
                                       project=self.project_id(
                                           'demo-member')), second)

    def test_access_rule_allowing_something_else_only(self):
        cred = self.application_credential('demo-member', ALLOW_SHOW_ONLY)
        image_id = self.stack.create_image()
        token = self.application_credential_token(cred)
        self.assertAuthToken401(self.delete(image_id, token=token))
        self.assertImageKept(image_id)

    def test_application_credential_of_a_reader(self):
        cred = self.application_credential('demo-reader', ALLOW_DELETE)
        image_id = self.stack.create_image()
        token = self.application_credential_token(cred)
        self.assertPolicyRefused(self.delete(image_id, token=token),
                                 image_id)

    def test_trust_scoped_token(self):
        trustor, trustee = self.new_user(), self.new_user(roles=())
        token = self.trust_token(trustee, self.trust(trustor, trustee))
        image_id = self.stack.create_image()
        self.assertDeleted(self.delete(image_id, token=token), image_id)

    def test_system_scoped_admin(self):
        # the rule is scoped to projects: an operator's system token is
        # refused before Glance is called
        token = self.admin_token(system_scope='all')
        image_id = self.stack.create_image()
        self.assertPolicyRefused(self.delete(image_id, token=token),
                                 image_id)

    def test_domain_scoped_admin(self):
        token = self.admin_token(domain_name='Default')
        image_id = self.stack.create_image()
        self.assertPolicyRefused(self.delete(image_id, token=token),
                                 image_id)


class TestWithoutServiceToken(_CredentialsTestCase):
    """``[glance] send_service_token = false``: Glance sees the caller's
    token alone, and refuses one restricted to the Compute API."""

    def setUp(self):
        super().setUp()
        self.instance = self.stack.start_compute_api(conf_overrides={
            'glance': {'send_service_token': False}})

    def test_access_rule_allowing_the_delete_is_refused_by_glance(self):
        cred = self.application_credential('demo-member', ALLOW_DELETE)
        image_id = self.stack.create_image()
        token = self.application_credential_token(cred)
        resp = self.delete(image_id, token=token, url=self.instance['url'])
        self.assertFault(resp, 401, 'unauthorized',
                         'The Image service rejected the credentials')
        self.assertImageKept(image_id)

    def test_application_credential_without_access_rules(self):
        cred = self.application_credential('demo-member')
        image_id = self.stack.create_image()
        token = self.application_credential_token(cred)
        self.assertDeleted(self.delete(image_id, token=token,
                                       url=self.instance['url']), image_id)


class TestWithdrawnCredentials(_CredentialsTestCase):
    """A credential withdrawn in Keystone: refused once no longer cached."""

    def setUp(self):
        super().setUp()
        self.instance = self.stack.start_compute_api(conf_overrides={
            'keystone_authtoken': {'token_cache_time': CACHE_TIME}})

    def assertWithdrawnAfterCache(self, token, withdraw):
        """Delete with ``token`` (cached here and in Glance), ``withdraw``
        the credential, delete again within the cache window (accepted),
        and return the answer to a delete once the cache entry expired."""
        first, second, third = (self.stack.create_image() for _ in range(3))
        cached_at = time.monotonic()
        self.assertDeleted(self.delete(first, token=token,
                                       url=self.instance['url']), first)
        withdraw()
        resp = self.delete(second, token=token, url=self.instance['url'])
        self.assertLess(time.monotonic() - cached_at, SURELY_CACHED,
                        'too slow to observe the cache window')
        self.assertDeleted(resp, second)

        time.sleep(max(0.0, cached_at + SURELY_EXPIRED - time.monotonic()))
        resp = self.delete(third, token=token, url=self.instance['url'])
        self.assertImageKept(third)
        return resp

    def test_deleted_application_credential(self):
        cred = self.application_credential('demo-member')
        user_id = self.stack.user('demo-member')['user_id']
        token = self.application_credential_token(cred)
        resp = self.assertWithdrawnAfterCache(token, lambda: self.keystone(
            'DELETE',
            f'/users/{user_id}/application_credentials/{cred["id"]}',
            session=self.stack.session('demo-member'), expect=204))
        self.assertAuthToken401(resp)

    def test_deleted_trust(self):
        trustor, trustee = self.new_user(), self.new_user(roles=())
        trust_id = self.trust(trustor, trustee)
        token = self.trust_token(trustee, trust_id)
        resp = self.assertWithdrawnAfterCache(token, lambda: self.keystone(
            'DELETE', f'/OS-TRUST/trusts/{trust_id}', expect=204))
        self.assertAuthToken401(resp)

    def test_trustor_lost_the_role(self):
        trustor, trustee = self.new_user(), self.new_user(roles=())
        token = self.trust_token(trustee, self.trust(trustor, trustee))
        project_id = self.state['projects']['demo']
        resp = self.assertWithdrawnAfterCache(token, lambda: self.keystone(
            'DELETE', f'/projects/{project_id}/users/{trustor[0]}'
            f'/roles/{self.role_id("member")}', expect=204))
        # Keystone answers the validation of such a token 403 ("Trustee has
        # no delegated roles"), not 404; auth_token takes any answer but 404
        # and 401 for a failure of Keystone itself and answers 503.
        self.assertFault(resp, 503, 'serviceUnavailable')
