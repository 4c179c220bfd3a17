"""[glance] options: how the Image service is found and called.

These are keystoneauth1's standard session and adapter options, with
defaults chosen for this service: the endpoint comes from the caller's
service catalog (service type ``image``) unless ``endpoint_override`` is set,
and a Glance that cannot be reached or answers 502/503/504 is retried a
bounded number of times before the call is answered 503.

Each attempt may wait up to ``timeout`` to connect and up to ``timeout``
again for each read; on loopback or a LAN connecting is immediate, so the
longest a delete waits on a Glance that accepts connections but never
answers is about ``(1 + connect_retries + status_code_retries) * timeout``
plus the retry delays: with the defaults, 4 x 10 s plus 1.5 s. A
``Retry-After`` header from Glance is ignored (the configured delays apply),
so it cannot stretch that bound.
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


def _opts():
    opts = (ks_loading.get_session_conf_options() +
            ks_loading.get_adapter_conf_options(include_deprecated=False))
    cfg.set_defaults(opts, **DEFAULTS)
    return opts


def register_opts(conf):
    conf.register_group(GROUP)
    conf.register_opts(_opts(), group=GROUP)


def list_opts():
    return {GROUP: _opts()}
