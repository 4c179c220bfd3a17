"""The benchmark harness: failed deletes are counted apart from the
latencies, and the CPU probe measures only the application's own time."""

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
from oslotest import base

from benchmarks import harness


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


class TestFailedDeletes(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Glance)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        self.url = f'http://127.0.0.1:{server.server_address[1]}/v2/images/'
        # A bound port nobody listens on: connections are refused.
        closed = socket.socket()
        closed.bind(('127.0.0.1', 0))
        self.addCleanup(closed.close)
        self.refused = f'http://127.0.0.1:{closed.getsockname()[1]}/images/'

    def delete(self, level, shares, prefixes=None):
        prefixes = prefixes or {name: self.url for name in shares}
        return harness.delete_level(prefixes, shares, 'token', level, 2,
                                    harness.Deadline(30))

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
        result = harness.PathResult()
        result.add(0.010, 204)
        result.add(0.001, 'ConnectFailure', 'ConnectFailure: refused')
        result.add(0.030, 204)
        result.wall = 0.040
        self.assertEqual(2 / 0.040, result.throughput())
        self.assertEqual(20.0, harness.summarize(result.latencies)['median'])

    def test_table_has_errors_and_the_first_failure(self):
        results, _ = self.delete(1, {'direct': ['ok1', 'ok2'],
                                     'server': ['bad1', 'ok3']})
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            harness.print_latencies({1: {'paths': results}},
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
        self.probe = harness.Probe()
        self.addCleanup(self.probe.close)
        spec = importlib.util.spec_from_file_location(
            'bench_cpu_probe_test',
            self.probe.directory / f'{harness.Probe.MODULE}.py')
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
        self.assertFalse(self.probe.directory.is_relative_to(harness.REPO))
        self.assertEqual('bench_cpu_probe:application', self.probe.app)

    def test_totals_sum_the_workers(self):
        record = harness.Probe.RECORD
        for pid, values in ((11, (3, 0.5)), (12, (2, 0.25))):
            (self.probe.directory / f'app-{pid}.bin').write_bytes(
                record.pack(*values))
        self.assertEqual((5, 0.75), self.probe.totals())


class TestCpuSeconds(base.BaseTestCase):

    def test_counts_this_process(self):
        before = harness.cpu_seconds([os.getpid()])
        end = time.thread_time() + 0.05
        while time.thread_time() < end:
            pass
        self.assertGreaterEqual(harness.cpu_seconds([os.getpid()]) - before,
                                0.04)
        self.assertEqual(0.0, harness.cpu_seconds([2 ** 22 + 1]))
