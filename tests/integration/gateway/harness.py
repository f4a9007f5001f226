"""Helpers for the gateway's HTTP tests: a small client, a served gateway, polling.

A served gateway is two servers, as in production: the Flask app (every route but the live
stream) and the asyncio stream server (``GET /v1/stream``), which also passes every other
request on to the Flask app, so that it is the one origin a browser sees (as ``make run``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests
from werkzeug.serving import BaseWSGIServer, make_server

from kith.common.config import Settings
from kith.common.service import RunningService
from kith.gateway.app import create_app
from kith.gateway.config import GatewayConfig
from kith.gateway.ratelimit import RateLimits
from kith.gateway.stream_server import StreamServer, start


class Client:
    """A tiny HTTP client bound to the gateway under test and, once signed in, to a user.

    ``GET /v1/stream`` goes to ``stream_url`` (the stream server), everything else to
    ``base_url``, as the production Ingress routes them."""

    def __init__(self, base_url: str, token: str | None = None, user_id: str | None = None,
                 username: str | None = None, stream_url: str | None = None) -> None:
        self.base_url = base_url
        self.stream_url = stream_url or base_url
        self.token = token
        self.user_id = user_id
        self.username = username
        self.http = requests.Session()

    def at(self, origin: str) -> None:
        """From now on talk to another gateway's one origin (its stream server in front)."""
        self.base_url = self.stream_url = origin

    def request(self, method: str, path: str, body: Any = None, *,
                headers: dict[str, str] | None = None, **kwargs: Any) -> requests.Response:
        all_headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        all_headers.update(headers or {})
        stream = method == "GET" and path.partition("?")[0] == "/v1/stream"
        url = (self.stream_url if stream else self.base_url) + path
        return self.http.request(method, url, json=body, headers=all_headers, timeout=15,
                                 **kwargs)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.request("POST", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.request("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.request("DELETE", path, **kw)

    def anonymous(self) -> Client:
        return Client(self.base_url, stream_url=self.stream_url)


@dataclass
class Gateway:
    url: str  # the Flask app
    settings: Settings
    services: dict[str, RunningService]
    origin: str = ""  # the stream server: GET /v1/stream itself, the rest passed to ``url``
    stream: StreamServer | None = None

    def client(self) -> Client:
        return Client(self.url, stream_url=self.origin or None)

    def signup(self, name: str, password: str = "correct horse battery") -> Client:
        """A new account (unique username derived from ``name``) with a signed-in client."""
        anon = self.client()
        username = f"{name}_{uuid.uuid4().hex[:8]}"
        created = anon.post("/v1/accounts", {"username": username, "password": password,
                                             "display_name": name.title()})
        assert created.status_code == 201, created.text
        session = anon.post("/v1/sessions", {"username": username, "password": password})
        assert session.status_code == 201, session.text
        tokens = session.json()
        return Client(self.url, tokens["access_token"], tokens["user_id"], username,
                      self.origin or None)


def assert_error(resp: requests.Response, status: int, code: str | None = None) -> dict:
    """Assert the public error shape with ``status`` (and ``code``); return the error."""
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code
    return error


def try_stream(client: Client) -> requests.Response:
    """``GET /v1/stream``: a refusal is read and closed; an open stream is the caller's to close."""
    resp = client.get("/v1/stream", stream=True)
    if resp.status_code != 200:
        resp.content  # noqa: B018 - read the (small) error body before closing
        resp.close()
    return resp


def serve_app(app: Any) -> tuple[BaseWSGIServer, str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


@contextlib.contextmanager
def served_stream(settings: Settings, config: GatewayConfig, upstream: str
                  ) -> Iterator[tuple[str, StreamServer]]:
    """The stream server over ``settings`` in front of the gateway at ``upstream``, on its own
    event loop in one thread, until the block ends; yields its URL and the server."""
    server = StreamServer(settings, dataclasses.replace(config, stream_upstream=upstream))
    loop = asyncio.new_event_loop()
    bound: list[Any] = []
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            bound.extend(loop.run_until_complete(start(server, "127.0.0.1", 0)))
        finally:
            started.set()
        loop.run_forever()
        loop.run_until_complete(bound[0].cleanup())
        loop.close()

    thread = threading.Thread(target=run, name="stream-server-loop", daemon=True)
    thread.start()
    assert started.wait(30) and bound, "the stream server did not start"
    try:
        yield f"http://127.0.0.1:{bound[1]}", server
    finally:
        server.hub.stop()  # every open stream ends
        loop.call_soon_threadsafe(loop.stop)
        thread.join(15)
        server.close()


@contextlib.contextmanager
def serving_gateway(settings: Settings, services: dict[str, RunningService],
                    config: GatewayConfig) -> Iterator[Gateway]:
    """The Flask app and the stream server in front of it, until the block ends."""
    app = create_app(settings, config)
    server, url = serve_app(app)
    try:
        with served_stream(settings, config, url) as (origin, stream):
            yield Gateway(url, settings, services, origin, stream)
    finally:
        server.shutdown()
        app.extensions["kith"].close()


@contextlib.contextmanager
def served_gateway(settings: Settings, **config: Any) -> Iterator[str]:
    """A further gateway over ``settings`` with its own config (and stream hub, limits,
    idempotency store), served until the block ends; yields its one origin."""
    with serving_gateway(settings, {}, gateway_config(**config)) as gateway:
        yield gateway.origin


def gateway_config(**overrides: Any) -> GatewayConfig:
    base = GatewayConfig(threads=10, revocation_cache_s=0.0, stream_heartbeat_s=0.5,
                         stream_opens_per_minute=100_000,
                         rate_limits=RateLimits(per_user="100000/minute",
                                                per_ip="100000/minute",
                                                sign_in="100000/minute"))
    return dataclasses.replace(base, **overrides)




class EventStream:
    """A connected ``GET /v1/stream``, parsed into ``(event, data)`` pairs in the background."""

    def __init__(self, client: Client) -> None:
        self.events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.ready = threading.Event()
        self._response = client.get("/v1/stream", stream=True)
        assert self._response.status_code == 200, self._response.text
        assert self._response.headers["Content-Type"].startswith("text/event-stream")
        threading.Thread(target=self._read, daemon=True).start()
        assert self.ready.wait(15), "the stream never became ready"

    def _read(self) -> None:
        event = None
        try:
            for line in self._response.iter_lines(decode_unicode=True):
                if line == ": ready":
                    self.ready.set()
                elif line.startswith("event: "):
                    event = line[len("event: "):]
                elif line.startswith("data: ") and event:
                    self.events.put((event, json.loads(line[len("data: "):])))
                    event = None
        except (requests.RequestException, AttributeError, ValueError):
            pass  # closed by the test

    def next(self, event: str, timeout: float = 10.0) -> dict[str, Any]:
        """The next event of type ``event`` (others are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {event} event within {timeout} s"
            try:
                name, data = self.events.get(timeout=remaining)
            except queue.Empty:
                continue
            if name == event:
                return data

    def drain(self, wait: float = 0.5) -> list[tuple[str, dict[str, Any]]]:
        time.sleep(wait)
        out = []
        while not self.events.empty():
            out.append(self.events.get_nowait())
        return out

    def close(self) -> None:
        self._response.close()
