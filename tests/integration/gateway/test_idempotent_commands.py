"""An Idempotency-Key is honoured by the services themselves, not only by the gateway.

The gateway's claim cannot tell a failed request from one whose answer was lost: when
its deadline expires after the service committed (the answer lost on the way back), it
answers 503 and releases the claim. (A service stops work whose caller gave up first:
a command still waiting for a lock is cancelled, and its retry runs it once.) The key's
command id travels with the call, so the service recognises the client's retry and
answers with what the first attempt created.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from kith.common.config import Settings
from kith.common.service import RunningService
from kith.post.readmodel import AUTHOR_LOCK_SPACE
from tests.integration.gateway.harness import (
    Client,
    Gateway,
    assert_error,
    served_gateway,
)
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import eventually

SHORT_DEADLINE_S = 1.0


@contextmanager
def another_gateway(stack: tuple[Settings, dict[str, RunningService]],
                    **config: Any) -> Iterator[str]:
    """A further gateway over the same stack and idempotency records."""
    with served_gateway(stack[0], **config) as url:
        yield url


@pytest.fixture(scope="module")
def impatient(stack: tuple[Settings, dict[str, RunningService]]) -> Iterator[str]:
    """A gateway whose calls give up after a second."""
    with another_gateway(stack, rpc_deadline_s=SHORT_DEADLINE_S) as url:
        yield url


@pytest.fixture(scope="module")
def behind_proxy(stack: tuple[Settings, dict[str, RunningService]]) -> Iterator[str]:
    """A gateway that learns client addresses from its proxy (X-Forwarded-For)."""
    with another_gateway(stack, trusted_proxy_cidrs=("127.0.0.1/32",)) as url:
        yield url


class HeldLock:
    """A service's per-user advisory lock held from outside, so its next command waits."""

    def __init__(self, dsn: str, space: int, user_id: str) -> None:
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (space, user_id))

    def release(self) -> None:
        self.conn.close()


def as_user(url: str, user: Client) -> Client:
    return Client(url, user.token, user.user_id, user.username)


def niches_named(user: Client, name: str) -> list[dict]:
    return [n for n in user.get("/v1/niches?limit=100").json()["items"] if n["name"] == name]


def test_a_retry_after_a_lost_answer_returns_the_niche_the_first_attempt_created(
        gateway: Gateway, stack: tuple[Settings, dict[str, RunningService]]) -> None:
    owner = gateway.signup("patient")
    key, body = {"Idempotency-Key": uuid.uuid4().hex}, {"name": "Lost answer", "kind": "friends"}
    settings, running = stack
    host, port = settings.grpc_addr("graph").rsplit(":", 1)
    with TcpProxy(host, int(port)) as link, another_gateway(
            (dataclasses.replace(settings, grpc_addrs={
                **settings.grpc_addrs, "graph": f"127.0.0.1:{link.port}"}), running),
            rpc_deadline_s=SHORT_DEADLINE_S) as impatient_url:
        slow = as_user(impatient_url, owner)
        assert slow.get("/v1/niches").status_code == 200  # its link to the graph is up
        # The service commits (it stops work only when the caller gives up first); its
        # answer is lost on the way back and the gateway gives up.
        link.blackhole(replies_only=True)
        assert_error(slow.post("/v1/niches", body, headers=key), 503, "unavailable")
        committed = eventually(lambda: niches_named(owner, "Lost answer"), bool)
        link.heal()
    assert len(committed) == 1

    retry = owner.post("/v1/niches", body, headers=key)

    assert retry.status_code == 201, retry.text
    assert retry.json()["id"] == committed[0]["id"] and retry.json()["my_role"] == "owner"
    assert "Idempotent-Replayed" not in retry.headers  # the service answered, not a replay
    assert retry.headers["Location"] == f"/v1/niches/{committed[0]['id']}"
    assert len(niches_named(owner, "Lost answer")) == 1
    # The same key stays the caller's own: somebody else's request with it creates theirs.
    other = gateway.signup("stranger")
    mine = other.post("/v1/niches", body, headers=key)
    assert mine.status_code == 201 and mine.json()["id"] != committed[0]["id"]


def test_a_retry_after_a_lost_answer_returns_the_post_and_comment_already_made(
        gateway: Gateway, impatient: str) -> None:
    author = gateway.signup("poster")
    niche = author.post("/v1/niches", {"name": "Posts", "kind": "friends"}).json()["id"]
    slow = as_user(impatient, author)
    post_key, post_body = {"Idempotency-Key": uuid.uuid4().hex}, {"text": "only once"}
    lock = HeldLock(gateway.settings.database_url("post"), AUTHOR_LOCK_SPACE, author.user_id)
    try:
        assert_error(slow.post(f"/v1/niches/{niche}/posts", post_body, headers=post_key), 503)
    finally:
        lock.release()

    retry = author.post(f"/v1/niches/{niche}/posts", post_body, headers=post_key)

    assert retry.status_code == 201, retry.text
    post_id = retry.json()["id"]
    assert retry.json()["text"] == "only once"
    with psycopg.connect(gateway.settings.database_url("post")) as conn:
        posts = conn.execute("SELECT id::text FROM posts WHERE niche_id = %s",
                             (niche,)).fetchall()
    assert posts == [(post_id,)]

    comment_key, comment = {"Idempotency-Key": uuid.uuid4().hex}, {"text": "just one"}
    lock = HeldLock(gateway.settings.database_url("post"), AUTHOR_LOCK_SPACE, author.user_id)
    try:
        assert_error(slow.post(f"/v1/posts/{post_id}/comments", comment, headers=comment_key),
                     503)
    finally:
        lock.release()
    again = author.post(f"/v1/posts/{post_id}/comments", comment, headers=comment_key)

    assert again.status_code == 201, again.text
    comments = author.get(f"/v1/posts/{post_id}/comments").json()["items"]
    assert [c["id"] for c in comments] == [again.json()["id"]]
    assert again.json()["text"] == "just one"


def test_anonymous_callers_at_different_addresses_do_not_share_keys(behind_proxy: str) -> None:
    key = uuid.uuid4().hex
    anyone = Client(behind_proxy)

    def register(address: str, name: str) -> Any:
        return anyone.post("/v1/accounts", {"username": f"{name}_{key[:8]}",
                                            "password": "correct horse battery",
                                            "display_name": name},
                           headers={"Idempotency-Key": key, "X-Forwarded-For": address})

    first = register("198.51.100.7", "first")
    second = register("203.0.113.9", "second")  # same key, another caller: not a reuse
    again = register("198.51.100.7", "first")

    assert first.status_code == second.status_code == 201, (first.text, second.text)
    assert first.json()["id"] != second.json()["id"]
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
