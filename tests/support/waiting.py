"""Waiting for eventually consistent state: the one ``eventually()`` of the test suite."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
_UNSEEN = object()


def eventually(probe: Callable[[], T], accept: Callable[[T], object] = bool, *,
               timeout: float = 20.0, interval: float = 0.05, what: str = "") -> T:
    """Call ``probe`` until ``accept(value)`` holds and return that value.

    ``accept`` defaults to "the value is truthy". Wait for exactly what the assertions after
    the call need (e.g. the dead letters themselves, not the good events applied before them).
    A probe that raises ``AssertionError`` has not seen it yet either. On timeout this always
    fails — never returns — with the last value seen (or the last assertion raised).
    """
    deadline = time.monotonic() + timeout
    last: object = _UNSEEN
    failure: AssertionError | None = None
    while True:
        try:
            value = probe()
        except AssertionError as exc:
            failure = exc
        else:
            if accept(value):
                return value
            last, failure = value, None
        if time.monotonic() >= deadline:
            subject = f"{what}: " if what else ""
            if failure is not None:
                raise AssertionError(
                    f"{subject}not reached within {timeout} s; the probe last failed with: "
                    f"{failure}") from failure
            raise AssertionError(
                f"{subject}not reached within {timeout} s; last seen: {last!r}")
        time.sleep(interval)
