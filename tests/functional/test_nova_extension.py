"""The images filter inside a real Nova (34.0.0 from PyPI).

Nova's own WSGI application runs under gunicorn with Nova's own
``api-paste.ini`` plus the filter (``tests/nova.py``), in front of the
stack's real Keystone and Glance, and is found by the clients through a
region of the catalog of its own. The same Nova without the filter answers
the same requests in the same run, so that the difference is on record.
A third Nova has the filter with an Image service that cannot be reached.

Nova's databases are made once per test process; the Novas are started
once per class (about two seconds each) and stopped, and the region
removed, when the class is done.
"""

import time
from urllib import parse
import uuid

import openstack
import requests
from tempest.lib import auth
from tempest.lib import exceptions as tempest_exc
from tempest.lib.services.compute import images_client

from tests import nova
from tests import stack
from tests.functional import base
from tests.functional import stack_fixture

RULE = 'os_compute_api:images:delete'
# [glance] of the filter whose Image service is down: how long it may try.
OUTAGE_TOTAL_TIMEOUT = 3
OUTAGE_GLANCE = {'connect_retries': 1, 'connect_retry_delay': 0.2,
                 'timeout': 2, 'total_timeout': OUTAGE_TOTAL_TIMEOUT}
# Nova's databases, made once per test process and stack: {workdir: dir}.
_DATABASES = {}


def _databases(state):
    if state['workdir'] not in _DATABASES:
        _DATABASES[state['workdir']] = nova.prepare_databases(
            state, f'nova-db-{uuid.uuid4().hex[:8]}')
    return _DATABASES[state['workdir']]


