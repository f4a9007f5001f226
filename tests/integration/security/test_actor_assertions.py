"""Inside the cluster the acting user is a verified fact, not a request field.

Whoever can reach a service's port used to be able to act as anyone by naming
them in ``actor_id``. Now only a call carrying an assertion signed with the
gateway's key is served, and it acts for the asserted user only.
"""

from __future__ import annotations

import uuid

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from kith.common import rpc
from kith.common.assertion import ActorSigner, generate_signing_key
from kith.common.rpc import ASSERTION_KEY
from kith.graph.entrypoint import SPEC as GRAPH
from kith.protos import graph_pb2, graph_pb2_grpc
from tests.support.rpc import channel, refused


@pytest.fixture
def graph_address(stack) -> str:
    return stack.start(GRAPH).address


def _niche(actor: str = "") -> graph_pb2.CreateNicheRequest:
    return graph_pb2.CreateNicheRequest(actor_id=actor, name="Family", kind="family")


def test_a_call_without_an_assertion_is_refused(graph_address: str) -> None:
    with grpc.insecure_channel(graph_address) as raw:
        status, _, _ = refused(lambda: graph_pb2_grpc.GraphServiceStub(raw).CreateNiche(
            _niche(str(uuid.uuid4())), timeout=5))
    assert status is grpc.StatusCode.UNAUTHENTICATED


def test_an_assertion_signed_with_another_key_is_refused(graph_address: str) -> None:
    mallory = ActorSigner(generate_signing_key())
    victim = str(uuid.uuid4())
    with grpc.insecure_channel(graph_address) as raw:
        stub = graph_pb2_grpc.GraphServiceStub(raw)
        status, _, _ = refused(lambda: stub.CreateNiche(
            _niche(victim), metadata=[(ASSERTION_KEY, mallory.mint(victim))], timeout=5))
        tampered = ActorSigner(generate_signing_key()).mint(victim)
        status2, _, _ = refused(lambda: stub.CreateNiche(
            _niche(victim), metadata=[(ASSERTION_KEY, tampered + "x")], timeout=5))
    assert status is status2 is grpc.StatusCode.UNAUTHENTICATED


def test_a_caller_cannot_name_someone_else_as_the_actor(graph_address: str, stack) -> None:
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    signer = ActorSigner(stack.settings.signing_key())
    with grpc.insecure_channel(graph_address) as raw:
        stub = graph_pb2_grpc.GraphServiceStub(raw)
        status, _, _ = refused(lambda: stub.CreateNiche(
            _niche(bob), metadata=[(ASSERTION_KEY, signer.mint(alice))], timeout=5))
        anonymous, _, _ = refused(lambda: stub.CreateNiche(
            _niche(bob), metadata=[(ASSERTION_KEY, signer.mint(""))], timeout=5))
        # An empty actor field acts for the asserted caller.
        niche = stub.CreateNiche(_niche(), metadata=[(ASSERTION_KEY, signer.mint(alice))],
                                 timeout=5)
        members = stub.ListMembers(graph_pb2.ListMembersRequest(niche_id=niche.id),
                                   metadata=[(ASSERTION_KEY, signer.mint(alice))], timeout=5)
    assert status is anonymous is grpc.StatusCode.UNAUTHENTICATED
    assert [m.user_id for m in members.items] == [alice]


def test_health_needs_no_assertion_and_reflection_is_off_outside_development(stack) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    server = rpc.start_server("127.0.0.1:0", [], ["x"], reflection_on=False)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as raw:
            health = health_pb2_grpc.HealthStub(raw).Check(health_pb2.HealthCheckRequest(),
                                                            timeout=5)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            replies = reflection_pb2_grpc.ServerReflectionStub(raw).ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
            with pytest.raises(grpc.RpcError) as failure:
                list(replies)
        assert failure.value.code() is grpc.StatusCode.UNIMPLEMENTED
    finally:
        server.stop(0)


def test_a_signed_channel_acts_for_the_actor_it_names(graph_address: str) -> None:
    alice = str(uuid.uuid4())
    with channel(graph_address) as signed:
        niche = graph_pb2_grpc.GraphServiceStub(signed).CreateNiche(_niche(alice))
    assert niche.my_role == graph_pb2.OWNER


def test_streaming_calls_are_verified_like_unary_ones(stack) -> None:
    """Media's chunked Upload (a client stream) and Fetch (a server stream) are no way around."""
    from kith.media.entrypoint import SPEC as MEDIA
    from kith.protos import media_pb2, media_pb2_grpc

    address = stack.start(MEDIA).address
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    signer = ActorSigner(stack.settings.signing_key())

    def chunks(*actors: str):
        return iter([media_pb2.UploadChunk(actor_id=actor, declared_content_type="image/png",
                                           data=b"\x89PNG") for actor in actors])

    with grpc.insecure_channel(address) as raw:
        stub = media_pb2_grpc.MediaServiceStub(raw)
        unsigned, _, _ = refused(lambda: stub.Upload(chunks(alice), timeout=5))
        # A later chunk naming someone else is refused as a forgery too.
        smuggled, _, _ = refused(lambda: stub.Upload(
            chunks(alice, bob), metadata=[(ASSERTION_KEY, signer.mint(alice))], timeout=5))
        fetch = stub.Fetch(media_pb2.FetchRequest(actor_id=alice, media_id=str(uuid.uuid4())),
                           timeout=5)
        with pytest.raises(grpc.RpcError) as failure:
            list(fetch)
    assert unsigned is smuggled is grpc.StatusCode.UNAUTHENTICATED
    assert failure.value.code() is grpc.StatusCode.UNAUTHENTICATED
