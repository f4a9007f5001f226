"""The route registry: each endpoint declares its contract next to its handler.

``@api.operation(...)`` records method, path, input schemas and responses; the
same record drives request parsing and validation (:mod:`kith.gateway.views`)
and the OpenAPI document (:mod:`kith.gateway.openapi`), so the two never drift.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kith.gateway.schema import Schema, string, uuid_string

if TYPE_CHECKING:
    from flask import Response

    from kith.gateway.views import Call, Reply

Handler = Callable[["Call"], "Reply | Response"]
PARAM = re.compile(r"{(\w+)}")
INVITE_CODE = string(1, 64, pattern="^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class Operation:
    """One endpoint: ``method path`` plus everything needed to check and document it."""

    method: str
    path: str  # OpenAPI style: /v1/niches/{niche_id}
    handler: Handler
    summary: str
    tag: str
    status: int = 200
    response: Schema | None = None
    body: Schema | None = None
    query: dict[str, Schema] = field(default_factory=dict)
    path_params: dict[str, Schema] = field(default_factory=dict)
    auth: bool = True
    errors: tuple[int, ...] = ()
    stream: bool = False
    raw_body: str | None = None  # a non-JSON body of this media type (read by the handler)
    max_body_bytes: int | None = None  # this route's own body limit (else the app's)
    server: str = "gateway"  # the process that serves it: "gateway" (Flask) or "stream"

    @property
    def operation_id(self) -> str:
        return self.handler.__name__

    @property
    def flask_rule(self) -> str:
        return PARAM.sub(r"<\1>", self.path)

    @property
    def idempotent_post(self) -> bool:
        return self.method == "POST"


class Api:
    """A registry of operations, filled by the route modules at import time."""

    def __init__(self) -> None:
        self.operations: list[Operation] = []

    def operation(self, method: str, path: str, *, summary: str, tag: str, status: int = 200,
                  response: Schema | None = None, body: Schema | None = None,
                  query: dict[str, Schema] | None = None,
                  path_params: dict[str, Schema] | None = None, auth: bool = True,
                  errors: tuple[int, ...] = (), stream: bool = False,
                  raw_body: str | None = None, max_body_bytes: int | None = None,
                  server: str = "gateway") -> Callable[[Handler], Handler]:
        params = {name: uuid_string() for name in PARAM.findall(path)}
        params.update(path_params or {})

        def register(handler: Handler) -> Handler:
            self.operations.append(Operation(
                method=method, path=path, handler=handler, summary=summary, tag=tag,
                status=status, response=response, body=body, query=dict(query or {}),
                path_params=params, auth=auth, errors=errors, stream=stream,
                raw_body=raw_body, max_body_bytes=max_body_bytes, server=server))
            return handler

        return register

    def describe(self) -> list[dict[str, Any]]:
        """``[{method, path}]`` of every operation (for listings and tests)."""
        return [{"method": op.method, "path": op.path} for op in self.operations]


api = Api()
