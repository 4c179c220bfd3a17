"""Configuration, entry points and application assembly."""

from importlib import metadata
import importlib.util
import os

import fixtures
from oslotest import base as test_base

from compute_api import deploy
from compute_api import policy
from compute_api.conf import opts

# The service user's credentials, as the install guide configures them.
SERVICE_USER = (
    '[keystone_authtoken]\n'
    'auth_type = password\n'
    'auth_url = http://127.0.0.1:5000/v3\n'
    'username = compute-api\n'
    'password = secret\n'
    'user_domain_name = Default\n'
    'project_name = service\n'
    'project_domain_name = Default\n')


def entry_point(group, name='compute_api'):
    (found,) = [ep for ep in metadata.entry_points(group=group)
                if ep.name == name]
    return found.load()


class TestOpts(test_base.BaseTestCase):

    def test_list_opts_has_the_service_groups_with_help(self):
        groups = dict(opts.list_opts())
        self.assertEqual(
            {'glance', 'keystone_authtoken', 'token_cache', 'wsgi'},
            set(groups))
        glance = {opt.dest: opt for opt in groups['glance']}
        for name in ('endpoint_override', 'region_name', 'valid_interfaces',
                     'timeout', 'connect_retries', 'status_code_retries',
                     'retriable_status_codes', 'cafile', 'insecure',
                     'total_timeout', 'send_service_token'):
            self.assertIn(name, glance)
            self.assertTrue(glance[name].help, name)
        self.assertEqual('image', glance['service_type'].default)
        self.assertEqual([502, 503, 504],
                         glance['retriable_status_codes'].default)
        self.assertTrue(groups['wsgi'][0].help)

    def test_sample_lists_auth_token_with_the_service_defaults(self):
        # The sample shows the defaults the service runs with, and the
        # options of the password plugin the install guide configures.
        authtoken = {opt.dest: opt
                     for opt in dict(opts.list_opts())['keystone_authtoken']}
        self.assertIs(False,
                      authtoken['memcache_use_advanced_pool'].default)
        self.assertEqual('compute', authtoken['service_type'].default)
        for name in ('auth_type', 'auth_url', 'username', 'password',
                     'project_name', 'user_domain_name',
                     'project_domain_name', 'memcached_servers',
                     'memcache_security_strategy', 'memcache_secret_key',
                     'www_authenticate_uri'):
            self.assertIn(name, authtoken)
        conf = deploy.load_conf(directory='/nonexistent')
        for name in ('memcache_use_advanced_pool', 'service_type'):
            self.assertEqual(authtoken[name].default,
                             conf.keystone_authtoken[name])

    def test_entry_points(self):
        self.assertIs(opts.list_opts, entry_point('oslo.config.opts'))
        self.assertIs(opts.set_defaults,
                      entry_point('oslo.config.opts.defaults'))
        rules = entry_point('oslo.policy.policies')()
        self.assertIn('os_compute_api:images:delete',
                      [r.name for r in rules])
        self.assertIs(policy.get_enforcer,
                      entry_point('oslo.policy.enforcer'))

    def test_get_enforcer_for_policy_tools(self):
        self.useFixture(fixtures.EnvironmentVariable(
            deploy.CONFIG_DIR_ENV, '/nonexistent'))
        enforcer = policy.get_enforcer()
        self.assertIn('os_compute_api:images:delete',
                      enforcer.registered_rules)


