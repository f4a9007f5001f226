"""``python -m tests.integration.gateway.served_tiny --bind HOST:PORT``: a tiny WSGI app
behind the gateway's own server configuration (:func:`kith.gateway.server.build_server`).

``/slow`` takes two seconds, ``/crash`` ends its worker process at once, anything else
answers ``pid=<worker pid>``: what shutdown and respawn tests need, which the real app
cannot be asked to do.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from kith.common.config import Settings
from kith.gateway.config import GatewayConfig
from kith.gateway.server import build_server

SLOW_S = 2.0


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/crash":
        os._exit(3)
    if environ["PATH_INFO"] == "/slow":
        time.sleep(SLOW_S)
    body = f"pid={os.getpid()}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bind", required=True)
    args = parser.parse_args()
    settings = Settings.from_env()
    build_server(settings, GatewayConfig.from_settings(settings), args.bind).serve(
        target_loader=lambda: app, wrap_loader=False)


if __name__ == "__main__":
    main()
