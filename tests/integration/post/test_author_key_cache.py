"""Post keeps an author's unwrapped key in memory between writes, and never past erasure."""

from __future__ import annotations

import time

import psycopg

from kith.common import crypto
from kith.post.keys import AUTHOR_KEYS
from tests.integration.post.post_world import World, user
from tests.support.rpc import refused
from tests.support.waiting import eventually


def stored_key(world: World, author: str) -> bytes | None:
    with psycopg.connect(world.settings.database_url("post")) as conn:
        row = conn.execute("SELECT key FROM author_keys WHERE user_id = %s",
                           (author,)).fetchone()
    return AUTHOR_KEYS.unwrap(row[0], author) if row else None


def test_a_key_is_kept_once_committed_and_gone_with_the_account(world: World) -> None:
    owner, author = user(), user()
    niche = world.niche(owner, author)

    world.publish(author, niche)  # creates the key in its transaction: not kept yet
    assert not AUTHOR_KEYS.cached(author)
    world.publish(author, niche)  # reads the committed key: kept from now on
    assert AUTHOR_KEYS.cached(author)
    key = stored_key(world, author)
    assert key is not None and AUTHOR_KEYS.key_for(None, author) == key  # type: ignore[arg-type]

    world.delete_account(author)
    eventually(lambda: stored_key(world, author) is None, what="the key was shredded")
    assert not AUTHOR_KEYS.cached(author)  # dropped by the erasure, in the same process
    assert refused(lambda: world.publish(author, niche))[0].name == "NOT_FOUND"
    assert not AUTHOR_KEYS.cached(author) and stored_key(world, author) is None


def test_a_key_another_process_still_holds_is_never_used_after_erasure(world: World) -> None:
    owner, author = user(), user()
    niche = world.niche(owner, author)
    world.publish(author, niche)
    world.publish(author, niche)
    key = stored_key(world, author)
    world.delete_account(author)
    eventually(lambda: stored_key(world, author) is None, what="the key was shredded")

    # As a replica that did not run the erasure would: the key still in its memory.
    assert key is not None
    crypto._cache[AUTHOR_KEYS.subject(author)] = (key, time.monotonic())
    before = posts_by(world, author)
    assert refused(lambda: world.publish(author, niche))[0].name == "NOT_FOUND"
    assert refused(lambda: world.comment(author, world.publish(owner, niche).id))[0].name \
        == "NOT_FOUND"
    assert posts_by(world, author) == before  # nothing was sealed with it
    assert stored_key(world, author) is None  # and no new key was made for the erased account


def test_a_kept_key_is_dropped_after_its_time(world: World, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    owner, author = user(), user()
    niche = world.niche(owner, author)
    world.publish(author, niche)
    world.publish(author, niche)
    kept_at = crypto._cache[AUTHOR_KEYS.subject(author)][1]
    monkeypatch.setattr(crypto, "CACHED_KEY_TTL_S", 0.0)
    world.publish(author, niche)  # the entry was too old: read from the table again
    assert crypto._cache[AUTHOR_KEYS.subject(author)][1] > kept_at


def posts_by(world: World, author: str) -> int:
    with psycopg.connect(world.settings.database_url("post")) as conn:
        return int(conn.execute("SELECT count(*) FROM events WHERE metadata->>'actor_id' = %s",
                                (author,)).fetchone()[0])
