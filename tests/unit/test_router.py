"""Routing: both URL forms, 404 for unknown paths, 405 with Allow."""

from urllib import parse
import uuid

from compute_api.api import router
from tests.unit import base


class TestRouting(base.APITestCase):

    def test_both_url_forms_delete_through_glance(self):
        for project in (None, base.PROJECT):
            image_id = str(uuid.uuid4())
            resp = self.delete_image(image_id, project=project)
            self.assertEqual(204, resp.status_int)
            self.assertEqual(b'', resp.body)
            last = self.glance.requests[-1]
            self.assertEqual(('DELETE', f'/v2/images/{image_id}'),
                             (last.method, last.path))
        self.assertEqual(2, len(self.glance.requests))

    def test_unrouted_paths_are_404(self):
        image_id = str(uuid.uuid4())
        for path in ('/v2.1/images/', '/v2.1/images',
                     f'/v2.1/images/{image_id}/',
                     f'/v2.1/{base.PROJECT}/images/',
                     f'/v2.1/{base.PROJECT}/images/{image_id}/',
                     f'/v2.1/flavors/{image_id}',
                     f'/v2.1/{base.PROJECT}/servers/{image_id}',
                     f'/v2/images/{image_id}',
                     f'/v2.1/images/{image_id}/extra'):
            resp = self.request(path)
            self.assertFault(resp, 404, 'itemNotFound')
        self.assertGlanceNotCalled()

    def test_other_methods_are_405_with_allow(self):
        image_id = str(uuid.uuid4())
        # OPTIONS is left to the CORS middleware (preflight requests).
        for method in ('PUT', 'POST', 'PATCH', 'GET', 'HEAD', 'TRACE'):
            for project in (None, base.PROJECT):
                prefix = '/v2.1' if project is None else f'/v2.1/{project}'
                resp = self.request(f'{prefix}/images/{image_id}',
                                    method=method)
                self.assertEqual(405, resp.status_int, method)
                self.assertEqual('DELETE', resp.headers['Allow'])
                if method != 'HEAD':
                    self.assertFault(resp, 405, 'badMethod', method)
        self.assertGlanceNotCalled()

    def test_405_comes_before_microversion_checks(self):
        resp = self.request(f'/v2.1/images/{uuid.uuid4()}', method='PUT',
                            headers={'OpenStack-API-Version': 'compute x'})
        self.assertFault(resp, 405, 'badMethod')

    def test_route_table_serves_both_forms(self):
        served = set(router.build_router(self.conf).routes())
        self.assertEqual(
            {('/v2.1/images/{image_id}', 'DELETE'),
             ('/v2.1/{project_id}/images/{image_id}', 'DELETE')}, served)

    def test_url_project_must_match_token_project(self):
        resp = self.delete_image(project=base.OTHER_PROJECT)
        self.assertFault(resp, 400, 'badRequest', base.OTHER_PROJECT)
        self.assertIn(base.PROJECT, resp.json['badRequest']['message'])
        self.assertGlanceNotCalled()

    def test_a_token_scoped_to_no_project_is_told_so(self):
        # a domain-scoped admin, for instance
        identity = {'user_id': 'u-admin', 'project_id': None,
                    'roles': ['admin', 'member', 'reader']}
        resp = self.delete_image(project=base.PROJECT, identity=identity)
        self.assertFault(resp, 400, 'badRequest', base.PROJECT)
        message = resp.json['badRequest']['message']
        self.assertIn('scoped to no project', message)
        self.assertNotIn('None', message)
        self.assertGlanceNotCalled()

    def test_tempest_style_delete_with_json_content_type_and_body(self):
        resp = self.delete_image(
            headers={'Content-Type': 'application/json',
                     'Accept': 'application/json'}, body=b'{}')
        self.assertEqual(204, resp.status_int)


class TestImageIds(base.APITestCase):
    """Ids that cannot name a Glance image never reach Glance."""

    def test_non_uuid_ids_are_404_without_calling_glance(self):
        for image_id in ('..', '.', 'abc', '-1', 'x' * 300,
                         str(uuid.uuid4()) + '?junk',
                         str(uuid.uuid4()) + '#frag',
                         str(uuid.uuid4()).replace('-', 'g'),
                         '%2e%2e', 'a\x00b', '\u00e9\u00e8'):
            resp = self.delete_image(image_id)
            self.assertFault(resp, 404, 'itemNotFound')
            self.assertLess(len(resp.json['itemNotFound']['message']), 100)
        self.assertGlanceNotCalled()

    def test_non_ascii_text_is_shown_as_the_client_sent_it(self):
        # the environ holds the path's UTF-8 bytes as a latin-1 string
        resp = self.delete_image('\u00e9')
        self.assertFault(resp, 404, 'itemNotFound', 'Image %C3%A9 could')
        resp = self.delete_image(project='%C3%A9')
        self.assertFault(resp, 400, 'badRequest', "project '%C3%A9'")
        resp = self.delete_image(headers={
            'OpenStack-API-Version': 'compute 2.\u00e9'.encode().decode(
                'latin-1')})
        self.assertFault(resp, 400, 'badRequest', '"2.%C3%A9"')

    def test_control_characters_anywhere_in_the_path_are_404(self):
        # Routes' patterns end in '$', which also matches before a final
        # line feed: '{uuid}\n' would otherwise route to '{uuid}'.
        image_id = str(uuid.uuid4())
        for char in ('\n', '\r\n', '\r', '\x00', '\t', '\x1b', '\x7f'):
            for path in (f'/v2.1/images/{image_id}{char}',
                         f'/v2.1/{base.PROJECT}/images/{image_id}{char}',
                         f'/v2.1/{base.PROJECT}{char}/images/{image_id}',
                         f'/v2.1/images/{char}{image_id}',
                         f'/v2.1/images/{char}',
                         f'/v2.1{char}/images/{image_id}'):
                resp = self.request(parse.quote(path))
                self.assertFault(resp, 404, 'itemNotFound')
                self.assertEqual('The resource could not be found.',
                                 resp.json['itemNotFound']['message'])
        self.assertGlanceNotCalled()

    def test_control_characters_are_404_before_the_method_check(self):
        resp = self.request(f'/v2.1/images/{uuid.uuid4()}%0A', method='PUT')
        self.assertFault(resp, 404, 'itemNotFound')

    def test_encoded_reserved_characters_stay_in_one_segment(self):
        # PATH_INFO is already decoded: '%3F' arrives as '?'.
        resp = self.request(f'/v2.1/images/{uuid.uuid4()}%3Fjunk')
        self.assertFault(resp, 404, 'itemNotFound')
        resp = self.request(f'/v2.1/images/{uuid.uuid4()}%2Fjunk')
        self.assertFault(resp, 404, 'itemNotFound')
        self.assertGlanceNotCalled()

    def test_uppercase_uuid_reaches_glance(self):
        image_id = str(uuid.uuid4()).upper()
        self.assertEqual(204, self.delete_image(image_id).status_int)
        self.assertEqual(f'/v2/images/{image_id}',
                         self.glance.requests[0].path)
