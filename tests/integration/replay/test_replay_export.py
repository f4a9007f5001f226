"""``kith replay export`` on the real broker: counts, decodability, resume, shredding."""

from __future__ import annotations

import io
import json
import re
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import fastavro
import pytest

from kith.cli.replay import CHECKPOINT, Exporter, ReplayError, StartAt, main
from tests.integration.replay.ledger_events import WITHDRAWN, Ledger
from tests.support.ledger import DEPOSITED, SCHEMAS, ledger_codec

LAYOUT = re.compile(r"^type=(?P<type>kith\.ledger\.\w+)/day=(?P<day>\d{4}-\d{2}-\d{2})"
                    r"/part-\d{6}\.avro$")


def read_export(out: Path) -> list[dict]:
    records = []
    for path in sorted(out.rglob("*.avro")):
        match = LAYOUT.match(path.relative_to(out).as_posix())
        assert match, path
        with open(path, "rb") as f:
            for record in fastavro.reader(f):
                day = datetime.fromtimestamp(record["_timestamp"].timestamp(), UTC)
                assert day.strftime("%Y-%m-%d") == match["day"]
                records.append({**record, "_type_dir": match["type"]})
    return records


def exporter(ledger: Ledger, out: Path, chunk_size: int = 50) -> Exporter:
    return Exporter(ledger.settings.require_kafka(), ledger_codec(), out, chunk_size,
                    progress_stream=io.StringIO())


def test_an_export_holds_every_event_once_decoded_by_type_and_day(ledger: Ledger,
                                                                  tmp_path: Path) -> None:
    ledger.append(240)
    ledger.publish()

    result = exporter(ledger, tmp_path).run([ledger.topic], StartAt())

    records = read_export(tmp_path)
    assert result.exported == len(records) == 240
    assert {uuid.UUID(r["_event_id"]): r["_type_dir"] for r in records} == ledger.event_ids
    assert Counter(r["_type_dir"] for r in records) == Counter(ledger.event_ids.values())
    balances: Counter[str] = Counter()
    for r in records:
        assert r["_topic"] == ledger.topic and r["_stream_id"] == r["account_id"]
        assert json.loads(r["_metadata"]) == {}
        balances[r["account_id"]] += r["amount"] if r["_type_dir"] == DEPOSITED else -r["amount"]
    assert +balances == +ledger.balances
    # Per stream, versions are complete and in offset order (one stream → one partition).
    by_stream: dict[str, list[int]] = {}
    for r in sorted(records, key=lambda r: (r["_partition"], r["_offset"])):
        by_stream.setdefault(r["_stream_id"], []).append(r["_stream_version"])
    assert all(v == list(range(1, len(v) + 1)) for v in by_stream.values())


def test_encrypted_personal_fields_never_reach_an_export(ledger: Ledger, tmp_path: Path) -> None:
    ledger.append(60, encrypt_every=4)
    ledger.publish()

    exporter(ledger, tmp_path).run([ledger.topic], StartAt())

    deposits = [r for r in read_export(tmp_path) if r["_type_dir"] == DEPOSITED]
    redacted = [r for r in deposits if r["memo"] is None]
    assert len(redacted) == len(ledger.secrets) > 0
    assert all(r["memo"].startswith("memo ") for r in deposits if r["memo"] is not None)
    raw = b"".join(p.read_bytes() for p in tmp_path.rglob("*.avro"))
    assert b"enc:v1:" not in raw
    assert not any(s.encode() in raw for s in ledger.secrets)


def test_an_interrupted_export_resumes_without_losing_or_repeating_events(
    ledger: Ledger, tmp_path: Path
) -> None:
    ledger.append(200)
    ledger.publish()
    first = exporter(ledger, tmp_path, chunk_size=30).run([ledger.topic], StartAt(),
                                                         max_chunks=2)
    assert first.exported == 60 and not first.resumed
    # What a crash in the middle of the third chunk leaves behind: files not yet checkpointed.
    state = json.loads((tmp_path / CHECKPOINT).read_text())
    stray = next(tmp_path.rglob("*.avro")).parent
    (stray / f"part-{state['next_chunk']:06d}.avro").write_bytes(b"half a file")
    (stray / f"part-{state['next_chunk'] + 1:06d}.avro.tmp").write_bytes(b"half a file")

    second = exporter(ledger, tmp_path, chunk_size=30).run([ledger.topic], StartAt())

    assert second.resumed and second.exported == 200
    records = read_export(tmp_path)
    assert len(records) == 200
    assert {uuid.UUID(r["_event_id"]) for r in records} == set(ledger.event_ids)
    assert not list(tmp_path.rglob("*.tmp"))
    again = exporter(ledger, tmp_path).run([ledger.topic], StartAt())
    assert again.exported == 200 and again.files == 0


