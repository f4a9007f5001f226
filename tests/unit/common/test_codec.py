"""The Avro codec: single-object encoding, and every schema reading its own history."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from fastavro.schema import fingerprint, to_parsing_canonical_form

from kith.common.codec import (
    MAGIC,
    AvroCodec,
    CodecError,
    SchemaRegistry,
    UnknownSchemaError,
    default_schemas_dir,
)
from tests.support.avro_samples import sample

TEST_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
REGISTRIES = {"project": default_schemas_dir(), "test": TEST_SCHEMAS}


@pytest.fixture
def codec() -> AvroCodec:
    return AvroCodec(SchemaRegistry(TEST_SCHEMAS))


def test_a_payload_is_magic_then_the_writer_fingerprint_then_the_body(codec: AvroCodec) -> None:
    payload = codec.encode("kith.ledger.Deposited", {"account_id": "a", "amount": 7, "memo": ""})

    writer = codec.registry.latest("kith.ledger.Deposited")
    expected_fp = fingerprint(to_parsing_canonical_form(writer.parsed), "CRC-64-AVRO")
    assert payload[:2] == MAGIC == b"\xc3\x01"
    assert payload[2:10] == int(expected_fp, 16).to_bytes(8, "little")
    assert codec.decode(payload) == ("kith.ledger.Deposited",
                                     {"account_id": "a", "amount": 7, "memo": ""})


def test_a_record_written_with_an_old_schema_is_read_with_the_new_one(codec: AvroCodec) -> None:
    old = codec.encode("kith.ledger.Deposited", {"account_id": "a", "amount": 3}, version=1)

    assert codec.decode(old) == ("kith.ledger.Deposited",
                                 {"account_id": "a", "amount": 3, "memo": ""})


def test_data_that_does_not_fit_the_schema_is_refused(codec: AvroCodec) -> None:
    with pytest.raises(CodecError):
        codec.encode("kith.ledger.Deposited", {"account_id": "a", "amount": "three"})
    with pytest.raises(CodecError):
        codec.encode("kith.ledger.Nope", {})


def test_garbage_and_unknown_fingerprints_are_refused(codec: AvroCodec) -> None:
    with pytest.raises(CodecError):
        codec.decode(b"not avro at all")
    with pytest.raises(CodecError):
        codec.decode(MAGIC + b"\x00" * 8 + b"\x02")


@pytest.mark.parametrize("where", sorted(REGISTRIES))
def test_every_schema_reads_records_of_each_of_its_earlier_versions(where: str) -> None:
    registry = SchemaRegistry(REGISTRIES[where])
    codec = AvroCodec(registry)
    rng = random.Random(42)
    assert registry.names(), f"no schemas found in {REGISTRIES[where]}"
    for name in registry.names():
        newest = registry.latest(name)
        for version in registry.versions(name):
            raw = json.loads(version.path.read_text())
            for _ in range(5):
                record = sample(raw, rng)
                decoded_name, decoded = codec.decode(codec.encode(name, record, version.version))
                assert decoded_name == name
                newest_fields = {f["name"] for f in json.loads(newest.path.read_text())["fields"]}
                assert set(decoded) == newest_fields
                for field, value in record.items():
                    if field in decoded:
                        assert decoded[field] == value, (name, version.version, field)


def test_schema_files_declare_their_version_in_the_name(tmp_path: Path) -> None:
    folder = tmp_path / "svc"
    folder.mkdir()
    (folder / "Thing.avsc").write_text('{"type": "record", "name": "Thing", "fields": []}')

    with pytest.raises(CodecError, match="v<N>"):
        SchemaRegistry(tmp_path)


def test_a_truncated_or_corrupt_body_is_a_codec_error(codec: AvroCodec) -> None:
    payload = codec.encode("kith.ledger.Deposited", {"account_id": "a", "amount": 7, "memo": ""})

    for broken in (payload[:12], payload[:10] + b"\xff\xff\xff"):
        with pytest.raises(CodecError, match="corrupt payload"):
            codec.decode(broken)


def test_an_unknown_writer_schema_is_told_apart_from_corruption(codec: AvroCodec) -> None:
    with pytest.raises(UnknownSchemaError):
        codec.decode(MAGIC + b"\x01" * 8 + b"\x00")
