"""Deterministic sample records for any Avro schema, to exercise schema evolution."""

from __future__ import annotations

import random
from typing import Any


def sample(schema: Any, rng: random.Random, named: dict[str, Any] | None = None) -> Any:
    """A value valid for ``schema`` (a parsed-or-raw fastavro schema)."""
    named = {} if named is None else named
    if isinstance(schema, str):
        return _primitive(schema, rng) if schema not in named else sample(named[schema], rng, named)
    if isinstance(schema, list):  # union: prefer a non-null branch when there is one
        branches = [b for b in schema if b != "null"] or schema
        return sample(rng.choice(branches), rng, named)
    kind = schema["type"]
    if kind == "record":
        named[schema["name"]] = schema
        if "namespace" in schema:
            named[f"{schema['namespace']}.{schema['name']}"] = schema
        return {f["name"]: sample(f["type"], rng, named) for f in schema["fields"]}
    if kind == "enum":
        return rng.choice(schema["symbols"])
    if kind == "array":
        return [sample(schema["items"], rng, named) for _ in range(rng.randint(0, 3))]
    if kind == "map":
        return {f"k{i}": sample(schema["values"], rng, named) for i in range(rng.randint(0, 3))}
    if kind == "fixed":
        return bytes(rng.getrandbits(8) for _ in range(schema["size"]))
    return _primitive(kind, rng)


def _primitive(kind: str, rng: random.Random) -> Any:
    return {
        "null": lambda: None,
        "boolean": lambda: rng.random() < 0.5,
        "int": lambda: rng.randint(-(2**31), 2**31 - 1),
        "long": lambda: rng.randint(-(2**63), 2**63 - 1),
        "float": lambda: float(rng.randint(-1000, 1000)),
        "double": lambda: rng.random() * 1e6,
        "bytes": lambda: rng.randbytes(rng.randint(0, 16)),
        "string": lambda: "".join(rng.choice("abcdé漢🙂 ") for _ in range(rng.randint(0, 12))),
    }[kind]()
