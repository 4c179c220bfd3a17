"""The tempest plugin's packaging and the tempest.conf the stack writes."""

import configparser
import importlib.metadata
import pathlib
import tempfile

from oslo_config import cfg
import testtools

from tests import stack
from tests import tempest_run


class TestPluginEntryPoint(testtools.TestCase):

    def test_tempest_finds_the_plugin(self):
        from tempest.test_discover import plugins
        manager = plugins.TempestTestPluginManager()
        self.assertIn('compute_api', [ext.name for ext in manager.ext_plugins])
        test_dir, top = manager.ext_plugins['compute_api'].obj.load_tests()
        self.assertTrue(
            (pathlib.Path(test_dir) / 'api' / 'test_delete_image.py')
            .is_file())
        self.assertTrue((pathlib.Path(top) / 'compute_api_tempest_plugin'
                         / 'plugin.py').is_file())

    def test_options(self):
        from compute_api_tempest_plugin import plugin
        conf = cfg.ConfigOpts()
        plugin.ComputeApiTempestPlugin().register_opts(conf)
        conf([])
        self.assertEqual('standalone', conf.compute_api.mode)
        self.assertIsNone(conf.compute_api.max_microversion)
        self.assertEqual(114688, conf.compute_api.max_request_body_size)
        conf.set_override('mode', 'extension', 'compute_api')
        self.assertRaises(ValueError, conf.set_override, 'mode', 'nova',
                          'compute_api')
        (group, opts), = plugin.ComputeApiTempestPlugin().get_opt_lists()
        self.assertEqual('compute_api', group)
        self.assertTrue(all(opt.help for opt in opts))

    def test_the_service_does_not_ship_the_plugin(self):
        # a distribution of its own: tempest never becomes a runtime
        # dependency of the service
        owners = importlib.metadata.packages_distributions()
        self.assertEqual(['compute-api-tempest-plugin'],
                         owners['compute_api_tempest_plugin'])
        (entry_point,) = importlib.metadata.entry_points(
            group='tempest.test_plugins', name='compute_api')
        self.assertEqual('compute-api-tempest-plugin',
                         entry_point.dist.name)
        requirements = pathlib.Path(stack.REPO_ROOT, 'requirements.txt')
        self.assertNotIn('tempest', requirements.read_text().lower())


class TestTempestConf(testtools.TestCase):

    def state(self):
        return {'workdir': '/w', 'region': 'RegionOne',
                'keystone_url': 'http://127.0.0.1:1/v3',
                'users': {'admin': {'password': 'secret',
                                    'project_name': 'admin'}}}

    def test_sections(self):
        sections = tempest_run.tempest_conf_sections(self.state(), '/ws')
        self.assertEqual('true', sections['auth']['use_dynamic_credentials'])
        self.assertEqual('secret', sections['auth']['admin_password'])
        self.assertEqual('admin', sections['auth']['admin_project_name'])
        self.assertEqual('http://127.0.0.1:1/v3',
                         sections['identity']['uri_v3'])
        self.assertEqual('v3', sections['identity']['auth_version'])
        self.assertEqual('true', sections['service_available']['glance'])
        self.assertEqual('false', sections['service_available']['neutron'])
        for group in ('identity', 'compute', 'image'):
            self.assertEqual('RegionOne', sections[group]['region'])
        self.assertEqual('standalone', sections['compute_api']['mode'])

    def test_region_and_mode(self):
        sections = tempest_run.tempest_conf_sections(
            self.state(), '/ws', region='NovaRegion', mode='extension')
        for group in ('identity', 'compute', 'image'):
            self.assertEqual('NovaRegion', sections[group]['region'])
        self.assertEqual('extension', sections['compute_api']['mode'])

    def test_written_file_is_read_by_tempest_options(self):
        path = pathlib.Path(tempfile.mkdtemp()) / 'tempest.conf'
        self.addCleanup(path.unlink)
        stack.write_ini(path, tempest_run.tempest_conf_sections(
            self.state(), path.parent))
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(path)
        self.assertEqual(str(path.parent / 'tempest_lock'),
                         parser['oslo_concurrency']['lock_path'])
        self.assertEqual('compute', parser['compute']['catalog_type'])
