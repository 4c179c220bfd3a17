"""Configuration options, one module per option group."""

from compute_api.conf import glance
from compute_api.conf import token_cache
from compute_api.conf import wsgi

_MODULES = (glance, token_cache, wsgi)


def register_opts(conf):
    for module in _MODULES:
        module.register_opts(conf)
