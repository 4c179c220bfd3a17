"""[keystone_authtoken]: keystonemiddleware's auth_token, as this service
runs it.

The options are keystonemiddleware's own, plus those of the keystoneauth1
plugin that authenticates the service user (``password`` in the install
guide). Two defaults differ from the library's, for this service:

``memcache_use_advanced_pool = false``
    The advanced pool serves eventlet services; under the sync WSGI workers
    this service runs in it only costs memory (it imports eventlet and
    dnspython, about 11 MiB per worker).
``service_type = compute``
    auth_token can check the access rules of application credentials only
    when it knows which service it protects; without it, every token of an
    application credential with access rules is refused.
"""

from keystoneauth1 import loading as ks_loading
from keystonemiddleware import auth_token
from oslo_config import cfg

GROUP = 'keystone_authtoken'
DEFAULTS = {
    'memcache_use_advanced_pool': False,
    'service_type': 'compute',
}
# The plugin the install guide configures; its options are listed in the
# sample configuration (another auth_type has options of its own).
AUTH_PLUGIN = 'password'


def register_opts(conf):
    """Register auth_token's options with this service's defaults.

    auth_token registers the same options again when the pipeline is built;
    having them from the start lets the API read ``www_authenticate_uri``
    and lets the configuration be checked before any request.
    """
    for group, opts in auth_token.list_opts():
        conf.register_opts(opts, group=group)
    for name, value in DEFAULTS.items():
        conf.set_default(name, value, group=GROUP)


def list_opts():
    """auth_token's options and the password plugin's, as the service
    defaults them (for the sample configuration)."""
    opts = []
    for _group, group_opts in auth_token.list_opts():
        opts.extend(group_opts)
    names = {opt.dest for opt in opts}
    opts.extend(opt for opt in ks_loading.get_auth_plugin_conf_options(
        AUTH_PLUGIN) if opt.dest not in names)
    cfg.set_defaults(opts, **DEFAULTS)
    return {cfg.OptGroup(GROUP): opts}
