"""A migrated feed database for each test."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from kith.common.config import Settings
from kith.common.db import migrate_service


@pytest.fixture
def feed_db(settings: Settings) -> Iterator[psycopg.Connection]:
    dsn = settings.database_url("feed")
    migrate_service(dsn, "kith.feed")
    with psycopg.connect(dsn) as conn:
        yield conn
