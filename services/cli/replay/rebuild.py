"""``kith replay rebuild``: a fresh copy of a projection, built in shadow tables beside the
live one and swapped in without downtime (see :func:`rebuild_projection`)."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import TextIO

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from kith.cli.replay.errors import ReplayError
from kith.cli.replay.positions import TP, end_offsets
from kith.cli.replay.progress import Progress
from kith.cli.replay.wrappers import Rebuildable, Renamed
from kith.common.codec import AvroCodec
from kith.common.projection import ProjectionRunner


@dataclass
class RebuildResult:
    """Events the copy applied, the whole rebuild's seconds and the swap's."""

    applied: int
    seconds: float
    swap_seconds: float


def _ident(name: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", name.lower())[:40]


def _offsets(conn: psycopg.Connection, projection: str, lock: bool = False) -> dict[TP, int]:
    query = ("SELECT topic, partition, next_offset FROM projection_offsets WHERE projection = %s"
             " ORDER BY topic, partition" + (" FOR UPDATE" if lock else ""))
    return {(t, p): o for t, p, o in conn.execute(query, (projection,))}


def _behind(shadow: dict[TP, int], live: dict[TP, int]) -> int:
    return sum(max(0, o - shadow.get(tp, 0)) for tp, o in live.items())


def rebuild_projection(projection: Rebuildable, dsn: str, bootstrap: str, codec: AvroCodec,
                       batch_size: int = 2000, keep_old: bool = False,
                       stop: threading.Event | None = None, progress_stream: TextIO | None = None,
                       swap_timeout_s: float = 60.0) -> RebuildResult:
    """Rebuild ``projection`` from offset zero beside the live copy, then swap it in.

    1. Its tables are copied empty (``CREATE TABLE … (LIKE … INCLUDING ALL)``) into the
       schema ``rebuild_<name>``; a runner named ``<name>__rebuild`` (its own consumer group,
       offsets and stream versions) fills them from offset zero, its connections using
       ``search_path = rebuild_<name>, public``. An interrupted rebuild resumes from there.
    2. Once it has caught up, one transaction locks the live projection's offset rows (the
       live runner waits at its next batch), lets the copy reach at least those offsets,
       moves the live tables out and the copy's into ``public``, and hands the copy's offsets
       and stream versions to the live name. The live runner then goes on from the copy's
       offsets, dropping what it had already read below them. Readers wait only for the
       renames; nothing is served half-built.
    """
    tables = list(getattr(projection, "tables", ()) or ())
    if not tables:
        raise ReplayError(f"projection {projection.name!r} does not name its tables; "
                          "it can only be rebuilt in place (ProjectionRunner.rebuild)")
    stop = stop or threading.Event()
    live, shadow_name = projection.name, f"{projection.name}__rebuild"
    shadow, retired = f"rebuild_{_ident(live)}", f"retired_{_ident(live)}"
    started = time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as conn:
        _check_copyable(conn, tables)
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(shadow)))
        for table in tables:
            conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {}.{} (LIKE public.{} INCLUDING ALL)")
                         .format(sql.Identifier(shadow), sql.Identifier(table),
                                 sql.Identifier(table)))
    options = conninfo_to_dict(dsn).get("options") or ""  # keep the session limits
    shadow_dsn = make_conninfo(dsn, options=f"{options} -c search_path={shadow},public".strip())
    runner = ProjectionRunner(Renamed(projection, shadow_name), shadow_dsn, bootstrap, codec,
                              batch_size=batch_size)
    runner.open()
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            total = sum(end_offsets(bootstrap, projection.topics).values())
            done = sum(_offsets(conn, shadow_name).values())
            progress = Progress(f"rebuild {live}", total, done, progress_stream)
            while not stop.is_set():
                runner.step()
                now = sum(_offsets(conn, shadow_name).values())
                progress.advance(now - progress.done)
                if now >= total and _behind(_offsets(conn, shadow_name), _offsets(conn, live)) == 0:
                    break
            progress.finish()
        if stop.is_set():
            raise ReplayError(f"rebuild of {live} interrupted; rerun to resume")
        swap_started = time.monotonic()
        _swap(dsn, runner, live, shadow_name, tables, shadow, retired, keep_old, swap_timeout_s)
        swap_seconds = time.monotonic() - swap_started
    finally:
        runner.close()
    return RebuildResult(runner.applied, time.monotonic() - started, swap_seconds)


def _check_copyable(conn: psycopg.Connection, tables: list[str]) -> None:
    """Refuse tables that are missing or take ``serial`` defaults: a copy would keep using
    the live table's sequence, which goes when the replaced table is dropped."""
    found = {r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = 'public' AND table_name = ANY(%s)", (tables,))}
    if missing := sorted(set(tables) - found):
        raise ReplayError(f"no table {', '.join(missing)} in schema public")
    serial = conn.execute(
        "SELECT table_name || '.' || column_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND table_name = ANY(%s)"
        " AND column_default LIKE 'nextval(%%'", (tables,)).fetchall()
    if serial:
        raise ReplayError(f"{', '.join(r[0] for r in serial)}: serial columns cannot be "
                          "rebuilt side by side (use GENERATED … AS IDENTITY)")


def _swap(dsn: str, runner: ProjectionRunner, live: str, shadow_name: str, tables: list[str],
          shadow: str, retired: str, keep_old: bool, timeout_s: float) -> None:
    ident = sql.Identifier
    with psycopg.connect(dsn) as conn, conn.transaction():
        live_offsets = _offsets(conn, live, lock=True)  # the live runner waits from here on
        deadline = time.monotonic() + timeout_s
        while _behind(_offsets(conn, shadow_name), live_offsets) > 0:
            if time.monotonic() > deadline:
                raise ReplayError(f"the copy of {live} did not reach the live offsets in "
                                  f"{timeout_s:.0f} s; nothing was swapped")
            runner.step()
        conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
            sql.SQL(", ").join(sql.SQL("public.{}").format(ident(t)) for t in tables)))
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(ident(retired)))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(ident(retired)))
        for table in tables:
            conn.execute(sql.SQL("ALTER TABLE public.{} SET SCHEMA {}").format(
                ident(table), ident(retired)))
            conn.execute(sql.SQL("ALTER TABLE {}.{} SET SCHEMA public").format(
                ident(shadow), ident(table)))
        # Update the live rows in place: a live runner blocked on them re-reads the new offsets.
        conn.execute("UPDATE projection_offsets AS l SET next_offset = s.next_offset"
                     " FROM projection_offsets AS s WHERE l.projection = %s AND s.projection = %s"
                     " AND l.topic = s.topic AND l.partition = s.partition", (live, shadow_name))
        conn.execute("INSERT INTO projection_offsets (projection, topic, partition, next_offset)"
                     " SELECT %s, topic, partition, next_offset FROM projection_offsets"
                     " WHERE projection = %s ON CONFLICT DO NOTHING", (live, shadow_name))
        conn.execute("DELETE FROM projection_offsets WHERE projection = %s", (shadow_name,))
        conn.execute("DELETE FROM projection_streams WHERE projection = %s", (live,))
        conn.execute("UPDATE projection_streams SET projection = %s WHERE projection = %s",
                     (live, shadow_name))
        conn.execute(sql.SQL("DROP SCHEMA {}").format(ident(shadow)))
        if not keep_old:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(ident(retired)))
