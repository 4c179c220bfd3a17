"""One access line per request, and request ids on every log line.

At the start of a request a minimal context with the request id and global
request id becomes the current context, so that everything logged while the
request is served (auth_token's lines included) carries them; the context
middleware later replaces it with the caller's full context. When the
response is ready, one INFO line records the method, the path (never the
query string or any header, so never a token), the status, the duration and
the microversion it was served at.
"""

import logging
import time

from oslo_context import context
import webob.dec

from compute_api.api import faults
from compute_api.api import microversion

LOG = logging.getLogger('compute_api.access')
REQUEST_ID_KEY = 'openstack.request_id'
GLOBAL_ID_KEY = 'openstack.global_request_id'


class RequestLog:

    def __init__(self, application):
        self.application = application

    @webob.dec.wsgify
    def __call__(self, req):
        start = time.monotonic()
        context.RequestContext(
            request_id=req.environ.get(REQUEST_ID_KEY),
            global_request_id=req.environ.get(GLOBAL_ID_KEY))
        resp = req.get_response(self.application)
        if LOG.isEnabledFor(logging.INFO):
            LOG.info('%s %s status: %d len: %s time: %.4f microversion: %s',
                     req.method, faults.printable_path(req.environ),
                     resp.status_int,
                     resp.content_length or 0, time.monotonic() - start,
                     resp.headers.get(microversion.LEGACY_HEADER, '-'))
        return resp
