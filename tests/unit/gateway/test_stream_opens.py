"""The stream server's per-user budget of stream opens: a token bucket refilled evenly."""

from __future__ import annotations

import pytest

from kith.gateway.stream_server import OpenBudget


def test_a_user_may_open_a_burst_then_one_stream_per_refill() -> None:
    opens = OpenBudget(per_minute=3)
    assert [opens.take("ann", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert opens.take("ann", now=0.0) == pytest.approx(20.0)  # one open per 20 s
    assert opens.take("ann", now=15.0) == pytest.approx(5.0)  # refused opens cost nothing
    assert opens.take("ann", now=20.0) == 0.0
    assert opens.take("ben", now=20.0) == 0.0  # every user has their own bucket


def test_the_budget_never_grows_beyond_its_depth_and_forgets_the_least_recent_user() -> None:
    opens = OpenBudget(per_minute=2, users=2)
    opens.take("ann", now=0.0)
    opens.take("ann", now=0.0)
    assert opens.take("ann", now=600.0) == 0.0
    assert opens.take("ann", now=600.0) == 0.0
    assert opens.take("ann", now=600.0) > 0  # ten idle minutes refill two opens, not twenty
    opens.take("ben", now=600.0)
    opens.take("cat", now=600.0)  # ann, the least recently seen, is forgotten
    assert len(opens._buckets) == 2 and "ann" not in opens._buckets
