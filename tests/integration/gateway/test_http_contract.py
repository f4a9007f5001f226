"""The HTTP framework over the real stack: error shape, limits, idempotency, ops endpoints."""

from __future__ import annotations

import concurrent.futures
import hashlib
import re
import uuid

from flask import Response
from psycopg_pool import ConnectionPool

from kith.gateway.app import create_app
from kith.gateway.idempotency import IdempotencyStore
from kith.gateway.ratelimit import RateLimits
from tests.integration.gateway.harness import Gateway, assert_error, gateway_config, serve_app


def test_unknown_paths_methods_and_big_bodies_use_the_error_shape(gateway: Gateway) -> None:
    anon = gateway.client()
    assert_error(anon.get("/v1/nope"), 404, "not_found")
    resp = anon.request("PUT", "/v1/accounts")
    assert_error(resp, 405, "method_not_allowed")
    assert "POST" in resp.headers["Allow"]
    huge = {"username": "x" * (70 * 1024), "password": "p" * 10, "display_name": "X"}
    assert_error(anon.post("/v1/accounts", huge), 413, "payload_too_large")


def test_bad_input_is_a_400_naming_the_fields(gateway: Gateway) -> None:
    anon = gateway.client()
    resp = anon.post("/v1/accounts", data=b"{not json", headers={"Content-Type":
                                                                  "application/json"})
    assert assert_error(resp, 400, "invalid_argument")["details"] == {
        "body": "must be a valid JSON document"}
    details = assert_error(anon.post("/v1/accounts", {"username": "A!", "password": 3,
                                                       "display_name": "ok", "admin": True}),
                           400)["details"]
    assert set(details) == {"username", "password", "admin"}
    user = gateway.signup("val")
    details = assert_error(user.get("/v1/niches?limit=0"), 400)["details"]
    assert "limit" in details
    assert "cursor" in assert_error(user.get("/v1/niches?cursor=forged.x"), 400)["details"]
    # A malformed id can name nothing: 404, like any invisible resource.
    assert_error(user.get("/v1/niches/not-a-uuid"), 404)


def test_authentication_is_required_and_checked(gateway: Gateway) -> None:
    anon = gateway.client()
    resp = anon.get("/v1/me")
    assert_error(resp, 401, "unauthenticated")
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    anon.token = "not.a.jwt"
    assert_error(anon.get("/v1/me"), 401)
    user = gateway.signup("auth")
    me = user.get("/v1/me").json()
    assert me["id"] == user.user_id and me["username"] == user.username
    assert user.delete("/v1/sessions/current").status_code == 204
    assert_error(user.get("/v1/me"), 401)  # revoked at once (cache disabled in tests)


def test_sessions_refresh_and_reuse_detection(gateway: Gateway) -> None:
    user = gateway.signup("refresher")
    anon = gateway.client()
    first = anon.post("/v1/sessions", {"username": user.username,
                                       "password": "correct horse battery"}).json()
    second = anon.post("/v1/sessions/refresh", {"refresh_token": first["refresh_token"]})
    assert second.status_code == 201 and second.json()["refresh_token"] != first["refresh_token"]
    assert_error(anon.post("/v1/sessions/refresh", {"refresh_token": first["refresh_token"]}),
                 401)
    assert_error(anon.post("/v1/sessions", {"username": user.username, "password": "wrong-pw"}),
                 401)


def test_idempotency_key_replays_and_never_executes_twice(gateway: Gateway) -> None:
    user = gateway.signup("idem")
    key = {"Idempotency-Key": uuid.uuid4().hex}
    body = {"name": "Once", "kind": "friends"}
    first = user.post("/v1/niches", body, headers=key)
    again = user.post("/v1/niches", body, headers=key)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert_error(user.post("/v1/niches", {**body, "name": "Other"}, headers=key), 422,
                 "idempotency_key_reused")
    # The same key is independent per user.
    other = gateway.signup("idem2")
    assert other.post("/v1/niches", body, headers=key).json()["id"] != first.json()["id"]

    racing = {"Idempotency-Key": uuid.uuid4().hex}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: user.post("/v1/niches", {"name": "Race",
                                                                   "kind": "custom"},
                                                    headers=racing), range(8)))
    statuses = sorted(r.status_code for r in results)
    assert set(statuses) <= {201, 409} and 201 in statuses
    ids = {r.json()["id"] for r in results if r.status_code == 201}
    assert len(ids) == 1
    names = [n["name"] for n in user.get("/v1/niches?limit=100").json()["items"]]
    assert names.count("Race") == 1 and names.count("Once") == 1

    # A 4xx outcome is replayed too; a fresh key really retries.
    key409 = {"Idempotency-Key": uuid.uuid4().hex}
    taken = {"username": user.username, "password": "long enough pw", "display_name": "X"}
    assert_error(gateway.client().post("/v1/accounts", taken, headers=key409), 409,
                 "username_taken")
    replay = gateway.client().post("/v1/accounts", taken, headers=key409)
    assert replay.status_code == 409 and replay.headers["Idempotent-Replayed"] == "true"


