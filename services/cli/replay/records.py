"""One exported Avro record per event: the envelope plus the payload, personal data redacted.

Encrypted fields (:func:`kith.common.crypto.is_encrypted`) are exported as null. The
tool holds no data keys and never decrypts, so no personal data of any user — shredded
or not — can reach an export.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from kith.cli.replay.errors import ReplayError
from kith.common.codec import SchemaRegistry
from kith.common.crypto import is_encrypted
from kith.common.kafka import EventEnvelope

_ENVELOPE_FIELDS: list[dict[str, Any]] = [
    {"name": "_topic", "type": "string"},
    {"name": "_partition", "type": "int"},
    {"name": "_offset", "type": "long"},
    {"name": "_timestamp", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "_stream_id", "type": "string"},
    {"name": "_event_id", "type": "string"},
    {"name": "_stream_version", "type": "long"},
    {"name": "_position", "type": "long"},
    {"name": "_metadata", "type": "string", "doc": "JSON"},
]


def _nullable_strings(schema: Any) -> Any:
    """``schema`` with every string made ``["null", "string"]`` (room for redacted values)."""
    if schema == "string" or (isinstance(schema, dict) and schema.get("type") == "string"):
        return ["null", schema]
    if isinstance(schema, list):
        union: list[Any] = []
        for member in schema:
            made = _nullable_strings(member)
            union += [m for m in (made if isinstance(made, list) else [made]) if m not in union]
        return union
    if isinstance(schema, dict):
        kind = schema.get("type")
        if kind == "record":
            # Defaults go: a default must match a union's first branch, and readers need none.
            return {**schema, "fields": [
                {**{k: v for k, v in f.items() if k != "default"},
                 "type": _nullable_strings(f["type"])} for f in schema["fields"]]}
        if kind == "array":
            return {**schema, "items": _nullable_strings(schema["items"])}
        if kind == "map":
            return {**schema, "values": _nullable_strings(schema["values"])}
    return schema


def _times(schema: Any) -> Any:
    """``schema`` with every ``long`` field named ``*_at_ms`` (epoch milliseconds, the
    convention of Kith's events) given the ``timestamp-millis`` logical type, at any depth."""
    if isinstance(schema, dict) and schema.get("type") == "record":
        return {**schema, "fields": [
            {**f, "type": _as_time(f["type"])} if f["name"].endswith("_at_ms")
            else {**f, "type": _times(f["type"])} for f in schema["fields"]]}
    if isinstance(schema, dict) and schema.get("type") == "array":
        return {**schema, "items": _times(schema["items"])}
    if isinstance(schema, list):
        return [_times(s) for s in schema]
    return schema


def _as_time(kind: Any) -> Any:
    if kind == "long":
        return {"type": "long", "logicalType": "timestamp-millis"}
    if isinstance(kind, list):
        return [_as_time(k) for k in kind]
    return kind


def export_schema(registry: SchemaRegistry, event_type: str) -> dict[str, Any]:
    """The container-file schema of one event type: envelope + nullable-string payload, times
    (``*_at_ms``) as ``timestamp-millis``."""
    raw = json.loads(registry.latest(event_type).path.read_text())
    payload = _nullable_strings(_times(raw))
    for f in payload["fields"]:
        if f["name"].startswith("_"):
            raise ReplayError(f"{event_type}.{f['name']}: payload fields starting with _ clash "
                              "with the export's envelope fields")
    return {**payload, "fields": [*_ENVELOPE_FIELDS, *payload["fields"]]}


def redact(value: Any) -> Any:
    """Replace every encrypted field (at any depth) with None."""
    if is_encrypted(value):
        return None
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def export_record(env: EventEnvelope, timestamp_ms: int, data: dict[str, Any]) -> dict[str, Any]:
    """The exported record of one event: envelope fields, then the redacted payload."""
    return {
        "_topic": env.topic, "_partition": env.partition, "_offset": env.offset,
        "_timestamp": timestamp_ms, "_stream_id": str(env.stream_id),
        "_event_id": str(env.event_id), "_stream_version": env.version,
        "_position": env.position, "_metadata": json.dumps(env.metadata, sort_keys=True),
        **redact(data),
    }


def utc_day(timestamp_ms: int) -> str:
    """The UTC day (``YYYY-MM-DD``) of a Kafka record's timestamp: the export's folder."""
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC).strftime("%Y-%m-%d")
