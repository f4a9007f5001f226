"""Accounts and profiles through the real identity gRPC server."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import psycopg
import pytest

from kith.common.errors import AlreadyExists
from kith.identity import readmodel
from kith.identity.domain import AccountRegistered
from kith.protos import identity_pb2 as pb
from tests.integration.identity.identity_helpers import PASSWORD, IdentityClient, new_id
from tests.support.rpc import refused


def test_register_then_read_profiles(identity: IdentityClient) -> None:
    alice = identity.register("alice", "Alice A.", "reads a lot")
    bob = identity.register("bob_2", "Bob")
    assert (alice.username, alice.display_name, alice.bio) == ("alice", "Alice A.", "reads a lot")
    assert alice.created_at_ms > 0

    me = identity.stub.GetProfile(pb.GetProfileRequest(actor_id=alice.id))
    assert me == alice
    other = identity.stub.GetProfile(pb.GetProfileRequest(actor_id=alice.id, user_id=bob.id))
    assert (other.id, other.username, other.display_name, other.bio) == (bob.id, "bob_2", "Bob", "")

    batch = identity.stub.BatchGetProfiles(pb.BatchGetProfilesRequest(
        user_ids=[bob.id, new_id(), alice.id, bob.id]))
    assert sorted((p.id, p.display_name) for p in batch.profiles) == sorted(
        [(alice.id, "Alice A."), (bob.id, "Bob")])
    assert not identity.stub.BatchGetProfiles(pb.BatchGetProfilesRequest()).profiles

    status, code, _ = refused(lambda: identity.stub.GetProfile(
        pb.GetProfileRequest(actor_id=alice.id, user_id=new_id())))
    assert (status, code) == (grpc.StatusCode.NOT_FOUND, "account_not_found")
    assert [e[1] for e in identity.events(alice.id)] == ["kith.identity.AccountRegistered"]


def test_invalid_input_names_every_field(identity: IdentityClient) -> None:
    status, code, details = refused(lambda: identity.stub.Register(pb.RegisterRequest(
        username="No Caps", password="short", display_name="  ", bio="x" * 501)))
    assert (status, code) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid_argument")
    assert set(details) == {"username", "password", "display_name", "bio"}
    for username in ("ab", "a" * 33, "dash-no", "ünï"):
        _, _, details = refused(lambda u=username: identity.register(u))
        assert set(details) == {"username"}
    assert identity.register("a" * 32).username == "a" * 32

    status, _, details = refused(lambda: identity.stub.GetProfile(
        pb.GetProfileRequest(actor_id="nope")))
    assert status == grpc.StatusCode.INVALID_ARGUMENT and details == {"actor_id": "must be a UUID"}
    _, _, details = refused(lambda: identity.stub.BatchGetProfiles(
        pb.BatchGetProfilesRequest(user_ids=[new_id(), "x"])))
    assert set(details) == {"user_ids"}
    _, _, details = refused(lambda: identity.stub.DeleteAccount(pb.DeleteAccountRequest()))
    assert details == {"actor_id": "is required"}
    assert [e[1] for e in identity.events()] == ["kith.identity.AccountRegistered"], \
        "only the valid registration was recorded"


def test_username_taken(identity: IdentityClient) -> None:
    identity.register("carol")
    status, code, details = refused(lambda: identity.register("carol", "Another Carol"))
    assert (status, code, details) == (grpc.StatusCode.ALREADY_EXISTS, "username_taken",
                                       {"username": "taken"})


def test_concurrent_registrations_of_one_name_admit_exactly_one(
        identity: IdentityClient) -> None:
    contenders = 8
    start = threading.Barrier(contenders)

    def attempt(i: int) -> str:
        start.wait()
        try:
            identity.register("dave", f"Dave {i}", password=f"{PASSWORD} {i}")
            return "won"
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.ALREADY_EXISTS, exc
            return "taken"

    with ThreadPoolExecutor(contenders) as pool:
        outcomes = list(pool.map(attempt, range(contenders)))
    assert outcomes.count("won") == 1
    registered = [e for e in identity.events() if e[1] == "kith.identity.AccountRegistered"]
    assert len(registered) == 1
    with identity.db() as conn:
        assert conn.execute("SELECT count(*) FROM accounts").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM data_keys").fetchone()[0] == 1


def test_the_unique_index_refuses_a_registration_racing_past_the_early_check(
        identity: IdentityClient) -> None:
    """Two transactions insert one name: the second waits, then fails with username_taken."""
    dsn = identity.settings.database_url("identity")

    def registered(name: str) -> AccountRegistered:
        return AccountRegistered(uuid.uuid4(), name, "D", "", "h", 1)

    first = psycopg.connect(dsn)
    readmodel.add_account(first, registered("erin"))
    outcome: list[BaseException] = []

    def second() -> None:
        with psycopg.connect(dsn) as conn:
            try:
                readmodel.add_account(conn, registered("erin"))
            except AlreadyExists as exc:
                outcome.append(exc)

    racer = threading.Thread(target=second)
    racer.start()
    racer.join(0.3)
    assert racer.is_alive(), "the second insert waits for the first transaction"
    first.commit()
    first.close()
    racer.join(10)
    assert len(outcome) == 1 and outcome[0].code == "username_taken"  # type: ignore[attr-defined]


def test_update_profile(identity: IdentityClient) -> None:
    me = identity.register("frank", "Frank", "old bio")

    def update(**fields: str) -> pb.Profile:
        return identity.stub.UpdateProfile(pb.UpdateProfileRequest(actor_id=me.id, **fields))

    assert (update(display_name="Frankie").display_name, update().bio) == ("Frankie", "old bio")
    changed = update(bio="new bio")
    assert (changed.display_name, changed.bio, changed.username) == ("Frankie", "new bio", "frank")
    assert update(bio="").bio == ""
    versions_before = len(identity.events(me.id))
    assert update(display_name="Frankie").display_name == "Frankie"
    assert len(identity.events(me.id)) == versions_before, "a no-op changes nothing"
    assert [e[1] for e in identity.events(me.id)] == [
        "kith.identity.AccountRegistered", *["kith.identity.ProfileChanged"] * 3]

    status, _, details = refused(lambda: update(display_name="", bio="\x00"))
    assert status == grpc.StatusCode.INVALID_ARGUMENT
    assert set(details) == {"display_name", "bio"}
    status, code, _ = refused(lambda: identity.stub.UpdateProfile(
        pb.UpdateProfileRequest(actor_id=new_id(), bio="ghost")))
    assert (status, code) == (grpc.StatusCode.NOT_FOUND, "account_not_found")


def test_change_password_keeps_the_current_session_and_ends_the_others(
        identity: IdentityClient) -> None:
    me = identity.register("grace")
    current, other = identity.login("grace"), identity.login("grace")

    def change(current_password: str, new_password: str) -> pb.Empty:
        return identity.stub.ChangePassword(pb.ChangePasswordRequest(
            actor_id=me.id, current_password=current_password, new_password=new_password,
            session_id=current.session_id))

    status, code, details = refused(lambda: change("not my password", "a new password!"))
    assert (status, code, details) == (grpc.StatusCode.PERMISSION_DENIED, "wrong_password",
                                       {"current_password": "wrong"})
    status, _, details = refused(lambda: change(PASSWORD, "short"))
    assert status == grpc.StatusCode.INVALID_ARGUMENT and set(details) == {"new_password"}

    change(PASSWORD, "a new password!")
    status, code, _ = refused(lambda: identity.login("grace"))
    assert (status, code) == (grpc.StatusCode.UNAUTHENTICATED, "invalid_credentials")
    assert identity.login("grace", "a new password!").user_id == me.id
    assert identity.verify(current.access_token).session_id == current.session_id
    for call in (lambda: identity.verify(other.access_token),
                 lambda: identity.refresh(other.refresh_token)):
        assert refused(call)[:2] == (grpc.StatusCode.UNAUTHENTICATED, "session_revoked")
    assert [e[1] for e in identity.events(me.id)] == ["kith.identity.AccountRegistered",
                                                      "kith.identity.PasswordChanged"]
    revoked = identity.events(identity.stream_of(other.session_id))
    assert revoked[-1][1] == "kith.identity.SessionRevoked"


@pytest.mark.parametrize("field", ["username", "password"])
def test_authenticate_requires_both_fields(identity: IdentityClient, field: str) -> None:
    given = {"username": "henry", "password": PASSWORD, field: ""}
    status, _, details = refused(lambda: identity.stub.Authenticate(
        pb.AuthenticateRequest(**given)))
    assert status == grpc.StatusCode.INVALID_ARGUMENT and details == {field: "is required"}
