"""Pieces shared by the benchmark scripts.

* ``NullGlance``: starts ``benchmarks.null_glance`` (a loopback HTTP/1.1
  server that answers every request 204) in a child process and stops it.
* ``identity_filter_factory``: a Paste filter that stands in for
  keystonemiddleware's auth_token when a benchmark leaves authentication
  out: it sets the identity headers and the ``keystone.token_auth`` plugin
  that auth_token sets for a valid token, and does nothing else.
* ``noauth_paste_ini``: the production pipeline with that filter in place of
  auth_token.
* Statistics (median, p90, p99), plain-text tables and a machine summary.
"""

import os
import pathlib
import platform
import select
import statistics
import subprocess
import sys
import time

from keystoneauth1 import token_endpoint

REPO = pathlib.Path(__file__).resolve().parents[1]
PASTE_INI = REPO / 'etc' / 'compute_api' / 'api-paste.ini'
AUTHTOKEN_FACTORY = 'compute_api.middleware.factories:authtoken'
IDENTITY_FACTORY = 'benchmarks.common:identity_filter_factory'

# The identity the stand-in filter asserts (a project member).
BENCH_USER = 'b3nc4000000000000000000000000001'
BENCH_PROJECT = 'b3nc4000000000000000000000000002'
BENCH_TOKEN = 'benchmark-token'  # noqa: S105 (a fake token, never checked)


# --------------------------------------------------------------------------
# The stand-in for auth_token


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


def identity_filter_factory(global_conf, **local_conf):
    return IdentityFilter


def noauth_paste_ini():
    """The production Paste file with auth_token replaced by the stand-in.

    Everything else (order, filters, factories) is the shipped pipeline.
    """
    text = PASTE_INI.read_text()
    if AUTHTOKEN_FACTORY not in text:
        raise SystemExit(f'{PASTE_INI} no longer names {AUTHTOKEN_FACTORY};'
                         ' update benchmarks/common.py')
    return text.replace(AUTHTOKEN_FACTORY, IDENTITY_FACTORY)


# --------------------------------------------------------------------------
# The null Glance


class NullGlance:
    """``with NullGlance() as url:`` -- a 204-only HTTP server on loopback."""

    def __init__(self, max_seconds=900):
        self.max_seconds = max_seconds
        self.proc = None
        self.url = None

    def __enter__(self):
        env = dict(os.environ)
        env['PYTHONPATH'] = os.pathsep.join(
            [str(REPO), env.get('PYTHONPATH', '')]).rstrip(os.pathsep)
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'benchmarks.null_glance',
             '--max-seconds', str(self.max_seconds)],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env,
            cwd=str(REPO), text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        line = self.proc.stdout.readline() if ready else ''
        if not line.startswith('PORT '):
            self.__exit__(None, None, None)
            raise RuntimeError('the null Glance server did not start')
        self.url = f'http://127.0.0.1:{int(line.split()[1])}'
        return self.url

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return False


# --------------------------------------------------------------------------
# Statistics and output


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
    load = ' '.join(f'{x:.2f}' for x in os.getloadavg())
    return (f'{os.cpu_count()} CPUs ({model}), Python '
            f'{platform.python_version()}, {platform.system()} '
            f'{platform.release()}; load average {load}')


class Deadline:
    """A time bound: ``expired()`` once ``seconds`` have passed."""

    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def expired(self):
        return time.monotonic() >= self.end

    def left(self):
        return max(0.0, self.end - time.monotonic())


def fmt(value, digits=3):
    return f'{value:.{digits}f}'


def source_revision():
    """The commit measured, and whether the service's files differ from it."""
    def git(*args):
        return subprocess.run(
            ['git', *args], cwd=str(REPO), capture_output=True, text=True,
            check=False).stdout.strip()
    head = git('rev-parse', '--short', 'HEAD') or 'unknown'
    dirty = git('status', '--porcelain', '--', 'compute_api', 'etc')
    return head + (' + uncommitted changes in compute_api/ or etc/'
                   if dirty else '')


# --------------------------------------------------------------------------
# Processes


def cpu_seconds(pids):
    """User + system CPU time used so far by ``pids`` (all their threads).

    From /proc/<pid>/stat, in clock ticks (usually 10 ms): use it over many
    requests. Processes that have gone count as zero.
    """
    ticks = 0
    for pid in pids:
        try:
            fields = pathlib.Path(f'/proc/{pid}/stat').read_text().rsplit(
                ')', 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf('SC_CLK_TCK')


def proc_status(pid, keys=('VmRSS', 'VmHWM', 'RssAnon', 'RssFile')):
    """Memory fields of /proc/<pid>/status, in MiB."""
    values = {}
    for line in pathlib.Path(f'/proc/{pid}/status').read_text().splitlines():
        key, _, rest = line.partition(':')
        if key in keys:
            values[key] = int(rest.split()[0]) / 1024
    return values


def parse_overrides(items):
    """``['section.name=value', ...]`` -> ``{section: {name: value}}``.

    Raises ValueError on a malformed item.
    """
    overrides = {}
    for item in items:
        key, sep, value = item.partition('=')
        section, dot, name = key.partition('.')
        if not (sep and dot and section and name):
            raise ValueError(f'{item!r} is not SECTION.NAME=VALUE')
        overrides.setdefault(section, {})[name] = value
    return overrides
