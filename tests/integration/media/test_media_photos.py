"""Photos through the gateway: what a person uploads comes back clean, and only to the people
who can see what it is attached to.

The whole stack runs in-process (the gateway test fixtures, media included).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import psycopg
import pytest
from PIL import Image, PngImagePlugin

from kith.media import storage
from tests.integration.gateway.conftest import gateway, module_settings, stack  # noqa: F401
from tests.integration.gateway.harness import Client, Gateway, assert_error
from tests.support.waiting import eventually

PASSWORD = "correct horse battery"


# -- images a phone (or an attacker) would send ------------------------------------------------

def jpeg_with_gps(width: int = 400, height: int = 200, orientation: int = 6) -> bytes:
    """A camera-like JPEG: GPS position, camera serial, and 'rotate 90°' in its EXIF."""
    image = Image.new("RGB", (width, height), (200, 30, 30))
    image.paste((20, 20, 220), (0, 0, width // 4, height))  # a blue band on the left
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    exif[0xA431] = "SERIAL-12345"  # BodySerialNumber
    exif[0x010F] = "KithCam"  # Make
    gps = {1: "N", 2: (51.0, 30.0, 12.5), 3: "W", 4: (0.0, 7.0, 40.0)}
    exif[0x8825] = gps  # GPSInfo
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()


def png_with_text() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "home address: 12 Secret Lane")
    info.add_itxt("Author", "Grandma Jo's secret diary")
    out = io.BytesIO()
    Image.new("RGBA", (120, 80), (0, 128, 0, 200)).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def plain_png(size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (90, 90, 200)).save(out, "PNG")
    return out.getvalue()


def bomb_png() -> bytes:
    """48 megapixels of one colour: a few KiB on the wire, over the 40 MP limit decoded."""
    out = io.BytesIO()
    Image.new("1", (8000, 6000)).save(out, "PNG")
    return out.getvalue()


def upload(client: Client, data: bytes, content_type: str = "image/jpeg", **headers: str):
    return client.http.post(client.base_url + "/v1/media", data=data, timeout=30,
                            headers={"Authorization": f"Bearer {client.token}",
                                     "Content-Type": content_type, **headers})


def uploaded(client: Client, data: bytes | None = None, content_type: str = "image/png") -> str:
    resp = upload(client, data or plain_png(), content_type)
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def fetch(client: Client, media_id: str, size: str = "original", **headers: str):
    return client.get(f"/v1/media/{media_id}?size={size}", headers=headers)


def media_rows(gw: Gateway) -> int:
    with psycopg.connect(gw.settings.database_url("media")) as conn:
        return conn.execute("SELECT count(*) FROM media").fetchone()[0]


# -- a family niche with the usual cast --------------------------------------------------------

@dataclass
class Family:
    owner: Client
    member: Client
    blocked: Client
    former: Client
    outsider: Client
    niche_id: str


def join(owner: Client, niche_id: str, *users: Client) -> None:
    for user in users:
        code = owner.post(f"/v1/niches/{niche_id}/invites", {}).json()["code"]
        assert user.post(f"/v1/invites/{code}/accept").status_code == 200


@pytest.fixture(scope="module")
def family(gateway: Gateway) -> Family:  # noqa: F811
    owner, member, blocked, former, outsider = (
        gateway.signup(n) for n in ("jo", "mia", "blake", "rory", "otto"))
    niche = owner.post("/v1/niches", {"name": "The Smiths", "kind": "family"}).json()
    join(owner, niche["id"], member, blocked, former)
    assert owner.delete(f"/v1/niches/{niche['id']}/members/{former.user_id}").status_code == 204
    assert owner.post("/v1/blocks", {"user_id": blocked.user_id}).status_code == 204
    return Family(owner, member, blocked, former, outsider, niche["id"])


def post_with_photos(family: Family, *media_ids: str, text: str = "look!") -> dict:
    resp = family.owner.post(f"/v1/niches/{family.niche_id}/posts",
                             {"text": text, "media_ids": list(media_ids)})
    assert resp.status_code == 201, resp.text
    return resp.json()


# -- what comes back is clean -------------------------------------------------------------------

def test_a_phone_photo_comes_back_upright_without_gps_or_serial(family: Family) -> None:
    resp = upload(family.owner, jpeg_with_gps(400, 200, orientation=6))
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["content_type"] == "image/jpeg"
    assert (body["width"], body["height"]) == (200, 400)  # the rotation was applied
    original = fetch(family.owner, body["id"])
    assert original.status_code == 200
    assert original.headers["Content-Type"] == "image/jpeg"
    assert int(original.headers["Content-Length"]) == len(original.content) == body["bytes"]
    image = Image.open(io.BytesIO(original.content))
    assert image.size == (200, 400)
    assert "exif" not in image.info and len(image.getexif()) == 0
    assert b"SERIAL-12345" not in original.content and b"KithCam" not in original.content
    # the blue band was on the left; rotated 90° clockwise it is now on top
    assert image.getpixel((100, 10))[2] > 150 and image.getpixel((100, 390))[0] > 150


def test_png_text_chunks_are_dropped_and_sizes_are_made(family: Family) -> None:
    media_id = uploaded(family.owner, png_with_text(), "image/png")
    original = fetch(family.owner, media_id).content
    assert b"Secret Lane" not in original and b"diary" not in original
    assert b"tEXt" not in original and b"iTXt" not in original
    image = Image.open(io.BytesIO(original))
    assert image.text == {} and image.mode == "RGBA"
    big = uploaded(family.owner, plain_png((2400, 1800)))
    display = Image.open(io.BytesIO(fetch(family.owner, big, "display").content))
    thumb = Image.open(io.BytesIO(fetch(family.owner, big, "thumb").content))
    assert display.size == (1600, 1200) and thumb.size == (320, 240)


@pytest.mark.parametrize("case", ["bomb", "truncated", "polyglot", "wrong_type", "html",
                                  "empty"])
def test_what_is_not_a_clean_image_is_refused_and_nothing_is_stored(
        gateway: Gateway, family: Family, case: str) -> None:  # noqa: F811
    jpeg = jpeg_with_gps()
    body, content_type = {
        "bomb": (bomb_png(), "image/png"),
        "truncated": (jpeg[: len(jpeg) // 2], "image/jpeg"),
        "polyglot": (b"\x89PNG\r\n\x1a\n<html><script>alert(document.cookie)</script></html>",
                     "image/png"),
        "wrong_type": (jpeg, "image/png"),
        "html": (b"<html><body>hello</body></html>", "text/html"),
        "empty": (b"", "image/jpeg"),
    }[case]
    before = media_rows(gateway)
    resp = upload(family.owner, body, content_type)
    assert_error(resp, 400, "invalid_image" if case != "empty" else None)
    assert media_rows(gateway) == before


def test_an_oversized_body_is_413(gateway: Gateway, family: Family) -> None:  # noqa: F811
    before = media_rows(gateway)
    resp = upload(family.owner, b"\xff\xd8\xff" + b"\0" * (10 * 1024 * 1024))
    assert_error(resp, 413, "payload_too_large")

    def chunked():  # no Content-Length: counted as it streams
        yield b"\xff\xd8\xff"
        for _ in range(11):
            yield b"\0" * (1024 * 1024)

    resp = upload(family.owner, chunked())  # type: ignore[arg-type]
    assert_error(resp, 413, "payload_too_large")
    assert media_rows(gateway) == before


def test_a_retried_upload_with_an_idempotency_key_stores_one_photo(
        gateway: Gateway, family: Family) -> None:  # noqa: F811
    data = jpeg_with_gps()
    first = upload(family.owner, data, **{"Idempotency-Key": "photo-1"})
    before = media_rows(gateway)
    again = upload(family.owner, data, **{"Idempotency-Key": "photo-1"})
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"] and media_rows(gateway) == before
    other = upload(family.owner, plain_png(), "image/png", **{"Idempotency-Key": "photo-1"})
    assert other.status_code == 422, other.text


# -- who may see it -----------------------------------------------------------------------------

def test_whoever_sees_the_post_sees_its_photos_and_nobody_else(family: Family) -> None:
    first, second = uploaded(family.owner), uploaded(family.owner, jpeg_with_gps(), "image/jpeg")
    assert fetch(family.member, first).status_code == 404  # not attached yet: uploader only
    post = post_with_photos(family, first, second)
    assert [m["id"] for m in post["media"]] == [first, second]
    shown = family.member.get(f"/v1/posts/{post['id']}").json()["media"]
    assert shown[0]["thumb_url"] == f"/v1/media/{first}?size=thumb"
    assert shown[1]["width"] == 200 and shown[1]["height"] == 400
    thumb = family.member.get(shown[0]["thumb_url"])
    assert thumb.status_code == 200 and thumb.headers["Content-Type"] == "image/png"
    assert thumb.headers["Cache-Control"].startswith("private")
    again = family.member.get(shown[0]["thumb_url"],
                              headers={"If-None-Match": thumb.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""
    for who in (family.outsider, family.former, family.blocked):
        assert_error(fetch(who, first, "thumb"), 404, "not_found")
    feed = eventually(lambda: family.member.get("/v1/feed").json()["items"],
                      lambda items: any(i["id"] == post["id"] for i in items))
    assert [m["id"] for i in feed if i["id"] == post["id"] for m in i["media"]] == [first, second]


def test_a_photo_must_be_mine_and_free_and_a_failed_post_attaches_nothing(
        family: Family) -> None:
    mine = uploaded(family.owner)
    theirs = uploaded(family.member)
    assert_error(family.owner.post(f"/v1/niches/{family.niche_id}/posts",
                                   {"text": "stolen", "media_ids": [theirs]}), 400,
                 "invalid_media")
    # A post into a niche I am not in fails: the photo stays free for another post.
    elsewhere = family.outsider.post("/v1/niches", {"name": "Otto's", "kind": "friends"}).json()
    assert family.owner.post(f"/v1/niches/{elsewhere['id']}/posts",
                             {"text": "nope", "media_ids": [mine]}).status_code == 404
    post_with_photos(family, mine)
    assert_error(family.owner.post(f"/v1/niches/{family.niche_id}/posts",
                                   {"text": "twice", "media_ids": [mine]}), 400, "invalid_media")
    eleven = [uploaded(family.owner) for _ in range(11)]
    assert_error(family.owner.post(f"/v1/niches/{family.niche_id}/posts",
                                   {"text": "too many", "media_ids": eleven}), 400,
                 "invalid_media")
    assert_error(family.owner.post(f"/v1/niches/{family.niche_id}/posts",
                                   {"text": "same twice", "media_ids": eleven[:1] * 2}), 400,
                 "invalid_media")
    assert len(post_with_photos(family, *eleven[:10])["media"]) == 10  # none were held


def test_a_deleted_posts_photos_are_served_to_the_uploader_only(
        gateway: Gateway, family: Family) -> None:  # noqa: F811
    media_id = uploaded(family.owner)
    post = post_with_photos(family, media_id)
    assert fetch(family.member, media_id).status_code == 200
    assert family.owner.delete(f"/v1/posts/{post['id']}").status_code == 204
    assert_error(fetch(family.member, media_id), 404)
    assert fetch(family.owner, media_id).status_code == 200

    def recorded() -> list[str]:  # media's own record follows post's PostDeleted
        with psycopg.connect(gateway.settings.database_url("media")) as conn:
            return [t for (t,) in conn.execute(
                "SELECT event_type FROM events WHERE stream_id = %s ORDER BY version",
                (media_id,))]

    assert eventually(recorded, lambda types: len(types) == 3)[-1] == "kith.media.MediaDetached"


def test_comment_and_message_photos_follow_their_carriers(family: Family) -> None:
    post = post_with_photos(family, uploaded(family.owner), text="comment on me")
    on_comment = uploaded(family.member)
    comment = family.member.post(f"/v1/posts/{post['id']}/comments",
                                 {"text": "me too", "media_ids": [on_comment]})
    assert comment.status_code == 201, comment.text
    listed = family.owner.get(f"/v1/posts/{post['id']}/comments").json()["items"]
    assert [m["id"] for m in listed[0]["media"]] == [on_comment]
    assert fetch(family.owner, on_comment).status_code == 200
    assert fetch(family.outsider, on_comment).status_code == 404

    # The owner blocks Blake: Blake's comment (and its photo) is hidden from the owner even
    # on a post both can see, as post hides the comment's text.
    shared = family.member.post(f"/v1/niches/{family.niche_id}/posts", {"text": "open"}).json()
    from_blocked = uploaded(family.blocked)
    assert family.blocked.post(f"/v1/posts/{shared['id']}/comments",
                               {"text": "hello", "media_ids": [from_blocked]}).status_code == 201
    assert fetch(family.member, from_blocked).status_code == 200
    assert all(c["media"] == [] or c["author_id"] != family.blocked.user_id for c in
               family.owner.get(f"/v1/posts/{shared['id']}/comments").json()["items"])
    assert_error(fetch(family.owner, from_blocked), 404)

    conversation = family.owner.post("/v1/conversations",
                                     {"member_ids": [family.member.user_id]}).json()
    in_message = uploaded(family.owner)
    sent = family.owner.post(f"/v1/conversations/{conversation['id']}/messages",
                             {"client_message_id": "p1", "text": "hi", "media_ids": [in_message]})
    assert sent.status_code == 201 and sent.json()["media"][0]["id"] == in_message
    # A retry (the answer was lost) returns the same message with its photo, not 400.
    again = family.owner.post(f"/v1/conversations/{conversation['id']}/messages",
                              {"client_message_id": "p1", "text": "hi", "media_ids": [in_message]})
    assert again.status_code == 201, again.text
    assert (again.json()["id"], [m["id"] for m in again.json()["media"]]) == (
        sent.json()["id"], [in_message])
    # Another message may still not take a photo that is attached already.
    assert_error(family.owner.post(f"/v1/conversations/{conversation['id']}/messages",
                                   {"client_message_id": "p2", "text": "hi",
                                    "media_ids": [in_message]}), 400, "invalid_media")
    messages = family.member.get(f"/v1/conversations/{conversation['id']}/messages").json()
    assert messages["items"][0]["media"][0]["id"] == in_message
    inbox = eventually(lambda: family.member.get("/v1/conversations").json()["items"],
                       lambda items: any(i["id"] == conversation["id"] and i["last_message"]
                                         for i in items))
    last = next(i["last_message"] for i in inbox if i["id"] == conversation["id"])
    assert [m["id"] for m in last["media"]] == [in_message]
    assert fetch(family.member, in_message).status_code == 200
    assert fetch(family.outsider, in_message).status_code == 404
    assert family.member.post(f"/v1/conversations/{conversation['id']}/leave") \
        .status_code == 204
    assert fetch(family.member, in_message).status_code == 404  # a former member


def test_a_message_may_be_photos_alone_but_not_nothing(family: Family) -> None:
    conversation = family.owner.post("/v1/conversations",
                                     {"member_ids": [family.member.user_id]}).json()
    messages = f"/v1/conversations/{conversation['id']}/messages"
    photo = uploaded(family.owner)
    sent = family.owner.post(messages, {"client_message_id": "only-photo", "media_ids": [photo]})
    assert sent.status_code == 201, sent.text
    assert (sent.json()["text"], [m["id"] for m in sent.json()["media"]]) == ("", [photo])
    # The retry of a photo-only message is the same message, as for any other.
    again = family.owner.post(messages, {"client_message_id": "only-photo", "media_ids": [photo]})
    assert again.status_code == 201 and again.json()["id"] == sent.json()["id"]
    seen = family.member.get(messages).json()["items"]
    assert [(m["text"], [p["id"] for p in m["media"]]) for m in seen] == [("", [photo])]
    assert fetch(family.member, photo).status_code == 200

    # Neither text nor photos is nothing to send; whitespace is not text, photos or not.
    assert_error(family.owner.post(messages, {"client_message_id": "empty"}), 400,
                 "invalid_argument")
    assert_error(family.owner.post(messages, {"client_message_id": "blank", "text": "",
                                              "media_ids": []}), 400, "invalid_argument")
    assert_error(family.owner.post(messages, {"client_message_id": "spaces", "text": "  ",
                                              "media_ids": [uploaded(family.owner)]}), 400,
                 "invalid_argument")
    assert len(family.member.get(messages).json()["items"]) == 1


def test_a_deleted_account_leaves_nothing_readable(gateway: Gateway,  # noqa: F811
                                                   family: Family) -> None:
    leaver = gateway.signup("lee")
    join(family.owner, family.niche_id, leaver)
    media_id = uploaded(leaver, jpeg_with_gps(), "image/jpeg")
    resp = leaver.post(f"/v1/niches/{family.niche_id}/posts",
                       {"text": "bye", "media_ids": [media_id]})
    assert resp.status_code == 201
    assert fetch(family.owner, media_id).status_code == 200
    dsn = gateway.settings.database_url("media")
    with psycopg.connect(dsn) as conn:
        sealed = bytes(conn.execute("SELECT sealed FROM media_chunks WHERE media_id = %s"
                                    " AND size = 'original' AND seq = 0",
                                    (media_id,)).fetchone()[0])
    assert leaver.request("DELETE", "/v1/me", {"password": PASSWORD}).status_code == 204

    def key_row() -> object:
        with psycopg.connect(dsn) as conn:
            return conn.execute("SELECT key FROM media_keys WHERE user_id = %s",
                                (leaver.user_id,)).fetchone()

    assert eventually(key_row, lambda row: row is None, timeout=20) is None
    with psycopg.connect(dsn) as conn:
        keys = [storage.MEDIA_KEYS.unwrap(k, u)
                for u, k in conn.execute("SELECT user_id, key FROM media_keys")]
        for key in [None, *keys]:  # no key left anywhere opens what was stored
            with pytest.raises(storage.Unreadable):
                storage.unseal(key, media_id, "original", 0, sealed)
        assert conn.execute("SELECT count(*) FROM media_chunks WHERE media_id = %s",
                            (media_id,)).fetchone()[0] == 0
        assert conn.execute("SELECT state FROM media WHERE id = %s",
                            (media_id,)).fetchone()[0] == "purged"
    assert fetch(family.owner, media_id).status_code == 404
