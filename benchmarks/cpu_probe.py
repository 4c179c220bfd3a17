"""A WSGI application that measures the one it wraps, per worker process.

benchmarks.instances.Probe copies this file into a temporary directory of a
WSGI server's own and has the server load ``application`` from it; it is
never imported from the repository by a server, and it uses the standard
library only (it runs in the service's environment). It wraps
compute-api's ``compute_api.wsgi.api:application`` (or the
``module:name`` in ``$BENCH_PROBE_TARGET``) and sums the thread CPU time
(``time.thread_time``) spent in the application call, in iterating its
response and in closing it; the server's ``start_response`` is left out.
The directories listed in ``sys-path.txt`` beside this file, if any, go
first on the path before the application is imported (to measure another
checkout's ``compute_api``).

Per worker process, ``app-<pid>.bin`` beside this file holds the requests
counted and those seconds (``struct`` ``<qd``), mapped in memory and
updated after every request at the cost of a few memory writes;
``origin-<pid>.txt`` says where the application's package was imported
from.
"""

import importlib
import mmap
import os
import struct
import sys
import threading
import time

TARGET = os.environ.get('BENCH_PROBE_TARGET',
                        'compute_api.wsgi.api:application')
_MODULE, _, _NAME = TARGET.partition(':')
_HERE = os.path.dirname(os.path.abspath(__file__))
_RECORD = struct.Struct('<qd')
_clock = time.thread_time
_lock = threading.Lock()
_worker = {'pid': None}
if os.path.exists(os.path.join(_HERE, 'sys-path.txt')):
    with open(os.path.join(_HERE, 'sys-path.txt')) as _f:
        sys.path[:0] = _f.read().split()
_inner = getattr(importlib.import_module(_MODULE), _NAME)


def _open():
    pid = os.getpid()
    fd = os.open(os.path.join(_HERE, f'app-{pid}.bin'),
                 os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.ftruncate(fd, _RECORD.size)
        _worker.update(pid=pid, requests=0, seconds=0.0,
                       map=mmap.mmap(fd, _RECORD.size))
    finally:
        os.close(fd)
    package = importlib.import_module(_MODULE.split('.')[0])
    with open(os.path.join(_HERE, f'origin-{pid}.txt'), 'w') as f:
        f.write(os.path.dirname(os.path.abspath(package.__file__)))


def _add(seconds):
    with _lock:
        if _worker['pid'] != os.getpid():
            _open()
        _worker['requests'] += 1
        _worker['seconds'] += seconds
        _RECORD.pack_into(_worker['map'], 0, _worker['requests'],
                          _worker['seconds'])


class _Body:
    """The response, timed while it is iterated and closed."""

    def __init__(self, body, seconds):
        self._body = body
        self._seconds = seconds

    def __iter__(self):
        t0 = _clock()
        chunks = iter(self._body)
        self._seconds += _clock() - t0
        while True:
            t0 = _clock()
            try:
                chunk = next(chunks)
            except StopIteration:
                self._seconds += _clock() - t0
                return
            self._seconds += _clock() - t0
            yield chunk

    def close(self):
        t0 = _clock()
        try:
            close = getattr(self._body, 'close', None)
            if close is not None:
                close()
        finally:
            self._seconds += _clock() - t0
            _add(self._seconds)


def application(environ, start_response):
    server = [0.0]

    def timed_start_response(*args):
        t0 = _clock()
        try:
            return start_response(*args)
        finally:
            server[0] += _clock() - t0

    t0 = _clock()
    try:
        body = _inner(environ, timed_start_response)
    except BaseException:
        _add(_clock() - t0 - server[0])
        raise
    return _Body(body, _clock() - t0 - server[0])
