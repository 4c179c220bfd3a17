"""The images filter inside a Nova-like host pipeline, in process.

The host is built by Paste Deploy's own loader (not compute_api.deploy):
a urlmap that moves ``/v2.1`` and ``/v2`` into ``SCRIPT_NAME``, as Nova's
does, each in front of a pipeline of the auth_token double, the filter and
a host application that records what reaches it. Glance is faked on
loopback.
"""

import configparser
import os
from urllib import parse
import uuid

import fixtures
from oslo_middleware import cors
from oslotest import base as oslo_base
from paste import deploy as paste_deploy
import webob
import webob.dec

from compute_api import deploy
from compute_api import extension
from tests.unit import base
from tests.unit import fakes

READER = {'user_id': 'u-reader', 'project_id': base.PROJECT,
          'roles': ['reader']}
RULE = 'os_compute_api:images:delete'

HOST_PASTE = """
[composite:main]
use = egg:Paste#urlmap
/: versions
/v2.1: v21
/v2: legacy_v2

[pipeline:v21]
pipeline = fakeauth compute_api_images host

[pipeline:legacy_v2]
pipeline = fakeauth compute_api_images host

[pipeline:flat]
pipeline = fakeauth compute_api_images host

[app:versions]
paste.app_factory = tests.unit.test_extension:host_factory

[app:host]
paste.app_factory = tests.unit.test_extension:host_factory

[filter:fakeauth]
paste.filter_factory = tests.unit.fakes:fake_auth_factory

[filter:compute_api_images]
paste.filter_factory = compute_api.extension:images_filter_factory
config_dir = %(config_dir)s
"""


class HostApp:
    """The host's application: records the environ of what reaches it."""

    seen = []

    @webob.dec.wsgify
    def __call__(self, req):
        self.seen.append(dict(req.environ))
        return webob.Response(status=299, json_body={'host': True},
                              content_type='application/json')


def host_factory(global_conf, **local_conf):
    return HostApp()


class ExtensionTestCase(oslo_base.BaseTestCase):

    policy_yaml = '{}\n'

    def setUp(self):
        super().setUp()
        HostApp.seen = []
        self.glance = fakes.FakeGlance()
        self.addCleanup(self.glance.stop)
        self.config_dir = self.useFixture(fixtures.TempDir()).path
        self.write('policy.yaml', self.policy_yaml)
        # Only [glance] and [oslo_policy]: no [keystone_authtoken], which
        # the host's auth_token has.
        self.write(deploy.CONFIG_FILE, (
            '[glance]\n'
            f'endpoint_override = {self.glance.url}\n'
            'connect_retries = 0\n'
            'status_code_retries = 0\n'
            'timeout = 2\n'
            '[oslo_policy]\n'
            'policy_file = policy.yaml\n'))
        self.paste = self.write(
            'host-paste.ini', HOST_PASTE % {'config_dir': self.config_dir})
        self.app = self.load()

    def load(self, name='main'):
        return paste_deploy.loadapp('config:' + self.paste, name=name)

    def write(self, name, text):
        path = os.path.join(self.config_dir, name)
        with open(path, 'w') as f:
            f.write(text)
        return path

    def request(self, path, method='DELETE', identity=base.MEMBER,
                headers=None, app=None, body=None, **environ):
        req = webob.Request.blank(path, method=method, headers=headers,
                                  environ=environ)
        if body is not None:
            req.body = body
        req.environ[fakes.IDENTITY_KEY] = identity
        return req.get_response(app or self.app)

    def delete(self, image_id=None, project=None, root='/v2.1', **kwargs):
        image_id = parse.quote(image_id or str(uuid.uuid4()), safe='')
        prefix = root if project is None else f'{root}/{project}'
        return self.request(f'{prefix}/images/{image_id}', **kwargs)

    def assertServed(self, resp, status=204, version='2.1'):
        self.assertEqual(status, resp.status_int, resp.body)
        self.assertEqual([], HostApp.seen)
        if version:
            self.assertEqual(f'compute {version}',
                             resp.headers['OpenStack-API-Version'])
            self.assertEqual(version,
                             resp.headers['X-OpenStack-Nova-API-Version'])
        if status >= 400:
            self.assertEqual('application/json', resp.content_type)

    def assertPassedOn(self, resp, script_name, path_info, headers=None):
        """The host got the request as it was, and Glance nothing."""
        self.assertEqual(299, resp.status_int, resp.body)
        (environ,) = HostApp.seen
        self.assertEqual(script_name, environ['SCRIPT_NAME'])
        self.assertEqual(path_info, environ['PATH_INFO'])
        for key, value in (headers or {}).items():
            self.assertEqual(value, environ[key])
        self.assertEqual([], self.glance.requests)
        HostApp.seen.clear()


