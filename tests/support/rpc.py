"""gRPC helpers for tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest

from kith.common import rpc
from kith.common.assertion import ActorSigner
from kith.common.config import Settings
from kith.common.rpc import DEFAULT_DEADLINE_S, error_info


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
    # No wait for readiness: the rare UNAVAILABLE of a first call came from gRPC sharing a
    # dead server's connection with new channels (fixed in kith.common.rpc.channel; see
    # tests/unit/common/test_rpc_channels.py).
    return rpc.channel(address, deadline_s,
                       signer=ActorSigner((settings or Settings()).signing_key()))
