"""The endpoints, one module per resource; importing a module registers its operations."""

from __future__ import annotations

import importlib

MODULES = ("ops", "accounts", "niches", "posts", "feeds", "messaging", "stream", "media")


def load() -> None:
    """Register every operation (idempotent: modules import once)."""
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}")
