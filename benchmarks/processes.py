"""Processes: the source measured, children, CPU time and memory.

* the tree whose ``compute_api`` is measured: this repository, or the one
  ``$COMPUTE_API_BENCH_TREE`` names (a checkout of another revision, e.g.
  ``git worktree add /tmp/before <commit>``); the benchmarks themselves
  always come from this repository;
* ``run_child``: each in-process variant runs in a fresh interpreter;
* CPU time and memory of processes, from ``/proc``;
* the bounds and the order every measuring loop shares (``Deadline``,
  ``rotate``).
"""

import contextlib
import os
import pathlib
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
TREE_ENV = 'COMPUTE_API_BENCH_TREE'


def chosen_tree():
    """The checkout ``$COMPUTE_API_BENCH_TREE`` names, or None."""
    chosen = os.environ.get(TREE_ENV)
    if not chosen:
        return None
    path = pathlib.Path(chosen).resolve()
    if not (path / 'compute_api' / '__init__.py').is_file():
        raise SystemExit(f'{TREE_ENV}={chosen}: no compute_api package there')
    return path


def tree():
    """The checkout whose ``compute_api`` and ``etc/`` are measured in
    process: the chosen one, else this repository."""
    return chosen_tree() or REPO


@contextlib.contextmanager
def importing_tree():
    """Within: ``compute_api`` is imported from ``tree()`` (first on
    ``sys.path``); ``sys.path`` is restored on the way out. Yields the
    tree."""
    saved = list(sys.path)
    place = tree()
    sys.path.insert(0, str(place))
    try:
        yield place
    finally:
        sys.path[:] = saved


def source_revision():
    """The commit measured, and whether the service's files differ from it
    (of ``tree()``, named when it is not this repository)."""
    place = tree()

    def git(*args):
        return subprocess.run(
            ['git', *args], cwd=str(place), capture_output=True, text=True,
            check=False).stdout.strip()
    head = git('rev-parse', '--short', 'HEAD') or 'unknown'
    dirty = git('status', '--porcelain', '--', 'compute_api', 'etc')
    where = '' if place == REPO else f' (compute_api from {place})'
    return head + where + (' + uncommitted changes in compute_api/ or etc/'
                           if dirty else '')


def repo_env(**extra):
    """This process's environment, the repository first on PYTHONPATH."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [str(REPO), env.get('PYTHONPATH', '')]).rstrip(os.pathsep)
    env.update(extra)
    return env


def run_child(module, argv, what, timeout, **env):
    """``python -m module *argv`` from the repository; returns its stdout.

    Exits (with the end of its standard error) if the child fails.
    """
    proc = subprocess.run([sys.executable, '-m', module, *argv],
                          env=repo_env(**env), cwd=str(REPO),
                          capture_output=True, text=True, timeout=timeout,
                          check=False)
    if proc.returncode:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f'{what} failed (exit {proc.returncode})')
    return proc.stdout


def cpu_seconds(pids):
    """CPU time used so far by ``pids`` (all their threads), in seconds.

    From ``/proc/<pid>/task/<tid>/schedstat`` (nanoseconds: the clock of
    ``time.thread_time``); where the kernel has no schedstat, from
    ``/proc/<pid>/stat`` in clock ticks (usually 10 ms: use it over many
    requests). Threads and processes that have ended count as zero.
    """
    total = 0.0
    for pid in pids:
        try:
            tids = os.listdir(f'/proc/{pid}/task')
        except OSError:
            continue
        for tid in tids:
            try:
                total += int(pathlib.Path(
                    f'/proc/{pid}/task/{tid}/schedstat').read_text().split()[
                        0]) / 1e9
            except FileNotFoundError:
                return _stat_seconds(pids)
            except (OSError, ValueError, IndexError):
                continue
    return total


def _stat_seconds(pids):
    ticks = 0
    for pid in pids:
        try:
            fields = pathlib.Path(f'/proc/{pid}/stat').read_text().rsplit(
                ')', 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf('SC_CLK_TCK')


def process_counters(key, master):
    """``'<key> cpu'``: CPU seconds of ``master`` and its children so far;
    ``'<key> master'``: of ``master`` alone."""
    from tests import stack
    return {f'{key} cpu': cpu_seconds([master, *stack.children(master)]),
            f'{key} master': cpu_seconds([master])}


def proc_status(pid, keys=('VmRSS', 'VmHWM', 'RssAnon', 'RssFile')):
    """Memory fields of /proc/<pid>/status, in MiB."""
    values = {}
    for line in pathlib.Path(f'/proc/{pid}/status').read_text().splitlines():
        key, _, rest = line.partition(':')
        if key in keys:
            values[key] = int(rest.split()[0]) / 1024
    return values


class Deadline:
    """A time bound: ``expired()`` once ``seconds`` have passed."""

    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def expired(self):
        return time.monotonic() >= self.end

    def left(self):
        return max(0.0, self.end - time.monotonic())


def rotate(names, i):
    """``names`` starting at the ``i``-th (modulo), for round ``i``."""
    k = i % len(names)
    return names[k:] + names[:k]
