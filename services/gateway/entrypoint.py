"""``kith gateway serve [--bind HOST:PORT]``, ``kith gateway stream [--bind HOST:PORT]`` and
``kith gateway openapi [--out FILE]``."""

from __future__ import annotations

import argparse
import os
import shutil
import sys

from kith.common import logs
from kith.common.config import Settings


def serve(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kith gateway serve")
    parser.add_argument("--bind", help="HOST:PORT (default 0.0.0.0:$KITH_GATEWAY_PORT)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    logs.configure("gateway", settings.log_level, settings.log_format)
    _multiprocess_metrics(settings)
    _check_secrets(settings)
    from kith.gateway.server import serve as run  # only now: it imports prometheus_client

    return run(settings, args.bind)


def stream(argv: list[str]) -> int:
    """The live stream's own asyncio process: ``GET /v1/stream`` (:mod:`.stream_server`)."""
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)  # one process: the default registry
    parser = argparse.ArgumentParser(prog="kith gateway stream")
    parser.add_argument("--bind", help="HOST:PORT (default 0.0.0.0:$KITH_GATEWAY_STREAM_PORT)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    logs.configure("gateway-stream", settings.log_level, settings.log_format)
    settings.check_secrets()
    settings.signing_key()
    from kith.gateway.stream_server import serve as run

    return run(settings, args.bind)


def _check_secrets(settings: Settings) -> None:
    """Refuse to start (outside development) on default, empty, short or shared secrets."""
    from kith.gateway.config import GatewayConfig  # after the metrics directory is set

    settings.check_secrets()
    settings.signing_key()
    GatewayConfig.from_settings(settings).secrets_for(settings)


def _multiprocess_metrics(settings: Settings) -> None:
    """Point prometheus_client at a fresh per-port directory shared by every server worker.

    prometheus_client decides at import time whether it runs multi-process, so
    this must happen before anything imports it (kith.common.rpc does).
    """
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before the metrics directory was set")
    port = settings.gateway_port
    metrics_dir = settings.home / "run" / f"gateway-metrics-{port}"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)


def openapi(argv: list[str]) -> int:
    """Write the OpenAPI document without a running stack (the web client is generated from it)."""
    parser = argparse.ArgumentParser(prog="kith gateway openapi")
    parser.add_argument("--out", help="file to write (default: standard output)")
    args = parser.parse_args(argv)
    import json

    from kith.gateway import routes
    from kith.gateway.openapi import document
    from kith.gateway.operations import api

    routes.load()
    text = json.dumps(document(api.operations), indent=2, ensure_ascii=False) + "\n"
    if args.out:
        with open(args.out, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    return 0


COMMANDS = {"serve": serve, "stream": stream, "openapi": openapi}
