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
status_code_retries`` attempts; ``total_timeout`` bounds them, retry delays
included: no attempt starts after it and none waits longer than the time
left. A ``Retry-After`` header from Glance is ignored (the configured
delays apply), so it cannot stretch that bound.
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
             'attempt, and the delays between them, included. No attempt '
             'starts after it, none may wait longer than the time left (to '
             'connect, and for each read), and the client is then answered '
             '503. An answer that trickles in, a byte now and then, is not '
             'cut: the WSGI server\'s worker timeout bounds it. Keep that '
             'timeout, and the read timeout of a proxy in front, above this '
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


# Session options that keystoneauth1 has only from a given release on. With
# an older keystoneauth1 they are registered here without effect, so that a
# configuration that sets one is refused at load, by name (see unsupported).
NEWER_SESSION_OPTIONS = {'tls_ciphers': '5.17.0', 'tls_min_version': '5.17.0'}


def _missing_session_opts(session_opts):
    names = {opt.dest for opt in session_opts}
    return [cfg.StrOpt(name, help=f'Needs keystoneauth1 {release} or newer; '
                                  'setting it with an older one stops the '
                                  'service from loading.')
            for name, release in NEWER_SESSION_OPTIONS.items()
            if name not in names]


def _opts():
    session_opts = ks_loading.get_session_conf_options()
    opts = (session_opts +
            ks_loading.get_adapter_conf_options(include_deprecated=False))
    cfg.set_defaults(opts, **DEFAULTS)
    return opts + _missing_session_opts(session_opts) + OPTS


def unsupported(conf):
    """The [glance] options set in ``conf`` that the installed
    keystoneauth1 does not have, each with the release that has it."""
    missing = _missing_session_opts(ks_loading.get_session_conf_options())
    return [f'{opt.dest} (keystoneauth1 '
            f'{NEWER_SESSION_OPTIONS[opt.dest]} or newer)'
            for opt in missing if conf[GROUP.name][opt.dest] is not None]


def list_opts():
    return {GROUP: _opts()}
