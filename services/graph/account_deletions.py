"""Read-side reactions to other services' events.

:class:`AccountDeletions` follows ``identity.events.v1``: when an account is
deleted, the user leaves every niche (ownership passes on, see
:meth:`kith.graph.domain.niche.Niche.remove_deleted_account`) and their block
list is emptied. Those are ordinary graph commands, recorded as graph events
in transactions of their own; they are idempotent, so a redelivered or
replayed deletion (the runner's transaction did not commit, or a rebuild from
offset zero) decides nothing new, and the effect is exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from kith.common.contracts import account_deletions
from kith.common.projection import Event
from kith.graph.application import GraphApplication


class AccountDeletions:
    """Removes deleted accounts from the graph."""

    name = "graph.account_deletions"

    def __init__(self, app: GraphApplication, identity_topic: str) -> None:
        self.app = app
        self.topics = (identity_topic,)

    def apply(self, conn: psycopg.Connection, events: Sequence[Event]) -> None:
        for deletion in account_deletions(events):
            self.app.purge_account(deletion.user_id)

    def reset(self, conn: psycopg.Connection) -> None:
        """Nothing to empty: the effects are graph events, and replaying them is a no-op."""
