"""Accounts, sessions and the caller's profile (identity)."""

from __future__ import annotations

from kith.gateway import render
from kith.gateway.operations import api
from kith.gateway.schema import obj, string
from kith.gateway.views import Call, Reply
from kith.protos import identity_pb2

TAG = "accounts"
USERNAME = string(3, 32, pattern="^[a-z0-9_]+$")
PASSWORD = string(10, 1024)
DISPLAY_NAME = string(1, 64)
BIO = string(0, 500)


@api.operation("POST", "/v1/accounts", summary="Create an account", tag=TAG, auth=False,
               status=201, response=render.ACCOUNT, errors=(409,),
               body=obj({"username": USERNAME, "password": PASSWORD,
                         "display_name": DISPLAY_NAME}, {"bio": BIO}))
def create_account(call: Call) -> Reply:
    b = call.body
    p = call.rpc(call.gw.clients.identity.Register, identity_pb2.RegisterRequest(
        username=b["username"], password=b["password"], display_name=b["display_name"],
        bio=b.get("bio", "")))
    return Reply(201, render.profile(p), {"Location": "/v1/me"})


@api.operation("POST", "/v1/sessions", summary="Sign in: a new session", tag=TAG, auth=False,
               status=201, response=render.TOKENS,
               body=obj({"username": string(1, 64), "password": string(1, 1024)}))
def create_session(call: Call) -> Reply:
    t = call.rpc(call.gw.clients.identity.Authenticate, identity_pb2.AuthenticateRequest(
        username=call.body["username"], password=call.body["password"]))
    return Reply(201, render.tokens(t))


@api.operation("POST", "/v1/sessions/refresh",
               summary="Rotate a refresh token (re-use of a spent one revokes the session)",
               tag=TAG, auth=False, status=201, response=render.TOKENS,
               body=obj({"refresh_token": string(1, 512)}))
def refresh_session(call: Call) -> Reply:
    t = call.rpc(call.gw.clients.identity.Refresh,
                 identity_pb2.RefreshRequest(refresh_token=call.body["refresh_token"]))
    return Reply(201, render.tokens(t))


@api.operation("DELETE", "/v1/sessions/current", summary="Sign out: revoke this session",
               tag=TAG, status=204)
def delete_session(call: Call) -> Reply:
    principal = call.me
    call.rpc(call.gw.clients.identity.Revoke, identity_pb2.RevokeRequest(
        actor_id=principal.user_id, session_id=principal.session_id))
    call.gw.verifier.forget(principal)
    return Reply(204)


@api.operation("GET", "/v1/me", summary="My profile", tag=TAG, response=render.PROFILE)
def get_me(call: Call) -> Reply:
    p = call.rpc(call.gw.clients.identity.GetProfile,
                 identity_pb2.GetProfileRequest(actor_id=call.user_id))
    return Reply(200, render.profile(p))


@api.operation("PATCH", "/v1/me", summary="Change my display name or bio", tag=TAG,
               response=render.PROFILE,
               body=obj(optional={"display_name": DISPLAY_NAME, "bio": BIO}))
def update_me(call: Call) -> Reply:
    request = identity_pb2.UpdateProfileRequest(actor_id=call.user_id)
    if "display_name" in call.body:
        request.display_name = call.body["display_name"]
    if "bio" in call.body:
        request.bio = call.body["bio"]
    p = call.rpc(call.gw.clients.identity.UpdateProfile, request)
    return Reply(200, render.profile(p))


@api.operation("DELETE", "/v1/me",
               summary="Delete my account (password required): personal data shredded, "
                       "posts leave every feed",
               tag=TAG, status=204, errors=(403,),
               body=obj(optional={"password": string(0, 1024)}))
def delete_me(call: Call) -> Reply:
    principal = call.me
    call.rpc(call.gw.clients.identity.DeleteAccount, identity_pb2.DeleteAccountRequest(
        actor_id=principal.user_id, password=call.body.get("password", "")))
    call.gw.verifier.forget(principal)
    call.gw.idempotency.forget(principal.user_id)  # stored responses are personal data too
    return Reply(204)


@api.operation("POST", "/v1/me/password",
               summary="Change my password (every other session is signed out)", tag=TAG,
               status=204, body=obj({"current_password": string(1, 1024),
                                     "new_password": PASSWORD}))
def change_password(call: Call) -> Reply:
    principal = call.me
    call.rpc(call.gw.clients.identity.ChangePassword, identity_pb2.ChangePasswordRequest(
        actor_id=principal.user_id, current_password=call.body["current_password"],
        new_password=call.body["new_password"], session_id=principal.session_id))
    return Reply(204)
