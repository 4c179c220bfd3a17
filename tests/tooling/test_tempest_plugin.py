"""The tempest plugin's packaging and the tempest.conf the stack writes."""

import configparser
import importlib.metadata
import io
import pathlib
import tempfile

import fixtures
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

    def test_pre_provisioned_accounts_without_admin(self):
        sections = tempest_run.tempest_conf_sections(
            self.state(), '/ws', accounts_file='/ws-accounts.yaml')
        self.assertEqual('false', sections['auth']['use_dynamic_credentials'])
        self.assertEqual('/ws-accounts.yaml',
                         sections['auth']['test_accounts_file'])
        for option in ('admin_username', 'admin_password',
                       'admin_project_name'):
            self.assertNotIn(option, sections['auth'])

    def test_tls_internal_endpoints_and_roles(self):
        sections = tempest_run.tempest_conf_sections(
            self.state(), '/ws', region='Region-2',
            identity_url='https://127.0.0.1:2/v3', interface='internal',
            ca_file='/ca.pem', tempest_roles='member')
        self.assertEqual('https://127.0.0.1:2/v3',
                         sections['identity']['uri_v3'])
        self.assertEqual('/ca.pem',
                         sections['identity']['ca_certificates_file'])
        self.assertEqual('internal', sections['identity']['v3_endpoint_type'])
        for group in ('compute', 'image'):
            self.assertEqual('internal', sections[group]['endpoint_type'])
            self.assertEqual('Region-2', sections[group]['region'])
        self.assertEqual('member', sections['auth']['tempest_roles'])


class TestReport(testtools.TestCase):
    """The summary lines of a run, and the verdict on a wrong deployment."""

    def report(self, found, left=None, wrong=None):
        # kept apart from the test's own output, which a log would show
        out = io.StringIO()
        self.useFixture(fixtures.MonkeyPatch('sys.stdout', out))
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', io.StringIO()))
        failed = tempest_run.report('tempest standalone x', found,
                                    left or {}, wrong)
        return failed, out.getvalue().splitlines()

    def test_correct_deployment(self):
        failed, lines = self.report({'A.test_a': 'success',
                                     'A.test_b': 'skip', 'B.*': 'skip'})
        self.assertEqual(0, failed)
        self.assertEqual(['tempest standalone x: 1 passed, 0 failed, '
                          '2 skipped',
                          'tempest standalone x cleanup: 1 passed, 0 failed'],
                         lines)

    def test_a_failure_and_leftovers_count(self):
        failed, lines = self.report({'A.test_a': 'fail'},
                                    left={'images': ['i']})
        self.assertEqual(2, failed)
        self.assertIn('tempest standalone x: FAILED A.test_a', lines)
        self.assertIn('tempest standalone x cleanup: 0 passed, 1 failed',
                      lines)

    def test_no_result_is_a_failure(self):
        failed, lines = self.report({})
        self.assertEqual(1, failed)

    def test_wrong_deployment_must_fail_exactly_the_named_tests(self):
        wrong = {'A.test_reader'}
        ok, _ = self.report({'A.test_reader': 'fail', 'A.test_b': 'success'},
                            wrong=wrong)
        self.assertEqual(0, ok)
        for found in ({'A.test_reader': 'success'},
                      {'A.test_reader': 'fail', 'A.test_b': 'fail'}, {}):
            failed, lines = self.report(found, wrong=wrong)
            self.assertEqual(1, failed, found)
            self.assertEqual('tempest standalone x (wrong deployment): '
                             '0 passed, 1 failed', lines[-1])


class TestComputeRoot(testtools.TestCase):
    """The plugin's requests start from the compute endpoint without the
    token's project id, whichever form the catalog registers."""

    def root(self, base_url, project_id='p1'):
        from compute_api_tempest_plugin.tests import base

        class Client:
            pass
        client = Client()
        client.base_url = base_url
        client.auth_provider = Client()
        client.auth_provider.credentials = Client()
        client.auth_provider.credentials.project_id = project_id
        return base.BaseImageDeleteTest.compute_root(client)

    def test_both_forms(self):
        for url in ('https://h/compute/v2.1', 'https://h/compute/v2.1/',
                    'https://h/compute/v2.1/p1', 'https://h/compute/v2.1/p1/'):
            self.assertEqual('https://h/compute/v2.1', self.root(url), url)

    def test_another_last_segment_is_kept(self):
        self.assertEqual('https://h/v2.1/p2', self.root('https://h/v2.1/p2'))
        self.assertEqual('https://h/v2.1', self.root('https://h/v2.1', None))
