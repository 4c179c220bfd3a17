"""tools/stack is never silent for long: the progress lines of the stack's
start (tests/stack/progress.py) and of tools/bootstrap.sh's installs.

tools/stack promises a line at least every 15 s; both print one every 10 s
(``EVERY``) while something runs. Here the interval is shortened and the
gaps between lines measured.
"""

import itertools
import os
import pathlib
import subprocess
import threading
import time

import fixtures
import testtools

from tests import stack
from tests.stack import progress

BOOTSTRAP = stack.REPO_ROOT / 'tools' / 'bootstrap.sh'
PROMISE = 15


class Recorder:
    """A stream that notes when each line was written."""

    def __init__(self):
        self.lines = []
        self.started = time.monotonic()
        self.lock = threading.Lock()

    def write(self, text):
        with self.lock:
            for line in text.splitlines():
                self.lines.append((time.monotonic(), line))

    def flush(self):
        pass

    def gaps(self, until):
        times = [self.started] + [t for t, _ in self.lines] + [until]
        return [b - a for a, b in itertools.pairwise(times)]


class TestStackProgress(testtools.TestCase):

    def test_the_interval_keeps_the_promise(self):
        self.assertLess(progress.EVERY + 1, PROMISE)

    def test_a_long_step_is_named_while_it_runs(self):
        out = Recorder()
        with progress.Progress(out=out, every=0.3) as p:
            with p.step('Keystone: database'):
                time.sleep(1.2)
            with p.step('starting Keystone'):
                time.sleep(0.1)
        end = time.monotonic()
        texts = [text for _, text in out.lines]
        self.assertEqual('stack: Keystone: database', texts[0])
        still = [t for t in texts if t.startswith('stack: still ')]
        self.assertGreaterEqual(len(still), 2, texts)
        self.assertTrue(all('Keystone: database (' in t for t in still),
                        texts)
        self.assertEqual('stack: starting Keystone', texts[-1])
        # never quiet for much longer than the interval
        self.assertLess(max(out.gaps(end)), 0.3 + 0.5, out.lines)

    def test_steps_in_parallel_are_all_named(self):
        out = Recorder()
        with progress.Progress(out=out, every=0.2) as p:
            def glance():
                with p.step('Glance: database'):
                    time.sleep(0.8)
            thread = threading.Thread(target=glance)
            thread.start()
            with p.step('Keystone: database'):
                time.sleep(0.8)
            thread.join()
        still = [text for _, text in out.lines if 'still' in text]
        self.assertTrue(any('Glance: database' in t and 'Keystone: database'
                            in t for t in still), out.lines)

    def test_without_progress_the_stack_is_silent(self):
        # the functional tests and the soaks: no Progress, no output
        with progress.step(None, 'anything'):
            pass
        self.assertIsNone(stack.Stack('/tmp/nonexistent-stack').progress)


