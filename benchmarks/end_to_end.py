"""Delete Image through compute-api, against Glance direct.

On a running stack (``python -m tests.stack up --workdir DIR``), images
owned by project ``demo`` are created in Glance beforehand (not timed), then
deleted at concurrency 1, 4 and 16 by client threads, each with its own
keystoneauth1 session and the same demo-member token:

* through compute-api: ``DELETE {compute}/v2.1/images/{id}`` (the stack's
  instance, 2 workers of the stack's server, or ``--workers N`` for a
  dedicated instance under ``--server``, gunicorn's sync worker by default,
  started for the run and stopped after it);
* straight to Glance: ``DELETE {glance}/v2/images/{id}``.

The two paths alternate so that drift (Glance's sqlite database grows; the
machine's load changes) weighs on both equally: at concurrency 1 a single
client alternates request by request (throughput is then n / total time of
that path's requests); at higher concurrency the paths take turns in blocks,
direct, compute-api, compute-api, direct, ... (``--blocks`` per path), and
throughput is deletes over the blocks' wall time. Reported per level:
median, p90 and p99 latency per delete, throughput, the added median
latency and the throughput ratio; failed deletes are counted apart and kept
out of the latencies and the throughput. Also the CPU time the compute-api
and Glance processes used per delete (``/proc``), and with ``--workers``
how the compute-api's divides between the WSGI application and the rest of
the server (benchmarks.instances.Probe).

With ``--workers`` and ``$COMPUTE_API_BENCH_TREE`` naming a checkout of
another revision, the dedicated instance runs that checkout's
``compute_api`` (first on its workers' path, in the service's runtime
environment) and ``api-paste.ini``; the report says where the workers
imported it from.

Glance runs one sync worker on sqlite here, so it serialises the deletes;
the counts are modest and every phase is bounded in time.

Usage::

    .venv/bin/python -m benchmarks.end_to_end \\
        --stack /tmp/bench-stack/stack.json
"""

import argparse
import sys

from benchmarks import instances
from benchmarks import load
from benchmarks import processes
from benchmarks import report
from tests import stack

USER = 'demo-member'
TARGET_ADDED_MS = 2.0
TARGET_RATIO = 0.90


def print_report(all_results):
    summary = []
    for level, result in all_results.items():
        compute, direct = result['paths']['compute'], result['paths'][
            'direct']
        sc = report.summarize(compute.latencies)
        sd = report.summarize(direct.latencies)
        added = sc['median'] - sd['median']
        ratio = (compute.throughput() / direct.throughput()
                 if direct.throughput() else 0.0)
        verdict = []
        if level == 1:
            met = 'met' if added <= TARGET_ADDED_MS else 'NOT met'
            verdict.append(f'added <= {TARGET_ADDED_MS:g} ms: {met}')
        if level == 16:
            met = 'met' if ratio >= TARGET_RATIO else 'NOT met'
            verdict.append(f'ratio >= {TARGET_RATIO:.0%}: {met}')
        cpu = result['counters']
        summary.append((level, report.fmt(added, 2),
                        report.fmt(sc['p90'] - sd['p90'], 2),
                        report.fmt(ratio * 100, 1) + ' %',
                        report.per_delete(cpu['compute cpu'], compute.done),
                        report.per_delete(cpu['glance cpu'],
                                          compute.done + direct.done),
                        '; '.join(verdict) or '-'))
    report.print_latencies(all_results, {'compute': 'compute-api',
                                         'direct': 'Glance direct'})
    print()
    print(report.table(['concurrency', 'added median ms', 'added p90 ms',
                        'throughput ratio', 'compute-api CPU ms/delete',
                        'Glance CPU ms/delete', 'targets'], summary))
    print('(CPU: all the processes and threads of each service over the '
          'level, per successful delete it served, from /proc.)')


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Delete Image through compute-api against straight to '
                    'Glance, on a running stack.')
    load.add_load_arguments(parser, levels=[1, 4, 16], count=200,
                            time_limit=45.0)
    parser.add_argument('--workers', type=int,
                        help='start a dedicated compute-api with this many '
                             'workers (default: use the stack\'s); also '
                             'splits its CPU time between the application '
                             'and the server')
    parser.add_argument('--server', choices=instances.SERVERS,
                        default='gunicorn-sync',
                        help='with --workers: the WSGI server of the '
                             'dedicated instance (default: %(default)s)')
    parser.add_argument('--conf-override', action='append', default=[],
                        metavar='SECTION.NAME=VALUE',
                        help='with --workers: an option for the dedicated '
                             'instance\'s compute_api.conf (repeatable)')
    args = parser.parse_args(argv)
    load.check_load_arguments(parser, args)
    try:
        overrides = instances.parse_overrides(args.conf_override)
    except ValueError as exc:
        parser.error(str(exc))
    if overrides and not args.workers:
        parser.error('--conf-override needs --workers (a dedicated '
                     'instance)')
    if processes.chosen_tree() is not None and not args.workers:
        parser.error(f'{processes.TREE_ENV} needs --workers (a dedicated '
                     'instance runs that checkout\'s compute_api)')

    state = stack.load_state(args.stack)
    token = stack.get_session(state, USER).get_token()
    report.print_header()
    instance = None
    compute_url = state['compute_url']
    workers = 'the stack\'s instance'
    if args.workers:
        instance = instances.start_instance(
            state, args.server, args.workers, name='bench-e2e',
            overrides=overrides, probe=True)
        compute_url = instance.url
        workers = (f'a dedicated instance, {args.server}, {args.workers} '
                   'workers')
        if args.conf_override:
            workers += '; ' + ', '.join(args.conf_override)

    def counters():
        values = processes.process_counters('glance', state['pids']['glance'])
        if instance is not None:
            return {**values, **instance.counters('compute')}
        return {**values, **processes.process_counters(
            'compute', state['pids']['compute-api'])}

    print(f'compute-api: {compute_url} ({workers}); Glance: '
          f'{state["glance_url"]} (1 worker, sqlite); {args.count} deletes '
          f'per path and level.\n')
    prefixes = {'direct': f'{state["glance_url"]}/v2/images/',
                'compute': f'{compute_url}/v2.1/images/'}
    try:
        all_results = load.measure_levels(state, prefixes, token, args,
                                          counters)
        origins = instance and instances.check_origins([instance])
    finally:
        if instance is not None:
            instance.stop()
    print(f'Load average after the run: {report.load_average()}')
    print_report(all_results)
    if instance is not None:
        print('\nWhere the compute-api CPU per delete goes '
              f'(compute_api imported from {origins}):')
        report.print_cpu_split(all_results, {'compute': args.server})
    if args.json:
        report.write_json(args.json, all_results)
    return 0


if __name__ == '__main__':
    sys.exit(main())
