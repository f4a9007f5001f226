"""Readiness degrades per route: one gRPC service away must not take every gateway pod out of
the load balancer (the pods would all fail together, healthy routes included)."""

from __future__ import annotations

import dataclasses
import socket

from kith.common.config import Settings
from kith.common.service import RunningService
from kith.gateway.app import create_app
from tests.integration.gateway.harness import Client, gateway_config, serve_app


def _dead_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"  # closed again: nothing listens there


def test_a_missing_service_degrades_readiness_and_only_its_own_routes(
    stack: tuple[Settings, dict[str, RunningService]],
) -> None:
    settings, _ = stack
    without_feed = dataclasses.replace(
        settings, grpc_addrs={**settings.grpc_addrs, "feed": _dead_address()})
    app = create_app(without_feed, gateway_config())
    server, url = serve_app(app)
    try:
        anon = Client(url)
        ready = anon.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "degraded"
        assert ready.json()["checks"]["feed"] == "unavailable"
        assert ready.json()["checks"]["identity"] == "ok"

        # Identity's routes still work through this pod; the feed's answer 503.
        created = anon.post("/v1/accounts", {"username": f"ready_{url[-5:]}",
                                             "password": "correct horse battery",
                                             "display_name": "Ready"})
        assert created.status_code == 201, created.text
        session = anon.post("/v1/sessions", {"username": f"ready_{url[-5:]}",
                                             "password": "correct horse battery"}).json()
        me = Client(url, session["access_token"], session["user_id"])
        feed = me.get("/v1/feed")
        assert feed.status_code == 503, feed.text
        assert feed.json()["error"]["code"] == "unavailable"
    finally:
        server.shutdown()
        app.extensions["kith"].close()
