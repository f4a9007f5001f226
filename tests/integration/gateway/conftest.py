"""The whole stack once per test module: every service in-process, the gateway over real HTTP.

The session-wide ``infra`` (real PostgreSQL and Kafka) comes from tests/conftest.py;
this module-scoped variant of its ``settings``/``stack`` fixtures gives each test
module its own databases and topics and starts identity, graph, post, feed and
messaging once, then serves ``create_app`` with werkzeug on a free port.
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from kith.common.config import DATABASES, SERVICES, Settings
from kith.common.db import migrate_service
from kith.common.infra.kafka import ensure_topics
from kith.common.infra.postgres import drop_database, ensure_database
from kith.common.service import RunningService, start_service
from kith.feed.entrypoint import fanout_runner
from kith.gateway.app import create_app
from tests.integration.gateway.harness import Gateway, gateway_config, serve_app

STACK_ORDER = ("identity", "graph", "post", "messaging", "feed")
PARTITIONS = 2
_modules = itertools.count(1)


@pytest.fixture(scope="module")
def module_settings(infra: Any) -> Iterator[Settings]:
    prefix = f"g{os.getpid()}_{next(_modules)}"
    settings = Settings(pg_dsn=infra.admin_dsn, kafka_bootstrap=infra.bootstrap,
                        topic_prefix=f"{prefix}.", db_prefix=prefix,
                        topic_partitions=PARTITIONS, log_format="text",
                        access_token_ttl_s=900)
    for service in DATABASES:
        ensure_database(infra.admin_dsn, f"{prefix}_{service}")
        migrate_service(settings.database_url(service), "kith.common")
    ensure_topics(infra.bootstrap, [settings.topic(s) for s in SERVICES], PARTITIONS)
    yield settings
    for service in DATABASES:
        drop_database(infra.admin_dsn, f"{prefix}_{service}")


@pytest.fixture(scope="module")
def stack(module_settings: Settings) -> Iterator[tuple[Settings, dict[str, RunningService]]]:
    settings, running = module_settings, {}
    stop = threading.Event()
    worker: threading.Thread | None = None
    try:
        for name in STACK_ORDER:
            spec = importlib.import_module(f"kith.{name}.entrypoint").SPEC
            service = start_service(spec, settings, address="127.0.0.1:0")
            running[name] = service
            settings = dataclasses.replace(
                settings, grpc_addrs={**settings.grpc_addrs, name: service.address})
        runner = fanout_runner(settings, batch_size=200)  # the feed's fan-out worker
        worker = threading.Thread(target=runner.run, args=(stop,), daemon=True)
        worker.start()
        yield settings, running
    finally:
        stop.set()
        if worker is not None:
            worker.join(30)
        for service in reversed(list(running.values())):
            service.stop()


@pytest.fixture(scope="module")
def gateway(stack: tuple[Settings, dict[str, RunningService]]) -> Iterator[Gateway]:
    settings, running = stack
    app = create_app(settings, gateway_config())
    server, url = serve_app(app)
    try:
        yield Gateway(url, settings, running)
    finally:
        server.shutdown()
        app.extensions["kith"].close()