def test_operations_endpoints(gateway: Gateway) -> None:
    anon = gateway.client()
    assert anon.get("/healthz").json() == {"status": "ok"}
    ready = anon.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert set(ready.json()["checks"]) >= {"identity", "graph", "post", "messaging", "database"}
    spec = anon.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert "/v1/niches/{niche_id}/members/{user_id}" in spec["paths"]
    assert "post" in spec["paths"]["/v1/conversations/{conversation_id}/messages"]
    docs = anon.get("/docs")  # Swagger UI, or the static listing without a web build (test_web)
    assert docs.status_code == 200 and docs.headers["Content-Type"].startswith("text/html")
    metrics = anon.get("/metrics").text
    assert 'kith_gateway_requests_total{method="GET",route="/healthz",status="200"}' in metrics
    assert "kith_gateway_request_duration_seconds_bucket" in metrics


def test_rate_limits_per_ip_and_per_user_answer_429_with_retry_after(gateway: Gateway) -> None:
    limits = RateLimits(per_user="3/minute", per_ip="6/minute", sign_in="100/minute")
    app = create_app(gateway.settings, gateway_config(rate_limits=limits))
    server, url = serve_app(app)
    try:
        user = gateway.signup("limited")
        user.base_url = url
        statuses = [user.get("/v1/me").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        resp = user.get("/v1/me")
        assert_error(resp, 429, "rate_limited")
        assert int(resp.headers["Retry-After"]) >= 1
        anon = gateway.client()
        anon.base_url = url
        codes = [anon.get("/v1/niches").status_code for _ in range(7)]
        first = codes.index(429)  # the IP budget (6) is shared with the user's calls above
        assert 0 < first <= 6 and set(codes[:first]) == {401} and set(codes[first:]) == {429}
        assert anon.get("/healthz").status_code == 200  # operations endpoints are exempt
    finally:
        server.shutdown()
        app.extensions["kith"].close()


def test_sign_in_is_throttled_per_ip_and_username(gateway: Gateway) -> None:
    limits = RateLimits(per_user="100/minute", per_ip="100/minute", sign_in="2/minute")
    app = create_app(gateway.settings, gateway_config(rate_limits=limits))
    server, url = serve_app(app)
    try:
        anon = gateway.client()
        anon.base_url = url
        guesses = [anon.post("/v1/sessions", {"username": "victim", "password": "guess"})
                   for _ in range(3)]
        assert [g.status_code for g in guesses] == [401, 401, 429]
        assert "Retry-After" in guesses[-1].headers
        other = anon.post("/v1/sessions", {"username": "someone_else", "password": "guess"})
        assert other.status_code == 401
    finally:
        server.shutdown()
        app.extensions["kith"].close()


def test_only_safe_request_ids_are_kept_and_others_are_replaced(gateway: Gateway) -> None:
    anon = gateway.client()
    body = {"password": "long enough pw", "display_name": "Rid"}
    kept = anon.post("/v1/accounts", {**body, "username": f"rid_{uuid.uuid4().hex[:8]}"},
                     headers={"X-Request-Id": "req-1.A_b"})
    assert kept.status_code == 201 and kept.headers["X-Request-Id"] == "req-1.A_b"
    # Printable but not gRPC metadata: once, any of these made every endpoint a 502.
    for sent in ("café-1", "a b", "x" * 65, "semi;colon"):
        resp = anon.post("/v1/accounts", {**body, "username": f"rid_{uuid.uuid4().hex[:8]}"},
                         headers={"X-Request-Id": sent.encode("latin-1")})
        assert resp.status_code == 201, (sent, resp.text)
        rid = resp.headers["X-Request-Id"]
        assert rid != sent and re.fullmatch(r"[A-Za-z0-9._-]{1,64}", rid)


def test_an_unfinished_idempotency_claim_is_never_run_again(gateway: Gateway) -> None:
    """A process that died mid-request may have committed: its key answers 409 until expiry."""
    with ConnectionPool(gateway.settings.database_url("gateway"), min_size=1, max_size=1,
                        kwargs={"autocommit": True}, open=True) as pool:
        store = IdempotencyStore(pool, "idem-secret", ttl_s=3600)  # stale after 60 s
        runs: list[int] = []

        def execute() -> Response:
            runs.append(1)
            return Response("{}", status=201, mimetype="application/json")

        fresh = store.run("u1", "k-young", "POST", "/v1/x", b"{}", execute)
        assert fresh.status_code == 201 and runs == [1]
        with pool.connection() as conn:  # claims left by a crashed process
            for key, age_s in (("k-young", 1), ("k-crashed", 120), ("k-expired", 7200)):
                conn.execute(
                    "INSERT INTO idempotency_keys (scope, key, fingerprint, created_at)"
                    " VALUES ('u1', %s, %s, now() - make_interval(secs => %s))"
                    " ON CONFLICT (scope, key) DO UPDATE SET status = NULL, body = NULL,"
                    " created_at = EXCLUDED.created_at",
                    (key, hashlib.sha256(b"POST\n/v1/x\n{}").digest(), age_s))

        young = store.run("u1", "k-young", "POST", "/v1/x", b"{}", execute)
        assert_response_error(young, 409, "idempotency_in_progress")
        assert young.headers["Retry-After"] == "1"
        crashed = store.run("u1", "k-crashed", "POST", "/v1/x", b"{}", execute)
        assert_response_error(crashed, 409, "idempotency_in_progress")
        assert 3400 <= int(crashed.headers["Retry-After"]) <= 3480  # until the key expires
        assert runs == [1]
        expired = store.run("u1", "k-expired", "POST", "/v1/x", b"{}", execute)
        assert expired.status_code == 201 and runs == [1, 1]


def assert_response_error(resp: Response, status: int, code: str) -> None:
    assert resp.status_code == status
    assert resp.get_json()["error"]["code"] == code
