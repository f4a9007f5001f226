"""Protobuf → public JSON, and the response schemas that document it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kith.common.post_json import DELETED_USER as DELETED_USER
from kith.common.post_json import typed_fields
from kith.common.post_json import typed_user_ids as typed_user_ids
from kith.common.post_json import when as when
from kith.gateway.schema import (
    Schema,
    array,
    integer,
    map_of,
    named,
    nullable,
    obj,
    string,
    uuid_string,
)
from kith.protos import graph_pb2, identity_pb2, messaging_pb2, post_pb2

NICHE_KINDS = ["family", "friends", "book_club", "professional", "skills", "neighbourhood",
               "custom"]
REACTION_KINDS = ["like", "love", "hug", "congrats", "support", "laugh"]
ROLES = {graph_pb2.MEMBER: "member", graph_pb2.ADMIN: "admin", graph_pb2.OWNER: "owner"}
ROLE_VALUES = {name: value for value, name in ROLES.items()}

TIME = string(fmt="date-time")


def list_of(item: Schema) -> Schema:
    return obj({"items": array(item), "next_cursor": nullable(string())}, closed=False)


# -- identity ------------------------------------------------------------------------------

ACCOUNT = obj({"id": uuid_string(), "username": string(), "display_name": string()},
              closed=False)
PROFILE = obj({"id": uuid_string(), "username": string(), "display_name": string(),
               "bio": string()}, closed=False)
TOKENS = obj({"access_token": string(), "refresh_token": string(), "expires_in": integer(),
              "user_id": uuid_string()}, closed=False)


def profile(p: identity_pb2.Profile) -> dict[str, Any]:
    return {"id": p.id, "username": p.username, "display_name": p.display_name, "bio": p.bio,
            "created_at": when(p.created_at_ms)}


def tokens(t: identity_pb2.TokenPair) -> dict[str, Any]:
    return {"access_token": t.access_token, "refresh_token": t.refresh_token,
            "token_type": "Bearer", "expires_in": t.expires_in, "user_id": t.user_id,
            "refresh_expires_in": t.refresh_expires_in}


# -- graph ---------------------------------------------------------------------------------

NICHE = obj({"id": uuid_string(), "name": string(), "kind": string(enum=NICHE_KINDS),
             "description": string(), "member_cap": integer(), "member_count": integer(),
             "my_role": nullable(string(enum=list(ROLE_VALUES)))}, closed=False)
SKILL = named("Skill", obj({"name": string(), "level": nullable(string()),
                            "endorsements": integer()}, closed=False))
MEMBER = obj({"user_id": uuid_string(), "display_name": string(),
              "role": string(enum=list(ROLE_VALUES)), "joined_at": TIME},
             {"headline": nullable(string()), "skills": array(SKILL)},
             closed=False)
INVITE = obj({"id": uuid_string(), "code": string(), "max_uses": integer(),
              "expires_at": TIME}, closed=False)
INVITE_INFO = obj({"id": uuid_string(), "max_uses": integer(), "uses": integer(),
                   "expires_at": TIME, "created_by": uuid_string()}, closed=False)
BLOCK = obj({"user_id": uuid_string()}, closed=False)


MEMBER_PROFILE = named("MemberProfile", obj(
    {"niche_id": uuid_string(), "user_id": uuid_string(), "display_name": nullable(string()),
     "headline": nullable(string()), "birthday": nullable(string(description="MM-DD")),
     "reading": nullable(obj({"title": string(), "author": nullable(string())}, closed=False)),
     "skills": array(SKILL)}, closed=False))
NICHE_REF = named("NicheRef", obj({"id": uuid_string(), "name": string()}, closed=False))
DIRECTORY_ENTRY = named("DirectoryEntry", obj(
    {"user": obj({"id": uuid_string(), "display_name": string()}, closed=False),
     "niche": NICHE_REF, "skill": string(), "level": nullable(string()),
     "endorsements": integer()}, closed=False))


def skills(items: Iterable[graph_pb2.Skill]) -> list[dict[str, Any]]:
    return [{"name": s.name, "level": s.level or None, "endorsements": s.endorsements}
            for s in items]


def directory_entry(e: graph_pb2.DirectoryEntry, names: Mapping[str, str]) -> dict[str, Any]:
    return {"user": {"id": e.user_id,
                     "display_name": e.display_name or names.get(e.user_id, DELETED_USER)},
            "niche": {"id": e.niche_id, "name": e.niche_name}, "skill": e.skill,
            "level": e.level or None, "endorsements": e.endorsements}


def member_profile(p: graph_pb2.MemberProfile, names: Mapping[str, str]) -> dict[str, Any]:
    """A member as a niche shows them: their persona there, else the account's name."""
    return {"user_id": p.user_id,
            "display_name": p.display_name or names.get(p.user_id, DELETED_USER),
            "role": ROLES.get(p.role, "member"), "joined_at": when(p.joined_at_ms),
            "headline": p.headline or None, "skills": skills(p.skills)}


def niche(n: graph_pb2.Niche) -> dict[str, Any]:
    return {"id": n.id, "name": n.name, "kind": n.kind, "description": n.description,
            "member_cap": n.member_cap, "member_count": n.member_count,
            "my_role": ROLES.get(n.my_role), "created_at": when(n.created_at_ms)}


def member(m: graph_pb2.Member, names: Mapping[str, str]) -> dict[str, Any]:
    return {"user_id": m.user_id, "display_name": names.get(m.user_id, DELETED_USER),
            "role": ROLES.get(m.role, "member"), "joined_at": when(m.joined_at_ms)}


