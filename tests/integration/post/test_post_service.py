"""The post service through real gRPC, with a real graph service, PostgreSQL and Kafka."""

from __future__ import annotations

import logging
import threading

import grpc
import psycopg
import pytest

from kith.common import crypto
from kith.common.codec import default_codec
from kith.post.keys import AUTHOR_KEYS
from kith.protos import graph_pb2, post_pb2
from tests.integration.post.post_world import World, user
from tests.support.kafka import read_topic
from tests.support.rpc import refused
from tests.support.waiting import eventually

NOT_FOUND = grpc.StatusCode.NOT_FOUND


def test_publish_edit_and_delete_by_the_author(world: World) -> None:
    owner, author, member = user(), user(), user()
    niche = world.niche(owner, author, member)

    post = world.publish(author, niche, "  first light \n")
    assert (post.niche_id, post.author_id, post.text) == (niche, author, "first light")
    assert post.created_at_ms > 0 and post.edited_at_ms == 0
    seen = world.get(member, post.id)
    assert (seen.text, seen.created_at_ms, seen.comment_count, dict(seen.reactions)) == (
        "first light", post.created_at_ms, 0, {})

    assert refused(lambda: world.post.Edit(post_pb2.EditRequest(
        actor_id=member, post_id=post.id, text="hijack")))[0] \
        == grpc.StatusCode.PERMISSION_DENIED
    edited = world.post.Edit(post_pb2.EditRequest(actor_id=author, post_id=post.id,
                                                  text="second light"))
    assert edited.text == "second light" and edited.edited_at_ms >= post.created_at_ms
    assert world.get(member, post.id).edited_at_ms == edited.edited_at_ms

    assert refused(lambda: world.delete(member, post.id))[0] == grpc.StatusCode.PERMISSION_DENIED
    world.delete(author, post.id)
    for viewer in (author, member, owner):
        assert refused(lambda v=viewer: world.get(v, post.id))[0] == NOT_FOUND
    assert refused(lambda: world.delete(author, post.id))[0] == NOT_FOUND
    assert refused(lambda: world.comment(member, post.id))[0] == NOT_FOUND


def test_owner_and_admins_moderate_even_authors_who_block_them(world: World) -> None:
    owner, admin, author = user(), user(), user()
    niche = world.niche(owner, admin, author)
    world.graph.ChangeRole(graph_pb2.ChangeRoleRequest(actor_id=owner, niche_id=niche,
                                                       user_id=admin, role=graph_pb2.ADMIN))
    first, second = world.publish(author, niche), world.publish(author, niche)
    world.block(author, admin)
    world.block(author, owner)
    world.delete(admin, first.id)
    world.delete(owner, second.id)
    assert refused(lambda: world.get(author, first.id))[0] == NOT_FOUND
    assert refused(lambda: world.get(author, second.id))[0] == NOT_FOUND


def test_outsiders_and_removed_members_get_not_found(world: World) -> None:
    owner, member, outsider = user(), user(), user()
    niche = world.niche(owner, member)
    post = world.publish(owner, niche)

    status, code, _ = refused(lambda: world.publish(outsider, niche))
    assert (status, code) == (NOT_FOUND, "not_found")
    unknown_post, unknown_niche = user(), user()
    assert refused(lambda: world.publish(member, unknown_niche))[0] == NOT_FOUND
    for post_id in (post.id, unknown_post):
        probes = [
            lambda p=post_id: world.get(outsider, p),
            lambda p=post_id: world.comment(outsider, p),
            lambda p=post_id: world.comments(outsider, p),
            lambda p=post_id: world.react(outsider, p, "like"),
            lambda p=post_id: world.unreact(outsider, p, "like"),
            lambda p=post_id: world.delete(outsider, p),
            lambda p=post_id: world.post.Edit(post_pb2.EditRequest(
                actor_id=outsider, post_id=p, text="x")),
        ]
        for probe in probes:
            assert refused(probe)[:2] == (NOT_FOUND, "not_found")

    mine = world.publish(member, niche)
    world.graph.RemoveMember(graph_pb2.RemoveMemberRequest(actor_id=owner, niche_id=niche,
                                                           user_id=member))
    assert refused(lambda: world.get(member, post.id))[0] == NOT_FOUND
    assert refused(lambda: world.get(member, mine.id))[0] == NOT_FOUND
    assert refused(lambda: world.publish(member, niche))[0] == NOT_FOUND
    assert refused(lambda: world.delete(member, mine.id))[0] == NOT_FOUND
    assert world.get(owner, mine.id).author_id == member  # still there for the niche


