"""The shipped deployment examples: packaged, shown in the install guide,
and in line with the service's own limits.

The functional tests (tests/functional/test_slow_clients.py) run them; these
checks read them as text, so that a limit changed on one side only fails
the unit tests.
"""

import configparser
import json
import os
import re

from oslo_middleware import opts as middleware_opts
from oslotest import base as test_base

from compute_api.conf import glance

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
EXAMPLES = os.path.join(REPO, 'etc', 'compute_api')
NGINX = os.path.join(EXAMPLES, 'nginx-compute-api.conf.example')
GUNICORN = os.path.join(EXAMPLES, 'gunicorn.conf.py.example')
UWSGI = os.path.join(EXAMPLES, 'uwsgi.ini.example')
GUIDE = os.path.join(REPO, 'doc', 'source', 'install.rst')
OVERLIMIT_SAMPLE = os.path.join(REPO, 'api-ref', 'source', 'samples',
                                'images', 'image-delete-413-resp.json')


def read(path):
    with open(path) as f:
        return f.read()


def guide_includes():
    """The files the install guide shows with ``literalinclude``."""
    return [os.path.normpath(os.path.join(os.path.dirname(GUIDE), target))
            for target in re.findall(r'^\.\. literalinclude::\s+(\S+)',
                                     read(GUIDE), re.MULTILINE)]


def packaged_files():
    """The files the package installs (setup.cfg's data_files)."""
    setup = configparser.ConfigParser()
    setup.read(os.path.join(REPO, 'setup.cfg'))
    return setup['files']['data_files'].split()


def nginx_values(name):
    """The values of every ``name`` directive of the nginx example."""
    return re.findall(rf'^\s*{name}\s+(.+?);\s*$', read(NGINX), re.MULTILINE)


def seconds(value):
    match = re.fullmatch(r'(\d+)s', value)
    assert match, value
    return int(match.group(1))


def gunicorn_settings():
    settings = {}
    exec(compile(read(GUNICORN), GUNICORN, 'exec'), settings)  # noqa: S102
    return settings


def glance_worst_wait():
    """The longest a delete waits on the Image service with the defaults:
    no attempt starts after ``total_timeout`` and each is capped at the time
    left."""
    (opt,) = [o for o in glance.OPTS if o.name == 'total_timeout']
    return opt.default


class TestNginxExample(test_base.BaseTestCase):

    def test_the_install_guide_shows_the_shipped_file(self):
        self.assertIn(NGINX, guide_includes())
        # No second copy in the guide that could drift from the file.
        self.assertNotIn('.. code-block:: nginx', read(GUIDE))

    def test_it_is_installed_with_the_package(self):
        self.assertIn(os.path.relpath(NGINX, REPO), packaged_files())

    def test_body_limit_and_fault_are_the_services(self):
        ((_group, (opt,)),) = middleware_opts.list_opts_sizelimit()
        self.assertEqual('max_request_body_size', opt.name)
        (size,) = nginx_values('client_max_body_size')
        self.assertEqual(f'{opt.default // 1024}k', size)
        self.assertEqual(0, opt.default % 1024)
        self.assertEqual(['413 @over_limit'], nginx_values('error_page'))
        (answer,) = nginx_values('return')
        status, body = answer.split(' ', 1)
        self.assertEqual('413', status)
        self.assertEqual(json.loads(read(OVERLIMIT_SAMPLE)),
                         json.loads(body.strip("'")))

    def test_slow_clients_are_cut_off(self):
        for name in ('client_header_timeout', 'client_body_timeout'):
            (value,) = nginx_values(name)
            self.assertLessEqual(seconds(value), 30, name)
        self.assertEqual(['on'], nginx_values('proxy_request_buffering'))

    def test_proxy_waits_longer_than_the_service(self):
        (read_timeout,) = nginx_values('proxy_read_timeout')
        worker_timeout = gunicorn_settings()['timeout']
        self.assertGreater(worker_timeout, glance_worst_wait())
        self.assertGreater(seconds(read_timeout), worker_timeout)

    def test_proxy_sets_every_header_the_service_reads(self):
        headers = dict(value.split(None, 1)
                       for value in nginx_values('proxy_set_header'))
        self.assertEqual('$scheme', headers['X-Forwarded-Proto'])
        self.assertEqual('$server_name', headers['X-Forwarded-Host'])
        self.assertEqual('$remote_addr', headers['X-Forwarded-For'])
        for cleared in ('Forwarded', 'X-Forwarded-Prefix', 'X-Forwarded-Ssl'):
            self.assertEqual('""', headers[cleared], cleared)


class TestWSGIServerExamples(test_base.BaseTestCase):
    """Only [oslo_middleware] enable_proxy_headers_parsing may change the
    scheme of the service's URLs: the WSGI servers' own ways are off."""

    def test_gunicorn_trusts_no_scheme_header(self):
        settings = gunicorn_settings()
        self.assertEqual({}, settings['secure_scheme_headers'])
        self.assertEqual('', settings['forwarded_allow_ips'])
        self.assertEqual('127.0.0.1:8774', settings['bind'])

    def test_uwsgi_resets_the_scheme(self):
        parser = configparser.ConfigParser(strict=False,
                                           inline_comment_prefixes=(';',))
        parser.read(UWSGI)
        self.assertEqual('setscheme:http', parser['uwsgi']['route-run'])
        self.assertEqual('127.0.0.1:8774', parser['uwsgi']['http-socket'])
        # it closes every connection, and must say so to kept-alive clients
        self.assertEqual('Connection: close', parser['uwsgi']['add-header'])
        (read_timeout,) = nginx_values('proxy_read_timeout')
        self.assertGreater(seconds(read_timeout),
                           int(parser['uwsgi']['harakiri']))
