"""The gRPC face of identity: validates requests, calls the application, maps the results."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import grpc

from kith.common import text
from kith.common.validation import Fields
from kith.identity.application import IdentityApplication, IssuedTokens
from kith.identity.readmodel import Profile
from kith.identity.tokens import SessionHandles
from kith.protos import identity_pb2, identity_pb2_grpc

MAX_SECRET_CHARS = 4096  # passwords are checked more tightly by the domain; tokens are short


def _profile(profile: Profile) -> identity_pb2.Profile:
    return identity_pb2.Profile(id=str(profile.id), username=profile.username,
                                display_name=profile.display_name, bio=profile.bio,
                                created_at_ms=profile.created_at_ms)


def _tokens(tokens: IssuedTokens, handles: SessionHandles) -> identity_pb2.TokenPair:
    return identity_pb2.TokenPair(
        access_token=tokens.access_token, refresh_token=tokens.refresh_token,
        expires_in=tokens.expires_in_s, user_id=str(tokens.user_id),
        session_id=str(handles.public(tokens.session_id)),
        refresh_expires_in=tokens.refresh_expires_in_s)


class IdentityServicer(identity_pb2_grpc.IdentityServiceServicer):
    def __init__(self, app: IdentityApplication) -> None:
        self.app = app
        self._handles = app.access_tokens.handles  # session ids leave only as handles

    def Register(self, request: identity_pb2.RegisterRequest,
                 context: grpc.ServicerContext) -> identity_pb2.Profile:
        # The domain names every field that breaks a rule.
        return _profile(self.app.register(request.username, request.password,
                                          text.clean(request.display_name), request.bio))

    def Authenticate(self, request: identity_pb2.AuthenticateRequest,
                     context: grpc.ServicerContext) -> identity_pb2.TokenPair:
        given = Fields()
        username = given.required("username", request.username, MAX_SECRET_CHARS)
        password = given.required("password", request.password, MAX_SECRET_CHARS)
        given.done()
        return _tokens(self.app.authenticate(username, password), self._handles)

    def Refresh(self, request: identity_pb2.RefreshRequest,
                context: grpc.ServicerContext) -> identity_pb2.TokenPair:
        given = Fields()
        token = given.required("refresh_token", request.refresh_token, MAX_SECRET_CHARS)
        given.done()
        return _tokens(self.app.refresh(token), self._handles)

    def Revoke(self, request: identity_pb2.RevokeRequest,
               context: grpc.ServicerContext) -> identity_pb2.Empty:
        given = Fields()
        if bool(request.session_id) == bool(request.refresh_token):
            given.add("session_id", "give either session_id or refresh_token")
        if request.refresh_token:
            token = given.required("refresh_token", request.refresh_token, MAX_SECRET_CHARS)
            actor_id = given.optional_uuid("actor_id", request.actor_id)
            given.done()
            self.app.revoke_refresh_token(token, UUID(actor_id) if actor_id else None)
        else:
            actor = given.uuid("actor_id", request.actor_id)
            session_id = given.uuid("session_id", request.session_id)
            given.done()
            self.app.logout(UUID(actor), self._handles.internal(UUID(session_id)))
        return identity_pb2.Empty()

    def GetProfile(self, request: identity_pb2.GetProfileRequest,
                   context: grpc.ServicerContext) -> identity_pb2.Profile:
        given = Fields()
        actor_id = given.uuid("actor_id", request.actor_id)
        user_id = given.optional_uuid("user_id", request.user_id)
        given.done()
        return _profile(self.app.profile(UUID(user_id or actor_id)))

    def UpdateProfile(self, request: identity_pb2.UpdateProfileRequest,
                      context: grpc.ServicerContext) -> identity_pb2.Profile:
        given = Fields()
        actor_id = given.uuid("actor_id", request.actor_id)
        given.done()
        display_name = text.clean(request.display_name) \
            if request.HasField("display_name") else None
        bio = request.bio if request.HasField("bio") else None
        return _profile(self.app.update_profile(UUID(actor_id), display_name, bio))

    def ChangePassword(self, request: identity_pb2.ChangePasswordRequest,
                       context: grpc.ServicerContext) -> identity_pb2.Empty:
        given = Fields()
        actor_id = given.uuid("actor_id", request.actor_id)
        current = given.required("current_password", request.current_password, MAX_SECRET_CHARS)
        keep = given.optional_uuid("session_id", request.session_id)
        given.done()
        self.app.change_password(UUID(actor_id), current, request.new_password,
                                 self._handles.internal(UUID(keep)) if keep else None)
        return identity_pb2.Empty()

    def DeleteAccount(self, request: identity_pb2.DeleteAccountRequest,
                      context: grpc.ServicerContext) -> identity_pb2.Empty:
        given = Fields()
        actor_id = given.uuid("actor_id", request.actor_id)
        given.done()
        self.app.delete_account(UUID(actor_id), request.password[:MAX_SECRET_CHARS])
        return identity_pb2.Empty()

    def VerifyToken(self, request: identity_pb2.VerifyTokenRequest,
                    context: grpc.ServicerContext) -> identity_pb2.VerifyTokenResponse:
        given = Fields()
        token = given.required("access_token", request.access_token, MAX_SECRET_CHARS)
        given.done()
        verified = self.app.verify(token)
        return identity_pb2.VerifyTokenResponse(user_id=str(verified.user_id),
                                                session_id=str(self._handles.public(
                                                    verified.session_id)),
                                                expires_at_ms=verified.expires_at_ms)

    def BatchGetProfiles(self, request: identity_pb2.BatchGetProfilesRequest,
                         context: grpc.ServicerContext) -> identity_pb2.BatchGetProfilesResponse:
        given = Fields()
        user_ids = given.uuids("user_ids", request.user_ids)
        given.done()
        return identity_pb2.BatchGetProfilesResponse(
            profiles=[_profile(p) for p in self.app.profiles([UUID(u) for u in user_ids])])


def register(servicer: IdentityServicer) -> Callable[[grpc.Server], None]:
    """What :class:`kith.common.service.ServiceSpec` needs to mount the servicer."""
    return lambda server: identity_pb2_grpc.add_IdentityServiceServicer_to_server(servicer, server)