def test_blocks_hide_posts_both_ways_until_unblocked(world: World) -> None:
    owner, alice, bob = user(), user(), user()
    niche = world.niche(owner, alice, bob)
    by_alice, by_bob = world.publish(alice, niche), world.publish(bob, niche)
    world.block(alice, bob)

    for viewer, post in ((bob, by_alice), (alice, by_bob)):
        assert refused(lambda v=viewer, p=post: world.get(v, p.id))[0] == NOT_FOUND
        assert refused(lambda v=viewer, p=post: world.comment(v, p.id))[0] == NOT_FOUND
        assert refused(lambda v=viewer, p=post: world.react(v, p.id, "hug"))[0] == NOT_FOUND
        assert refused(lambda v=viewer, p=post: world.comments(v, p.id))[0] == NOT_FOUND
        # Edit and delete say "not found" too, never "not yours": the post stays hidden.
        assert refused(lambda v=viewer, p=post: world.post.Edit(post_pb2.EditRequest(
            actor_id=v, post_id=p.id, text="x")))[:2] == (NOT_FOUND, "not_found")
        assert refused(lambda v=viewer, p=post: world.delete(v, p.id))[:2] == (
            NOT_FOUND, "not_found")
    assert world.get(owner, by_alice.id).id == by_alice.id  # others are unaffected
    assert world.get(alice, by_alice.id).id == by_alice.id

    # On a third member's post each sees the thread without the other's comments.
    by_owner = world.publish(owner, niche)
    world.comment(owner, by_owner.id, "from the owner")
    world.comment(bob, by_owner.id, "from bob")
    assert [c.text for c in world.comments(alice, by_owner.id).items] == ["from the owner"]
    assert len(world.comments(owner, by_owner.id).items) == 2

    world.unblock(alice, bob)
    assert [c.text for c in world.comments(alice, by_owner.id).items] == [
        "from the owner", "from bob"]
    assert world.get(bob, by_alice.id).id == by_alice.id
    world.react(bob, by_alice.id, "hug")
    assert dict(world.get(alice, by_alice.id).reactions) == {"hug": 1}


def test_reactions_are_unique_per_user_and_kind_and_removable(world: World) -> None:
    owner, a, b = user(), user(), user()
    niche = world.niche(owner, a, b)
    post = world.publish(owner, niche)

    world.react(a, post.id, "like")
    world.react(a, post.id, "like")  # no-op
    world.react(a, post.id, "love")
    world.react(b, post.id, "like")
    seen = world.get(a, post.id)
    assert dict(seen.reactions) == {"like": 2, "love": 1}
    assert list(seen.my_reactions) == ["like", "love"]
    assert list(world.get(owner, post.id).my_reactions) == []

    world.unreact(a, post.id, "like")
    world.unreact(a, post.id, "like")  # no-op
    world.unreact(a, post.id, "laugh")  # never added: no-op
    seen = world.get(a, post.id)
    assert dict(seen.reactions) == {"like": 1, "love": 1} and list(seen.my_reactions) == ["love"]
    world.unreact(b, post.id, "like")
    assert dict(world.get(a, post.id).reactions) == {"love": 1}

    # Many concurrent identical reactions by one user count once.
    errors: list[BaseException] = []

    def hug() -> None:
        try:
            world.react(b, post.id, "hug")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=hug) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert dict(world.get(b, post.id).reactions) == {"love": 1, "hug": 1}


