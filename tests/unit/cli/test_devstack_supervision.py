"""The dev stack's supervisor: each child waits out its own back-off, so a crash-looping child
never delays restarting another; a child that stayed up long enough starts afresh."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kith.common.config import Settings
from kith_dev import devstack
from kith_dev.devstack import Child, DevStack


def _spawner(commands: dict[str, str]):
    def spawn(self: DevStack, service: str, command: str) -> Child:
        proc = subprocess.Popen([sys.executable, "-c", commands[service]])
        return Child(service, command, proc)
    return spawn


def test_one_childs_back_off_never_stalls_another(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    commands = {"crasher": "raise SystemExit(3)", "steady": "import time; time.sleep(60)"}
    monkeypatch.setattr(DevStack, "_spawn", _spawner(commands))
    monkeypatch.setattr(devstack, "HEALTHY_AFTER_S", 1.5)
    stack = DevStack(Settings(home=tmp_path))
    crasher = stack._spawn("crasher", "serve")
    crasher.restarts = 6  # deep in its back-off: the next restart is 15 to 30 s away
    steady = stack._spawn("steady", "serve")
    steady.restarts = 4
    stack.children = [crasher, steady]
    stop = threading.Event()
    supervisor = threading.Thread(target=stack.supervise, args=(stop,), daemon=True)
    supervisor.start()
    try:
        time.sleep(2.5)  # the crasher is waiting out its back-off; steady has been up 2.5 s
        assert stack.children[1].restarts == 0, "a healthy period resets the back-off"
        killed_at = time.monotonic()
        stack.children[1].proc.kill()
        while stack.children[1].proc is steady.proc or stack.children[1].proc.poll() is not None:
            assert time.monotonic() - killed_at < 3.0, "the crasher's back-off stalled steady"
            time.sleep(0.05)
        assert stack.children[0].proc is crasher.proc  # still waiting, nobody blocked on it
    finally:
        stop.set()
        supervisor.join(5)
        for child in stack.children:
            if child.proc.poll() is None:
                child.proc.kill()


def test_a_stop_signal_during_start_up_is_not_held_until_every_service_is_up(
        tmp_path: Path) -> None:
    """Ctrl-C while a service is still starting used to wait out its 60 s health deadline
    (and every later one's): the signal handler only sets the stop event."""
    stop = threading.Event()
    stack = DevStack(Settings(home=tmp_path), stop)
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    with pytest.raises(devstack.StartupInterrupted):
        stack._wait_healthy("post", "127.0.0.1:9", timeout=60.0)  # nobody will ever answer
    with pytest.raises(devstack.StartupInterrupted):
        stack._wait_http("gateway", "http://127.0.0.1:9/healthz", timeout=60.0)
    assert time.monotonic() - started < 5
