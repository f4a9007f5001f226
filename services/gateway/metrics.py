"""Prometheus metrics: request counts and latency by route, method and status.

Under granian each worker is a process, so ``kith gateway serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before any worker starts;
``/metrics`` then aggregates every worker's files. Without it (tests, a single
process) the default registry is served.

``/metrics`` is served on the operations port (``KITH_METRICS_PORT``, by the
server's main process), never on the public API port. Label values come from fixed
sets only — the route template (or ``unmatched``), a known method (or
``other``) and the status — so clients cannot mint new series.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

REQUESTS = Counter("kith_gateway_requests_total", "HTTP requests handled",
                   ["method", "route", "status"])
LATENCY = Histogram("kith_gateway_request_duration_seconds", "HTTP request latency",
                    ["method", "route", "status"],
                    buckets=(.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5, 10))
STREAMS = Gauge("kith_gateway_stream_connections", "open /v1/stream connections",
                multiprocess_mode="livesum")


KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def observer() -> Callable[[Response], None]:
    """An ``after_request`` step counting the response and its latency since ``g.started``
    (set by the gateway's ``before_request``; a request refused before it is not counted)."""
    # The (counter, histogram) children per label set: ``labels()`` validates and locks on
    # every call; the set of label values is bounded (routes x methods x statuses).
    children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(response: Response) -> None:
        started = g.get("started")
        if started is None:
            return
        rule = request.url_rule
        route = rule.rule if rule is not None else "unmatched"
        method = request.method
        if method not in KNOWN_METHODS:
            method = "other"
        labels = (method, route, response.status_code)
        found = children.get(labels)
        if found is None:
            text = (method, route, str(response.status_code))
            found = children[labels] = (REQUESTS.labels(*text), LATENCY.labels(*text))
        found[0].inc()
        found[1].observe(time.perf_counter() - started)

    return observe


def registry() -> CollectorRegistry:
    """Every worker's metrics under ``kith gateway serve``; this process's otherwise."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        collected = CollectorRegistry()
        multiprocess.MultiProcessCollector(collected)
        return collected
    return REGISTRY


def render() -> Response:
    return Response(generate_latest(registry()), mimetype=CONTENT_TYPE_LATEST)


def serve_metrics(port: int, addr: str = "0.0.0.0") -> bool:
    """Serve ``/metrics`` on the operations ``port`` (0: not at all); whether it started."""
    if port == 0:
        return False
    start_http_server(port, addr=addr, registry=registry())
    return True


class RefuseUnknownMethods:
    """WSGI middleware: a method the API does not use is a 405 before any routing or work."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "") in KNOWN_METHODS:
            return self.app(environ, start_response)
        body = (b'{"error": {"code": "method_not_allowed", "message": "this method is not '
                b'allowed", "details": {}}}')
        start_response("405 METHOD NOT ALLOWED", [
            ("Content-Type", "application/json"), ("Content-Length", str(len(body))),
            ("Allow", ", ".join(sorted(KNOWN_METHODS)))])
        return [body]
