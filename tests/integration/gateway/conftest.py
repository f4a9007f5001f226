"""The whole stack once per test module: every service in-process, the gateway over real HTTP.

The session-wide ``infra`` (real PostgreSQL and Kafka) comes from tests/conftest.py;
this module-scoped variant of its ``settings``/``stack`` fixtures gives each test
module its own databases and topics and starts identity, graph, post, feed and
messaging once, then serves ``create_app`` with werkzeug on a free port and the stream
server (``GET /v1/stream``) in front of it on another.
"""

from __future__ import annotations

import importlib
import itertools
import os
import threading
from collections.abc import Iterator

import pytest

from kith.common.config import Settings
from kith.common.service import RunningService
from kith.feed.entrypoint import fanout_runner
from tests.integration.gateway.harness import Gateway, gateway_config, serving_gateway
from tests.support.environment import Infra, ServiceStack, isolated_settings

STACK_ORDER = ("identity", "graph", "post", "messaging", "media", "feed")  # feed calls media
PARTITIONS = 2
_modules = itertools.count(1)


@pytest.fixture(scope="module")
def module_settings(infra: Infra) -> Iterator[Settings]:
    prefix = f"g{os.getpid()}_{next(_modules)}"
    with isolated_settings(infra, prefix, PARTITIONS, access_token_ttl_s=900) as settings:
        yield settings


@pytest.fixture(scope="module")
def stack(module_settings: Settings) -> Iterator[tuple[Settings, dict[str, RunningService]]]:
    services = ServiceStack(module_settings)
    stop = threading.Event()
    worker: threading.Thread | None = None
    try:
        for name in STACK_ORDER:
            services.start(importlib.import_module(f"kith.{name}.entrypoint").SPEC)
        runner = fanout_runner(services.settings, batch_size=200)  # the fan-out worker
        worker = threading.Thread(target=runner.run, args=(stop,), daemon=True)
        worker.start()
        yield services.settings, services.running
    finally:
        stop.set()
        if worker is not None:
            worker.join(30)
        services.stop()


@pytest.fixture(scope="module")
def gateway(stack: tuple[Settings, dict[str, RunningService]]) -> Iterator[Gateway]:
    settings, running = stack
    with serving_gateway(settings, running, gateway_config()) as served:
        yield served
