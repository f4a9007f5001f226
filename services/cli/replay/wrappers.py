"""Projections seen through a wrapper: under another name, or with their tables named."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import psycopg

from kith.common.projection import Event, Projection


class Rebuildable(Projection, Protocol):
    """A projection that can be rebuilt side by side: it names its tables (in ``public``) and
    addresses them unqualified, so that a ``search_path`` can point it at a shadow copy."""

    tables: Sequence[str]


@dataclass
class _Wrapped:
    """Delegates the work of a projection (its topics, ``apply`` and ``reset``) to ``inner``."""

    inner: Projection

    @property
    def topics(self) -> Sequence[str]:
        return self.inner.topics

    def apply(self, conn: psycopg.Connection, events: Sequence[Event]) -> None:
        self.inner.apply(conn, events)

    def reset(self, conn: psycopg.Connection) -> None:
        self.inner.reset(conn)


@dataclass
class Renamed(_Wrapped):
    """The same projection under another name (own consumer group, offsets and versions)."""

    name: str


@dataclass
class WithTables(_Wrapped):
    """A projection with the tables it owns named from outside (see :class:`Rebuildable`)."""

    tables: Sequence[str]

    @property
    def name(self) -> str:
        return self.inner.name
