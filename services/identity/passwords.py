"""argon2id password hashing with parameters from configuration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from kith.common.config import ConfigError


@dataclass(frozen=True)
class Argon2Params:
    """Cost parameters; the defaults are RFC 9106's second recommended option."""

    time_cost: int = 3
    memory_kib: int = 64 * 1024
    parallelism: int = 4

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Argon2Params:
        """``KITH_ARGON2_TIME_COST``, ``KITH_ARGON2_MEMORY_KIB``, ``KITH_ARGON2_PARALLELISM``."""
        values = {}
        for name, attr in (("KITH_ARGON2_TIME_COST", "time_cost"),
                           ("KITH_ARGON2_MEMORY_KIB", "memory_kib"),
                           ("KITH_ARGON2_PARALLELISM", "parallelism")):
            raw = env.get(name)
            if raw:
                try:
                    values[attr] = int(raw)
                except ValueError:
                    raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
        params = cls(**values)
        if params.time_cost < 1 or params.parallelism < 1:
            raise ConfigError("KITH_ARGON2_TIME_COST and KITH_ARGON2_PARALLELISM must be >= 1")
        if params.memory_kib < 8 * params.parallelism:
            raise ConfigError("KITH_ARGON2_MEMORY_KIB must be at least 8 * KITH_ARGON2_PARALLELISM")
        return params


class Passwords:
    """Hashes and verifies passwords (argon2id, PHC strings with salt and parameters)."""

    def __init__(self, params: Argon2Params) -> None:
        self._hasher = PasswordHasher(time_cost=params.time_cost, memory_cost=params.memory_kib,
                                      parallelism=params.parallelism, hash_len=32, salt_len=16,
                                      type=Type.ID)

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def burn(self, password: str) -> None:
        """Spend a verification's time for an unknown user, so timing does not tell."""
        self.verify(self._dummy_hash, password)

    @cached_property
    def _dummy_hash(self) -> str:
        return self._hasher.hash("kith-no-such-user")
