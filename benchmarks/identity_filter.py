"""The stand-in for keystonemiddleware's auth_token (a Paste filter).

When a benchmark leaves authentication out, this filter takes auth_token's
place in the pipeline: it sets the identity headers and the
``keystone.token_auth`` plugin that auth_token sets for a valid member
token, and does nothing else. It is a module of its own, importing almost
nothing, because it is loaded into the gunicorn workers whose memory
``startup_memory.py`` measures; benchmarks.standins does the rest.
"""

from keystoneauth1 import token_endpoint

# The identity the stand-in asserts (a project member).
BENCH_USER = 'b3nc4000000000000000000000000001'
BENCH_PROJECT = 'b3nc4000000000000000000000000002'
BENCH_TOKEN = 'benchmark-token'  # noqa: S105 (a fake token, never checked)


class IdentityFilter:
    """Sets what auth_token sets for a valid member token; nothing else."""

    def __init__(self, application, token=BENCH_TOKEN):
        self.application = application
        self.token = token

    def __call__(self, environ, start_response):
        environ['HTTP_X_IDENTITY_STATUS'] = 'Confirmed'
        environ['HTTP_X_USER_ID'] = BENCH_USER
        environ['HTTP_X_PROJECT_ID'] = BENCH_PROJECT
        environ['HTTP_X_ROLES'] = 'member,reader'
        environ['keystone.token_auth'] = token_endpoint.Token(None,
                                                              self.token)
        return self.application(environ, start_response)


def filter_factory(global_conf, **local_conf):
    return IdentityFilter
