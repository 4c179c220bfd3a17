"""A limit on the total time of a call to the Image service.

keystoneauth1's ``timeout`` bounds each wait for data on the socket, not a
call: a peer that sends a byte every few seconds keeps an attempt alive for
as long as it likes, and retries add up. Here the whole call, every attempt
and retry delay included, gets one deadline:

* :func:`limit` sets the deadline for the requests made inside it. It is
  kept in a context variable, so each thread of a threaded WSGI worker has
  its own.
* :class:`DeadlineAdapter`, mounted on the ``requests.Session`` that
  keystoneauth1 uses, refuses to start an attempt once the deadline has
  passed, gives an attempt no socket timeout longer than the time left,
  and shuts the attempt's socket down when the deadline passes while it is
  still waiting for or reading the answer.
* The caller then gets :class:`DeadlineExceeded`, which is not a
  ``requests`` exception, so keystoneauth1 does not retry it.

A connection whose socket was shut down is never used again: it reports
itself as not connected, so the pool closes it and opens a new one.
"""

import contextlib
import contextvars
import logging
import os
import socket
import threading
import time

from keystoneauth1 import session as ks_session
import requests
import urllib3
from urllib3 import connection as urllib3_connection

LOG = logging.getLogger(__name__)
_DEADLINE = contextvars.ContextVar('image_call_deadline', default=None)
_WATCHDOG = contextvars.ContextVar('image_call_watchdog', default=None)


class DeadlineExceeded(Exception):
    """The call to the Image service ran out of time."""


@contextlib.contextmanager
def limit(seconds):
    """Give the requests made in this block ``seconds`` in total."""
    token = _DEADLINE.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def remaining():
    """Seconds left before the current deadline; None if there is none."""
    deadline = _DEADLINE.get()
    return None if deadline is None else deadline - time.monotonic()


class _Watchdog:
    """Expires the connection an attempt uses when its time runs out."""

    def __init__(self, seconds):
        self.fired = False
        self._connection = None
        self._lock = threading.Lock()
        self.expires = time.monotonic() + seconds
        _KEEPER.add(self)

    def watch(self, conn):
        with self._lock:
            self._connection = conn
            fired = self.fired
        if fired:
            conn.expire(self)

    def fire(self):
        with self._lock:
            self.fired = True
            conn = self._connection
        if conn is not None:
            conn.expire(self)

    def stop(self):
        _KEEPER.discard(self)
        with self._lock:
            self._connection = None


class _Keeper:
    """One thread per process that fires the watchdogs whose time is up.

    A thread per attempt (a ``threading.Timer``) cost about 0.3 ms a call:
    starting a thread waits for it to run, a hand-over of the interpreter
    lock. This thread is started once and sleeps until the earliest
    deadline it knows of; a new watchdog wakes it only when it is due
    earlier than that (the first one; with one ``total_timeout`` for all,
    later ones never are), and a stopped one is only forgotten, so that the
    usual call, which ends well in time, never wakes it. Only the watchdogs
    of attempts in progress are kept, so there are never more than the
    worker's concurrent requests.
    """

    def __init__(self):
        self._active = set()
        self._wake_at = None  # when the thread will look again; None: never
        self._condition = threading.Condition(threading.Lock())
        self._thread = None

    def add(self, watchdog):
        with self._condition:
            self._active.add(watchdog)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name='glance-call-deadline',
                    daemon=True)
                self._thread.start()
            elif self._wake_at is None or watchdog.expires < self._wake_at:
                self._condition.notify()

    def discard(self, watchdog):
        with self._condition:
            self._active.discard(watchdog)

    def _run(self):
        while True:
            with self._condition:
                now = time.monotonic()
                due = [w for w in self._active if w.expires <= now]
                self._active.difference_update(due)
                if not due:
                    self._wake_at = min(
                        (w.expires for w in self._active), default=None)
                    self._condition.wait(
                        None if self._wake_at is None
                        else self._wake_at - now)
                    continue
            for watchdog in due:
                try:
                    watchdog.fire()
                except Exception:  # the thread must outlive any one call
                    LOG.exception('Could not cut a call to the Image '
                                  'service at its deadline')

    def after_fork(self):
        # A child process does not inherit the thread: it starts its own.
        self.__init__()