def test_comments_come_oldest_first_in_pages(world: World) -> None:
    owner, a, b = user(), user(), user()
    niche = world.niche(owner, a, b)
    post = world.publish(owner, niche)
    written = [world.comment(a if i % 2 else b, post.id, f"  comment {i} ") for i in range(7)]
    assert written[0].text == "comment 0" and written[0].post_id == post.id
    assert written[1].author_id == a and written[0].created_at_ms > 0

    pages, cursor = [], ""
    while True:
        page = world.comments(owner, post.id, limit=3, cursor=cursor)
        pages.append([c.id for c in page.items])
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i for p in pages for i in p] == [c.id for c in written]
    assert [c.text for c in world.comments(a, post.id).items] == [f"comment {i}"
                                                                 for i in range(7)]
    assert world.get(b, post.id).comment_count == 7
    assert world.comments(owner, post.id, limit=7).next_cursor == ""

    threads = [threading.Thread(target=world.comment, args=(a, post.id, f"burst {i}"))
               for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    listed = world.comments(b, post.id, limit=100).items
    assert len(listed) == 13 == world.get(b, post.id).comment_count
    assert sorted(c.text for c in listed[7:]) == [f"burst {i}" for i in range(6)]


def test_invalid_input_is_refused_with_field_details(world: World) -> None:
    owner, member = user(), user()
    niche = world.niche(owner, member)
    post = world.publish(owner, niche)
    invalid = grpc.StatusCode.INVALID_ARGUMENT

    status, code, details = refused(lambda: world.post.Publish(post_pb2.PublishRequest(
        actor_id="nobody", niche_id=niche, text=" ")))
    assert (status, code, set(details)) == (invalid, "invalid_argument", {"actor_id", "text"})
    assert "text" in refused(lambda: world.publish(owner, niche, "x" * 5001))[2]
    assert world.publish(owner, niche, "x" * 5000).text == "x" * 5000
    assert "text" in refused(lambda: world.comment(member, post.id, "y" * 2001))[2]
    assert "kind" in refused(lambda: world.react(member, post.id, "dislike"))[2]
    assert "post_id" in refused(lambda: world.get(member, "42"))[2]
    assert "limit" in refused(lambda: world.comments(member, post.id, limit=101))[2]
    assert "cursor" in refused(lambda: world.comments(member, post.id, cursor="zz"))[2]
    assert "post_ids" in refused(lambda: world.post.BatchGetPosts(post_pb2.BatchGetPostsRequest(
        viewer_id=member, post_ids=[post.id, "nope"])))[2]


def test_batch_get_posts_returns_only_what_the_viewer_may_see(world: World) -> None:
    viewer, friend, stranger, foe = user(), user(), user(), user()
    home = world.niche(viewer, friend, foe)
    club = world.niche(friend, viewer)
    elsewhere = world.niche(stranger, friend)

    mine = world.publish(viewer, home)
    friends = world.publish(friend, club)
    foes = world.publish(foe, home)
    hidden = world.publish(stranger, elsewhere)
    gone = world.publish(friend, home)
    world.delete(friend, gone.id)
    world.block(viewer, foe)
    world.react(viewer, friends.id, "congrats")
    world.comment(friend, friends.id)

    ids = [friends.id, user(), hidden.id, foes.id, gone.id, mine.id, friends.id]
    batch = world.post.BatchGetPosts(post_pb2.BatchGetPostsRequest(viewer_id=viewer,
                                                                   post_ids=ids)).items
    assert [p.id for p in batch] == [friends.id, mine.id]
    assert dict(batch[0].reactions) == {"congrats": 1}
    assert list(batch[0].my_reactions) == ["congrats"] and batch[0].comment_count == 1
    assert (batch[0].niche_id, batch[0].author_id) == (club, friend)

    assert dict(batch[1].reactions) == {} and batch[1].edited_at_ms == 0

    one_niche = world.post.BatchGetPosts(post_pb2.BatchGetPostsRequest(
        viewer_id=viewer, post_ids=[foes.id, mine.id])).items
    assert [p.id for p in one_niche] == [mine.id]
    assert list(world.post.BatchGetPosts(post_pb2.BatchGetPostsRequest(
        viewer_id=viewer, post_ids=[])).items) == []


def test_hydrating_a_page_asks_graph_once_for_everything(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    """Membership of every niche on the page and blocks with every author: one round trip."""
    viewer, others = user(), [user() for _ in range(4)]
    niches = [world.niche(viewer, *others), world.niche(others[0], viewer, others[1]),
              world.niche(others[1], viewer, others[0])]
    ids = [world.publish(author, niche).id for niche in niches for author in others[:2]]
    caplog.set_level(logging.INFO, logger="kith.common.rpc")
    caplog.clear()
    batch = world.post.BatchGetPosts(post_pb2.BatchGetPostsRequest(viewer_id=viewer,
                                                                   post_ids=ids))
    assert [p.id for p in batch.items] == ids
    graph_calls = sorted(r.fields["method"].rsplit("/", 1)[1] for r in caplog.records
                         if r.fields["method"].startswith("/kith.graph."))
    assert graph_calls == ["BlockedAmong", "ListNiches"]  # sent together, awaited together


def test_events_reach_the_post_topic_in_stream_order(world: World) -> None:
    owner, member = user(), user()
    niche = world.niche(owner, member)
    post = world.publish(owner, niche)
    world.post.Edit(post_pb2.EditRequest(actor_id=owner, post_id=post.id, text="edited"))
    comment = world.comment(member, post.id)
    world.react(member, post.id, "support")
    world.react(member, post.id, "support")  # records nothing
    world.unreact(member, post.id, "support")
    world.delete(owner, post.id)

    records = [r for r in read_topic(world.settings.kafka_bootstrap or "",
                                     world.settings.topic("post"), expect_at_least=6)
               if str(r.stream_id) == post.id]
    codec = default_codec()
    decoded = {r.version: (r.type, codec.decode(r.payload)[1]) for r in records}
    assert [decoded[v][0].rsplit(".", 1)[1] for v in sorted(decoded)] == [
        "PostPublished", "PostEdited", "CommentAdded", "ReactionAdded", "ReactionRemoved",
        "PostDeleted"]
    published = dict(decoded[1][1])
    sealed_text = published.pop("text")
    assert published == {"post_id": post.id, "niche_id": niche, "author_id": owner,
                         "created_at_ms": post.created_at_ms, "type": "text", "typed": ""}
    with psycopg.connect(world.settings.database_url("post")) as conn:
        key = conn.execute("SELECT key FROM author_keys WHERE user_id = %s", (owner,)).fetchone()
    assert crypto.is_encrypted(sealed_text)  # the text is sealed under its author's key
    assert crypto.decrypt(AUTHOR_KEYS.unwrap(key[0], owner), post.id, sealed_text) == "hello niche"
    assert decoded[3][1]["comment_id"] == comment.id
    assert decoded[6][1]["deleted_by"] == owner
    assert records[0].metadata["actor_id"] == owner


def test_account_deletion_takes_down_posts_comments_and_reactions(world: World) -> None:
    owner, leaving, staying = user(), user(), user()
    first = world.niche(owner, leaving, staying)
    second = world.niche(leaving, owner)
    theirs = [world.publish(leaving, first), world.publish(leaving, second)]
    kept = world.publish(staying, first)
    world.react(leaving, kept.id, "like")
    world.react(owner, kept.id, "like")
    remark = world.comment(leaving, kept.id, "mine")
    world.comment(owner, kept.id, "theirs")

    world.delete_account(leaving)
    for post in theirs:
        eventually(lambda p=post: not world.visible(owner, p.id))
    seen = world.get(owner, kept.id)
    assert (dict(seen.reactions), seen.comment_count) == ({"like": 1}, 1)
    assert [c.text for c in world.comments(owner, kept.id).items] == ["theirs"]

    records = read_topic(world.settings.kafka_bootstrap or "", world.settings.topic("post"),
                         expect_at_least=11)
    codec = default_codec()
    taken_down = {r.type.rsplit(".", 1)[1]: codec.decode(r.payload)[1] for r in records
                  if r.metadata.get("reason") == "account_deleted"}
    deletions = [codec.decode(r.payload)[1] for r in records if r.type.endswith("PostDeleted")]
    assert sorted(d["post_id"] for d in deletions) == sorted(p.id for p in theirs)
    assert {d["deleted_by"] for d in deletions} == {leaving}
    assert taken_down["CommentDeleted"]["comment_id"] == remark.id
    assert taken_down["ReactionRemoved"]["user_id"] == leaving
    # Once erased, the account publishes nothing more (even before graph drops its memberships).
    assert refused(lambda: world.publish(leaving, first))[0] == NOT_FOUND
    assert refused(lambda: world.comment(leaving, kept.id, "too late"))[0] == NOT_FOUND
    assert refused(lambda: world.react(leaving, kept.id, "hug"))[0] == NOT_FOUND
    with psycopg.connect(world.settings.database_url("post")) as conn:
        assert conn.execute("SELECT user_id::text FROM deleted_authors").fetchall() == [(leaving,)]
        # Crypto-shredding: their key is gone, and no text they wrote is readable in the log.
        keys = {u for (u,) in conn.execute("SELECT user_id::text FROM author_keys")}
        payloads = b"".join(bytes(p) for (p,) in conn.execute("SELECT payload FROM events"))
    assert leaving not in keys and owner in keys
    assert b"mine" not in payloads and b"hello niche" not in payloads
    assert all(b"mine" not in r.payload for r in records)