def bootstrap_functions(script, every=1):
    """Run ``script`` in bash with tools/bootstrap.sh's functions loaded;
    returns (exit code, [(seconds since start, stderr line)])."""
    command = (f'BOOTSTRAP_FUNCTIONS_ONLY=1 source {BOOTSTRAP}; '
               f'PROGRESS_EVERY={every}; {script}')
    started = time.monotonic()
    process = subprocess.Popen(['bash', '-c', command],
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    lines = [(time.monotonic() - started, line.rstrip('\n'))
             for line in process.stderr]
    return process.wait(timeout=60), lines, time.monotonic() - started


class TestBootstrapProgress(testtools.TestCase):

    def test_a_line_every_interval_while_a_job_runs(self):
        code, lines, total = bootstrap_functions(
            'sleep 3.6 & wait_with_progress "echo installing: demo" $!')
        self.assertEqual(0, code, lines)
        self.assertGreaterEqual(len(lines), 3, lines)
        for _, line in lines:
            self.assertRegex(line, r'^bootstrap: still installing: demo '
                                   r'\(\d+ s\)$')
        times = [0] + [t for t, _ in lines] + [total]
        self.assertLess(max(b - a for a, b in itertools.pairwise(times)),
                        1 + 1.0, lines)

    def test_a_failed_job_fails(self):
        code, lines, _ = bootstrap_functions(
            '(sleep 0.2; exit 3) & failing=$!; true & '
            'wait_with_progress "echo x" $failing $! || echo failed >&2')
        self.assertEqual(0, code)
        self.assertEqual('failed', lines[-1][1], lines)

    def test_the_package_count_of_an_environment(self):
        code, lines, _ = bootstrap_functions(
            f'packages {stack.BIN_DIR.parent} >&2; '
            'packages /nonexistent >&2')
        self.assertEqual(0, code)
        count, none = (int(line) for _, line in lines)
        self.assertGreater(count, 50)
        self.assertEqual(0, none)

    def test_the_interval_keeps_the_promise(self):
        self.assertIn('PROGRESS_EVERY=${BOOTSTRAP_PROGRESS_EVERY:-10}',
                      BOOTSTRAP.read_text())


class TestBootstrapEnvironments(testtools.TestCase):
    """tools/stack does not build Nova's environment; the tests do."""

    def listed(self, *args):
        result = subprocess.run(['bash', str(BOOTSTRAP), *args, '--list'],
                                capture_output=True, text=True, check=True,
                                timeout=30)
        return [line.rsplit('/', 1)[-1] for line in result.stdout.split()]

    def test_the_stack_needs_two(self):
        self.assertEqual(['.venv', '.venv-service'], self.listed('--stack'))

    def test_the_tests_add_nova(self):
        self.assertEqual(['.venv', '.venv-service', '.venv-nova'],
                         self.listed())

    def test_tools_stack_asks_for_the_stack_only(self):
        text = (stack.REPO_ROOT / 'tools' / 'stack').read_text()
        self.assertIn('bash tools/bootstrap.sh --stack\n', text)
        self.assertNotIn('bash tools/bootstrap.sh\n', text)


# A stand-in for Python: "-m venv DIR" makes DIR (with this script as its
# python) after a pause, "-m pip ..." pauses and succeeds, "-c CODE" succeeds
# (the checks of what Debian's Python lacks go to the real Python).
FAKE_PYTHON = '''#!/bin/bash
if [ "$1" = -m ] && [ "$2" = venv ]; then
    sleep 3
    mkdir -p "$3/bin" "$3/lib/python3.11/site-packages"
    cp "$0" "$3/bin/python"
    exit 0
fi
if [ "$1" = -m ] && [ "$2" = pip ]; then
    [ "$3" = show ] && exit 1
    sleep 1.5
    exit 0
fi
case "$2" in *ensurepip*|*sysconfig*) exec python3 "$@" ;; esac
exit 0
'''


class TestBootstrapIsNeverSilent(testtools.TestCase):
    """tools/bootstrap.sh --stack on a fresh clone, with Python and pip
    replaced by stand-ins that take their time: a line at least every
    interval, from the first to the last."""

    def test_fresh_environments(self):
        tmp = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        fake = tmp / 'python'
        fake.write_text(FAKE_PYTHON)
        fake.chmod(0o755)
        env = dict(os.environ, PYTHON=str(fake), BOOTSTRAP_PROGRESS_EVERY='1',
                   COMPUTE_API_VENV=str(tmp / 'venv'),
                   COMPUTE_API_SERVICE_VENV=str(tmp / 'venv-service'))
        started = time.monotonic()
        process = subprocess.Popen(['bash', str(BOOTSTRAP), '--stack'],
                                   env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
        lines = [(time.monotonic(), line.rstrip('\n'))
                 for line in process.stderr]
        self.assertEqual(0, process.wait(timeout=120), lines)
        ended = time.monotonic()
        if any('Debian packages' in line for _, line in lines):
            self.skipTest('Debian packages were missing: installed them')
        texts = [line for _, line in lines]
        self.assertIn(f'bootstrap: creating {tmp}/venv', texts)
        self.assertIn(f'bootstrap: creating {tmp}/venv-service', texts)
        self.assertTrue(texts[-1].endswith(': done'), texts)
        times = [started] + [t for t, _ in lines] + [ended]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        # every interval (1 s) a line, give or take the loop's half second
        # and a busy machine; a pause of the stand-in (3 s) outside the
        # progress loop would show
        self.assertLess(max(gaps), 2.5, lines)
        for venv in ('venv', 'venv-service'):
            self.assertTrue((tmp / venv / '.bootstrap-stamp').is_file())
