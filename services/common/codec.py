"""Avro event payloads in single-object encoding, decodable without a registry server.

Schemas live in ``schemas/<service>/<EventName>.v<N>.avsc``; every earlier
version stays in the tree. The newest version of a record is the writer's
schema and the reader's; a payload written with any earlier version is read by
looking its writer schema up by fingerprint and resolving it to the newest.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, cast

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

MAGIC = b"\xc3\x01"
_FILE = re.compile(r"^(?P<name>[A-Za-z0-9_]+)\.v(?P<version>\d+)\.avsc$")


class CodecError(ValueError):
    """A payload or schema cannot be encoded or decoded."""


class UnknownSchemaError(CodecError):
    """A payload was written with a schema this reader does not have (yet): deploy the
    schemas to readers before writers use them; the record itself may be fine."""


@dataclass(frozen=True)
class SchemaVersion:
    full_name: str  # e.g. kith.graph.MemberJoined
    version: int
    parsed: dict[str, Any]
    fingerprint: bytes  # CRC-64-AVRO, 8 bytes little-endian as written on the wire
    path: Path


def default_schemas_dir() -> Path:
    """``KITH_SCHEMAS_DIR``, else the repository's ``schemas/`` folder."""
    env = os.environ.get("KITH_SCHEMAS_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "schemas"


def _crc64(parsed: dict[str, Any]) -> bytes:
    hex_fp = fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO")
    # fastavro returns the 64-bit value as big-endian hex; the wire format is little-endian.
    return int(hex_fp, 16).to_bytes(8, "little")


class SchemaRegistry:
    """All event schemas of ``schemas_dir``, by record name and by fingerprint."""

    def __init__(self, schemas_dir: Path | None = None) -> None:
        self.schemas_dir = schemas_dir or default_schemas_dir()
        self._by_fp: dict[bytes, SchemaVersion] = {}
        self._versions: dict[str, list[SchemaVersion]] = {}
        if not self.schemas_dir.is_dir():
            raise CodecError(f"no schemas folder at {self.schemas_dir} (set KITH_SCHEMAS_DIR)")
        for path in sorted(self.schemas_dir.glob("*/*.avsc")):
            match = _FILE.match(path.name)
            if not match:
                raise CodecError(f"{path}: schema files are named <EventName>.v<N>.avsc")
            raw = json.loads(path.read_text())
            parsed = cast("dict[str, Any]", fastavro.parse_schema(raw, _write_hint=False))
            full_name = raw["name"] if "." in raw["name"] else f"{raw['namespace']}.{raw['name']}"
            version = SchemaVersion(full_name, int(match["version"]), parsed, _crc64(parsed), path)
            self._by_fp[version.fingerprint] = version
            self._versions.setdefault(full_name, []).append(version)
        for versions in self._versions.values():
            versions.sort(key=lambda v: v.version)

    def names(self) -> list[str]:
        return sorted(self._versions)

    def versions(self, full_name: str) -> list[SchemaVersion]:
        try:
            return self._versions[full_name]
        except KeyError:
            raise CodecError(f"unknown event type {full_name!r}") from None

    def latest(self, full_name: str) -> SchemaVersion:
        return self.versions(full_name)[-1]

    def by_fingerprint(self, fp: bytes) -> SchemaVersion:
        try:
            return self._by_fp[fp]
        except KeyError:
            raise UnknownSchemaError(f"no schema with fingerprint {fp.hex()}") from None


class AvroCodec:
    """Encodes event data as Avro single-object encoding and decodes it to the newest schema."""

    def __init__(self, registry: SchemaRegistry | None = None) -> None:
        self.registry = registry or SchemaRegistry()

    def encode(self, event_type: str, data: dict[str, Any], version: int | None = None) -> bytes:
        schema = (self.registry.latest(event_type) if version is None
                  else next(v for v in self.registry.versions(event_type) if v.version == version))
        buf = io.BytesIO()
        buf.write(MAGIC)
        buf.write(schema.fingerprint)
        try:
            fastavro.schemaless_writer(buf, schema.parsed, data)
        except (ValueError, TypeError, KeyError, AttributeError, struct.error) as exc:
            raise CodecError(f"{event_type}: data does not match its schema: {exc}") from exc
        return buf.getvalue()

    def decode(self, payload: bytes) -> tuple[str, dict[str, Any]]:
        """Return ``(event_type, data)`` read with the newest schema of that record."""
        if not isinstance(payload, bytes) or len(payload) < 10 or payload[:2] != MAGIC:
            raise CodecError("not an Avro single-object encoded payload")
        writer = self.registry.by_fingerprint(payload[2:10])
        reader = self.registry.latest(writer.full_name)
        try:
            data = fastavro.schemaless_reader(
                io.BytesIO(payload[10:]), writer.parsed,
                None if reader is writer else reader.parsed,
            )
        except Exception as exc:  # untrusted bytes: fastavro fails in many ways
            raise CodecError(f"{writer.full_name}: corrupt payload ({exc!r})") from exc
        return writer.full_name, data  # type: ignore[return-value]


@cache
def default_codec() -> AvroCodec:
    return AvroCodec()
