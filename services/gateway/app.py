"""The Flask application factory: ``create_app(settings)``.

One app per process (server worker): it migrates and pools the gateway's own
database (idempotency keys, rate-limit counters), builds the gRPC clients,
registers every operation of :data:`kith.gateway.operations.api`, and renders every
failure — including Flask's own 404/405/413 — in the public error shape.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import psycopg
from flask import Flask, Response, g, request
from flask.sessions import NullSession, SessionInterface
from limits import parse
from psycopg_pool import ConnectionPool, PoolTimeout
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from kith.common import tracing
from kith.common.config import Settings
from kith.common.db import migrate_service
from kith.common.logs import request_id
from kith.gateway import metrics, routes
from kith.gateway.auth import Principal, SessionCheck, TokenVerifier
from kith.gateway.clients import Clients
from kith.gateway.config import GatewayConfig
from kith.gateway.errors import ApiError, error_response, from_rpc_error
from kith.gateway.idempotency import IdempotencyStore
from kith.gateway.operations import api
from kith.gateway.pagination import Cursors
from kith.gateway.proxies import TrustedProxies, parse_cidrs
from kith.gateway.ratelimit import (
    Limit,
    RateLimiter,
    RateLimits,
    account_key,
    install_limiter,
    refresh_key,
    sign_in_ip_key,
    sign_in_key,
    user_rate_key_with,
)
from kith.gateway.tickets import StreamTickets
from kith.gateway.views import make_view
from kith.gateway.web import install_cors, install_web
from kith.protos import identity_pb2

log = logging.getLogger(__name__)
# A client's X-Request-Id travels on as gRPC metadata, which admits only visible ASCII.
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
              413: "payload_too_large", 415: "unsupported_media_type"}


@dataclass
class Gateway:
    """The per-process dependencies every handler reaches through ``call.gw``."""

    settings: Settings
    config: GatewayConfig
    clients: Clients
    verifier: TokenVerifier
    idempotency: IdempotencyStore
    cursors: Cursors
    pool: ConnectionPool
    tickets: StreamTickets

    purger: Purger | None = None

    def close(self) -> None:
        if self.purger is not None:
            self.purger.stop()
        self.clients.close()
        self.pool.close()


class _NoSessions(SessionInterface):
    """The gateway keeps no cookie sessions (bearer tokens only): one shared null session
    instead of one made per request; nothing is ever saved."""

    _null = NullSession()

    def open_session(self, app: Flask, request: Any) -> NullSession:
        return self._null

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        return None


class GatewayFlask(Flask):
    """Flask, routing every request as it does, with two per-request costs made once:
    whether a view or hook is a coroutine is asked once per function instead of at every
    call (``inspect`` on each hook and view), and no session is opened."""

    session_interface = _NoSessions()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        try:
            return self._sync[func]
        except KeyError:
            sync = super().ensure_sync(func)
            if len(self._sync) < 4096:  # views, hooks, handlers: a fixed set (bounded anyway)
                self._sync[func] = sync
            return sync
        except TypeError:  # unhashable
            return super().ensure_sync(func)


def create_app(settings: Settings, config: GatewayConfig | None = None) -> Flask:
    config = config or GatewayConfig.from_settings(settings)
    if not tracing.enabled():
        tracing.configure("gateway", settings.extra)  # in each worker, after the server's fork
    dsn = settings.database_url("gateway")
    migrate_service(dsn, "kith.gateway")
    pool = gateway_pool(dsn, max(4, config.threads))
    clients = Clients(settings, config.rpc_deadline_s)
    verifier = TokenVerifier(settings.jwt_secret, session_check(clients),
                             config.revocation_cache_s)
    settings.check_secrets()
    cursor_secret, idempotency_secret = config.secrets_for(settings)
    idempotency = IdempotencyStore(pool, idempotency_secret)
    gw = Gateway(settings, config, clients, verifier, idempotency, Cursors(cursor_secret),
                 pool, StreamTickets(pool, settings.jwt_secret, verifier))

    if config.idempotency_purge_s > 0:
        gw.purger = Purger(idempotency, config.idempotency_purge_s)

    app = GatewayFlask("kith.gateway")
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["kith"] = gw
    if config.trusted_proxy_cidrs:  # X-Forwarded-For only from the configured proxies
        app.wsgi_app = TrustedProxies(  # type: ignore[method-assign]
            app.wsgi_app, parse_cidrs(",".join(config.trusted_proxy_cidrs)))
    elif config.trusted_proxies:  # legacy hop count: only safe when nobody bypasses the proxy
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=config.trusted_proxies)  # type: ignore
    app.wsgi_app = metrics.RefuseUnknownMethods(app.wsgi_app)  # type: ignore[method-assign]
    if tracing.enabled():  # configured (KITH_OTLP_ENDPOINT) or installed before the app
        tracing.instrument_flask(app)
    limiter = install_limiter(pool, config.rate_limits, verifier)
    _install_request_hooks(app, limiter if config.rate_limits.enabled else None)
    _install_error_handlers(app)

    routes.load()
    for op in api.operations:
        if op.server != "gateway":  # GET /v1/stream: `kith gateway stream` serves it
            continue
        view = make_view(op, gw)
        if config.rate_limits.enabled and (
                own := _route_limits(op.operation_id, config.rate_limits, verifier)):
            # The scope repeats the endpoint, as flask-limiter built it: counters keep their keys.
            view = limiter.wrap(view, [
                Limit(parse(limit), key, f"{op.operation_id}:{op.operation_id}:{key.__name__}")
                for limit, key in own])
        app.add_url_rule(op.flask_rule, endpoint=op.operation_id, view_func=view,
                         methods=[op.method])
    install_web(app, config.web_dir)
    install_cors(app, config.cors_origins)
    return app


class Purger:
    """Deletes expired idempotency records every ``interval_s`` (a daemon thread)."""

    def __init__(self, store: IdempotencyStore, interval_s: float) -> None:
        self._store = store
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="idempotency-purge",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._store.purge_expired()
            except psycopg.Error:
                log.warning("purging expired idempotency records failed; will retry",
                            exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _route_limits(operation_id: str, limits: RateLimits,
                  verifier: TokenVerifier) -> list[tuple[str, Callable[[], str]]]:
    """The extra limits of abuse-prone routes, each with the key it counts by."""
    if operation_id == "create_session":
        return [(limits.sign_in, sign_in_key), (limits.sign_in_per_ip, sign_in_ip_key),
                (limits.sign_in_per_account, account_key)]
    if operation_id == "create_account":
        return [(limits.sign_in, sign_in_key), (limits.sign_in_per_ip, sign_in_ip_key)]
    if operation_id == "refresh_session":
        return [(limits.sign_in, refresh_key)]
    if operation_id == "change_password":
        return [(limits.password_change, user_rate_key_with(verifier))]
    return []


def gateway_pool(dsn: str, size: int) -> ConnectionPool:
    """Autocommit connections: every gateway statement stands alone, one round trip each."""
    pool = ConnectionPool(dsn, min_size=2, max_size=size, name="gateway", open=False,
                          kwargs={"autocommit": True})
    pool.open(wait=True, timeout=30)
    return pool


def session_check(clients: Clients) -> SessionCheck:
    def check(principal: Principal) -> None:
        try:
            reply = clients.identity.VerifyToken(
                identity_pb2.VerifyTokenRequest(access_token=principal.token))
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        if reply.user_id != principal.user_id:
            raise ApiError(401, "unauthenticated", "the session has ended")

    return check


def _install_request_hooks(app: Flask, limiter: RateLimiter | None) -> None:
    """One hook before and one after every request (each hook is a call through Flask's
    machinery): bind the request id and start the latency timer *before* the application
    rate limits are checked, so a request refused 429 still carries its own request id and
    is counted in the metrics; after: the ``RateLimit-*`` headers, the metrics, the id."""
    observe = metrics.observer()
    check = limiter.check_application if limiter is not None else None
    rate_headers = limiter.headers if limiter is not None else None

    @app.before_request
    def begin() -> None:
        request_id.set(sane_request_id(request.environ.get("HTTP_X_REQUEST_ID")))
        g.started = time.perf_counter()
        if check is not None:
            check()

    @app.after_request
    def finish(response: Response) -> Response:
        if rate_headers is not None:
            rate_headers(response)
        observe(response)
        if rid := request_id.get():
            response.headers["X-Request-Id"] = rid
        return response


def sane_request_id(sent: str | None) -> str:
    """The client's request id if it is 1-64 of ``[A-Za-z0-9._-]``, else a fresh one."""
    return sent if sent and REQUEST_ID.fullmatch(sent) else os.urandom(8).hex()


def _install_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(exc: ApiError) -> Response:
        return exc.response()

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        response = error_response(status, HTTP_CODES.get(status, "http_error"),
                                  exc.description or exc.name)
        if status == 405 and (allowed := exc.get_response().headers.get("Allow")):
            response.headers["Allow"] = allowed
        return response

    @app.errorhandler(psycopg.OperationalError)
    @app.errorhandler(PoolTimeout)
    def database_unavailable(exc: Exception) -> Response:
        log.warning("gateway database unavailable: %s", exc)
        return error_response(503, "unavailable", "temporarily unavailable; retry shortly",
                              headers={"Retry-After": "1"})

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal", "something went wrong on our side")
