import json

import grpc
import pytest

from kith.gateway.errors import from_rpc_error
from kith.gateway.live import StreamEvent


class FailedCall(grpc.RpcError):
    def __init__(self, status: grpc.StatusCode, message: str = "",
                 code: str | None = None, details: dict | None = None) -> None:
        self._status, self._message = status, message
        self._trailers = ([("kith-error-code", code)] if code else []) + \
            ([("kith-error-details", json.dumps(details))] if details else [])

    def code(self) -> grpc.StatusCode:
        return self._status

    def details(self) -> str:
        return self._message

    def trailing_metadata(self) -> list[tuple[str, str]]:
        return self._trailers


@pytest.mark.parametrize(("status", "code", "http", "public_code"), [
    (grpc.StatusCode.INVALID_ARGUMENT, None, 400, "invalid_argument"),
    (grpc.StatusCode.UNAUTHENTICATED, "invalid_credentials", 401, "invalid_credentials"),
    (grpc.StatusCode.PERMISSION_DENIED, "no_shared_niche", 403, "no_shared_niche"),
    (grpc.StatusCode.NOT_FOUND, None, 404, "not_found"),
    (grpc.StatusCode.ALREADY_EXISTS, "username_taken", 409, "username_taken"),
    (grpc.StatusCode.FAILED_PRECONDITION, "niche_full", 409, "niche_full"),
    (grpc.StatusCode.ABORTED, None, 409, "version_conflict"),
    (grpc.StatusCode.UNAVAILABLE, None, 503, "unavailable"),
    (grpc.StatusCode.DEADLINE_EXCEEDED, None, 503, "unavailable"),
    (grpc.StatusCode.INTERNAL, None, 502, "upstream_error"),
])
def test_grpc_failures_map_to_the_public_error(status: grpc.StatusCode, code: str | None,
                                               http: int, public_code: str) -> None:
    error = from_rpc_error(FailedCall(status, "why", code))
    assert (error.status, error.code) == (http, public_code)
    if http == 503:
        assert error.headers["Retry-After"] == "1"


def test_field_details_travel_and_internal_messages_do_not() -> None:
    error = from_rpc_error(FailedCall(grpc.StatusCode.INVALID_ARGUMENT, "bad", None,
                                      {"text": "must not be blank"}))
    assert error.details == {"text": "must not be blank"}
    body = json.loads(error.response().get_data())
    assert body == {"error": {"code": "invalid_argument", "message": "bad",
                              "details": {"text": "must not be blank"}}}
    leaked = from_rpc_error(FailedCall(grpc.StatusCode.INTERNAL, "psycopg: relation x"))
    assert "psycopg" not in leaked.message


def test_stream_events_are_valid_sse_frames() -> None:
    frame = StreamEvent("message.new", {"text": "two\nlines"}, "3-14").encode().decode()
    assert frame == 'id: 3-14\nevent: message.new\ndata: {"text": "two\\nlines"}\n\n'
