"""The shipped HAProxy example: packaged, shown in the install guide, in
line with the WSGI server's limits, and what the scaled stack runs.

tests/functional/test_scaled.py runs it (rendered by tests/stack/haproxy.py)
in front of two instances; these checks read it as text.
"""

import json
import os
import re

from oslotest import base as test_base

from compute_api.api import faults
from tests.docs import test_deploy_examples
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
        self.assertIn(os.path.relpath(EXAMPLE, REPO),
                      test_deploy_examples.packaged_files())

    def test_the_install_guide_shows_the_shipped_file(self):
        self.assertIn(EXAMPLE, test_deploy_examples.guide_includes())

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

    def test_whole_requests_are_read_before_an_instance_gets_them(self):
        # A client that never finishes its body holds a connection of
        # HAProxy, not a worker of an instance.
        text = read(EXAMPLE)
        self.assertIn('http-buffer-request', directives(text, 'option'))
        timeouts = dict(v.split() for v in directives(text, 'timeout'))
        self.assertLessEqual(seconds(timeouts['http-request']), 10)

    def test_haproxy_errors_are_compute_faults_with_a_request_id(self):
        text = read(EXAMPLE)
        self.assertEqual(['req-%[uuid(4)]'],
                         directives(text, 'unique-id-format'))
        statuses = set()
        for rule in directives(text, 'http-error'):
            match = re.fullmatch(
                r'status (\d+) content-type "application/json; '
                r'charset=UTF-8" string \'([^\']+)\' '
                r'hdr x-openstack-request-id %\[unique-id\] '
                r'hdr x-compute-request-id %\[unique-id\]', rule)
            self.assertIsNotNone(match, rule)
            status = int(match.group(1))
            name = faults.FAULT_NAMES.get(status, faults.DEFAULT_FAULT_NAME)
            body = json.loads(match.group(2))
            self.assertEqual([name], list(body))
            self.assertEqual(status, body[name]['code'])
            self.assertTrue(body[name]['message'])
            statuses.add(status)
        self.assertLessEqual({400, 408, 500, 502, 503, 504}, statuses)

    def test_query_strings_are_not_logged(self):
        text = read(EXAMPLE)
        self.assertNotIn('httplog', directives(text, 'option'))
        [log_format] = directives(text, 'log-format')
        self.assertIn('%HM %HPO %HV', log_format)
        # %r (the request line), %HU (the URI) and %HQ (the query) would
        # log a query string.
        variables = set(re.findall(r'%(?:\{[^}]*\})?(\w+)', log_format))
        self.assertIn('HPO', variables)
        self.assertEqual(set(), variables & {'r', 'HU', 'HQ'})

    def test_tls_ciphers_have_forward_secrecy_and_aead(self):
        text = read(EXAMPLE)
        [ciphers] = directives(text, 'ssl-default-bind-ciphers')
        for cipher in ciphers.split(':'):
            self.assertTrue(cipher.startswith('ECDHE-'), cipher)
            self.assertRegex(cipher,
                             r'-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)$')
        [suites] = directives(text, 'ssl-default-bind-ciphersuites')
        self.assertTrue(suites.split(':'))
        self.assertEqual(['ssl-min-ver TLSv1.2'],
                         directives(text, 'ssl-default-bind-options'))

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
