"""Media events (``media.events.v1``): one stream per photo; they never carry image bytes.

Each dataclass mirrors the newest Avro schema in ``schemas/media/<Name>.v<N>.avsc``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from kith.common.events import from_data as common_from_data

CARRIER_DELETED = "carrier_deleted"  # MediaDetached.reason
ACCOUNT_DELETED = "account_deleted"  # MediaPurged.reason
EXPIRED = "expired"  # MediaPurged.reason: never attached within the TTL


@dataclass(frozen=True)
class MediaUploaded:
    TYPE: ClassVar[str] = "kith.media.MediaUploaded"
    media_id: str
    uploader_id: str
    content_type: str
    width: int
    height: int
    bytes: int
    uploaded_at_ms: int


@dataclass(frozen=True)
class MediaAttached:
    TYPE: ClassVar[str] = "kith.media.MediaAttached"
    media_id: str
    uploader_id: str
    carrier_kind: str
    carrier_id: str
    parent_id: str
    position: int
    attached_at_ms: int


@dataclass(frozen=True)
class MediaDetached:
    TYPE: ClassVar[str] = "kith.media.MediaDetached"
    media_id: str
    uploader_id: str
    carrier_kind: str
    carrier_id: str
    reason: str
    detached_at_ms: int


@dataclass(frozen=True)
class MediaPurged:
    TYPE: ClassVar[str] = "kith.media.MediaPurged"
    media_id: str
    uploader_id: str
    reason: str
    purged_at_ms: int


MediaEvent = MediaUploaded | MediaAttached | MediaDetached | MediaPurged
EVENT_TYPES: dict[str, type[MediaEvent]] = {
    cls.TYPE: cls for cls in (MediaUploaded, MediaAttached, MediaDetached, MediaPurged)
}


def from_data(event_type: str, data: dict[str, Any]) -> MediaEvent:
    return common_from_data(EVENT_TYPES, event_type, data)
