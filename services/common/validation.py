"""Boundary validation of gRPC requests: collect every bad field, then refuse them together.

A servicer builds one :class:`Fields` per request, reads each field through it
(getting a normalised value back) and calls :meth:`Fields.done`, which raises a
single :class:`~kith.common.errors.InvalidArgument` whose ``details`` name every
problem (``{"field": "reason"}``). Values returned for bad fields are
placeholders: they are never used, because ``done()`` raises first.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, overload

from kith.common.errors import InvalidArgument

MAX_IDS = 1000
MAX_LIMIT = 100
T = TypeVar("T")


class Fields:
    """The problems found so far in one request, keyed by field name."""

    def __init__(self) -> None:
        self.problems: dict[str, Any] = {}

    def add(self, name: str, reason: str) -> None:
        """Record a problem that no helper below covers."""
        self.problems[name] = reason

    def uuid(self, name: str, value: str) -> str:
        """``value`` in canonical UUID form; empty is "is required"."""
        try:
            return str(uuid.UUID(value))
        except ValueError:
            self.add(name, "must be a UUID" if value else "is required")
            return value

    def optional_uuid(self, name: str, value: str) -> str | None:
        """Like :meth:`uuid`, but empty means absent (``None``)."""
        return self.uuid(name, value) if value else None

    def uuids(self, name: str, values: Sequence[str], max_ids: int = MAX_IDS) -> list[str]:
        """At most ``max_ids`` UUIDs in canonical form; one problem covers the whole list."""
        if len(values) > max_ids:
            self.add(name, f"at most {max_ids} ids")
            return []
        try:
            return [str(uuid.UUID(v)) for v in values]
        except ValueError:
            self.add(name, "every id must be a UUID")
            return []

    def required(self, name: str, value: str, max_chars: int | None = None) -> str:
        """A non-empty string of at most ``max_chars`` characters (unbounded if ``None``)."""
        if not value:
            self.add(name, "is required")
        elif max_chars is not None and len(value) > max_chars:
            self.add(name, f"must be at most {max_chars} characters")
        return value

    def limit(self, value: int, default: int, maximum: int = MAX_LIMIT) -> int:
        """A page size of 1..``maximum``; 0 (unset) means ``default``."""
        if not 0 <= value <= maximum:
            self.add("limit", f"must be 1 to {maximum} (0 means {default})")
        return value or default

    def at_least(self, name: str, value: int, minimum: int) -> int:
        """An integer no smaller than ``minimum``."""
        if value < minimum:
            self.add(name, f"must be at least {minimum}")
        return value

    @overload
    def rule(self, check: Callable[..., T], *args: Any, fallback: T) -> T: ...

    @overload
    def rule(self, check: Callable[..., object], *args: Any) -> None: ...

    def rule(self, check: Callable[..., Any], *args: Any, fallback: Any = None) -> Any:
        """``check(*args)`` — a domain ``check_*`` rule — or ``fallback`` if it refuses.

        The refusal's field-level details join the others, so the boundary reuses the
        domain's own rules and the two never disagree.
        """
        try:
            return check(*args)
        except InvalidArgument as exc:
            self.problems.update(exc.details)
            return fallback

    def done(self) -> None:
        """Raise ``InvalidArgument`` naming every bad field, if there is any."""
        if self.problems:
            raise InvalidArgument("invalid request: " + ", ".join(sorted(self.problems)),
                                  details=self.problems)
