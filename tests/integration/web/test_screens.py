"""The main screens at phone and desktop widths: nothing overflows sideways, no serious
accessibility violation — and, with ``KITH_SCREENSHOTS_DIR`` set (``make screenshots``),
a PNG of each for docs/web.md."""

from __future__ import annotations

import datetime
import os
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.integration.gateway.harness import Client, Gateway
from tests.integration.web.axe import serious_violations
from tests.integration.web.pictures import landscape
from tests.support.waiting import eventually

WIDTHS = {"phone": (390, 844), "desktop": (1280, 800)}
PASSWORD = "correct horse battery"


class Seeded:
    def __init__(self, jo: Client, family: str, conversation: str, street: str, club: str) -> None:
        self.jo, self.family, self.conversation = jo, family, conversation
        self.street, self.club = street, club


def seed_purposes(jo: Client, sam: Client, kit: Client, family: str) -> tuple[str, str]:
    """A moment with a photo and birthdays in the family; a neighbourhood with skills and an
    answered ask; a book club with a highlight and a reader."""
    photo = jo.request("POST", "/v1/media", data=landscape(),
                       headers={"Content-Type": "image/png"})
    assert photo.status_code == 201, photo.text
    soon = datetime.date.today() + datetime.timedelta(days=5)
    assert jo.post(f"/v1/niches/{family}/posts", {
        "type": "moment", "moment": {"kind": "new_home", "date": soon.isoformat()},
        "text": "We got the keys! Housewarming on Saturday.",
        "media_ids": [photo.json()["id"]]}).status_code == 201
    for who, days in ((sam, 3), (kit, 12)):
        day = datetime.date.today() + datetime.timedelta(days=days)
        assert who.request("PUT", f"/v1/niches/{family}/profile",
                           {"birthday": day.strftime("%m-%d")}).status_code == 200

    street = jo.post("/v1/niches", {"name": "Maple Street", "kind": "neighbourhood"}).json()["id"]
    code = jo.post(f"/v1/niches/{street}/invites", {"max_uses": 1}).json()["code"]
    assert kit.post(f"/v1/invites/{code}/accept").status_code == 200
    assert kit.request("PUT", f"/v1/niches/{street}/profile", {
        "display_name": "Kit (no. 12)", "skills": [{"name": "bike repair", "level": "expert"},
                                                   {"name": "baking"}]}).status_code == 200
    assert jo.request("PUT", f"/v1/niches/{street}/profile", {
        "skills": [{"name": "knitting", "level": "expert"}]}).status_code == 200
    assert jo.post(f"/v1/niches/{street}/members/{kit.user_id}/endorsements",
                   {"skill": "bike repair"}).status_code == 204
    ask = jo.post(f"/v1/niches/{street}/posts", {"type": "ask", "skill": "bike repair",
                                                 "text": "My back tyre keeps going flat. "
                                                         "Can anyone help?"}).json()
    answer = kit.post(f"/v1/posts/{ask['id']}/comments",
                      {"text": "Bring it round on Sunday, I have patches"}).json()
    assert jo.post(f"/v1/posts/{ask['id']}/answer", {"comment_id": answer["id"]}
                   ).status_code == 200

    club = jo.post("/v1/niches", {"name": "Slow Readers", "kind": "book_club"}).json()["id"]
    assert jo.request("PUT", f"/v1/niches/{club}/profile", {
        "reading": {"title": "Persuasion", "author": "Jane Austen"}}).status_code == 200
    assert jo.post(f"/v1/niches/{club}/posts", {
        "type": "highlight", "book": {"title": "Middlemarch", "author": "George Eliot",
                                      "isbn": "9780141439549"},
        "page": 838, "quote": "For the growing good of the world is partly dependent on "
                              "unhistoric acts.",
        "text": "The last page, and still the best."}).status_code == 201
    return street, club


