"""What the guide says of the tools, held to what they do.

The commands of doc/source/quickstart.rst are commands the tools accept;
the install guide and the configuration reference give the same longest
wait on the Image service, the one the defaults make; what the install
guide tells a user of PyPI's uWSGI is what that uWSGI does; and the soaks'
figures in reliability.rst name the server the soak was told to run.
"""

import configparser
import pathlib
import re
import subprocess
import tempfile

import testtools

from compute_api.conf import glance as glance_conf
from tests import soak
from tests import stack
from tests.stack import cli
from tests.stack import processes

DOC = stack.REPO_ROOT / 'doc' / 'source'
QUICKSTART = DOC / 'quickstart.rst'
INSTALL = DOC / 'install.rst'
CONFIGURATION = DOC / 'configuration.rst'
RELIABILITY = DOC / 'reliability.rst'
RUN_TESTS = stack.REPO_ROOT / 'tools' / 'run-tests'


def text(path):
    """A page's text with lines joined, so that a phrase may wrap."""
    return ' '.join(path.read_text().split())


def inline_commands(page, program):
    """Each ``program ...`` inline literal of ``page``, as its words."""
    return [literal.split()[1:] for literal in
            re.findall(rf'``({re.escape(program)}(?: [^`]*)?)``',
                       text(page))]


class TestQuickstartCommands(testtools.TestCase):

    def test_tools_stack_commands_are_accepted(self):
        commands = inline_commands(QUICKSTART, 'tools/stack')
        self.assertGreater(len(commands), 5)
        parser = cli.build_parser()
        for words in commands:
            # placeholders of the text
            words = [{'DIR': '/tmp/d', 'N': '3'}.get(w, w) for w in words]
            args = parser.parse_args(words)
            self.assertIn(args.command, ('up', 'down', 'status'))

    def test_run_tests_parts_exist(self):
        script = RUN_TESTS.read_text()
        parts = re.findall(r'"\$what" = (\w+)', script)
        named = re.search(r'``tools/run-tests unit``, (.*?) run one part',
                          text(QUICKSTART)).group(1)
        for part in ['unit'] + re.findall(r'``(\w+)', named):
            self.assertIn(part, parts)


class TestLongestGlanceWait(testtools.TestCase):
    """The retries stop at ``[glance] total_timeout``: no attempt starts
    after it and none waits longer than the time left, so the longest wait
    with the defaults is its default. Both pages say so."""

    def default(self):
        (opt,) = [opt for opt in glance_conf.OPTS
                  if opt.name == 'total_timeout']
        return opt.default

    def test_the_defaults_bound_it(self):
        d = glance_conf.DEFAULTS
        attempts = ((1 + d['connect_retries'] + d['status_code_retries'])
                    * d['timeout'] + d['connect_retries']
                    * d['connect_retry_delay'] + d['status_code_retries']
                    * d['status_code_retry_delay'])
        # total_timeout is what ends the attempts, not their sum
        self.assertLess(self.default(), attempts)

    def test_install_and_configuration_agree(self):
        install = re.findall(r'``\[glance\] total_timeout`` \((\d+(?:\.\d+)?) '
                             r'seconds by default', text(INSTALL))
        configuration = re.findall(
            r'(\d+(?:\.\d+)?) seconds with the defaults', text(CONFIGURATION))
        self.assertEqual([self.default()], [float(v) for v in install])
        self.assertEqual([self.default()],
                         [float(v) for v in configuration])
        for page in (INSTALL, CONFIGURATION):
            self.assertNotRegex(text(page), r'about 41 seconds|40\.5')


class TestPyPIuWSGI(testtools.TestCase):
    """install.rst: a uWSGI from PyPI has no plugin to load; with the
    example's ``plugins = python3`` line it says so at every start and goes
    on to load the application."""

    def run_uwsgi(self, keep_plugins_line):
        uwsgi = stack.SERVICE_BIN_DIR / 'uwsgi'
        if not uwsgi.exists():
            self.skipTest(f'no {uwsgi} (tools/bootstrap.sh)')
        parser = configparser.ConfigParser(strict=False, interpolation=None,
                                           inline_comment_prefixes=(';',))
        parser.read(stack.EXAMPLES_DIR / 'uwsgi.ini.example')
        settings = dict(parser['uwsgi'])
        self.assertEqual('python3', settings['plugins'])
        if not keep_plugins_line:
            del settings['plugins']
        tmp = pathlib.Path(self.useFixture_tmp())
        # no compute_api.conf there: the application refuses to load, and
        # uWSGI (need-app) exits
        settings.update({'virtualenv': str(stack.SERVICE_VENV),
                         'http-socket': f'{stack.HOST}:0',
                         'env': f'{stack.COMPUTE_CONFIG_ENV}={tmp}',
                         'processes': '1', 'lazy-apps': 'false'})
        ini = tmp / 'uwsgi.ini'
        ini.write_text('[uwsgi]\n' + ''.join(
            f'{key} = {value}\n' for key, value in settings.items()))
        result = subprocess.run([str(uwsgi), '--ini', str(ini)], cwd=tmp,
                                capture_output=True, text=True, timeout=60,
                                check=False, env=processes.service_env())
        return result.stdout + result.stderr

    def useFixture_tmp(self):
        tmp = tempfile.mkdtemp(prefix='compute-api-uwsgi-')
        self.addCleanup(subprocess.run, ['rm', '-rf', tmp], check=False)
        return tmp

    def test_the_guide_says_to_delete_the_line(self):
        self.assertIn('delete the example\'s ``plugins = python3`` line',
                      text(INSTALL))
        self.assertIn('``!!! UNABLE to load uWSGI plugin``', text(INSTALL))

    def test_with_the_line(self):
        output = self.run_uwsgi(keep_plugins_line=True)
        self.assertIn('!!! UNABLE to load uWSGI plugin', output)
        # and goes on: the application is loaded (and refuses)
        self.assertIn('compute_api.conf does not exist', output)

    def test_without_the_line(self):
        output = self.run_uwsgi(keep_plugins_line=False)
        self.assertNotIn('UNABLE to load', output)
        self.assertIn('compute_api.conf does not exist', output)


class TestSoakFiguresNameTheirServer(testtools.TestCase):

    def test_the_soak_chooses_its_server(self):
        # its own choice, not the stack's default, which may change
        self.assertIn(soak.SERVER, stack.SERVERS)
        source = (stack.REPO_ROOT / 'tests' / 'soak.py').read_text()
        self.assertIn("default=SERVER,", source)
        scaled = (stack.REPO_ROOT / 'tests' / 'soak_scaled.py').read_text()
        self.assertIn('default=soak.SERVER,', scaled)

    def test_every_soak_command_names_its_server(self):
        commands = [' '.join(c.split()) for c in
                    re.findall(r'\.venv/bin/python -m (tests\.soak[^`]*?)'
                               r'(?:``|\n\n)', RELIABILITY.read_text())]
        self.assertGreaterEqual(len(commands), 3, commands)
        for command in commands:
            self.assertRegex(command, r'--server (uwsgi|gunicorn)\b')
