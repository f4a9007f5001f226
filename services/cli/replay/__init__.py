"""``kith replay``: read the event topics again, for analysts and for operators.

    kith replay export --out DIR [--topic T]... [--from-offset N | --since TIME] [--until TIME]
                       [--type T]... [--stream ID]... [--format avro|parquet|both]
    kith replay rebuild SERVICE PROJECTION [--batch-size N] [--keep-old]

**export** (:mod:`.export`) writes the topics as Avro object container files and
Parquet files (:mod:`.parquet`) in Hive-style folders, one record per event with
personal data redacted (:mod:`.records`), each event once (:mod:`.dedupe`), resumably
(:mod:`.checkpoint`), from the beginning, an offset or a time (:mod:`.positions`).
**rebuild** (:mod:`.rebuild`) builds a fresh copy of a projection side by side and
swaps it in without downtime; :mod:`.projections` finds the projection by service
and name. Both report progress on stderr (:mod:`.progress`) and a JSON summary on
stdout; :mod:`.command` is the command line.
"""

from kith.cli.replay.checkpoint import CHECKPOINT, ExportState
from kith.cli.replay.command import main, resolve_topics
from kith.cli.replay.errors import ReplayError
from kith.cli.replay.export import Exporter, ExportFilter, ExportResult
from kith.cli.replay.positions import StartAt, end_offsets, partition_ranges
from kith.cli.replay.progress import Progress
from kith.cli.replay.projections import (
    FEED_FANOUT_TABLES,
    WORKER_PROJECTIONS,
    feed_fanout,
    find_projection,
)
from kith.cli.replay.rebuild import RebuildResult, rebuild_projection
from kith.cli.replay.wrappers import Rebuildable, Renamed, WithTables

__all__ = [
    "CHECKPOINT", "FEED_FANOUT_TABLES", "WORKER_PROJECTIONS", "ExportFilter", "ExportResult",
    "ExportState", "Exporter", "Progress", "RebuildResult", "Rebuildable", "Renamed",
    "ReplayError", "StartAt", "WithTables", "end_offsets", "feed_fanout", "find_projection",
    "main", "partition_ranges", "rebuild_projection", "resolve_topics",
]
