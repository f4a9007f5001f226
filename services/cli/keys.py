"""``kith keys wrap``: wrap every stored data key under the current key-encryption key.

Run it once when upgrading a database whose keys were stored before wrapping existed
(with ``KITH_KEYS_ACCEPT_UNWRAPPED=true`` on the services meanwhile), and after adding a
new KEK in front of ``KITH_KEY_ENCRYPTION_KEYS`` (rotation): once it reports nothing left
to change, the older KEK can be removed. Idempotent; safe while the services run (each
row is rewritten in place, its key unchanged, so sealed data stays readable throughout).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
from typing import Any

import psycopg

from kith.common import crypto
from kith.common.config import SERVICES, ConfigError, Settings


def _spec(service: str) -> Any:
    return importlib.import_module(f"kith.{service}.entrypoint").SPEC


HOLDERS = [s for s in SERVICES if _spec(s).key_tables]  # the services with key tables


def wrap(settings: Settings, service: str) -> dict[str, int]:
    """Rewrap ``service``'s key tables; rows changed per table. Keys stored before wrapping
    existed are read here whatever ``KITH_KEYS_ACCEPT_UNWRAPPED`` says: wrapping them is the
    point."""
    crypto.use_keyring(dataclasses.replace(settings.keyring(), accept_unwrapped=True))
    with psycopg.connect(settings.database_url(service)) as conn:
        return {table.table: table.rewrap(conn) for table in _spec(service).key_tables}


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "wrap" or any(s not in HOLDERS for s in argv[1:]):
        print(f"usage: kith keys wrap [{'|'.join(HOLDERS)} …]   (default: every one; "
              "needs the service's database and KITH_KEY_ENCRYPTION_KEYS)", file=sys.stderr)
        return 2
    settings = Settings.from_env()
    try:
        for service in argv[1:] or HOLDERS:
            print(json.dumps({"service": service, "rewrapped": wrap(settings, service)}),
                  flush=True)
    except (ConfigError, crypto.KeyUnavailable) as exc:
        print(f"kith keys wrap: {exc}", file=sys.stderr)
        return 1
    return 0
