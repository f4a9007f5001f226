"""``kith gateway serve``: the Flask app behind gunicorn, started programmatically.

gunicorn runs ``workers`` processes of ``threads`` threads each (``gthread``, see
:class:`GatewayWorker`). The
long-lived ``GET /v1/stream`` is not among their work: ``kith gateway stream``
(:mod:`kith.gateway.stream_server`) serves it without a thread per connection. The app is
built in each worker after the fork, so every process has its own gRPC channels and
database pool. Prometheus metrics are collected
across workers through ``PROMETHEUS_MULTIPROC_DIR`` (set up by the entry point).
"""

from __future__ import annotations

import os
import time
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

from kith.common.config import Settings
from kith.gateway.config import GatewayConfig


class GatewayServer(BaseApplication):
    def __init__(self, settings: Settings, config: GatewayConfig, bind: str | None = None) -> None:
        self.settings = settings
        self.config = config
        self.bind = bind or f"0.0.0.0:{settings.gateway_port}"
        super().__init__()

    def load_config(self) -> None:
        options: dict[str, Any] = {
            "bind": self.bind,
            "workers": max(1, self.config.workers),
            "threads": max(1, self.config.threads),
            "worker_class": "kith.gateway.server.GatewayWorker",
            "timeout": 30,
            "graceful_timeout": 20,
            "keepalive": 5,
            "accesslog": None,
            "proc_name": "kith-gateway",
            "child_exit": _child_exit,
            "when_ready": _serve_metrics(self.settings),
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from kith.gateway.app import create_app  # in the worker, after the fork

        return create_app(self.settings, self.config)


class GatewayWorker(ThreadWorker):
    """gunicorn's ``gthread`` worker, with its once-per-loop housekeeping done once a second.

    The worker's loop wakes twice per request (the request arriving, its thread finishing)
    and each time touched its heartbeat file (``utime``) and asked for its parent's pid: two
    system calls per wake-up that only need to happen once a second (the master's timeout is
    30 s; an orphaned worker still stops within a second).
    """

    _next_beat = 0.0
    _parent_checked = 0.0

    def notify(self) -> None:
        now = time.monotonic()
        if now >= self._next_beat:
            self._next_beat = now + 1.0
            super().notify()

    def is_parent_alive(self) -> bool:
        now = time.monotonic()
        if now - self._parent_checked < 1.0 and self.alive:
            return True
        self._parent_checked = now
        return bool(super().is_parent_alive())


def _serve_metrics(settings: Settings) -> Any:
    """gunicorn's ``when_ready`` hook: the master serves every worker's metrics on the
    operations port (``KITH_METRICS_PORT``), never on the public one."""
    def when_ready(server: Any) -> None:
        from kith.common.metrics import metrics_port
        from kith.gateway.metrics import serve_metrics

        serve_metrics(metrics_port(settings.extra))

    return when_ready


def _child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)


def serve(settings: Settings, bind: str | None = None) -> int:
    """Run until SIGTERM/SIGINT (gunicorn's own signal handling, graceful)."""
    GatewayServer(settings, GatewayConfig.from_settings(settings), bind).run()
    return 0
