"""Request ids that may travel as gRPC metadata, and how many live streams a process takes."""

from __future__ import annotations

import re

import pytest

from kith.common.config import Settings
from kith.gateway.app import sane_request_id
from kith.gateway.config import GatewayConfig


@pytest.mark.parametrize("sent", ["a", "req-1.A_b", "x" * 64])
def test_safe_request_ids_are_kept(sent: str) -> None:
    assert sane_request_id(sent) == sent


@pytest.mark.parametrize("sent", [None, "", "café", "a b", "x" * 65, "a\n", "tab\there", "é" * 3,
                                  "semi;colon", "ok\u2028"])
def test_anything_else_gets_a_fresh_id(sent: str | None) -> None:
    fresh = sane_request_id(sent)
    assert fresh != sent and re.fullmatch(r"[0-9a-f]{16}", fresh)


def test_stream_limits_are_configurable_and_no_longer_tied_to_threads() -> None:
    settings = Settings(extra={"KITH_GATEWAY_STREAMS_PER_USER": "5",
                               "KITH_GATEWAY_STREAMS_PER_PROCESS": "4000",
                               "KITH_GATEWAY_THREADS": "4"})
    config = GatewayConfig.from_settings(settings)
    assert (config.streams_per_user, config.streams_per_process) == (5, 4000)
    default = GatewayConfig.from_settings(Settings())
    assert (default.streams_per_user, default.streams_per_process) == (3, 2000)
