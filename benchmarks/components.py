"""Micro-costs of the pieces of one Delete Image, without a profiler.

Builds the ``noauth-log`` application of benchmarks.pipeline_overhead (the
production pipeline, auth_token replaced by the identity stand-in, logging
set up as the WSGI entry point does) and times, with ``timeit`` (best of 5
repeats), the individual steps a request goes through, so that the
profile's shares can be turned into microseconds. Some steps reach into
compute-api's internals (the policy enforcer, the Glance adapter's
keystoneauth1 session); a step whose internals have changed is reported as
``n/a`` rather than failing the run.

Usage::

    .venv/bin/python -m benchmarks.components
"""

import argparse
import logging
import sys
import tempfile
import timeit
import uuid

from keystoneauth1 import token_endpoint
import webob

from benchmarks import identity_filter
from benchmarks import inprocess
from benchmarks import report
from benchmarks import standins


def _chain(app):
    layers = []
    layer = app
    while layer is not None:
        layers.append(layer)
        layer = getattr(layer, 'application', None)
    return layers


def steps(app, glance_url):
    """[(name, callable)] of the steps to time."""
    from compute_api import context as compute_context
    from compute_api.api import microversion

    layers = _chain(app)
    router = layers[-1]
    context_mw = next(x for x in layers
                      if type(x).__name__ == 'ContextMiddleware')
    image_api = router._controllers['images'].image_api
    client = inprocess.PipelineClient(app, identity_filter.BENCH_TOKEN)
    environ = client.environ(str(uuid.uuid4()))
    environ.update(HTTP_X_IDENTITY_STATUS='Confirmed',
                   HTTP_X_USER_ID=identity_filter.BENCH_USER,
                   HTTP_X_PROJECT_ID=identity_filter.BENCH_PROJECT,
                   HTTP_X_ROLES='member,reader')
    plugin = token_endpoint.Token(None, identity_filter.BENCH_TOKEN)
    ctx = compute_context.RequestContext.from_environ(
        environ, user_auth_plugin=plugin, enforcer=context_mw.enforcer)
    url = glance_url + '/v2/images/' + str(uuid.uuid4())
    access = logging.getLogger('compute_api.access')
    direct = inprocess.DirectClient(glance_url, identity_filter.BENCH_TOKEN)

    def merge_env(trust):
        def run():
            requests_session = image_api._session.session
            saved = requests_session.trust_env
            requests_session.trust_env = trust
            try:
                requests_session.merge_environment_settings(
                    url, {}, None, None, None)
            finally:
                requests_session.trust_env = saved
        return run

    def check_policy_files():
        enforcer = context_mw.enforcer
        # load_rules() until the enforcer was replaced whole on a change
        # of the files; rules() since
        load = getattr(enforcer, 'load_rules', None)
        return load() if load is not None else enforcer.rules()

    return [
        ('whole pipeline, one delete (null Glance)',
         lambda: client.call(client.environ(str(uuid.uuid4())))),
        ('direct keystoneauth1 delete (null Glance)',
         lambda: direct.call(str(uuid.uuid4()))),
        ('Glance adapter delete (ImageAPI.delete, null Glance)',
         lambda: image_api.delete(ctx, str(uuid.uuid4()))),
        ('policy: context.can(images:delete)',
         lambda: ctx.can('os_compute_api:images:delete',
                         {'project_id': ctx.project_id})),
        ('policy: the policy files checked (done on each call)',
         check_policy_files),
        ('RequestContext.from_environ',
         lambda: compute_context.RequestContext.from_environ(
             environ, user_auth_plugin=plugin,
             enforcer=context_mw.enforcer)),
        ('microversion.from_request',
         lambda: microversion.from_request(webob.Request(environ))),
        ('routes Mapper.match',
         lambda: router._mapper.match(environ=dict(environ))),
        ('requests env settings, trust_env=True (proxies, netrc)',
         merge_env(True)),
        ('requests env settings, trust_env=False', merge_env(False)),
        ('one access log line (oslo.log formatter, file)',
         lambda: access.info('%s %s status: %d len: %s time: %.4f '
                             'microversion: %s', 'DELETE',
                             '/v2.1/images/x', 204, 0, 0.001, '2.1')),
        ('webob.Request + Response (one wsgify layer\'s objects)',
         lambda: (webob.Request(dict(environ)), webob.Response(status=204))),
        ('uuid4 request id', lambda: f'req-{uuid.uuid4()}'),
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--number', type=int, default=500,
                        help='calls per repeat (5 repeats, best kept)')
    args = parser.parse_args(argv)
    if args.number < 1:
        parser.error('--number must be positive')
    report.print_header()
    print()
    rows = []
    with standins.NullGlance() as glance_url, \
            tempfile.TemporaryDirectory(prefix='bench-components-') as tmp:
        inprocess.write_app_config(tmp, glance_url)
        app = inprocess.build_app(tmp)
        try:
            todo = steps(app, glance_url)
        except (AttributeError, KeyError, StopIteration) as exc:
            raise SystemExit(f'compute-api internals changed: {exc!r}')
        for name, func in todo:
            try:
                func()
                for _ in range(50):
                    func()
                best = min(timeit.repeat(func, number=args.number,
                                         repeat=5)) / args.number
                rows.append((name, report.fmt(best * 1e6, 1)))
            except Exception as exc:  # reported, not fatal
                rows.append((name, f'n/a ({type(exc).__name__})'))
    print(f'Best of 5 x {args.number} calls, microseconds per call:')
    print(report.table(['step', 'us'], rows))
    return 0


if __name__ == '__main__':
    sys.exit(main())
