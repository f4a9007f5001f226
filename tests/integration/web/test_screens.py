"""The main screens at phone and desktop widths: nothing overflows sideways, no serious
accessibility violation — and, with ``KITH_SCREENSHOTS_DIR`` set (``make screenshots``),
a PNG of each for docs/web.md."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.integration.gateway.harness import Client, Gateway, eventually
from tests.integration.web.axe import serious_violations

WIDTHS = {"phone": (390, 844), "desktop": (1280, 800)}
PASSWORD = "correct horse battery"


def seed(gateway: Gateway) -> tuple[Client, str, str]:
    """A family niche with a few posts, reactions, a comment and a conversation."""
    jo, sam, kit = gateway.signup("jo"), gateway.signup("sam"), gateway.signup("kit")
    assert jo.patch("/v1/me", {"display_name": "Grandma Jo", "bio": "Knits, bakes, texts."}
                    ).status_code == 200
    niche = jo.post("/v1/niches", {"name": "The Ashfords", "kind": "family",
                                   "description": "Sunday lunches and everything between"}
                    ).json()
    jo.post("/v1/niches", {"name": "Maple Street", "kind": "neighbourhood"})
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
    # Feeds are eventually consistent: the screens show them once fanned out.
    feed = eventually(lambda: jo.get("/v1/feed").json()["items"], lambda items: len(items) == 2)
    assert len(feed) == 2, feed
    return jo, niche["id"], conv["id"]


def check(page: Page, name: str, width: str, out: Path | None) -> None:
    page.wait_for_timeout(300)  # fonts and late layout
    page.evaluate("() => window.scrollTo(0, 0)")
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name} at {width} width scrolls sideways by {overflow}px"
    assert serious_violations(page) == [], f"{name} at {width} width"
    if out is not None:
        page.screenshot(path=str(out / f"{name}-{width}.png"), full_page=False)


def test_main_screens_fit_phone_and_desktop(gateway: Gateway, browser: Any) -> None:
    jo, niche_id, conv_id = seed(gateway)
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
        check(page, "niche", width, out)
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
