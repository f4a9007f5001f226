"""The ``kith`` command: one entry point for every service, worker and tool.

    kith dev up                 the embedded stack (PostgreSQL, Kafka, every service)
    kith <service> <command>    e.g. ``kith identity serve``, ``kith feed fanout``
    kith bench <name>           benchmarks (``backbone``, …); one JSON line each
    kith infra topics           create the event topics on the configured broker

This package is the composition root: it is the one place that knows every
service, and it reaches them by name (``kith.<service>.entrypoint``), never by
importing one service from another.
"""

from __future__ import annotations

import importlib
import sys

USAGE = __doc__ or ""


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE.strip())
        return 0
    group, rest = args[0], args[1:]
    if group == "dev":
        from kith.cli.devstack import main as dev_main

        return dev_main(rest)
    if group == "bench":
        from kith.cli.bench import main as bench_main

        return bench_main(rest)
    if group == "infra":
        from kith.cli.infra import main as infra_main

        return infra_main(rest)
    try:
        entry = importlib.import_module(f"kith.{group}.entrypoint")
    except ModuleNotFoundError as exc:
        if exc.name not in (f"kith.{group}", f"kith.{group}.entrypoint"):
            raise
        print(f"kith: unknown command {group!r}\n\n{USAGE.strip()}", file=sys.stderr)
        return 2
    commands = entry.COMMANDS
    if not rest or rest[0] not in commands:
        print(f"usage: kith {group} {{{','.join(commands)}}} [options]", file=sys.stderr)
        return 2
    return int(commands[rest[0]](rest[1:]) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
