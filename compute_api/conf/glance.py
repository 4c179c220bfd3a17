"""[glance] options: how the Image service is found and called.

These are keystoneauth1's standard session and adapter options, with
defaults chosen for this service, and two options of the service's own
(``total_timeout``, ``send_service_token``). The endpoint comes from the
caller's service catalog (service type ``image``) unless
``endpoint_override`` is set, and a Glance that cannot be reached or
answers 502/503/504 is retried a bounded number of times before the call is
answered 503.

Each attempt may wait up to ``timeout`` to connect and up to ``timeout``
again for each read, and a delete makes up to ``1 + connect_retries +
status_code_retries`` attempts; ``total_timeout`` bounds the whole call, all
attempts and retry delays included (a retry delay that has begun is still
waited out, so the bound is ``total_timeout`` plus at most one delay: 40.5 s
with the defaults). A ``Retry-After`` header from Glance is ignored (the
configured delays apply), so it cannot stretch that bound.

``send_service_token`` says whether Glance also receives this service's own
token as ``X-Service-Token`` beside the caller's, as OpenStack services send
it when they call each other on a user's behalf.
"""

from keystoneauth1 import loading as ks_loading
from oslo_config import cfg

GROUP = cfg.OptGroup(
    'glance', title='Image service options',
    help='How compute-api reaches the Image service (Glance v2).')

DEFAULTS = {
    'service_type': 'image',
    'valid_interfaces': ['internal', 'public'],
    'timeout': 10,
    'connect_retries': 2,
    'connect_retry_delay': 0.5,
    'status_code_retries': 1,
    'status_code_retry_delay': 0.5,
    'retriable_status_codes': [502, 503, 504],
}


OPTS = [
    cfg.FloatOpt(
        'total_timeout', default=40, min=1,
        help='Seconds a delete may spend on the Image service in all: every '
             'attempt, and the delays between them, included. When they run '
             'out, the attempt in progress is abandoned (its connection is '
             'closed), no further attempt is made, and the client is '
             'answered 503. A retry delay that has begun is waited out, so '
             'a delete can last this long plus one connect_retry_delay or '
             'status_code_retry_delay. Keep the WSGI server\'s worker '
             'timeout, and the read timeout of a proxy in front, above it '
             'plus the time needed to validate the token.'),
    cfg.BoolOpt(
        'send_service_token', default=True,
        help='Send this service\'s own token (that of the '
             '[keystone_authtoken] service user) to the Image service as '
             'X-Service-Token, beside the caller\'s X-Auth-Token, as '
             'OpenStack services do when they call each other on a user\'s '
             'behalf. The Image service then accepts a caller\'s token that '
             'is about to expire or has just expired, and a token of an '
             'application credential whose access rules allow only the '
             'Compute API. '
             'What the call may do is still decided by the caller\'s token '
             'alone; the service user needs only the "service" role. When '
             'false, only the caller\'s token is sent.'),
]


def _opts():
    opts = (ks_loading.get_session_conf_options() +
            ks_loading.get_adapter_conf_options(include_deprecated=False))
    cfg.set_defaults(opts, **DEFAULTS)
    return opts + OPTS


def register_opts(conf):
    conf.register_group(GROUP)
    conf.register_opts(_opts(), group=GROUP)


def list_opts():
    return {GROUP: _opts()}