def seed(gateway: Gateway) -> Seeded:
    """A family niche with a few posts, reactions, a comment and a conversation, and the
    purpose-built niches (see seed_purposes)."""
    jo, sam, kit = gateway.signup("jo"), gateway.signup("sam"), gateway.signup("kit")
    assert jo.patch("/v1/me", {"display_name": "Grandma Jo", "bio": "Knits, bakes, texts."}
                    ).status_code == 200
    niche = jo.post("/v1/niches", {"name": "The Ashfords", "kind": "family",
                                   "description": "Sunday lunches and everything between"}
                    ).json()
    code = jo.post(f"/v1/niches/{niche['id']}/invites", {"max_uses": 2}).json()["code"]
    for c in (sam, kit):
        assert c.post(f"/v1/invites/{code}/accept").status_code == 200
    first = sam.post(f"/v1/niches/{niche['id']}/posts",
                     {"text": "Kit lost her first tooth today! She wants to know if the "
                              "tooth fairy takes card."}).json()
    jo.post(f"/v1/niches/{niche['id']}/posts", {"text": "Lunch on Sunday at 1pm. "
                                                        "I am making the lemon cake."})
    for who, kind in ((jo, "laugh"), (kit, "love"), (jo, "hug")):
        who.post(f"/v1/posts/{first['id']}/reactions", {"kind": kind})
    jo.post(f"/v1/posts/{first['id']}/comments", {"text": "Tell her the fairy is cash only"})
    conv = jo.post("/v1/conversations", {"member_ids": [sam.user_id]}).json()
    for i, (who, text) in enumerate([(jo, "Can you bring chairs on Sunday?"),
                                     (sam, "Yes, four of them"), (jo, "Lovely, thank you")]):
        who.post(f"/v1/conversations/{conv['id']}/messages",
                 {"client_message_id": f"s{i}", "text": text})
    street, club = seed_purposes(jo, sam, kit, niche["id"])
    # Feeds are eventually consistent: the screens show them once fanned out.
    feed = eventually(lambda: jo.get("/v1/feed").json()["items"], lambda items: len(items) == 5)
    assert len(feed) == 5, feed
    return Seeded(jo, niche["id"], conv["id"], street, club)


def check(page: Page, name: str, width: str, out: Path | None, show: Any = None) -> None:
    """No sideways scroll, axe-clean; the screenshot from the top, or with ``show`` in view."""
    page.wait_for_timeout(300)  # fonts and late layout
    page.evaluate("() => window.scrollTo(0, 0)")
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name} at {width} width scrolls sideways by {overflow}px"
    assert serious_violations(page) == [], f"{name} at {width} width"
    if out is not None:
        if show is not None:
            show.evaluate("el => el.scrollIntoView({block: 'start'})")
            page.evaluate("() => window.scrollBy(0, -document.querySelector('header')"
                          ".offsetHeight - 16)")  # below the sticky banner
        page.screenshot(path=str(out / f"{name}-{width}.png"), full_page=False)


