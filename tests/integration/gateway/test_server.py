"""``kith gateway serve`` (granian): workers share limits and metrics; the server keeps the
HTTP behaviour the app relies on (body limit, keep-alive, request ids, client address),
finishes requests under way on SIGTERM, and replaces a worker that dies."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from kith.gateway.config import GatewayConfig
from kith.gateway.server import HEADER_READ_TIMEOUT_MS
from kith_dev.infra.processes import free_port, stop_process
from tests.integration.gateway.harness import Client, Gateway

METRICS_PORT = free_port()
LIMIT = GatewayConfig().max_body_bytes  # the default KITH_GATEWAY_MAX_BODY_BYTES
ROOT = Path(__file__).resolve().parents[3]


def _wait_for(url: str, proc: subprocess.Popen[bytes], log: Path, path: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(url + path, timeout=1).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass  # not up yet, or busy starting (a loaded machine): poll again
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)


@pytest.fixture(scope="module")
def served(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    s = gateway.settings
    port = free_port()
    env = {**os.environ, "KITH_PG_DSN": s.pg_dsn or "", "KITH_DB_PREFIX": s.db_prefix,
           "KITH_KAFKA_BOOTSTRAP": s.kafka_bootstrap or "", "KITH_TOPIC_PREFIX": s.topic_prefix,
           "KITH_HOME": str(tmp_path_factory.mktemp("served")), "KITH_GATEWAY_PORT": str(port),
           "KITH_GATEWAY_WORKERS": "2", "KITH_GATEWAY_THREADS": "4", "KITH_LOG_FORMAT": "text",
           "KITH_GATEWAY_RATE_LIMIT_USER": "8/minute", "KITH_METRICS_PORT": str(METRICS_PORT),
           "KITH_GATEWAY_TRUSTED_PROXY_CIDRS": "127.0.0.1/32",
           "KITH_GATEWAY_RATE_LIMIT_SIGN_IN_IP": "3/minute"}
    env.update({f"KITH_{svc.upper()}_ADDR": addr for svc, addr in s.grpc_addrs.items()})
    log = Path(env["KITH_HOME"]) / "gateway.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "kith.cli", "gateway", "serve",
                                 "--bind", f"127.0.0.1:{port}"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url, proc, log, "/readyz")
        yield url
    finally:
        stop_process(proc, timeout=30)


def test_workers_share_rate_limits_and_metrics(gateway: Gateway, served: str) -> None:
    user = gateway.signup("gunny")
    client = Client(served, user.token)
    # Fresh connections spread the calls over both workers; the budget is still 8 in all.
    codes = [requests.get(served + "/v1/me", headers={"Authorization": f"Bearer {user.token}",
                                                      "Connection": "close"},
                          timeout=5).status_code for _ in range(10)]
    assert codes == [200] * 8 + [429] * 2
    assert client.get("/v1/me").headers["Retry-After"]
    # Metrics are on the operations port only, never on the public one.
    assert requests.get(served + "/metrics", timeout=5).status_code == 404
    metrics = requests.get(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=5).text
    line = next(x for x in metrics.splitlines()
                if x.startswith("kith_gateway_requests_total{") and 'route="/v1/me"' in x
                and 'status="200"' in x)
    assert float(line.rsplit(" ", 1)[1]) == 8.0


def test_one_kept_alive_connection_carries_many_requests_each_with_its_id(served: str) -> None:
    conn = http.client.HTTPConnection(served.removeprefix("http://"), timeout=5)
    conn.request("GET", "/healthz", headers={"X-Request-Id": "mine-1"})
    first = conn.getresponse()
    first.read()
    sock = conn.sock
    conn.request("GET", "/healthz", headers={"X-Request-Id": "not mine é"})
    second = conn.getresponse()
    second.read()
    conn.request("GET", "/v1/nothing-here")
    third = conn.getresponse()
    body = third.read()
    assert conn.sock is sock  # the same connection served all three
    assert (first.status, second.status, third.status) == (200, 200, 404)
    assert first.getheader("X-Request-Id") == "mine-1"
    fresh = second.getheader("X-Request-Id") or ""
    assert len(fresh) == 16 and fresh != "mine-1"
    assert b'"not_found"' in body
    conn.close()


def test_a_body_over_the_limit_is_413_in_the_error_shape(served: str) -> None:
    big = b'{"username": "' + b"x" * 70_000 + b'", "password": "p"}'
    resp = requests.post(served + "/v1/sessions", data=big, timeout=10,
                         headers={"Content-Type": "application/json"})
    assert resp.status_code == 413, resp.text
    assert resp.json()["error"]["code"] == "payload_too_large"


def in_chunks(body: bytes) -> Iterator[bytes]:
    """The body sent without a Content-Length (chunked transfer encoding)."""
    for start in range(0, len(body), 8192):
        yield body[start:start + 8192]


def test_a_chunked_body_over_the_limit_is_413_and_one_at_the_limit_is_read_whole(
        served: str) -> None:
    sign_in = b'{"username": "nobody", "password": "not this one"}'
    over = sign_in[:-1] + b" " * (LIMIT + 1 - len(sign_in)) + b"}"
    resp = requests.post(served + "/v1/sessions", data=in_chunks(over), timeout=10,
                         headers={"Content-Type": "application/json"})
    assert resp.status_code == 413, resp.text  # not a 400 for JSON cut at the limit
    assert resp.json()["error"]["code"] == "payload_too_large"

    at_limit = sign_in[:-1] + b" " * (LIMIT - len(sign_in)) + b"}"
    resp = requests.post(served + "/v1/sessions", data=in_chunks(at_limit), timeout=10,
                         headers={"Content-Type": "application/json"})
    assert resp.status_code == 401, resp.text  # read whole and parsed: wrong credentials


def test_the_client_address_comes_from_a_trusted_proxys_forwarded_for(served: str) -> None:
    """Sign-in attempts are limited per client address (3/minute here): behind the trusted
    proxy (this host), two clients named by ``X-Forwarded-For`` have a budget each."""
    def attempt(client_ip: str) -> int:
        return requests.post(served + "/v1/sessions", timeout=5,
                             json={"username": "nobody-here", "password": "wrong password 1"},
                             headers={"X-Forwarded-For": f"{client_ip}, 127.0.0.1"}).status_code

    first = [attempt("203.0.113.7") for _ in range(4)]
    assert first == [401, 401, 401, 429]
    assert attempt("203.0.113.8") == 401


@pytest.fixture
def tiny(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A tiny app (``served_tiny``) behind the gateway's server: one worker, two threads."""
    port = free_port()
    env = {**os.environ, "KITH_HOME": str(tmp_path), "KITH_METRICS_PORT": "0",
           "KITH_GATEWAY_WORKERS": "1", "KITH_GATEWAY_THREADS": "2"}
    log = tmp_path / "tiny.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tests.integration.gateway.served_tiny",
                                 "--bind", f"127.0.0.1:{port}"], env=env, cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url, proc, log, "/")
        yield url, proc
    finally:
        stop_process(proc, timeout=30)