class TestServed(ExtensionTestCase):

    def test_both_url_forms_under_the_urlmap(self):
        for project in (None, base.PROJECT):
            image_id = str(uuid.uuid4())
            resp = self.delete(image_id, project=project)
            self.assertServed(resp)
            self.assertEqual(b'', resp.body)
            self.assertIn('OpenStack-API-Version', resp.headers['Vary'])
            last = self.glance.requests[-1]
            self.assertEqual(('DELETE', f'/v2/images/{image_id}'),
                             (last.method, last.path))
            # the caller's token, from the host's auth_token
            self.assertEqual('user-token', last.headers['X-Auth-Token'])

    def test_version_root_still_in_path_info(self):
        flat = self.load('flat')
        for script_name in ('', '/compute'):
            for project in (None, base.PROJECT):
                resp = self.delete(project=project, app=flat,
                                   SCRIPT_NAME=script_name)
                self.assertServed(resp)
        self.assertEqual(4, len(self.glance.requests))

    def test_microversions_served(self):
        for headers, version in (
                ({'OpenStack-API-Version': 'compute 2.35'}, '2.35'),
                ({'X-OpenStack-Nova-API-Version': '2.20'}, '2.20'),
                ({'OpenStack-API-Version': 'compute 2.2',
                  'X-OpenStack-Nova-API-Version': '2.99'}, '2.2'),
                ({'OpenStack-API-Version': 'identity 3.0'}, '2.1')):
            resp = self.delete(headers=headers)
            self.assertServed(resp, version=version)

    def test_project_mismatch_is_400(self):
        resp = self.delete(project=base.OTHER_PROJECT)
        self.assertServed(resp, 400)
        self.assertIn(base.OTHER_PROJECT, resp.json['badRequest']['message'])
        self.assertEqual([], self.glance.requests)

    def test_reader_is_refused_by_the_rule_before_glance(self):
        resp = self.delete(identity=READER)
        self.assertServed(resp, 403)
        self.assertIn(RULE, resp.json['forbidden']['message'])
        self.assertEqual([], self.glance.requests)

    def test_control_characters_are_the_filters_404(self):
        # passed on, the host's routes would match '{id}\n' as '{id}'
        real = str(uuid.uuid4())
        for junk in ('\n', '\n\n', '\r', '\t', '\x00', '\x7f'):
            for project in (None, base.PROJECT):
                prefix = '/v2.1' if project is None else f'/v2.1/{project}'
                resp = self.request(f'{prefix}/images/{real}',
                                    method='DELETE',
                                    PATH_INFO=f'{prefix}/images/{real}{junk}')
                # the router's own 404, before the microversion is read
                self.assertEqual(404, resp.status_int, resp.body)
                self.assertEqual(['itemNotFound'], list(resp.json))
        self.assertEqual([], HostApp.seen)
        self.assertEqual([], self.glance.requests)

    def assertRefused(self, resp, message, method='DELETE'):
        self.assertEqual(400, resp.status_int, resp.body)
        if method != 'HEAD':  # a HEAD answer has no body
            self.assertEqual(['badRequest'], list(resp.json))
            self.assertIn(message, resp.json['badRequest']['message'])
        self.assertEqual([], HostApp.seen)
        self.assertEqual([], self.glance.requests)

    def test_method_overrides_are_refused(self):
        # Nova's router reads _method with webob's parser (';' separates
        # too, invalid UTF-8 makes it keep the request's own method): the
        # filter refuses every trace of an override instead of reading it
        real = str(uuid.uuid4())
        for method, query in (
                ('GET', '_method=DELETE'), ('GET', 'x=1;_method=DELETE'),
                ('GET', ';_method=DELETE'), ('HEAD', 'x;_method=delete'),
                ('DELETE', '_method=;'), ('DELETE', '_method=DELETE;'),
                ('DELETE', '_method=%FF'), ('DELETE', '_method=GET&x=%FF'),
                ('GET', '_METHOD=delete'), ('GET', '%5Fmethod=DELETE'),
                ('GET', '_%6Dethod=DELETE'), ('POST', '_method=DELETE'),
                ('PUT', 'x=1&_method=delete'), ('GET', '_method=PUT'),
                ('GET', '_method')):
            for path in (f'/v2.1/images/{real}',
                         f'/v2.1/{base.PROJECT}/images/{real}',
                         f'/v2/images/{real}', f'/v2.1/IMAGES/{real}',
                         f'/v2.1/images/{real}/metadata/key'):
                resp = self.request(f'{path}?{query}', method=method)
                self.assertRefused(resp, 'method override (_method)', method)

    def test_a_query_that_is_not_utf8_is_refused(self):
        real = str(uuid.uuid4())
        for query in ('x=%FF', 'x=%C3', 'x=\xff'):
            resp = self.request(f'/v2.1/images/{real}', QUERY_STRING=query)
            self.assertRefused(resp, 'not valid UTF-8')
        resp = self.request(f'/v2.1/images/{real}', QUERY_STRING='x=%C3%A9')
        self.assertServed(resp)

    def test_form_bodies_with_an_override_are_refused(self):
        real = str(uuid.uuid4())
        multipart = ('--b\r\nContent-Disposition: form-data; '
                     'name="_method"\r\n\r\ndelete\r\n--b--\r\n')
        for content_type, body in (
                ('application/x-www-form-urlencoded', '_method=delete'),
                ('application/x-www-form-urlencoded; charset=UTF-8',
                 'x=1&%5FMethod=DELETE'),
                ('Application/X-WWW-Form-Urlencoded', '_method=DELETE'),
                ('multipart/form-data; boundary=b', multipart)):
            for method in ('POST', 'DELETE', 'GET'):
                resp = self.request(
                    f'/v2.1/images/{real}', method=method,
                    CONTENT_TYPE=content_type, body=body.encode())
                self.assertRefused(resp, 'method override (_method)')
        # a form without one is the host's (Nova answers it 415), and it
        # can still read the body
        resp = self.request(f'/v2.1/images/{real}', method='POST',
                            CONTENT_TYPE='application/x-www-form-urlencoded',
                            body=b'name=x')
        self.assertPassedOn(resp, '/v2.1', f'/images/{real}')

    def test_overrides_elsewhere_are_the_hosts(self):
        resp = self.request('/v2.1/servers/x?_method=DELETE', method='GET')
        self.assertPassedOn(resp, '/v2.1', '/servers/x')

    def test_values_that_mention_method_are_not_overrides(self):
        # an image named 'build_method' is a filter any client may send
        for query in ('name=build_method', 'name=_method', 'x=%5Fmethod'):
            resp = self.request(f'/v2.1/images/detail?{query}',
                                method='GET')
            self.assertPassedOn(resp, '/v2.1', '/images/detail')
        image_id = str(uuid.uuid4())
        resp = self.request(f'/v2.1/images/{image_id}', method='POST',
                            CONTENT_TYPE='application/x-www-form-urlencoded',
                            body=b'name=build_method')
        self.assertPassedOn(resp, '/v2.1', f'/images/{image_id}')
        self.assertServed(self.delete(QUERY_STRING='name=build_method'))

    def test_reserved_characters_stay_in_the_id(self):
        real = str(uuid.uuid4())
        for junk in ('?x', '#x', '?', ' x'):
            resp = self.delete(real + junk)
            self.assertServed(resp, 404)
            self.assertEqual('itemNotFound', list(resp.json)[0])
        self.assertEqual([], self.glance.requests)

    def test_glance_answers_are_mapped(self):
        for glance_status, status, name in (
                (404, 404, 'itemNotFound'), (403, 403, 'forbidden'),
                (409, 409, 'conflictingRequest'),
                (503, 503, 'serviceUnavailable'),
                (500, 503, 'serviceUnavailable')):
            self.glance.default = (glance_status, b'{"message": "<b>"}', 0)
            resp = self.delete()
            self.assertServed(resp, status)
            self.assertEqual([name], list(resp.json))
            self.assertNotIn('<', resp.text)

    def test_glance_unreachable_is_503(self):
        self.glance.stop()
        resp = self.delete()
        self.assertServed(resp, 503)
        self.assertEqual(['serviceUnavailable'], list(resp.json))

    def test_policy_override_applies_at_runtime(self):
        self.assertServed(self.delete(identity=READER), 403)
        self.write('policy.yaml', f'"{RULE}": "role:reader"\n')
        self.assertServed(self.delete(identity=READER))

    def test_legacy_root_ignores_and_omits_microversions(self):
        headers = {'OpenStack-API-Version': 'compute 2.50'}
        for project in (None, base.PROJECT):
            resp = self.delete(project=project, root='/v2', headers=headers)
            self.assertServed(resp, version=None)
            self.assertNotIn('OpenStack-API-Version', resp.headers)
            self.assertNotIn('X-OpenStack-Nova-API-Version', resp.headers)
            self.assertNotIn('OpenStack-API-Version',
                             resp.headers.get('Vary', ''))
        self.assertEqual(2, len(self.glance.requests))