class TestDeploy(test_base.BaseTestCase):

    def test_config_dir_from_environment(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        with open(os.path.join(tmp, deploy.CONFIG_FILE), 'w') as f:
            f.write('[glance]\nendpoint_override = http://127.0.0.1:1\n')
        self.useFixture(fixtures.EnvironmentVariable(
            deploy.CONFIG_DIR_ENV, tmp))
        conf = deploy.load_conf()
        self.assertEqual('http://127.0.0.1:1', conf.glance.endpoint_override)

    def test_packaged_paste_file_is_the_fallback(self):
        conf = deploy.load_conf(directory='/nonexistent')
        path = deploy.paste_config_path(conf)
        self.assertTrue(path.endswith('etc/compute_api/api-paste.ini'), path)

    def test_paste_file_beside_the_config_wins(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        for name in (deploy.CONFIG_FILE, 'api-paste.ini'):
            open(os.path.join(tmp, name), 'w').close()
        conf = deploy.load_conf(directory=tmp)
        self.assertEqual(os.path.join(tmp, 'api-paste.ini'),
                         deploy.paste_config_path(conf))

    def write_conf(self, conf_text):
        tmp = self.useFixture(fixtures.TempDir()).path
        with open(os.path.join(tmp, deploy.CONFIG_FILE), 'w') as f:
            f.write(conf_text)
        return tmp

    def pipeline(self, conf_text=''):
        tmp = self.write_conf(SERVICE_USER + conf_text)
        app = deploy.loadapp(deploy.load_conf(directory=tmp))
        names = []
        while app is not None:
            names.append(type(app).__name__)
            app = getattr(app, 'application', getattr(app, '_app', None))
        return names

    def test_production_pipeline_order(self):
        self.assertEqual(
            ['ComputeRequestId', 'CORS', 'HTTPProxyToWSGI', 'RequestLog',
             'FaultWrapper',
             '_PathApp', 'RequestBodySizeLimiter', 'VersionsMiddleware',
             'AuthProtocol', 'ContextMiddleware', 'APIRouter'],
            self.pipeline('[cors]\nallowed_origin = https://dash.test\n'
                          '[oslo_middleware]\n'
                          'enable_proxy_headers_parsing = True\n'))

    def test_idle_cors_and_proxy_layers_are_left_out(self):
        self.assertEqual(
            ['ComputeRequestId', 'RequestLog', 'FaultWrapper',
             '_PathApp', 'RequestBodySizeLimiter', 'VersionsMiddleware',
             'AuthProtocol', 'ContextMiddleware', 'APIRouter'],
            self.pipeline())


class TestRefusesToStart(test_base.BaseTestCase):
    """A service that could not serve does not load at all."""

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def init_app(self, conf_text=None):
        if conf_text is not None:
            with open(os.path.join(self.tmp, deploy.CONFIG_FILE), 'w') as f:
                f.write(conf_text)
        return deploy.init_application(directory=self.tmp)

    def assertRefused(self, conf_text, *fragments):
        exc = self.assertRaises(deploy.ConfigurationError,
                                self.init_app, conf_text)
        for fragment in fragments:
            self.assertIn(fragment, str(exc))
        return exc

    def test_missing_config_file(self):
        self.assertRefused(None, os.path.join(self.tmp, 'compute_api.conf'),
                           'does not exist', 'OS_COMPUTE_API_CONFIG_DIR')

    def test_config_dir_from_the_environment_missing(self):
        self.useFixture(fixtures.EnvironmentVariable(
            'OS_COMPUTE_API_CONFIG_DIR', '/nonexistent'))
        exc = self.assertRaises(deploy.ConfigurationError,
                                deploy.init_application)
        self.assertIn('/nonexistent/compute_api.conf', str(exc))

    def test_unreadable_config_file(self):
        path = os.path.join(self.tmp, deploy.CONFIG_FILE)
        os.mkdir(path)  # unreadable as a file, even for root
        self.assertRefused(None, path, 'cannot be read')

    def test_no_auth_type(self):
        self.assertRefused('[keystone_authtoken]\n'
                           'memcached_servers = 127.0.0.1:11211\n',
                           '[keystone_authtoken] has no auth_type',
                           os.path.join(self.tmp, 'compute_api.conf'))

    def test_missing_credentials_are_named(self):
        text = SERVICE_USER.replace('username = compute-api\n', '')
        text = text.replace('auth_url = http://127.0.0.1:5000/v3\n', '')
        self.assertRefused(text, '[keystone_authtoken] lacks', 'auth_url')

    def test_missing_user_or_password_is_named(self):
        # keystoneauth itself asks for them only at the first request
        for option, named in (('username = compute-api\n',
                               'username (or user_id)'),
                              ('password = secret\n', 'password')):
            self.assertRefused(SERVICE_USER.replace(option, ''),
                               '[keystone_authtoken] lacks', named)
        self.init_app(SERVICE_USER.replace('username = compute-api\n',
                                           'user_id = 0123abcd\n'))

    def test_unknown_auth_type(self):
        self.assertRefused(SERVICE_USER.replace('auth_type = password',
                                                'auth_type = passwd'),
                           'auth_type', 'passwd')

    def test_encrypted_cache_without_a_key(self):
        # keystonemiddleware's own check, at load rather than per request
        self.assertRaises(Exception, self.init_app, SERVICE_USER +
                          'memcache_security_strategy = ENCRYPT\n')

    def test_encrypted_cache_needs_cryptography(self):
        real_find_spec = importlib.util.find_spec
        self.useFixture(fixtures.MockPatch(
            'importlib.util.find_spec',
            lambda name, *a: None if name == 'cryptography'
            else real_find_spec(name, *a)))
        self.assertRefused(SERVICE_USER +
                           'memcache_security_strategy = ENCRYPT\n'
                           'memcache_secret_key = k\n', 'cryptography')

    def test_the_install_guide_configuration_loads(self):
        app = self.init_app(SERVICE_USER +
                            'memcached_servers = 127.0.0.1:11211\n'
                            'memcache_security_strategy = ENCRYPT\n'
                            'memcache_secret_key = k\n')
        self.assertIsNotNone(app)

    def test_cryptography_is_a_runtime_requirement(self):
        # ENCRYPT, which the install guide recommends, needs it.
        reqs = metadata.requires('compute-api') or []
        self.assertIn('cryptography', {
            r.split('>')[0].split('=')[0].split(';')[0].strip().lower()
            for r in reqs})
