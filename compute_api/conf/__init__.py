"""Configuration options, one module per option group."""

from compute_api.conf import glance
from compute_api.conf import token_cache
from compute_api.conf import wsgi

MODULES = (glance, token_cache, wsgi)


def register_opts(conf):
    for module in MODULES:
        for group, opts in module.list_opts().items():
            conf.register_group(group)
            conf.register_opts(opts, group=group)
