"""Two people in two browsers, against the real stack: a family niche from invite to block.

Ann signs up and creates a family niche, invites Bea by link; Bea joins. Ann
posts a moment with a photo and Bea sees it appear live, photo and all, hugs it
and comments; Ann sees the comment without reloading. They message each other
and see read state; Bea sends a photo with words, then one alone. A reload keeps
Bea signed in; Bea's broken connection recovers by itself. An outsider who opens
the niche's address sees "not found"; Ann revokes an invite and its link stops
working. Bea blocks Ann and Ann's posts vanish from Bea's feed. Every main page
passes an axe-core scan.
"""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect

from tests.integration.gateway.harness import Gateway
from tests.integration.web.axe import serious_violations
from tests.integration.web.pictures import landscape

PASSWORD = "correct horse battery"
LIVE_S = 15_000  # ms: what "appears live" may take, end to end
expect.set_options(timeout=LIVE_S)


def accessible(page: Page, what: str) -> None:
    assert serious_violations(page) == [], f"{what}: serious accessibility violations"


def sign_in(page: Page, username: str) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def connection(page: Page) -> Any:
    """The live-connection status in the page's banner."""
    return page.get_by_role("banner").get_by_role("status")


def post_card(page: Page, text: str) -> Any:
    return page.get_by_role("article").filter(has_text=text)


def shows_image(img: Any) -> None:
    """The photo is on screen and its bytes arrived (the app fetches them with the session)."""
    expect(img).to_be_visible()
    img.evaluate("el => el.decode()")
    assert img.evaluate("el => el.naturalWidth") > 0