def test_main_screens_fit_phone_and_desktop(gateway: Gateway, browser: Any) -> None:
    seeded = seed(gateway)
    jo, niche_id, conv_id = seeded.jo, seeded.family, seeded.conversation
    target = os.environ.get("KITH_SCREENSHOTS_DIR")
    out = Path(target) if target else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    for width, (w, h) in WIDTHS.items():
        ctx = browser.new_context(viewport={"width": w, "height": h})
        page = ctx.new_page()
        page.goto(gateway.url + "/")
        expect(page.get_by_role("heading", name="Sign in to Kith")).to_be_visible()
        check(page, "sign-in", width, out)
        page.get_by_label("Username").fill(jo.username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("article").filter(has_text="tooth fairy")).to_be_visible()
        expect(page.get_by_role("banner").get_by_role("status")).to_have_text("Live")
        check(page, "home", width, out)
        page.goto(f"{gateway.url}/niches/{niche_id}")
        expect(page.get_by_role("heading", name="The Ashfords")).to_be_visible()
        page.get_by_role("article").filter(has_text="tooth fairy").get_by_role(
            "button", name="Comments (1)").click()
        expect(page.get_by_text("cash only")).to_be_visible()
        moment = page.get_by_role("article").filter(has_text="We got the keys")
        expect(moment.get_by_text("New home")).to_be_visible()
        photo = moment.get_by_role("img", name="We got the keys! Housewarming on Saturday.")
        expect(photo).to_be_visible()
        photo.evaluate("el => el.decode()")
        check(page, "niche", width, out, show=moment)
        page.goto(f"{gateway.url}/niches/{seeded.street}")
        ask = page.get_by_role("article").filter(has_text="back tyre")
        expect(ask.get_by_text("Answered by Kit (no. 12)")).to_be_visible()
        ask.get_by_role("button", name="Comments (1)").click()
        expect(ask.get_by_text("(the answer)")).to_be_visible()
        expect(page.get_by_role("button", name="Endorse Kit (no. 12) for bike repair")
               ).to_be_visible()
        kits_skills = page.get_by_role("list", name=re.compile("^Kit .no. 12..s skills$"))
        expect(kits_skills.get_by_role("listitem").filter(has_text="bike repair")
               ).to_contain_text("1 endorsement")
        page.get_by_label("Find members by skill").fill("bik")
        page.get_by_role("button", name="Find", exact=True).click()
        expect(page.get_by_text("1 with a skill starting with")).to_be_visible()
        expect(page.get_by_role("region", name="Members (2)").get_by_text("(you)")
               ).to_have_count(0)  # only Kit lists a skill starting with "bik"
        check(page, "neighbourhood", width, out, show=ask)
        page.goto(f"{gateway.url}/niches/{seeded.club}")
        expect(page.get_by_role("figure").get_by_text("unhistoric acts")).to_be_visible()
        page.get_by_role("article").filter(has_text="unhistoric").get_by_role(
            "button", name="Edit").click()  # a typed post is edited with its own fields
        editing = page.get_by_role("article").filter(has=page.get_by_role("button", name="Save"))
        expect(editing.get_by_label("Book title")).to_have_value("Middlemarch")
        editing.get_by_label("Page (optional)").fill("839")
        editing.get_by_role("button", name="Save").click()
        expect(page.get_by_role("figure")).to_contain_text("George Eliot, page 839")
        expect(page.get_by_role("region", name="The shelf").get_by_text("Persuasion")
               ).to_be_visible()
        page.get_by_role("button", name="Edit your profile here").click()
        expect(page.get_by_label("Reading now: title")).to_have_value("Persuasion")
        page.get_by_role("radio", name="Book highlight").check()
        expect(page.get_by_label("Book title")).to_be_visible()
        check(page, "book-club", width, out,
              show=page.get_by_role("article").filter(has_text="unhistoric"))
        page.get_by_role("navigation").get_by_role("link", name="Upcoming").click()
        expect(page.get_by_role("heading", name="Coming up")).to_be_visible()
        expect(page.get_by_role("list", name="Coming up").get_by_role("listitem")
               ).to_have_count(2)  # the birthdays; a new home does not return yearly
        check(page, "upcoming", width, out)
        page.get_by_role("navigation").get_by_role("link", name="Skills").click()
        page.get_by_label("Search skills").fill("bi")
        page.get_by_role("button", name="Search").click()
        expect(page.get_by_role("list", name="People with skills").get_by_role("listitem")
               ).to_have_count(1)
        expect(page.get_by_text("Kit (no. 12): bike repair (expert)")).to_be_visible()
        check(page, "skills", width, out)
        page.get_by_role("navigation").get_by_role("link", name="Niches").click()
        expect(page.get_by_role("link", name="Maple Street")).to_be_visible()
        check(page, "niches", width, out)
        page.goto(f"{gateway.url}/messages/{conv_id}")
        expect(page.get_by_role("log").get_by_text("Yes, four of them")).to_be_visible()
        check(page, "conversation", width, out)
        page.get_by_role("navigation").get_by_role("link", name="Settings").click()
        expect(page.get_by_label("About you")).to_have_value("Knits, bakes, texts.")
        check(page, "settings", width, out)
        ctx.close()
