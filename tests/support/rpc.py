"""gRPC helpers for tests."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from kith.common import rpc
from kith.common.assertion import ActorSigner
from kith.common.config import Settings
from kith.common.rpc import DEFAULT_DEADLINE_S, error_info

READY_WAIT_S = 3.0


def refused(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str | None, dict[str, Any]]:
    """Run a call that must fail; return its status, kith error code and details."""
    with pytest.raises(grpc.RpcError) as failure:
        call()
    status, _message, code, details = error_info(failure.value)
    return status, code, details


def channel(address: str, deadline_s: float = DEFAULT_DEADLINE_S,
            settings: Settings | None = None) -> grpc.Channel:
    """A channel that stands in for the gateway: each call is asserted for the actor it names.

    Tests drive services directly, so like the gateway they must sign the acting
    user (the development key of ``settings``, or of the defaults).
    """
    signed = rpc.channel(address, deadline_s,
                         signer=ActorSigner((settings or Settings()).signing_key()))
    # A test's first call fails fast on a refused connect attempt (seen as a rare
    # UNAVAILABLE right after a service started in-process on a loaded machine); give
    # the channel a moment to connect first. Best effort: a channel to a server that is
    # meant to be down is still returned, and its calls fail as they should.
    with contextlib.suppress(grpc.FutureTimeoutError):
        grpc.channel_ready_future(signed).result(timeout=READY_WAIT_S)
    return signed
