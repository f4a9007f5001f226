"""Account deletions from identity: the user's posts, comments and reactions taken down."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from kith.common.contracts import account_deletions
from kith.common.projection import Event
from kith.post.application import PostApplication


class AccountDeletions:
    """On ``AccountDeleted`` the user's posts are deleted (``PostDeleted`` by them), and
    their comments and reactions on other posts taken down, so all leave every feed.

    Its effects are events in the post streams and the ``deleted_authors``
    mark, applied in the runner's transaction with its offsets; replaying finds
    nothing left to take down, so a rebuild has nothing to reset.
    """

    name = "post.account_deletions"

    def __init__(self, app: PostApplication, identity_topic: str) -> None:
        self.app = app
        self.topics = [identity_topic]

    def apply(self, conn: psycopg.Connection, events: Sequence[Event]) -> None:
        gone = sorted({d.user_id for d in account_deletions(events)})
        if gone:
            self.app.erase_accounts(conn, gone)

    def reset(self, conn: psycopg.Connection) -> None:
        """Nothing to empty: the deletions are events, and a replay repeats none of them."""
