"""The watchdogs of calls to the Image service share one thread."""

import threading
import time

from oslotest import base

from compute_api.image import deadline


class _Connection:
    def __init__(self):
        self.expired_by = []

    def expire(self, watchdog):
        self.expired_by.append(watchdog)


class TestKeeper(base.BaseTestCase):

    def watchdog(self, seconds):
        watchdog = deadline._Watchdog(seconds)
        self.addCleanup(watchdog.stop)
        conn = _Connection()
        watchdog.watch(conn)
        return watchdog, conn

    def wait_fired(self, watchdog, limit):
        end = time.monotonic() + limit
        while not watchdog.fired and time.monotonic() < end:
            time.sleep(0.005)
        return watchdog.fired

    def test_no_thread_per_attempt(self):
        deadline._Watchdog(60).stop()  # the shared thread is running
        before = threading.active_count()
        for _ in range(5):
            self.watchdog(60)
        self.assertEqual(before, threading.active_count())

    def test_each_fires_at_its_own_deadline(self):
        start = time.monotonic()
        late, late_conn = self.watchdog(0.4)
        # due before the one the thread sleeps for: it must wake up
        early, early_conn = self.watchdog(0.1)
        self.assertTrue(self.wait_fired(early, 1))
        self.assertLess(time.monotonic() - start, 0.3)
        self.assertFalse(late.fired)
        self.assertEqual([early], early_conn.expired_by)
        self.assertTrue(self.wait_fired(late, 1))
        self.assertGreaterEqual(time.monotonic() - start, 0.4)
        self.assertEqual([late], late_conn.expired_by)

    def test_stopped_watchdog_never_fires(self):
        stopped, conn = self.watchdog(0.05)
        stopped.stop()
        other, _ = self.watchdog(0.1)
        self.assertTrue(self.wait_fired(other, 1))
        self.assertFalse(stopped.fired)
        self.assertEqual([], conn.expired_by)

    def test_a_failing_expiry_does_not_stop_the_thread(self):
        failing = deadline._Watchdog(0.01)
        self.addCleanup(failing.stop)
        conn = _Connection()
        conn.expire = None  # not callable: fire() raises
        failing.watch(conn)
        self.assertTrue(self.wait_fired(failing, 1))
        after, _ = self.watchdog(0.05)
        self.assertTrue(self.wait_fired(after, 1))
