"""gRPC stubs of the services the gateway fronts: one channel per service and process, reused.

Channels are created lazily, i.e. inside each server worker after the fork
(gRPC channels must not cross a fork); every call carries a deadline
(``kith.common.rpc.channel``).
"""

from __future__ import annotations

import threading
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kith.common.assertion import ActorSigner
from kith.common.config import Settings
from kith.common.rpc import channel
from kith.protos import (
    feed_pb2_grpc,
    graph_pb2_grpc,
    identity_pb2_grpc,
    media_pb2_grpc,
    messaging_pb2_grpc,
    post_pb2_grpc,
)

DEPENDENCIES = ("identity", "graph", "post", "messaging", "feed", "media")
_STUBS = {
    "identity": identity_pb2_grpc.IdentityServiceStub,
    "graph": graph_pb2_grpc.GraphServiceStub,
    "post": post_pb2_grpc.PostServiceStub,
    "messaging": messaging_pb2_grpc.MessagingServiceStub,
    "feed": feed_pb2_grpc.FeedServiceStub,
    "media": media_pb2_grpc.MediaServiceStub,
}


class Clients:
    """Lazily created, process-wide stubs: ``clients.graph.GetNiche(...)``."""

    def __init__(self, settings: Settings, deadline_s: float = 5.0) -> None:
        self._settings = settings
        self._deadline_s = deadline_s
        self._channels: dict[str, grpc.Channel] = {}
        self._stubs: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._signer = ActorSigner(settings.signing_key())

    def _stub(self, service: str) -> Any:
        stub = self._stubs.get(service)
        if stub is None:
            with self._lock:
                stub = self._stubs.get(service)
                if stub is None:
                    ch = channel(self._settings.grpc_addr(service), self._deadline_s,
                                 signer=self._signer, direct_unary=True)
                    self._channels[service] = ch
                    stub = self._stubs[service] = _STUBS[service](ch)
        return stub

    @property
    def identity(self) -> identity_pb2_grpc.IdentityServiceStub:
        return self._stub("identity")

    @property
    def graph(self) -> graph_pb2_grpc.GraphServiceStub:
        return self._stub("graph")

    @property
    def post(self) -> post_pb2_grpc.PostServiceStub:
        return self._stub("post")

    @property
    def messaging(self) -> messaging_pb2_grpc.MessagingServiceStub:
        return self._stub("messaging")

    @property
    def feed(self) -> feed_pb2_grpc.FeedServiceStub:
        return self._stub("feed")

    @property
    def media(self) -> media_pb2_grpc.MediaServiceStub:
        return self._stub("media")

    def healthy(self, service: str, timeout_s: float = 1.0) -> bool:
        """Whether ``service`` answers its gRPC health check with SERVING."""
        self._stub(service)
        try:
            reply = health_pb2_grpc.HealthStub(self._channels[service]).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout_s)
        except grpc.RpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    def close(self) -> None:
        with self._lock:
            for ch in self._channels.values():
                ch.close()
            self._channels.clear()
            self._stubs.clear()
