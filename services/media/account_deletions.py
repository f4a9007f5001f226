"""identity's ``AccountDeleted``: shred the uploader's key, then purge their photos, in the
projection runner's transaction (a redelivered deletion finds nothing left to do)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import psycopg

from kith.common.contracts import account_deletions
from kith.common.projection import Event
from kith.media.application import MediaApplication

log = logging.getLogger(__name__)


class AccountDeletions:
    name = "media.account_deletions"

    def __init__(self, app: MediaApplication, identity_topic: str) -> None:
        self.app = app
        self.topics = (identity_topic,)

    def apply(self, conn: psycopg.Connection, events: Sequence[Event]) -> None:
        for deletion in account_deletions(events):
            purged = self.app.erase_account(conn, deletion.user_id, deletion.deleted_at_ms)
            log.info("account %s deleted: key shredded, %d photos purged",
                     deletion.user_id, purged)

    def reset(self, conn: psycopg.Connection) -> None:
        """Nothing to empty: the effects are media events and shredded keys."""
