"""Entry points for oslo-config-generator."""

from oslo_middleware import cors

from compute_api import conf
from compute_api.conf import keystone_authtoken

# Headers clients send and read on this API, allowed and exposed by CORS.
CORS_ALLOW_HEADERS = [
    'X-Auth-Token', 'X-OpenStack-Request-ID', 'X-Identity-Status',
    'X-Roles', 'X-Service-Catalog', 'X-User-Id', 'X-Tenant-Id',
    'OpenStack-API-Version', 'X-OpenStack-Nova-API-Version',
]
CORS_EXPOSE_HEADERS = [
    'X-Auth-Token', 'X-OpenStack-Request-ID', 'X-Compute-Request-Id',
    'X-Subject-Token', 'X-Service-Token',
    'OpenStack-API-Version', 'X-OpenStack-Nova-API-Version',
]
CORS_ALLOW_METHODS = ['GET', 'PUT', 'POST', 'DELETE', 'PATCH']


def list_opts():
    result = {}
    for module in (*conf.MODULES, keystone_authtoken):
        for group, opts in module.list_opts().items():
            result.setdefault(group, []).extend(opts)
    return [(group.name, opts) for group, opts in result.items()]


def set_defaults():
    """Defaults of library options that suit this API (CORS headers)."""
    cors.set_defaults(allow_headers=CORS_ALLOW_HEADERS,
                      expose_headers=CORS_EXPOSE_HEADERS,
                      allow_methods=CORS_ALLOW_METHODS)
