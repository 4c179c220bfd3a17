"""In process, instrumented: each layer's own time (``time_layers``) and
profiles (``profile_calls``) of the pipeline, called through an
``inprocess.PipelineClient``.

What the layer timer changes for its pass (the layers' links to the next
one, keystoneauth1's ``Session.request``) it puts back when the pass ends,
however it ends.
"""

import collections
import copy
import pathlib
import statistics
import time

from benchmarks import inprocess
from benchmarks import processes
from benchmarks import report


def time_layers(client, iterations, time_limit):
    """A separate, instrumented pass: each layer's own time per request.

    Returns ``LayerTimer.per_layer()``; ``client`` and its application are
    as they were afterwards.
    """
    with LayerTimer(client.app) as timer:
        timed = copy.copy(client)
        timed.app = timer.app
        deadline = processes.Deadline(time_limit)
        for _ in range(iterations):
            if deadline.expired():
                break
            inprocess.check(timed.call(timed.prepare()), 'pipeline (layers)')
    return timer.per_layer()


class LayerTimer:
    """``with LayerTimer(app) as timer:`` -- every layer of the pipeline
    wrapped to time its own (self) share; call ``timer.app``.

    Each layer's call into the next one is timed, and so are the HTTP calls
    the router makes (keystoneauth1's ``Session.request``, patched for the
    pass; calls made by other layers, such as auth_token's to Keystone,
    stay in those layers). A layer's own time per request is the time
    inside it minus the time inside what it calls. On the way out the
    layers and ``Session.request`` are restored.
    """

    GLANCE = 'Glance call (keystoneauth1 Session.request)'

    def __init__(self, app):
        self.names = []
        self.samples = collections.defaultdict(list)
        self._in_router = False
        self._glance = 0.0
        self._app = app
        self._undo = []
        self.app = None

    def __enter__(self):
        from keystoneauth1 import session as ks_session
        try:
            self._wrap_layers()
            original = ks_session.Session.request
            self._undo.append(
                lambda: setattr(ks_session.Session, 'request', original))
            ks_session.Session.request = self._timed_request(original)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        while self._undo:
            self._undo.pop()()
        return False

    def _wrap_layers(self):
        layer, timed = self._app, None
        while layer is not None:
            name = type(layer).__name__
            # oslo.middleware and compute-api keep the next app in
            # ``application``; keystonemiddleware's auth_token in ``_app``.
            attr = next((a for a in ('application', '_app')
                         if getattr(layer, a, None) is not None), None)
            self.names.append(name)
            if attr is None:
                break
            inner = getattr(layer, attr)
            timed = _Timed(inner, self, len(self.names) - 1)
            setattr(layer, attr, timed)
            self._undo.append(
                lambda layer=layer, attr=attr, inner=inner:
                setattr(layer, attr, inner))
            layer = inner
        if timed is not None:
            timed.marks_router = True
        self.app = _Timed(self._app, self, None)

    def _timed_request(self, original):
        timer = self

        def request(session, *args, **kwargs):
            if not timer._in_router:
                return original(session, *args, **kwargs)
            start = time.perf_counter()
            try:
                return original(session, *args, **kwargs)
            finally:
                timer._glance += time.perf_counter() - start
        return request

    def per_layer(self):
        """[(layer, median us, mean us)] from outer to inner, then Glance."""
        rows = []
        glance = self.samples[self.GLANCE]
        for i, name in enumerate(self.names):
            inside = self.samples[i - 1 if i else None]
            nested = self.samples[i] if i + 1 < len(self.names) else glance
            own = [a - b for a, b in zip(inside, nested, strict=True)]
            rows.append((name, statistics.median(own) * 1e6,
                         statistics.fmean(own) * 1e6))
        rows.append((self.GLANCE, statistics.median(glance) * 1e6,
                     statistics.fmean(glance) * 1e6))
        return rows


class _Timed:
    """Times a call into ``app``, keyed by the position of the layer that
    calls it (None: the call into the whole pipeline)."""

    marks_router = False

    def __init__(self, app, timer, caller):
        self.app = app
        self.timer = timer
        self.key = caller

    def __call__(self, environ, start_response):
        timer = self.timer
        if self.marks_router:
            timer._in_router = True
        start = time.perf_counter()
        try:
            return self.app(environ, start_response)
        finally:
            timer.samples[self.key].append(time.perf_counter() - start)
            if self.marks_router:
                timer._in_router = False
            if self.key is None:
                timer.samples[timer.GLANCE].append(timer._glance)
                timer._glance = 0.0


def profile_calls(client, iterations, warmup, profiler, top):
    """Profile ``iterations`` calls of ``client``; returns printable text."""
    for _ in range(warmup):
        inprocess.check(client.call(client.prepare()), 'pipeline (warm-up)')
    prepared = [client.prepare() for _ in range(iterations)]
    if profiler == 'pyinstrument':
        import pyinstrument
        prof = pyinstrument.Profiler(interval=0.0005)
        prof.start()
        for item in prepared:
            client.call(item)
        prof.stop()
        return prof.output_text(unicode=False, color=False, show_all=False)
    import cProfile
    prof = cProfile.Profile()
    prof.enable()
    for item in prepared:
        client.call(item)
    prof.disable()
    return format_cprofile(prof, iterations, top)


def _package(filename):
    """The package a profiled function belongs to, for grouping."""
    if filename.startswith('~') or filename.startswith('<'):
        return '(built-in / C)'
    path = pathlib.Path(filename)
    parts = path.parts
    if 'site-packages' in parts:
        return parts[parts.index('site-packages') + 1].removesuffix('.py')
    if 'compute_api' in parts:
        return 'compute_api'
    if 'benchmarks' in parts:
        return 'benchmarks'
    stem = path.stem if path.parent.name.startswith('python3') else \
        path.parent.name
    return f'stdlib:{stem}'


def format_cprofile(prof, calls, top):
    import pstats
    stats = pstats.Stats(prof)
    total = stats.total_tt
    entries = []
    by_package = collections.defaultdict(float)
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in \
            stats.stats.items():
        short = (f'{pathlib.Path(filename).name}:{line}({func})'
                 if not filename.startswith('~') else func)
        pkg = _package(filename)
        by_package[pkg] += tt
        entries.append((tt, ct, nc, pkg, short))

    def us(value):
        return report.fmt(value / calls * 1e6, 1)

    def share(value):
        return report.fmt(100 * value / total, 1)

    fmt, table = report.fmt, report.table
    out = [f'cProfile of {calls} pipeline calls: {total / calls * 1e6:.0f} '
           f'us per request under the profiler (the profiler itself '
           f'inflates this; use the shares, not the absolute figures).', '',
           'Own time by package, per request:',
           table(['package', 'us/request', '%'], [
               (pkg, us(tt), share(tt)) for pkg, tt in sorted(
                   by_package.items(), key=lambda kv: -kv[1])][:top]), '',
           f'Top {top} functions by own time, per request:',
           table(['function', 'calls/req', 'own us', 'cum us', 'own %'], [
               (short[:70], fmt(nc / calls, 1), us(tt), us(ct), share(tt))
               for tt, ct, nc, _pkg, short in sorted(entries,
                                                     reverse=True)[:top]]),
           '', f'Top {top} functions by cumulative time, per request:',
           table(['function', 'calls/req', 'cum us', 'cum %'], [
               (short[:70], fmt(nc / calls, 1), us(ct), share(ct))
               for _tt, ct, nc, _pkg, short in sorted(
                   entries, key=lambda e: -e[1])[:top]])]
    return '\n'.join(out)
