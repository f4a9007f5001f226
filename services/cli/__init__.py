"""The ``kith`` command: one entry point for every service, worker and tool.

    kith <service> <command>    e.g. ``kith identity serve``, ``kith feed fanout``
    kith infra prepare          databases, migrations and topics on external servers
    kith replay …               export or rebuild from the event topics
    kith keys wrap [service…]   wrap stored data keys under the current KEK (rotation)
  with the development package (kith-dev, tools/; `make install` installs it):
    kith dev up                 the embedded stack (PostgreSQL, Kafka, every service)
    kith bench <name>           benchmarks (``backbone``, …); one JSON line each
    kith demo                   seed a running stack from the socfb-Reed98 graph

This package is the composition root: it is the one place that knows every
service, and it reaches them by name (``kith.<service>.entrypoint``), never by
importing one service from another. Tools of other distributions join it through
the entry-point group ``kith.commands`` (name → a module with ``main(argv)``).
"""

from __future__ import annotations

import importlib
import os
import sys
from importlib.metadata import entry_points

from kith.common import kafka

USAGE = __doc__ or ""
TOOLS = {
    "infra": "kith.cli.infra",
    "replay": "kith.cli.replay",
    "keys": "kith.cli.keys",
}
COMMAND_GROUP = "kith.commands"
DEV_COMMANDS = ("dev", "bench", "demo")  # kith-dev's, named when it is not installed


def tools() -> dict[str, str]:
    """Command → module: the runtime's own, and those other installed distributions add."""
    return {**{e.name: e.value for e in entry_points(group=COMMAND_GROUP)}, **TOOLS}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE.strip())
        return 0
    group, rest = args[0], args[1:]
    # Kafka credentials (SASL/SCRAM, TLS) of this process, for every client it builds.
    kafka.configure_security(os.environ)
    commands = tools()
    if group in commands:
        return int(importlib.import_module(commands[group]).main(rest) or 0)
    if group in DEV_COMMANDS:
        print(f"kith {group}: a development tool; install the development package "
              "(`make install`, or `pip install -e tools`)", file=sys.stderr)
        return 2
    try:
        entry = importlib.import_module(f"kith.{group}.entrypoint")
    except ModuleNotFoundError as exc:
        if exc.name not in (f"kith.{group}", f"kith.{group}.entrypoint"):
            raise
        print(f"kith: unknown command {group!r}\n\n{USAGE.strip()}", file=sys.stderr)
        return 2
    service_commands = entry.COMMANDS
    if not rest or rest[0] not in service_commands:
        print(f"usage: kith {group} {{{','.join(service_commands)}}} [options]",
              file=sys.stderr)
        return 2
    return int(service_commands[rest[0]](rest[1:]) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
