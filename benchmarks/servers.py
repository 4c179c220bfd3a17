"""Delete Image through compute-api under three WSGI servers, side by side.

On a running stack, one dedicated compute-api per server is started for the
run, all with the stack's configuration, the same number of workers
(``--workers``, default 2) and the service's runtime environment:

* ``gunicorn-sync``: the shipped gunicorn example as the stack runs it;
* ``gunicorn-gthread``: the same with ``worker_class = 'gthread'``,
  ``threads`` and ``keepalive`` (the client's connection is reused);
* ``uwsgi``: the shipped ``uwsgi.ini.example`` with only the port, the
  worker count, the log file and the places changed.

Images are created in Glance beforehand (not timed). At concurrency 1 one
client goes round the paths request by request (Glance direct and each
server), rotating which goes first; at higher concurrency the paths take
turns in blocks in the same rotating order. Reported per level and server:
the added median over Glance direct, the throughput ratio and the
compute-api CPU time per delete (all the server's processes, ``/proc``);
failed deletes are counted apart and kept out of the latencies, the
throughput and the picture.

Where that CPU time goes: each server loads the application through a
probe (benchmarks.instances.Probe, written into a temporary directory of the
instance's own) that sums the thread CPU time its workers spend inside the
WSGI callable; the rest is the server's own work (accept, parse, write, its
master, idle loops). ``--no-probe`` serves the application directly.
``--png PATH`` draws the latency distributions (needs matplotlib).

Usage::

    .venv/bin/python -m benchmarks.servers \\
        --stack /tmp/bench-stack/stack.json --png latency.png
"""

import argparse
import sys

from benchmarks import draw
from benchmarks import end_to_end
from benchmarks import instances
from benchmarks import load
from benchmarks import report
from tests import stack


def print_report(all_results, servers):
    report.print_latencies(all_results, {
        'direct': 'direct', **{s: s for s in servers}})
    summary = []
    for level, result in all_results.items():
        direct = result['paths']['direct']
        sd = report.summarize(direct.latencies)
        for server in servers:
            r = result['paths'][server]
            s = report.summarize(r.latencies)
            summary.append((
                level, server, report.fmt(s['median'] - sd['median'], 2),
                report.fmt(s['p90'] - sd['p90'], 2),
                report.fmt(r.throughput() / direct.throughput() * 100
                           if direct.throughput() else 0, 1) + ' %',
                report.per_delete(result['counters'][f'{server} cpu'],
                                  r.done)))
    print()
    print(report.table(['concurrency', 'server', 'added median ms',
                        'added p90 ms', 'throughput ratio',
                        'compute-api CPU ms/delete'], summary))
    print('(CPU: all the processes and threads of each server over the '
          'level, per successful delete it served, from /proc.)')


def draw_latencies(all_results, servers, path):
    """Latency distributions of the successful deletes, one panel per
    level."""
    draw.draw_cdfs(
        {f'concurrency {level}': {
            ('Glance direct' if which == 'direct'
             else f'compute-api, {which}'):
                result['paths'][which].latencies
            for which in ('direct', *servers)}
         for level, result in all_results.items()}, path)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Delete Image through compute-api under gunicorn sync, '
                    'gunicorn gthread and uWSGI against Glance direct.')
    load.add_load_arguments(parser, levels=[1, 16], count=150,
                            time_limit=60.0)
    parser.add_argument('--servers', nargs='+', choices=instances.SERVERS,
                        default=list(instances.SERVERS))
    parser.add_argument('--workers', type=int, default=2)
    parser.add_argument('--no-probe', action='store_true',
                        help='serve the application without the probe (no '
                             'application/server split of the CPU time)')
    draw.add_png_argument(parser)
    args = parser.parse_args(argv)
    draw.check_png_argument(parser, args)
    load.check_load_arguments(parser, args)

    state = stack.load_state(args.stack)
    token = stack.get_session(state, end_to_end.USER).get_token()
    report.print_header()
    started = {}
    prefixes = {'direct': f'{state["glance_url"]}/v2/images/'}
    try:
        for server in args.servers:
            started[server] = instances.start_instance(
                state, server, args.workers, probe=not args.no_probe)
            prefixes[server] = f'{started[server].url}/v2.1/images/'
        print(f'{args.workers} workers per server '
              f'(gthread: {instances.GTHREADS} threads, keepalive '
              f'{instances.KEEPALIVE} s); Glance {state["glance_url"]} '
              f'(1 worker, sqlite); {args.count} deletes per path and '
              'level.\n')
        all_results = load.measure_levels(
            state, prefixes, token, args, lambda: {
                k: v for server, instance in started.items()
                for k, v in instance.counters(server).items()})
        origins = instances.check_origins(started.values())
    finally:
        for instance in started.values():
            instance.stop()
    print(f'Load average after the run: {report.load_average()}')
    print_report(all_results, args.servers)
    if not args.no_probe:
        print(f'\nWhere the compute-api CPU per delete goes (compute_api '
              f'imported from {origins}):')
        report.print_cpu_split(all_results,
                               {s: s for s in args.servers})
    if args.png:
        draw_latencies(all_results, args.servers, args.png)
        print(f'Latency distributions: {args.png}')
    if args.json:
        report.write_json(args.json, all_results)
    return 0


if __name__ == '__main__':
    sys.exit(main())
