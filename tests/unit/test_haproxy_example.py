"""The shipped HAProxy example: packaged, shown in the install guide, in
line with the WSGI server's limits, and what the scaled stack runs.

tests/functional/test_scaled.py runs it (rendered by tests/stack/haproxy.py)
in front of two instances; these checks read it as text.
"""

import configparser
import os
import re

from oslotest import base as test_base

from tests.stack import haproxy

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
EXAMPLE = os.path.join(REPO, 'etc', 'compute_api', 'haproxy.cfg.example')
GUNICORN = os.path.join(REPO, 'etc', 'compute_api',
                        'gunicorn.conf.py.example')
GUIDE = os.path.join(REPO, 'doc', 'source', 'install.rst')


def read(path):
    with open(path) as f:
        return f.read()


def directives(text, name):
    """The arguments of every ``name`` line of an HAProxy config."""
    return [line.split(None, 1)[1] if ' ' in line.strip() else ''
            for line in (raw.strip() for raw in text.splitlines())
            if line.split(None, 1)[:1] == [name]]


def seconds(value):
    match = re.fullmatch(r'(\d+)s', value)
    assert match, value
    return int(match.group(1))


class TestHAProxyExample(test_base.BaseTestCase):

    def test_it_is_installed_with_the_package(self):
        setup = configparser.ConfigParser()
        setup.read(os.path.join(REPO, 'setup.cfg'))
        self.assertIn(os.path.relpath(EXAMPLE, REPO),
                      setup['files']['data_files'].split())

    def test_the_install_guide_shows_the_shipped_file(self):
        guide = read(GUIDE)
        included = [os.path.normpath(os.path.join(os.path.dirname(GUIDE),
                                                  target))
                    for target in re.findall(r'^\.\. literalinclude::\s+(\S+)',
                                             guide, re.MULTILINE)]
        self.assertIn(EXAMPLE, included)

    def test_health_checks_use_the_healthcheck(self):
        text = read(EXAMPLE)
        self.assertEqual(['httpchk GET /healthcheck'],
                         [v for v in directives(text, 'option')
                          if v.startswith('httpchk')])
        self.assertEqual(['expect status 200'],
                         directives(text, 'http-check'))
        for server in directives(text, 'server'):
            self.assertTrue(server.endswith(' check'), server)

    def test_it_waits_longer_than_the_wsgi_server(self):
        settings = {}
        exec(compile(read(GUNICORN), GUNICORN, 'exec'), settings)  # noqa: S102
        timeouts = dict(v.split() for v in directives(read(EXAMPLE),
                                                       'timeout'))
        self.assertGreater(seconds(timeouts['server']), settings['timeout'])

    def test_only_failed_connections_are_retried(self):
        # HAProxy retries a failed connection (on another instance, with
        # redispatch); layer 7 retries ("retry-on") would also send a
        # DELETE an instance received a second time.
        text = read(EXAMPLE)
        self.assertEqual([], directives(text, 'retry-on'))
        self.assertEqual(['2'], directives(text, 'retries'))
        self.assertIn('redispatch', directives(text, 'option'))

    def test_forwarded_headers_are_set_not_passed_on(self):
        requests = directives(read(EXAMPLE), 'http-request')
        for header in ('X-Forwarded-Host', 'X-Forwarded-Proto',
                       'X-Forwarded-For'):
            self.assertTrue(any(r.startswith(f'set-header {header} ')
                                for r in requests), header)
        for header in ('Forwarded', 'X-Forwarded-Prefix'):
            self.assertIn(f'del-header {header}', requests)
        self.assertIn('set-header X-Forwarded-Proto https', requests)

    def test_the_stack_renders_its_own_places(self):
        text = haproxy.render(
            read(EXAMPLE), bind='127.0.0.1:1234', cert='/tmp/x.pem',
            public_host='127.0.0.1:1234',
            servers=[('a', '127.0.0.1:1'), ('b', '127.0.0.1:2')],
            admin_socket='/tmp/admin.sock')
        self.assertEqual(['127.0.0.1:1234 ssl crt /tmp/x.pem'],
                         directives(text, 'bind'))
        self.assertEqual(['a 127.0.0.1:1 check', 'b 127.0.0.1:2 check'],
                         directives(text, 'server'))
        self.assertEqual([], directives(text, 'user'))
        self.assertIn('set-header X-Forwarded-Host 127.0.0.1:1234',
                      directives(text, 'http-request'))
        # Everything else is the example's.
        kept = [line for line in read(EXAMPLE).splitlines()
                if line.split()[:1] not in (['bind'], ['server'], ['user'],
                                            ['group'])
                and 'X-Forwarded-Host' not in line]
        for line in kept:
            self.assertIn(line, text.splitlines())

    def test_an_example_without_its_servers_is_refused(self):
        text = '\n'.join(line for line in read(EXAMPLE).splitlines()
                         if not line.strip().startswith('default-server'))
        self.assertRaises(haproxy.StackError, haproxy.render, text,
                          bind='b', cert='c', public_host='h', servers=[])