class TestPassedOn(ExtensionTestCase):

    def test_other_methods_and_paths(self):
        image_id = str(uuid.uuid4())
        for method, path in (
                ('GET', f'/images/{image_id}'),
                ('HEAD', f'/images/{image_id}'),
                ('PUT', f'/images/{image_id}'),
                ('POST', f'/{base.PROJECT}/images/{image_id}'),
                ('GET', '/images'),
                ('DELETE', '/images'),
                ('DELETE', '/images/'),
                ('DELETE', f'/images/{image_id}/'),
                ('DELETE', f'/images/{image_id}/metadata/key'),
                ('DELETE', f'/servers/{image_id}'),
                ('DELETE', f'/{base.PROJECT}/servers/{image_id}'),
                ('GET', '/')):
            resp = self.request('/v2.1' + path, method=method)
            self.assertPassedOn(resp, '/v2.1', path)

    def test_control_characters_elsewhere_are_the_hosts(self):
        resp = self.request('/v2.1/servers/x', PATH_INFO='/v2.1/servers/x\n')
        self.assertPassedOn(resp, '/v2.1', '/servers/x\n')

    def test_an_encoded_slash_makes_another_path(self):
        image_id = str(uuid.uuid4())
        resp = self.delete(image_id + '/metadata/key')
        self.assertPassedOn(resp, '/v2.1',
                            f'/images/{image_id}/metadata/key')

    def test_paths_outside_the_version_roots(self):
        image_id = str(uuid.uuid4())
        # outside the urlmap's roots: the host's versions application
        resp = self.request(f'/images/{image_id}')
        self.assertPassedOn(resp, '', f'/images/{image_id}')

    def test_a_pipeline_without_a_version_root_is_served(self):
        # The host's router sees PATH_INFO as it is: whatever root the
        # pipeline was mounted at, a path of the call is served here
        flat = self.load('flat')
        image_id = str(uuid.uuid4())
        resp = self.request(f'/images/{image_id}', app=flat)
        self.assertServed(resp)
        for path in (f'/v3/images/{image_id}', f'/v2.10/images/{image_id}'):
            resp = self.request(path, app=flat)
            self.assertServed(resp, 400)  # 'v3' is not the token's project
        self.assertEqual([f'/v2/images/{image_id}'],
                         [r.path for r in self.glance.requests])

    def test_microversions_not_served_go_to_the_host(self):
        for value in ('compute 2.36', 'compute latest', 'compute 2.105',
                      'compute 3.0', 'compute 2.0', 'compute 1.1',
                      'compute 2.01', 'compute abc', 'compute 2.',
                      'compute 2.1.1', 'compute 99999999999.1'):
            image_id = str(uuid.uuid4())
            resp = self.delete(image_id,
                               headers={'OpenStack-API-Version': value})
            self.assertPassedOn(resp, '/v2.1', f'/images/{image_id}',
                                {'HTTP_OPENSTACK_API_VERSION': value})
        for value in ('2.36', 'latest', 'x'):
            image_id = str(uuid.uuid4())
            resp = self.delete(
                image_id, project=base.PROJECT,
                headers={'X-OpenStack-Nova-API-Version': value})
            self.assertPassedOn(
                resp, '/v2.1', f'/{base.PROJECT}/images/{image_id}',
                {'HTTP_X_OPENSTACK_NOVA_API_VERSION': value})

    def test_unconfirmed_identity_is_refused(self):
        # the host's auth_token has refused it already in any case
        router, enforcer = extension._pieces(self.config_dir)
        host = HostApp()
        app = extension.ImagesFilter(host, router, enforcer)
        for headers in ({}, {'X-Identity-Status': 'Invalid',
                             'X-User-Id': 'u'},
                        {'X-Identity-Status': 'Confirmed'}):
            req = webob.Request.blank(
                f'/v2.1/images/{uuid.uuid4()}', method='DELETE',
                headers=headers)
            resp = req.get_response(app)
            self.assertEqual(401, resp.status_int, resp.body)
            self.assertEqual([], HostApp.seen)
            self.assertEqual([], self.glance.requests)


