"""Security stories through the public API: blocks in groups, invites that can be taken back,
re-authentication for account deletion, abuse-resistant edges."""

from __future__ import annotations

import hashlib
import json
import re
import uuid

import psycopg
import pytest
import requests
from flask import Response
from psycopg_pool import ConnectionPool

from kith.gateway.app import Purger, create_app
from kith.gateway.idempotency import IdempotencyStore
from kith.gateway.metrics import KNOWN_METHODS, serve_metrics
from kith.gateway.ratelimit import RateLimits
from kith_dev.infra.processes import free_port
from tests.integration.gateway.harness import (
    Client,
    Gateway,
    assert_error,
    gateway_config,
    serve_app,
)
from tests.support.waiting import eventually


def _niche_of(gateway: Gateway, owner: Client, *people: Client) -> str:
    niche = owner.post("/v1/niches", {"name": "Cousins", "kind": "family"}).json()
    for person in people:
        code = owner.post(f"/v1/niches/{niche['id']}/invites", {}).json()["code"]
        assert person.post(f"/v1/invites/{code}/accept").status_code == 200
    return niche["id"]


def _send(client: Client, conversation_id: str, text: str, cmid: str):
    return client.post(f"/v1/conversations/{conversation_id}/messages",
                       {"client_message_id": cmid, "text": text})


# -- blocks hold in conversations of any size -------------------------------------------------

def test_a_block_holds_in_group_conversations_and_is_never_named(gateway: Gateway) -> None:
    ann, ben, cat = (gateway.signup(n) for n in ("ann", "ben", "cat"))
    _niche_of(gateway, ann, ben, cat)
    group = ann.post("/v1/conversations",
                     {"member_ids": [ben.user_id, cat.user_id], "title": "Picnic"}).json()
    assert _send(ann, group["id"], "Saturday?", "a1").status_code == 201

    assert ben.post("/v1/blocks", {"user_id": ann.user_id}).status_code == 204

    # Neither side of the block can send into the group they share ...
    for sender, cmid in ((ann, "a2"), (ben, "b1")):
        error = assert_error(_send(sender, group["id"], "hello", cmid), 403, "not_allowed")
        assert "block" not in error["message"].lower()
    # ... the third member carries on, and both still read what was said.
    assert _send(cat, group["id"], "I'm in", "c1").status_code == 201
    texts = [m["text"] for m in ben.get(f"/v1/conversations/{group['id']}/messages")
             .json()["items"]]
    assert texts == ["Saturday?", "I'm in"]
    # Nobody can put the pair into a new conversation together, not even a third person.
    for creator, members in ((cat, [ann.user_id, ben.user_id]), (ann, [ben.user_id, cat.user_id])):
        resp = creator.post("/v1/conversations", {"member_ids": members})
        assert resp.status_code in (403, 404), resp.text
        assert resp.json()["error"]["code"] != "blocked"


# -- invites: listed, revoked, and not a way back in ---------------------------------------

def test_owners_list_and_revoke_invites_and_a_revoked_code_stops_working(
        gateway: Gateway) -> None:
    owner, member, guest = (gateway.signup(n) for n in ("olga", "mo", "gus"))
    niche_id = _niche_of(gateway, owner, member)
    created = owner.post(f"/v1/niches/{niche_id}/invites", {"max_uses": 3})
    assert created.status_code == 201
    invite = created.json()

    listed = owner.get(f"/v1/niches/{niche_id}/invites")
    assert listed.status_code == 200
    mine = [i for i in listed.json()["items"] if i["id"] == invite["id"]]
    assert mine == [{"id": invite["id"], "max_uses": 3, "uses": 0,
                     "expires_at": invite["expires_at"], "created_by": owner.user_id}]
    assert all("code" not in i for i in listed.json()["items"])
    assert_error(member.get(f"/v1/niches/{niche_id}/invites"), 403)
    assert_error(guest.get(f"/v1/niches/{niche_id}/invites"), 404)
    assert_error(member.delete(f"/v1/niches/{niche_id}/invites/{invite['id']}"), 403)

    assert owner.delete(f"/v1/niches/{niche_id}/invites/{invite['id']}").status_code == 204
    assert_error(guest.post(f"/v1/invites/{invite['code']}/accept"), 404)
    assert invite["id"] not in [i["id"] for i in
                                owner.get(f"/v1/niches/{niche_id}/invites").json()["items"]]


def test_a_removed_member_cannot_come_back_through_an_older_invite(gateway: Gateway) -> None:
    owner, troll = gateway.signup("oscar"), gateway.signup("troll")
    niche_id = _niche_of(gateway, owner)
    old = owner.post(f"/v1/niches/{niche_id}/invites", {"max_uses": 10}).json()["code"]
    assert troll.post(f"/v1/invites/{old}/accept").status_code == 200
    assert owner.delete(f"/v1/niches/{niche_id}/members/{troll.user_id}").status_code == 204

    assert_error(troll.post(f"/v1/invites/{old}/accept"), 404)
    # The owner may change their mind with a new invite.
    fresh = owner.post(f"/v1/niches/{niche_id}/invites", {}).json()["code"]
    assert troll.post(f"/v1/invites/{fresh}/accept").status_code == 200


