"""The images filter's cost inside Nova's pipeline, in process.

Nova's full ``osapi_compute`` application (nova 34.0.0's own
``api-paste.ini``: urlmap, cors, request ids, fault wrapper, request log,
size limit, keystonecontext, its router) is built twice in one process:
as installed, and with compute-api's filter added as
``doc/source/nova-extension.rst`` says. In both, auth_token is replaced by
``benchmarks.identity_filter`` (the identity headers and
``keystone.token_auth`` of a valid member token), and Glance is
``benchmarks.null_glance`` on loopback (``[glance] endpoint_override`` in
``nova.conf`` and in the filter's ``compute_api.conf``). The same
``DELETE /v2.1/images/{id}`` is sent, as gunicorn would hand it over, to
Nova alone (Nova's own images delete, through glanceclient), to Nova with
the filter (the filter serves it), to compute-api's own pipeline (the
production pipeline with the same stand-in, logging not set up), and
straight to the null Glance with a keystoneauth1 session (the baseline),
interleaved, rotating the order. ``--png PATH`` draws the four latency
distributions.

Run it from the repository root with the Nova environment that
``tools/bootstrap.sh`` makes::

    .venv-nova/bin/python -m benchmarks.nova_extension --png nova.png
"""

import argparse
import pathlib
import sys
import tempfile
import time

from benchmarks import draw
from benchmarks import identity_filter
from benchmarks import inprocess
from benchmarks import report
from benchmarks import standins

NOVA_AUTHTOKEN = 'keystonemiddleware.auth_token:filter_factory'


def _nova_paste():
    from tests import nova
    text = nova.installed_paste_ini()
    if NOVA_AUTHTOKEN not in text:
        raise SystemExit('Nova\'s api-paste.ini no longer names '
                         f'{NOVA_AUTHTOKEN}')
    return nova, text.replace(NOVA_AUTHTOKEN, standins.IDENTITY_FACTORY)


def build_apps(directory, glance_url):
    """(Nova alone, Nova with the filter) as WSGI callables."""
    from nova import config
    from paste import deploy as paste_deploy
    directory = pathlib.Path(directory)
    nova, paste = _nova_paste()
    filter_dir = directory / 'compute_api'
    filter_dir.mkdir()
    (filter_dir / 'compute_api.conf').write_text(
        f'[glance]\nendpoint_override = {glance_url}\n'
        '[oslo_policy]\npolicy_file = policy.yaml\n')
    (filter_dir / 'policy.yaml').write_text('{}\n')
    (directory / 'nova-paste.ini').write_text(paste)
    (directory / 'nova-filter-paste.ini').write_text(
        nova.paste_with_filter(paste, filter_dir))
    (directory / 'nova.conf').write_text(
        '[DEFAULT]\ntransport_url = fake:/\n'
        f'log_file = {directory}/nova.log\n'
        '[api]\nauth_strategy = keystone\n'
        f'[glance]\nendpoint_override = {glance_url}\n'
        '[service_user]\nsend_service_user_token = false\n'
        f'[oslo_concurrency]\nlock_path = {directory}/locks\n')
    config.parse_args([], default_config_files=[str(directory /
                                                    'nova.conf')])
    return tuple(
        paste_deploy.loadapp(f'config:{directory / name}',
                             name='osapi_compute')
        for name in ('nova-paste.ini', 'nova-filter-paste.ini'))


def run(glance_url, iterations, warmup, time_limit):
    with tempfile.TemporaryDirectory(prefix='bench-nova-') as tmp:
        started = time.perf_counter()
        nova_app, filter_app = build_apps(tmp, glance_url)
        load_s = time.perf_counter() - started
        # compute-api on its own, with the same identity stand-in
        standalone_dir = pathlib.Path(tmp) / 'standalone'
        standalone_dir.mkdir()
        inprocess.write_app_config(standalone_dir, glance_url)
        standalone_app = inprocess.build_app(standalone_dir, logging=False)
        token = identity_filter.BENCH_TOKEN
        measured = inprocess.interleaved(
            {'direct': inprocess.DirectClient(glance_url, token),
             'nova': inprocess.PipelineClient(nova_app, token),
             'filter': inprocess.PipelineClient(filter_app, token),
             'standalone': inprocess.PipelineClient(standalone_app, token)},
            iterations, warmup, time_limit)
        return measured['wall'], load_s


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--iterations', type=int, default=1500)
    parser.add_argument('--warmup', type=int, default=100)
    parser.add_argument('--time-limit', type=float, default=40.0,
                        help='seconds of measuring at most')
    draw.add_png_argument(parser)
    args = parser.parse_args(argv)
    draw.check_png_argument(parser, args)
    try:
        import nova  # noqa: F401
    except ImportError:
        raise SystemExit('nova is not installed here: run this with '
                         '.venv-nova/bin/python (tools/bootstrap.sh)')
    report.print_header()
    with standins.NullGlance() as glance_url:
        times, load_s = run(glance_url, args.iterations, args.warmup,
                            args.time_limit)
    summaries = {name: report.summarize(samples)
                 for name, samples in times.items()}
    medians = {name: s['median'] for name, s in summaries.items()}
    rows = []
    for name, label in (('direct', 'straight to the null Glance'),
                        ('nova', 'Nova alone (its images delete)'),
                        ('filter', 'Nova with the compute-api filter'),
                        ('standalone', 'compute-api on its own')):
        summary = summaries[name]
        rows.append([label, summary['n'],
                     report.fmt(summary['median']),
                     report.fmt(summary['p90']),
                     report.fmt(summary['p99']),
                     report.fmt(medians[name] - medians['direct'])])
    print(f'both pipelines loaded in {load_s:.2f} s')
    print(report.table(['DELETE /v2.1/images/{id}', 'n', 'median ms',
                        'p90 ms', 'p99 ms', 'over direct ms'], rows))
    print(f'filter vs Nova alone (difference of medians): '
          f'{medians["filter"] - medians["nova"]:+.3f} ms')
    if args.png:
        draw.draw_cdfs({'in process, null Glance': {
            'straight to the null Glance': times['direct'],
            "Nova's pipeline (its own images delete)": times['nova'],
            "Nova's pipeline with compute-api's filter": times['filter'],
            "compute-api's own pipeline": times['standalone'],
        }}, args.png)
        print(f'Latency distributions: {args.png}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
