"""A user's block list, rebuilt from the stream of the blocker (stream id = the user's id).

Blocking and unblocking are idempotent: asking for the state that already
holds decides no event.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from kith.common.errors import InvalidArgument, check
from kith.graph.events import BlockEvent, UserBlocked, UserUnblocked


def check_not_self(user_id: str, other_id: str) -> None:
    check(user_id != other_id,
          InvalidArgument("you cannot block yourself", details={"user_id": "is yourself"}))


@dataclass
class BlockList:
    user_id: str
    version: int = 0
    blocked: dict[str, int] = field(default_factory=dict)  # blocked user → since (ms)

    @classmethod
    def replay(cls, user_id: str, events: Iterable[BlockEvent]) -> BlockList:
        blocks = cls(user_id)
        for event in events:
            blocks.apply(event)
        return blocks

    def apply(self, event: BlockEvent) -> None:
        self.version += 1
        match event:
            case UserBlocked():
                self.blocked[event.blocked_id] = event.at_ms
            case UserUnblocked():
                self.blocked.pop(event.blocked_id, None)

    def apply_all(self, events: Iterable[BlockEvent]) -> BlockList:
        for event in events:
            self.apply(event)
        return self

    def block(self, other_id: str, now_ms: int) -> list[BlockEvent]:
        check_not_self(self.user_id, other_id)
        if other_id in self.blocked:
            return []
        return [UserBlocked(self.user_id, other_id, now_ms)]

    def unblock(self, other_id: str, now_ms: int) -> list[BlockEvent]:
        check_not_self(self.user_id, other_id)
        if other_id not in self.blocked:
            return []
        return [UserUnblocked(self.user_id, other_id, now_ms)]

    def unblock_all(self, now_ms: int) -> list[BlockEvent]:
        """Lift every block (the user's account was deleted)."""
        return [UserUnblocked(self.user_id, other, now_ms) for other in self.blocked]
