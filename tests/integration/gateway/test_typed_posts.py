"""Typed posts through the gateway: each kind of niche holds the post types it is for."""

from __future__ import annotations

from tests.integration.gateway.harness import (
    Client,
    EventStream,
    Gateway,
    assert_error,
)
from tests.integration.gateway.test_story import invite
from tests.support.waiting import eventually

DUNE_ISBN = "978-0-441-17271-9"  # a real ISBN-13 (check digit 9)


def niche(owner: Client, kind: str, *members: Client) -> str:
    created = owner.post("/v1/niches", {"name": f"A {kind} niche", "kind": kind})
    assert created.status_code == 201, created.text
    niche_id = created.json()["id"]
    if members:
        invite(owner, niche_id, *members)
    return niche_id


def feed_item(client: Client, niche_id: str, post_id: str) -> dict:
    def fetch() -> list[dict]:  # the feed learns of the membership eventually (404 until then)
        return client.get(f"/v1/niches/{niche_id}/feed?limit=100").json().get("items", [])
    items = eventually(fetch, lambda items: any(i["id"] == post_id for i in items))
    return next(i for i in items if i["id"] == post_id)


def test_a_book_club_shares_a_highlight_and_the_feed_carries_its_book(gateway: Gateway) -> None:
    carol, dan = gateway.signup("carol"), gateway.signup("dan")
    club = niche(carol, "book_club", dan)

    posted = carol.post(f"/v1/niches/{club}/posts", {
        "type": "highlight", "book": {"title": "Dune", "author": "Frank Herbert",
                                      "isbn": DUNE_ISBN},
        "quote": "Fear is the mind-killer.", "page": 8, "text": "so true"})
    assert posted.status_code == 201, posted.text
    post_id = posted.json()["id"]
    assert posted.json()["type"] == "highlight"

    seen = dan.get(f"/v1/posts/{post_id}").json()
    assert seen["type"] == "highlight"
    assert seen["book"] == {"title": "Dune", "author": "Frank Herbert", "isbn": "9780441172719"}
    assert (seen["quote"], seen["page"], seen["text"]) == ("Fear is the mind-killer.", 8,
                                                            "so true")
    in_feed = feed_item(dan, club, post_id)
    assert {k: in_feed[k] for k in ("type", "book", "quote", "page")} == {
        k: seen[k] for k in ("type", "book", "quote", "page")}

    edited = carol.patch(f"/v1/posts/{post_id}", {"page": 9})
    assert edited.status_code == 200, edited.text
    assert (edited.json()["page"], edited.json()["quote"]) == (9, "Fear is the mind-killer.")

    wrong_digit = carol.post(f"/v1/niches/{club}/posts", {
        "type": "highlight", "book": {"title": "Dune", "author": "Frank Herbert",
                                      "isbn": "978-0-441-17271-8"}, "quote": "…"})
    assert assert_error(wrong_digit, 400, "invalid_isbn")["details"] == {
        "book.isbn": "must be an ISBN-10 or ISBN-13 with a valid check digit"}
    isbn10 = carol.post(f"/v1/niches/{club}/posts", {
        "type": "highlight", "book": {"title": "Dune", "author": "F. Herbert",
                                      "isbn": "0-441-17271-7"}, "quote": "The spice must flow."})
    assert isbn10.status_code == 201, isbn10.text


def test_a_post_type_the_kind_does_not_unlock_is_refused(gateway: Gateway) -> None:
    alice, bob = gateway.signup("alice"), gateway.signup("bob")
    family = niche(alice, "family", bob)
    custom = niche(alice, "custom")

    ask = {"type": "ask", "text": "who can fix a bike?", "skill": "Bike Repair"}
    refused = alice.post(f"/v1/niches/{family}/posts", ask)
    assert assert_error(refused, 400, "not_allowed_in_niche_kind")["details"] == {
        "type": "not available in a family niche"}
    assert_error(bob.post(f"/v1/niches/{custom}/posts", ask), 404)  # outsiders learn nothing

    anywhere = alice.post(f"/v1/niches/{custom}/posts", ask)
    assert anywhere.status_code == 201, anywhere.text
    got = alice.get(f"/v1/posts/{anywhere.json()['id']}").json()
    assert (got["type"], got["skill"], got["answered_by"]) == ("ask", "bike repair", None)

    moment = alice.post(f"/v1/niches/{family}/posts", {
        "type": "moment", "moment": {"kind": "surgery", "date": "2026-03-02"},
        "text": "Grandpa's knee went well"})
    assert moment.status_code == 201, moment.text
    seen = bob.get(f"/v1/posts/{moment.json()['id']}").json()
    assert seen["moment"] == {"kind": "surgery", "date": "2026-03-02"}
    bad_kind = alice.post(f"/v1/niches/{family}/posts", {
        "type": "moment", "moment": {"kind": "party", "date": "2026-03-02"}})
    assert set(assert_error(bad_kind, 400)["details"]) == {"moment.kind"}
    no_such_day = alice.post(f"/v1/niches/{family}/posts", {
        "type": "moment", "moment": {"kind": "wedding", "date": "2026-02-30"}})
    assert assert_error(no_such_day, 400)["details"] == {"moment.date": "must be a date YYYY-MM-DD"}
    # A field of another type is a mistake, not silently dropped.
    stray = alice.post(f"/v1/niches/{family}/posts", {"text": "hi", "quote": "nope"})
    assert assert_error(stray, 400)["details"] == {"quote": "not a field of a text post"}

    text = alice.post(f"/v1/niches/{family}/posts", {"text": "plain as before"})
    assert text.status_code == 201 and text.json()["type"] == "text"


def test_the_live_stream_carries_the_type_and_the_authors_persona(gateway: Gateway) -> None:
    jo, kid = gateway.signup("jo"), gateway.signup("kid")
    family = niche(jo, "family", kid)
    assert jo.request("PUT", f"/v1/niches/{family}/profile",
                      {"display_name": "Grandma Jo"}).status_code == 200
    stream = EventStream(kid)
    try:
        post = jo.post(f"/v1/niches/{family}/posts", {
            "type": "moment", "moment": {"kind": "new_home", "date": "2026-11-20"}}).json()
        entry = stream.next("feed.entry")
        assert entry["id"] == post["id"]
        assert (entry["type"], entry["moment"]) == ("moment", {"kind": "new_home",
                                                               "date": "2026-11-20"})
        assert entry["author"] == {"id": jo.user_id, "display_name": "Grandma Jo"}
    finally:
        stream.close()
