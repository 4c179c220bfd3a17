"""Request ids: one ``req-<uuid4>`` per request, in both response headers.

oslo.middleware makes the id, keeps a valid inbound
``X-OpenStack-Request-ID`` as the global request id, and sets the id on every
response that passes back through it; Compute clients also read it from
``x-compute-request-id``.
"""

from oslo_middleware import request_id

COMPUTE_HEADER = 'x-compute-request-id'


class ComputeRequestId(request_id.RequestId):
    compat_headers = [COMPUTE_HEADER]
