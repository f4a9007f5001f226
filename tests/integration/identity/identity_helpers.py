"""Helpers of the identity integration tests: a client with shortcuts, refused calls, raw reads."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import psycopg

from kith.common.config import Settings
from kith.common.service import RunningService
from kith.identity.tokens import SessionHandles
from kith.protos import identity_pb2, identity_pb2_grpc

# argon2's minimum cost: the tests measure behaviour, not hashing strength.
PASSWORD = "correct horse battery"


@dataclass
class IdentityClient:
    stub: identity_pb2_grpc.IdentityServiceStub
    running: RunningService
    settings: Settings

    def register(self, username: str, display_name: str = "Someone", bio: str = "",
                 password: str = PASSWORD) -> identity_pb2.Profile:
        return self.stub.Register(identity_pb2.RegisterRequest(
            username=username, password=password, display_name=display_name, bio=bio))

    def login(self, username: str, password: str = PASSWORD) -> identity_pb2.TokenPair:
        return self.stub.Authenticate(identity_pb2.AuthenticateRequest(username=username,
                                                                       password=password))

    def refresh(self, refresh_token: str) -> identity_pb2.TokenPair:
        return self.stub.Refresh(identity_pb2.RefreshRequest(refresh_token=refresh_token))

    def verify(self, access_token: str) -> identity_pb2.VerifyTokenResponse:
        return self.stub.VerifyToken(identity_pb2.VerifyTokenRequest(access_token=access_token))

    def stream_of(self, session_id: str) -> str:
        """The internal stream id of a session, from the handle clients see."""
        handles = SessionHandles(self.settings.jwt_secret)
        return str(handles.internal(uuid.UUID(session_id)))

    def db(self) -> psycopg.Connection:
        """A plain connection to identity's own database."""
        return psycopg.connect(self.settings.database_url("identity"), autocommit=True)

    def events(self, stream_id: str | None = None) -> list[tuple[str, str, bytes]]:
        """``(stream_id, event_type, payload)`` of the raw events table, in position order."""
        with self.db() as conn:
            rows = conn.execute(
                "SELECT stream_id::text, event_type, payload FROM events"
                " WHERE %(s)s::uuid IS NULL OR stream_id = %(s)s::uuid ORDER BY position",
                {"s": stream_id}).fetchall()
        return [(r[0], r[1], bytes(r[2])) for r in rows]


def new_id() -> str:
    return str(uuid.uuid4())


