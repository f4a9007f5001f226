"""gRPC plumbing: servers with health, reflection and interceptors; clients with deadlines.

The gateway authenticates callers and passes the user id in the
``x-kith-user-id`` metadata entry; on the server side it is available as
:data:`kith.common.logs.current_user` for the duration of the call.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from kith.common import metrics, tracing
from kith.common.errors import DomainError
from kith.common.logs import current_user, request_id

log = logging.getLogger(__name__)
USER_KEY = "x-kith-user-id"
REQUEST_KEY = "x-request-id"
ERROR_CODE_KEY = "kith-error-code"
ERROR_DETAILS_KEY = "kith-error-details"
DEFAULT_DEADLINE_S = 5.0


class ServerInterceptor(grpc.ServerInterceptor):
    """Binds caller and request id, logs each call, and maps domain errors to statuses."""

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method
        inner = handler.unary_unary

        def wrapper(request: Any, context: grpc.ServicerContext) -> Any:
            metadata = dict(context.invocation_metadata())
            user_token = current_user.set(metadata.get(USER_KEY) or None)
            rid_token = request_id.set(metadata.get(REQUEST_KEY) or uuid.uuid4().hex[:16])
            start = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                with tracing.server_span(method, context.invocation_metadata()):
                    return inner(request, context)
            except DomainError as exc:
                code = exc.status
                context.set_trailing_metadata((
                    (ERROR_CODE_KEY, exc.code),
                    (ERROR_DETAILS_KEY, json.dumps(exc.details)),
                ))
                context.abort(exc.status, exc.message)
            except Exception:
                code = grpc.StatusCode.INTERNAL
                if context.code() is None:
                    log.exception("unhandled error in %s", method)
                raise
            finally:
                if context.code() not in (None, grpc.StatusCode.OK) and code is grpc.StatusCode.OK:
                    code = context.code()
                elapsed = time.perf_counter() - start
                metrics.observe_rpc(method, code.name, elapsed)
                log.info("rpc", extra={"fields": {
                    "method": method, "code": code.name, "ms": round(elapsed * 1000, 2)}})
                current_user.reset(user_token)
                request_id.reset(rid_token)

        return grpc.unary_unary_rpc_method_handler(
            wrapper, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    health: health.HealthServicer

    def stop(self, grace_s: float = 5.0) -> None:
        """Refuse new calls, finish the ones in flight (up to ``grace_s``), then stop."""
        self.health.enter_graceful_shutdown()
        self.server.stop(grace_s).wait()


def start_server(address: str, register: Iterable[Callable[[grpc.Server], None]],
                 service_names: Sequence[str], max_workers: int = 16) -> RunningServer:
    """Start a server on ``address`` ("host:port", port 0 picks one) with health + reflection."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers),
        interceptors=[ServerInterceptor()],
        options=[("grpc.max_receive_message_length", 8 * 1024 * 1024),
                 ("grpc.so_reuseport", 0),
                 # Clients re-resolve (headless Services) when a connection ages out, so new
                 # replicas get calls within minutes of starting.
                 ("grpc.max_connection_age_ms", 300_000),
                 ("grpc.max_connection_age_grace_ms", 30_000)],
    )
    for add in register:
        add(server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {address} (is the port taken?)")
    server.start()
    for name in ("", *service_names):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningServer(server, port, health_servicer)


class _ClientInterceptor(grpc.UnaryUnaryClientInterceptor):
    """Gives every call a deadline and forwards the current user and request id."""

    def __init__(self, deadline_s: float) -> None:
        self.deadline_s = deadline_s

    def intercept_unary_unary(self, continuation, client_call_details, request):
        metadata = list(client_call_details.metadata or [])
        keys = {k for k, _ in metadata}
        if USER_KEY not in keys and (user := current_user.get()):
            metadata.append((USER_KEY, user))
        if REQUEST_KEY not in keys and (rid := request_id.get()):
            metadata.append((REQUEST_KEY, rid))
        started = time.perf_counter()
        with tracing.client_span(client_call_details.method, metadata):
            details = _CallDetails(
                client_call_details.method,
                client_call_details.timeout if client_call_details.timeout is not None
                else self.deadline_s,
                metadata, client_call_details.credentials,
                client_call_details.wait_for_ready, client_call_details.compression)
            outcome = continuation(details, request)
        outcome.add_done_callback(lambda call: metrics.observe_client_rpc(
            details.method, call.code().name, time.perf_counter() - started))
        return outcome


@dataclass(frozen=True)
class _CallDetails(grpc.ClientCallDetails):
    method: str
    timeout: float | None
    metadata: Sequence[tuple[str, str]] | None
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


def channel(address: str, deadline_s: float = DEFAULT_DEADLINE_S) -> grpc.Channel:
    """A reusable channel to ``address`` whose calls carry a deadline and the caller's identity.

    The name is resolved by DNS to every address it has (a headless Service lists each pod)
    and calls are spread over them round robin, per call rather than per connection."""
    target = address if "://" in address or address.startswith("dns:") else f"dns:///{address}"
    raw = grpc.insecure_channel(target, options=[
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.max_receive_message_length", 8 * 1024 * 1024),
        ("grpc.lb_policy_name", "round_robin"),
    ])
    return grpc.intercept_channel(raw, _ClientInterceptor(deadline_s))


def error_info(exc: grpc.RpcError) -> tuple[grpc.StatusCode, str, str | None, dict[str, Any]]:
    """``(status, message, kith error code, details)`` of a failed call."""
    trailing = dict(exc.trailing_metadata() or ())  # type: ignore[attr-defined]
    details = trailing.get(ERROR_DETAILS_KEY)
    return (exc.code(), exc.details() or "",  # type: ignore[attr-defined]
            trailing.get(ERROR_CODE_KEY), json.loads(details) if details else {})


def with_user(user_id: str | uuid.UUID | None) -> list[tuple[str, str]]:
    """Explicit call metadata naming the acting user."""
    return [(USER_KEY, str(user_id))] if user_id else []
