"""The install guide, followed as written (``doc/source/install.rst``).

The test reads the guide's code blocks in order and does what they say, on
a cloud of its own that has only Keystone and Glance (as the guide
assumes): the Debian packages, a virtual environment made with the system's
Python holding only ``pip install <source> gunicorn``, the registration in
Keystone with the ``openstack`` client, the configuration block, the shipped
gunicorn example started as the systemd unit's ``ExecStart`` says, and the
checks at the end, whose printed output must match the guide's. Then it
does the same with the uwsgi route (Debian's uwsgi and its Python plugin).

What a test host cannot do as written is changed in one place, here:

* names and addresses: the guide's example hosts, ports, paths and secrets
  are replaced by this cloud's (``SUBSTITUTIONS``), in the commands, in the
  configuration block and in the example files the guide copies;
* ``useradd`` and the ownership of ``/etc/compute_api`` (no system account
  is created on the test host), ``systemctl`` (no systemd: the unit's
  ``Environment`` and ``ExecStart`` are run directly) and
  ``--password-prompt`` (the password is given on the command line);
* "Run it behind a proxy" installs nginx into the host's own
  ``/etc/nginx`` with a certificate the host does not have: that section is
  tested by ``test_slow_clients``, which runs the same nginx configuration
  in a directory of its own.

If the guide changes, this test follows it; if the guide stops working, it
fails.
"""

import os
import pathlib
import re
import secrets
import shutil
import subprocess
import tempfile
import time

import requests
import testtools
import testtools.content

from tests import stack

GUIDE = stack.REPO_ROOT / 'doc' / 'source' / 'install.rst'
COMMAND_TIMEOUT = 600
# Commands that the test host does not run (see the module docstring).
NOT_RUN = (
    re.compile(r'^useradd '),
    re.compile(r'^systemctl daemon-reload$'),
)
NOT_RUN_SECTIONS = ('Run it behind a proxy',)
START_UNIT = re.compile(r'^systemctl (enable --now|start) compute-api$')


def code_blocks(text):
    """``(section title, language, [lines])`` of each code block, in order.

    Lines are unindented; a console line continued with ``\\`` is joined
    with the next.
    """
    lines = text.splitlines()
    section = None
    blocks = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if (i + 1 < len(lines) and lines[i + 1]
                and set(lines[i + 1]) <= set('=-') and line.strip()
                and len(lines[i + 1]) >= len(line.strip())):
            section = line.strip()
        match = re.match(r'^\.\. code-block:: (\S+)', line)
        if not match:
            i += 1
            continue
        i += 1
        body = []
        while i < len(lines) and (not lines[i].strip()
                                  or lines[i].startswith('   ')):
            body.append(lines[i][3:])
            i += 1
        while body and not body[-1].strip():
            body.pop()
        while body and not body[0].strip():
            body.pop(0)
        joined = []
        for entry in body:
            if joined and joined[-1].endswith('\\'):
                joined[-1] = joined[-1][:-1].rstrip() + ' ' + entry.strip()
            else:
                joined.append(entry)
        blocks.append((section, match.group(1), joined))
    return blocks


def console_steps(lines):
    """``[(prompt, command, [expected output lines])]`` of a console block."""
    steps = []
    for line in lines:
        if line.startswith(('# ', '$ ')):
            steps.append((line[0], line[2:], []))
        elif steps:
            steps[-1][2].append(line)
    return steps


def output_pattern(expected):
    """A guide's sample output line as a regex: ``...`` stands for any
    text."""
    parts = [re.escape(part) for part in expected.strip().split('...')]
    return re.compile('.*'.join(parts))


