"""The export's schemas: times are timestamp-millis in Avro and timestamps in Parquet, and the
DuckDB example of docs/analysts.md runs on files laid out as the export lays them out."""

from __future__ import annotations

import io
import re
import uuid
from pathlib import Path

import duckdb
import fastavro
import pyarrow as pa

from kith.cli.replay.parquet import arrow_schema, write_parquet
from kith.cli.replay.records import export_schema
from kith.common.codec import SchemaRegistry, default_schemas_dir

REPO = Path(__file__).resolve().parents[3]
HOUR_MS = 3_600_000
MONDAY_MS = 1_764_547_200_000  # 2025-12-01T00:00:00Z, a Monday


def registry() -> SchemaRegistry:
    return SchemaRegistry(default_schemas_dir())


def test_times_are_timestamp_millis_in_avro_and_timestamps_in_parquet() -> None:
    schema = export_schema(registry(), "kith.post.PostPublished")
    fields = {f["name"]: f["type"] for f in schema["fields"]}
    assert fields["_timestamp"] == {"type": "long", "logicalType": "timestamp-millis"}
    assert fields["created_at_ms"] == {"type": "long", "logicalType": "timestamp-millis"}
    arrow = arrow_schema(schema)
    assert arrow.field("created_at_ms").type == pa.timestamp("ms", tz="UTC")
    assert arrow.field("_partition").type == pa.int32()
    assert arrow.field("text").nullable and arrow.field("text").type == pa.string()

    row = _post(uuid.uuid4(), uuid.uuid4(), MONDAY_MS)
    buffer = io.BytesIO()
    fastavro.writer(buffer, fastavro.parse_schema(schema), [row])
    buffer.seek(0)
    (back,) = fastavro.reader(buffer)
    assert back["created_at_ms"].isoformat() == "2025-12-01T00:00:00+00:00"


def _envelope(stream: uuid.UUID, at_ms: int) -> dict:
    return {"_topic": "t", "_partition": 0, "_offset": 0, "_timestamp": at_ms,
            "_stream_id": str(stream), "_event_id": str(uuid.uuid4()), "_stream_version": 1,
            "_position": 1, "_metadata": "{}"}


def _post(niche: uuid.UUID, author: uuid.UUID, at_ms: int) -> dict:
    post = uuid.uuid4()
    return {**_envelope(post, at_ms), "post_id": str(post), "niche_id": str(niche),
            "author_id": str(author), "text": "hi", "created_at_ms": at_ms}


def _write(out: Path, event_type: str, rows: list[dict]) -> None:
    folder = out / f"type={event_type}" / "day=2025-12-01"
    folder.mkdir(parents=True)
    write_parquet(folder / "part-000000.parquet",
                  arrow_schema(export_schema(registry(), event_type)), rows)


def test_the_duckdb_example_of_the_analysts_guide_answers(tmp_path: Path) -> None:
    family, club = uuid.uuid4(), uuid.uuid4()
    alice, bob = uuid.uuid4(), uuid.uuid4()
    niches = [{**_envelope(n, MONDAY_MS), "niche_id": str(n), "owner_id": str(alice),
               "name": "n", "kind": kind, "description": None, "member_cap": 150,
               "created_at_ms": MONDAY_MS} for n, kind in ((family, "family"), (club, "book_club"))]
    posts = [_post(family, alice, MONDAY_MS + HOUR_MS),
             _post(family, alice, MONDAY_MS + 2 * HOUR_MS),
             _post(family, bob, MONDAY_MS + 3 * HOUR_MS), _post(club, bob, MONDAY_MS + HOUR_MS)]
    posts.append(dict(posts[0]))  # a duplicate the relay published twice: counted once
    _write(tmp_path, "kith.graph.NicheCreated", niches)
    _write(tmp_path, "kith.post.PostPublished", posts)
    conversation = uuid.uuid4()
    messages = [{**_envelope(conversation, at), "conversation_id": str(conversation),
                 "message_id": str(uuid.uuid4()), "seq": seq, "sender_id": str(alice),
                 "client_message_id": None, "text": None, "member_ids": [str(alice), str(bob)],
                 "sent_at_ms": at}
                for seq, at in enumerate((MONDAY_MS + HOUR_MS, MONDAY_MS + HOUR_MS + 60_000,
                                          MONDAY_MS + 2 * HOUR_MS), start=1)]
    _write(tmp_path, "kith.messaging.MessageSent", messages)

    guide = (REPO / "docs" / "analysts.md").read_text()
    sql = re.search(r"```sql\n(.*?)```", guide, re.S)[1].replace("kith-export", str(tmp_path))
    statements = [s.strip() for s in sql.split(";") if s.strip()]
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    results = [cursor.fetchall() if (cursor := db.execute(s)) is not None else None
               for s in statements]

    weekly = results[2]  # week, kind, active posters, posts
    assert [(kind, active, n) for _, kind, active, n in weekly] == [("book_club", 1, 1),
                                                                   ("family", 2, 3)]
    assert results[3] == [(1, 2), (2, 1)]  # messages per hour of the day

