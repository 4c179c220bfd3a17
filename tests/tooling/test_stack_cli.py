"""tools/stack's command line: what a first-time user reads.

The usage under the name they typed, the way to a stack of another
workdir, the catalog's Glance URL, openstacksdk's exception as its
tracebacks name it, a sample image that is there to delete on a second
``up``, and one line (not a traceback) when the stack cannot start.
Nothing here starts a stack.
"""

import contextlib
import io
import json
import os
import pathlib
import subprocess
import tempfile
import time
from unittest import mock

import fixtures
import openstack.exceptions
import testtools

from tests import stack
from tests.stack import cli
from tests.stack import state as state_module

TOOLS_STACK = stack.REPO_ROOT / 'tools' / 'stack'


def a_state(workdir='/tmp/x', **kwargs):
    """A planned stack as ``up`` leaves it (ids filled in)."""
    state = stack.new_state(workdir, **kwargs)
    state['sample_image_id'] = 'a4ddab31-7d5b-4a59-9c26-6a8b1e4a0c0e'
    if kwargs.get('scaled'):
        state['ca_file'] = f'{workdir}/tls/ca.pem'
    return state


def run_main(*argv, env=None):
    """``cli.main(argv)``: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with mock.patch.dict(os.environ, env or {}), \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(argv))
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


class TestUsage(testtools.TestCase):

    def test_an_unknown_command_prints_tools_stack_usage(self):
        # before anything is installed: no bootstrap for a typo
        result = subprocess.run([str(TOOLS_STACK), 'bogus'],
                                capture_output=True, text=True, timeout=30,
                                check=False)
        self.assertEqual(2, result.returncode)
        self.assertIn("tools/stack: unknown command 'bogus'", result.stderr)
        self.assertIn('tools/stack up --scaled', result.stderr)
        self.assertNotIn('python -m tests.stack', result.stderr)
        self.assertNotIn('bootstrap:', result.stderr)

    def test_argparse_errors_name_tools_stack(self):
        code, _, err = run_main('up', '--bogus',
                                env={cli.PROG_ENV: 'tools/stack'})
        self.assertEqual(2, code)
        self.assertTrue(err.startswith('usage: tools/stack '), err)
        self.assertNotIn('python -m tests.stack', err)

    def test_tools_stack_sets_the_name(self):
        self.assertIn(f'export {cli.PROG_ENV}=tools/stack',
                      TOOLS_STACK.read_text())

    def test_without_tools_stack_the_module_is_named(self):
        with mock.patch.dict(os.environ):
            os.environ.pop(cli.PROG_ENV, None)
            code, _, err = run_main('bogus')
        self.assertEqual(2, code)
        self.assertIn('usage: python -m tests.stack', err)


class TestAnotherWorkdir(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.workdir = self.useFixture(fixtures.TempDir()).path
        self.env = {cli.PROG_ENV: 'tools/stack'}

    def test_down_names_the_running_stacks(self):
        with mock.patch.object(cli, 'running_stacks',
                               return_value=['/tmp/other', self.workdir]):
            code, out, _ = run_main('down', '--workdir', self.workdir,
                                    env=self.env)
        self.assertEqual(0, code)
        self.assertIn(f'nothing running in {self.workdir}', out)
        self.assertIn('tools/stack down --workdir /tmp/other', out)
        self.assertNotIn(f'--workdir {self.workdir}', out)

    def test_status_names_the_running_stacks(self):
        with mock.patch.object(cli, 'running_stacks',
                               return_value=['/tmp/other']):
            code, out, _ = run_main('status', '--workdir', self.workdir,
                                    env=self.env)
        self.assertEqual(1, code)
        self.assertIn(f'no stack in {self.workdir}', out)
        self.assertIn('tools/stack status --workdir /tmp/other', out)

    def test_status_of_a_stopped_stack_names_the_running_ones(self):
        state = {'workdir': self.workdir, 'pids': {'keystone': 1}}
        with open(os.path.join(self.workdir, 'stack.json'), 'w') as f:
            json.dump(state, f)
        with mock.patch.object(cli, 'running_stacks',
                               return_value=['/tmp/other',
                                             str(cli.DEFAULT_WORKDIR)]), \
                mock.patch.object(cli, 'process_status',
                                  return_value={'keystone': None}):
            code, out, _ = run_main('status', '--workdir', self.workdir,
                                    env=self.env)
        self.assertEqual(1, code)
        self.assertIn('keystone     not running', out)
        self.assertIn('tools/stack status --workdir /tmp/other', out)
        # the default workdir's stack: the bare command
        self.assertIn(', tools/stack status\n', out)
        self.assertNotIn(f'--workdir {cli.DEFAULT_WORKDIR}', out)

    def test_with_none_running_it_says_how(self):
        with mock.patch.object(cli, 'running_stacks', return_value=[]):
            _, out, _ = run_main('down', '--workdir', self.workdir,
                                 env=self.env)
        self.assertIn('--workdir DIR', out)
        self.assertIn('tools/stack down --workdir DIR', out)

    def test_running_stacks_are_found_by_their_processes(self):
        # a process of the stack's kind (memcached) working in a workdir
        # with a stack.json
        pathlib.Path(self.workdir, stack.STATE_FILE).write_text('{}\n')
        argv = ['memcached', '-l', stack.HOST, '-p', '0', '-U', '0']
        if os.geteuid() == 0:
            argv += ['-u', 'root']
        memcached = subprocess.Popen(
            argv, cwd=self.workdir, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(memcached.wait)
        self.addCleanup(memcached.kill)
        for _ in range(50):
            if self.workdir in state_module.running_stacks():
                break
            time.sleep(0.1)
        self.assertIn(self.workdir, state_module.running_stacks())


class TestInstructions(testtools.TestCase):

    def endpoint_line(self, text, name):
        (line,) = [line for line in text.splitlines()
                   if line.split()[:1] == [name]]
        return line.split(None, 1)[1]

    def test_the_glance_url_is_the_catalogs(self):
        state = a_state(scaled=True)
        self.assertNotEqual(state['glance_url'], state['glance_endpoint'])
        for text in (cli.instructions(state),
                     cli.cloud_instructions(state)):
            line = self.endpoint_line(text, 'glance')
            self.assertTrue(line.startswith(state['glance_endpoint'] + ' '),
                            line)

    def test_the_default_stack_names_glance_once(self):
        state = a_state()
        line = self.endpoint_line(cli.instructions(state), 'glance')
        self.assertEqual(state['glance_endpoint'], line)

    def test_the_sdk_exception_is_named_as_its_tracebacks_name_it(self):
        module, _, name = cli.SDK_NOT_FOUND.rpartition('.')
        self.assertEqual('openstack.exceptions', module)
        raised = getattr(openstack.exceptions, name)
        self.assertEqual(name, raised.__name__)
        text = ' '.join(cli.instructions(a_state()).split())
        self.assertIn(cli.SDK_NOT_FOUND, text)
        self.assertNotIn('ResourceNotFound', text)


class TestUpAgain(testtools.TestCase):
    """``up`` on a running stack prints the instructions again, for a
    sample image that exists."""

    def setUp(self):
        super().setUp()
        self.workdir = self.useFixture(fixtures.TempDir()).path
        self.state = a_state(self.workdir)
        self.state['pids'] = {'compute-api': 11, 'glance': 12}
        self.old = self.state['sample_image_id']
        stack.save_state(self.state)
        self.useFixture(fixtures.MockPatchObject(
            stack.Stack, 'running', return_value=self.state['pids']))
        self.useFixture(fixtures.MockPatchObject(cli, 'get_session'))
        self.create = self.useFixture(fixtures.MockPatchObject(
            cli.glance, 'create_image',
            return_value='0b1e7a52-3f09-4c55-9a51-0f0d7c2b5d11')).mock

    def test_a_deleted_sample_image_is_replaced(self):
        with mock.patch.object(cli.glance, 'glance_image',
                               return_value=None):
            code, out, _ = run_main('up', '--workdir', self.workdir)
        self.assertEqual(0, code)
        self.create.assert_called_once()
        new = self.create.return_value
        self.assertIn(f'Its sample image ({self.old}) was deleted', out)
        self.assertIn(f'/images/{new}', out)
        self.assertIn(f"delete_image('{new}'", out)
        self.assertNotIn(f'/images/{self.old}', out)
        self.assertEqual(new, stack.load_state(self.workdir)[
            'sample_image_id'])

    def test_an_existing_sample_image_is_kept(self):
        with mock.patch.object(cli.glance, 'glance_image',
                               return_value={'status': 'active'}):
            code, out, _ = run_main('up', '--workdir', self.workdir)
        self.assertEqual(0, code)
        self.create.assert_not_called()
        self.assertIn(f'/images/{self.old}', out)
        self.assertNotIn('was deleted', out)


# The log of a compute-api that refuses to start, as uWSGI writes it:
# a chained traceback whose last exception is the reason.
REFUSED_LOG = '''\
*** Operational MODE: preforking ***
Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/compute_api/deploy.py", line 90
    with open(path, 'rb'):
FileNotFoundError: [Errno 2] No such file or directory: '/x/compute_api.conf'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/compute_api/wsgi/api.py", line 11
    application = deploy.init_application()
''' + ''.join(f'  File "/venv/lib/frame{n}.py", line {n}, in f{n}\n'
              f'    f{n + 1}()\n' for n in range(25)) + '''\
compute_api.deploy.ConfigurationError: /x/compute_api.conf does not exist.
unable to load app 0 (mountpoint='') (callable not found or import error)
*** no app loaded. GAME OVER ***
'''
REASON = ('compute_api.deploy.ConfigurationError: /x/compute_api.conf does '
          'not exist.')


def a_dead_pid():
    process = subprocess.Popen(['true'])
    process.wait()
    return process.pid


class TestRefusedStart(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.workdir = pathlib.Path(self.useFixture(fixtures.TempDir()).path)

    def assertOneLineReason(self, message, reason, log):
        self.assertEqual(1, message.count(reason), message)
        self.assertNotIn('Traceback', message)
        self.assertLessEqual(len(message.splitlines()), 3, message)
        self.assertIn(str(log), message)

    def test_the_reason_once_without_the_traceback(self):
        log = self.workdir / 'compute-api.log'
        log.write_text(REFUSED_LOG)
        exc = self.assertRaises(
            stack.StackError, stack.wait_http, 'compute-api',
            'http://127.0.0.1:9/', a_dead_pid(), log, 5)
        self.assertOneLineReason(str(exc), REASON, log)
        self.assertIn('exited before answering', str(exc))
        # the traceback stays in the log
        self.assertIn('Traceback', log.read_text())

    def test_a_failed_setup_command(self):
        log = self.workdir / 'setup.log'
        script = ('import sys; sys.stdout.write(sys.argv[1]); '
                  'raise SystemExit(1)')
        exc = self.assertRaises(
            stack.StackError, stack.run_command,
            [stack.BIN_DIR / 'python', '-c', script, REFUSED_LOG], log)
        self.assertOneLineReason(str(exc), REASON, log)

    def test_the_cli_prints_it_once(self):
        log = self.workdir / 'compute-api.log'
        log.write_text(REFUSED_LOG)

        def refuse(*args, **kwargs):
            stack.wait_http('compute-api', 'http://127.0.0.1:9/',
                            a_dead_pid(), log, 5)
        with mock.patch.object(stack.Stack, 'up', refuse):
            code, out, err = run_main('up', '--workdir', str(self.workdir))
        self.assertEqual(1, code)
        error, whole_log = err.splitlines()[-2:]
        self.assertTrue(error.startswith('error: compute-api (pid '), err)
        self.assertTrue(error.endswith(REASON), err)
        self.assertEqual(f'(the whole log: {log})', whole_log)
        self.assertEqual(1, (out + err).count(REASON), err)
        self.assertNotIn('Traceback', out + err)

    def test_an_unexpected_error_is_one_line_too(self):
        def fail(*args, **kwargs):
            raise RuntimeError('Keystone said no\nsecond line')
        with mock.patch.object(stack.Stack, 'up', fail):
            code, out, err = run_main('up', '--workdir', str(self.workdir))
        self.assertEqual(1, code)
        log = self.workdir / 'logs' / 'stack-error.log'
        self.assertEqual(
            f'error: builtins.RuntimeError: Keystone said no (traceback in '
            f'{log})', err.splitlines()[-1])
        self.assertNotIn('Traceback', out + err)
        self.assertIn('Traceback', log.read_text())

    def test_a_real_refused_start(self):
        """compute-api under each server, from the service's environment,
        with no compute_api.conf: the service refuses to load."""
        if not os.access(stack.SERVICE_BIN_DIR / 'uwsgi', os.X_OK):
            self.skipTest(f'no {stack.SERVICE_VENV} (tools/bootstrap.sh)')
        (self.workdir / 'logs').mkdir()
        for server in stack.SERVERS:
            config_dir = self.workdir / f'config-{server}'
            config_dir.mkdir()
            port = stack.free_ports(1)[0]
            pid = stack.start_compute_server(
                server, f'refused-{server}', config_dir, port=port,
                workers=1, workdir=self.workdir)
            self.addCleanup(stack.stop_process, pid)
            log = self.workdir / 'logs' / f'refused-{server}.log'
            exc = self.assertRaises(
                stack.StackError, stack.wait_http, 'compute-api',
                f'http://127.0.0.1:{port}/', pid, log, 30)
            reason = (f'compute_api.deploy.ConfigurationError: '
                      f'{config_dir}/compute_api.conf does not exist.')
            self.assertOneLineReason(str(exc), reason, log)
            self.assertIn('Traceback', log.read_text(), server)


class TestRunningStacks(testtools.TestCase):

    def test_a_directory_without_stack_json_is_no_stack(self):
        with tempfile.TemporaryDirectory() as tmp:
            self.assertNotIn(tmp, state_module.running_stacks())
