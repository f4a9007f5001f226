"""``kith replay``: read the event topics again, for analysts and for operators.

    kith replay export --out DIR [--topic T]... [--from-offset N | --since TIME] [--until TIME]
                       [--type EVENT_TYPE]... [--stream STREAM_ID]... [--format avro|parquet|both]
    kith replay rebuild SERVICE PROJECTION [--batch-size N] [--keep-old]
    kith replay republish SERVICE [--after-position N]
    kith replay reset-offsets SERVICE PROJECTION --topic T [--partition P] [--offset N]
    kith replay skip SERVICE PROJECTION --topic T --partition P --offset N --reason TEXT
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import cast

from kith.cli.replay.errors import ReplayError
from kith.cli.replay.export import FORMATS, Exporter, ExportFilter
from kith.cli.replay.positions import StartAt, parse_time
from kith.cli.replay.projections import find_projection
from kith.cli.replay.rebuild import rebuild_projection
from kith.cli.replay.wrappers import Rebuildable
from kith.common.codec import AvroCodec, SchemaRegistry, default_codec, default_schemas_dir
from kith.common.config import SERVICES, Settings


def resolve_topics(settings: Settings, names: Sequence[str]) -> list[str]:
    """Service names (``post``) become their topics; anything else is taken as a topic name."""
    if not names or list(names) == ["all"]:
        return [settings.topic(s) for s in SERVICES]
    return [settings.topic(n) if n in SERVICES else n for n in names]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kith replay", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    export = sub.add_parser("export", help="topics → Avro and Parquet files, Hive-style")
    export.add_argument("--out", type=Path, required=True)
    export.add_argument("--topic", action="append", default=[],
                        help="a service (post) or topic name; repeatable; default: all")
    export.add_argument("--from-offset", type=int, default=None)
    export.add_argument("--since", default=None,
                        help="ISO-8601 time (UTC if no zone), today or yesterday")
    export.add_argument("--until", default=None,
                        help="keep records stamped before this time (same forms as --since)")
    export.add_argument("--type", action="append", default=[], dest="types",
                        help="an event type (kith.post.PostPublished or PostPublished); "
                             "repeatable; default: all")
    export.add_argument("--stream", action="append", default=[], dest="streams",
                        help="a stream id (a post, a niche, a conversation…); repeatable")
    export.add_argument("--format", choices=["avro", "parquet", "both"], default="both")
    export.add_argument("--chunk-size", type=int, default=50_000)
    export.add_argument("--schemas", type=Path, default=None, help="default: KITH_SCHEMAS_DIR")
    rebuild = sub.add_parser("rebuild", help="a fresh copy of a projection, swapped in live")
    rebuild.add_argument("service")
    rebuild.add_argument("projection")
    rebuild.add_argument("--batch-size", type=int, default=2000)
    rebuild.add_argument("--keep-old", action="store_true",
                         help="keep the replaced tables in schema retired_<projection>")
    again = sub.add_parser("republish", help="a service's events, from its event store, onto "
                           "its topic again (after the topic lost records or was recreated)")
    again.add_argument("service", choices=SERVICES)
    again.add_argument("--after-position", type=int, default=0,
                       help="republish events with a larger event-store position (default 0: all)")
    reset = sub.add_parser("reset-offsets", help="where a projection reads a topic from next")
    reset.add_argument("service", help="whose database holds the projection (feed for fanout)")
    reset.add_argument("projection")
    reset.add_argument("--topic", required=True, help="a service (post) or a topic name")
    reset.add_argument("--partition", type=int, default=None, help="default: every partition")
    reset.add_argument("--offset", type=int, default=0)
    skip = sub.add_parser("skip", help="move a projection past one held record, with an audit row")
    skip.add_argument("service")
    skip.add_argument("projection")
    skip.add_argument("--topic", required=True)
    skip.add_argument("--partition", type=int, required=True)
    skip.add_argument("--offset", type=int, required=True)
    skip.add_argument("--reason", required=True)
    return parser


def _repair(settings: Settings, args: argparse.Namespace, stop: threading.Event) -> dict:
    from kith.cli.replay import repair

    if args.command == "republish":
        result = repair.republish(settings.database_url(args.service), settings.require_kafka(),
                                  settings.topic(args.service), args.after_position, stop)
        return {"service": args.service, "queued": result.queued,
                "published_here": result.published_here, "seconds": round(result.seconds, 3)}
    (topic,) = resolve_topics(settings, [args.topic])
    dsn = settings.database_url(args.service)
    if args.command == "reset-offsets":
        rows = repair.reset_offsets(dsn, args.projection, topic, args.offset, args.partition)
        return {"projection": args.projection, "topic": topic, "partitions": rows,
                "offset": args.offset}
    repair.skip_record(dsn, args.projection, topic, args.partition, args.offset, args.reason)
    return {"projection": args.projection, "skipped": f"{topic}/{args.partition}/{args.offset}"}


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    settings = Settings.from_env()
    stop = threading.Event()
    with _stop_on_signals(stop):
        try:
            if args.command == "export":
                codec = AvroCodec(SchemaRegistry(args.schemas or default_schemas_dir()))
                formats = FORMATS if args.format == "both" else (args.format,)
                exporter = Exporter(settings.require_kafka(), codec, args.out, args.chunk_size,
                                    formats=formats)
                only = ExportFilter(
                    frozenset(args.types), frozenset(_stream_ids(args.streams)),
                    None if args.until is None else parse_time(args.until, "--until"))
                result = exporter.run(resolve_topics(settings, args.topic),
                                      StartAt.parse(args.from_offset, args.since), stop,
                                      only=only)
                print(json.dumps({"exported": result.exported, "files": result.files,
                                  "duplicates_skipped": result.duplicates,
                                  "resumed": result.resumed, "complete": not stop.is_set(),
                                  "seconds": round(result.seconds, 3)}))
            elif args.command in ("republish", "reset-offsets", "skip"):
                print(json.dumps(_repair(settings, args, stop)))
            else:
                projection, dsn, close = find_projection(settings, args.service, args.projection)
                try:
                    rebuilt = rebuild_projection(cast(Rebuildable, projection), dsn,
                                                 settings.require_kafka(), default_codec(),
                                                 args.batch_size, args.keep_old, stop)
                finally:
                    close()
                print(json.dumps({"projection": args.projection, "applied": rebuilt.applied,
                                  "seconds": round(rebuilt.seconds, 3),
                                  "swap_seconds": round(rebuilt.swap_seconds, 3)}))
        except ReplayError as exc:
            print(f"kith replay: {exc}", file=sys.stderr)
            return 1
    return 130 if stop.is_set() else 0


def _stream_ids(values: Sequence[str]) -> list[str]:
    try:
        return [str(uuid.UUID(v)) for v in values]
    except ValueError:
        raise ReplayError(f"--stream takes stream ids (UUIDs), got {list(values)}") from None


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM finish the current chunk or batch, checkpoint, and stop (no lock is
    taken in signal context: see :func:`kith.common.service.wait_for_signal`)."""
    import signal

    from kith.common.service import wait_for_signal

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signalled = wait_for_signal()
    def stop_when_signalled() -> None:
        signalled.wait()
        stop.set()

    threading.Thread(target=stop_when_signalled, daemon=True).start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(-1)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
