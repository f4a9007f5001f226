"""A migrated feed database for each test."""

from __future__ import annotations

import pytest

from kith.common.config import Settings
from kith.common.db import migrate_service


@pytest.fixture
def feed_dsn(settings: Settings) -> str:
    dsn = settings.database_url("feed")
    migrate_service(dsn, "kith.feed")
    return dsn
