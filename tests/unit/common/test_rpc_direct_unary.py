"""The gateway's direct unary calls carry everything the client interceptor adds.

``channel(direct_unary=True)`` skips grpc's interceptor objects for blocking unary calls
(a tenth of a millisecond per call in the gateway); the callee must not be able to tell:
the same actor assertion, request id, deadline, and the same latency metric by status.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

from kith.common import metrics, rpc
from kith.common.assertion import ActorSigner, ActorVerifier, dev_signing_key, dev_verify_key
from kith.common.logs import current_user, request_id

ECHO = "/kith.test.Echo/Echo"
MISSING = "/kith.test.Echo/Missing"


def _echo(request: bytes, context: grpc.ServicerContext) -> bytes:
    """What the callee saw: its metadata and the deadline left."""
    return json.dumps({"metadata": dict(context.invocation_metadata()),
                       "time_remaining": context.time_remaining()}).encode()


def _missing(request: bytes, context: grpc.ServicerContext) -> bytes:
    context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
    raise AssertionError("abort raises")


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(2))
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("kith.test.Echo", {
        "Echo": grpc.unary_unary_rpc_method_handler(_echo),
        "Missing": grpc.unary_unary_rpc_method_handler(_missing)})])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(0)


def _seen(channel: grpc.Channel) -> dict[str, Any]:
    return json.loads(channel.unary_unary(ECHO)(b""))  # type: ignore[no-any-return]


def _client_calls(method: str, code: str) -> float:
    for family in metrics.GRPC_CLIENT_SECONDS.collect():
        for sample in family.samples:
            if (sample.name.endswith("_count") and sample.labels.get("method") == method
                    and sample.labels.get("code") == code):
                return sample.value
    return 0.0


def test_a_direct_call_carries_the_actor_the_request_id_and_the_deadline(address: str) -> None:
    signer = ActorSigner(dev_signing_key())
    direct = rpc.channel(address, deadline_s=2.0, signer=signer, direct_unary=True)
    intercepted = rpc.channel(address, deadline_s=2.0, signer=signer)
    user, rid = current_user.set("alice-id"), request_id.set("req-42")
    try:
        through_direct, through_interceptor = _seen(direct), _seen(intercepted)
    finally:
        current_user.reset(user)
        request_id.reset(rid)
        direct.close()
        intercepted.close()
    for seen in (through_direct, through_interceptor):
        verified = ActorVerifier(dev_verify_key()).verify(seen["metadata"][rpc.ASSERTION_KEY])
        assert verified == "alice-id"
        assert seen["metadata"][rpc.REQUEST_KEY] == "req-42"
        assert 0 < seen["time_remaining"] <= 2.0


def test_a_failed_direct_call_raises_its_status_and_is_counted_under_it(address: str) -> None:
    direct = rpc.channel(address, deadline_s=2.0, signer=ActorSigner(dev_signing_key()),
                         direct_unary=True)
    before = _client_calls(MISSING, "NOT_FOUND"), _client_calls(ECHO, "OK")
    try:
        with pytest.raises(grpc.RpcError) as failed:
            direct.unary_unary(MISSING)(b"")
        _seen(direct)
    finally:
        direct.close()
    assert failed.value.code() == grpc.StatusCode.NOT_FOUND
    assert _client_calls(MISSING, "NOT_FOUND") == before[0] + 1
    assert _client_calls(ECHO, "OK") == before[1] + 1
