"""gRPC helpers for tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest

from kith.common.rpc import error_info


def refused(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str | None, dict[str, Any]]:
    """Run a call that must fail; return its status, kith error code and details."""
    with pytest.raises(grpc.RpcError) as failure:
        call()
    status, _message, code, details = error_info(failure.value)
    return status, code, details
