"""Messaging's reaction to identity's ``AccountDeleted`` (``identity.events.v1``).

:class:`AccountDeletions` runs :meth:`MessagingApplication.erase_account` in the
projection runner's transaction, together with its offsets: the effect is
exactly once, and a redelivered or replayed deletion finds nothing left to do.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import psycopg

from kith.common.contracts import account_deletions
from kith.common.projection import Event
from kith.messaging.application import MessagingApplication

log = logging.getLogger(__name__)


class AccountDeletions:
    """Takes deleted accounts out of every conversation and shreds the texts they sent."""

    name = "messaging.account_deletions"

    def __init__(self, app: MessagingApplication, identity_topic: str) -> None:
        self.app = app
        self.topics = (identity_topic,)

    def apply(self, conn: psycopg.Connection, events: Sequence[Event]) -> None:
        for deletion in account_deletions(events):
            left = self.app.erase_account(conn, deletion.user_id, deletion.deleted_at_ms)
            log.info("account %s deleted: left %d conversations, texts shredded",
                     deletion.user_id, left)

    def reset(self, conn: psycopg.Connection) -> None:
        """Nothing to empty: the effects are messaging events and shredded keys, and
        replaying a deletion decides nothing new."""
