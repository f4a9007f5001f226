"""Account deletion is crypto-shredding: proven on the raw events table and the raw topic."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import grpc
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from psycopg import sql

from kith.common import crypto
from kith.common.codec import default_codec
from kith.common.config import Settings
from kith.identity.events import Cipher, account_event
from kith.identity.keys import DATA_KEYS
from kith.protos import identity_pb2 as pb
from tests.integration.identity.identity_helpers import PASSWORD, IdentityClient
from tests.support.rpc import refused
from tests.support.waiting import eventually


@dataclass(frozen=True)
class RawMessage:
    key: bytes
    value: bytes
    headers: dict[str, bytes]

    def bytes(self) -> bytes:
        return b"\x00".join([self.key, self.value, *self.headers.values()])


def read_topic(settings: Settings, expected: int, timeout_s: float = 30) -> list[RawMessage]:
    """Every message of identity's topic from offset zero, once ``expected`` have arrived."""
    topic = settings.topic("identity")
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap,
                         "group.id": f"shredding-test-{uuid.uuid4()}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        messages: list[RawMessage] = []
        deadline = time.monotonic() + timeout_s
        while len(messages) < expected and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            messages.append(RawMessage(msg.key(), msg.value(), dict(msg.headers() or [])))
        return messages
    finally:
        consumer.close()


def test_deleting_an_account_leaves_nothing_readable_of_it(identity: IdentityClient) -> None:
    stub = identity.stub
    leaver = identity.register("zed_leaver", "Zedekiah Leaver", "I collect rare moths")
    stub.UpdateProfile(pb.UpdateProfileRequest(actor_id=leaver.id, display_name="Zed Mothman",
                                               bio="Moths of the Carpathians"))
    stub.ChangePassword(pb.ChangePasswordRequest(actor_id=leaver.id, current_password=PASSWORD,
                                                 new_password="leaver's new secret"))
    session = identity.login("zed_leaver", "leaver's new secret")
    session = identity.refresh(session.refresh_token)
    stayer = identity.register("yara_stays", "Yara Stays", "Gardens and bees")
    leaver_secrets = ["zed_leaver", "Zedekiah Leaver", "I collect rare moths", "Zed Mothman",
                      "Moths of the Carpathians", PASSWORD, "leaver's new secret"]

    # Erasure is irreversible: without the password (a stolen access token) it is refused.
    for wrong in ("", PASSWORD):
        status, code, _ = refused(lambda w=wrong: stub.DeleteAccount(
            pb.DeleteAccountRequest(actor_id=leaver.id, password=w)))
        assert (status, code) == (grpc.StatusCode.PERMISSION_DENIED, "reauthentication_required")
    stub.DeleteAccount(pb.DeleteAccountRequest(actor_id=leaver.id,
                                               password="leaver's new secret"))

    # The service forgets the account everywhere it answers from.
    for call in (lambda: stub.GetProfile(pb.GetProfileRequest(actor_id=leaver.id)),
                 lambda: stub.DeleteAccount(pb.DeleteAccountRequest(actor_id=leaver.id)),
                 lambda: stub.UpdateProfile(pb.UpdateProfileRequest(actor_id=leaver.id,
                                                                    bio="back?"))):
        assert refused(call)[0] == grpc.StatusCode.NOT_FOUND
    assert refused(lambda: identity.login("zed_leaver", "leaver's new secret"))[0] == (
        grpc.StatusCode.UNAUTHENTICATED)
    assert refused(lambda: identity.verify(session.access_token))[1] == "session_revoked"
    assert refused(lambda: identity.refresh(session.refresh_token))[1] == "session_revoked"
    batch = stub.BatchGetProfiles(pb.BatchGetProfilesRequest(user_ids=[leaver.id, stayer.id]))
    assert [p.id for p in batch.profiles] == [stayer.id]

    # The raw events table: every event is still there, none holds the leaver's data.
    events = identity.events()
    assert [t.rsplit(".", 1)[1] for s, t, _ in events if s == leaver.id] == [
        "AccountRegistered", "ProfileChanged", "PasswordChanged", "AccountDeleted"]
    assert len(events) == 4 + 3 + 1  # + session started/refreshed/revoked + the stayer
    _assert_absent(leaver_secrets, [payload for *_, payload in events], "events table")

    # Nor does any table of identity's database (bytea shows as hex here: hence the check above).
    with identity.db() as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        dump = [row[0].encode() for table in tables for row in conn.execute(
            sql.SQL("SELECT t::text FROM {} t").format(sql.Identifier(table)))]
        keys = {u: DATA_KEYS.unwrap(k, u)  # stored wrapped under the service's KEK
                for u, k in conn.execute("SELECT user_id::text, data_key FROM data_keys")}
    assert {"events", "accounts", "data_keys", "sessions", "refresh_tokens"} <= set(tables)
    _assert_absent(leaver_secrets, dump, "identity database")
    assert set(keys) == {stayer.id}, "the leaver's data key is destroyed"

    # The raw topic, read from the beginning: the same events, the same absence.
    _wait_until_relayed(identity)
    messages = read_topic(identity.settings, expected=len(events))
    assert len(messages) >= len(events), f"only {len(messages)} of {len(events)} on the topic"
    assert {m.headers["event_id"] for m in messages} == set(_event_ids(identity))
    _assert_absent(leaver_secrets, [m.bytes() for m in messages], "topic")

    codec = default_codec()
    decoded = [(m.key.decode(), *codec.decode(m.value)) for m in messages]
    deleted = [data for key, kind, data in decoded if kind == "kith.identity.AccountDeleted"]
    assert len(deleted) == 1 and deleted[0]["user_id"] == leaver.id
    assert set(deleted[0]) == {"user_id", "deleted_at_ms"}

    # The leaver's sealed fields fit no key that is left; the stayer's still open.
    stayer_cipher = Cipher(keys[stayer.id], uuid.UUID(stayer.id))
    [registered] = [data for key, kind, data in decoded
                    if kind == "kith.identity.AccountRegistered" and key == stayer.id]
    opened = account_event("kith.identity.AccountRegistered", registered, stayer_cipher)
    assert (opened.username, opened.display_name, opened.bio) == (
        "yara_stays", "Yara Stays", "Gardens and bees")
    [leaver_registered] = [data for key, kind, data in decoded
                           if kind == "kith.identity.AccountRegistered" and key == leaver.id]
    assert crypto.is_encrypted(leaver_registered["username"])
    for key in keys.values():
        for user in (leaver.id, stayer.id):
            try:
                crypto.decrypt(key, user, leaver_registered["display_name"])
            except crypto.ShreddedError:
                continue
            raise AssertionError("a remaining key opened the leaver's data")


def _wait_until_relayed(identity: IdentityClient, timeout_s: float = 30) -> None:
    relay = identity.running.relay
    assert relay is not None
    with identity.db() as conn:
        eventually(lambda: relay.backlog(conn), lambda backlog: backlog == 0,
                   timeout=timeout_s, what="the relay's backlog")


def _event_ids(identity: IdentityClient) -> list[bytes]:
    with identity.db() as conn:
        return [r[0].encode() for r in conn.execute("SELECT event_id::text FROM events")]


def _assert_absent(secrets: list[str], blobs: list[bytes], where: str) -> None:
    for secret in secrets:
        for blob in blobs:
            for form in (secret.encode(), secret.encode("utf-16-le")):
                assert form not in blob, f"{secret!r} is readable in the {where}"
