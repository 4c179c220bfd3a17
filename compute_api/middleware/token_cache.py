"""auth_token with a per-worker layer in front of its token cache.

keystonemiddleware's auth_token keeps every token it has validated in its
cache (memcached in production) for ``token_cache_time`` seconds. A request
with a cached token still costs a memcached round trip, the decryption of
the entry (``memcache_security_strategy = ENCRYPT``) and a JSON parse.
:class:`WorkerTokenCache` keeps the tokens a worker has met in the
worker's memory as well, and never longer than the shared cache would
hold them (if memcached loses its entries early, by a restart, an outage
or ``flush_all``, the worker's copies still last until then):

* a token this worker validated with Keystone is kept until the moment the
  shared cache's entry was written plus ``token_cache_time``, measured
  from before the write, less a second (memcached counts whole seconds);
* next to each entry it writes, the layer writes the time of the write
  (under a key derived from the token as auth_token derives its own, so
  protected by the same ``memcache_security_strategy``; the name it is
  derived from begins with a line feed, so that no token a client can send
  names it, here or in any other service whose auth_token shares the
  memcached and its keys). A worker that
  finds a token in the shared cache keeps it until that time plus
  ``token_cache_time``. Without that record (written by a service without
  this layer, or evicted) the token is not kept: it is read from the
  shared cache every time, as before.

The record holds wall-clock time: workers on several hosts sharing one
memcached must keep their clocks in step (NTP), as Keystone's token expiry
already requires; a record dated in the future is ignored.

Everything else is auth_token's: the expiry of the token itself is still
checked on every request, and invalid tokens are not kept.
"""

import collections
import hashlib
import threading
import time

from keystonemiddleware import auth_token

# Prefix of the token id under which the time of a write is recorded; the
# shared cache turns the whole id into a key, as for a token. No client can
# name a record: an HTTP header value cannot hold a line feed, and
# auth_token strips the whitespace around a token before looking it up. A
# record a client could name would reach, in a service whose auth_token has
# no such layer but shares the memcached (another compute-api with the
# layer off, Glance with the same memcache_security_strategy and key), a
# number where auth_token expects token data: a 500 there.
WRITTEN_AT = '\ncompute-api-written-at:'
# memcached counts time in whole seconds on a clock that lags by up to one:
# an entry may expire up to a second before written + token_cache_time.
CLOCK_STEP = 1


class WorkerTokenCache:
    """auth_token's token cache (``shared``) with a bounded, per-worker
    layer in front; the interface is the one auth_token uses
    (``initialize``, ``get``, ``set``)."""

    def __init__(self, shared, cache_time, size, clock=time.monotonic,
                 wall_clock=time.time):
        self._shared = shared
        self._lifetime = cache_time - CLOCK_STEP
        self._size = size
        self._clock = clock
        self._wall_clock = wall_clock
        self._entries = collections.OrderedDict()
        self._lock = threading.Lock()

    def initialize(self, env):
        self._shared.initialize(env)

    @staticmethod
    def _key(token_id):
        return hashlib.sha256(token_id.encode('utf-8')).digest()

    def get(self, token_id):
        if not token_id or token_id.startswith(WRITTEN_AT):
            # a record is no token (auth_token never asks for one: see
            # WRITTEN_AT); looked up, it would hand auth_token a number
            return None
        key = self._key(token_id)
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                until, data = entry
                if now < until:
                    self._entries.move_to_end(key)
                    return data
                del self._entries[key]
        data = self._shared.get(token_id)
        if isinstance(data, dict):
            written_at = self._shared.get(WRITTEN_AT + token_id)
            if isinstance(written_at, (int, float)):
                age = self._wall_clock() - written_at
                if age >= 0:
                    self._keep(key, data, now + self._lifetime - age)
        return data

    def set(self, token_id, data):
        if token_id.startswith(WRITTEN_AT):
            return  # never looked up (above), so never kept
        written_at = self._wall_clock()
        start = self._clock()
        self._shared.set(WRITTEN_AT + token_id, written_at)
        self._shared.set(token_id, data)
        if isinstance(data, dict):
            self._keep(self._key(token_id), data, start + self._lifetime)

    def _keep(self, key, data, until):
        if until <= self._clock():
            return
        with self._lock:
            self._entries[key] = (until, data)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)


class AuthProtocol(auth_token.AuthProtocol):
    """keystonemiddleware's auth_token, its token cache behind a
    :class:`WorkerTokenCache` of ``worker_cache_size`` entries."""

    def __init__(self, app, conf, worker_cache_size=0):
        # read by _token_cache_factory, which the parent's __init__ calls
        self._worker_cache_size = worker_cache_size
        super().__init__(app, conf)

    def _token_cache_factory(self):
        shared = super()._token_cache_factory()
        cache_time = int(self._conf.get('token_cache_time'))
        if self._worker_cache_size <= 0 or cache_time <= CLOCK_STEP:
            return shared
        return WorkerTokenCache(shared, cache_time, self._worker_cache_size)
