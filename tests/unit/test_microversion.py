"""Microversions: parsing, the supported range and the 2.35 image cap."""

from tests.unit import base

STANDARD = 'OpenStack-API-Version'
LEGACY = 'X-OpenStack-Nova-API-Version'


class TestMicroversions(base.APITestCase):

    def assertServedAt(self, resp, version):
        self.assertEqual(204, resp.status_int, resp.body)
        self.assertEqual(f'compute {version}', resp.headers[STANDARD])
        self.assertEqual(version, resp.headers[LEGACY])
        self.assertEqual(f'{STANDARD}, {LEGACY}', resp.headers['Vary'])

    def test_no_header_is_2_1(self):
        self.assertServedAt(self.delete_image(), '2.1')

    def test_standard_and_legacy_headers(self):
        for headers, expected in (
                ({STANDARD: 'compute 2.10'}, '2.10'),
                ({STANDARD: 'compute 2.35'}, '2.35'),
                ({LEGACY: '2.20'}, '2.20'),
                ({STANDARD: 'compute 2.30', LEGACY: '2.2'}, '2.30'),
                ({STANDARD: 'volume 3.5, compute 2.3'}, '2.3')):
            self.assertServedAt(self.delete_image(headers=headers), expected)

    def test_header_for_another_service_is_ignored(self):
        self.assertServedAt(
            self.delete_image(headers={STANDARD: 'volume 3.0'}), '2.1')

    def test_malformed_is_400(self):
        for value in ('compute x', 'compute 2', 'compute 2.', 'compute .1',
                      'compute 02.1', 'compute 2.01', 'compute 2.1.1',
                      'compute -2.1', 'compute 2.1a', 'compute LATEST2'):
            resp = self.delete_image(headers={STANDARD: value})
            self.assertFault(resp, 400, 'badRequest')
        resp = self.delete_image(headers={LEGACY: 'two'})
        self.assertFault(resp, 400, 'badRequest')
        self.assertGlanceNotCalled()

    def test_out_of_range_is_406(self):
        for value in ('2.0', '1.1', '2.105', '3.0', '2.1000'):
            resp = self.delete_image(headers={STANDARD: f'compute {value}'})
            self.assertFault(resp, 406, 'computeFault', value)
        self.assertGlanceNotCalled()

    def test_overlong_numbers_are_406_with_a_short_message(self):
        # int() refuses more than 4,300 digits by default.
        for digits in (4300, 4301, 8000):
            number = '9' * digits
            for headers in ({STANDARD: f'compute 2.{number}'},
                            {STANDARD: f'compute {number}.1'},
                            {LEGACY: f'2.{number}'},
                            {LEGACY: f'{number}.{number}'}):
                resp = self.delete_image(headers=headers)
                self.assertFault(resp, 406, 'computeFault', '999...')
                message = resp.json['computeFault']['message']
                self.assertLess(len(message), 160)
        self.assertGlanceNotCalled()

    def test_leading_zeros_are_400_whatever_the_length(self):
        for value in ('2.0' + '1' * 4301, '0' * 4301 + '2.1'):
            resp = self.delete_image(headers={STANDARD: f'compute {value}'})
            self.assertFault(resp, 400, 'badRequest')
            message = resp.json['badRequest']['message']
            self.assertLess(len(message), 160)
        self.assertGlanceNotCalled()

    def test_image_proxy_removed_at_2_36(self):
        for value in ('2.36', '2.100', '2.104', 'latest'):
            resp = self.delete_image(headers={STANDARD: f'compute {value}'})
            self.assertFault(resp, 404, 'itemNotFound')
            shown = '2.104' if value == 'latest' else value
            self.assertEqual(f'compute {shown}', resp.headers[STANDARD])
        self.assertGlanceNotCalled()
