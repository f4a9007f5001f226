"""Events one service publishes and others act on: the names and fields they rely on.

Services never import each other, so what a consumer needs of another service's
events lives here, once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from kith.common.projection import Event

log = logging.getLogger(__name__)

IDENTITY_TOPIC = "identity.events.v1"  # after the optional topic prefix

# identity → every service
ACCOUNT_DELETED = "kith.identity.AccountDeleted"
# graph → feed (audiences), the gateway's live stream (whose niches changed)
NICHE_CREATED = "kith.graph.NicheCreated"
MEMBER_JOINED = "kith.graph.MemberJoined"
MEMBER_LEFT = "kith.graph.MemberLeft"
NICHE_ARCHIVED = "kith.graph.NicheArchived"
# graph → post (its membership view, with roles)
MEMBER_ROLE_CHANGED = "kith.graph.MemberRoleChanged"
USER_BLOCKED = "kith.graph.UserBlocked"
USER_UNBLOCKED = "kith.graph.UserUnblocked"
# graph → feed (its page cache: personas)
MEMBER_PROFILE_CHANGED = "kith.graph.MemberProfileChanged"
# post → feed, media, the gateway's live stream
POST_PUBLISHED = "kith.post.PostPublished"
POST_DELETED = "kith.post.PostDeleted"
COMMENT_DELETED = "kith.post.CommentDeleted"
# messaging → the gateway's live stream
MESSAGE_SENT = "kith.messaging.MessageSent"
MESSAGES_READ = "kith.messaging.MessagesRead"
# media → the gateway's live stream, feed (its page cache: photos)
MEDIA_ATTACHED = "kith.media.MediaAttached"
MEDIA_DETACHED = "kith.media.MediaDetached"
MEDIA_PURGED = "kith.media.MediaPurged"

# Every event one service consumes from another's topic, with the fields its consumers rely
# on: a producer may add fields, never drop or rename these (tests/unit/common/test_contracts
# checks each against the producer's newest schema).
CONSUMED: dict[str, tuple[str, ...]] = {
    ACCOUNT_DELETED: ("user_id", "deleted_at_ms"),
    NICHE_CREATED: ("niche_id", "owner_id"),
    MEMBER_JOINED: ("niche_id", "user_id", "role"),
    MEMBER_ROLE_CHANGED: ("niche_id", "user_id", "role"),
    MEMBER_LEFT: ("niche_id", "user_id"),
    NICHE_ARCHIVED: ("niche_id",),
    USER_BLOCKED: ("blocker_id", "blocked_id"),
    USER_UNBLOCKED: ("blocker_id", "blocked_id"),
    POST_PUBLISHED: ("post_id", "niche_id", "author_id", "created_at_ms"),
    POST_DELETED: ("post_id",),
    COMMENT_DELETED: ("comment_id",),
    MESSAGE_SENT: ("conversation_id", "seq", "member_ids"),
    MESSAGES_READ: ("conversation_id", "user_id", "seq", "read_at_ms", "member_ids"),
    MEDIA_ATTACHED: ("uploader_id", "carrier_kind", "carrier_id", "parent_id"),
    MEMBER_PROFILE_CHANGED: ("niche_id", "user_id"),
    MEDIA_DETACHED: ("media_id", "carrier_id"),
    MEDIA_PURGED: ("media_id",),
}


@dataclass(frozen=True)
class AccountDeletion:
    """identity deleted an account: every service erases what it holds of the user."""

    user_id: str
    deleted_at_ms: int


def account_deletions(events: Iterable[Event]) -> list[AccountDeletion]:
    """The well-formed ``AccountDeleted`` among ``events``; malformed ones are logged.

    Erasure is irreversible, so it is acted on only when read from identity's own
    topic (which only identity may write): one found on any other topic is a
    forgery and is passed over.
    """
    found = []
    for event in events:
        if event.type != ACCOUNT_DELETED:
            continue
        if not event.envelope.topic.endswith(IDENTITY_TOPIC):
            log.error("ignoring AccountDeleted %s read from %s, not identity's topic",
                      event.envelope.event_id, event.envelope.topic)
            continue
        try:
            found.append(AccountDeletion(str(uuid.UUID(event.data["user_id"])),
                                         int(event.data["deleted_at_ms"])))
        except (KeyError, TypeError, ValueError):
            log.error("passing over AccountDeleted %s without a valid user_id",
                      event.envelope.event_id)
    return found
