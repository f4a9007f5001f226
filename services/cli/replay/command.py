"""``kith replay``: read the event topics again, for analysts and for operators.

    kith replay export --out DIR [--topic T]... [--from-offset N | --since ISO-8601]
    kith replay rebuild SERVICE PROJECTION [--batch-size N] [--keep-old]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import cast

from kith.cli.replay.errors import ReplayError
from kith.cli.replay.export import Exporter
from kith.cli.replay.positions import StartAt
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
    export = sub.add_parser("export", help="topics → Avro container files")
    export.add_argument("--out", type=Path, required=True)
    export.add_argument("--topic", action="append", default=[],
                        help="a service (post) or topic name; repeatable; default: all")
    export.add_argument("--from-offset", type=int, default=None)
    export.add_argument("--since", default=None, help="ISO-8601 time (UTC if no zone)")
    export.add_argument("--chunk-size", type=int, default=50_000)
    export.add_argument("--schemas", type=Path, default=None, help="default: KITH_SCHEMAS_DIR")
    rebuild = sub.add_parser("rebuild", help="a fresh copy of a projection, swapped in live")
    rebuild.add_argument("service")
    rebuild.add_argument("projection")
    rebuild.add_argument("--batch-size", type=int, default=2000)
    rebuild.add_argument("--keep-old", action="store_true",
                         help="keep the replaced tables in schema retired_<projection>")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    settings = Settings.from_env()
    stop = threading.Event()
    with _stop_on_signals(stop):
        try:
            if args.command == "export":
                codec = AvroCodec(SchemaRegistry(args.schemas or default_schemas_dir()))
                exporter = Exporter(settings.require_kafka(), codec, args.out, args.chunk_size)
                result = exporter.run(resolve_topics(settings, args.topic),
                                      StartAt.parse(args.from_offset, args.since), stop)
                print(json.dumps({"exported": result.exported, "files": result.files,
                                  "resumed": result.resumed, "complete": not stop.is_set(),
                                  "seconds": round(result.seconds, 3)}))
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


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM finish the current chunk or batch, checkpoint, and stop (no lock is
    taken in signal context: see :func:`kith.common.service.wait_for_signal`)."""
    import signal

    from kith.common.service import wait_for_signal

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signalled = wait_for_signal()
    threading.Thread(target=lambda: signalled.wait() or stop.set(), daemon=True).start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(-1)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
