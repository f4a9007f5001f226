"""The one error of ``kith replay``."""

from __future__ import annotations


class ReplayError(RuntimeError):
    """The replay cannot start or go on (bad arguments, a foreign checkpoint, …)."""
