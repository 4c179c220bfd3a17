"""Configuration, entry points and application assembly."""

from importlib import metadata
import os

import fixtures
from oslotest import base as test_base

from compute_api import deploy
from compute_api import policy
from compute_api.conf import opts


def entry_point(group, name='compute_api'):
    (found,) = [ep for ep in metadata.entry_points(group=group)
                if ep.name == name]
    return found.load()


class TestOpts(test_base.BaseTestCase):

    def test_list_opts_has_the_service_groups_with_help(self):
        groups = dict(opts.list_opts())
        self.assertEqual({'glance', 'wsgi'}, set(groups))
        glance = {opt.dest: opt for opt in groups['glance']}
        for name in ('endpoint_override', 'region_name', 'valid_interfaces',
                     'timeout', 'connect_retries', 'status_code_retries',
                     'retriable_status_codes', 'cafile', 'insecure'):
            self.assertIn(name, glance)
            self.assertTrue(glance[name].help, name)
        self.assertEqual('image', glance['service_type'].default)
        self.assertEqual([502, 503, 504],
                         glance['retriable_status_codes'].default)
        self.assertTrue(groups['wsgi'][0].help)

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

    def pipeline(self, conf_text=''):
        tmp = self.useFixture(fixtures.TempDir()).path
        with open(os.path.join(tmp, deploy.CONFIG_FILE), 'w') as f:
            f.write(conf_text)
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

    def test_auth_token_memcached_pool_default(self):
        conf = deploy.load_conf(directory='/nonexistent')
        self.assertFalse(conf.keystone_authtoken.memcache_use_advanced_pool)
