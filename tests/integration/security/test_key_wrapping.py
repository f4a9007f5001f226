"""The post service's data keys, wrapped under a KEK that lives outside its database.

An author publishes; the author's key row holds no data key a database dump could use.
An operator rotates the KEK with ``kith keys wrap`` and retires the old one: the author
can still edit (an edit opens the post's sealed history). A database from before wrapping
is migrated the same way. And a service given the wrong KEK fails loudly instead of
treating the author's texts as erased.
"""

from __future__ import annotations

import base64
import dataclasses
import os
from collections.abc import Iterator

import grpc
import psycopg
import pytest

from kith.cli import keys
from kith.common import crypto
from kith.common.crypto import Keyring
from kith.graph.entrypoint import SPEC as GRAPH
from kith.post.entrypoint import SPEC as POST
from kith.post.keys import AUTHOR_KEYS
from kith.protos import post_pb2
from tests.integration.post.post_world import World, user
from tests.support.environment import ServiceStack
from tests.support.rpc import refused


def kek() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def restored_keyring() -> Iterator[None]:
    """The test swaps the process's keyring (what an operator's restart would do)."""
    saved = crypto.keyring()
    yield
    crypto.use_keyring(saved)


def stored_key(stack: ServiceStack, author: str) -> bytes:
    with psycopg.connect(stack.settings.database_url("post")) as conn:
        row = conn.execute("SELECT key FROM author_keys WHERE user_id = %s", (author,)).fetchone()
    assert row is not None
    return bytes(row[0])


def test_keys_are_wrapped_rotated_migrated_and_a_wrong_kek_fails_loudly(
        stack: ServiceStack, restored_keyring: None) -> None:
    old = kek()
    stack.settings = dataclasses.replace(stack.settings, key_encryption_keys=f"old:{old}")
    stack.start(GRAPH)
    stack.start(POST)
    world = World.connect(stack.settings)
    owner, author = user(), user()
    niche = world.niche(owner, author)
    post = world.publish(author, niche, "picnic at the lake")

    def edit(text: str) -> post_pb2.Post:
        return world.post.Edit(post_pb2.EditRequest(actor_id=author, post_id=post.id, text=text))

    stored = stored_key(stack, author)
    data_key = Keyring.parse(f"old:{old}").unwrap(stored, AUTHOR_KEYS.subject(author))
    assert data_key not in stored  # a dump of the database alone holds no data key

    # Rotation: a new KEK goes in front, `kith keys wrap` rewraps, the old KEK retires.
    new = kek()
    rotating = dataclasses.replace(stack.settings, key_encryption_keys=f"new:{new},old:{old}")
    assert keys.wrap(rotating, "post") == {"author_keys": 1}
    assert keys.wrap(rotating, "post") == {"author_keys": 0}  # nothing left on the old KEK
    crypto.use_keyring(Keyring.parse(f"new:{new}"))
    assert edit("picnic at the lake, 3pm").text == "picnic at the lake, 3pm"

    # A database from before wrapping: its raw key is refused until it is wrapped.
    with psycopg.connect(stack.settings.database_url("post")) as conn:
        conn.execute("UPDATE author_keys SET key = %s WHERE user_id = %s", (data_key, author))
    assert refused(lambda: edit("picnic at 4pm"))[0] == grpc.StatusCode.INTERNAL
    assert keys.wrap(dataclasses.replace(stack.settings, key_encryption_keys=f"new:{new}"),
                     "post") == {"author_keys": 1}
    assert edit("picnic at 4pm").text == "picnic at 4pm"

    # The wrong KEK is a loud fault, never a text that looks erased.
    crypto.use_keyring(Keyring.parse(f"new:{kek()}"))
    assert refused(lambda: edit("picnic cancelled"))[0] == grpc.StatusCode.INTERNAL
    assert world.get(owner, post.id).text == "picnic at 4pm"  # nothing changed, nothing lost
    world.close()
