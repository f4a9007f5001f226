"""Media's reactions to other services' events, each in the projection runner's transaction
(exactly-once effect; a redelivered event finds nothing left to do).

* identity's ``AccountDeleted``: :mod:`kith.media.account_deletions`.
* post's ``PostDeleted`` / ``CommentDeleted``: the carrier is gone, so its photos
  (and those of a deleted post's comments) are served to their uploaders only.
  A fetch asks the carrier's owner anyway, so this closes no gap in time; it
  keeps media's own state and events true.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import psycopg

from kith.common.contracts import COMMENT_DELETED, POST_DELETED
from kith.common.projection import Event
from kith.media.application import MediaApplication

log = logging.getLogger(__name__)


class CarrierDeletions:
    name = "media.carrier_deletions"

    def __init__(self, app: MediaApplication, post_topic: str) -> None:
        self.app = app
        self.topics = (post_topic,)

    def apply(self, conn: psycopg.Connection, events: Sequence[Event]) -> None:
        posts, comments = [], []
        for event in events:
            try:
                if event.type == POST_DELETED:
                    posts.append(str(event.data["post_id"]))
                elif event.type == COMMENT_DELETED:
                    comments.append(str(event.data["comment_id"]))
            except (KeyError, TypeError):
                log.error("passing over a malformed %s", event.type)
        if posts or comments:
            # A deleted post takes the photos of its comments along (parent_id = post).
            self.app.detach_carriers(conn, posts + comments, posts)

    def reset(self, conn: psycopg.Connection) -> None:
        """Nothing to empty: detaching is recorded as media events."""