class NovaExtensionTestCase(base.FunctionalTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        state = stack_fixture.running_state()
        cls._stop = []
        cls.region = f'{nova.REGION}-{uuid.uuid4().hex[:8]}'
        try:
            databases = _databases(state)
            cls.nova = cls._start(state, databases)
            cls.plain = cls._start(state, databases, with_filter=False)
            closed_port = stack.free_ports(1)[0]
            cls.outage = cls._start(state, databases, filter_overrides={
                'glance': dict(
                    OUTAGE_GLANCE,
                    endpoint_override=f'http://{stack.HOST}:{closed_port}')})
            cls._stop.append(nova.register_region(
                state, cls.nova['url'] + '/v2.1', cls.region))
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def _start(cls, state, databases, **kwargs):
        instance = nova.start_nova(state, databases, region=cls.region,
                                   **kwargs)
        cls._stop.append(lambda: stack.stop_process(instance['pid']))
        return instance

    @classmethod
    def tearDownClass(cls):
        for stop in reversed(cls._stop):
            stop()
        cls._stop = []
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        self.url = self.nova['url']

    def assertNovaVersionHeaders(self, resp, version='2.1'):
        self.assertEqual(f'compute {version}',
                         resp.headers['OpenStack-API-Version'])
        self.assertEqual(version,
                         resp.headers['X-OpenStack-Nova-API-Version'])


class TestServedByTheFilter(NovaExtensionTestCase):

    def test_own_image_is_deleted_in_both_url_forms(self):
        for project in (True, False):
            image_id = self.stack.create_image(data=b'nova' * 100)
            resp = self.delete(image_id, project=project)
            self.assertDeleted(resp, image_id)
            self.assertNovaVersionHeaders(resp)

    def test_legacy_v2_root_deletes_too(self):
        image_id = self.stack.create_image()
        project = self.project_id('demo-member')
        resp = self.call(f'/v2/{project}/images/{image_id}')
        self.assertDeleted(resp, image_id)
        self.assertNotIn('OpenStack-API-Version', resp.headers)

    def test_reserved_characters_do_not_reach_another_image(self):
        for junk in ('%3Fjunk', '%23junk'):
            image_id = self.stack.create_image()
            resp = self.call(f'/v2.1/images/{image_id}{junk}')
            self.assertFault(resp, 404, 'itemNotFound')
            self.assertNovaVersionHeaders(resp)
            self.assertImageKept(image_id)
        # The WSGI server decodes %2F, so this is another path: Nova's
        # (it has no route there and answers its own 404).
        image_id = self.stack.create_image()
        resp = self.call(f'/v2.1/images/{image_id}%2Fjunk')
        self.assertEqual(404, resp.status_code)
        self.assertImageKept(image_id)

    def test_nova_alone_deletes_the_real_image(self):
        """The same requests to Nova without the filter, for the record:
        the id's junk is cut off in front of Glance and the real image is
        deleted (for %3F and %23); %2F is Nova's 404 there too."""
        for junk in ('%3Fjunk', '%23junk'):
            image_id = self.stack.create_image()
            resp = self.call(f'/v2.1/images/{image_id}{junk}',
                             url=self.plain['url'])
            self.assertDeleted(resp, image_id)
        image_id = self.stack.create_image()
        resp = self.call(f'/v2.1/images/{image_id}%2Fjunk',
                         url=self.plain['url'])
        self.assertEqual(404, resp.status_code)
        self.assertImageKept(image_id)

    def test_line_feed_and_method_override_do_not_pass_the_filter(self):
        """Nova's routes match '{id}\\n' as '{id}' (the filter answers 404),
        and its router takes '?_method=delete' on a GET as a DELETE (the
        filter refuses any override: 400)."""
        image_id = self.stack.create_image()
        for path in (f'/v2.1/images/{image_id}%0A',
                     f'/v2.1/images/{image_id}%0A%0A'):
            resp = self.call(path)
            self.assertFault(resp, 404, 'itemNotFound')
        for user in ('demo-reader', 'demo-member'):
            resp = self.call(f'/v2.1/images/{image_id}?_method=delete',
                             method='GET', user=user)
            self.assertFault(resp, 400, 'badRequest', '_method')
        self.assertImageKept(image_id)
        self.assertDeleted(self.delete(image_id), image_id)

    def test_nova_alone_takes_the_line_feed_and_the_override(self):
        """For the record, the same requests to Nova without the filter."""
        image_id = self.stack.create_image()
        resp = self.call(f'/v2.1/images/{image_id}%0A',
                         url=self.plain['url'])
        self.assertDeleted(resp, image_id)
        image_id = self.stack.create_image()
        resp = self.call(f'/v2.1/images/{image_id}?_method=delete',
                         method='GET', url=self.plain['url'])
        self.assertDeleted(resp, image_id)

    def test_project_mismatch_is_400(self):
        image_id = self.stack.create_image()
        other = self.project_id('alt-member')
        resp = self.delete(image_id, project=other)
        self.assertFault(resp, 400, 'badRequest', other)
        self.assertImageKept(image_id)

    def test_glance_unreachable_is_503_within_the_bound(self):
        image_id = self.stack.create_image()
        started = time.monotonic()
        resp = self.delete(image_id, url=self.outage['url'])
        elapsed = time.monotonic() - started
        self.assertFault(resp, 503, 'serviceUnavailable')
        # total_timeout, one retry delay, and token validation
        self.assertLess(elapsed, OUTAGE_TOTAL_TIMEOUT + 2)
        self.assertImageKept(image_id)

    def test_reader_is_refused_by_the_rule(self):
        image_id = self.stack.create_image()
        resp = self.delete(image_id, user='demo-reader')
        self.assertFault(resp, 403, 'forbidden', RULE)
        self.assertImageKept(image_id)

    def test_policy_override_applies_at_runtime(self):
        policy_file = (f'{self.nova["filter_config_dir"]}/policy.yaml')
        with open(policy_file) as f:
            original = f.read()
        self.addCleanup(self._write, policy_file, original)
        self._write(policy_file, f'"{RULE}": "!"\n')
        image_id = self.stack.create_image()
        resp = self.delete(image_id)
        self.assertFault(resp, 403, 'forbidden', RULE)
        self.assertImageKept(image_id)
        self._write(policy_file, f'"{RULE}": "role:member"\n')
        self.assertDeleted(self.delete(image_id), image_id)

    @staticmethod
    def _write(path, text):
        with open(path, 'w') as f:
            f.write(text)


# (method, query) of requests that Nova's router acts on as a delete and
# that passed an earlier filter, which read _method with another parser.
OVERRIDES = (
    ('GET', '_method=DELETE'), ('GET', 'x=1;_method=DELETE'),
    ('GET', ';_method=DELETE'), ('HEAD', 'x;_method=delete'),
    ('DELETE', '_method=;'), ('DELETE', '_method=DELETE;'),
    ('DELETE', '_method=%FF'), ('DELETE', '_method=GET&x=%FF'))


class TestNothingPassesARuleDenyingEveryone(NovaExtensionTestCase):
    """The filter's rule denies everyone: no request deletes an image,
    through any root or URL form, however it names its method."""

    @classmethod
    def setUpClass(cls):
        base.FunctionalTestCase.setUpClass()
        state = stack_fixture.running_state()
        cls._stop = []
        cls.region = f'{nova.REGION}-{uuid.uuid4().hex[:8]}'
        try:
            databases = _databases(state)
            cls.nova = cls._start(state, databases,
                                  policy_yaml=f'"{RULE}": "!"\n')
            cls.plain = cls._start(state, databases, with_filter=False)
            cls._stop.append(nova.register_region(
                state, cls.nova['url'] + '/v2.1', cls.region))
        except BaseException:
            cls.tearDownClass()
            raise

    def paths(self, image_id):
        project = self.project_id('demo-member')
        return (f'/v2.1/images/{image_id}',
                f'/v2.1/{project}/images/{image_id}',
                f'/v2/images/{image_id}', f'/v2/{project}/images/{image_id}')

    def test_a_plain_delete_is_refused_by_the_rule(self):
        image_id = self.stack.create_image()
        for path in self.paths(image_id) + self.paths('not-a-uuid'):
            self.assertFault(self.call(path), 403, 'forbidden', RULE)
        self.assertImageKept(image_id)

    def test_method_overrides_are_refused(self):
        image_id = self.stack.create_image()
        for method, query in OVERRIDES:
            for path in self.paths(image_id):
                resp = self.call(f'{path}?{query}', method=method)
                if method == 'HEAD':
                    self.assertEqual(400, resp.status_code)
                else:
                    self.assertFault(resp, 400, 'badRequest')
            self.assertImageKept(image_id)
        resp = self.call(f'/v2.1/images/not-a-uuid?{OVERRIDES[1][1]}',
                         method='GET')
        self.assertFault(resp, 400, 'badRequest', '_method')

    def test_a_form_override_is_refused(self):
        image_id = self.stack.create_image()
        for path in self.paths(image_id):
            resp = self.call(path, method='POST', data='_method=DELETE',
                             headers={'Content-Type':
                                      'application/x-www-form-urlencoded'})
            self.assertFault(resp, 400, 'badRequest', '_method')
        self.assertImageKept(image_id)

    def test_nova_alone_deletes_through_every_override(self):
        """For the record: each of them is a delete to Nova's router."""
        for method, query in OVERRIDES:
            image_id = self.stack.create_image()
            resp = self.call(f'/v2.1/images/{image_id}?{query}',
                             method=method, url=self.plain['url'])
            self.assertEqual(204, resp.status_code, (method, query))
            self.assertIsNone(self.stack.glance_image(image_id, 'admin'),
                              (method, query))


class TestLeftToNova(NovaExtensionTestCase):

    def test_image_show_is_novas(self):
        image_id = self.stack.create_image()
        resp = self.call(f'/v2.1/images/{image_id}', method='GET')
        self.assertEqual(200, resp.status_code, resp.text)
        image = resp.json()['image']
        self.assertEqual(image_id, image['id'])
        self.assertIn('minDisk', image)  # Nova's image view
        self.assertImageKept(image_id)

    def test_version_document_is_novas(self):
        resp = requests.get(self.url + '/v2.1/', timeout=base.TIMEOUT)
        self.assertEqual(200, resp.status_code)
        version = resp.json()['version']
        self.assertEqual(('v2.1', '2.1'),
                         (version['id'], version['min_version']))
        self.assertRegex(version['version'], r'^2\.\d+$')
        plain = requests.get(self.plain['url'] + '/v2.1/',
                             timeout=base.TIMEOUT).json()
        self.assertEqual(plain['version']['version'], version['version'])

    def test_delete_at_2_36_is_novas_404(self):
        image_id = self.stack.create_image()
        resp = self.delete(image_id,
                           headers={'OpenStack-API-Version': 'compute 2.36'})
        self.assertEqual(404, resp.status_code, resp.text)
        self.assertNovaVersionHeaders(resp, '2.36')
        self.assertImageKept(image_id)

    def test_unserved_versions_get_novas_answers(self):
        image_id = self.stack.create_image()
        for value, status in (('compute 2.105', 406), ('compute abc', 400)):
            resp = self.delete(image_id,
                               headers={'OpenStack-API-Version': value})
            self.assertEqual(status, resp.status_code, resp.text)
            plain = self.delete(image_id, url=self.plain['url'],
                                headers={'OpenStack-API-Version': value})
            self.assertEqual(plain.status_code, resp.status_code)
            self.assertEqual(plain.json(), resp.json())
        self.assertImageKept(image_id)

    def test_put_on_an_image_is_novas(self):
        image_id = self.stack.create_image()
        for url in (self.url, self.plain['url']):
            resp = self.call(f'/v2.1/images/{image_id}', method='PUT',
                             url=url, data='{}',
                             headers={'Content-Type': 'application/json'})
            self.assertEqual(404, resp.status_code, resp.text)
        self.assertImageKept(image_id)


class TestClientsThroughTheCatalog(NovaExtensionTestCase):

    def test_tempest_images_client(self):
        info = self.stack.user('demo-member')
        creds = auth.KeystoneV3Credentials(
            username='demo-member', password=info['password'],
            project_name=info['project_name'], user_domain_name='Default',
            project_domain_name='Default')
        provider = auth.KeystoneV3AuthProvider(creds,
                                               self.state['keystone_url'])
        client = images_client.ImagesClient(provider, 'compute',
                                            self.region)
        image_id = self.stack.create_image()
        body = client.delete_image(image_id)
        self.assertEqual(204, body.response.status)
        self.assertIsNone(self.stack.glance_image(image_id, 'admin'))
        self.assertRaises(tempest_exc.NotFound, client.delete_image,
                          parse.quote(image_id + '?junk', safe=''))

    def test_openstacksdk_compute_delete_image(self):
        info = self.stack.user('demo-member')
        conn = openstack.connect(
            auth_url=self.state['keystone_url'], username='demo-member',
            password=info['password'], project_name=info['project_name'],
            user_domain_name='Default', project_domain_name='Default',
            region_name=self.region)
        self.addCleanup(conn.close)
        self.assertEqual(self.url + '/v2.1', conn.compute.get_endpoint())
        image_id = self.stack.create_image(data=b'sdk' * 100)
        conn.compute.delete_image(image_id)
        self.assertIsNone(self.stack.glance_image(image_id, 'admin'))
