"""A niche command reads its niche in one statement: the events and the niche's key together.

Every niche command replays the niche's log, whose creation carries the name sealed under
the niche's own key (niche_keys). Reading that key apart from the events cost a second
round trip on every join, role change or invite — most of the skill directory's slower
seeding after the refactor (issue 10). The key now rides along with the stream's first
event, in the same snapshot; nothing is cached, so a destroyed key still leaves the name
unreadable at the very next command.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from kith.common.eventstore import EventStore
from kith.graph.application import GraphApplication
from kith.graph.niche_keys import NICHE_KEYS
from kith.protos import graph_pb2 as pb
from tests.integration.graph.graph_helpers import Graph, new_user

NAME = "The Okafor family"


class RecordingCursor(psycopg.Cursor[Any]):
    """A cursor that notes every statement it sends (the server still runs them all)."""

    sent: list[str] = []

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> RecordingCursor:
        RecordingCursor.sent.append(str(query))
        super().execute(query, params, **kwargs)
        return self


@contextmanager
def recording_application(graph: Graph) -> Iterator[GraphApplication]:
    """The graph's use cases on the graph's own database, through recording cursors."""
    ctx = graph.running.context
    with ConnectionPool(ctx.settings.database_url("graph"), min_size=1, max_size=2,
                        kwargs={"autocommit": False, "cursor_factory": RecordingCursor},
                        open=True) as pool:
        yield GraphApplication(EventStore(pool, ctx.store.codec), ctx.settings.niche_max_cap)


def niche_reads(sent: list[str]) -> list[str]:
    """The statements that read the niche's log or its key."""
    return [q for q in sent if q.lstrip().upper().startswith("SELECT")
            and ("FROM events" in q or "niche_keys" in q)]


def family(graph: Graph) -> tuple[str, str, str]:
    owner = new_user()
    niche = graph.stub.CreateNiche(pb.CreateNicheRequest(actor_id=owner, name=NAME,
                                                         kind="family"))
    code = graph.stub.CreateInvite(pb.CreateInviteRequest(actor_id=owner, niche_id=niche.id,
                                                          max_uses=10)).code
    return owner, niche.id, code


def test_joining_a_niche_reads_its_events_and_key_in_one_statement(graph: Graph) -> None:
    _, _, code = family(graph)
    with recording_application(graph) as app:
        RecordingCursor.sent.clear()
        joined = app.accept_invite(new_user(), code)
    assert joined.name == NAME  # the sealed creation was opened with the niche's key
    assert len(niche_reads(RecordingCursor.sent)) == 1, RecordingCursor.sent


def test_a_destroyed_niche_key_leaves_the_name_unreadable_at_the_next_command(
        graph: Graph) -> None:
    _, niche_id, code = family(graph)
    with recording_application(graph) as app:
        assert app.accept_invite(new_user(), code).name == NAME
        with graph.running.context.store.transaction() as conn:
            NICHE_KEYS.destroy(conn, niche_id)  # crypto-shredding, as an archival does it
        assert app.accept_invite(new_user(), code).name == ""  # no key kept anywhere