@pytest.mark.parametrize("how", ["demoted", "removed"])
def test_invites_of_someone_who_lost_the_right_to_invite_stop_working(
        gateway: Gateway, how: str) -> None:
    owner, admin, guest = (gateway.signup(n) for n in ("ola", "adi", "gwen"))
    niche_id = _niche_of(gateway, owner, admin)
    assert owner.patch(f"/v1/niches/{niche_id}/members/{admin.user_id}",
                       {"role": "admin"}).status_code == 204
    code = admin.post(f"/v1/niches/{niche_id}/invites", {}).json()["code"]
    if how == "demoted":
        assert owner.patch(f"/v1/niches/{niche_id}/members/{admin.user_id}",
                           {"role": "member"}).status_code == 204
    else:
        assert owner.delete(f"/v1/niches/{niche_id}/members/{admin.user_id}").status_code == 204

    assert_error(guest.post(f"/v1/invites/{code}/accept"), 404)
    assert eventually(lambda: owner.get(f"/v1/niches/{niche_id}/invites").json()["items"],
                      lambda items: items == []) == []


# -- account deletion needs the password -------------------------------------------------------

def test_deleting_an_account_asks_for_the_password_again(gateway: Gateway) -> None:
    """A stolen access token alone cannot erase somebody."""
    victim = gateway.signup("val")
    assert_error(victim.delete("/v1/me"), 403, "reauthentication_required")
    assert_error(victim.request("DELETE", "/v1/me", {"password": "not my password"}), 403,
                 "reauthentication_required")
    assert victim.get("/v1/me").status_code == 200
    assert victim.request("DELETE", "/v1/me", {"password": "correct horse battery"}) \
        .status_code == 204
    assert victim.get("/v1/me").status_code == 401


# -- rate limits that cannot be turned against others --------------------------------------

@pytest.fixture(scope="module")
def limited(gateway: Gateway):
    """A second gateway on the same stack with tight, production-shaped limits."""
    limits = RateLimits(per_user="100000/minute", per_ip="100000/minute", sign_in="5/minute",
                        sign_in_per_ip="8/minute", sign_in_per_account="100/hour")
    app = create_app(gateway.settings, gateway_config(
        rate_limits=limits, trusted_proxy_cidrs=("10.99.0.0/16",)))
    server, url = serve_app(app)
    try:
        yield Gateway(url, gateway.settings, gateway.services)
    finally:
        server.shutdown()
        app.extensions["kith"].close()


def test_junk_refreshes_from_one_address_do_not_stop_anyone_elses(limited: Gateway) -> None:
    user = limited.signup("rita")
    session = limited.client().post("/v1/sessions", {"username": user.username,
                                                     "password": "correct horse battery"})
    refresh_token = session.json()["refresh_token"]
    anon = limited.client()
    for i in range(8):  # more than the per-family limit, all from this address
        junk = anon.post("/v1/sessions/refresh", {"refresh_token": f"junk{i:04d}.x{i}"})
        assert_error(junk, 401)
    fresh = anon.post("/v1/sessions/refresh", {"refresh_token": refresh_token})
    assert fresh.status_code == 201, fresh.text
    for header in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"):
        assert fresh.headers[header].isdigit()


def test_rotating_usernames_or_forwarded_for_does_not_escape_the_sign_in_limit(
        limited: Gateway) -> None:
    anon = limited.client()
    statuses = []
    for i in range(10):
        resp = anon.post("/v1/sessions", {"username": f"guess_{i}", "password": "hunter2hunter2"},
                         headers={"X-Forwarded-For": f"203.0.113.{i}"})  # not from a proxy
        statuses.append(resp.status_code)
        if resp.status_code == 429:
            assert int(resp.headers["Retry-After"]) >= 1
            assert resp.headers["RateLimit-Remaining"] == "0"
    # At most 8 attempts a minute from one address (some were spent by the tests above).
    first_refusal = statuses.index(429)
    assert 1 <= first_refusal <= 8
    assert set(statuses[:first_refusal]) == {401} and set(statuses[first_refusal:]) == {429}


# -- idempotency records keep as little as possible -------------------------------------------

def _idempotency_rows(gateway: Gateway, scope: str) -> list[tuple[bytes, bytes | None]]:
    with psycopg.connect(gateway.settings.database_url("gateway"), autocommit=True) as conn:
        return [(bytes(fp), bytes(body) if body else None) for fp, body in conn.execute(
            "SELECT fingerprint, body FROM idempotency_keys WHERE scope = %s", (scope,))]


