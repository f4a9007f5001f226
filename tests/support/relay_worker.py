"""An outbox relay process for fault tests (``python -m tests.support.relay_worker``)."""

from __future__ import annotations

import os
import sys

from kith.common import metrics
from kith.common.relay import OutboxRelay
from kith.common.service import wait_for_signal


def main(dsn: str, bootstrap: str, topic: str) -> None:
    """Publish ``topic`` from ``dsn`` until SIGTERM; say on stdout when leading."""
    stop = wait_for_signal()
    # KITH_METRICS_PORT: /metrics, for a test that watches the backlog gauge.
    metrics.start_metrics_server(metrics.metrics_port(os.environ), addr="127.0.0.1")
    relay = OutboxRelay(dsn, bootstrap, topic, idle_wait_s=0.1)

    import logging

    class Announce(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "is publishing" in record.getMessage():
                print("leading", flush=True)

    logging.getLogger("kith.common.relay").addHandler(Announce())
    logging.getLogger("kith.common.relay").setLevel(logging.INFO)
    relay.run(stop)


if __name__ == "__main__":
    main(*sys.argv[1:4])
