"""``kith gateway stream``: ``GET /v1/stream`` served by one asyncio process, no thread per stream.

An open stream is a coroutine and a bounded buffer, so one process holds thousands of them
(``KITH_GATEWAY_STREAMS_PER_PROCESS``, 2,000 by default; docs/operations.md has the budget).
The stream's contract is the Flask gateway's as it was: a bearer token or a single-use
ticket (``?ticket=``), 401/429/503 in the public error shape with ``Retry-After``, the
``retry:`` + ``ready``/``connecting`` preamble, catch-up after ``Last-Event-ID`` (header or
``last_event_id``) then live events, ``: ping`` heartbeats, a maximum lifetime, ``event:
session.expired`` once the token expires or the session ends, slow clients disconnected.

Which events reach whom is :class:`~kith.gateway.live.StreamHub`'s, unchanged: its one Kafka
consumer thread confirms each event per reader over gRPC and hands it to a
:class:`LoopSink`, which moves it into the connection's buffer on the event loop
(``loop.call_soon_threadsafe``). What blocks — verifying a token or a session with identity,
redeeming a ticket in PostgreSQL, reading the log for a catch-up — runs in a small bounded
thread pool (``KITH_GATEWAY_STREAM_THREADS``), never on the loop.

Besides the stream the server answers ``/healthz`` and ``/readyz``; metrics are on the
operations port (``KITH_METRICS_PORT``). In development it can stand in front of the Flask
gateway (``KITH_GATEWAY_STREAM_UPSTREAM``): every other request is passed on unchanged, so
the web app and its ``EventSource`` share one origin, as behind the production Ingress.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import signal
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg
from aiohttp import ClientError, ClientSession, ClientTimeout, web
from psycopg_pool import PoolTimeout

from kith.common.config import Settings
from kith.common.db import migrate_service
from kith.common.logs import request_id
from kith.gateway.app import HTTP_CODES, gateway_pool, sane_request_id, session_check
from kith.gateway.auth import Principal, TokenVerifier
from kith.gateway.clients import Clients
from kith.gateway.config import GatewayConfig
from kith.gateway.errors import ApiError, invalid
from kith.gateway.live import QUEUE_SIZE, StreamEvent, StreamHub, StreamLimitReached
from kith.gateway.metrics import KNOWN_METHODS, REQUESTS, STREAMS
from kith.gateway.routes.media import MAX_MEDIA_BYTES
from kith.gateway.routes.stream import STREAM_QUERY
from kith.gateway.schema import validate
from kith.gateway.tickets import StreamTickets
from kith.gateway.web import CORS_EXPOSE_HEADERS

log = logging.getLogger(__name__)
T = TypeVar("T")
READY_TIMEOUT_S = 10.0
LIMIT_RETRY_AFTER_S = 5
WRITE_TIMEOUT_S = 10.0  # a client that takes no bytes for this long is let go
PING = b": ping\n\n"
EXPIRED = b"event: session.expired\ndata: {}\n\n"
ROUTE = "/v1/stream"
RID = web.RequestKey("request_id", str)
# Headers that describe one hop, never passed on by the development proxy.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                        "te", "trailer", "transfer-encoding", "upgrade", "content-length"})


class OpenBudget:
    """How often one user may open a stream: a token bucket per user, ``per_minute`` deep,
    refilled evenly. Every open may cost a catch-up read of the log (``Last-Event-ID``), so
    a client reconnecting in a loop is answered 429 before it costs anything. Touched only
    on the event loop; at most ``users`` buckets are kept (the least recently used go)."""

    def __init__(self, per_minute: int, users: int = 100_000) -> None:
        self.per_minute = per_minute
        self._users = users
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, when

    def take(self, user_id: str, now: float | None = None) -> float:
        """Spend one open of ``user_id``; return 0, or the seconds until one is due."""
        now = time.monotonic() if now is None else now
        tokens, then = self._buckets.pop(user_id, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - then) * self.per_minute / 60)
        if tokens >= 1:
            tokens -= 1
            wait = 0.0
        else:
            wait = (1 - tokens) * 60 / self.per_minute
        self._buckets[user_id] = (tokens, now)
        if len(self._buckets) > self._users:
            self._buckets.popitem(last=False)
        return wait


class LoopSink:
    """One connection's end of the hub: the hub's thread appends, the event loop drains.

    At most ``size`` events wait; a full sink refuses (the hub then closes the subscription)
    and wakes its connection, which ends so the client reconnects and catches up."""

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int = QUEUE_SIZE) -> None:
        self._loop = loop
        self._size = size
        self._items: deque[StreamEvent | None] = deque()
        self.wake = asyncio.Event()

    def put(self, event: StreamEvent | None) -> bool:
        accepted = event is None or len(self._items) < self._size
        if accepted:
            self._items.append(event)
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening
            self._loop.call_soon_threadsafe(self.wake.set)
        return accepted

    def drain(self) -> list[StreamEvent | None]:
        self.wake.clear()
        out = []
        while self._items:
            out.append(self._items.popleft())
        return out


class StreamServer:
    """The stream server's dependencies and its aiohttp application."""

    def __init__(self, settings: Settings, config: GatewayConfig) -> None:
        self.settings = settings
        self.config = config
        dsn = settings.database_url("gateway")
        migrate_service(dsn, "kith.gateway")  # stream_tickets_spent, as the gateway's
        self.pool = gateway_pool(dsn, max(2, config.stream_threads))
        self.clients = Clients(settings, config.rpc_deadline_s)
        self.verifier = TokenVerifier(settings.jwt_secret, session_check(self.clients),
                                      config.revocation_cache_s)
        self.tickets = StreamTickets(self.pool, settings.jwt_secret, self.verifier)
        self.hub = StreamHub(settings, self.clients, per_user=config.streams_per_user,
                             per_process=config.streams_per_process)
        self.opens = OpenBudget(config.stream_opens_per_minute)
        self.executor = ThreadPoolExecutor(max(1, config.stream_threads),
                                           thread_name_prefix="stream-blocking")
        self._upstream: ClientSession | None = None

    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the bounded executor, awaited."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def app(self) -> web.Application:
        # A body larger than the gateway's own largest (photos) is refused before proxying.
        app = web.Application(middlewares=[self._edge], client_max_size=MAX_MEDIA_BYTES + 65536)
        app.router.add_get(ROUTE, self.stream, allow_head=False)
        app.router.add_get("/healthz", self.healthz, allow_head=False)
        app.router.add_get("/readyz", self.readyz, allow_head=False)
        if self.config.stream_upstream:
            app.router.add_route("*", "/{tail:.*}", self.proxy)
        app.on_cleanup.append(self._close_upstream)
        return app

    def close(self) -> None:
        """End every stream and release the blocking resources (after the loop stopped)."""
        self.hub.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.clients.close()
        self.pool.close()

    # -- GET /v1/stream ----------------------------------------------------------------------

    async def stream(self, request: web.Request) -> web.StreamResponse:
        try:
            principal = await self._caller(request)
            if wait := self.opens.take(principal.user_id):
                raise ApiError(429, "rate_limited", "too many live streams opened; slow down",
                               {"limit": f"{self.opens.per_minute} per minute"},
                               {"Retry-After": str(math.ceil(wait))})
            sink = LoopSink(asyncio.get_running_loop())
            try:
                sub = self.hub.subscribe(principal.user_id, _last_event_id(request), sink)
            except StreamLimitReached as exc:
                raise _refusal(exc) from None
        except ApiError as exc:
            return self._error(request, exc)
        STREAMS.inc()
        REQUESTS.labels("GET", ROUTE, "200").inc()
        try:
            response = web.StreamResponse(headers={
                "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no", **self._cors(request)})
            await response.prepare(request)
            ready = await self._hub_ready()
            await self._write(response, b"retry: 3000\n: " + (b"ready" if ready
                                                              else b"connecting") + b"\n\n")
            if sub.reset or sub.resume_from is not None:  # after Last-Event-ID, before live
                missed = await self.blocking(lambda: list(self.hub.catch_up(sub)))
                if missed:
                    await self._write(response, b"".join(e.encode() for e in missed))
            loop = asyncio.get_running_loop()
            ends = loop.time() + self.config.stream_max_s
            while not sub.closed:
                remaining = ends - loop.time()
                if remaining <= 0:
                    break
                try:
                    await asyncio.wait_for(sink.wake.wait(),
                                           min(self.config.stream_heartbeat_s, remaining))
                    events = sink.drain()
                except TimeoutError:
                    if loop.time() >= ends:
                        break
                    events = []
                if None in events or sub.closed:  # the server stops, or too slow a reader
                    break
                if await self._session_ended(principal):  # before every event, busy or idle
                    await self._write(response, EXPIRED)
                    break
                chunk = b"".join(e.encode() for e in events if e is not None) if events else PING
                await self._write(response, chunk)
        except (ConnectionError, TimeoutError):
            pass  # the client went away or stopped reading
        except Exception:  # the stream has begun: end it; the client reconnects and resumes
            log.exception("live stream failed")
        finally:
            if self.hub.unsubscribe(sub):
                STREAMS.dec()
        return response

    async def _caller(self, request: web.Request) -> Principal:
        """The bearer of ``?ticket=`` (redeemed: single use), else of the Authorization header."""
        ticket = request.query.get("ticket", "")
        if ticket:
            problems = validate(STREAM_QUERY["ticket"], ticket, "ticket")
            if problems:
                raise invalid(problems, "invalid query parameters")
            return await self.blocking(self.tickets.redeem, ticket)
        header = request.headers.get("Authorization")
        principal = self.verifier.decode(header)
        if principal is not None and self.verifier.confirmed_recently(principal):
            return principal
        return await self.blocking(self.verifier.authenticate, header)

    async def _session_ended(self, principal: Principal) -> bool:
        """Expired token, or a signed-out or deleted account (``confirm`` is cached)."""
        if time.time() >= principal.expires_at:
            return True
        if self.verifier.confirmed_recently(principal):
            return False
        try:
            await self.blocking(self.verifier.confirm, principal)
        except ApiError:
            return True
        return False

    async def _hub_ready(self) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.hub.ready.is_set():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    @staticmethod
    async def _write(response: web.StreamResponse, chunk: bytes) -> None:
        await asyncio.wait_for(response.write(chunk), WRITE_TIMEOUT_S)

    # -- the rest ----------------------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        """Ready once the hub reads the log (it starts with the first stream; an idle server
        with no consumer yet is ready too), and the gateway's database answers."""
        def database() -> bool:
            try:
                with self.pool.connection(timeout=2) as conn:
                    conn.execute("SELECT 1")
                return True
            except Exception:  # any failure means "not ready", whatever the driver raised
                return False

        checks = {"database": "ok" if await self.blocking(database) else "unavailable"}
        if checks["database"] != "ok":
            return web.json_response({"status": "not_ready", "checks": checks}, status=503)
        return web.json_response({"status": "ready", "checks": checks})

    async def proxy(self, request: web.Request) -> web.StreamResponse:
        """Development only: pass any other request to the Flask gateway, unchanged."""
        if self._upstream is None:
            self._upstream = ClientSession(auto_decompress=False,
                                           timeout=ClientTimeout(total=None, sock_read=60))
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in HOP_BY_HOP and k.lower() != "host"}
        body = await request.read() if request.body_exists else None
        try:
            async with self._upstream.request(
                    request.method, self.config.stream_upstream + request.rel_url.raw_path_qs,
                    headers=headers, data=body, allow_redirects=False) as upstream:
                response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
                for key, value in upstream.headers.items():
                    if key.lower() not in HOP_BY_HOP:
                        response.headers.add(key, value)
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
                return response
        except ClientError:
            return self._error(request, ApiError(
                503, "unavailable", "the gateway is not answering; retry shortly",
                headers={"Retry-After": "1"}))

    async def _close_upstream(self, app: web.Application) -> None:
        if self._upstream is not None:
            await self._upstream.close()

    @web.middleware
    async def _edge(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """A request id for every request, and aiohttp's own 404/405 in the public shape
        (the Ingress sends any method on /v1/stream here)."""
        request[RID] = sane_request_id(request.headers.get("X-Request-Id"))
        request_id.set(request[RID])  # (proxied requests keep the client's for the gateway)
        try:
            return await handler(request)
        except web.HTTPMethodNotAllowed as exc:
            error = ApiError(405, "method_not_allowed", "this method is not allowed",
                             headers={"Allow": ", ".join(sorted(exc.allowed_methods))})
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            error = ApiError(exc.status, HTTP_CODES.get(exc.status, "http_error"),
                             "no such resource" if exc.status == 404 else exc.reason)
        except (psycopg.OperationalError, PoolTimeout) as exc:  # redeeming a ticket
            log.warning("gateway database unavailable: %s", exc)
            error = ApiError(503, "unavailable", "temporarily unavailable; retry shortly",
                             headers={"Retry-After": "1"})
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            error = ApiError(500, "internal", "something went wrong on our side")
        return self._error(request, error)

    def _cors(self, request: web.Request) -> dict[str, str]:
        """As the gateway's (``KITH_GATEWAY_CORS_ORIGINS``): an ``EventSource`` on another
        origin may read the stream; bearer tokens never travel in cookies."""
        headers = {"X-Request-Id": request[RID]} if RID in request else {}
        origin = request.headers.get("Origin")
        allowed = self.config.cors_origins
        if allowed:
            headers["Vary"] = "Origin"
            if origin and (origin in allowed or "*" in allowed):
                headers["Access-Control-Allow-Origin"] = origin
                headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
        return headers

    def _error(self, request: web.Request, exc: ApiError) -> web.Response:
        if request.path == ROUTE:
            method = request.method if request.method in KNOWN_METHODS else "other"
            REQUESTS.labels(method, ROUTE, str(exc.status)).inc()
        body = json.dumps({"error": {"code": exc.code, "message": exc.message,
                                     "details": exc.details}})
        return web.Response(status=exc.status, text=body, content_type="application/json",
                            headers={**exc.headers, **self._cors(request)})


def _last_event_id(request: web.Request) -> str | None:
    """Where a reconnecting client stopped: the ``Last-Event-ID`` header (what
    ``EventSource`` sends) or the ``last_event_id`` query parameter."""
    return request.headers.get("Last-Event-ID") or request.query.get("last_event_id") or None


def _refusal(exc: StreamLimitReached) -> ApiError:
    headers = {"Retry-After": str(LIMIT_RETRY_AFTER_S)}
    if exc.scope == "user":
        return ApiError(429, "too_many_streams",
                        f"at most {exc.limit} live streams per user may be open at once",
                        {"limit": exc.limit}, headers)
    return ApiError(503, "unavailable", "this server has no room for another live stream;"
                    " retry shortly", headers=headers)


async def start(server: StreamServer, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve ``server`` on ``host:port`` (0: a free port); the runner and the bound port."""
    # handler_cancellation: a client that hangs up frees its slot at once, not at the next ping
    asyncio.get_running_loop().set_default_executor(server.executor)  # no other pool
    runner = web.AppRunner(server.app(), handler_cancellation=True, access_log=None,
                           shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=1024).start()
    return runner, int(runner.addresses[0][1])


def serve(settings: Settings, bind: str | None = None) -> int:
    """Run until SIGTERM/SIGINT; then every open stream ends (clients reconnect elsewhere
    with ``Last-Event-ID``)."""
    from kith.common.metrics import metrics_port, start_metrics_server

    config = GatewayConfig.from_settings(settings)
    host, _, port = (bind or f"0.0.0.0:{config.stream_port}").rpartition(":")
    server = StreamServer(settings, config)
    start_metrics_server(metrics_port(settings.extra))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        runner, bound = await start(server, host or "0.0.0.0", int(port))
        log.info("stream server on %s:%s (at most %d streams, %d per user)", host, bound,
                 config.streams_per_process, config.streams_per_user)
        await stop.wait()
        server.hub.stop()  # every stream ends with its sink's None
        await runner.cleanup()

    try:
        asyncio.run(main())
    finally:
        server.close()
    return 0
