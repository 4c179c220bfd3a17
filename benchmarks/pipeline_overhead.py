"""What the compute-api pipeline adds to one Delete Image, in process.

The full Paste application, built as the service builds it, is called as a
WSGI callable with Glance being ``benchmarks.null_glance`` (204 to
everything, in its own process, on a kept-alive connection); the baseline
is the same DELETE sent straight to it with a keystoneauth1 session. The
two are interleaved (alternating which goes first). Variants, each in a
fresh child process:

``noauth``
    auth_token replaced by benchmarks.identity_filter (the identity
    headers and ``keystone.token_auth`` only); logging not set up, as in
    the unit tests.
``noauth-log``
    the same with logging set up as the WSGI entry point does (one INFO
    access line per request, to a file).
``authtoken-memcached`` (needs ``--stack``)
    the real auth_token with the stack's ``[keystone_authtoken]``: the
    demo-member token is validated by Keystone once (in the warm-up), then
    served from auth_token's cache in the stack's memcached.
``authtoken-memory`` (needs ``--stack``)
    the same without ``memcached_servers`` (auth_token's in-process cache).

The added cost is reported three ways: difference of the medians, median
of the per-iteration differences, and difference of the median CPU times of
the measuring process. ``--layers`` adds a separate, instrumented pass
giving each layer's own time; ``--profile`` profiles ``--profile-variant``
instead of measuring; ``--authtoken-option NAME=VALUE`` sets a
``[keystone_authtoken]`` option of the authtoken variants. With
``$COMPUTE_API_BENCH_TREE`` naming another checkout, its ``compute_api``
and ``etc/`` are measured (benchmarks.processes). Usage::

    .venv/bin/python -m benchmarks.pipeline_overhead \\
        [--stack /tmp/bench-stack/stack.json] [--layers]
    .venv/bin/python -m benchmarks.pipeline_overhead --profile cprofile
"""

import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

from benchmarks import identity_filter
from benchmarks import inprocess
from benchmarks import instrument
from benchmarks import processes
from benchmarks import report
from benchmarks import standins

VARIANTS = ('noauth', 'noauth-log', 'authtoken-memcached',
            'authtoken-memory')
STACK_VARIANTS = ('authtoken-memcached', 'authtoken-memory')
TOKEN_ENV = 'COMPUTE_API_BENCH_TOKEN'  # noqa: S105 (a variable name)
# What Nova's own pipeline adds over the same baseline, in process
# (benchmarks/nova_extension.py, benchmarks/README.rst).
NOVA_ANCHOR_MS = 1.4
# Added median the variants must stay within (benchmarks/README.rst).
TARGETS_MS = {'noauth': 0.35, 'noauth-log': 0.45, 'authtoken-memcached': 0.8}


def _authtoken(args):
    """The variant's [keystone_authtoken], or None for the stand-in."""
    if args.child not in STACK_VARIANTS:
        return None
    from tests import stack
    state = stack.load_state(args.stack)
    options = dict(stack.read_ini(pathlib.Path(state['compute_config_dir'])
                                  / 'compute_api.conf')['keystone_authtoken'])
    if args.child == 'authtoken-memory':
        options.pop('memcached_servers', None)
    options.update(o.split('=', 1) for o in args.authtoken_option)
    return options


def child(args):
    """One variant, in this (fresh) process: JSON figures or a profile."""
    token = os.environ.get(TOKEN_ENV, identity_filter.BENCH_TOKEN)
    with tempfile.TemporaryDirectory(prefix='bench-pipeline-') as tmp:
        inprocess.write_app_config(tmp, args.glance_url, _authtoken(args))
        started = time.perf_counter()
        app = inprocess.build_app(tmp, logging=args.child != 'noauth')
        load_s = time.perf_counter() - started
        pipeline = inprocess.PipelineClient(app, token)
        if args.profile:
            return instrument.profile_calls(
                pipeline, args.iterations, args.warmup, args.profile,
                args.top)
        run = inprocess.interleaved(
            {'pipeline': pipeline,
             'direct': inprocess.DirectClient(args.glance_url, token)},
            args.iterations, args.warmup, args.time_limit)
        wall, cpu = run['wall'], run['cpu']
        result = {
            'variant': args.child,
            'pipeline': report.summarize(wall['pipeline']),
            'direct': report.summarize(wall['direct']),
            'paired_ms': statistics.median(
                p - d for p, d in zip(wall['pipeline'], wall['direct'],
                                      strict=True)) * 1000,
            # CPU time of this process (the null Glance runs elsewhere):
            # less sensitive to the machine's other load than wall time.
            'cpu_pipeline_ms': statistics.median(cpu['pipeline']) * 1000,
            'cpu_direct_ms': statistics.median(cpu['direct']) * 1000,
            'load_s': load_s,
            'first_call_ms': run['first'].get('pipeline', 0) * 1000,
            'compute_api': inprocess.compute_api_origin(),
        }
        if args.layers:
            result['layers'] = instrument.time_layers(
                pipeline, min(args.iterations, 1000), args.time_limit / 2)
        return json.dumps(result)


