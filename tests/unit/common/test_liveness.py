"""The fan-out worker's liveness follows progress: stuck with lag pending → 503; idle → alive."""

from __future__ import annotations

import socket

import requests

from kith.common import metrics
from kith.common.liveness import ProgressCheck, group_lag, serve_liveness


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_worker_with_lag_that_applies_nothing_is_declared_dead_after_the_stall_time() -> None:
    clock, applied, lag = Clock(), [0], [500]
    check = ProgressCheck(lambda: applied[0], lambda: lag[0], stall_s=60, clock=clock)
    clock.now += 50
    assert check()[0]
    applied[0] = 10  # progress resets the stall clock
    clock.now += 50
    assert check()[0]
    clock.now += 61
    alive, reason = check()
    assert not alive and "no progress for 61 s with 500 messages of lag" in reason


def test_an_idle_worker_with_no_lag_stays_alive() -> None:
    clock = Clock()
    check = ProgressCheck(lambda: 0, lambda: 0, stall_s=60, clock=clock)
    for _ in range(10):
        clock.now += 59
        assert check()[0]


def test_livez_answers_from_the_check_and_lag_is_read_from_the_sampled_gauge() -> None:
    metrics.CONSUMER_LAG.labels("projection.test.liveness", "t", "0").set(7)
    metrics.CONSUMER_LAG.labels("projection.test.liveness", "t", "1").set(5)
    metrics.CONSUMER_LAG.labels("projection.other", "t", "0").set(100)
    assert group_lag("projection.test.liveness") == 12

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    verdict = [(True, "ok")]
    server = serve_liveness(port, lambda: verdict[0], addr="127.0.0.1")
    assert server is not None
    try:
        url = f"http://127.0.0.1:{port}/livez"
        assert requests.get(url, timeout=5).status_code == 200
        verdict[0] = (False, "stuck")
        dead = requests.get(url, timeout=5)
        assert dead.status_code == 503 and dead.text == "stuck"
    finally:
        server.shutdown()
    assert serve_liveness(0, lambda: (True, "")) is None
