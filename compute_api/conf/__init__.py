"""Configuration options, one module per option group."""

from compute_api.conf import glance
from compute_api.conf import wsgi

_MODULES = (glance, wsgi)


def register_opts(conf):
    for module in _MODULES:
        module.register_opts(conf)
