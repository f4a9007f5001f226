"""End to end over HTTP: two families and a book club, from sign-up to account deletion."""

from __future__ import annotations

import uuid

from tests.integration.gateway.harness import Client, Gateway
from tests.support.waiting import eventually


def feed_texts(client: Client, path: str = "/v1/feed") -> list[str]:
    resp = client.get(path + "?limit=100")
    assert resp.status_code == 200, resp.text
    return [item["text"] for item in resp.json()["items"]]


def wait_feed(client: Client, predicate, path: str = "/v1/feed") -> list[str]:
    texts = eventually(lambda: feed_texts(client, path), predicate)
    assert predicate(texts), texts
    return texts


def invite(owner: Client, niche_id: str, *users: Client) -> None:
    code = owner.post(f"/v1/niches/{niche_id}/invites", {"max_uses": len(users)}).json()["code"]
    for user in users:
        joined = user.post(f"/v1/invites/{code}/accept")
        assert joined.status_code == 200, joined.text
        assert joined.json()["my_role"] == "member"


def test_two_families_and_a_book_club(gateway: Gateway) -> None:
    # -- register and create niches -------------------------------------------------------
    alice, bob, carol = (gateway.signup(n) for n in ("alice", "bob", "carol"))
    dan, erin = gateway.signup("dan"), gateway.signup("erin")
    taken = gateway.client().post("/v1/accounts", {"username": alice.username,
                                                   "password": "another pass",
                                                   "display_name": "Imposter"})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "username_taken"

    smiths = alice.post("/v1/niches", {"name": "The Smiths", "kind": "family"})
    assert smiths.status_code == 201
    smiths = smiths.json()
    assert smiths["my_role"] == "owner" and smiths["member_count"] == 1
    joneses = dan.post("/v1/niches", {"name": "The Joneses", "kind": "family",
                                      "member_cap": 3}).json()
    club = carol.post("/v1/niches", {"name": "Page Turners", "kind": "book_club",
                                     "description": "one book a month"}).json()
    invite(alice, smiths["id"], bob)
    invite(dan, joneses["id"], erin, carol)
    invite(carol, club["id"], alice, dan, erin)
    full = dan.post(f"/v1/niches/{joneses['id']}/invites", {}).json()["code"]
    assert bob.post(f"/v1/invites/{full}/accept").json()["error"]["code"] == "niche_full"
    again = carol.post(f"/v1/niches/{club['id']}/invites", {}).json()["code"]
    assert alice.post(f"/v1/invites/{again}/accept").json()["error"]["code"] == "already_member"

    members = alice.get(f"/v1/niches/{club['id']}/members").json()["items"]
    assert {m["display_name"] for m in members} == {"Alice", "Carol", "Dan", "Erin"}
    assert {n["name"] for n in alice.get("/v1/niches").json()["items"]} == {
        "The Smiths", "Page Turners"}

    # -- post, react, comment, read feeds --------------------------------------------------
    hello = alice.post(f"/v1/niches/{smiths['id']}/posts", {"text": "Sunday lunch at ours"})
    assert hello.status_code == 201
    hello = hello.json()
    book = carol.post(f"/v1/niches/{club['id']}/posts", {"text": "Next: Middlemarch"}).json()
    erin_post = erin.post(f"/v1/niches/{club['id']}/posts", {"text": "Erin's review"}).json()
    dan_post = dan.post(f"/v1/niches/{joneses['id']}/posts", {"text": "Jones BBQ"}).json()
    assert bob.post(f"/v1/posts/{hello['id']}/reactions", {"kind": "love"}).status_code == 204
    comment = bob.post(f"/v1/posts/{hello['id']}/comments", {"text": "I'll bring dessert"})
    assert comment.status_code == 201 and comment.json()["author_id"] == bob.user_id
    seen = bob.get(f"/v1/posts/{hello['id']}").json()
    assert seen["reactions"] == {"love": 1} and seen["my_reactions"] == ["love"]
    assert seen["comment_count"] == 1 and seen["author"]["display_name"] == "Alice"
    comments = alice.get(f"/v1/posts/{hello['id']}/comments").json()
    assert [c["text"] for c in comments["items"]] == ["I'll bring dessert"]

    wait_feed(alice, lambda t: {"Sunday lunch at ours", "Next: Middlemarch",
                                "Erin's review"} <= set(t))
    bob_feed = wait_feed(bob, lambda t: "Sunday lunch at ours" in t)
    assert "Next: Middlemarch" not in bob_feed and "Jones BBQ" not in bob_feed
    club_feed = wait_feed(dan, lambda t: {"Next: Middlemarch", "Erin's review"} <= set(t),
                          f"/v1/niches/{club['id']}/feed")
    assert "Jones BBQ" not in club_feed
    assert bob.get(f"/v1/niches/{club['id']}/feed").status_code == 404
    assert bob.get(f"/v1/posts/{book['id']}").status_code == 404

    # Pagination walks the whole home feed exactly once.
    pages, cursor = [], None
    while True:
        page = alice.get("/v1/feed?limit=1" + (f"&cursor={cursor}" if cursor else "")).json()
        pages += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(pages) == len(set(pages)) >= 3

    # -- leave and get purged --------------------------------------------------------------
    assert erin.delete(f"/v1/niches/{joneses['id']}/members/{erin.user_id}").status_code == 204
    wait_feed(erin, lambda t: "Jones BBQ" not in t)
    assert erin.get(f"/v1/posts/{dan_post['id']}").status_code == 404

    # -- block: hidden both ways -----------------------------------------------------------
    assert alice.post("/v1/blocks", {"user_id": erin.user_id}).status_code == 204
    assert alice.get("/v1/blocks").json()["items"] == [{"user_id": erin.user_id}]
    wait_feed(alice, lambda t: "Erin's review" not in t)
    wait_feed(erin, lambda t: all("Alice" not in x for x in t) and "Next: Middlemarch" in t)
    assert erin.get(f"/v1/posts/{hello['id']}").status_code == 404
    assert alice.get(f"/v1/posts/{erin_post['id']}").status_code == 404
    assert alice.delete(f"/v1/blocks/{erin.user_id}").status_code == 204
    wait_feed(alice, lambda t: "Erin's review" in t)

    # -- edit and delete a post (the niche owner may delete any) ---------------------------
    edited = dan.patch(f"/v1/posts/{erin_post['id']}", {"text": "hijack"})
    assert edited.status_code == 403
    assert erin.patch(f"/v1/posts/{erin_post['id']}", {"text": "Erin's 2nd review"}).json()[
        "edited_at"]
    assert carol.delete(f"/v1/posts/{erin_post['id']}").status_code == 204
    wait_feed(dan, lambda t: not any(x.startswith("Erin's") for x in t),
              f"/v1/niches/{club['id']}/feed")
    assert erin.get(f"/v1/posts/{erin_post['id']}").status_code == 404

    # -- messaging -------------------------------------------------------------------------
    conv = alice.post("/v1/conversations", {"member_ids": [bob.user_id, carol.user_id],
                                            "title": "Birthday plans"})
    assert conv.status_code == 201, conv.text
    conv = conv.json()
    assert {m["user_id"] for m in conv["members"]} == {alice.user_id, bob.user_id,
                                                       carol.user_id}
    stranger = alice.post("/v1/conversations", {"member_ids": [str(uuid.uuid4())]})
    assert stranger.status_code == 403
    first = alice.post(f"/v1/conversations/{conv['id']}/messages",
                       {"client_message_id": "cake-1", "text": "Cake?"}).json()
    retry = alice.post(f"/v1/conversations/{conv['id']}/messages",
                       {"client_message_id": "cake-1", "text": "Cake?"}).json()
    assert retry["id"] == first["id"] and first["seq"] == 1
    bob.post(f"/v1/conversations/{conv['id']}/messages",
             {"client_message_id": "b-1", "text": "Yes!"})
    msgs = carol.get(f"/v1/conversations/{conv['id']}/messages?after_seq=0").json()["items"]
    assert [(m["seq"], m["text"]) for m in msgs] == [(1, "Cake?"), (2, "Yes!")]
    inbox = eventually(lambda: carol.get("/v1/conversations").json()["items"],
                       lambda items: items and items[0]["unread_count"] == 2)
    assert inbox[0]["title"] == "Birthday plans" and inbox[0]["last_message"]["text"] == "Yes!"
    assert carol.post(f"/v1/conversations/{conv['id']}/read", {"seq": 2}).status_code == 204
    inbox = eventually(lambda: carol.get("/v1/conversations").json()["items"],
                       lambda items: items[0]["unread_count"] == 0)
    assert inbox[0]["unread_count"] == 0
    assert dan.get(f"/v1/conversations/{conv['id']}/messages").status_code == 404

    # -- profile, and deleting an account --------------------------------------------------
    assert erin.patch("/v1/me", {"bio": "reader"}).json()["bio"] == "reader"
    farewell = erin.post(f"/v1/niches/{club['id']}/posts", {"text": "Erin signs off"}).json()
    wait_feed(carol, lambda t: "Erin signs off" in t)
    assert erin.request("DELETE", "/v1/me", {"password": "correct horse battery"}) \
        .status_code == 204
    assert erin.get("/v1/me").status_code == 401
    relogin = gateway.client().post("/v1/sessions", {"username": erin.username,
                                                     "password": "correct horse battery"})
    assert relogin.status_code == 401
    wait_feed(carol, lambda t: "Erin signs off" not in t)
    assert carol.get(f"/v1/posts/{farewell['id']}").status_code == 404
    names = {m["display_name"] for m in
             eventually(lambda: carol.get(f"/v1/niches/{club['id']}/members").json()["items"],
                        lambda items: len(items) == 3)}
    assert names == {"Alice", "Carol", "Dan"}
