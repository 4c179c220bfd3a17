"""The version documents, served without a token.

``GET /`` lists the API versions; ``GET /v2.1`` (with or without the
trailing slash) describes v2.1 with its microversion range. Clients such as
openstacksdk and tempest discover the API through them.
"""

from oslo_serialization import jsonutils
import webob
import webob.dec

from compute_api.api import faults
from compute_api.api import microversion

UPDATED = '2013-07-23T11:33:21Z'
MEDIA_TYPE = 'application/vnd.openstack.compute+json;version=2.1'


def _v21(host_url):
    return {
        'id': 'v2.1',
        'status': 'CURRENT',
        'version': microversion.to_string(microversion.MAX_VERSION),
        'min_version': microversion.to_string(microversion.MIN_VERSION),
        'updated': UPDATED,
        'links': [{'rel': 'self', 'href': f'{host_url}/v2.1/'}],
    }


def _version_document(host_url):
    doc = _v21(host_url)
    doc['links'].append({'rel': 'describedby', 'type': 'text/html',
                         'href': 'https://docs.openstack.org/'})
    doc['media-types'] = [{'base': 'application/json', 'type': MEDIA_TYPE}]
    return {'version': doc}


_DOCUMENTS = {
    '/': lambda url: {'versions': [_v21(url)]},
    '/v2.1': _version_document,
    '/v2.1/': _version_document,
}


class VersionsMiddleware:
    """Answers GET and HEAD on the version documents; passes the rest."""

    def __init__(self, application):
        self.application = application

    @webob.dec.wsgify
    def __call__(self, req):
        document = _DOCUMENTS.get(req.environ.get('PATH_INFO'))
        if document is None or req.method not in ('GET', 'HEAD'):
            return self.application
        resp = webob.Response(
            body=jsonutils.dump_as_bytes(document(req.host_url)))
        resp.headers['Content-Type'] = faults.JSON_CONTENT_TYPE
        return resp
