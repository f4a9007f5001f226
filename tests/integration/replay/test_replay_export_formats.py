"""What an analyst gets from ``kith replay export``: Avro and Parquet in Hive-style folders,
read back with fastavro and DuckDB; filters by time, type and stream; each event once even
when the relay published some twice."""

from __future__ import annotations

import io
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import fastavro
import psycopg

from kith.cli.replay import Exporter, ExportFilter, StartAt
from kith.cli.replay.positions import parse_time
from tests.integration.replay.ledger_events import WITHDRAWN, Ledger
from tests.support.ledger import DEPOSITED, ledger_codec


def exporter(ledger: Ledger, out: Path, chunk_size: int = 50) -> Exporter:
    return Exporter(ledger.settings.require_kafka(), ledger_codec(), out, chunk_size,
                    progress_stream=io.StringIO())


def avro_records(out: Path) -> list[dict]:
    records = []
    for path in sorted(out.rglob("*.avro")):
        with open(path, "rb") as f:
            records += list(fastavro.reader(f))
    return records


def parquet(out: Path) -> str:
    return (f"read_parquet('{out}/type=*/day=*/*.parquet', hive_partitioning = true, "
            "union_by_name = true)")


def relay_again(ledger: Ledger, positions: int) -> None:
    """What a relay killed after Kafka's acknowledgement and before deleting its outbox rows
    does on restart: publish those events a second time."""
    with psycopg.connect(ledger.settings.database_url("post"), autocommit=True) as conn:
        conn.execute("INSERT INTO outbox (position) SELECT position FROM events"
                     " ORDER BY position DESC LIMIT %s", (positions,))
    ledger.publish()


def test_avro_and_parquet_hold_the_same_events_and_answer_the_same_question(
    ledger: Ledger, tmp_path: Path,
) -> None:
    ledger.append(150)
    ledger.publish()

    result = exporter(ledger, tmp_path).run([ledger.topic], StartAt())

    assert result.exported == 150
    folders = {p.parent.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("part-*")}
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    assert folders == {f"type={DEPOSITED}/day={day}", f"type={WITHDRAWN}/day={day}"}
    assert {p.suffix for p in tmp_path.rglob("part-*")} == {".avro", ".parquet"}

    from_avro = avro_records(tmp_path)
    db = duckdb.connect()
    assert len(from_avro) == db.execute(f"SELECT count(*) FROM {parquet(tmp_path)}").fetchone()[0]
    assert len(from_avro) == 150
    by_type = dict(db.execute(f"SELECT type, count(*) FROM {parquet(tmp_path)} GROUP BY type"
                          ).fetchall())
    assert by_type == Counter(ledger.event_ids.values())

    # The analyst's question: each account's balance, deposits minus withdrawals.
    balances = dict(db.execute(f"""
        SELECT account_id, sum(CASE WHEN type = '{DEPOSITED}' THEN amount ELSE -amount END)
        FROM {parquet(tmp_path)} GROUP BY account_id""").fetchall())
    assert +Counter(balances) == +ledger.balances
    from_fastavro: Counter[str] = Counter()
    for r in from_avro:
        from_fastavro[r["account_id"]] += r["amount"] if "memo" in r else -r["amount"]
    assert +from_fastavro == +ledger.balances

    # Times are real timestamps in both formats (Avro timestamp-millis, Parquet timestamp[ms]).
    (kind,) = db.execute(f"SELECT typeof(_timestamp) FROM {parquet(tmp_path)} LIMIT 1").fetchone()
    assert kind == "TIMESTAMP WITH TIME ZONE"
    assert all(isinstance(r["_timestamp"], datetime) for r in from_avro)
    parquet_ids = {uuid.UUID(i) for (i,) in db.execute(
        f"SELECT _event_id FROM {parquet(tmp_path)}").fetchall()}
    assert parquet_ids == {uuid.UUID(r["_event_id"]) for r in from_avro} == set(ledger.event_ids)


def test_events_the_relay_published_twice_are_exported_once_across_chunks_and_resumes(
    ledger: Ledger, tmp_path: Path,
) -> None:
    ledger.append(60)
    ledger.publish()
    relay_again(ledger, 25)  # the topic now holds 85 records for 60 events

    first = exporter(ledger, tmp_path, chunk_size=20).run([ledger.topic], StartAt(),
                                                          max_chunks=2)
    rest = exporter(ledger, tmp_path, chunk_size=20).run([ledger.topic], StartAt())

    assert rest.resumed and rest.exported == 60
    assert first.duplicates + rest.duplicates == 25
    ids = Counter(uuid.UUID(r["_event_id"]) for r in avro_records(tmp_path))
    assert set(ids) == set(ledger.event_ids) and set(ids.values()) == {1}
    (n,) = duckdb.execute(f"SELECT count(DISTINCT _event_id) = count(*) FROM {parquet(tmp_path)}"
                      ).fetchone()
    assert n is True


def test_filters_keep_a_time_window_event_types_and_streams(ledger: Ledger,
                                                             tmp_path: Path) -> None:
    ledger.append(60)
    ledger.publish()
    time.sleep(0.05)  # record timestamps are milliseconds: keep the two batches apart
    until = datetime.now(UTC)
    time.sleep(0.05)
    early = dict(ledger.event_ids)
    ledger.append(30)
    ledger.publish()

    window = exporter(ledger, tmp_path / "until").run(
        [ledger.topic], StartAt(), only=ExportFilter(until_ms=parse_time(until.isoformat(),
                                                                         "--until")))
    assert window.exported == 60
    assert {uuid.UUID(r["_event_id"]) for r in avro_records(tmp_path / "until")} == set(early)

    withdrawals = exporter(ledger, tmp_path / "type").run(
        [ledger.topic], StartAt(), only=ExportFilter(types=frozenset({"Withdrawn"})))
    assert withdrawals.exported == Counter(ledger.event_ids.values())[WITHDRAWN]
    assert not list((tmp_path / "type").glob(f"type={DEPOSITED}"))

    account = next(iter(ledger.versions))
    one = exporter(ledger, tmp_path / "stream").run(
        [ledger.topic], StartAt(), only=ExportFilter(streams=frozenset({str(account)})))
    records = avro_records(tmp_path / "stream")
    assert one.exported == len(records) == ledger.versions[account]
    assert {r["_stream_id"] for r in records} == {str(account)}


def test_today_and_yesterday_are_utc_midnights() -> None:
    now = datetime(2026, 12, 1, 16, 30, tzinfo=UTC)
    assert parse_time("today", "--until", now) == int(
        datetime(2026, 12, 1, tzinfo=UTC).timestamp() * 1000)
    assert parse_time("yesterday", "--since", now) == int(
        datetime(2026, 11, 30, tzinfo=UTC).timestamp() * 1000)
