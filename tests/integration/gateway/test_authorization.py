"""Authorization matrix: every endpoint x anonymous, non-member, blocked and removed callers.

Each refused call must answer with the status API.md names — 401 anonymous,
404 for anything the caller may not see, 403 where they can see but not act —
in the error shape, without a trace of the protected data; and refused writes
must change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from kith.gateway.operations import api
from tests.integration.gateway.harness import Client, Gateway
from tests.support.waiting import eventually

SECRET_NICHE = "Secret Garden Society"
SECRET_POST = "the treasure is under the old oak"
SECRET_COMMENT = "I brought a shovel"
SECRET_MESSAGE = "meet at midnight"
UNKNOWN_INVITE = "00000000-0000-4000-8000-000000000001"


@dataclass
class World:
    owner: Client
    member: Client
    blocked: Client  # a member of the niche whom the owner blocks
    removed: Client  # joined, then removed by the owner
    outsider: Client  # never a member
    anonymous: Client
    niche_id: str
    post_id: str
    conversation_id: str


def join(gateway: Gateway, owner: Client, niche_id: str, *users: Client) -> None:
    for user in users:
        code = owner.post(f"/v1/niches/{niche_id}/invites", {}).json()["code"]
        assert user.post(f"/v1/invites/{code}/accept").status_code == 200


@pytest.fixture(scope="module")
def world(gateway: Gateway) -> World:
    owner, member, blocked, removed, outsider = (
        gateway.signup(n) for n in ("olive", "mia", "blake", "rory", "otto"))
    niche = owner.post("/v1/niches", {"name": SECRET_NICHE, "kind": "friends"}).json()
    join(gateway, owner, niche["id"], member, blocked, removed)
    assert owner.delete(f"/v1/niches/{niche['id']}/members/{removed.user_id}").status_code == 204
    post = owner.post(f"/v1/niches/{niche['id']}/posts", {"text": SECRET_POST}).json()
    assert owner.post(f"/v1/posts/{post['id']}/comments", {"text": SECRET_COMMENT}) \
        .status_code == 201
    assert owner.post("/v1/blocks", {"user_id": blocked.user_id}).status_code == 204
    conversation = owner.post("/v1/conversations", {"member_ids": [member.user_id]}).json()
    sent = owner.post(f"/v1/conversations/{conversation['id']}/messages",
                      {"client_message_id": "m1", "text": SECRET_MESSAGE})
    assert sent.status_code == 201, sent.text
    # Blocks and removals reach every service's view before the matrix runs.
    assert eventually(lambda: blocked.get(f"/v1/posts/{post['id']}").status_code,
                      lambda s: s == 404) == 404
    assert eventually(lambda: removed.get(f"/v1/posts/{post['id']}").status_code,
                      lambda s: s == 404) == 404
    return World(owner, member, blocked, removed, outsider, gateway.client(), niche["id"],
                 post["id"], conversation["id"])


def resource_calls(w: World) -> list[tuple[str, str, Any]]:
    n, p, c = w.niche_id, w.post_id, w.conversation_id
    return [
        ("GET", f"/v1/niches/{n}", None),
        ("GET", f"/v1/niches/{n}/members", None),
        ("GET", f"/v1/niches/{n}/feed", None),
        ("POST", f"/v1/niches/{n}/invites", {}),
        ("GET", f"/v1/niches/{n}/invites", None),
        ("DELETE", f"/v1/niches/{n}/invites/{UNKNOWN_INVITE}", None),
        ("DELETE", f"/v1/niches/{n}/members/{w.member.user_id}", None),
        ("PATCH", f"/v1/niches/{n}/members/{w.member.user_id}", {"role": "admin"}),
        ("POST", f"/v1/niches/{n}/posts", {"text": "intruder"}),
        ("GET", f"/v1/posts/{p}", None),
        ("PATCH", f"/v1/posts/{p}", {"text": "defaced"}),
        ("DELETE", f"/v1/posts/{p}", None),
        ("POST", f"/v1/posts/{p}/reactions", {"kind": "laugh"}),
        ("DELETE", f"/v1/posts/{p}/reactions/like", None),
        ("POST", f"/v1/posts/{p}/comments", {"text": "intruder"}),
        ("GET", f"/v1/posts/{p}/comments", None),
        ("GET", f"/v1/conversations/{c}", None),
        ("POST", f"/v1/conversations/{c}/messages", {"client_message_id": "x", "text": "hi"}),
        ("GET", f"/v1/conversations/{c}/messages", None),
        ("POST", f"/v1/conversations/{c}/read", {"seq": 1}),
        ("POST", f"/v1/conversations/{c}/delivered", {"seq": 1}),
        ("POST", f"/v1/conversations/{c}/leave", None),
    ]


# What each caller may see: niche-level calls are fine for the blocked member (a block is
# between two people, not a niche membership) except that the owner's post is hidden.
NICHE_LEVEL = ("/v1/niches/",)


def expected(caller: str, method: str, path: str) -> set[int] | None:
    """The allowed refusal statuses, or ``None`` where this caller is legitimately allowed."""
    if caller in ("outsider", "removed"):
        return {404}
    assert caller == "blocked"
    if "/conversations/" in path or "/posts/" in path:
        return {404}
    if "/invites" in path or ("/members/" in path and method != "GET"):
        return {403}
    return None


@pytest.mark.parametrize("caller", ["outsider", "removed", "blocked"])
def test_callers_who_may_not_see_get_404_and_no_data(world: World, caller: str) -> None:
    client: Client = getattr(world, caller)
    for method, path, body in resource_calls(world):
        allowed = expected(caller, method, path)
        if allowed is None:
            continue
        resp = client.request(method, path, body)
        assert resp.status_code in allowed, (caller, method, path, resp.status_code, resp.text)
        assert set(resp.json()) == {"error"}, (method, path)
        for secret in (SECRET_NICHE, SECRET_POST, SECRET_COMMENT, SECRET_MESSAGE):
            assert secret not in resp.text
    assert_nothing_changed(world)


def test_anonymous_gets_401_on_every_authenticated_endpoint(world: World) -> None:
    ids = {"niche_id": world.niche_id, "post_id": world.post_id,
           "conversation_id": world.conversation_id, "user_id": world.member.user_id,
           "kind": "like", "code": "abc", "invite_id": UNKNOWN_INVITE, "skill": "baking",
           "media_id": world.post_id}
    protected = [op for op in api.operations if op.auth]
    assert len(protected) >= 30
    for op in protected:
        path = op.path.format(**ids)
        resp = world.anonymous.request(op.method, path, {} if op.method != "GET" else None)
        assert resp.status_code == 401, (op.method, path, resp.text)
        assert resp.json()["error"]["code"] == "unauthenticated"


def test_members_without_the_right_role_get_403(world: World) -> None:
    n, p = world.niche_id, world.post_id
    m = world.member
    assert m.post(f"/v1/niches/{n}/invites", {}).status_code == 403
    assert m.delete(f"/v1/niches/{n}/members/{world.blocked.user_id}").status_code == 403
    assert m.patch(f"/v1/posts/{p}", {"text": "defaced"}).status_code == 403
    assert m.delete(f"/v1/posts/{p}").status_code == 403
    assert_nothing_changed(world)


def test_unknown_invite_codes_and_ids_are_404(world: World) -> None:
    o = world.owner
    assert o.post("/v1/invites/nosuchcode/accept").status_code == 404
    missing = "00000000-0000-4000-8000-000000000000"
    for path in (f"/v1/niches/{missing}", f"/v1/posts/{missing}",
                 f"/v1/conversations/{missing}"):
        assert o.get(path).status_code == 404


def assert_nothing_changed(w: World) -> None:
    post = w.owner.get(f"/v1/posts/{w.post_id}").json()
    assert post["text"] == SECRET_POST and post["comment_count"] == 1
    assert post["reactions"] == {}
    members = {m["user_id"]: m["role"]
               for m in w.owner.get(f"/v1/niches/{w.niche_id}/members").json()["items"]}
    assert members == {w.owner.user_id: "owner", w.member.user_id: "member",
                       w.blocked.user_id: "member"}
    messages = w.owner.get(f"/v1/conversations/{w.conversation_id}/messages").json()["items"]
    assert [m["text"] for m in messages] == [SECRET_MESSAGE]
    conv = w.owner.get(f"/v1/conversations/{w.conversation_id}").json()
    assert {p["user_id"] for p in conv["members"]} == {w.owner.user_id, w.member.user_id}