def _report(results):
    rows = []
    for r in results:
        for label in ('pipeline', 'direct'):
            s = r[label]
            rows.append((r['variant'] if label == 'pipeline' else '',
                         label, s['n'], report.fmt(s['median']),
                         report.fmt(s['p90']), report.fmt(s['p99'])))
    print(report.table(['variant', 'path', 'n', 'median ms', 'p90 ms',
                        'p99 ms'], rows))
    print()
    rows = []
    for r in results:
        p, d = r['pipeline'], r['direct']
        added = p['median'] - d['median']
        target = ''
        if r['variant'] in TARGETS_MS:
            goal = TARGETS_MS[r['variant']]
            verdict = 'met' if added <= goal else 'NOT met'
            target = f'<= {goal}: {verdict}'
        rows.append((r['variant'], report.fmt(added),
                     report.fmt(r['paired_ms']),
                     report.fmt(r['cpu_pipeline_ms'] - r['cpu_direct_ms']),
                     report.fmt(p['p90'] - d['p90']),
                     report.fmt(p['p99'] - d['p99']),
                     report.fmt(p['median'] / d['median'], 2) + 'x',
                     report.fmt(r['first_call_ms'], 1), target))
    print(report.table(['variant', 'added median ms', 'paired median ms',
                        'added CPU ms', 'added p90 ms', 'added p99 ms',
                        'ratio (median)', 'first call ms',
                        'target ms'], rows))
    print('(added = difference of the medians; paired = median of the '
          'per-iteration differences, less sensitive to drift; added CPU = '
          'difference of the median CPU times of this process per call, '
          'less sensitive to the machine\'s other load.)')
    print('compute_api imported from '
          + ', '.join(sorted({r['compute_api'] for r in results})))
    print(f'\nAnchor: Nova\'s own pipeline adds about {NOVA_ANCHOR_MS} ms '
          'over the same baseline (nova_extension.py).')
    for r in results:
        if 'layers' in r:
            print(f'\nOwn time per layer, {r["variant"]} (outer to inner; '
                  'the Glance call on its own line):')
            print(report.table(
                ['layer', 'median us', 'mean us'],
                [(n, report.fmt(med, 1), report.fmt(mean, 1))
                 for n, med, mean in r['layers']]))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(
        description='In-process cost of the compute-api pipeline per '
                    'Delete Image, against a direct keystoneauth1 call.')
    parser.add_argument('--stack', help='stack.json of a running stack '
                        '(python -m tests.stack up): adds the auth_token '
                        'variants')
    parser.add_argument('--variants', nargs='+', choices=VARIANTS,
                        help='default: the noauth variants, and the '
                             'authtoken ones with --stack')
    parser.add_argument('--iterations', type=int, default=2000)
    parser.add_argument('--warmup', type=int, default=200)
    parser.add_argument('--time-limit', type=float, default=25.0,
                        help='seconds of measurement per variant at most')
    parser.add_argument('--layers', action='store_true',
                        help='also time each pipeline layer')
    parser.add_argument('--profile', choices=('cprofile', 'pyinstrument'),
                        help='profile instead of measuring')
    parser.add_argument('--profile-variant', choices=VARIANTS,
                        default='noauth-log')
    parser.add_argument('--top', type=int, default=25)
    parser.add_argument('--authtoken-option', action='append', default=[],
                        metavar='NAME=VALUE',
                        help='authtoken variants: set a [keystone_authtoken] '
                             'option (repeatable), e.g. '
                             'memcache_use_advanced_pool=False')
    parser.add_argument('--json', help='also write the results here')
    # Internal: one variant in a child process, given the parent's options.
    parser.add_argument('--child', choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument('--glance-url', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.time_limit <= 0:
        parser.error('--iterations and --time-limit must be positive')
    if args.child:
        print(child(args))
        return 0

    variants = ([args.profile_variant] if args.profile else
                args.variants or VARIANTS[:4 if args.stack else 2])
    if any(v in STACK_VARIANTS for v in variants) and not args.stack:
        parser.error('the authtoken variants need --stack DIR/stack.json')
    if any('=' not in o for o in args.authtoken_option):
        parser.error('--authtoken-option takes NAME=VALUE')
    env = {}
    if args.stack:
        from tests import stack
        state = stack.load_state(args.stack)
        env[TOKEN_ENV] = stack.get_session(state, 'demo-member').get_token()
    report.print_header()
    outputs = []
    with standins.NullGlance() as glance_url:
        if args.profile:
            print(f'Profiling variant {variants[0]} with {args.profile}, '
                  f'{args.iterations} calls.\n')
        else:
            print(f'{args.iterations} interleaved deletes per path and '
                  f'variant (after {args.warmup} warm-up), at most '
                  f'{args.time_limit:.0f} s each; null Glance at '
                  f'{glance_url}.\n')
        for variant in variants:
            outputs.append(processes.run_child(
                'benchmarks.pipeline_overhead',
                [*argv, '--child', variant, '--glance-url', glance_url],
                f'variant {variant}', args.time_limit * 3 + 120,
                **(env if variant in STACK_VARIANTS else {})))
    if args.profile:
        print(outputs[0])
        return 0
    results = [json.loads(out.strip().splitlines()[-1]) for out in outputs]
    _report(results)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
