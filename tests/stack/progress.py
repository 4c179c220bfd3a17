"""Progress lines while a stack starts, so that ``up`` is never silent long.

``Progress`` prints one line when a step begins (``stack: starting
Keystone``) and, while steps run, a ``still ...`` line whenever nothing was
printed for ``every`` seconds, naming each step still running and how long
it has taken. The stack itself works without it (``Stack.progress`` is
None for the functional tests and the soaks).
"""

import contextlib
import sys
import threading
import time

# Seconds without a line before a "still ..." line; tools/stack promises
# never to be silent for more than 15 s.
EVERY = 10


class Progress:

    def __init__(self, out=None, every=EVERY, prefix='stack: ',
                 clock=time.monotonic):
        self.out = out if out is not None else sys.stderr
        self.every = every
        self.prefix = prefix
        self.clock = clock
        self._lock = threading.Lock()
        self._running = {}   # step -> when it began
        self._last = clock()
        self._stop = threading.Event()
        self._thread = None

    def say(self, text):
        with self._lock:
            self.out.write(f'{self.prefix}{text}\n')
            self.out.flush()
            self._last = self.clock()

    @contextlib.contextmanager
    def step(self, what):
        """Announce ``what``; name it in "still" lines until it ends."""
        self.say(what)
        with self._lock:
            self._running[what] = self.clock()
        try:
            yield
        finally:
            with self._lock:
                self._running.pop(what, None)

    def _beat(self):
        while not self._stop.wait(min(1.0, self.every / 4)):
            now = self.clock()
            with self._lock:
                quiet = now - self._last >= self.every
                running = ', '.join(f'{what} ({now - began:.0f} s)'
                                    for what, began in self._running.items())
            if quiet:
                self.say(f'still {running}' if running else 'still working')

    def __enter__(self):
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, daemon=True,
                                        name='stack-progress')
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False


def step(progress, what):
    """``progress.step(what)``, or nothing when there is no ``progress``."""
    if progress is None:
        return contextlib.nullcontext()
    return progress.step(what)
