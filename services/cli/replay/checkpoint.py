"""The export's checkpoint, ``DIR/.replay-checkpoint.json``: what makes an export resumable.

The export writes in chunks; a chunk's files get the chunk's number and become part of
the export only when the checkpoint names the next chunk. Rerunning the same command
after an interruption deletes the files of the unfinished chunk and continues from the
recorded offsets, so every event is exported exactly once.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kith.cli.replay.positions import TP

CHECKPOINT = ".replay-checkpoint.json"
_PART = re.compile(r"^part-(\d+)\.(avro|parquet)$")


@dataclass
class ExportState:
    """The checkpoint: the job, its offset ranges, the next offsets and the next chunk."""

    job: dict[str, Any]
    ranges: dict[TP, tuple[int, int]]
    next_offsets: dict[TP, int]
    next_chunk: int = 0
    exported: int = 0

    def remaining(self) -> int:
        return sum(max(0, end - self.next_offsets[tp]) for tp, (_, end) in self.ranges.items())

    def to_json(self) -> dict[str, Any]:
        return {
            "job": self.job, "next_chunk": self.next_chunk, "exported": self.exported,
            "partitions": [{"topic": t, "partition": p, "first": f, "end": e,
                            "next": self.next_offsets[(t, p)]}
                           for (t, p), (f, e) in sorted(self.ranges.items())],
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ExportState:
        parts = raw["partitions"]
        ranges = {(r["topic"], r["partition"]): (r["first"], r["end"]) for r in parts}
        nexts = {(r["topic"], r["partition"]): r["next"] for r in parts}
        return cls(raw["job"], ranges, nexts, raw["next_chunk"], raw["exported"])

    def save(self, out: Path) -> None:
        tmp = out / (CHECKPOINT + ".tmp")
        with open(tmp, "w") as f:
            json.dump(self.to_json(), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out / CHECKPOINT)


def discard_unfinished(out: Path, next_chunk: int) -> None:
    """Delete what an interrupted chunk left behind (its checkpoint was never written)."""
    for path in out.rglob("*"):
        if not path.is_file():
            continue
        match = _PART.match(path.name)
        if path.name.endswith(".tmp") or (match and int(match[1]) >= next_chunk):
            path.unlink()
