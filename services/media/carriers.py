"""Asking a carrier's owner whether a user can see it: post for posts and comments,
messaging for messages. One rule for a photo and the text it travels with.

A comment is shown to whoever sees its post, except across a block with the
comment's author (post leaves such comments out of listings); only its author
can attach photos to a comment, so that author is the photo's uploader, and
graph's ``BlockedAmong`` answers the second half."""

from __future__ import annotations

from typing import Protocol

KINDS = ("post", "comment", "message")


class Carriers(Protocol):
    def can_see(self, viewer_id: str, kind: str, carrier_id: str, parent_id: str,
                author_id: str) -> bool:
        """Whether ``viewer_id`` can see the carrier of ``author_id`` right now (its owner
        decides)."""
