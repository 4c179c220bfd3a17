"""The stack tooling (tests/stack/): the names other code imports, and the
plan of a default and of a scaled stack. Nothing is started here."""

from oslotest import base as test_base

from tests import stack
from tests.stack import compute
from tests.stack import postgres

# Used from tests/, benchmarks/, tools/ and the tempest plugin's runner.
PUBLIC = (
    'Stack', 'StackError', 'load_state', 'save_state', 'process_status',
    'start_compute_api', 'stop_process', 'get_session', 'glance_image',
    'create_image', 'set_image', 'restart_glance', 'spawn', 'free_ports',
    'wait_http', 'answer_status', 'read_ini', 'write_ini',
    'write_compute_config', 'write_compute_gunicorn_conf',
    'write_compute_uwsgi_ini', 'start_compute_server', 'SERVERS',
    'DEFAULT_SERVER',
    'write_gunicorn_conf', 'start_gunicorn', 'service_program', 'children',
    'pid_alive', 'is_stack_process', 'run_command', 'log_tail',
    'write_pid_file', 'authtoken_options', 'instructions',
    'cloud_instructions', 'main', '_glance', '_check', '_keystone',
    'SERVICE_VENV', 'SERVICE_BIN_DIR', 'BIN_DIR', 'REPO_ROOT', 'HOST',
    'REGION', 'DEFAULT_DOMAIN', 'DEFAULT_WORKDIR', 'COMPUTE_APP',
    'COMPUTE_CONFIG_ENV', 'COMPUTE_START_TIMEOUT', 'STOP_TIMEOUT',
    'INTERFACES',
)


class TestPackage(test_base.BaseTestCase):

    def test_the_names_in_use_are_importable(self):
        missing = [name for name in PUBLIC if not hasattr(stack, name)]
        self.assertEqual([], missing)

    def test_repo_root_is_the_repository(self):
        self.assertTrue((stack.REPO_ROOT / 'setup.cfg').is_file())
        self.assertTrue((stack.REPO_ROOT / 'tools' / 'stack').is_file())


class TestPlan(test_base.BaseTestCase):

    def test_default_stack(self):
        state = stack.new_state('/tmp/x')
        self.assertFalse(state['scaled'])
        self.assertNotIn('instances', state)
        self.assertTrue(state['compute_url'].startswith('http://'))
        self.assertEqual(state['glance_url'], state['glance_endpoint'])
        sections = compute.compute_conf_sections(state)
        self.assertNotIn('oslo_middleware', sections)
        self.assertNotIn('cafile', sections['glance'])

    def test_scaled_stack(self):
        state = stack.new_state('/tmp/x', scaled=True, instances=3)
        state['ca_file'] = '/tmp/x/tls/ca.pem'
        self.assertEqual(['compute-api-1', 'compute-api-2',
                          'compute-api-3'], sorted(state['instances']))
        self.assertEqual(
            f'https://127.0.0.1:{state["ports"]["haproxy"]}/v2.1',
            state['compute_endpoint'])
        self.assertTrue(state['glance_endpoint'].startswith('https://'))
        ports = list(state['ports'].values())
        self.assertEqual(len(ports), len(set(ports)))
        sections = compute.compute_conf_sections(state)
        self.assertEqual('True', sections['oslo_middleware'][
            'enable_proxy_headers_parsing'])
        self.assertEqual(state['ca_file'], sections['glance']['cafile'])
        instance = compute.instance_sections(state, 'compute-api-2')
        self.assertEqual({
            'backends': 'disable_by_file',
            'disable_by_file_path': state['instances']['compute-api-2'][
                'disable_file']}, instance['healthcheck'])
        self.assertTrue(instance['DEFAULT']['log_file'].endswith(
            '/logs/compute-api-2-app.log'))
        self.assertEqual(
            f'postgresql+psycopg2://glance:'
            f'{state["postgres"]["passwords"]["glance"]}@127.0.0.1:'
            f'{state["ports"]["postgres"]}/glance',
            postgres.database_url(state, 'glance'))
