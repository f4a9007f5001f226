"""Personas, skills and endorsements through the gateway: a skills niche where an ask is
answered by someone found through the directory, and what blocks and deletions take away."""

from __future__ import annotations

import psycopg

from kith.common import crypto
from kith.common.codec import default_codec
from tests.integration.gateway.harness import Client, Gateway, assert_error
from tests.integration.gateway.test_typed_posts import feed_item, niche
from tests.support.waiting import eventually


def put_profile(client: Client, niche_id: str, **fields) -> dict:
    resp = client.request("PUT", f"/v1/niches/{niche_id}/profile", fields)
    assert resp.status_code == 200, resp.text
    return resp.json()


def directory(client: Client, q: str) -> list[dict]:
    resp = client.get(f"/v1/skills?q={q}")
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]


def test_a_skills_niche_finds_a_bike_mechanic_answers_an_ask_and_endorses(
        gateway: Gateway) -> None:
    ann, ben, cat = gateway.signup("ann"), gateway.signup("ben"), gateway.signup("cat")
    swap = niche(ann, "skills", ben, cat)
    family = niche(ann, "family", ben)

    # A persona per niche: Ben is "Benji the Wrench" among the skill-swappers only.
    profile = put_profile(ben, swap, display_name="Benji the Wrench",
                          skills=[{"name": "  Bike Repair ", "level": "expert"},
                                  {"name": "Baking"}])
    assert profile["display_name"] == "Benji the Wrench"
    assert profile["skills"] == [{"name": "baking", "level": None, "endorsements": 0},
                                 {"name": "bike repair", "level": "expert", "endorsements": 0}]
    put_profile(cat, swap, skills=[{"name": "bike lights", "level": "beginner"}])
    assert ben.get(f"/v1/niches/{swap}/profile").json()["display_name"] == "Benji the Wrench"
    assert ben.get(f"/v1/niches/{family}/profile").json() == {
        "niche_id": family, "user_id": ben.user_id, "display_name": None, "headline": None,
        "birthday": None, "reading": None, "skills": []}
    refused = ben.request("PUT", f"/v1/niches/{family}/profile",
                          {"skills": [{"name": "bike repair"}], "headline": "Mechanic"})
    assert set(assert_error(refused, 400, "not_allowed_in_niche_kind")["details"]) == {
        "skills", "headline"}

    # Ann asks; the directory tells her who can fix a bike.
    ask = ann.post(f"/v1/niches/{swap}/posts", {"type": "ask", "text": "My gears slip, help?",
                                                "skill": "bike repair"}).json()
    found = directory(ann, "bik")  # as endorsed (nobody yet), then by name
    assert [(e["user"]["display_name"], e["skill"]) for e in found] == [
        ("Cat", "bike lights"), ("Benji the Wrench", "bike repair")]
    assert found[1]["niche"] == {"id": swap, "name": "A skills niche"}
    assert found[1]["level"] == "expert"
    members = ann.get(f"/v1/niches/{swap}/members?skill=bike%20r").json()["items"]
    assert [(m["display_name"], [s["name"] for s in m["skills"]]) for m in members] == [
        ("Benji the Wrench", ["baking", "bike repair"])]

    # Ben answers in a comment; Ann marks it, and endorses him (once, never herself).
    comment = ben.post(f"/v1/posts/{ask['id']}/comments", {"text": "Tighten the cable"}).json()
    comments = ann.get(f"/v1/posts/{ask['id']}/comments").json()["items"]
    assert comments[0]["author"] == {"id": ben.user_id, "display_name": "Benji the Wrench"}
    assert_error(ben.post(f"/v1/posts/{ask['id']}/answer", {"comment_id": comment["id"]}), 403)
    answered = ann.post(f"/v1/posts/{ask['id']}/answer", {"comment_id": comment["id"]})
    assert answered.status_code == 200, answered.text
    assert answered.json()["answered_by"] == {
        "comment_id": comment["id"],
        "author": {"id": ben.user_id, "display_name": "Benji the Wrench"}}
    in_feed = feed_item(cat, swap, ask["id"])
    assert in_feed["answered_by"]["author"]["display_name"] == "Benji the Wrench"
    assert in_feed["skill"] == "bike repair"

    endorse = f"/v1/niches/{swap}/members/{ben.user_id}/endorsements"
    for client in (ann, ann, cat):
        assert client.post(endorse, {"skill": "Bike Repair"}).status_code == 204
    assert_error(ben.post(endorse, {"skill": "bike repair"}), 400)  # not yourself
    assert_error(ann.post(endorse, {"skill": "juggling"}), 400)  # he does not list it
    assert_error(ann.post(f"/v1/niches/{family}/members/{ben.user_id}/endorsements",
                          {"skill": "baking"}), 400, "not_allowed_in_niche_kind")
    assert [(e["skill"], e["endorsements"]) for e in directory(ann, "bike")] == [
        ("bike repair", 2), ("bike lights", 0)]  # most endorsed first
    assert cat.delete(f"{endorse}/bike%20repair").status_code == 204
    assert directory(ann, "bike")[0]["endorsements"] == 1

    # Posts and feeds in the swap show his persona; the family still shows his own name.
    post = ben.post(f"/v1/niches/{swap}/posts", {"text": "Open workshop on Saturday"}).json()
    assert ann.get(f"/v1/posts/{post['id']}").json()["author"]["display_name"] == \
        "Benji the Wrench"
    assert feed_item(ann, swap, post["id"])["author"]["display_name"] == "Benji the Wrench"
    fam_post = ben.post(f"/v1/niches/{family}/posts", {"text": "Sunday lunch?"}).json()
    assert ann.get(f"/v1/posts/{fam_post['id']}").json()["author"]["display_name"] == "Ben"

    # A block hides people from the directory, both ways.
    assert ann.post("/v1/blocks", {"user_id": ben.user_id}).status_code == 204
    assert [e["user"]["id"] for e in directory(ann, "bik")] == [cat.user_id]
    assert [e["user"]["id"] for e in directory(ben, "bik")] == [cat.user_id]
    assert_error(ann.post(endorse, {"skill": "baking"}), 404)  # nor can they vouch
    # His answer is hidden from her like his comment: not even his name through the ask.
    assert ann.get(f"/v1/posts/{ask['id']}").json()["answered_by"] is None
    assert feed_item(ann, swap, ask["id"])["answered_by"] is None
    assert feed_item(cat, swap, ask["id"])["answered_by"]["author"]["id"] == ben.user_id
    assert ann.delete(f"/v1/blocks/{ben.user_id}").status_code == 204
    assert_error(ann.get("/v1/skills"), 400)


