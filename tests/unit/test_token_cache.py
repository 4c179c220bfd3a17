"""The per-worker layer in front of auth_token's token cache."""

import copy
import datetime
import time
from unittest import mock

import fixtures
from keystonemiddleware.auth_token import _exceptions as ksm_exceptions
from oslotest import base as test_base
import webob

from compute_api.middleware import token_cache

CACHE_TIME = 300
LIFETIME = CACHE_TIME - token_cache.CLOCK_STEP
TOKEN = 'gAAAAAB-a-token'
DATA = {'token': {'user': {'id': 'u1'}, 'catalog': [{'type': 'image'}]}}


class SharedCache:
    """auth_token's cache as the layer sees it: values go through JSON."""

    def __init__(self):
        self.values = {}
        self.gets = []
        self.initialized = []

    def initialize(self, env):
        self.initialized.append(env)

    def get(self, token_id):
        self.gets.append(token_id)
        return copy.deepcopy(self.values.get(token_id))

    def set(self, token_id, data):
        self.values[token_id] = copy.deepcopy(data)


class MemoryCache:
    """A memcached client as auth_token uses one (get, set with a time)."""

    def __init__(self):
        self.values = {}

    def get(self, key):
        return self.values.get(key)

    def set(self, key, value, time=0):
        self.values[key] = value


class Clocks:

    def __init__(self):
        self.monotonic = 1000.0
        self.wall = 1_800_000_000.0

    def advance(self, seconds):
        self.monotonic += seconds
        self.wall += seconds


