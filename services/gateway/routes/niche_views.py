"""Views a niche's kind unlocks, composed here from graph and post: a book club's shelf, and
the birthdays and yearly returns coming up across my family and friends niches."""

from __future__ import annotations

import datetime
from typing import Any

from kith.gateway import render
from kith.gateway.errors import ApiError
from kith.gateway.operations import api
from kith.gateway.pagination import PAGE_QUERY, keyset_page
from kith.gateway.profiles import display_names, personas
from kith.gateway.schema import array, integer, named, nullable, obj, string, uuid_string
from kith.gateway.views import Call, Reply
from kith.protos import graph_pb2, post_pb2

TAG = "niche views"
YEARLY_MOMENTS = ["birthday", "new_baby", "wedding", "anniversary"]
PERSON = named("Person", obj({"id": uuid_string(), "display_name": string()}, closed=False))
SHELF_ITEM = named("ShelfItem", obj(
    {"book": obj({"title": string(), "author": nullable(string()),
                  "isbn": nullable(string())}, closed=False),
     "highlights": integer(), "readers": array(PERSON),
     "last_highlight_at": nullable(render.TIME)}, closed=False))
UPCOMING_ITEM = named("UpcomingItem", obj(
    {"kind": string(enum=YEARLY_MOMENTS), "date": render.DATE, "user": PERSON,
     "niche": render.NICHE_REF}, {"post_id": nullable(uuid_string())}, closed=False))


def not_unlocked(kind: str, view: str) -> ApiError:
    return ApiError(400, "not_allowed_in_niche_kind", f"a {kind} niche has no {view}",
                    {"niche_id": f"a {kind} niche has no {view}"})


def _book_key(title: str, author: str) -> tuple[str, str]:
    return title.strip().casefold(), author.strip().casefold()


@api.operation("GET", "/v1/niches/{niche_id}/shelf",
               summary="A book club's shelf: books highlighted or being read, most recent "
                       "activity first", tag=TAG, query=PAGE_QUERY,
               response=render.list_of(SHELF_ITEM))
def shelf(call: Call) -> Reply:
    niche_id = call.params["niche_id"]
    niche = call.rpc(call.gw.clients.graph.GetNiche, graph_pb2.GetNicheRequest(
        actor_id=call.user_id, niche_id=niche_id))
    if "shelf" not in niche.views:
        raise not_unlocked(niche.kind, "shelf")
    books = call.rpc(call.gw.clients.post.ListShelf, post_pb2.ListShelfRequest(
        viewer_id=call.user_id, niche_id=niche_id)).items
    members = call.rpc(call.gw.clients.graph.ListMemberProfiles,
                       graph_pb2.ListMemberProfilesRequest(actor_id=call.user_id,
                                                           niche_id=niche_id)).items
    readers = [m for m in members if m.HasField("reading")]
    blocked = set(call.rpc(call.gw.clients.graph.BlockedAmong, graph_pb2.BlockedAmongRequest(
        user_id=call.user_id, other_ids=[m.user_id for m in readers])).blocked_ids) \
        if readers else set()
    readers = [m for m in readers if m.user_id not in blocked]
    names = display_names(call, (m.user_id for m in readers if not m.display_name))

    items: dict[tuple[str, str], dict[str, Any]] = {}
    for b in books:
        items[_book_key(b.book.title, b.book.author)] = {
            "book": {"title": b.book.title, "author": b.book.author or None,
                     "isbn": b.book.isbn or None},
            "highlights": b.highlights, "readers": [],
            "last_highlight_at": render.when(b.last_highlight_at_ms),
            "_at": b.last_highlight_at_ms}
    for m in readers:
        item = items.setdefault(_book_key(m.reading.title, m.reading.author), {
            "book": {"title": m.reading.title, "author": m.reading.author or None,
                     "isbn": None},
            "highlights": 0, "readers": [], "last_highlight_at": None, "_at": 0})
        item["readers"].append({"id": m.user_id, "display_name": m.display_name
                                or names.get(m.user_id, render.DELETED_USER)})
    page = keyset_page(list(items.items()), lambda kv: [-kv[1]["_at"], *kv[0]],
                       call.query["limit"], call.query.get("cursor"), call.gw.cursors,
                       f"shelf:{niche_id}")
    return Reply(200, page.json(lambda kv: {k: v for k, v in kv[1].items() if k != "_at"}))


def next_occurrence(month_day: str, today: datetime.date) -> datetime.date:
    """The next day (today or later) that falls on ``MM-DD``; 29 February is the 28th in
    years without one."""
    month, day = int(month_day[:2]), int(month_day[3:5])
    for year in (today.year, today.year + 1):
        try:
            date = datetime.date(year, month, day)
        except ValueError:
            date = datetime.date(year, month, day - 1)
        if date >= today:
            return date
    raise AssertionError("unreachable: a year always holds the day")


def upcoming_date(date: str, today: datetime.date) -> datetime.date:
    """A moment's date if it is still to come, else its next yearly return."""
    when = datetime.date.fromisoformat(date)
    return when if when >= today else next_occurrence(date[5:], today)


@api.operation("GET", "/v1/upcoming",
               summary="Birthdays and yearly returns of moments coming up across my niches "
                       "that unlock them, soonest first", tag=TAG,
               query={"days": {**integer(1, 366, "how far ahead (default 30)"), "default": 30}},
               response=obj({"items": array(UPCOMING_ITEM)}, closed=False))
def upcoming(call: Call) -> Reply:
    today = datetime.datetime.now(datetime.UTC).date()
    horizon = today + datetime.timedelta(days=call.query["days"] - 1)
    niches = {n.id: n.name for n in call.rpc(
        call.gw.clients.graph.ListNiches, graph_pb2.ListNichesRequest(actor_id=call.user_id)
    ).items if "upcoming" in n.views}
    if not niches:
        return Reply(200, {"items": []})
    birthdays = call.rpc(call.gw.clients.graph.ListBirthdays,
                         graph_pb2.ListBirthdaysRequest(actor_id=call.user_id)).items
    moments = call.rpc(call.gw.clients.post.ListMoments, post_pb2.ListMomentsRequest(
        viewer_id=call.user_id, niche_ids=sorted(niches), kinds=YEARLY_MOMENTS)).items
    found = personas(call, ((m.niche_id, m.author_id) for m in moments))
    names = display_names(call, [*(b.user_id for b in birthdays if not b.display_name),
                                 *(m.author_id for m in moments)])

    items: list[tuple[datetime.date, dict[str, Any]]] = []
    for b in birthdays:
        date = next_occurrence(b.birthday, today)
        if date <= horizon:
            items.append((date, {
                "kind": "birthday", "date": date.isoformat(),
                "user": {"id": b.user_id, "display_name": b.display_name
                         or names.get(b.user_id, render.DELETED_USER)},
                "niche": {"id": b.niche_id, "name": b.niche_name}, "post_id": None}))
    for m in moments:
        date = upcoming_date(m.moment.date, today)
        if date <= horizon and m.niche_id in niches:
            name = found.get((m.niche_id, m.author_id)) or names.get(m.author_id,
                                                                      render.DELETED_USER)
            items.append((date, {
                "kind": m.moment.kind, "date": date.isoformat(),
                "user": {"id": m.author_id, "display_name": name},
                "niche": {"id": m.niche_id, "name": niches[m.niche_id]}, "post_id": m.post_id}))
    items.sort(key=lambda it: (it[0], it[1]["kind"], it[1]["user"]["id"], it[1]["niche"]["id"]))
    return Reply(200, {"items": [it[1] for it in items]})
