"""The gateway serves the web app at ``/`` and Swagger UI at ``/docs``; browsers open the
live stream with single-use tickets (``EventSource`` cannot send headers)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kith.gateway.app import create_app
from kith.gateway.tickets import StreamTickets
from kith.gateway.web import default_web_dir
from tests.integration.gateway.harness import (
    Client,
    EventStream,
    Gateway,
    assert_error,
    gateway_config,
    serve_app,
    served_gateway,
)


@contextlib.contextmanager
def gateway_serving(gateway: Gateway, web_dir: Path) -> Iterator[Client]:
    app = create_app(gateway.settings, gateway_config(web_dir=web_dir))
    server, url = serve_app(app)
    try:
        yield Client(url)
    finally:
        server.shutdown()
        app.extensions["kith"].close()


def test_the_built_app_is_served_at_root_with_a_fallback_for_app_routes(gateway: Gateway) -> None:
    dist = default_web_dir()
    if not (dist / "index.html").is_file():
        pytest.fail("the web app is not built: run `make web`", pytrace=False)
    with gateway_serving(gateway, dist) as anon:
        index = anon.get("/")
        assert index.status_code == 200 and '<div id="app">' in index.text
        assert index.headers["Cache-Control"] == "no-cache"
        for route in ("/niches/7b0c9a52-8a4e-4f7e-9d4c-0c1f7e5e2a11", "/join/abc", "/messages"):
            page = anon.get(route)
            assert page.status_code == 200 and page.text == index.text, route
        asset = re.search(r'src="(/assets/[^"]+\.js)"', index.text).group(1)
        js = anon.get(asset)
        assert js.status_code == 200 and "javascript" in js.headers["Content-Type"]
        assert "immutable" in js.headers["Cache-Control"]
        # The API keeps its JSON errors; a missing file is not an app route.
        assert_error(anon.get("/v1/nope"), 404, "not_found")
        assert_error(anon.get("/healthz/extra"), 404, "not_found")
        assert_error(anon.get("/assets/missing.js"), 404, "not_found")
        assert_error(anon.get("/../pyproject.toml"), 404)
        # /docs: Swagger UI from the swagger-ui-dist package, same origin, reading /openapi.json.
        docs = anon.get("/docs")
        assert docs.status_code == 200 and "/docs/swagger-ui-bundle.js" in docs.text
        assert "https://" not in docs.text  # nothing from a CDN
        bundle = anon.get("/docs/swagger-ui-bundle.js")
        assert bundle.status_code == 200 and len(bundle.content) > 100_000
        assert "/openapi.json" in anon.get("/docs/init.js").text


def test_without_a_build_root_says_how_to_build_and_docs_fall_back(
        gateway: Gateway, tmp_path: Path) -> None:
    with gateway_serving(gateway, tmp_path) as anon:
        root = anon.get("/")
        assert root.status_code == 200 and "make web" in root.text
        docs = anon.get("/docs")
        assert docs.status_code == 200 and "/v1/stream/tickets" in docs.text


class TicketHolder:
    """Opens ``/v1/stream`` the way a browser's EventSource does: no headers, a ticket."""

    def __init__(self, client: Client, ticket: str) -> None:
        self.anon, self.ticket = client.anonymous(), ticket

    def get(self, path: str, **kw: Any) -> Any:
        return self.anon.get(f"{path}?ticket={self.ticket}", **kw)


def ticket_for(client: Client) -> str:
    resp = client.post("/v1/stream/tickets")
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["expires_in"] == 60
    return body["ticket"]


def test_a_stream_ticket_opens_one_stream_once(gateway: Gateway) -> None:
    ann, ben = gateway.signup("tixann"), gateway.signup("tixben")
    assert_error(gateway.client().post("/v1/stream/tickets"), 401, "unauthenticated")
    niche = ann.post("/v1/niches", {"name": "Tickets", "kind": "friends"}).json()
    code = ann.post(f"/v1/niches/{niche['id']}/invites", {}).json()["code"]
    assert ben.post(f"/v1/invites/{code}/accept").status_code == 200

    ticket = ticket_for(ben)
    stream = EventStream(TicketHolder(ben, ticket))  # type: ignore[arg-type]
    try:
        ann.post(f"/v1/niches/{niche['id']}/posts", {"text": "over a ticket"})
        assert stream.next("feed.entry")["text"] == "over a ticket"
        reused = ben.anonymous().get(f"/v1/stream?ticket={ticket}")
        assert_error(reused, 401, "unauthenticated")
        assert "ticket" in reused.json()["error"]["message"]
    finally:
        stream.close()
    for forged in (ticket[:-4] + "AAAA", "not-a-ticket", "x" * 300):
        assert_error(ben.anonymous().get(f"/v1/stream?ticket={forged}"), 401, "unauthenticated")


def test_expired_tickets_and_tickets_of_ended_sessions_are_refused(gateway: Gateway) -> None:
    cat = gateway.signup("tixcat")
    verifier_less = StreamTickets(None, gateway.settings.jwt_secret, None, ttl_s=-1)  # type: ignore[arg-type]
    principal = type("P", (), {"token": cat.token})()
    expired = verifier_less.issue(principal)  # type: ignore[arg-type]
    assert_error(cat.anonymous().get(f"/v1/stream?ticket={expired}"), 401, "unauthenticated")

    ticket = ticket_for(cat)
    assert cat.delete("/v1/sessions/current").status_code == 204
    assert_error(cat.anonymous().get(f"/v1/stream?ticket={ticket}"), 401, "session_revoked")


def test_only_the_configured_origins_may_call_the_api_from_a_browser(gateway: Gateway) -> None:
    app = create_app(gateway.settings, gateway_config(cors_origins=("http://app.example",)))
    server, url = serve_app(app)
    try:
        anon = Client(url)
        preflight = anon.request("OPTIONS", "/v1/niches", headers={
            "Origin": "http://app.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"})
        assert preflight.status_code == 200
        assert preflight.headers["Access-Control-Allow-Origin"] == "http://app.example"
        assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
        assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
        assert "Access-Control-Allow-Credentials" not in preflight.headers
        denied = anon.get("/v1/me", headers={"Origin": "http://evil.example"})
        assert_error(denied, 401)
        assert "Access-Control-Allow-Origin" not in denied.headers
        allowed = anon.post("/v1/sessions", {"username": "nobody_here", "password": "x" * 10},
                            headers={"Origin": "http://app.example"})
        assert allowed.headers["Access-Control-Allow-Origin"] == "http://app.example"
        assert "Retry-After" in allowed.headers["Access-Control-Expose-Headers"]
    finally:
        server.shutdown()
        app.extensions["kith"].close()
    # Without configured origins nothing is granted.
    plain = gateway.client().get("/healthz", headers={"Origin": "http://app.example"})
    assert "Access-Control-Allow-Origin" not in plain.headers


def test_an_allowed_origin_may_read_the_stream_from_a_browser(gateway: Gateway) -> None:
    with served_gateway(gateway.settings, cors_origins=("http://app.example",)) as origin:
        ann = gateway.signup("corsann")
        ann.at(origin)
        ticket = ticket_for(ann)
        allowed = ann.anonymous().get(f"/v1/stream?ticket={ticket}", stream=True,
                                      headers={"Origin": "http://app.example"})
        try:
            assert allowed.status_code == 200
            assert allowed.headers["Access-Control-Allow-Origin"] == "http://app.example"
        finally:
            allowed.close()
        denied = ann.anonymous().get("/v1/stream", headers={"Origin": "http://evil.example"})
        assert_error(denied, 401)
        assert "Access-Control-Allow-Origin" not in denied.headers
