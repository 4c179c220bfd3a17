"""[token_cache]: deprecated and ignored (the per-worker token cache was
removed; auth_token alone caches tokens). Accepted, with oslo.config's
deprecation warning, for one release."""

from oslo_config import cfg

GROUP = cfg.OptGroup(
    'token_cache', title='Per-worker token cache (deprecated, ignored)',
    help='Ignored: tokens are cached by auth_token alone.')

opts = [cfg.IntOpt(
    'worker_cache_size', default=128, min=0, help='Ignored.',
    deprecated_for_removal=True,
    deprecated_reason='The per-worker token cache was removed: auth_token '
                      'alone caches tokens, and emptying its memcached '
                      'revokes them at once.')]


def list_opts():
    return {GROUP: opts}
