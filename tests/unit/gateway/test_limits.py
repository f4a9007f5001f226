"""Request ids that may travel as gRPC metadata, and how many threads streams may take."""

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


@pytest.mark.parametrize(("threads", "streams"), [(1, 0), (2, 1), (4, 2), (6, 3), (8, 4),
                                                  (16, 12), (64, 60)])
def test_streams_leave_threads_for_ordinary_requests(threads: int, streams: int) -> None:
    assert GatewayConfig(threads=threads).streams_per_process == streams


def test_streams_per_user_is_configurable() -> None:
    settings = Settings(extra={"KITH_GATEWAY_STREAMS_PER_USER": "5"})
    assert GatewayConfig.from_settings(settings).streams_per_user == 5
    assert GatewayConfig.from_settings(Settings()).streams_per_user == 3
