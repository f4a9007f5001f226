"""Small helpers for supervising infrastructure child processes."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from kith.common.infra import InfraError

__all__ = ["InfraError", "die_with_parent", "free_port", "log_tail", "pid_alive",
           "port_is_free", "require_free_port", "stop_process", "wait_until"]

PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if os.name == "posix" else None


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn`` that makes the child receive ``sig`` when its parent dies (Linux).

    A supervisor's children sit in their own sessions (so a terminal's Ctrl-C reaches only
    the supervisor, which stops them in order); this makes sure that a supervisor killed
    outright (SIGKILL, OOM) does not leave them running. The signal fires when the
    *thread* that started the child exits: start children from a long-lived thread.
    """
    libc = _LIBC

    def preexec() -> None:
        if libc is not None and hasattr(libc, "prctl"):
            libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)

    return preexec


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def require_free_port(port: int, what: str, env_var: str) -> None:
    if not port_is_free(port):
        raise InfraError(
            f"port {port} for {what} is already taken on 127.0.0.1: stop whatever holds it "
            f"(e.g. `ss -ltnp 'sport = :{port}'`) or choose another port with {env_var}"
        )


def free_port() -> int:
    """An ephemeral loopback port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM,
                 timeout: float = 30.0) -> None:
    """Ask a child to stop with ``sig``; kill it if it has not exited after ``timeout``."""
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(sig)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
    except ProcessLookupError:
        pass


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.2,
               alive: subprocess.Popen[bytes] | None = None) -> bool:
    """Poll ``predicate`` until true or ``timeout``; stop early if ``alive`` has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if alive is not None and alive.poll() is not None:
            return False
        time.sleep(interval)
    return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
