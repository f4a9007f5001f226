"""Liveness that means progress: a consumer is alive while it applies events or has none to apply.

A worker whose loop is wedged (a hung database call, a poisoned batch retried forever) still
answers ``/metrics``, so a probe on that endpoint never restarts it. :class:`ProgressCheck`
fails instead when the consumer group has lag pending and nothing was applied for
``stall_s`` seconds; :func:`serve_liveness` answers ``GET /livez`` with 200 or 503 on
``KITH_HEALTH_PORT`` (0, the default, serves nothing).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kith.common import metrics

HEALTH_PORT_VAR = "KITH_HEALTH_PORT"
STALL_VAR = "KITH_LIVENESS_STALL_S"
DEFAULT_STALL_S = 300.0


def group_lag(group: str) -> int:
    """The last sampled lag of ``group``, summed over its assigned partitions."""
    total = 0
    for metric in metrics.CONSUMER_LAG.collect():
        for sample in metric.samples:
            if sample.labels.get("group") == group:
                total += int(sample.value)
    return total


class ProgressCheck:
    """Alive unless lag is pending while the applied count has not moved for ``stall_s``."""

    def __init__(self, applied: Callable[[], int], lag: Callable[[], int], stall_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._applied = applied
        self._lag = lag
        self.stall_s = stall_s
        self._clock = clock
        self._last_applied = applied()
        self._since = clock()
        self._lock = threading.Lock()

    def __call__(self) -> tuple[bool, str]:
        with self._lock:
            now, applied, lag = self._clock(), self._applied(), self._lag()
            if applied != self._last_applied or lag == 0:
                self._last_applied, self._since = applied, now
            stalled = now - self._since
            if stalled > self.stall_s:
                return False, f"no progress for {stalled:.0f} s with {lag} messages of lag"
            return True, f"ok: {applied} applied, lag {lag}"


def serve_liveness(port: int, check: Callable[[], tuple[bool, str]],
                   addr: str = "0.0.0.0") -> ThreadingHTTPServer | None:
    """Answer ``GET /livez`` from ``check`` in a daemon thread (nothing when ``port`` is 0)."""
    if port == 0:
        return None

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/livez":
                self.send_error(404)
                return
            alive, reason = check()
            body = reason.encode()
            self.send_response(200 if alive else 503)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:  # probes every few seconds: stay quiet
            pass

    server = ThreadingHTTPServer((addr, port), Handler)
    threading.Thread(target=server.serve_forever, name="liveness", daemon=True).start()
    return server
