# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.
"""The ``[compute_api]`` group of tempest.conf."""

from oslo_config import cfg

STANDALONE = 'standalone'
EXTENSION = 'extension'

compute_api_group = cfg.OptGroup(
    name='compute_api',
    title='compute-api Delete Image tests',
    help='How the compute-api service under test is deployed.')

ComputeApiGroup = [
    cfg.StrOpt('mode',
               default=STANDALONE,
               choices=[
                   (STANDALONE, 'compute-api serves the catalog\'s compute '
                                'endpoint with its own pipeline.'),
                   (EXTENSION, 'compute-api is the images filter inside a '
                               'Nova-like Compute API, which owns every '
                               'answer but those of Delete Image itself.'),
               ],
               help='How compute-api is deployed behind the catalog\'s '
                    'compute endpoint. In extension mode the answers the '
                    'host API owns (405 with Allow for other methods on an '
                    'image) are not asserted.'),
    cfg.StrOpt('max_microversion',
               help='The highest Compute API microversion the endpoint '
                    'serves (X.Y); the next one up must be refused with 406. '
                    'Unset or "latest": the "version" of the endpoint\'s own '
                    'version document (GET /v2.1/).'),
    cfg.IntOpt('max_request_body_size',
               default=114688,
               min=1,
               help='The deployment\'s [oslo_middleware] '
                    'max_request_body_size: a DELETE with one byte more '
                    'must be refused with 413.'),
]
