"""Adapters onto other services: :class:`GraphClient` is the
:class:`~kith.messaging.application.Graph` port over graph's gRPC API."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import grpc

from kith.common.rpc import dependency
from kith.protos import graph_pb2, graph_pb2_grpc

Request = TypeVar("Request")
Reply = TypeVar("Reply")


class GraphClient:
    """:class:`~kith.messaging.application.Graph` over the graph service's internal queries."""

    def __init__(self, channel: grpc.Channel) -> None:
        self._stub = graph_pb2_grpc.GraphServiceStub(channel)

    def sharing_a_niche(self, user_id: str, others: Sequence[str]) -> set[str]:
        reply = self._ask(self._stub.SharesNiche,
                          graph_pb2.SharesNicheRequest(user_id=user_id, user_ids=list(others)))
        return set(reply.user_ids)

    def blocked_among(self, user_id: str, others: Sequence[str]) -> set[str]:
        reply = self._ask(self._stub.BlockedAmong,
                          graph_pb2.BlockedAmongRequest(user_id=user_id, other_ids=list(others)))
        return set(reply.blocked_ids)

    @staticmethod
    def _ask(method: Callable[[Request], Reply], request: Request) -> Reply:
        with dependency("graph"):  # no answer: the command cannot be decided now
            return method(request)
