"""A real service and the fan-out worker stop cleanly on two or three quick signals."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from kith.common.config import Settings
from tests.support.processes import process_env, start, wait_healthy


def test_a_service_and_a_worker_stop_once_on_quick_bursts_of_signals(
        settings: Settings, tmp_path: Path) -> None:
    env = process_env(settings)
    for command, burst in ((("post", "serve"), (signal.SIGTERM, signal.SIGINT)),
                           (("post", "serve"), (signal.SIGINT, signal.SIGTERM, signal.SIGTERM)),
                           (("feed", "fanout"), (signal.SIGTERM, signal.SIGTERM, signal.SIGINT))):
        log = tmp_path / f"{'-'.join(command)}.log"
        proc = start(env, *command, log=log)
        try:
            if command[1] == "serve":
                wait_healthy(env["KITH_POST_ADDR"])
            else:
                deadline = time.monotonic() + 60
                while "assigned" not in log.read_text(errors="replace"):
                    assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
                    time.sleep(0.2)
            for sig in burst:
                proc.send_signal(sig)
            assert proc.wait(30) == 0, log.read_text()[-3000:]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
