"""Revoked tokens and the two kinds of 401, on the real stack.

auth_token keeps a validated token in its cache (memcached here) for
``[keystone_authtoken] token_cache_time`` seconds and does not ask Keystone
again meanwhile, so a revoked token keeps working that long, and no
longer; emptying memcached makes a revocation take effect at once. These
tests run their own compute-api instance (two workers) with a short cache
time, and each uses a token of its own, which nothing else has seen.
"""

import os
import socket
import time

from tests import stack
from tests.functional import base
from tests.stack import memcached as stack_memcached

CACHE_TIME = 5
# memcached counts expiry times in whole seconds: an entry set with a time
# of N seconds lasts between N - 1 and N of them.
SURELY_CACHED = CACHE_TIME - 1.5
SURELY_EXPIRED = CACHE_TIME + 1.5


def revoke(test, token):
    """Revoke ``token`` in Keystone, as an admin does."""
    resp = test.stack.session('admin').delete(
        f'{test.state["keystone_url"]}/auth/tokens',
        headers={'X-Subject-Token': token}, raise_exc=False)
    test.assertEqual(204, resp.status_code, resp.text)


class TestRevokedTokens(base.FunctionalTestCase):

    def setUp(self):
        super().setUp()
        self.instance = self.stack.start_compute_api(conf_overrides={
            'keystone_authtoken': {'token_cache_time': CACHE_TIME}},
            workers=2)
        self.token = stack.get_session(self.state,
                                       'demo-member').get_token()

    def delete_with_token(self, image_id):
        return self.delete(image_id, token=self.token,
                           url=self.instance['url'])

    def revoke(self):
        revoke(self, self.token)

    def assertAuthenticate(self, resp):
        self.assertEqual(
            f'Keystone uri="{self.state["keystone_url"]}"',
            resp.headers['WWW-Authenticate'])

    def assertAuthToken401(self, resp):
        """auth_token's own answer: keystonemiddleware's body."""
        self.assertEqual(401, resp.status_code, resp.text)
        self.assertTrue(resp.headers['Content-Type'].startswith(
            'application/json'))
        self.assertEqual({'error': {
            'code': 401, 'title': 'Unauthorized',
            'message': 'The request you have made requires authentication.'}},
            resp.json())
        self.assertAuthenticate(resp)

    def test_revoked_token_works_until_its_cache_entry_expires(self):
        first, second, third = (self.stack.create_image() for _ in range(3))
        cached_at = time.monotonic()
        # validated by Keystone, then cached here and in Glance
        self.assertDeleted(self.delete_with_token(first), first)
        self.revoke()
        self.assertLess(time.monotonic() - cached_at, SURELY_CACHED,
                        'too slow to observe the cache window')
        self.assertDeleted(self.delete_with_token(second), second)

        time.sleep(max(0.0, cached_at + SURELY_EXPIRED - time.monotonic()))
        self.assertAuthToken401(self.delete_with_token(third))
        self.assertImageKept(third)

    def test_no_worker_keeps_a_revoked_token_past_the_shared_cache(self):
        missing = '00000000-0000-4000-8000-000000000000'
        cached_at = time.monotonic()
        # connections are not reused, so both workers take their share
        for _ in range(12):
            self.assertFault(self.delete_with_token(missing), 404,
                             'itemNotFound')
        self.revoke()
        self.assertLess(time.monotonic() - cached_at, SURELY_CACHED,
                        'too slow to observe the cache window')
        self.assertFault(self.delete_with_token(missing), 404,
                         'itemNotFound')
        time.sleep(max(0.0, cached_at + SURELY_EXPIRED - time.monotonic()))
        for _ in range(12):
            self.assertAuthToken401(self.delete_with_token(missing))

    def test_revoked_token_glance_never_saw_is_glances_401(self):
        image_id = self.stack.create_image()
        cached_at = time.monotonic()
        # an id that is not a UUID is answered without calling Glance: the
        # token is validated and cached here only
        self.assertFault(self.delete_with_token('not-an-image-id'), 404,
                         'itemNotFound')
        self.revoke()
        resp = self.delete_with_token(image_id)
        self.assertLess(time.monotonic() - cached_at, SURELY_CACHED,
                        'too slow to observe the cache window')
        # accepted here from the cache; Glance asks Keystone and refuses it:
        # this service's own 401, a Compute fault
        self.assertFault(resp, 401, 'unauthorized',
                         'The Image service rejected the credentials')
        self.assertAuthenticate(resp)
        self.assertImageKept(image_id)

    def test_no_token_is_auth_tokens_401(self):
        image_id = self.stack.create_image()
        self.assertAuthToken401(self.delete(image_id, user=None,
                                            url=self.instance['url']))
        self.assertImageKept(image_id)


class TestRevokingAtOnce(base.FunctionalTestCase):
    """configuration.rst, "Revoked tokens": emptying memcached makes a
    revocation take effect at once, in every worker, without a reload; a
    deprecated [token_cache] option changes nothing. The instance has a
    memcached of its own, so that emptying it disturbs no other test."""

    def setUp(self):
        super().setUp()
        workdir = self.state['workdir']
        self.memcached_port = stack.free_ports(1)[0]
        argv = stack_memcached._argv(str(self.memcached_port))
        pid = stack.spawn(argv, f'{workdir}/logs/memcached-'
                          f'{self.memcached_port}.log', dict(os.environ))
        self.addCleanup(stack.stop_process, pid)
        stack.wait_tcp('memcached', self.memcached_port)
        self.instance = self.stack.start_compute_api(conf_overrides={
            'keystone_authtoken': {
                'token_cache_time': 300,
                'memcached_servers':
                    f'{stack.HOST}:{self.memcached_port}'},
            'token_cache': {'worker_cache_size': 128}},  # ignored
            workers=2)
        self.token = stack.get_session(self.state,
                                       'demo-member').get_token()

    def statuses(self, count=8):
        # an id that is not a UUID is answered 404 without calling Glance:
        # only this service's handling of the token shows
        return [self.delete('not-an-image-id', token=self.token,
                            url=self.instance['url']).status_code
                for _ in range(count)]

    def flush_memcached(self):
        with socket.create_connection(
                (stack.HOST, self.memcached_port), 5) as sock:
            sock.sendall(b'flush_all\r\n')
            self.assertEqual(b'OK\r\n', sock.recv(64))

    def test_empty_memcached_revokes_at_once(self):
        # enough requests that both workers have seen the token
        self.assertEqual([404] * 16, self.statuses(16))
        revoke(self, self.token)
        self.assertEqual([404] * 8, self.statuses())  # cached for 300 s
        self.flush_memcached()
        self.assertEqual([401] * 8, self.statuses())
