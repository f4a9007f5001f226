"""The :class:`~kith.post.application.Graph` port over graph's gRPC API.

Every question is one round trip: the membership question and the block
question go out together (the block call as a future) and are awaited together.
"""

from __future__ import annotations

from collections.abc import Collection

import grpc

from kith.common.rpc import dependency
from kith.post.application import Audience
from kith.post.domain import Role
from kith.protos import graph_pb2, graph_pb2_grpc

_ROLES = {graph_pb2.OWNER: Role.OWNER, graph_pb2.ADMIN: Role.ADMIN,
          graph_pb2.MEMBER: Role.MEMBER}


class GraphClient:
    def __init__(self, channel: grpc.Channel) -> None:
        self.stub = graph_pb2_grpc.GraphServiceStub(channel)

    def audience(self, user_id: str, niche_ids: Collection[str],
                 other_ids: Collection[str]) -> Audience:
        niches = sorted(set(niche_ids))
        others = sorted(set(other_ids) - {user_id})
        with dependency("graph"):  # no answer: nothing may be shown or done (fail closed)
            blocks = (self.stub.BlockedAmong.future(graph_pb2.BlockedAmongRequest(
                user_id=user_id, other_ids=others)) if others else None)
            audience = self._roles(user_id, niches)
            blocked = frozenset(blocks.result().blocked_ids) if blocks else frozenset()
        return Audience(audience.roles, blocked, audience.kinds, audience.post_types)

    def _roles(self, user_id: str, niches: list[str]) -> Audience:
        """Roles, kinds and the post types each kind unlocks (graph's table of kinds)."""
        if not niches:
            return Audience()
        if len(niches) == 1:  # the cheapest question graph answers
            membership = self.stub.GetMembership(graph_pb2.GetMembershipRequest(
                niche_id=niches[0], user_id=user_id))
            if not membership.is_member:
                return Audience()
            return Audience({niches[0]: _ROLES.get(membership.role, Role.MEMBER)},
                            kinds={niches[0]: membership.kind},
                            post_types={niches[0]: frozenset(membership.post_types)})
        # Several niches (a home-feed page): all of the user's niches in one call.
        wanted = set(niches)
        listed = [n for n in self.stub.ListNiches(
            graph_pb2.ListNichesRequest(actor_id=user_id)).items if n.id in wanted]
        return Audience({n.id: _ROLES.get(n.my_role, Role.MEMBER) for n in listed},
                        kinds={n.id: n.kind for n in listed},
                        post_types={n.id: frozenset(n.post_types) for n in listed})