def test_a_deleted_account_leaves_no_persona_skill_or_endorsement(gateway: Gateway) -> None:
    ann, dee = gateway.signup("ann"), gateway.signup("dee")
    swap = niche(ann, "neighbourhood", dee)
    family = niche(ann, "family", dee)
    club = niche(ann, "book_club", dee)
    put_profile(dee, family, display_name="Auntie Dee", birthday="12-31")
    put_profile(dee, club, reading={"title": "Emma", "author": "Jane Austen"})
    assert dee.post(f"/v1/niches/{family}/posts", {
        "type": "moment", "moment": {"kind": "anniversary", "date": "2020-01-01"}}) \
        .status_code == 201
    assert ann.get("/v1/upcoming?days=366").json()["items"]
    assert ann.get(f"/v1/niches/{club}/shelf").json()["items"]
    put_profile(dee, swap, display_name="Dee from No. 4",
                skills=[{"name": "plumbing", "level": "expert"}])
    put_profile(ann, swap, skills=[{"name": "plastering"}])
    assert ann.post(f"/v1/niches/{swap}/members/{dee.user_id}/endorsements",
                    {"skill": "plumbing"}).status_code == 204
    assert dee.post(f"/v1/niches/{swap}/members/{ann.user_id}/endorsements",
                    {"skill": "plastering"}).status_code == 204
    assert [e["user"]["display_name"] for e in directory(ann, "plu")] == ["Dee from No. 4"]

    assert dee.request("DELETE", "/v1/me", {"password": "correct horse battery"}) \
        .status_code == 204

    eventually(lambda: directory(ann, "pl"), lambda items: items == [])
    assert eventually(lambda: ann.get("/v1/upcoming?days=366").json()["items"],
                      lambda items: items == []) == []
    assert ann.get(f"/v1/niches/{club}/shelf").json()["items"] == []
    members = ann.get(f"/v1/niches/{swap}/members").json()["items"]
    assert [m["user_id"] for m in members] == [ann.user_id]
    assert ann.get(f"/v1/niches/{swap}/profile").json()["skills"] == [
        {"name": "plastering", "level": None, "endorsements": 0}]

    # In graph's event log, what Dee said of herself and the skill endorsed are unreadable.
    with psycopg.connect(gateway.settings.database_url("graph")) as conn:
        rows = conn.execute(
            "SELECT event_type, payload FROM events WHERE event_type IN"
            " ('kith.graph.MemberProfileChanged', 'kith.graph.SkillEndorsed',"
            " 'kith.graph.SkillEndorsementWithdrawn')").fetchall()
        keys = conn.execute("SELECT count(*) FROM profile_keys WHERE user_id = %s",
                            (dee.user_id,)).fetchone()
    assert keys == (0,)
    assert b"Dee from No. 4" not in b"".join(bytes(p) for _, p in rows)
    assert b"Auntie Dee" not in b"".join(bytes(p) for _, p in rows)
    assert b"plumbing" not in b"".join(bytes(p) for _, p in rows)
    assert {t for t, _ in rows} == {"kith.graph.MemberProfileChanged", "kith.graph.SkillEndorsed",
                                    "kith.graph.SkillEndorsementWithdrawn"}
    codec = default_codec()
    sealed = [data.get("profile") or data["skill"]
              for data in (codec.decode(bytes(p))[1] for _, p in rows)]
    assert sealed and all(crypto.is_encrypted(value) for value in sealed)
