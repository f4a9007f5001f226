"""``kith gateway serve``: the Flask app behind granian (WSGI), started programmatically.

granian's connection handling and HTTP/1.1 parsing are Rust (hyper on tokio): a worker's
Python threads only run the app, never a connection loop. The main process binds the port,
forks ``workers`` processes and serves every worker's Prometheus metrics on the operations
port; each worker runs the app on a pool of ``threads`` Python threads. The long-lived
``GET /v1/stream`` is not among their work: ``kith gateway stream``
(:mod:`kith.gateway.stream_server`) serves it without a thread per connection.

* The app is built in each worker after the fork (:func:`_load_app`), so every process has
  its own gRPC channels and database pool. Metrics are collected across workers through
  ``PROMETHEUS_MULTIPROC_DIR`` (set up by the entry point; a dead worker's counters stay in
  the sums; the workers hold no live gauges).
* SIGTERM/SIGINT: the port closes, each worker stops accepting and finishes the requests it
  has started (at most :data:`GRACEFUL_TIMEOUT_S`, then it is killed).
* A worker that dies is replaced (``respawn_failed_workers``); a replacement that dies
  again within seconds stops the server (a crash loop: the orchestrator restarts it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server.mp import MPServer

from kith.common.config import Settings
from kith.gateway.config import GatewayConfig

GRACEFUL_TIMEOUT_S = 20  # below Kubernetes' terminationGracePeriodSeconds (30)
HEADER_READ_TIMEOUT_MS = 5_000  # for a request's headers; also closes idle kept-alive connections
# granian's own log records go to the root logger (``kith.common.logs``'s format); the access
# log stays off, as before: requests are counted by the metrics.
_LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {},
    "loggers": {"_granian": {"propagate": True}, "granian.access": {"propagate": True}},
}

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def build_server(settings: Settings, config: GatewayConfig, bind: str | None = None) -> MPServer:
    """The granian server of ``kith gateway serve`` (not started)."""
    host, _, port = (bind or f"0.0.0.0:{settings.gateway_port}").rpartition(":")
    server = MPServer(
        "kith.gateway.app:create_app",  # named for granian's logs; the loader below builds it
        address=host.strip("[]") or "0.0.0.0",
        port=int(port),
        interface=Interfaces.WSGI,
        workers=max(1, config.workers),
        blocking_threads=max(1, config.threads),
        http=HTTPModes.http1,
        http1_settings=HTTP1Settings(keep_alive=True, header_read_timeout=HEADER_READ_TIMEOUT_MS),
        websockets=False,
        log_level=LogLevels.info,
        log_dictconfig=_LOGGING,
        log_access=False,
        respawn_failed_workers=True,
        workers_kill_timeout=GRACEFUL_TIMEOUT_S,
    )
    server.on_startup(partial(_serve_metrics, settings))
    return server


def _load_app(settings: Settings, config: GatewayConfig) -> WsgiApp:
    """Called in each worker after the fork: the app, its pools and channels, per process."""
    from kith.gateway.app import create_app

    app: WsgiApp = create_app(settings, config)
    return app


def _serve_metrics(settings: Settings) -> None:
    """The main process serves every worker's metrics on the operations port
    (``KITH_METRICS_PORT``), never on the public one."""
    from kith.common.metrics import metrics_port
    from kith.gateway.metrics import serve_metrics

    serve_metrics(metrics_port(settings.extra))


def serve(settings: Settings, bind: str | None = None) -> int:
    """Run until SIGTERM/SIGINT (graceful: requests under way finish)."""
    config = GatewayConfig.from_settings(settings)
    logging.getLogger(__name__).info("gateway: %d workers x %d threads", config.workers,
                                     config.threads)
    build_server(settings, config, bind).serve(
        target_loader=partial(_load_app, settings, config), wrap_loader=False)
    return 0
