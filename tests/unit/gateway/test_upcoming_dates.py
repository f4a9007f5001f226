"""When a birthday or a moment comes round again."""

from __future__ import annotations

import datetime

from kith.gateway.routes.niche_views import next_occurrence, upcoming_date

D = datetime.date


def test_the_next_occurrence_is_today_or_later() -> None:
    assert next_occurrence("12-01", D(2026, 12, 1)) == D(2026, 12, 1)
    assert next_occurrence("11-30", D(2026, 12, 1)) == D(2027, 11, 30)
    assert next_occurrence("01-05", D(2026, 12, 30)) == D(2027, 1, 5)


def test_the_29th_of_february_is_the_28th_in_other_years() -> None:
    assert next_occurrence("02-29", D(2026, 1, 1)) == D(2026, 2, 28)
    assert next_occurrence("02-29", D(2027, 3, 1)) == D(2028, 2, 29)


def test_a_moment_still_to_come_counts_on_its_own_date() -> None:
    assert upcoming_date("2027-06-01", D(2026, 12, 1)) == D(2027, 6, 1)
    assert upcoming_date("2016-12-11", D(2026, 12, 1)) == D(2026, 12, 11)