class TestInstallGuide(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix='compute-api-guide-'))
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.cloud = stack.Stack(workdir=self.tmp / 'cloud')
        self.addCleanup(self.cloud.down)
        self.state = self.cloud.up(register_compute=False)
        self.port = stack.free_ports(1)[0]
        self.password = secrets.token_urlsafe(18)
        compute = f'http://{stack.HOST}:{self.port}'
        keystone = self.state['keystone_url']
        venv = self.tmp / 'opt' / 'compute-api'
        self.substitutions = [
            # the guide's names -> this cloud's
            ('https://keystone.example.com/identity',
             keystone.rsplit('/v3', 1)[0]),
            ('http://controller:5000/v3', keystone),
            ('https://compute.example.com', compute),
            ('127.0.0.1:8774', f'{stack.HOST}:{self.port}'),
            ('127.0.0.1:11211', self.state['memcached']),
            ('/path/to/compute-api', str(stack.REPO_ROOT)),
            ('/opt/compute-api', str(venv)),
            # the package's files in the virtual environment
            ('/opt/compute-api/etc/compute_api', str(venv / 'etc' /
                                                     'compute_api')),
            ('/etc/compute_api', str(self.tmp / 'etc' / 'compute_api')),
            ('COMPUTE_API_PASS', self.password),
            ('A_LONG_RANDOM_SECRET', secrets.token_hex(32)),
            ('--password-prompt', f'--password {self.password}'),
            ('-o root -g compute-api ', ''),
        ]
        self.shell_state = self.tmp / 'shell-state'
        self.shell_state.write_text('')
        self.server = None
        self.log = self.tmp / 'compute-api.log'
        self.steps = 0

    # -- the guide's text on this host ------------------------------------

    def substitute(self, text):
        """One pass, so that a replacement is never replaced again."""
        table = dict(self.substitutions)
        pattern = '|'.join(re.escape(key)
                           for key in sorted(table, key=len, reverse=True))
        return re.sub(pattern, lambda m: table[m.group(0)], text)

    def env_for(self, prompt, section):
        """Root's commands get no cloud credentials; ``$`` commands get the
        admin's, and in "Check the endpoint" a project member's."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith('OS_')}
        env['PATH'] = f'{stack.BIN_DIR}:{env.get("PATH", "/usr/bin:/bin")}'
        env['DEBIAN_FRONTEND'] = 'noninteractive'
        if prompt == '$':
            user = ('demo-member' if section == 'Check the endpoint'
                    else 'admin')
            details = self.state['users'][user]
            env.update({
                'OS_AUTH_URL': self.state['keystone_url'],
                'OS_IDENTITY_API_VERSION': '3',
                'OS_USERNAME': user,
                'OS_PASSWORD': details['password'],
                'OS_PROJECT_NAME': details['project_name'],
                'OS_USER_DOMAIN_NAME': stack.DEFAULT_DOMAIN,
                'OS_PROJECT_DOMAIN_NAME': stack.DEFAULT_DOMAIN,
                'OS_REGION_NAME': stack.REGION,
                'OS_INTERFACE': 'public',
            })
        return env

    def run_command(self, prompt, command, expected, section):
        """Run one guide command in bash; shell variables carry over to
        the next command (``IMAGE_ID=$(...)``)."""
        script = (f'set -a\n. {self.shell_state}\n{command}\nrc=$?\n'
                  f'export -p > {self.shell_state}.new\nexit $rc\n')
        started = time.monotonic()
        result = subprocess.run(
            ['bash', '-c', script], input='Y\n', capture_output=True,
            text=True, env=self.env_for(prompt, section),
            timeout=COMMAND_TIMEOUT, cwd=self.tmp)
        os.replace(f'{self.shell_state}.new', self.shell_state)
        took = time.monotonic() - started
        self.steps += 1
        self.addDetail(f'{self.steps:02d} {section}: {command}',
                       testtools.content.text_content(
            f'exit {result.returncode} in {took:.1f} s\n'
            f'--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}'))
        for line in expected:
            # the guide shows what is printed; it must be printed here too
            self.assertRegex(result.stdout + result.stderr,
                             output_pattern(line), command)
        if not expected:
            self.assertEqual(0, result.returncode,
                             f'{command}\n{result.stdout}{result.stderr}')
        return result

    def copied_examples(self, command):
        """Examples copied by ``cp`` get this host's names too."""
        words = command.split()
        if words[0] == 'cp' and words[-1].startswith(str(self.tmp)):
            target = pathlib.Path(words[-1])
            target.write_text(self.substitute(target.read_text()))

    # -- the unit ------------------------------------------------------------

    def start_unit(self, exec_start, environment):
        argv = self.substitute(exec_start).split()
        env = dict(os.environ)
        for entry in environment:
            name, _, value = self.substitute(entry).partition('=')
            env[name] = value
        # systemd starts a unit in / unless it says otherwise
        self.server = stack.spawn(argv, self.log, env, cwd='/')
        self.addCleanup(stack.stop_process, self.server)
        stack.wait_http('compute-api', f'http://{stack.HOST}:{self.port}/',
                        self.server, self.log, 60)

    def stop_unit(self):
        stack.stop_process(self.server)
        self.server = None

    # -- the test -------------------------------------------------------------

    def test_the_guide_as_written(self):
        blocks = code_blocks(GUIDE.read_text())
        unit = {}
        uwsgi_exec_start = None
        check_blocks = []
        for section, language, lines in blocks:
            text = '\n'.join(lines)
            if language == 'ini' and lines[0] == '[DEFAULT]':
                conf = self.tmp / 'etc' / 'compute_api' / 'compute_api.conf'
                conf.write_text(self.substitute(text) + '\n')
            elif language == 'ini' and lines[0] == '[Unit]':
                unit = {'Environment': [], 'ExecStart': None}
                for line in lines:
                    key, _, value = line.partition('=')
                    if key == 'Environment':
                        unit['Environment'].append(value)
                    elif key == 'ExecStart':
                        unit['ExecStart'] = value
            elif language == 'ini' and lines[0].startswith('ExecStart='):
                uwsgi_exec_start = lines[0].partition('=')[2]
            elif language == 'console' and section in NOT_RUN_SECTIONS:
                continue
            elif language == 'console':
                if section == 'Check the endpoint':
                    check_blocks.append(lines)
                for prompt, command, expected in console_steps(lines):
                    if any(p.search(command) for p in NOT_RUN):
                        continue
                    if START_UNIT.match(command):
                        self.start_unit(unit['ExecStart'],
                                        unit['Environment'])
                        continue
                    command = self.substitute(command)
                    self.run_command(prompt, command, expected, section)
                    self.copied_examples(command)
        self.assertIsNotNone(self.server, 'the guide never started it')
        self.assertNotEqual([], check_blocks)
        self.assertImageGone()
        self.assertLinksIgnoreForwardedHeaders()

        # The same checks with uwsgi in place of gunicorn, as the guide says.
        self.assertIsNotNone(uwsgi_exec_start)
        self.stop_unit()
        self.start_unit(uwsgi_exec_start, unit['Environment'])
        for lines in check_blocks:
            for prompt, command, expected in console_steps(lines):
                self.run_command(prompt, self.substitute(command), expected,
                                 'Check the endpoint')
        self.assertImageGone()

    def assertLinksIgnoreForwardedHeaders(self):
        """Without a proxy, the guide's configuration does not let a
        client choose the URLs the service hands out."""
        url = f'http://{stack.HOST}:{self.port}'
        resp = requests.get(url + '/v2.1/', timeout=30, headers={
            'X-Forwarded-Host': 'evil.example',
            'X-Forwarded-Proto': 'https',
            'Forwarded': 'host=evil.example;proto=https'})
        self.assertEqual(200, resp.status_code)
        hrefs = [link['href'] for link in resp.json()['version']['links']
                 if link['rel'] == 'self']
        self.assertEqual([url + '/v2.1/'], hrefs)

    def assertImageGone(self):
        """The last image the guide's check deleted is gone from Glance."""
        image_id = re.search(r'IMAGE_ID="?([0-9a-f-]{36})',
                             self.shell_state.read_text()).group(1)
        session = stack.get_session(self.state, 'demo-member')
        self.assertIsNone(stack.glance_image(self.state, session, image_id))