def test_sigterm_lets_a_request_under_way_finish_then_stops(
        tiny: tuple[str, subprocess.Popen[bytes]]) -> None:
    url, proc = tiny
    idle = http.client.HTTPConnection(url.removeprefix("http://"), timeout=5)
    idle.request("GET", "/")  # a kept-alive connection left idle must not hold the shutdown
    idle.getresponse().read()
    answers: list[requests.Response] = []
    slow = threading.Thread(target=lambda: answers.append(requests.get(url + "/slow",
                                                                       timeout=10)))
    slow.start()
    time.sleep(0.5)  # the slow request is under way
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    slow.join(10)
    assert [a.status_code for a in answers] == [200]
    assert proc.wait(15) == 0
    assert time.monotonic() - started < 10
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/", timeout=2)


def test_a_worker_that_dies_is_replaced(tiny: tuple[str, subprocess.Popen[bytes]]) -> None:
    url, proc = tiny
    before = requests.get(url + "/", timeout=5).text
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/crash", timeout=5)
    deadline = time.monotonic() + 20
    after = None
    while after is None and time.monotonic() < deadline:
        try:
            after = requests.get(url + "/", timeout=2).text
        except requests.ConnectionError:
            time.sleep(0.2)  # between the death and the replacement
    assert after is not None and after != before  # another worker process answers
    assert proc.poll() is None


def test_an_idle_kept_alive_connection_is_closed_after_the_header_timeout(
        tiny: tuple[str, subprocess.Popen[bytes]]) -> None:
    url, _ = tiny
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: tiny\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        sock.settimeout(HEADER_READ_TIMEOUT_MS / 1000 + 5)
        started = time.monotonic()
        assert sock.recv(1) == b""  # closed by the server, not by us
        assert time.monotonic() - started >= HEADER_READ_TIMEOUT_MS / 1000 - 1
