"""argon2id password hashing with parameters from configuration."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from kith.common.config import ConfigError
from kith.common.errors import Unavailable

T = TypeVar("T")


@dataclass(frozen=True)
class Argon2Params:
    """Cost parameters; the defaults are RFC 9106's second recommended option."""

    time_cost: int = 3
    memory_kib: int = 64 * 1024
    parallelism: int = 4
    # At most this many hashes at once (each holds memory_kib): the rest wait up to
    # queue_wait_ms for a slot, then are shed (UNAVAILABLE: 503 + Retry-After).
    max_concurrent: int = 2
    queue_wait_ms: int = 250

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Argon2Params:
        """``KITH_ARGON2_TIME_COST``, ``KITH_ARGON2_MEMORY_KIB``, ``KITH_ARGON2_PARALLELISM``."""
        values = {}
        for name, attr in (("KITH_ARGON2_TIME_COST", "time_cost"),
                           ("KITH_ARGON2_MEMORY_KIB", "memory_kib"),
                           ("KITH_ARGON2_PARALLELISM", "parallelism"),
                           ("KITH_ARGON2_MAX_CONCURRENT", "max_concurrent"),
                           ("KITH_ARGON2_QUEUE_WAIT_MS", "queue_wait_ms")):
            raw = env.get(name)
            if raw:
                try:
                    values[attr] = int(raw)
                except ValueError:
                    raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
        params = cls(**values)
        if params.max_concurrent < 1 or params.queue_wait_ms < 0:
            raise ConfigError("KITH_ARGON2_MAX_CONCURRENT must be >= 1 and "
                              "KITH_ARGON2_QUEUE_WAIT_MS >= 0")
        if params.time_cost < 1 or params.parallelism < 1:
            raise ConfigError("KITH_ARGON2_TIME_COST and KITH_ARGON2_PARALLELISM must be >= 1")
        if params.memory_kib < 8 * params.parallelism:
            raise ConfigError("KITH_ARGON2_MEMORY_KIB must be at least 8 * KITH_ARGON2_PARALLELISM")
        return params


class Passwords:
    """Hashes and verifies passwords (argon2id, PHC strings with salt and parameters).

    Every hash — including the dummy one spent for unknown usernames — takes one
    of ``max_concurrent`` slots, so a sign-in flood cannot exhaust memory or
    starve the worker threads that serve token checks: a call that finds no slot
    within ``queue_wait_ms`` is shed with :class:`Unavailable`.
    """

    def __init__(self, params: Argon2Params) -> None:
        self._hasher = PasswordHasher(time_cost=params.time_cost, memory_cost=params.memory_kib,
                                      parallelism=params.parallelism, hash_len=32, salt_len=16,
                                      type=Type.ID)
        self._slots = threading.BoundedSemaphore(params.max_concurrent)
        self._wait_s = params.queue_wait_ms / 1000

    @contextmanager
    def _slot(self) -> Iterator[None]:
        if not self._slots.acquire(timeout=self._wait_s):
            raise Unavailable("too many sign-ins right now; try again shortly", code="busy")
        try:
            yield
        finally:
            self._slots.release()

    def _bounded(self, work: Callable[[], T]) -> T:
        with self._slot():
            return work()

    def hash(self, password: str) -> str:
        return self._bounded(lambda: self._hasher.hash(password))

    def verify(self, password_hash: str, password: str) -> bool:
        def check() -> bool:
            try:
                return self._hasher.verify(password_hash, password)
            except (VerificationError, InvalidHashError):
                return False
        return self._bounded(check)

    def burn(self, password: str) -> None:
        """Spend a verification's time for an unknown user, so timing does not tell."""
        self.verify(self._dummy_hash, password)

    @cached_property
    def _dummy_hash(self) -> str:
        return self._hasher.hash("kith-no-such-user")  # once, outside the slots
