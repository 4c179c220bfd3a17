"""[token_cache] options: deprecated, ignored.

The per-worker layer in front of auth_token's token cache is gone: tokens
are cached by auth_token alone ([keystone_authtoken] memcached_servers and
token_cache_time), so emptying memcached revokes at once again. The option
is still accepted, with oslo.config's deprecation warning, for one release.
"""

from oslo_config import cfg

GROUP = cfg.OptGroup(
    'token_cache', title='Per-worker token cache (deprecated, ignored)',
    help='Ignored: tokens are cached by auth_token alone.')

opts = [
    cfg.IntOpt(
        'worker_cache_size',
        default=128, min=0,
        deprecated_for_removal=True,
        deprecated_reason='The per-worker token cache was removed: auth_token '
                          'alone caches tokens, and emptying its memcached '
                          'revokes them at once.',
        help='Ignored.'),
]


def register_opts(conf):
    conf.register_group(GROUP)
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return {GROUP: opts}
