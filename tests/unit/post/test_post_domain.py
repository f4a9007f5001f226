"""The post aggregate and its rules, without infrastructure."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kith.common.errors import InvalidArgument, NotFound, PermissionDenied
from kith.common.events import to_new_event
from kith.post.domain import (
    COMMENT_MAX_CHARS,
    POST_MAX_CHARS,
    REACTION_KINDS,
    Post,
    Role,
    can_see,
    check_kind,
    check_member,
    check_text,
    check_visible,
)
from kith.post.events import (
    CommentAdded,
    CommentDeleted,
    PostDeleted,
    PostEdited,
    PostPublished,
    ReactionAdded,
    ReactionRemoved,
    from_data,
)

AUTHOR, OTHER, NICHE = (str(uuid.uuid4()) for _ in range(3))


def published(text: str = "hello") -> Post:
    event = Post.publish(str(uuid.uuid4()), NICHE, AUTHOR, text, 1000)
    post = Post.replay([event])
    assert post is not None
    return post


def test_publish_strips_text_and_starts_at_version_1() -> None:
    post = published("  hello world \n")
    assert (post.text, post.author_id, post.niche_id, post.version) == (
        "hello world", AUTHOR, NICHE, 1)
    assert (post.edited_at_ms, post.deleted, post.comment_count) == (0, False, 0)


@pytest.mark.parametrize("text", ["", "   \n\t", "x" * (POST_MAX_CHARS + 1)])
def test_publish_refuses_empty_or_too_long_text(text: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        Post.publish(str(uuid.uuid4()), NICHE, AUTHOR, text, 1)
    assert "text" in err.value.details


def test_text_limits_are_inclusive() -> None:
    assert check_text("x" * POST_MAX_CHARS, POST_MAX_CHARS) == "x" * POST_MAX_CHARS
    assert check_text(" y ", 1) == "y"
    with pytest.raises(InvalidArgument):
        check_text("x" * (COMMENT_MAX_CHARS + 1), COMMENT_MAX_CHARS)


def test_only_the_author_edits() -> None:
    post = published()
    with pytest.raises(PermissionDenied):
        post.edit(OTHER, "mine now", 2000)
    [event] = post.edit(AUTHOR, " new text ", 2000)
    assert event == PostEdited(post.post_id, NICHE, "new text", 2000)
    post.apply(event)
    assert (post.text, post.edited_at_ms, post.version) == ("new text", 2000, 2)
    assert post.edit(AUTHOR, "new text", 3000) == []


def test_author_admin_and_owner_delete_a_plain_member_does_not() -> None:
    post = published()
    with pytest.raises(PermissionDenied):
        post.delete(OTHER, Role.MEMBER, 5)
    for actor, role in ((AUTHOR, Role.MEMBER), (OTHER, Role.ADMIN), (OTHER, Role.OWNER)):
        [event] = post.delete(actor, role, 5)
        assert event == PostDeleted(post.post_id, NICHE, AUTHOR, actor, 5)


def test_a_deleted_post_refuses_every_command() -> None:
    post = published()
    post.apply(post.delete(AUTHOR, Role.MEMBER, 5)[0])
    assert post.deleted
    commands = [
        lambda: post.edit(AUTHOR, "again", 6),
        lambda: post.delete(AUTHOR, Role.OWNER, 6),
        lambda: post.comment("c", OTHER, "hi", 6),
        lambda: post.react(OTHER, "like", 6),
        lambda: post.unreact(OTHER, "like", 6),
    ]
    for command in commands:
        with pytest.raises(NotFound):
            command()
    assert post.erase_accounts({AUTHOR, OTHER}, 7) == []


def test_erasing_the_authors_account_deletes_the_post_by_the_author() -> None:
    post = published()
    post.apply(post.comment("c1", OTHER, "hi", 2)[0])
    assert post.erase_accounts({AUTHOR, OTHER}, 9) == [
        PostDeleted(post.post_id, NICHE, AUTHOR, AUTHOR, 9)]


def test_erasing_another_account_takes_down_its_comments_and_reactions_only() -> None:
    post = published()
    third = str(uuid.uuid4())
    for event in (*post.comment("c1", OTHER, "one", 2), *post.comment("c2", third, "two", 3),
                  *post.comment("c3", OTHER, "three", 4), *post.react(OTHER, "love", 5),
                  *post.react(OTHER, "hug", 5), *post.react(third, "hug", 5)):
        post.apply(event)
    events = post.erase_accounts({OTHER}, 9)
    assert events == [
        CommentDeleted(post.post_id, NICHE, "c1", OTHER, OTHER, 9),
        CommentDeleted(post.post_id, NICHE, "c3", OTHER, OTHER, 9),
        ReactionRemoved(post.post_id, NICHE, OTHER, "hug", 9),
        ReactionRemoved(post.post_id, NICHE, OTHER, "love", 9),
    ]
    for event in events:
        post.apply(event)
    assert (post.comments, post.reactions) == ({"c2": third}, {(third, "hug")})
    assert post.erase_accounts({OTHER}, 10) == []


def test_comments_are_counted_and_validated() -> None:
    post = published()
    [event] = post.comment("c1", OTHER, "  nice ", 10)
    assert event == CommentAdded(post.post_id, NICHE, "c1", OTHER, "nice", 10)
    post.apply(event)
    assert post.comment_count == 1
    with pytest.raises(InvalidArgument):
        post.comment("c2", OTHER, " ", 11)


def test_one_reaction_of_each_kind_per_user_and_removal() -> None:
    post = published()
    [like] = post.react(OTHER, "like", 1)
    assert like == ReactionAdded(post.post_id, NICHE, OTHER, "like", 1)
    post.apply(like)
    assert post.react(OTHER, "like", 2) == []  # the same again is a no-op
    post.apply(post.react(OTHER, "love", 2)[0])
    post.apply(post.react(AUTHOR, "like", 2)[0])
    assert post.reactions == {(OTHER, "like"), (OTHER, "love"), (AUTHOR, "like")}
    [removed] = post.unreact(OTHER, "like", 3)
    assert removed == ReactionRemoved(post.post_id, NICHE, OTHER, "like", 3)
    post.apply(removed)
    assert post.unreact(OTHER, "like", 4) == []
    assert post.reactions == {(OTHER, "love"), (AUTHOR, "like")}


def test_reaction_kinds() -> None:
    assert set(REACTION_KINDS) == {"like", "love", "hug", "congrats", "support", "laugh"}
    for bad in ("", "LIKE", "dislike"):
        with pytest.raises(InvalidArgument) as err:
            check_kind(bad)
        assert "kind" in err.value.details


def test_visibility_needs_membership_and_no_block() -> None:
    assert can_see(Role.MEMBER, blocked=False)
    assert not can_see(None, blocked=False)
    assert not can_see(Role.OWNER, blocked=True)
    with pytest.raises(NotFound):
        check_visible(Role.ADMIN, blocked=True)
    with pytest.raises(NotFound):
        check_member(None)
    assert check_member(Role.ADMIN) is Role.ADMIN


def test_events_round_trip_through_their_store_form() -> None:
    post = published()
    for event in (PostPublished(post.post_id, NICHE, AUTHOR, "t", 1),
                  *post.edit(AUTHOR, "u", 2), *post.react(OTHER, "hug", 3),
                  *post.comment("c", OTHER, "hey", 4),
                  CommentDeleted(post.post_id, NICHE, "c", OTHER, OTHER, 5),
                  *post.delete(AUTHOR, Role.MEMBER, 5)):
        new = to_new_event(event)
        assert from_data(new.type, {**new.data, "added_later": 1}) == event


reaction_ops = st.lists(st.tuples(st.booleans(), st.sampled_from([AUTHOR, OTHER]),
                                  st.sampled_from(REACTION_KINDS)), max_size=40)


@given(reaction_ops)
def test_replayed_reactions_equal_the_set_model(ops: list[tuple[bool, str, str]]) -> None:
    """Deciding and applying any sequence of adds/removes keeps a set; replay agrees."""
    post = published()
    stream: list = [PostPublished(post.post_id, NICHE, AUTHOR, post.text, 1000)]
    model: set[tuple[str, str]] = set()
    for add, user, kind in ops:
        events = post.react(user, kind, 1) if add else post.unreact(user, kind, 1)
        assert len(events) == ((user, kind) not in model if add else (user, kind) in model)
        (model.add if add else model.discard)((user, kind))
        for event in events:
            post.apply(event)
        stream += events
    replayed = Post.replay(stream)
    assert replayed is not None
    assert replayed.reactions == post.reactions == model
    assert replayed.version == len(stream)
