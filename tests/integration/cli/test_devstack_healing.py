"""`make run` heals and stops cleanly: it brings its own PostgreSQL and Kafka back after a
hard kill, its services work again on their own, a burst of signals stops everything, and
nothing outlives a supervisor that was killed outright."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import psycopg
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from tests.integration.cli.test_devstack import DevStackProcess, dev_env  # noqa: F401
from tests.support.waiting import eventually


def _children(pid: int) -> dict[int, str]:
    """Live (non-zombie) processes whose parent is ``pid``: pid → command line."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[1]) == pid:
            found[int(entry.name)] = cmdline
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def _one(children: dict[int, str], marker: str) -> int:
    (pid,) = [p for p, cmd in children.items() if marker in cmd]
    return pid


def _wait(predicate, timeout: float, what: str) -> float:
    """Wait for ``predicate``; return how long it took (the healing times are reported)."""
    started = time.monotonic()
    eventually(predicate, timeout=timeout, interval=0.2, what=what)
    return time.monotonic() - started


def _kafka_answers(bootstrap: str) -> bool:
    try:
        AdminClient({"bootstrap.servers": bootstrap, "log_level": 0}).list_topics(timeout=1)
        return True
    except KafkaException:
        return False


def _postgres_answers(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=1):
            return True
    except psycopg.OperationalError:
        return False


def _signs_up(gateway: str) -> bool:
    body = json.dumps({"username": f"u{uuid.uuid4().hex[:12]}", "password": "correct horse 1",
                       "display_name": "Heal"}).encode()
    request = urllib.request.Request(f"{gateway}/v1/accounts", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            return response.status == 201
    except (urllib.error.URLError, OSError):
        return False


def test_the_stack_restarts_its_own_database_and_broker_then_stops_on_a_burst_of_signals(
        dev_env: dict[str, str]) -> None:  # noqa: F811
    stack = DevStackProcess(dev_env)
    try:
        addresses = stack.wait_ready()
        gateway, bootstrap = addresses["gateway"], addresses["kafka"]
        admin_dsn = addresses["postgres"].replace("kith_*", "postgres")
        assert _signs_up(gateway)

        # PostgreSQL stopped the hard way (SIGQUIT = `pg_ctl stop -m immediate`).
        postmaster = _one(_children(stack.proc.pid), "postgres -D")
        os.kill(postmaster, signal.SIGQUIT)
        back = _wait(lambda: _postgres_answers(admin_dsn), 60, "PostgreSQL restarted")
        working = _wait(lambda: _signs_up(gateway), 30, "sign-up after the database returned")
        print(f"postgres back after {back:.1f} s; sign-ups work {working:.1f} s later")

        # The broker SIGKILLed.
        broker = _one(_children(stack.proc.pid), "kafka.Kafka")
        os.kill(broker, signal.SIGKILL)
        _wait(lambda: broker not in _alive({broker}), 10, "broker gone")
        back = _wait(lambda: _kafka_answers(bootstrap), 120, "Kafka restarted")
        print(f"kafka back after {back:.1f} s")
        assert _one(_children(stack.proc.pid), "kafka.Kafka") != broker

        # Three quick signals: one clean stop, nothing left behind.
        children = set(_children(stack.proc.pid))
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGTERM):
            stack.proc.send_signal(sig)
        assert stack.proc.wait(timeout=120) == 0, "".join(stack.output[-40:])
        assert any("kith: stopped" in line for line in stack.output)
        assert not _alive(children)
    finally:
        if stack.proc.poll() is None:
            stack.proc.kill()


def test_nothing_outlives_a_supervisor_killed_outright(
        dev_env: dict[str, str]) -> None:  # noqa: F811
    stack = DevStackProcess(dev_env)
    children: set[int] = set()
    try:
        stack.wait_ready()
        children = set(_children(stack.proc.pid))
        assert len(children) >= 8, children  # postgres, kafka and every service
        stack.proc.kill()
        stack.proc.wait(10)
        gone = _wait(lambda: not _alive(children), 60, "every child gone")
        print(f"children gone {gone:.1f} s after the supervisor was killed")
    finally:
        for pid in _alive(children):
            os.kill(pid, signal.SIGKILL)
