"""``kith bench <name>``: benchmarks that print one machine-readable JSON line.

Each benchmark lives in ``kith.cli.bench_<name>`` and exposes ``main(argv)``.
"""

from __future__ import annotations

import importlib
import sys


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: kith bench {backbone,directory,fanout,gateway,media,messaging,replay}"
              " [options]",
              file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(f"kith.cli.bench_{argv[0]}")
    except ModuleNotFoundError:
        print(f"kith bench: no benchmark named {argv[0]!r}", file=sys.stderr)
        return 2
    return int(module.main(argv[1:]) or 0)