def test_a_replayed_refresh_never_hands_out_a_working_token_pair(gateway: Gateway) -> None:
    user = gateway.signup("ivy")
    anon = gateway.client()
    pair = anon.post("/v1/sessions", {"username": user.username,
                                      "password": "correct horse battery"}).json()
    request = {"refresh_token": pair["refresh_token"]}
    first = anon.post("/v1/sessions/refresh", request, headers={"Idempotency-Key": "r-1"})
    assert first.status_code == 201

    # Someone who captured the request replays it, key and all.
    replay = anon.post("/v1/sessions/refresh", request, headers={"Idempotency-Key": "r-1"})
    error = assert_error(replay, 409, "idempotency_key_spent")
    assert "access_token" not in replay.text and first.json()["refresh_token"] not in replay.text
    # Nothing secret was kept, and the fingerprint is keyed, not a bare hash of the body.
    rows = _idempotency_rows(gateway, "anonymous:127.0.0.1")  # anonymous: keyed by address
    body = json.dumps(request).encode()
    bare = hashlib.sha256(b"\n".join([b"POST", b"/v1/sessions/refresh", body])).digest()
    assert rows and all(sealed is None for _, sealed in rows) and error
    assert bare not in [fp for fp, _ in rows]


def test_a_deleted_accounts_idempotency_records_go_with_it(gateway: Gateway) -> None:
    user = gateway.signup("del")
    made = user.post("/v1/niches", {"name": "Private", "kind": "friends"},
                     headers={"Idempotency-Key": "n-1"})
    assert made.status_code == 201
    assert len(_idempotency_rows(gateway, user.user_id)) == 1
    assert user.request("DELETE", "/v1/me", {"password": "correct horse battery"}) \
        .status_code == 204
    assert _idempotency_rows(gateway, user.user_id) == []


def test_expired_idempotency_records_are_purged_on_a_schedule(gateway: Gateway) -> None:
    pool = ConnectionPool(gateway.settings.database_url("gateway"), min_size=1, max_size=2,
                          open=True)
    try:
        store = IdempotencyStore(pool, "a test secret that is long enough!!", ttl_s=1)
        scope = str(uuid.uuid4())
        store.run(scope, "k", "POST", "/x", b"{}", lambda: Response("{}", status=201))
        assert len(_idempotency_rows(gateway, scope)) == 1
        purger = Purger(store, interval_s=0.2)
        try:
            assert eventually(lambda: _idempotency_rows(gateway, scope), lambda r: r == []) == []
        finally:
            purger.stop()
    finally:
        pool.close()


# -- metrics: not on the public port, and no client-chosen label values ------------------------

def test_metrics_live_on_the_operations_port_with_a_fixed_label_set(gateway: Gateway) -> None:
    anon = gateway.client()
    assert_error(anon.get("/metrics"), 404)
    for method in ("FOOBAR", "X" + uuid.uuid4().hex[:12].upper()):
        refused = anon.http.request(method, gateway.url + "/v1/niches", timeout=5)
        assert refused.status_code == 405
        assert refused.json()["error"]["code"] == "method_not_allowed"
    port = free_port()
    assert serve_metrics(port, addr="127.0.0.1")
    exposed = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert "kith_gateway_requests_total" in exposed
    methods = set(re.findall(r'kith_gateway_requests_total\{method="([^"]+)"', exposed))
    assert methods <= KNOWN_METHODS | {"other"}


# -- names and titles cannot spoof ------------------------------------------------------------

def test_names_and_titles_refuse_reordering_and_lose_invisible_characters(
        gateway: Gateway) -> None:
    ana, bo = gateway.signup("ana"), gateway.signup("bo")
    _niche_of(gateway, ana, bo)
    spoof = "Mum\u202e"  # a right-to-left override: what follows is shown reversed
    assert_error(ana.patch("/v1/me", {"display_name": spoof}), 400)
    assert_error(ana.post("/v1/niches", {"name": spoof, "kind": "family"}), 400)
    assert_error(ana.post("/v1/niches", {"name": "Fine", "kind": "family",
                                         "description": "a\x00b"}), 400)
    assert_error(ana.post("/v1/conversations", {"member_ids": [bo.user_id],
                                                "title": "Plans\u2066x"}), 400)

    assert ana.patch("/v1/me", {"display_name": "An\u200ba"}).json()["display_name"] == "Ana"
    niche = ana.post("/v1/niches", {"name": "Cafe\u0301 club", "kind": "friends"}).json()
    assert niche["name"] == "Café club"
    convo = ana.post("/v1/conversations", {"member_ids": [bo.user_id],
                                           "title": "\ufeffPicnic"}).json()
    assert convo["title"] == "Picnic"
