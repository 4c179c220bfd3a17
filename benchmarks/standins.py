"""The stand-ins: the pipeline with the identity filter
(benchmarks.identity_filter) in place of keystonemiddleware's auth_token,
and ``NullGlance`` (benchmarks.null_glance), a 204-only server.

The identity filter and the null Glance are modules of their own because
they run in other processes (the WSGI servers measured, and a process of
the null Glance's own); this module starts and configures them.
"""

import select
import subprocess
import sys

from benchmarks import processes

AUTHTOKEN_FACTORY = 'compute_api.middleware.factories:authtoken'
IDENTITY_FACTORY = 'benchmarks.identity_filter:filter_factory'


def paste_ini_text():
    """The shipped Paste file of the tree measured."""
    return (processes.tree() / 'etc' / 'compute_api' /
            'api-paste.ini').read_text()


def noauth_paste_ini():
    """The production Paste file with auth_token replaced by the stand-in.

    Everything else (order, filters, factories) is the shipped pipeline.
    """
    text = paste_ini_text()
    if AUTHTOKEN_FACTORY not in text:
        raise SystemExit(f'api-paste.ini no longer names {AUTHTOKEN_FACTORY};'
                         ' update benchmarks/standins.py')
    return text.replace(AUTHTOKEN_FACTORY, IDENTITY_FACTORY)


class NullGlance:
    """``with NullGlance() as url:`` -- a 204-only HTTP server on loopback.

    ``benchmarks.null_glance`` in its own process, so that it never competes
    for the GIL with what is measured.
    """

    def __init__(self, max_seconds=900, close=False):
        self.max_seconds = max_seconds
        self.close = close
        self.proc = None
        # connections the null Glance accepted, known once it has stopped
        self.connections = None

    def __enter__(self):
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'benchmarks.null_glance',
             '--max-seconds', str(self.max_seconds),
             *(['--close'] if self.close else [])],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
            env=processes.repo_env(), cwd=str(processes.REPO), text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        line = self.proc.stdout.readline() if ready else ''
        if not line.startswith('PORT '):
            self.__exit__(None, None, None)
            raise RuntimeError('the null Glance server did not start')
        return f'http://127.0.0.1:{int(line.split()[1])}'

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc is not None:
            for line in self.proc.stdout:
                if line.startswith('CONNECTIONS '):
                    self.connections = int(line.split()[1])
            self.proc.stdout.close()
        return False