def test_a_family_niche_from_invite_to_block(gateway: Gateway, browser: Any) -> None:
    bea_account = gateway.signup("bea")
    outsider = gateway.signup("otto")
    ann_ctx, bea_ctx, otto_ctx = (browser.new_context(viewport={"width": 390, "height": 844})
                                  for _ in range(3))
    ann, bea, otto = ann_ctx.new_page(), bea_ctx.new_page(), otto_ctx.new_page()
    for page in (ann, bea, otto):
        page.set_default_timeout(LIVE_S)

    # -- Ann signs up and creates a family niche ----------------------------------------
    ann.goto(gateway.url + "/")
    expect(ann.get_by_role("heading", name="Sign in to Kith")).to_be_visible()
    accessible(ann, "sign-in page")
    ann.get_by_role("link", name="Create an account").click()
    ann.get_by_label("Your name").fill("Ann")
    ann.get_by_label("Username").fill(f"ann_{bea_account.username[-8:]}")
    ann.get_by_label("Password").fill(PASSWORD)
    ann.get_by_role("button", name="Create account").click()
    expect(ann.get_by_role("heading", name="Home")).to_be_visible()
    expect(connection(ann)).to_have_text("Live")
    accessible(ann, "home")

    ann.get_by_role("navigation").get_by_role("link", name="Niches").click()
    ann.get_by_label("Name").fill("The Ashfords")
    ann.get_by_label("Kind").select_option("family")
    expect(ann.get_by_text("For a family")).to_be_visible()
    accessible(ann, "niches")
    ann.get_by_role("button", name="Create niche").click()
    expect(ann.get_by_role("heading", name="The Ashfords")).to_be_visible()
    niche_url = ann.url
    assert re.search(r"/niches/[0-9a-f-]{36}$", niche_url)

    # -- Ann invites Bea by link; Bea joins ---------------------------------------------------
    ann.get_by_role("button", name="Create invite link").click()
    link = ann.get_by_label("Invite link").input_value()
    assert "/join/" in link
    accessible(ann, "niche page")

    bea.goto(link)
    expect(bea.get_by_text("You have been invited to a niche")).to_be_visible()
    sign_in(bea, bea_account.username)
    expect(bea.get_by_role("heading", name=re.compile("^You.re invited$"))).to_be_visible()
    bea.get_by_role("button", name="Join the niche").click()
    expect(bea.get_by_role("heading", name="The Ashfords")).to_be_visible()
    expect(connection(bea)).to_have_text("Live")

    # -- Ann posts a moment with a photo; Bea sees it live, hugs it and comments; -----------
    # -- Ann sees the comment live ------------------------------------------------------------
    composer = ann.get_by_role("form", name="New post in The Ashfords")
    composer.get_by_role("radio", name="Moment").check()
    composer.get_by_label("What happened").select_option("birthday")
    composer.get_by_label("Date").fill("2027-03-14")
    composer.get_by_label("Tell everyone about it").fill("Grandma turns 90 on Sunday!")
    composer.get_by_label("Add photos").set_input_files(
        files=[{"name": "grandma.png", "mimeType": "image/png", "buffer": landscape()}])
    expect(composer.get_by_role("img", name="Photo 1 to send: grandma.png")).to_be_visible()
    composer.get_by_role("button", name="Post", exact=True).click()
    expect(post_card(ann, "Grandma turns 90")).to_be_visible()
    expect(composer.get_by_label("Write a post to The Ashfords")).to_have_value("")  # back to text
    bea_post = post_card(bea, "Grandma turns 90")
    expect(bea_post).to_be_visible()  # no reload: the stream
    expect(bea_post.get_by_text("Birthday")).to_be_visible()
    shows_image(bea_post.get_by_role("img", name="Grandma turns 90 on Sunday!"))
    ann_post = post_card(ann, "Grandma turns 90")
    shows_image(ann_post.get_by_role("img", name="Grandma turns 90 on Sunday!"))
    ann_post.get_by_role("button", name=re.compile(r"^Comments")).click()

    bea_post.get_by_role("button", name="Hug").click()
    expect(bea_post.get_by_role("button", name="Hug 1")).to_have_attribute("aria-pressed", "true")
    bea_post.get_by_role("button", name=re.compile(r"^Comments")).click()
    bea_post.get_by_label("Write a comment").fill("Can't wait, I'll bake!")
    bea_post.get_by_role("button", name="Comment", exact=True).click()
    expect(ann_post.get_by_text("Bea: Can't wait, I'll bake!")).to_be_visible()

    # -- they message each other and see read state --------------------------------------------
    ann.get_by_role("button", name="Message Bea").click()
    expect(ann.get_by_role("heading", name="Bea")).to_be_visible()
    ann.get_by_label("Write a message").fill("Lunch at noon?")
    ann.get_by_role("button", name="Send").click()
    expect(ann.get_by_role("log").get_by_text("Lunch at noon?")).to_be_visible()
    expect(ann.get_by_text("Delivered")).to_be_visible()

    expect(bea.get_by_role("link", name=re.compile(r"Messages \(1 unread\)"))).to_be_visible()
    bea.get_by_role("link", name=re.compile("^Messages")).click()
    expect(bea.get_by_role("main").get_by_text("1 unread")).to_be_visible()
    accessible(bea, "messages")
    bea.get_by_role("link", name="Ann").click()
    expect(bea.get_by_role("log").get_by_text("Lunch at noon?")).to_be_visible()
    expect(ann.get_by_text("Seen by Bea")).to_be_visible()  # Bea's read receipt, live
    expect(bea.get_by_role("link", name="Messages", exact=True)).to_be_visible()  # none unread
    bea.get_by_label("Write a message").fill("Yes! See you there")
    bea.get_by_role("button", name="Send").click()
    expect(ann.get_by_role("log").get_by_text("Yes! See you there")).to_be_visible()
    bea.get_by_label("Add photos to your message").set_input_files(
        files=[{"name": "cake.png", "mimeType": "image/png", "buffer": landscape(320, 240)}])
    expect(bea.get_by_role("img", name="Photo 1 to send: cake.png")).to_be_visible()
    bea.get_by_label("Write a message").fill("The cake I ordered")
    bea.get_by_role("button", name="Send").click()
    shows_image(ann.get_by_role("log").get_by_role("img", name="The cake I ordered"))  # live
    bea.get_by_label("Add photos to your message").set_input_files(  # a photo, no words
        files=[{"name": "view.png", "mimeType": "image/png", "buffer": landscape(300, 200)}])
    expect(bea.get_by_role("img", name="Photo 1 to send: view.png")).to_be_visible()
    bea.get_by_role("button", name="Send").click()
    shows_image(ann.get_by_role("log").get_by_role("img", name="Photo by Bea"))
    accessible(bea, "conversation")

    # -- nothing is lost when a send fails: the message is retried with the same id -----------
    ann_ctx.set_offline(True)
    ann.get_by_label("Write a message").fill("Are you bringing the cake?")
    ann.get_by_role("button", name="Send").click()
    expect(ann.get_by_role("log").get_by_text("Not sent.")).to_be_visible()
    ann_ctx.set_offline(False)
    ann.get_by_role("button", name="Try again").click()
    expect(bea.get_by_role("log").get_by_text("Are you bringing the cake?")).to_have_count(1)
    expect(ann.get_by_role("log").get_by_text("Are you bringing the cake?")).to_have_count(1)
    expect(ann.get_by_text("Not sent.")).to_have_count(0)

    # -- a reload keeps the session; a broken connection recovers ------------------------------
    bea.reload()
    expect(bea.get_by_role("log").get_by_text("Yes! See you there")).to_be_visible()
    expect(connection(bea)).to_have_text("Live")
    bea.get_by_role("link", name="Home").click()
    expect(post_card(bea, "Grandma turns 90")).to_be_visible()
    bea_ctx.set_offline(True)
    expect(connection(bea)).to_contain_text("Connection lost")
    bea_ctx.set_offline(False)
    expect(connection(bea)).to_have_text("Live")
    ann.goto(niche_url)
    expect(connection(ann)).to_have_text("Live")
    ann_ctx.set_offline(True)  # a post that fails to send stays in its box
    ann.get_by_label("Write a post to The Ashfords").fill("The cake is ordered")
    ann.get_by_role("button", name="Post", exact=True).click()
    expect(ann.get_by_role("alert").filter(has_text="Your post is kept here")).to_be_visible()
    expect(ann.get_by_label("Write a post to The Ashfords")).to_have_value("The cake is ordered")
    ann_ctx.set_offline(False)
    ann.get_by_role("button", name="Post", exact=True).click()
    expect(post_card(bea, "The cake is ordered")).to_be_visible()  # live again

    # -- an outsider opening the niche's address sees "not found" ------------------------------
    otto.goto(niche_url)
    sign_in(otto, outsider.username)
    expect(otto.get_by_role("heading", name="Not found")).to_be_visible()
    expect(otto.get_by_text("The Ashfords")).to_have_count(0)

    # -- Ann sees her open invites and revokes one: its link stops working ---------------------
    expect(ann.get_by_text("No open invites.")).to_be_visible()  # Bea used up the first
    ann.get_by_role("button", name="Create invite link").click()
    stray_link = ann.get_by_label("Invite link").input_value()
    expect(ann.get_by_text("Invite 1: used 0 of 1")).to_be_visible()
    ann.get_by_role("button", name="Revoke invite 1").click()
    expect(ann.get_by_text("The invite is revoked")).to_be_visible()
    expect(ann.get_by_text("No open invites.")).to_be_visible()
    otto.goto(stray_link)
    otto.get_by_role("button", name="Join the niche").click()
    expect(otto.get_by_role("alert")).to_have_text(re.compile("expired, has been used up"))

    # -- Bea blocks Ann: Ann's posts vanish from Bea's feed ------------------------------------
    bea.goto(niche_url)
    bea.get_by_role("button", name="Block Ann").click()
    expect(bea.get_by_role("button", name="Unblock Ann")).to_be_visible()
    bea.get_by_role("link", name="Home").click()
    expect(bea.get_by_role("heading", name="Home")).to_be_visible()
    expect(post_card(bea, "Grandma turns 90")).to_have_count(0)
    bea.reload()
    expect(bea.get_by_role("heading", name="Home")).to_be_visible()
    expect(bea.get_by_text("No posts yet.")).to_be_visible()
    bea.get_by_role("link", name="Settings").click()
    expect(bea.get_by_role("button", name="Unblock Ann")).to_be_visible()
    accessible(bea, "settings")

    for ctx in (ann_ctx, bea_ctx, otto_ctx):
        ctx.close()
