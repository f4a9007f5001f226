"""Events one service publishes and others act on: the names and fields they rely on.

Services never import each other, so what a consumer needs of another service's
events lives here, once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from kith.common.projection import Event

log = logging.getLogger(__name__)

ACCOUNT_DELETED = "kith.identity.AccountDeleted"
IDENTITY_TOPIC = "identity.events.v1"  # after the optional topic prefix


@dataclass(frozen=True)
class AccountDeletion:
    """identity deleted an account: every service erases what it holds of the user."""

    user_id: str
    deleted_at_ms: int


def account_deletions(events: Iterable[Event]) -> list[AccountDeletion]:
    """The well-formed ``AccountDeleted`` among ``events``; malformed ones are logged.

    Erasure is irreversible, so it is acted on only when read from identity's own
    topic (which only identity may write): one found on any other topic is a
    forgery and is passed over.
    """
    found = []
    for event in events:
        if event.type != ACCOUNT_DELETED:
            continue
        if not event.envelope.topic.endswith(IDENTITY_TOPIC):
            log.error("ignoring AccountDeleted %s read from %s, not identity's topic",
                      event.envelope.event_id, event.envelope.topic)
            continue
        try:
            found.append(AccountDeletion(str(uuid.UUID(event.data["user_id"])),
                                         int(event.data["deleted_at_ms"])))
        except (KeyError, TypeError, ValueError):
            log.error("passing over AccountDeleted %s without a valid user_id",
                      event.envelope.event_id)
    return found