class TestLoading(ExtensionTestCase):

    def test_refuses_to_load_without_its_configuration(self):
        empty = self.useFixture(fixtures.TempDir()).path
        paste = self.write('other-paste.ini',
                           HOST_PASTE % {'config_dir': empty})
        exc = self.assertRaises(deploy.ConfigurationError,
                                paste_deploy.loadapp, 'config:' + paste)
        self.assertIn(os.path.join(empty, deploy.CONFIG_FILE), str(exc))

    def test_broken_policy_file_at_load_is_503_not_a_refusal(self):
        other = self.useFixture(fixtures.TempDir()).path
        with open(os.path.join(other, deploy.CONFIG_FILE), 'w') as f:
            f.write('[oslo_policy]\npolicy_file = policy.yaml\n')
        with open(os.path.join(other, 'policy.yaml'), 'w') as f:
            f.write('"a": [\n')
        paste = self.write('other-paste.ini',
                           HOST_PASTE % {'config_dir': other})
        resp = self.delete(app=paste_deploy.loadapp('config:' + paste))
        self.assertEqual(503, resp.status_int, resp.body)
        self.assertIn('serviceUnavailable', resp.json)

    def test_config_dir_defaults_to_the_environment(self):
        self.useFixture(fixtures.EnvironmentVariable(
            deploy.CONFIG_DIR_ENV, self.config_dir))
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(self.paste)
        parser.remove_option('filter:compute_api_images', 'config_dir')
        with open(self.paste, 'w') as f:
            parser.write(f)
        app = self.load()
        self.assertServed(self.delete(app=app))

    def test_pipelines_share_one_router(self):
        main = self.load()
        filters = [app.application for _, app in main.applications
                   if isinstance(app, fakes.FakeAuth)]
        self.assertEqual(2, len(filters))
        self.assertIs(filters[0].router, filters[1].router)

    def test_library_defaults_of_the_host_are_left_alone(self):
        before = [(opt.name, opt.default) for opt in cors.CORS_OPTS]
        other = self.useFixture(fixtures.TempDir()).path
        with open(os.path.join(other, deploy.CONFIG_FILE), 'w') as f:
            f.write('[glance]\n')
        cors.set_defaults(allow_headers=['X-Host-Only'])
        self.addCleanup(cors.set_defaults, allow_headers=dict(before)[
            'allow_headers'])
        extension.images_filter_factory({}, config_dir=other)
        self.assertEqual(['X-Host-Only'],
                         dict((opt.name, opt.default)
                              for opt in cors.CORS_OPTS)['allow_headers'])


