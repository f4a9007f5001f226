"""Typed posts: what a text, highlight, ask or moment carries, and the rules for each type.

A post's type and its type's fields form its :class:`Body`. Which types a
niche may hold is decided by graph's table of kinds (graph owns niches and
their kinds); post asks graph for the types a niche unlocks and refuses the
others here (:func:`check_type_allowed`).
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Any

from kith.common.errors import InvalidArgument

TEXT, HIGHLIGHT, ASK, MOMENT = "text", "highlight", "ask", "moment"
POST_TYPES = (TEXT, HIGHLIGHT, ASK, MOMENT)
MOMENT_KINDS = ("birthday", "new_baby", "surgery", "recovery", "graduation", "wedding",
                "new_home", "new_job", "anniversary", "loss", "other")
YEARLY_MOMENTS = ("birthday", "new_baby", "wedding", "anniversary")  # they come back each year

POST_MAX_CHARS = 5000
QUOTE_MAX_CHARS = 2000
BOOK_FIELD_MAX = 200
SKILL_MAX_CHARS = 40
PAGE_MAX = 100_000
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Book:
    title: str
    author: str
    isbn: str = ""  # digits (and X) only, check digit verified; "" = none given

    @property
    def key(self) -> str:
        """What makes two highlights the same book on a shelf."""
        return self.isbn or f"{self.title.casefold()}\x1f{self.author.casefold()}"


@dataclass(frozen=True)
class Moment:
    kind: str
    date: str  # YYYY-MM-DD


@dataclass(frozen=True)
class Body:
    """A post's content: its type, its text and the fields of its type."""

    type: str = TEXT
    text: str = ""
    book: Book | None = None
    quote: str = ""
    page: int = 0  # 0 = none given
    skill: str = ""
    moment: Moment | None = None

    def typed_json(self) -> str:
        """The type's own fields as compact JSON ("" for a text post), as events carry them."""
        data: dict[str, Any] = {}
        if self.book is not None:
            data["book"] = {"title": self.book.title, "author": self.book.author,
                            "isbn": self.book.isbn}
        if self.quote:
            data["quote"] = self.quote
        if self.page:
            data["page"] = self.page
        if self.skill:
            data["skill"] = self.skill
        if self.moment is not None:
            data["moment"] = {"kind": self.moment.kind, "date": self.moment.date}
        return json.dumps(data, separators=(",", ":"), sort_keys=True) if data else ""

    @classmethod
    def from_event(cls, type_: str, text: str, typed: str) -> Body:
        """The body an event records; ``typed`` emptied by crypto-shredding reads as none."""
        try:
            data = json.loads(typed) if typed else {}
        except ValueError:
            data = {}
        book, moment = data.get("book"), data.get("moment")
        return cls(type_ or TEXT, text,
                   Book(book["title"], book["author"], book.get("isbn", "")) if book else None,
                   data.get("quote", ""), int(data.get("page", 0)), data.get("skill", ""),
                   Moment(moment["kind"], moment["date"]) if moment else None)


@dataclass
class Draft:
    """Unvalidated body fields as a request carries them (``None`` = not given)."""

    type: str | None = None
    text: str | None = None
    book: dict[str, str] | None = None
    quote: str | None = None
    page: int | None = None
    skill: str | None = None
    moment: dict[str, str] | None = None


# -- value rules ------------------------------------------------------------------------------

def isbn_is_valid(isbn: str) -> bool:
    """An ISBN-10 or ISBN-13 (hyphens and spaces ignored) whose check digit is right."""
    digits = isbn.replace("-", "").replace(" ", "").upper()
    if re.fullmatch(r"\d{9}[\dX]", digits):
        values = [10 if c == "X" else int(c) for c in digits]
        return sum((10 - i) * v for i, v in enumerate(values)) % 11 == 0
    if re.fullmatch(r"97[89]\d{10}", digits):
        return sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(digits)) % 10 == 0
    return False


def normalise_isbn(isbn: str) -> str:
    return isbn.replace("-", "").replace(" ", "").upper()


def normalise_skill(name: str) -> str:
    """Skills are compared trimmed and lower-case (the way graph stores them)."""
    return " ".join(name.split()).lower()


