"""[token_cache] options: the per-worker layer of auth_token's token cache."""

from oslo_config import cfg

GROUP = cfg.OptGroup(
    'token_cache', title='Per-worker token cache',
    help="Each worker keeps the tokens it has seen validated in its own "
         "memory, in front of auth_token's cache ([keystone_authtoken] "
         "memcached_servers), so that a token used again is not fetched "
         "from memcached and decrypted on every request. An entry is "
         "served no longer than auth_token's cache keeps the token "
         "([keystone_authtoken] token_cache_time, counted from when the "
         "token was validated by Keystone), the longest a revoked token can "
         "be accepted without this layer too. Unlike auth_token's cache, "
         "the workers' copies survive memcached losing its entries (a "
         "restart, an outage, flush_all): to make a revocation take effect "
         "at once, empty memcached first, then reload or restart every "
         "instance of the service.")

opts = [
    cfg.IntOpt(
        'worker_cache_size',
        default=128, min=0,
        help='How many validated tokens each worker keeps in its own '
             'memory (the least recently used go first). 0 turns the '
             'per-worker layer off: every request then reads the token '
             "from auth_token's cache. The layer is also off when "
             '[keystone_authtoken] token_cache_time is 1 or less. '
             'Each entry is the token as Keystone returned it, service '
             'catalog included: a few kilobytes to a few tens of '
             'kilobytes, depending on the size of the catalog.'),
]


def register_opts(conf):
    conf.register_group(GROUP)
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return {GROUP: opts}
