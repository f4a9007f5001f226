"""Health, readiness and the API's own description.

Prometheus metrics are not here: they are served on the operations port
(``KITH_METRICS_PORT``, :func:`kith.gateway.metrics.serve_metrics`), never on
the public API port.
"""

from __future__ import annotations

from flask import Response

from kith.gateway.clients import DEPENDENCIES
from kith.gateway.openapi import docs_page, document
from kith.gateway.operations import api
from kith.gateway.schema import map_of, obj, string
from kith.gateway.views import Call, Reply
from kith.gateway.web import docs_html

TAG = "operations"


@api.operation("GET", "/healthz", summary="Liveness: the process answers", tag=TAG, auth=False,
               response=obj({"status": string()}, closed=False))
def healthz(call: Call) -> Reply:
    return Reply(200, {"status": "ok"})


@api.operation("GET", "/readyz",
               summary="Readiness: the gateway's database reachable; each gRPC dependency "
                       "reported (one away degrades its routes, not the pod)",
               tag=TAG, auth=False, errors=(503,),
               response=obj({"status": string(), "checks": map_of(string())}, closed=False))
def readyz(call: Call) -> Reply:
    """Ready (200) while the gateway's own database answers. A gRPC service that is away makes
    only its routes answer 503 ``unavailable``: failing readiness for it would take every
    gateway pod out of the load balancer at once and the healthy routes with them. Its check
    reads ``unavailable`` and the status ``degraded``."""
    checks = {name: "ok" if call.gw.clients.healthy(name) else "unavailable"
              for name in DEPENDENCIES}
    try:
        with call.gw.pool.connection(timeout=2) as conn:
            conn.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception:  # any failure means "not ready", whatever the driver raised
        checks["database"] = "unavailable"
    if checks["database"] != "ok":
        return Reply(503, {"status": "not_ready", "checks": checks})
    degraded = any(v != "ok" for v in checks.values())
    return Reply(200, {"status": "degraded" if degraded else "ready", "checks": checks})


@api.operation("GET", "/openapi.json", summary="This OpenAPI 3 document", tag=TAG, auth=False,
               response=obj({"openapi": string()}, closed=False))
def openapi_json(call: Call) -> Reply:
    return Reply(200, document(api.operations))


@api.operation("GET", "/docs", summary="Browse and try the API (Swagger UI)", tag=TAG,
               auth=False)
def docs(call: Call) -> Response:
    page = docs_html(call.gw.config.web_dir)
    if page is None:  # the web build (which carries Swagger UI) is missing
        page = docs_page(document(api.operations))
    return Response(page, mimetype="text/html")
