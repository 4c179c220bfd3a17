"""Statistics and reports: summaries of durations, plain-text tables, the
machine and the commit measured, the tables of the deletes through a stack
(``benchmarks.load``) and their JSON."""

import json
import os
import pathlib
import platform
import statistics

from benchmarks import processes


def summarize(samples_s):
    """median, p90, p99, mean, min (milliseconds) and n of durations."""
    data = sorted(samples_s)
    if len(data) < 2:
        value = data[0] * 1000 if data else float('nan')
        return {'n': len(data), 'median': value, 'p90': value,
                'p99': value, 'mean': value, 'min': value}
    cuts = statistics.quantiles(data, n=100, method='inclusive')
    return {
        'n': len(data),
        'median': statistics.median(data) * 1000,
        'p90': cuts[89] * 1000,
        'p99': cuts[98] * 1000,
        'mean': statistics.fmean(data) * 1000,
        'min': data[0] * 1000,
    }


def table(headers, rows):
    """A plain-text table (also valid reStructuredText simple table)."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    rule = '  '.join('=' * w for w in widths)

    def line(values):
        return '  '.join(v.rjust(w) if i else v.ljust(w)
                         for i, (v, w) in enumerate(zip(values, widths,
                                                        strict=True)))
    out = [rule, line(headers), rule]
    out += [line(r) for r in cells]
    out.append(rule)
    return '\n'.join(out)


def fmt(value, digits=3):
    return f'{value:.{digits}f}'


def per_delete(seconds, deletes):
    """Milliseconds per delete, formatted."""
    return fmt(seconds * 1000 / max(1, deletes), 2)


def machine():
    """One line describing the machine and interpreter."""
    model = 'unknown CPU'
    try:
        for text in pathlib.Path('/proc/cpuinfo').read_text().splitlines():
            if text.startswith('model name'):
                model = text.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    return (f'{os.cpu_count()} CPUs ({model}), Python '
            f'{platform.python_version()}, {platform.system()} '
            f'{platform.release()}; load average {load_average()}')


def load_average():
    return ' '.join(f'{x:.2f}' for x in os.getloadavg())


def print_header():
    """The machine and the commit, printed before any figure."""
    print(f'Machine: {machine()}')
    print(f'Source: {processes.source_revision()}')


def print_latencies(all_results, labels):
    """The latency table of ``load.measure_levels``' results (``labels``:
    ``{path: label}``, in order), then a line per path that had failures:
    its statuses and the first failure's text."""
    rows, failures = [], []
    for level, result in all_results.items():
        for i, (name, label) in enumerate(labels.items()):
            r = result['paths'][name]
            s = summarize(r.latencies)
            rows.append((level if i == 0 else '', label, s['n'], r.errors,
                         fmt(s['median'], 2), fmt(s['p90'], 2),
                         fmt(s['p99'], 2), fmt(r.throughput(), 1)))
            if r.errors:
                failures.append(
                    f'concurrency {level}, {label}: {r.errors} failed '
                    f'(statuses {dict(r.statuses)}); first: {r.first_error}')
    print(table(['concurrency', 'path', 'n', 'errors', 'median ms',
                 'p90 ms', 'p99 ms', 'deletes/s'], rows))
    print('(n, latencies and throughput: successful deletes only; '
          'errors: the others.)')
    for line in failures:
        print(line)


def print_cpu_split(all_results, labels):
    """Where each probed instance's CPU per delete goes (``labels``:
    ``{path: label}`` of instances measured with a ``Probe``)."""
    rows = []
    for level, result in all_results.items():
        for name, label in labels.items():
            c = result['counters']
            deletes = result['paths'][name].done
            app = c[f'{name} app']
            rest = c[f'{name} cpu'] - app
            master = c[f'{name} master']
            rows.append((level, label, deletes,
                         int(c[f'{name} app requests']),
                         per_delete(c[f'{name} cpu'], deletes),
                         per_delete(app, deletes), per_delete(rest, deletes),
                         per_delete(master, deletes),
                         per_delete(rest - master, deletes),
                         fmt(100 * app / (c[f'{name} cpu'] or 1), 1) + ' %'))
    print(table(['concurrency', 'server', 'deletes', 'app calls',
                 'process CPU ms/delete', 'app ms/delete',
                 'server (rest) ms/delete', 'of which master ms',
                 'of which workers ms', 'app share'], rows))
    print('(process: all the server\'s processes and threads, from /proc; '
          'app: thread CPU time inside the WSGI callable (the application '
          'call, iterating and closing its response; start_response left '
          'out), summed in each worker by a probe; rest = process - app: '
          'the server\'s accept, parsing and writing, its master, idle '
          'loops and the application\'s other threads. app calls: requests '
          'the probe counted over the deletes.)')


def write_json(path, all_results):
    """``load.measure_levels``' results as JSON."""
    pathlib.Path(path).write_text(json.dumps({
        str(level): {'paths': {k: r.as_json()
                               for k, r in result['paths'].items()},
                     'counters': result['counters']}
        for level, result in all_results.items()}))
