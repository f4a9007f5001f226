"""Stopping on signals: any burst of SIGTERM/SIGINT stops a process once and cleanly.

A handler that sets a ``threading.Event`` takes the event's lock; a second signal that
interrupts it re-enters and blocks on that lock (or recurses until the interpreter
gives up), so ``kill`` twice could hang or crash a service instead of stopping it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

PROCESS = r"""
import os, sys, time
from kith.common.service import wait_for_signal
stop = wait_for_signal()
print("ready", flush=True)
stop.wait()
# Signals keep coming while the process shuts down: the stop stays stopped.
deadline = time.monotonic() + 0.5
while time.monotonic() < deadline:
    stop.wait(0.001)
print("stopped", flush=True)
sys.stdout.flush()
os._exit(0)
"""


def _burst(pid: int, seconds: float, proc: subprocess.Popen[str]) -> int:
    sent = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return sent
            sent += 1
    return sent


def test_a_burst_of_signals_stops_the_process_once_and_cleanly() -> None:
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", PROCESS], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        sent = _burst(proc.pid, 0.4, proc)
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise AssertionError(f"hung after {sent} signals") from None
        assert proc.returncode == 0, f"after {sent} signals: {err[-2000:]}"
        assert out.strip() == "stopped"


def test_two_and_three_quick_signals_stop_the_process() -> None:
    for signals in ((signal.SIGTERM, signal.SIGINT), (signal.SIGINT, signal.SIGTERM,
                                                      signal.SIGTERM)):
        proc = subprocess.Popen([sys.executable, "-c", PROCESS], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        for sig in signals:
            os.kill(proc.pid, sig)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert out.strip() == "stopped"