def _valid_date(value: str) -> bool:
    if not _DATE.match(value):
        return False
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def check_type_allowed(post_type: str, unlocked: Collection[str], kind: str) -> None:
    """A type the niche's kind does not unlock is refused (400 not_allowed_in_niche_kind)."""
    if post_type not in unlocked:
        raise InvalidArgument(f"a {kind or 'niche of this kind'} cannot hold {post_type} posts",
                              code="not_allowed_in_niche_kind",
                              details={"type": f"not available in a {kind} niche"})


def check_body(draft: Draft, current: Body | None = None) -> Body:
    """A valid :class:`Body` from ``draft`` (over ``current`` for an edit), or every problem.

    An edit keeps the type and every field it does not give.
    """
    problems: dict[str, str] = {}
    post_type = current.type if current is not None else (draft.type or TEXT)
    if current is not None and draft.type not in (None, current.type):
        problems["type"] = "a post keeps its type"
    if post_type not in POST_TYPES:
        problems["type"] = f"must be one of {', '.join(POST_TYPES)}"
        raise InvalidArgument("invalid post", details=problems)
    base = current or Body(post_type)
    body = base

    if draft.text is not None:
        text = draft.text.strip()
        required = post_type in (TEXT, ASK)
        if not (1 if required else 0) <= len(text) <= POST_MAX_CHARS:
            problems["text"] = f"must be {1 if required else 0} to {POST_MAX_CHARS} characters"
        body = replace(body, text=text)
    elif current is None and post_type in (TEXT, ASK):
        problems["text"] = "is required"

    allowed = {TEXT: set(), HIGHLIGHT: {"book", "quote", "page"}, ASK: {"skill"},
               MOMENT: {"moment"}}[post_type]
    for name in ("book", "quote", "page", "skill", "moment"):
        if getattr(draft, name) is not None and name not in allowed:
            problems[name] = f"not a field of a {post_type} post"

    if post_type == HIGHLIGHT:
        body = _highlight(draft, body, current is None, problems)
    elif post_type == ASK and draft.skill is not None:
        skill = normalise_skill(draft.skill)
        if len(skill) > SKILL_MAX_CHARS:
            problems["skill"] = f"must be at most {SKILL_MAX_CHARS} characters"
        body = replace(body, skill=skill)
    elif post_type == MOMENT:
        if draft.moment is not None:
            kind, date = draft.moment.get("kind", ""), draft.moment.get("date", "")
            if kind not in MOMENT_KINDS:
                problems["moment.kind"] = f"must be one of {', '.join(MOMENT_KINDS)}"
            if not _valid_date(date):
                problems["moment.date"] = "must be a date YYYY-MM-DD"
            body = replace(body, moment=Moment(kind, date))
        elif current is None:
            problems["moment"] = "is required"
    if problems:
        isbn_only = set(problems) == {"book.isbn"}
        raise InvalidArgument("invalid ISBN" if isbn_only else "invalid post",
                              code="invalid_isbn" if isbn_only else None, details=problems)
    return body


def _highlight(draft: Draft, body: Body, new: bool, problems: dict[str, str]) -> Body:
    if draft.book is not None:
        title = str(draft.book.get("title", "")).strip()
        author = str(draft.book.get("author", "")).strip()
        isbn = str(draft.book.get("isbn") or "")
        for name, value in (("title", title), ("author", author)):
            if not 1 <= len(value) <= BOOK_FIELD_MAX:
                problems[f"book.{name}"] = f"must be 1 to {BOOK_FIELD_MAX} characters"
        if isbn and not isbn_is_valid(isbn):
            problems["book.isbn"] = "must be an ISBN-10 or ISBN-13 with a valid check digit"
        body = replace(body, book=Book(title, author, normalise_isbn(isbn) if isbn else ""))
    elif new:
        problems["book"] = "is required"
    if draft.quote is not None:
        quote = draft.quote.strip()
        if not 1 <= len(quote) <= QUOTE_MAX_CHARS:
            problems["quote"] = f"must be 1 to {QUOTE_MAX_CHARS} characters"
        body = replace(body, quote=quote)
    elif new:
        problems["quote"] = "is required"
    if draft.page is not None:
        if not 0 <= draft.page <= PAGE_MAX:
            problems["page"] = f"must be 1 to {PAGE_MAX}"
        body = replace(body, page=draft.page)
    return body
