"""sd_notify: what aersd tells the service manager, read from a datagram
socket the test binds as NOTIFY_SOCKET (as systemd would)."""

import os
import signal
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aers_it  # noqa: E402
from aers_it import CONFIGS  # noqa: E402

WATCHDOG_USEC = 200000


@unittest.skipUnless(aers_it.HAVE_SYSTEMD, "aersd built without libsystemd")
class NotifyTest(aers_it.JackTestCase):
    tag = "notify"
    needs_jack = False

    def setUp(self):
        self.path = self.tmp.file("notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []

    def tearDown(self):
        self.sock.close()

    def expect(self, key, timeout=10.0):
        """Reads datagrams until one has `key` (e.g. "READY=1"); returns it as
        a dict."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(4096).decode()
            except socket.timeout:
                break
            fields = dict(line.split("=", 1) for line in data.splitlines() if "=" in line)
            self.messages.append(fields)
            k, v = key.split("=", 1)
            if fields.get(k) == v:
                return fields
        self.fail(f"no {key} within {timeout} s; got {self.messages}")

    def test_ready_watchdog_reload_stopping(self):
        aersd = self.start_aersd(
            os.path.join(CONFIGS, "null_tone.yaml"), args=["--backend", "null"], ready=False,
            env={"NOTIFY_SOCKET": self.path, "WATCHDOG_USEC": str(WATCHDOG_USEC)})

        ready = self.expect("READY=1")
        self.assertRegex(ready["STATUS"], r"^null 48000 Hz, 256 frames, 2 nodes, .*0 xruns")
        self.assertIn("audio running", aersd.log())

        # Pings at half the watchdog interval.
        start = time.monotonic()
        for _ in range(3):
            self.expect("WATCHDOG=1", timeout=WATCHDOG_USEC / 1e6)
        self.assertLess(time.monotonic() - start, 3 * WATCHDOG_USEC / 1e6)

        before = time.monotonic_ns() // 1000
        aersd.signal(signal.SIGHUP)
        reloading = self.expect("RELOADING=1")
        after = time.monotonic_ns() // 1000
        self.assertTrue(before <= int(reloading["MONOTONIC_USEC"]) <= after,
                        f"{before} <= {reloading['MONOTONIC_USEC']} <= {after}")
        self.expect("READY=1")
        self.assertIn("reloaded", aersd.log())

        aersd.signal(signal.SIGTERM)
        self.expect("STOPPING=1")
        self.assertEqual(aersd.wait_exit(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
