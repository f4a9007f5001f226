"""Turning a registered :class:`~kith.gateway.operations.Operation` into a Flask view.

The view authenticates, parses and validates path, query and body against the
operation's schemas (400 naming fields, 404 for malformed ids), applies the
``Idempotency-Key`` protocol to POSTs, calls the handler and renders its
:class:`Reply` as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
import orjson
from flask import Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from kith.common.logs import current_user
from kith.gateway.auth import Principal
from kith.gateway.errors import from_rpc_error, invalid, not_found, unauthenticated
from kith.gateway.operations import Operation
from kith.gateway.schema import Schema, validate

if TYPE_CHECKING:
    from kith.gateway.app import Gateway

T = TypeVar("T")
# Operations whose responses carry session tokens: never kept for idempotent replay.
CREDENTIAL_RESPONSES = frozenset({"create_session", "refresh_session"})


@dataclass
class Reply:
    """What a handler returns: a status and a JSON body (``None``: no body)."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def to_response(self) -> Response:
        if self.body is None:
            return Response(status=self.status, headers=self.headers or None)
        return Response(orjson.dumps(self.body, option=orjson.OPT_NON_STR_KEYS),
                        status=self.status, headers=self.headers or None,
                        content_type="application/json")


@dataclass
class Call:
    """One authenticated, validated request, as a handler sees it."""

    gw: Gateway
    op: Operation
    principal: Principal | None
    params: dict[str, str]
    query: dict[str, Any]
    body: dict[str, Any]

    @property
    def me(self) -> Principal:
        """The authenticated caller (only operations declared ``auth=True`` have one)."""
        if self.principal is None:
            raise unauthenticated()
        return self.principal

    @property
    def user_id(self) -> str:
        return self.me.user_id

    def rpc(self, method: Callable[[Any], T], message: Any) -> T:
        """Call a service; its failure becomes the public error it maps to."""
        try:
            return method(message)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None


def make_view(op: Operation, gw: Gateway) -> Callable[..., Response]:
    def view(**params: str) -> Response:
        if op.max_body_bytes is not None:
            request.max_content_length = op.max_body_bytes  # over it: 413 from werkzeug
        current_user.set(None)  # nobody is asserted until the token is verified
        principal = gw.verifier.authenticate(request.headers.get("Authorization")) \
            if op.auth else None
        for name, value in params.items():
            if validate(op.path_params[name], value):
                raise not_found()  # a malformed id names nothing
        # Threads serve request after request: always overwrite the caller of the last one.
        current_user.set(principal.user_id if principal else None)
        call = Call(gw, op, principal, params, parse_query(op.query), parse_body(op.body))
        key = request.headers.get("Idempotency-Key")
        if op.method == "POST" and key is not None and not op.stream:
            # Anonymous callers are told apart by address: they never share one key space.
            scope = principal.user_id if principal else f"anonymous:{request.remote_addr}"
            reply: Reply | Response = gw.idempotency.run(scope, key, request.method, request.path,
                                       request_body(),
                                       lambda: op.handler(call),
                                       secret=op.operation_id in CREDENTIAL_RESPONSES)
        else:
            reply = op.handler(call)
        return reply if isinstance(reply, Response) else reply.to_response()

    view.__name__ = view.__qualname__ = op.operation_id
    return view


def parse_query(schemas: dict[str, Schema]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, schema in schemas.items():
        raw = request.args.get(name)
        if raw is None or raw == "":
            if "default" in schema:
                values[name] = schema["default"]
            continue
        value: Any = raw
        if schema["type"] == "integer":
            try:
                value = int(raw)
            except ValueError:
                errors[name] = "must be an integer"
                continue
        problems = validate(schema, value, name)
        if problems:
            errors.update(problems)
        else:
            values[name] = value
    if errors:
        raise invalid(errors, "invalid query parameters")
    return values


def request_body() -> bytes:
    """The request's body; one longer than the route's limit is refused 413.

    werkzeug refuses a declared ``Content-Length`` over the limit, but reads a body sent
    without one (chunked) only up to the limit and returns it cut short: whether more
    follows is asked of the server's stream here."""
    raw = request.get_data(cache=True)
    limit = request.max_content_length
    if (request.content_length is None and limit is not None and len(raw) >= limit
            and request.environ["wsgi.input"].read(1)):
        raise RequestEntityTooLarge()
    return raw


def parse_body(schema: Schema | None) -> dict[str, Any]:
    if schema is None:
        return {}
    raw = request_body()
    if not raw.strip():
        body: Any = {}
    else:
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            raise invalid({"body": "must be a valid JSON document"},
                          "the request body is not valid JSON") from None
    errors = validate(schema, body)
    if errors:
        raise invalid(errors)
    return body

