"""Sessions through the real identity gRPC server: sign-in, tokens, rotation, reuse, logout."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import jwt
import pytest

from kith.protos import identity_pb2 as pb
from tests.integration.identity.identity_helpers import IdentityClient, new_id
from tests.support.rpc import refused

UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED


def test_authenticate_issues_a_pinned_jwt_that_verifies(identity: IdentityClient) -> None:
    me = identity.register("ivy")
    assert refused(lambda: identity.login("ivy", "wrong password!"))[:2] == (
        UNAUTHENTICATED, "invalid_credentials")
    assert refused(lambda: identity.login("nobody_here"))[:2] == (
        UNAUTHENTICATED, "invalid_credentials")

    pair = identity.login("ivy")
    ttl = identity.settings.access_token_ttl_s
    assert (pair.user_id, pair.expires_in) == (me.id, ttl)
    assert pair.refresh_expires_in == identity.settings.refresh_token_ttl_s
    assert jwt.get_unverified_header(pair.access_token)["alg"] == "HS256"
    claims = jwt.decode(pair.access_token, identity.settings.jwt_secret, algorithms=["HS256"])
    assert (claims["sub"], claims["sid"]) == (me.id, pair.session_id)
    assert claims["exp"] - claims["iat"] == ttl and claims["jti"]

    verified = identity.verify(pair.access_token)
    assert (verified.user_id, verified.session_id) == (me.id, pair.session_id)
    assert verified.expires_at_ms == claims["exp"] * 1000
    assert identity.login("ivy").session_id != pair.session_id, "each sign-in is a new family"
    # The published events never name the session as clients and tokens know it.
    assert identity.events(pair.session_id) == []
    started = identity.events(identity.stream_of(pair.session_id))
    assert [e[1] for e in started] == ["kith.identity.SessionStarted"]
    assert pair.session_id.encode() not in started[0][2]
    assert pair.refresh_token.encode() not in started[0][2], "only the hash is stored"


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_verify_rejects_forged_expired_and_malformed_tokens(identity: IdentityClient) -> None:
    me = identity.register("jack")
    pair = identity.login("jack")
    secret, now = identity.settings.jwt_secret, int(time.time())
    claims = {"sub": me.id, "sid": pair.session_id, "iat": now, "exp": now + 60, "jti": "j"}
    forged = {
        "token_expired": jwt.encode({**claims, "iat": now - 120, "exp": now - 60}, secret,
                                    algorithm="HS256"),
        "invalid_token": [
            jwt.encode(claims, "another-secret-of-sufficient-length-000000", algorithm="HS256"),
            jwt.encode(claims, secret, algorithm="HS512"),  # the algorithm is pinned
            jwt.encode(claims, None, algorithm="none"),
            jwt.encode({k: v for k, v in claims.items() if k != "sid"}, secret,
                       algorithm="HS256"),
            jwt.encode({**claims, "sub": "not-a-uuid"}, secret, algorithm="HS256"),
            pair.access_token[:-2] + ("AA" if not pair.access_token.endswith("AA") else "BB"),
            "garbage",
        ],
    }
    assert refused(lambda: identity.verify(forged["token_expired"]))[:2] == (
        UNAUTHENTICATED, "token_expired")
    for token in forged["invalid_token"]:
        assert refused(lambda t=token: identity.verify(t))[:2] == (
            UNAUTHENTICATED, "invalid_token"), token
    # Well signed but naming a session that never existed.
    unknown = jwt.encode({**claims, "sid": new_id()}, secret, algorithm="HS256")
    assert refused(lambda: identity.verify(unknown))[:2] == (UNAUTHENTICATED, "session_revoked")
    assert refused(lambda: identity.verify(""))[0] == grpc.StatusCode.INVALID_ARGUMENT


def test_refresh_rotates_and_reuse_revokes_the_family(identity: IdentityClient) -> None:
    me = identity.register("kate")
    first = identity.login("kate")
    bystander = identity.login("kate")  # another family of the same user

    second = identity.refresh(first.refresh_token)
    assert second.session_id == first.session_id and second.user_id == me.id
    assert second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    third = identity.refresh(second.refresh_token)
    assert identity.verify(third.access_token).session_id == first.session_id

    # The spent first token comes back (stolen?): refused, and the whole family ends.
    assert refused(lambda: identity.refresh(first.refresh_token))[:2] == (
        UNAUTHENTICATED, "refresh_token_reused")
    assert refused(lambda: identity.refresh(third.refresh_token))[:2] == (
        UNAUTHENTICATED, "session_revoked")
    for access in (first.access_token, third.access_token):
        assert refused(lambda a=access: identity.verify(a))[:2] == (
            UNAUTHENTICATED, "session_revoked")
    assert identity.verify(bystander.access_token).user_id == me.id
    assert identity.refresh(bystander.refresh_token).session_id == bystander.session_id

    assert refused(lambda: identity.refresh("never-issued"))[:2] == (
        UNAUTHENTICATED, "invalid_refresh_token")
    stream = identity.stream_of(first.session_id)
    assert [e[1].rsplit(".", 1)[1] for e in identity.events(stream)] == [
        "SessionStarted", "SessionRefreshed", "SessionRefreshed", "SessionRevoked"]
    raw = b"".join(e[2] for e in identity.events())
    for token in (first.refresh_token, second.refresh_token, third.refresh_token):
        assert token.encode() not in raw


def test_racing_refreshes_of_one_token_admit_one(identity: IdentityClient) -> None:
    identity.register("liam")
    pair = identity.login("liam")
    racers = 4
    start = threading.Barrier(racers)

    def attempt(_: int) -> str:
        start.wait()
        try:
            identity.refresh(pair.refresh_token)
            return "refreshed"
        except grpc.RpcError as exc:
            assert exc.code() == UNAUTHENTICATED
            return "refused"

    with ThreadPoolExecutor(racers) as pool:
        outcomes = list(pool.map(attempt, range(racers)))
    assert outcomes.count("refreshed") == 1, "the first commit wins; the others are reuse"
    # Whoever lost presented a spent token: the family is revoked for everyone.
    assert refused(lambda: identity.verify(pair.access_token))[:2] == (
        UNAUTHENTICATED, "session_revoked")


def test_logout_by_session_or_refresh_token(identity: IdentityClient) -> None:
    me = identity.register("mia")
    stranger = identity.register("noah")
    by_id, by_token = identity.login("mia"), identity.login("mia")

    def revoke(**fields: str) -> pb.Empty:
        return identity.stub.Revoke(pb.RevokeRequest(**fields))

    assert refused(lambda: revoke(actor_id=stranger.id, session_id=by_id.session_id))[:2] == (
        grpc.StatusCode.NOT_FOUND, "session_not_found")
    revoke(actor_id=me.id, session_id=by_id.session_id)
    revoke(actor_id=me.id, session_id=by_id.session_id)  # again: nothing more happens
    by_id_events = identity.events(identity.stream_of(by_id.session_id))
    assert [e[1] for e in by_id_events][-1] == "kith.identity.SessionRevoked"
    assert len(by_id_events) == 2
    assert refused(lambda: identity.verify(by_id.access_token))[0] == UNAUTHENTICATED
    assert refused(lambda: identity.refresh(by_id.refresh_token))[0] == UNAUTHENTICATED

    rotated = identity.refresh(by_token.refresh_token)
    revoke(refresh_token=rotated.refresh_token)
    assert refused(lambda: identity.verify(rotated.access_token))[0] == UNAUTHENTICATED
    assert refused(lambda: identity.refresh(rotated.refresh_token))[0] == UNAUTHENTICATED

    assert refused(lambda: revoke(refresh_token="never-issued"))[:2] == (
        UNAUTHENTICATED, "invalid_refresh_token")
    assert refused(lambda: revoke(actor_id=me.id, session_id=str(uuid.uuid4())))[:2] == (
        grpc.StatusCode.NOT_FOUND, "session_not_found")


@pytest.mark.parametrize("fields", [
    {},
    {"session_id": "x", "refresh_token": "y"},
    {"session_id": str(uuid.UUID(int=1))},  # a session id needs the actor
])
def test_revoke_needs_exactly_one_target(identity: IdentityClient, fields: dict) -> None:
    status, _, details = refused(lambda: identity.stub.Revoke(pb.RevokeRequest(**fields)))
    assert status == grpc.StatusCode.INVALID_ARGUMENT and details
