"""The server interceptor wraps a method's handler once and still checks every call.

gRPC asks a server's interceptor for the handler of every call, on the server's one
polling thread. Building the wrapper (closures, a new method handler) for each call
cost that thread a few microseconds a call; the wrapper of a method is now kept and
reused while the server answers the method with the same handler. Reuse must not
weaken anything: every call on a kept wrapper is verified like the first.
"""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest

from kith.common import rpc
from kith.common.assertion import ActorSigner, ActorVerifier, generate_signing_key, public_key_of
from kith.protos import feed_pb2

SERVICE = "kith.feed.FeedService"
METHOD = f"/{SERVICE}/GetHomeFeed"


class _Details(grpc.HandlerCallDetails):
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


def _handler() -> grpc.RpcMethodHandler:
    return grpc.unary_unary_rpc_method_handler(
        lambda request, context: feed_pb2.FeedPage(next_cursor=request.viewer_id),
        request_deserializer=feed_pb2.GetHomeFeedRequest.FromString,
        response_serializer=feed_pb2.FeedPage.SerializeToString)


def test_a_methods_wrapper_is_built_once_and_rebuilt_for_a_new_handler() -> None:
    interceptor = rpc.ServerInterceptor(ActorVerifier(public_key_of(generate_signing_key())))
    served = _handler()
    first = interceptor.intercept_service(lambda d: served, _Details(METHOD))
    again = interceptor.intercept_service(lambda d: served, _Details(METHOD))
    assert again is first
    assert first is not served  # wrapped, not passed through
    replaced = _handler()
    assert interceptor.intercept_service(lambda d: replaced, _Details(METHOD)) is not first
    assert interceptor.intercept_service(lambda d: None, _Details("/x/Unknown")) is None


@pytest.fixture
def server() -> Any:
    key = generate_signing_key()
    handlers = {"GetHomeFeed": _handler()}

    def register(server: grpc.Server) -> None:
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, handlers),))
        server.add_registered_method_handlers(SERVICE, handlers)

    running = rpc.start_server("127.0.0.1:0", [register], [SERVICE],
                               verifier=ActorVerifier(public_key_of(key)))
    yield running, ActorSigner(key)
    running.stop(0)


def test_every_call_on_a_kept_wrapper_is_verified(server: Any) -> None:
    running, signer = server
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as raw:
        call = raw.unary_unary(METHOD, request_serializer=feed_pb2.GetHomeFeedRequest
                               .SerializeToString,
                               response_deserializer=feed_pb2.FeedPage.FromString)
        signed = [(rpc.ASSERTION_KEY, signer.mint(alice))]
        outcomes = []
        for _ in range(3):  # the wrapper is kept after the first call
            page = call(feed_pb2.GetHomeFeedRequest(viewer_id=alice), metadata=signed,
                        timeout=5)
            assert page.next_cursor == alice
            filled = call(feed_pb2.GetHomeFeedRequest(), metadata=signed, timeout=5)
            assert filled.next_cursor == alice  # an empty viewer_id acts for the caller
            for request, metadata in (
                    (feed_pb2.GetHomeFeedRequest(viewer_id=alice), []),  # unsigned
                    (feed_pb2.GetHomeFeedRequest(viewer_id=bob), signed),  # someone else
                    (feed_pb2.GetHomeFeedRequest(viewer_id=alice),
                     [(rpc.ASSERTION_KEY, ActorSigner(generate_signing_key()).mint(alice))])):
                with pytest.raises(grpc.RpcError) as refused:
                    call(request, metadata=metadata, timeout=5)
                outcomes.append(refused.value.code())  # type: ignore[attr-defined]
    assert outcomes == [grpc.StatusCode.UNAUTHENTICATED] * 9
