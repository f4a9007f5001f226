"""Health, readiness and the API's own description.

Prometheus metrics are not here: they are served on the operations port
(``KITH_METRICS_PORT``, :func:`kith.gateway.metrics.serve_metrics`), never on
the public API port.
"""

from __future__ import annotations

from flask import Response

from kith.gateway.api import api
from kith.gateway.clients import DEPENDENCIES
from kith.gateway.http import Call, Reply
from kith.gateway.openapi import docs_page, document
from kith.gateway.schema import map_of, obj, string

TAG = "operations"


@api.operation("GET", "/healthz", summary="Liveness: the process answers", tag=TAG, auth=False,
               response=obj({"status": string()}, closed=False))
def healthz(call: Call) -> Reply:
    return Reply(200, {"status": "ok"})


@api.operation("GET", "/readyz", summary="Readiness: database and every gRPC dependency reachable",
               tag=TAG, auth=False, errors=(503,),
               response=obj({"status": string(), "checks": map_of(string())}, closed=False))
def readyz(call: Call) -> Reply:
    checks = {name: "ok" if call.gw.clients.healthy(name) else "unavailable"
              for name in DEPENDENCIES}
    try:
        with call.gw.pool.connection(timeout=2) as conn:
            conn.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception:  # any failure means "not ready", whatever the driver raised
        checks["database"] = "unavailable"
    ready = all(v == "ok" for v in checks.values())
    return Reply(200 if ready else 503, {"status": "ready" if ready else "not_ready",
                                         "checks": checks})


@api.operation("GET", "/openapi.json", summary="This OpenAPI 3 document", tag=TAG, auth=False,
               response=obj({"openapi": string()}, closed=False))
def openapi_json(call: Call) -> Reply:
    return Reply(200, document(api.operations))


@api.operation("GET", "/docs", summary="Browse the API (HTML)", tag=TAG, auth=False)
def docs(call: Call) -> Response:
    return Response(docs_page(document(api.operations)), mimetype="text/html")
