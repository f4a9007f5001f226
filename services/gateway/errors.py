"""The public error shape and how gRPC failures of the services map onto it.

Every error the gateway sends is ``{"error": {"code", "message", "details"}}``
with the status API.md names; :func:`from_rpc_error` reads the service's
``kith-error-code`` / ``kith-error-details`` trailers.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import grpc
from flask import Response

from kith.common.rpc import error_info

log = logging.getLogger(__name__)

# gRPC status → (HTTP status, default code)
STATUS_MAP: dict[grpc.StatusCode, tuple[int, str]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "invalid_argument"),
    grpc.StatusCode.OUT_OF_RANGE: (400, "invalid_argument"),
    grpc.StatusCode.UNAUTHENTICATED: (401, "unauthenticated"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "forbidden"),
    grpc.StatusCode.NOT_FOUND: (404, "not_found"),
    grpc.StatusCode.ALREADY_EXISTS: (409, "already_exists"),
    grpc.StatusCode.FAILED_PRECONDITION: (409, "conflict"),
    grpc.StatusCode.ABORTED: (409, "version_conflict"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (409, "limit_reached"),
    grpc.StatusCode.UNAVAILABLE: (503, "unavailable"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (503, "unavailable"),
}


class ApiError(Exception):
    """An HTTP error in the public shape; raise it anywhere inside a request."""

    def __init__(self, status: int, code: str, message: str,
                 details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}

    def response(self) -> Response:
        return error_response(self.status, self.code, self.message, self.details, self.headers)


def error_response(status: int, code: str, message: str, details: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    body = json.dumps({"error": {"code": code, "message": message, "details": details or {}}})
    return Response(body, status=status, mimetype="application/json", headers=headers)


def invalid(details: dict[str, str], message: str = "the request is invalid") -> ApiError:
    return ApiError(400, "invalid_argument", message, details)


def not_found(what: str = "resource") -> ApiError:
    return ApiError(404, "not_found", f"no such {what}")


def unauthenticated(message: str = "a valid access token is required") -> ApiError:
    return ApiError(401, "unauthenticated", message, headers={"WWW-Authenticate": "Bearer"})


def from_rpc_error(exc: grpc.RpcError) -> ApiError:
    """The public error for a failed service call."""
    status, message, code, details = error_info(exc)
    mapped = STATUS_MAP.get(status)
    if mapped is None:
        log.error("upstream call failed: %s %s", status, message)
        return ApiError(502, "upstream_error", "a service failed to answer this request")
    http, default_code = mapped
    headers = {"Retry-After": "1"} if http == 503 else {}
    if http == 503:
        message = "a service is temporarily unavailable; retry shortly"
    if http == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return ApiError(http, code or default_code, message or default_code, details, headers)