def test_an_export_starts_at_an_offset_or_at_a_time(ledger: Ledger, tmp_path: Path) -> None:
    ledger.append(80)
    ledger.publish()
    time.sleep(0.05)  # record timestamps are milliseconds: keep the two batches apart
    since = datetime.now(UTC)
    time.sleep(0.05)
    before = set(ledger.event_ids)
    ledger.append(40)
    ledger.publish()

    start = StartAt.parse(None, since.isoformat())
    by_time = exporter(ledger, tmp_path / "t").run([ledger.topic], start)
    records = read_export(tmp_path / "t")
    assert by_time.exported == 40
    assert {uuid.UUID(r["_event_id"]) for r in records} == set(ledger.event_ids) - before

    exporter(ledger, tmp_path / "all").run([ledger.topic], StartAt())
    exporter(ledger, tmp_path / "o").run([ledger.topic], StartAt.parse(5, None))
    full = Counter(r["_partition"] for r in read_export(tmp_path / "all"))
    from_five = read_export(tmp_path / "o")
    assert all(r["_offset"] >= 5 for r in from_five)
    assert Counter(r["_partition"] for r in from_five) == +Counter(
        {p: n - 5 for p, n in full.items()})


def test_an_export_refuses_a_folder_holding_something_else(ledger: Ledger,
                                                           tmp_path: Path) -> None:
    ledger.append(5)
    ledger.publish()
    exporter(ledger, tmp_path / "a").run([ledger.topic], StartAt())
    with pytest.raises(ReplayError, match="another export"):
        exporter(ledger, tmp_path / "a").run([ledger.topic], StartAt("offset", 1))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("mine")
    with pytest.raises(ReplayError, match="not empty"):
        exporter(ledger, tmp_path / "b").run([ledger.topic], StartAt())
    with pytest.raises(ReplayError, match="does not exist"):
        exporter(ledger, tmp_path / "c").run(["no-such-topic-" + uuid.uuid4().hex], StartAt())


def test_withdrawals_and_deposits_get_their_own_schema(ledger: Ledger, tmp_path: Path) -> None:
    ledger.append(9)
    ledger.publish()
    exporter(ledger, tmp_path).run([ledger.topic], StartAt())
    for type_name, payload in ((DEPOSITED, {"account_id", "amount", "memo"}),
                               (WITHDRAWN, {"account_id", "amount"})):
        path = next((tmp_path / f"type={type_name}").rglob("*.avro"))
        with open(path, "rb") as f:
            schema = fastavro.reader(f).writer_schema
        names = {f["name"] for f in schema["fields"]}
        assert {n for n in names if not n.startswith("_")} == payload


def test_the_command_line_exports_and_reports_progress_on_stderr(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ledger.append(30)
    ledger.publish()
    monkeypatch.setenv("KITH_KAFKA_BOOTSTRAP", ledger.settings.require_kafka())

    code = main(["export", "--out", str(tmp_path), "--topic", ledger.topic,
                 "--schemas", str(SCHEMAS), "--chunk-size", "10"])

    out, err = capsys.readouterr()
    assert code == 0
    summary = json.loads(out)
    assert summary["exported"] == 30 and summary["complete"] and not summary["resumed"]
    assert "export: 30/30 events (100.0%)" in err and "ev/s" in err and "ETA" in err
    assert len(read_export(tmp_path)) == 30
    assert main(["export", "--out", str(tmp_path), "--topic", ledger.topic, "--since", "soon",
                 "--schemas", str(SCHEMAS)]) == 1
    assert "--since must be an ISO-8601 time" in capsys.readouterr().err
