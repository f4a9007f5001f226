"""Domain events as frozen dataclasses: the mapping to and from the event store's form.

A service's event dataclass mirrors its Avro schema field for field and names its
type in a ``TYPE`` class variable, so recording is ``asdict`` and reading back is
``cls(**data)`` (fields that later schema versions add are ignored by older code).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any, ClassVar, Protocol, TypeVar

from kith.common.eventstore import NewEvent


class DomainEvent(Protocol):
    TYPE: ClassVar[str]


E = TypeVar("E")


def to_new_event(event: DomainEvent) -> NewEvent:
    """The store's form of a decided event."""
    return NewEvent(event.TYPE, asdict(event))  # type: ignore[call-overload]


def from_data(classes: Mapping[str, type[E]], event_type: str, data: Mapping[str, Any]) -> E:
    """A decoded payload as the dataclass registered for ``event_type`` in ``classes``."""
    cls = classes[event_type]
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})
