"""The ``kith`` command: one entry point for every service, worker and tool.

    kith dev up                 the embedded stack (PostgreSQL, Kafka, every service)
    kith <service> <command>    e.g. ``kith identity serve``, ``kith feed fanout``
    kith bench <name>           benchmarks (``backbone``, …); one JSON line each
    kith infra prepare          databases, migrations and topics on external servers
    kith demo                   seed a running stack from the socfb-Reed98 graph
    kith replay …               export or rebuild from the event topics
    kith keys wrap [service…]   wrap stored data keys under the current KEK (rotation)

This package is the composition root: it is the one place that knows every
service, and it reaches them by name (``kith.<service>.entrypoint``), never by
importing one service from another.
"""

from __future__ import annotations

import importlib
import os
import sys

from kith.common import kafka

USAGE = __doc__ or ""
TOOLS = {
    "dev": "kith.cli.devstack",
    "bench": "kith.cli.bench",
    "infra": "kith.cli.infra",
    "demo": "kith.cli.demo",
    "replay": "kith.cli.replay",
    "keys": "kith.cli.keys",
}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE.strip())
        return 0
    group, rest = args[0], args[1:]
    # Kafka credentials (SASL/SCRAM, TLS) of this process, for every client it builds.
    kafka.configure_security(os.environ)
    if group in TOOLS:
        return int(importlib.import_module(TOOLS[group]).main(rest) or 0)
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
