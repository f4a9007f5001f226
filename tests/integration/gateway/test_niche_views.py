"""A family's upcoming birthdays and moments, and a book club's shelf, through the gateway."""

from __future__ import annotations

import datetime

from tests.integration.gateway.harness import Client, Gateway, assert_error
from tests.integration.gateway.test_niche_profiles import put_profile
from tests.integration.gateway.test_typed_posts import niche

DUNE = {"title": "Dune", "author": "Frank Herbert", "isbn": "9780441172719"}


def in_days(n: int) -> datetime.date:
    return datetime.datetime.now(datetime.UTC).date() + datetime.timedelta(days=n)


def upcoming(client: Client, days: int = 30) -> list[tuple[str, str, str]]:
    resp = client.get(f"/v1/upcoming?days={days}")
    assert resp.status_code == 200, resp.text
    return [(i["kind"], i["user"]["display_name"], i["date"]) for i in resp.json()["items"]]


def test_a_family_with_personas_an_upcoming_birthday_and_a_supported_surgery(
        gateway: Gateway) -> None:
    jo, sam, kid = gateway.signup("jo"), gateway.signup("sam"), gateway.signup("kid")
    family = niche(jo, "family", sam, kid)
    book_club = niche(jo, "book_club", sam)

    soon, later = in_days(3), in_days(45)
    put_profile(jo, family, display_name="Grandma Jo", birthday=soon.strftime("%m-%d"))
    put_profile(sam, family, birthday=later.strftime("%m-%d"))
    put_profile(kid, family, birthday=in_days(5).strftime("%m-%d"))
    wedding = sam.post(f"/v1/niches/{family}/posts", {
        "type": "moment", "text": "Ten years!",
        "moment": {"kind": "wedding", "date": in_days(10).replace(year=2016).isoformat()}})
    assert wedding.status_code == 201, wedding.text
    surgery = jo.post(f"/v1/niches/{family}/posts", {
        "type": "moment", "text": "Hip surgery went fine",
        "moment": {"kind": "surgery", "date": in_days(-1).isoformat()}}).json()

    assert upcoming(kid) == [("birthday", "Grandma Jo", soon.isoformat()),
                             ("birthday", "Kid", in_days(5).isoformat()),
                             ("wedding", "Sam", in_days(10).isoformat())]
    assert upcoming(kid, days=366)[-1] == ("birthday", "Sam", later.isoformat())
    item = kid.get("/v1/upcoming").json()["items"][2]
    assert item["post_id"] == wedding.json()["id"]
    assert item["niche"] == {"id": family, "name": "A family niche"}

    # The family supports the surgery; members see Grandma Jo, everywhere in the niche.
    assert kid.post(f"/v1/posts/{surgery['id']}/reactions", {"kind": "support"}).status_code \
        == 204
    seen = kid.get(f"/v1/posts/{surgery['id']}").json()
    assert seen["author"]["display_name"] == "Grandma Jo"
    assert (seen["reactions"], seen["moment"]["kind"]) == ({"support": 1}, "surgery")
    members = kid.get(f"/v1/niches/{family}/members").json()["items"]
    assert [m["display_name"] for m in members] == ["Grandma Jo", "Sam", "Kid"]
    assert [m["display_name"] for m in sam.get(f"/v1/niches/{book_club}/members").json()[
        "items"]] == ["Jo", "Sam"]  # her persona stays in the family

    # A birthday in a book club is not a thing; blocks hide people from upcoming.
    refused = jo.request("PUT", f"/v1/niches/{book_club}/profile", {"birthday": "01-01"})
    assert_error(refused, 400, "not_allowed_in_niche_kind")
    assert kid.post("/v1/blocks", {"user_id": sam.user_id}).status_code == 204
    assert upcoming(kid) == [("birthday", "Grandma Jo", soon.isoformat()),
                             ("birthday", "Kid", in_days(5).isoformat())]
    assert [(k, u) for k, u, _ in upcoming(sam, 366)] == [
        ("birthday", "Grandma Jo"), ("wedding", "Sam"), ("birthday", "Sam")]
    assert_error(kid.get("/v1/upcoming?days=400"), 400)


def test_a_book_club_builds_a_shelf(gateway: Gateway) -> None:
    ada, bea, cy = gateway.signup("ada"), gateway.signup("bea"), gateway.signup("cy")
    club = niche(ada, "book_club", bea, cy)
    family = niche(ada, "family", bea)

    for client, quote in ((ada, "Fear is the mind-killer."), (bea, "The spice must flow.")):
        posted = client.post(f"/v1/niches/{club}/posts", {"type": "highlight", "book": DUNE,
                                                          "quote": quote})
        assert posted.status_code == 201, posted.text
    cy.post(f"/v1/niches/{club}/posts", {"type": "highlight", "quote": "Call me Ishmael.",
                                         "book": {"title": "Moby-Dick",
                                                  "author": "Herman Melville"}})
    put_profile(bea, club, display_name="Bea Reads", reading={"title": "Moby-Dick",
                                                               "author": "Herman Melville"})
    put_profile(ada, club, reading={"title": "Middlemarch", "author": "George Eliot"})

    shelf = ada.get(f"/v1/niches/{club}/shelf").json()["items"]
    assert [(s["book"]["title"], s["highlights"], [r["display_name"] for r in s["readers"]])
            for s in shelf] == [("Moby-Dick", 1, ["Bea Reads"]), ("Dune", 2, []),
                                ("Middlemarch", 0, ["Ada"])]
    assert shelf[1]["book"]["isbn"] == "9780441172719" and shelf[1]["last_highlight_at"]

    assert ada.post("/v1/blocks", {"user_id": cy.user_id}).status_code == 204
    shelf = ada.get(f"/v1/niches/{club}/shelf").json()["items"]
    assert [(s["book"]["title"], s["highlights"]) for s in shelf] == [
        ("Dune", 2), ("Middlemarch", 0), ("Moby-Dick", 0)]  # books only read: by title
    assert_error(ada.get(f"/v1/niches/{family}/shelf"), 400, "not_allowed_in_niche_kind")
    outsider = gateway.signup("outsider")
    assert_error(outsider.get(f"/v1/niches/{club}/shelf"), 404)
