"""``kith demo`` seeds a running gateway and hands out a login that works."""

from __future__ import annotations

import json
import re

import pytest

from kith_dev import demo
from tests.integration.gateway.harness import Client, Gateway
from tests.support.waiting import eventually


def test_demo_seeds_and_prints_a_working_login(gateway: Gateway,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main(["--url", gateway.url, "--people", "24", "--niches", "4",
                      "--niche-size", "6", "--concurrency", "4"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out.splitlines()[0])
    assert summary["people"] == 25 and summary["niches"] == 4 and summary["posts"] >= 4
    username = re.search(r"username: (\S+)", out).group(1)  # type: ignore[union-attr]
    password = re.search(r"password: (\S+)", out).group(1)  # type: ignore[union-attr]
    session = gateway.client().post("/v1/sessions", {"username": username, "password": password})
    assert session.status_code == 201
    me = Client(gateway.url, session.json()["access_token"])
    assert len(me.get("/v1/niches").json()["items"]) == 3
    # A conversation is listed once it starts; its welcome message arrives after it.
    inbox = eventually(lambda: me.get("/v1/conversations").json()["items"],
                       lambda items: len(items) == 3
                       and all(i["unread_count"] == 1 for i in items))
    assert all(i["last_message"] for i in inbox)
    # The first post of every niche carries a photo drawn by the demo, served to members
    # (further down the feed, below the typed posts that show what each niche is for).
    feed = eventually(lambda: me.get("/v1/feed?limit=100").json()["items"],
                      lambda items: any(i.get("media") for i in items))
    photo = next(m for i in feed for m in i.get("media", []))
    thumb = me.get(photo["thumb_url"])
    assert thumb.status_code == 200 and thumb.headers["Content-Type"] == "image/jpeg"
    # Each niche shows what its kind is for: personas and upcoming days in the family,
    # a shelf in the book club.
    niches = {n["kind"]: n["id"] for n in me.get("/v1/niches").json()["items"]}
    family = me.get(f"/v1/niches/{niches['family']}/members").json()["items"]
    assert any(m["display_name"].startswith("Grandma ") for m in family)
    assert {i["kind"] for i in me.get("/v1/upcoming?days=366").json()["items"]} >= {
        "birthday", "wedding"}
    shelf = me.get(f"/v1/niches/{niches['book_club']}/shelf").json()["items"]
    assert {s["book"]["title"] for s in shelf} >= {"Dune", "Moby-Dick"}