class TestStandaloneFactoriesWithAnyLoader(oslo_base.BaseTestCase):
    """The standalone pipeline's factories need no compute_api.deploy: any
    Paste loader builds them from the config_dir it names."""

    def test_paste_loader_with_config_dir(self):
        glance = fakes.FakeGlance()
        self.addCleanup(glance.stop)
        directory = self.useFixture(fixtures.TempDir()).path
        with open(os.path.join(directory, deploy.CONFIG_FILE), 'w') as f:
            f.write(f'[glance]\nendpoint_override = {glance.url}\n'
                    f'[keystone_authtoken]\n'
                    f'www_authenticate_uri = {fakes.KEYSTONE}\n')
        paste = os.path.join(directory, 'api-paste.ini')
        with open(paste, 'w') as f:
            f.write(base.unit_paste_ini())
        app = paste_deploy.loadapp('config:' + paste,
                                   global_conf={'config_dir': directory})
        image_id = str(uuid.uuid4())
        req = webob.Request.blank(f'/v2.1/images/{image_id}',
                                  method='DELETE')
        req.environ[fakes.IDENTITY_KEY] = base.MEMBER
        resp = req.get_response(app)
        self.assertEqual(204, resp.status_int, resp.body)
        self.assertEqual([f'/v2/images/{image_id}'],
                         [r.path for r in glance.requests])
