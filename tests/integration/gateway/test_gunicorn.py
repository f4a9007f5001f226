"""``kith gateway serve``: gunicorn with several workers shares limits and metrics."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from kith_dev.infra.processes import free_port, stop_process
from tests.integration.gateway.harness import Client, Gateway

METRICS_PORT = free_port()


@pytest.fixture(scope="module")
def served(gateway: Gateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    s = gateway.settings
    port = free_port()
    env = {**os.environ, "KITH_PG_DSN": s.pg_dsn or "", "KITH_DB_PREFIX": s.db_prefix,
           "KITH_KAFKA_BOOTSTRAP": s.kafka_bootstrap or "", "KITH_TOPIC_PREFIX": s.topic_prefix,
           "KITH_HOME": str(tmp_path_factory.mktemp("gunicorn")), "KITH_GATEWAY_PORT": str(port),
           "KITH_GATEWAY_WORKERS": "2", "KITH_GATEWAY_THREADS": "4", "KITH_LOG_FORMAT": "text",
           "KITH_GATEWAY_RATE_LIMIT_USER": "8/minute", "KITH_METRICS_PORT": str(METRICS_PORT)}
    env.update({f"KITH_{svc.upper()}_ADDR": addr for svc, addr in s.grpc_addrs.items()})
    log = Path(env["KITH_HOME"]) / "gateway.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "kith.cli", "gateway", "serve",
                                 "--bind", f"127.0.0.1:{port}"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass  # not up yet, or busy starting (a loaded machine): poll again
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        yield url
    finally:
        stop_process(proc, timeout=20)


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
