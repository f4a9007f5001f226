"""Prometheus metrics: request counts and latency by route, method and status.

Under gunicorn each worker is a process, so ``kith gateway serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before any worker starts;
``/metrics`` then aggregates every worker's files. Without it (tests, a single
process) the default registry is served.
"""

from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter("kith_gateway_requests_total", "HTTP requests handled",
                   ["method", "route", "status"])
LATENCY = Histogram("kith_gateway_request_duration_seconds", "HTTP request latency",
                    ["method", "route", "status"],
                    buckets=(.001, .0025, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5, 10))
STREAMS = Gauge("kith_gateway_stream_connections", "open /v1/stream connections",
                multiprocess_mode="livesum")


def install_metrics(app: Flask) -> None:
    @app.before_request
    def start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def observe(response: Response) -> Response:
        started = g.get("started")
        if started is not None:
            route = request.url_rule.rule if request.url_rule else "unmatched"
            labels = (request.method, route, str(response.status_code))
            REQUESTS.labels(*labels).inc()
            LATENCY.labels(*labels).observe(time.perf_counter() - started)
        return response


def render() -> Response:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        data = generate_latest(registry)
    else:
        data = generate_latest(REGISTRY)
    return Response(data, mimetype=CONTENT_TYPE_LATEST)
