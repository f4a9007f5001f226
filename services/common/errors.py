"""Domain errors shared by every service, and how each crosses gRPC.

A service raises these from its domain and application layers; the gRPC
plumbing turns them into a status code plus two trailing metadata entries
(``kith-error-code``, a snake_case code such as ``niche_full``, and
``kith-error-details``, JSON) that the gateway maps to the HTTP error shape.
"""

from __future__ import annotations

from typing import Any, TypeVar

import grpc


class DomainError(Exception):
    """A command or query was refused; ``code`` is the stable snake_case reason."""

    status: grpc.StatusCode = grpc.StatusCode.FAILED_PRECONDITION
    default_code = "failed_precondition"

    def __init__(self, message: str, code: str | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details or {}


class InvalidArgument(DomainError):
    """Input is malformed; ``details`` name the fields (``{"field": "reason"}``)."""

    status = grpc.StatusCode.INVALID_ARGUMENT
    default_code = "invalid_argument"


class NotFound(DomainError):
    """Absent, or not visible to the caller (the two are never told apart)."""

    status = grpc.StatusCode.NOT_FOUND
    default_code = "not_found"


class AlreadyExists(DomainError):
    status = grpc.StatusCode.ALREADY_EXISTS
    default_code = "already_exists"


class PermissionDenied(DomainError):
    status = grpc.StatusCode.PERMISSION_DENIED
    default_code = "forbidden"


class Unauthenticated(DomainError):
    status = grpc.StatusCode.UNAUTHENTICATED
    default_code = "unauthenticated"


class FailedPrecondition(DomainError):
    """The state forbids it (e.g. ``niche_full``): a conflict at the HTTP edge."""

    status = grpc.StatusCode.FAILED_PRECONDITION
    default_code = "conflict"


class Unavailable(DomainError):
    """Shed load: try again shortly (503 with ``Retry-After`` at the HTTP edge)."""

    status = grpc.StatusCode.UNAVAILABLE
    default_code = "unavailable"


class DependencyUnavailable(Unavailable):
    """Another service this one needs did not answer: nothing is decided or shown (fail
    closed). One code everywhere, ``unavailable`` (503 at the HTTP edge, as API.md says)."""


class Conflict(DomainError):
    """Concurrent modification that survived retries (``version_conflict``)."""

    status = grpc.StatusCode.ABORTED
    default_code = "version_conflict"


T = TypeVar("T")


def check(condition: bool, error: DomainError) -> None:
    """Raise ``error`` unless ``condition`` holds: the shape of every ``check_*`` invariant."""
    if not condition:
        raise error


def require(value: T | None, error: DomainError) -> T:
    """``value``, which must be there (else raise ``error``); typed as present from here on."""
    if value is None:
        raise error
    return value