def invite(i: graph_pb2.Invite) -> dict[str, Any]:
    return {"id": i.id, "code": i.code, "niche_id": i.niche_id, "max_uses": i.max_uses,
            "expires_at": when(i.expires_at_ms)}


def invite_info(i: graph_pb2.InviteInfo) -> dict[str, Any]:
    return {"id": i.id, "max_uses": i.max_uses, "uses": i.uses,
            "expires_at": when(i.expires_at_ms), "created_by": i.created_by}


# -- posts ---------------------------------------------------------------------------------

POST_TYPES = ["text", "highlight", "ask", "moment"]
MOMENT_KINDS = ["birthday", "new_baby", "surgery", "recovery", "graduation", "wedding",
                "new_home", "new_job", "anniversary", "loss", "other"]
DATE = string(pattern="^[0-9]{4}-[0-9]{2}-[0-9]{2}$", description="YYYY-MM-DD")
AUTHOR = named("Person", obj({"id": uuid_string(), "display_name": string()}, closed=False))
BOOK = named("Book", obj({"title": string(1, 200), "author": string(1, 200)},
                         {"isbn": nullable(string(0, 32, description="ISBN-10 or ISBN-13"))}))
MOMENT = named("Moment", obj({"kind": string(enum=MOMENT_KINDS), "date": DATE}))
ANSWERED_BY = named("AnsweredBy", obj({"comment_id": uuid_string(), "author": AUTHOR},
                                      closed=False))
TYPED_FIELDS: dict[str, Schema] = {
    "type": string(enum=POST_TYPES), "book": BOOK, "quote": string(), "page": nullable(integer()),
    "skill": nullable(string()), "moment": MOMENT, "answered_by": nullable(ANSWERED_BY)}
NEW_POST = obj({"id": uuid_string(), "niche_id": uuid_string(), "author_id": uuid_string(),
                "text": string(), "created_at": TIME}, {"type": string(enum=POST_TYPES)},
               closed=False)
POST = named("Post", obj(
    {"id": uuid_string(), "niche_id": uuid_string(), "author": AUTHOR, "text": string(),
     "created_at": TIME, "edited_at": nullable(TIME), "reactions": map_of(integer()),
     "my_reactions": array(string(enum=REACTION_KINDS)), "comment_count": integer(),
     "type": string(enum=POST_TYPES)},
    {k: v for k, v in TYPED_FIELDS.items() if k != "type"}, closed=False,
    description="a post; highlight adds book, quote, page; ask adds skill, answered_by; "
                "moment adds moment"))


COMMENT = obj({"id": uuid_string(), "post_id": uuid_string(), "author_id": uuid_string(),
               "text": string(), "created_at": TIME}, closed=False)


def new_post(p: post_pb2.Post) -> dict[str, Any]:
    return {"id": p.id, "niche_id": p.niche_id, "author_id": p.author_id, "text": p.text,
            "created_at": when(p.created_at_ms), **typed_fields(p.typed, {})}


def post(p: post_pb2.Post, names: Mapping[str, str]) -> dict[str, Any]:
    return {"id": p.id, "niche_id": p.niche_id,
            "author": {"id": p.author_id, "display_name": names.get(p.author_id, DELETED_USER)},
            "author_id": p.author_id, "text": p.text, "created_at": when(p.created_at_ms),
            "edited_at": when(p.edited_at_ms), "reactions": dict(p.reactions),
            "my_reactions": list(p.my_reactions), "comment_count": p.comment_count,
            **typed_fields(p.typed, names)}


def comment(c: post_pb2.Comment, names: Mapping[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": c.id, "post_id": c.post_id, "author_id": c.author_id,
                           "text": c.text, "created_at": when(c.created_at_ms)}
    if names is not None:
        out["author"] = {"id": c.author_id, "display_name": names.get(c.author_id, DELETED_USER)}
    return out


# -- messaging -----------------------------------------------------------------------------

PERSON = obj({"user_id": uuid_string(), "display_name": string()}, closed=False)
MESSAGE = obj({"id": uuid_string(), "seq": integer(), "sender_id": uuid_string(),
               "text": string(), "sent_at": TIME}, closed=False)
CONVERSATION = obj({"id": uuid_string(), "title": nullable(string()), "members": array(PERSON)},
                   closed=False)
MESSAGE_PAGE = obj({"items": array(MESSAGE), "next_cursor": nullable(string()),
                    "next_after_seq": nullable(integer())}, closed=False)
INBOX_ITEM = obj({"id": uuid_string(), "title": nullable(string()), "members": array(PERSON),
                  "last_message": nullable(MESSAGE),
                  "unread_count": integer()}, closed=False)


def people(ids: Iterable[str], names: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"user_id": i, "display_name": names.get(i, DELETED_USER)} for i in ids]


def message(m: messaging_pb2.Message) -> dict[str, Any]:
    return {"id": m.id, "conversation_id": m.conversation_id, "seq": m.seq,
            "sender_id": m.sender_id, "text": m.text, "sent_at": when(m.sent_at_ms),
            "client_message_id": m.client_message_id}


def conversation(c: messaging_pb2.Conversation, names: Mapping[str, str]) -> dict[str, Any]:
    return {"id": c.id, "title": c.title or None, "members": people(c.members, names),
            "created_by": c.created_by, "created_at": when(c.created_at_ms),
            "last_seq": c.last_seq, "read_seq": c.read_seq}


def inbox_item(i: messaging_pb2.InboxItem, names: Mapping[str, str]) -> dict[str, Any]:
    return {"id": i.id, "title": i.title or None, "members": people(i.members, names),
            "last_message": message(i.last_message) if i.HasField("last_message") else None,
            "unread_count": i.unread_count, "last_seq": i.last_seq, "read_seq": i.read_seq}
