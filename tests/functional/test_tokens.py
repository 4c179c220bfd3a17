"""Revoked tokens and the two kinds of 401, on the real stack.

auth_token keeps a validated token in its cache (memcached here) for
``[keystone_authtoken] token_cache_time`` seconds and does not ask Keystone
again meanwhile, so a revoked token keeps working that long; each worker's
own layer in front of it ([token_cache]) must not keep it any longer. These
tests run their own compute-api instance (two workers) with a short cache
time, and each uses a token of its own, which nothing else has seen.
"""

import os
import signal
import socket
import time

import requests

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
        # validated by one worker, read from memcached by the other (each
        # then keeps it in its own layer); connections are not reused, so
        # both workers take their share
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

    def test_token_naming_a_cache_record_is_401(self):
        # the per-worker layer writes, beside each token, a record under
        # the token with a prefix; such a "token" is no token
        image_id = self.stack.create_image()
        self.assertDeleted(self.delete_with_token(image_id), image_id)
        other = self.stack.create_image()
        for _ in range(4):  # both workers
            resp = self.delete(other, token='compute-api-written-at:'
                               + self.token, url=self.instance['url'])
            self.assertAuthToken401(resp)
        self.assertImageKept(other)

    def test_no_token_reaches_a_record_from_an_auth_token_without_it(self):
        # a compute-api with the layer off that shares memcached and its
        # key, as another service may: the record written beside the token
        # is out of reach of any token a client sends (found, it would be
        # a number where auth_token expects token data: a 500)
        plain = self.stack.start_compute_api(conf_overrides={
            'keystone_authtoken': {'token_cache_time': CACHE_TIME},
            'token_cache': {'worker_cache_size': 0}})
        image_id = self.stack.create_image()
        self.assertDeleted(self.delete_with_token(image_id), image_id)
        other = self.stack.create_image()
        resp = self.delete(other, url=plain['url'],
                           token='compute-api-written-at:' + self.token)
        self.assertAuthToken401(resp)
        self.assertImageKept(other)

    def test_no_token_is_auth_tokens_401(self):
        image_id = self.stack.create_image()
        self.assertAuthToken401(self.delete(image_id, user=None,
                                            url=self.instance['url']))
        self.assertImageKept(image_id)


class TestRevokingAtOnce(base.FunctionalTestCase):
    """configuration.rst, "Revoked tokens": the workers keep the tokens
    they hold when memcached is emptied; emptying memcached and then
    reloading the service makes a revocation take effect at once. The
    instance has a memcached of its own, so that emptying it disturbs no
    other test."""

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
                    f'{stack.HOST}:{self.memcached_port}'}},
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

    def reload(self):
        """What ``systemctl reload`` does: SIGHUP to the master; wait
        until every worker is a new one and the service answers."""
        master = self.instance['pid']
        before = set(stack.children(master))
        os.kill(master, signal.SIGHUP)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = set(stack.children(master))
            if len(now) == 2 and not now & before:
                try:
                    if requests.get(self.instance['url'] + '/',
                                    timeout=5).status_code == 200:
                        return
                except requests.ConnectionError:
                    pass
            time.sleep(0.2)
        self.fail(f'workers {before} were not replaced')

    def test_empty_memcached_then_reload(self):
        # enough requests that both workers get (and keep) the token
        self.assertEqual([404] * 16, self.statuses(16))
        revoke(self, self.token)
        self.flush_memcached()
        # the workers still hold it, as documented
        self.assertEqual([404] * 8, self.statuses())
        self.reload()
        self.assertEqual([401] * 8, self.statuses())

    def test_reload_then_empty_memcached_is_the_wrong_order(self):
        self.assertEqual([404] * 8, self.statuses())
        revoke(self, self.token)
        self.reload()
        # the new workers copy the token from memcached, with its record
        self.assertEqual([404] * 16, self.statuses(16))
        self.flush_memcached()
        self.assertEqual([404] * 8, self.statuses())