_KEEPER = _Keeper()
os.register_at_fork(after_in_child=_KEEPER.after_fork)


# Guards which attempt a connection serves, against the watchdogs' threads.
_OWNER_LOCK = threading.Lock()


class _ExpiringConnectionMixin:
    """A urllib3 connection that the watchdog of the attempt it serves can
    shut down.

    Each request claims the connection for the current attempt's watchdog,
    so that a watchdog that fires just after its attempt gave the
    connection back to the pool cannot cut another attempt's request.
    """

    expired = False
    _owner = None

    def connect(self):
        self.expired = False
        super().connect()

    def request(self, *args, **kwargs):
        watchdog = _WATCHDOG.get()
        with _OWNER_LOCK:
            self._owner = watchdog
        if watchdog is not None:
            watchdog.watch(self)
        return super().request(*args, **kwargs)

    def expire(self, watchdog):
        """Shut the socket down if ``watchdog``'s attempt still owns it: a
        blocked read then returns at once."""
        with _OWNER_LOCK:
            if watchdog is not self._owner:
                return
            self.expired = True
            sock = self.sock
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # already closed

    @property
    def is_connected(self):
        return not self.expired and super().is_connected


# urllib3's classes with the mixin; they keep urllib3's names, which the
# logs of failed attempts show.
class HTTPConnection(_ExpiringConnectionMixin,
                     urllib3_connection.HTTPConnection):
    pass


class HTTPSConnection(_ExpiringConnectionMixin,
                      urllib3_connection.HTTPSConnection):
    pass


class HTTPConnectionPool(urllib3.HTTPConnectionPool):
    ConnectionCls = HTTPConnection


class HTTPSConnectionPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = HTTPSConnection


_POOL_CLASSES = {'http': HTTPConnectionPool, 'https': HTTPSConnectionPool}


def _capped(timeout, seconds):
    """The socket timeout of an attempt: never more than the time left."""
    if isinstance(timeout, tuple):
        return tuple(_capped(t, seconds) for t in timeout)
    if timeout is None:
        return seconds
    return min(timeout, seconds)


class DeadlineAdapter(ks_session.TCPKeepAliveAdapter):
    """A requests transport adapter that keeps to :func:`limit`.

    It is keystoneauth1's own adapter (TCP keepalive, the TLS ciphers and
    minimum version given to it) with the deadline added; without a
    deadline set, it behaves as that adapter.
    """

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOL_CLASSES

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        # A SOCKS proxy has connection classes of its own: its attempts keep
        # to the deadline through their socket timeout only.
        if isinstance(manager, urllib3.ProxyManager):
            manager.pool_classes_by_scheme = _POOL_CLASSES
        return manager

    def send(self, request, stream=False, timeout=None, **kwargs):
        seconds = remaining()
        if seconds is None:
            return super().send(request, stream=stream, timeout=timeout,
                                **kwargs)
        if seconds <= 0:
            raise DeadlineExceeded()
        watchdog = _Watchdog(seconds)
        token = _WATCHDOG.set(watchdog)
        try:
            resp = super().send(request, stream=stream,
                                timeout=_capped(timeout, seconds), **kwargs)
            if not stream:
                resp.content  # noqa: B018 (read the body while watched)
        except requests.RequestException as exc:
            if watchdog.fired or remaining() <= 0:
                raise DeadlineExceeded() from exc
            raise
        finally:
            watchdog.stop()
            _WATCHDOG.reset(token)
        if watchdog.fired:
            # A shut-down socket reads as the end of the answer: http.client
            # takes the end of the stream for the end of the headers, so the
            # answer may look whole when it is not. It is never trusted.
            resp.close()
            raise DeadlineExceeded()
        return resp