class TestWorkerTokenCache(test_base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.shared = SharedCache()
        self.clocks = Clocks()
        self.cache = self.make(size=4)

    def make(self, size):
        return token_cache.WorkerTokenCache(
            self.shared, CACHE_TIME, size,
            clock=lambda: self.clocks.monotonic,
            wall_clock=lambda: self.clocks.wall)

    def written_elsewhere(self, token=TOKEN, age=0.0, record=True):
        """As another worker's layer writes a token it validated."""
        self.shared.set(token, DATA)
        if record:
            self.shared.set(token_cache.WRITTEN_AT + token,
                            self.clocks.wall - age)

    def test_initialize_reaches_the_shared_cache(self):
        self.cache.initialize({'k': 'v'})
        self.assertEqual([{'k': 'v'}], self.shared.initialized)

    def test_set_writes_the_entry_and_when_it_was_written(self):
        self.cache.set(TOKEN, DATA)
        self.assertEqual(DATA, self.shared.values[TOKEN])
        self.assertEqual(self.clocks.wall,
                         self.shared.values[token_cache.WRITTEN_AT + TOKEN])

    def test_token_validated_here_is_kept_until_the_shared_entry_expires(self):
        self.cache.set(TOKEN, DATA)
        self.clocks.advance(LIFETIME - 0.01)
        self.assertEqual(DATA, self.cache.get(TOKEN))
        self.assertEqual([], self.shared.gets)
        self.clocks.advance(0.02)
        self.shared.values.clear()  # memcached has let it go by now
        self.assertIsNone(self.cache.get(TOKEN))
        self.assertEqual([TOKEN], self.shared.gets)

    def test_token_from_the_shared_cache_is_kept_for_what_is_left(self):
        self.written_elsewhere(age=100)
        self.assertEqual(DATA, self.cache.get(TOKEN))
        self.assertEqual([TOKEN, token_cache.WRITTEN_AT + TOKEN],
                         self.shared.gets)
        self.clocks.advance(LIFETIME - 100 - 0.01)
        self.assertEqual(DATA, self.cache.get(TOKEN))
        self.assertEqual(2, len(self.shared.gets))
        self.clocks.advance(0.02)
        self.cache.get(TOKEN)
        self.assertEqual(4, len(self.shared.gets))

    def test_token_without_a_record_of_its_write_is_not_kept(self):
        self.written_elsewhere(record=False)
        for _ in range(3):
            self.assertEqual(DATA, self.cache.get(TOKEN))
        self.assertEqual(6, len(self.shared.gets))

    def test_record_dated_in_the_future_is_not_trusted(self):
        self.written_elsewhere(age=-5)
        for _ in range(2):
            self.assertEqual(DATA, self.cache.get(TOKEN))
        self.assertEqual(4, len(self.shared.gets))

    def test_record_older_than_the_lifetime_keeps_nothing(self):
        self.written_elsewhere(age=LIFETIME + 0.5)
        for _ in range(2):
            self.assertEqual(DATA, self.cache.get(TOKEN))
        self.assertEqual(4, len(self.shared.gets))

    def test_what_is_not_token_data_is_not_kept(self):
        for value in (None, 'garbage', ['data', 'expiry']):
            self.shared.values.clear()
            self.shared.gets.clear()
            self.shared.set(TOKEN, value)
            self.shared.set(token_cache.WRITTEN_AT + TOKEN, self.clocks.wall)
            self.assertEqual(value, self.cache.get(TOKEN))
            self.assertEqual(value, self.cache.get(TOKEN))
            # read again each time, without looking for a record
            self.assertEqual([TOKEN, TOKEN], self.shared.gets)

    def test_token_naming_a_record_is_never_looked_up(self):
        self.cache.set(TOKEN, DATA)
        record = token_cache.WRITTEN_AT + TOKEN
        self.assertIsNone(self.cache.get(record))
        self.assertEqual([], self.shared.gets)
        self.cache.set(record, DATA)
        self.assertNotIn(token_cache.WRITTEN_AT + record, self.shared.values)
        self.assertIsNone(self.cache.get(record))

    def test_empty_token_is_never_looked_up(self):
        self.assertIsNone(self.cache.get(''))
        self.assertEqual([], self.shared.gets)

    def test_least_recently_used_goes_first(self):
        cache = self.make(size=2)
        for token in ('a', 'b'):
            cache.set(token, {'token': token})
        cache.get('a')  # b is now the least recently used
        cache.set('c', {'token': 'c'})
        self.shared.gets.clear()
        for token in ('a', 'c'):
            self.assertEqual({'token': token}, cache.get(token))
        self.assertEqual([], self.shared.gets)
        # b had to be read again (and its record)
        self.assertEqual({'token': 'b'}, cache.get('b'))
        self.assertEqual(['b', token_cache.WRITTEN_AT + 'b'],
                         self.shared.gets)


def token_body(expires_in):
    now = datetime.datetime.now(datetime.UTC)
    iso = '%Y-%m-%dT%H:%M:%S.%fZ'
    return {'token': {
        'methods': ['password'],
        'issued_at': now.strftime(iso),
        'expires_at': (now + datetime.timedelta(
            seconds=expires_in)).strftime(iso),
        'user': {'id': 'u1', 'name': 'demo',
                 'domain': {'id': 'default', 'name': 'Default'}},
        'project': {'id': 'p1', 'name': 'demo',
                    'domain': {'id': 'default', 'name': 'Default'}},
        'roles': [{'id': 'r1', 'name': 'member'}],
        'catalog': [{'type': 'image', 'name': 'glance', 'id': 's1',
                     'endpoints': [{'id': 'e1', 'interface': 'public',
                                    'region': 'RegionOne',
                                    'region_id': 'RegionOne',
                                    'url': 'http://127.0.0.1:9292'}]}],
    }}


class TestAuthProtocol(test_base.BaseTestCase):
    """keystonemiddleware's real auth_token with the layer, its shared
    cache in process, Keystone's token validation replaced."""

    def setUp(self):
        super().setUp()
        self.seen = []
        self.verify = mock.Mock()
        self.useFixture(fixtures.MockPatchObject(
            token_cache.AuthProtocol, '_create_identity_server',
            return_value=mock.Mock(verify_token=self.verify)))

    @webob.dec.wsgify
    def app(self, req):
        self.seen.append((req.headers.get('X-Identity-Status'),
                          req.headers.get('X-User-Id')))
        return webob.Response(status=204)

    def middleware(self, size=8, cache_time=CACHE_TIME, env_cache=None):
        conf = {'token_cache_time': str(cache_time),
                'www_authenticate_uri': 'http://127.0.0.1:9/v3'}
        if env_cache:
            conf['cache'] = env_cache
        return token_cache.AuthProtocol(self.app, conf,
                                        worker_cache_size=size)

    def call(self, middleware, token=TOKEN, environ=None):
        return webob.Request.blank(
            '/', headers={'X-Auth-Token': token},
            environ=environ).get_response(middleware)

    def test_the_layer_is_in_front_of_auth_tokens_cache(self):
        middleware = self.middleware()
        self.assertIsInstance(middleware._token_cache,
                              token_cache.WorkerTokenCache)

    def test_no_layer_when_it_is_off_or_auth_token_caches_nothing(self):
        for size, cache_time in ((0, CACHE_TIME), (8, -1), (8, 1)):
            middleware = self.middleware(size=size, cache_time=cache_time)
            self.assertNotIsInstance(middleware._token_cache,
                                     token_cache.WorkerTokenCache)

    def test_token_validated_once_and_its_data_left_untouched(self):
        body = token_body(expires_in=3600)
        self.verify.return_value = body
        original = copy.deepcopy(body)
        middleware = self.middleware()
        for _ in range(3):
            self.assertEqual(204, self.call(middleware).status_int)
        self.assertEqual(1, self.verify.call_count)
        self.assertEqual([('Confirmed', 'u1')] * 3, self.seen)
        self.assertEqual(original, body)

    def test_token_naming_a_record_is_refused_not_a_500(self):
        self.verify.return_value = token_body(expires_in=3600)
        middleware = self.middleware()
        self.assertEqual(204, self.call(middleware).status_int)
        self.verify.side_effect = ksm_exceptions.InvalidToken('no')
        resp = self.call(middleware, token_cache.WRITTEN_AT + TOKEN)
        self.assertEqual(401, resp.status_int)
        self.assertEqual(2, self.verify.call_count)

    def test_no_token_a_client_sends_reads_a_record_elsewhere(self):
        # An auth_token without the layer that shares the cache and its
        # keys (another compute-api with the layer off, or Glance) after
        # the layer wrote its record: no header value reaches the record.
        memcached = MemoryCache()
        environ = {'test.cache': memcached}
        layered = self.middleware(env_cache='test.cache')
        plain = self.middleware(size=0, env_cache='test.cache')
        self.verify.return_value = token_body(expires_in=3600)
        self.assertEqual(204, self.call(layered, environ=environ).status_int)
        self.assertEqual(2, len(memcached.values))  # the entry, the record
        self.verify.side_effect = ksm_exceptions.InvalidToken('no')
        name = token_cache.WRITTEN_AT.strip()
        for token in (token_cache.WRITTEN_AT + TOKEN, name + TOKEN,
                      ' ' + name + TOKEN, '\t' + name + TOKEN):
            resp = self.call(plain, token, environ=environ)
            self.assertEqual(401, resp.status_int, repr(token))

    def test_token_that_expired_while_kept_is_refused(self):
        self.verify.return_value = token_body(expires_in=1.0)
        middleware = self.middleware()
        self.assertEqual(204, self.call(middleware).status_int)
        time.sleep(1.1)
        self.assertEqual(401, self.call(middleware).status_int)
        self.assertEqual(1, self.verify.call_count)
