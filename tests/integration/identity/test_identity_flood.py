"""A sign-in flood is shed, not queued: hashing is bounded, token checks keep answering."""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor

import grpc

from kith.common.rpc import error_info
from kith.identity.entrypoint import SPEC
from kith.protos import identity_pb2 as pb
from kith.protos import identity_pb2_grpc
from tests.integration.identity.identity_helpers import PASSWORD
from tests.support.rpc import channel

# Costly enough that a handful of concurrent hashes overlap; one slot, no queue.
FLOOD_ARGON2 = {"KITH_ARGON2_TIME_COST": "2", "KITH_ARGON2_MEMORY_KIB": str(16 * 1024),
                "KITH_ARGON2_PARALLELISM": "1", "KITH_ARGON2_MAX_CONCURRENT": "1",
                "KITH_ARGON2_QUEUE_WAIT_MS": "0"}


def test_a_flood_of_unknown_usernames_is_shed_while_tokens_still_verify(stack) -> None:
    stack.settings = dataclasses.replace(stack.settings,
                                         extra={**stack.settings.extra, **FLOOD_ARGON2})
    running = stack.start(SPEC)
    with channel(running.address, deadline_s=30) as chan:
        stub = identity_pb2_grpc.IdentityServiceStub(chan)
        stub.Register(pb.RegisterRequest(username="vic_victim", password=PASSWORD,
                                         display_name="Vic"))
        tokens = stub.Authenticate(pb.AuthenticateRequest(username="vic_victim",
                                                          password=PASSWORD))

        def sign_in(i: int) -> str:
            try:
                stub.Authenticate(pb.AuthenticateRequest(username=f"nobody_{i}",
                                                         password="guess guess guess"))
            except grpc.RpcError as exc:
                status, _, code, _ = error_info(exc)
                return f"{status.name}:{code}"
            return "OK"

        with ThreadPoolExecutor(12) as pool:
            flood = [pool.submit(sign_in, i) for i in range(12)]
            started = time.perf_counter()
            verified = stub.VerifyToken(pb.VerifyTokenRequest(access_token=tokens.access_token))
            verify_ms = (time.perf_counter() - started) * 1000
            outcomes = [f.result() for f in flood]

    assert verified.user_id == tokens.user_id
    assert verify_ms < 1000, "a token check must not queue behind password hashing"
    assert set(outcomes) <= {"UNAUTHENTICATED:invalid_credentials", "UNAVAILABLE:busy"}
    assert "UNAVAILABLE:busy" in outcomes, "beyond the hashing slots, sign-ins are shed"
