"""The benchmarks' shared modules: failed deletes are counted apart from
the latencies, the CPU probe measures only the application's own time,
the checkout measured is the one chosen, and what a measurement patches is
restored afterwards."""

import contextlib
import http.server
import importlib.util
import io
import os
import pathlib
import socket
import sys
import threading
import time

import fixtures
from keystoneauth1 import session as ks_session
from oslotest import base

from benchmarks import inprocess
from benchmarks import instances
from benchmarks import instrument
from benchmarks import load
from benchmarks import processes
from benchmarks import report


class _Glance(http.server.BaseHTTPRequestHandler):
    """204 for images whose id starts with ``ok``, 500 for the others."""

    def do_DELETE(self):  # noqa: N802 (the handler's naming)
        image_id = self.path.rsplit('/', 1)[-1]
        if image_id.startswith('ok'):
            self.send_response(204)
            self.send_header('Content-Length', '0')
            self.end_headers()
            return
        body = b'{"error": "broken"}'
        self.send_response(500)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _serve_glance(test):
    """Start ``_Glance`` for ``test``; returns its images URL."""
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Glance)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    test.addCleanup(server.server_close)
    test.addCleanup(server.shutdown)
    return f'http://127.0.0.1:{server.server_address[1]}/v2/images/'


class TestFailedDeletes(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.url = _serve_glance(self)
        # A bound port nobody listens on: connections are refused.
        closed = socket.socket()
        closed.bind(('127.0.0.1', 0))
        self.addCleanup(closed.close)
        self.refused = f'http://127.0.0.1:{closed.getsockname()[1]}/images/'

    def delete(self, level, shares, prefixes=None):
        prefixes = prefixes or {name: self.url for name in shares}
        return load.delete_level(prefixes, shares, 'token', level, 2,
                                 processes.Deadline(30))

    def test_failures_are_not_latencies(self):
        for level in (1, 3):
            results, leftovers = self.delete(level, {
                'direct': ['ok1', 'ok2', 'ok3', 'ok4'],
                'server': ['ok5', 'bad1', 'ok6', 'bad2']})
            server = results['server']
            self.assertEqual(2, server.done)
            self.assertEqual(2, len(server.latencies))
            self.assertEqual(2, server.errors)
            self.assertEqual({'204': 2, '500': 2}, dict(server.statuses))
            self.assertEqual('HTTP 500: {"error": "broken"}',
                             server.first_error)
            self.assertEqual(['bad1', 'bad2'], sorted(leftovers))
            self.assertEqual(4, results['direct'].done)
            self.assertEqual(0, results['direct'].errors)
            self.assertIsNone(results['direct'].first_error)

    def test_connection_failures_are_counted_apart(self):
        results, leftovers = self.delete(
            1, {'direct': ['ok1', 'ok2'], 'down': ['x1', 'x2']},
            {'direct': self.url, 'down': self.refused})
        down = results['down']
        self.assertEqual([], down.latencies)
        self.assertEqual({'ConnectFailure': 2}, dict(down.statuses))
        self.assertTrue(down.first_error.startswith('ConnectFailure: '))
        self.assertEqual(0.0, down.wall)
        self.assertEqual(0.0, down.throughput())
        self.assertEqual(['x1', 'x2'], sorted(leftovers))

    def test_throughput_of_successes_only(self):
        result = load.PathResult()
        result.add(0.010, 204)
        result.add(0.001, 'ConnectFailure', 'ConnectFailure: refused')
        result.add(0.030, 204)
        result.wall = 0.040
        self.assertEqual(2 / 0.040, result.throughput())
        self.assertEqual(20.0, report.summarize(result.latencies)['median'])

    def test_table_has_errors_and_the_first_failure(self):
        results, _ = self.delete(1, {'direct': ['ok1', 'ok2'],
                                     'server': ['bad1', 'ok3']})
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            report.print_latencies({1: {'paths': results}},
                                    {'server': 'compute-api',
                                     'direct': 'Glance direct'})
        lines = out.getvalue().splitlines()
        self.assertIn('errors', lines[1].split())
        row = lines[3].split()
        self.assertEqual(['1', 'compute-api', '1', '1'], row[:4])
        self.assertEqual(1, sum('first: HTTP 500' in line
                                for line in lines))


_APP = '''
import time

BURN_IN_START_RESPONSE = 0.05
calls = []


def _burn(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


class Body:
    closed = False

    def __iter__(self):
        _burn(0.02)
        yield b'done'

    def close(self):
        Body.closed = True


def application(environ, start_response):
    calls.append(environ)
    if environ.get('fail'):
        raise RuntimeError('failed')
    _burn(0.03)
    start_response('204 No Content', [])
    return Body()
'''


class TestProbe(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        app_dir = self.useFixture(fixtures.TempDir()).path
        pathlib.Path(app_dir, 'probed_app.py').write_text(_APP)
        self.useFixture(fixtures.EnvironmentVariable(
            'BENCH_PROBE_TARGET', 'probed_app:application'))
        self.useFixture(fixtures.MonkeyPatch(
            'sys.path', [app_dir, *sys.path]))
        self.addCleanup(sys.modules.pop, 'probed_app', None)
        self.probe = instances.Probe()
        self.addCleanup(self.probe.close)
        spec = importlib.util.spec_from_file_location(
            'bench_cpu_probe_test',
            self.probe.directory / f'{instances.Probe.MODULE}.py')
        self.module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.module)

    def test_counts_the_application_not_start_response(self):
        def start_response(status, headers):
            end = time.thread_time() + 0.05
            while time.thread_time() < end:
                pass

        self.assertEqual((0, 0.0), self.probe.totals())
        body = self.module.application({}, start_response)
        self.assertEqual([b'done'], list(body))
        body.close()
        requests, seconds = self.probe.totals()
        self.assertEqual(1, requests)
        # 0.03 s in the call and 0.02 s iterating; not the 0.05 s of
        # start_response.
        self.assertGreaterEqual(seconds, 0.05)
        self.assertLess(seconds, 0.09)
        self.assertTrue(sys.modules['probed_app'].Body.closed)
        self.assertEqual([os.path.dirname(
            sys.modules['probed_app'].__file__)], self.probe.origins())

    def test_a_failed_call_is_counted(self):
        self.assertRaises(RuntimeError, self.module.application,
                          {'fail': True}, lambda *a: None)
        self.assertEqual(1, self.probe.totals()[0])

    def test_written_outside_the_repository(self):
        self.assertFalse(self.probe.directory.is_relative_to(processes.REPO))
        self.assertEqual('bench_cpu_probe:application', self.probe.app)

    def test_totals_sum_the_workers(self):
        record = instances.Probe.RECORD
        for pid, values in ((11, (3, 0.5)), (12, (2, 0.25))):
            (self.probe.directory / f'app-{pid}.bin').write_bytes(
                record.pack(*values))
        self.assertEqual((5, 0.75), self.probe.totals())


class TestCpuSeconds(base.BaseTestCase):

    def test_counts_this_process(self):
        before = processes.cpu_seconds([os.getpid()])
        end = time.thread_time() + 0.05
        while time.thread_time() < end:
            pass
        self.assertGreaterEqual(processes.cpu_seconds([os.getpid()]) - before,
                                0.04)
        self.assertEqual(0.0, processes.cpu_seconds([2 ** 22 + 1]))


class _Layer:
    """A middleware: the next application in ``application``."""

    def __init__(self, application):
        self.application = application

    def __call__(self, environ, start_response):
        return self.application(environ, start_response)


class _Router:
    """The innermost application: deletes in Glance, answers 204."""

    def __init__(self, glance_url, fail=False):
        self.session = ks_session.Session()
        self.url = glance_url
        self.fail = fail

    def __call__(self, environ, start_response):
        self.session.delete(self.url + 'ok1', raise_exc=False)
        if self.fail:
            raise RuntimeError('router failed')
        start_response('204 No Content', [])
        return [b'']


class TestLayerTimerRestores(base.BaseTestCase):
    """The layer timer patches keystoneauth1's Session.request and the
    pipeline's links for its pass, and puts them back after it."""

    def setUp(self):
        super().setUp()
        self.glance_url = _serve_glance(self)
        self.request = ks_session.Session.request

    def pipeline(self, fail=False):
        router = _Router(self.glance_url, fail)
        inner = _Layer(router)
        outer = _Layer(inner)
        return outer, inner, router

    def assert_restored(self, client, outer, inner, router):
        self.assertIs(self.request, ks_session.Session.request)
        self.assertIs(outer, client.app)
        self.assertIs(inner, outer.application)
        self.assertIs(router, inner.application)

    def test_restored_after_a_pass(self):
        outer, inner, router = self.pipeline()
        client = inprocess.PipelineClient(outer, 'token')
        rows = instrument.time_layers(client, 5, 30)
        self.assert_restored(client, outer, inner, router)
        self.assertEqual(['_Layer', '_Layer', '_Router',
                          instrument.LayerTimer.GLANCE],
                         [row[0] for row in rows])
        # the router's Glance call was timed while the patch was in place
        self.assertGreater(rows[-1][1], 0)
        self.assertEqual('204 No Content', client.call(client.prepare()))

    def test_restored_when_the_pass_fails(self):
        outer, inner, router = self.pipeline(fail=True)
        client = inprocess.PipelineClient(outer, 'token')
        self.assertRaises(RuntimeError, instrument.time_layers, client, 5,
                          30)
        self.assert_restored(client, outer, inner, router)

    def test_patched_only_within(self):
        outer, inner, router = self.pipeline()
        with instrument.LayerTimer(outer) as timer:
            self.assertIsNot(self.request, ks_session.Session.request)
            self.assertIsNot(inner, outer.application)
            self.assertIsNot(outer, timer.app)
        self.assert_restored(inprocess.PipelineClient(outer, None), outer,
                             inner, router)


class TestTree(base.BaseTestCase):
    """The checkout whose compute_api is measured."""

    def test_this_repository_by_default(self):
        self.useFixture(fixtures.EnvironmentVariable(processes.TREE_ENV))
        self.assertIsNone(processes.chosen_tree())
        self.assertEqual(processes.REPO, processes.tree())

    def test_chosen_tree_first_on_the_path_within_only(self):
        tree = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        (tree / 'compute_api').mkdir()
        (tree / 'compute_api' / '__init__.py').write_text('')
        self.useFixture(fixtures.EnvironmentVariable(processes.TREE_ENV,
                                                     str(tree)))
        saved = list(sys.path)
        with processes.importing_tree() as place:
            self.assertEqual(tree.resolve(), place)
            self.assertEqual(str(place), sys.path[0])
        self.assertEqual(saved, sys.path)

    def test_a_tree_without_compute_api_is_refused(self):
        empty = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.EnvironmentVariable(processes.TREE_ENV,
                                                     empty))
        self.assertRaises(SystemExit, processes.tree)

    def test_the_probe_imports_from_the_tree(self):
        tree = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        (tree / 'tree_app.py').write_text(
            'def application(environ, start_response):\n'
            '    start_response("204 No Content", [])\n'
            '    return []\n')
        self.useFixture(fixtures.EnvironmentVariable(
            'BENCH_PROBE_TARGET', 'tree_app:application'))
        # the probe puts the tree on this process's path: restored after
        self.useFixture(fixtures.MonkeyPatch('sys.path', list(sys.path)))
        self.addCleanup(sys.modules.pop, 'tree_app', None)
        probe = instances.Probe(tree)
        self.addCleanup(probe.close)
        spec = importlib.util.spec_from_file_location(
            'bench_cpu_probe_tree_test',
            probe.directory / f'{instances.Probe.MODULE}.py')
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        self.assertEqual(str(tree), sys.path[0])
        body = module.application({}, lambda *a: None)
        list(body)
        body.close()
        self.assertEqual([str(tree)], probe.origins())
