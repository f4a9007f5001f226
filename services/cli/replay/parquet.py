"""Parquet files beside the Avro ones: the same records, an Arrow schema derived from the
export's Avro schema (timestamp-millis → ``timestamp[ms, UTC]``), so DuckDB, Spark and pandas
read the export without an Avro extension."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kith.cli.replay.errors import ReplayError

_PRIMITIVES = {"boolean": "bool_", "int": "int32", "long": "int64", "float": "float32",
               "double": "float64", "bytes": "binary", "string": "string"}


def arrow_schema(avro: dict[str, Any]) -> Any:
    """The Arrow schema of an export's Avro record schema."""
    import pyarrow as pa

    named: dict[str, Any] = {}
    fields = [pa.field(f["name"], *_arrow(f["type"], named)) for f in avro["fields"]]
    return pa.schema(fields)


def _arrow(avro: Any, named: dict[str, Any]) -> tuple[Any, bool]:
    """``(arrow type, nullable)`` of an Avro type."""
    import pyarrow as pa

    if isinstance(avro, list):
        others = [t for t in avro if t != "null"]
        if len(others) != 1:
            raise ReplayError(f"no Parquet mapping for the union {avro}")
        return _arrow(others[0], named)[0], True
    if isinstance(avro, str):
        if avro in named:
            return named[avro], False
        if avro not in _PRIMITIVES:
            raise ReplayError(f"no Parquet mapping for the Avro type {avro!r}")
        return getattr(pa, _PRIMITIVES[avro])(), False
    kind = avro["type"]
    if avro.get("logicalType") == "timestamp-millis":
        return pa.timestamp("ms", tz="UTC"), False
    if avro.get("logicalType") == "timestamp-micros":
        return pa.timestamp("us", tz="UTC"), False
    if kind == "record":
        made = pa.struct([pa.field(f["name"], *_arrow(f["type"], named))
                          for f in avro["fields"]])
    elif kind == "array":
        made = pa.list_(_arrow(avro["items"], named)[0])
    elif kind == "map":
        made = pa.map_(pa.string(), _arrow(avro["values"], named)[0])
    elif kind == "enum":
        made = pa.string()
    elif kind == "fixed":
        made = pa.binary(avro["size"])
    else:
        return _arrow(kind, named)
    if "name" in avro:
        named[avro["name"]] = made
        if "namespace" in avro:
            named[f"{avro['namespace']}.{avro['name']}"] = made
    return made, False


def write_parquet(target: Path, schema: Any, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` atomically (temporary file, fsync, rename) as one zstd Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows, schema=schema)
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "wb") as f:
        pq.write_table(table, f, compression="zstd")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
