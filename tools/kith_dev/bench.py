"""``kith bench <name>``: benchmarks that print one machine-readable JSON line.

Each benchmark lives in ``kith_dev.bench_<name>`` and exposes ``main(argv)``.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

BENCHMARKS = ("backbone", "directory", "enforcement", "fanout", "gateway", "media", "messaging",
              "replay")


def benchmark(name: str) -> ModuleType:
    """The module of benchmark ``name`` (``ModuleNotFoundError`` if there is none)."""
    return importlib.import_module(f"kith_dev.bench_{name}")


def main(argv: list[str]) -> int:
    if not argv:
        print(f"usage: kith bench {{{','.join(BENCHMARKS)}}} [options]", file=sys.stderr)
        return 2
    try:
        module = benchmark(argv[0])
    except ModuleNotFoundError:
        print(f"kith bench: no benchmark named {argv[0]!r}", file=sys.stderr)
        return 2
    return int(module.main(argv[1:]) or 0)
