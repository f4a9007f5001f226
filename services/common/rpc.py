"""gRPC plumbing: servers with health, reflection and interceptors; clients with deadlines.

The gateway authenticates callers and signs the acting user into an assertion
(``x-kith-actor`` metadata, :mod:`kith.common.assertion`). Every server verifies
it before the servicer runs: a call without a valid assertion is refused with
UNAUTHENTICATED, and the request's acting-user field (``actor_id`` or
``viewer_id``) must name the asserted actor — it is filled in when empty and a
call naming anyone else is refused, so every RPC, including ones added later,
acts for the verified caller only. The asserted actor is
:data:`kith.common.logs.current_user` for the duration of the call, and calls
a service makes while serving one forward the same assertion.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent import futures
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, NoReturn, cast

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from kith.common import deadlines, metrics, tracing
from kith.common.assertion import ActorSigner, ActorVerifier, InvalidAssertion
from kith.common.errors import DependencyUnavailable, DomainError
from kith.common.logs import command_id, current_user, request_id

log = logging.getLogger(__name__)
ASSERTION_KEY = "x-kith-actor"
ACTOR_FIELDS = ("actor_id", "viewer_id")  # the field an RPC names its acting user in
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")  # need no assertion
REQUEST_KEY = "x-request-id"
# The idempotent command a call performs (the gateway derives it from an Idempotency-Key).
COMMAND_KEY = "x-kith-command-id"
ERROR_CODE_KEY = "kith-error-code"
ERROR_DETAILS_KEY = "kith-error-details"
DEFAULT_DEADLINE_S = 5.0


# The verified assertion of the call being served (forwarded by outgoing calls).
current_assertion: ContextVar[str | None] = ContextVar("current_assertion", default=None)


_ACTOR_FIELD: dict[Any, str | None] = {}  # message descriptor → its acting-user field


def actor_field(request: Any) -> str | None:
    """The name of the request's acting-user field, if it has one."""
    descriptor = request.DESCRIPTOR
    try:
        return _ACTOR_FIELD[descriptor]
    except KeyError:
        fields = descriptor.fields_by_name
        name = _ACTOR_FIELD[descriptor] = next((n for n in ACTOR_FIELDS if n in fields), None)
        return name


def bind_actor(request: Any, actor: str) -> str | None:
    """Make the request act for ``actor``; the reason it cannot, or ``None``.

    An empty acting-user field is filled in; one naming somebody else is a
    forgery (or a bug) and the call is refused.
    """
    name = actor_field(request)
    if name is None:
        return None
    claimed = getattr(request, name)
    if claimed == actor:
        return None
    if not claimed and actor:
        setattr(request, name, actor)
        return None
    return f"{name} does not name the caller asserted by the gateway"


class ServerInterceptor(grpc.ServerInterceptor):
    """Verifies the actor, binds caller and request id, logs, and maps domain errors.

    Every kind of handler is covered: unary calls, server streams (e.g. media's
    ``Fetch``) and client streams (media's ``Upload``, each of whose messages
    must name the asserted actor too). A method's wrapped handler is built once and
    reused while the server answers that method with the same handler (gRPC asks
    the interceptor on its polling thread for every call).
    """

    def __init__(self, verifier: ActorVerifier | None = None) -> None:
        self.verifier = verifier
        self._wrapped: dict[str, tuple[Any, Any]] = {}  # method → (handler, wrapped handler)

    def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        handler = continuation(handler_call_details)
        if handler is None or handler.stream_stream is not None:
            return handler
        method = handler_call_details.method
        known = self._wrapped.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        wrapped = self._wrap(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, method: str, handler: Any) -> Any:
        verifier = None if method.startswith(OPEN_PREFIXES) else self.verifier
        serve = _Served(method, verifier)
        codecs = {"request_deserializer": handler.request_deserializer,
                  "response_serializer": handler.response_serializer}
        if handler.unary_unary is not None:
            inner = handler.unary_unary

            def unary(request: Any, context: grpc.ServicerContext) -> Any:
                return serve.unary(inner, request, context)

            return grpc.unary_unary_rpc_method_handler(unary, **codecs)
        if handler.unary_stream is not None:
            inner_us = handler.unary_stream

            def server_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                with serve.call(context, request):
                    yield from inner_us(request, context)

            return grpc.unary_stream_rpc_method_handler(server_stream, **codecs)
        inner_su = handler.stream_unary

        def client_stream(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
            with serve.call(context, None) as actor:
                return inner_su(serve.bound(requests, actor, context), context)

        return grpc.stream_unary_rpc_method_handler(client_stream, **codecs)


class _Call:
    """What :class:`_Served` set up for one call (undone by :meth:`_Served._end`)."""

    __slots__ = ("actor", "code", "scope", "start", "tokens")

    def __init__(self, actor: str | None, scope: deadlines.CallScope,
                 tokens: tuple[Any, ...]) -> None:
        self.actor = actor
        self.scope = scope
        self.tokens = tokens
        self.code = grpc.StatusCode.OK
        self.start = time.perf_counter()


class _Served:
    """What the server interceptor does around one call of ``method``."""

    def __init__(self, method: str, verifier: ActorVerifier | None) -> None:
        self.method = method
        self.verifier = verifier

    def _refuse(self, context: grpc.ServicerContext, problem: str) -> None:
        metrics.observe_rpc(self.method, grpc.StatusCode.UNAUTHENTICATED.name, 0.0)
        context.abort(grpc.StatusCode.UNAUTHENTICATED, problem)

    def bound(self, requests: Iterator[Any], actor: str | None,
              context: grpc.ServicerContext) -> Iterator[Any]:
        """The messages of a client stream, each made to act for ``actor``."""
        for request in requests:
            if self.verifier is not None and (problem := bind_actor(request, actor or "")):
                self._refuse(context, problem)
            yield request

    def _begin(self, context: grpc.ServicerContext, request: Any | None) -> _Call:
        """Verify the caller (refusing the call if it fails), then bind the call's context."""
        metadata = dict(context.invocation_metadata())
        actor: str | None = None
        token = metadata.get(ASSERTION_KEY)
        if self.verifier is not None:
            try:
                actor = self.verifier.verify(token)
            except InvalidAssertion as exc:
                self._refuse(context, str(exc))
            if request is not None and (problem := bind_actor(request, actor or "")):
                self._refuse(context, problem)
        tokens = (current_user.set(actor or None),
                  current_assertion.set(token if self.verifier is not None else None),
                  request_id.set(metadata.get(REQUEST_KEY) or uuid.uuid4().hex[:16]),
                  command_id.set(_command_id(metadata.get(COMMAND_KEY))))
        scope, scope_token = deadlines.open_scope(_time_left(context))
        context.add_callback(scope.terminated)  # the caller's deadline passed, or it cancelled
        return _Call(actor, scope, (*tokens, scope_token))

    def _failed(self, call: _Call, exc: Exception, context: grpc.ServicerContext) -> NoReturn:
        """Answer for an exception out of the handler (always raises)."""
        if isinstance(exc, DomainError):
            call.code = exc.status
            context.set_trailing_metadata((
                (ERROR_CODE_KEY, exc.code),
                (ERROR_DETAILS_KEY, json.dumps(exc.details)),
            ))
            context.abort(exc.status, exc.message)
        call.code = grpc.StatusCode.INTERNAL
        if call.scope.abandoned:  # its statements were cancelled: nobody waits for an answer
            call.code = grpc.StatusCode.DEADLINE_EXCEEDED
            log.info("%s: stopped, its caller gave up", self.method)
            context.abort(call.code, "the caller gave up")
        if context.code() is None:
            # INTERNAL (as the metric says), not grpc's UNKNOWN; the log has the cause,
            # the caller gets nothing of it.
            log.exception("unhandled error in %s", self.method)
            context.abort(grpc.StatusCode.INTERNAL, "internal error")
        raise exc

    def _end(self, call: _Call, context: grpc.ServicerContext) -> None:
        user_token, assertion_token, rid_token, cid_token, scope_token = call.tokens
        deadlines.close_scope(call.scope, scope_token)
        code = call.code
        if code is grpc.StatusCode.OK and context.code() not in (None, grpc.StatusCode.OK):
            code = context.code()
        elapsed = time.perf_counter() - call.start
        metrics.observe_rpc(self.method, code.name, elapsed)
        if log.isEnabledFor(logging.INFO):
            log.info("rpc", extra={"fields": {
                "method": self.method, "code": code.name, "ms": round(elapsed * 1000, 2)}})
        current_user.reset(user_token)
        current_assertion.reset(assertion_token)
        request_id.reset(rid_token)
        command_id.reset(cid_token)

    def unary(self, inner: Callable[[Any, grpc.ServicerContext], Any], request: Any,
              context: grpc.ServicerContext) -> Any:
        """Serve one unary call with ``inner`` (what :meth:`call` does, without a generator)."""
        call = self._begin(context, request)
        try:
            if tracing.enabled():
                with tracing.server_span(self.method, context.invocation_metadata()):
                    return inner(request, context)
            return inner(request, context)
        except Exception as exc:
            self._failed(call, exc, context)
        finally:
            self._end(call, context)

    @contextmanager
    def call(self, context: grpc.ServicerContext, request: Any | None) -> Iterator[str | None]:
        call = self._begin(context, request)
        try:
            with tracing.server_span(self.method, context.invocation_metadata()):
                yield call.actor
        except Exception as exc:
            self._failed(call, exc, context)
        finally:
            self._end(call, context)


NO_DEADLINE_S = 10 ** 6  # grpc reports "no deadline" as a remaining time of centuries


def _time_left(context: grpc.ServicerContext) -> float | None:
    """Seconds the caller still waits for this call (``None``: it set no deadline)."""
    left = context.time_remaining()
    return None if left is None or left > NO_DEADLINE_S else left


def _command_id(sent: str | None) -> str | None:
    """The call's command id, if it sent a well-formed one (a UUID)."""
    try:
        return str(uuid.UUID(sent)) if sent else None
    except ValueError:
        return None


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
                 service_names: Sequence[str], max_workers: int = 16,
                 verifier: ActorVerifier | None = None,
                 reflection_on: bool = False) -> RunningServer:
    """Start a server on ``address`` ("host:port", port 0 picks one) with health.

    ``verifier`` checks every call's actor assertion (``None``: no check — only
    for servers that hold nothing personal); server reflection only when
    ``reflection_on`` (development).
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers),
        interceptors=[ServerInterceptor(verifier)],
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
    if reflection_on:
        reflection.enable_server_reflection(
            [*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {address} (is the port taken?)")
    server.start()
    for name in ("", *service_names):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningServer(server, port, health_servicer)


class _ClientInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                         grpc.StreamUnaryClientInterceptor):
    """Gives every call a deadline, the caller's assertion and the request id.

    With a ``signer`` (the gateway) the call is asserted for the current user,
    or when none is bound (background work such as the live stream) for the
    acting user the request names; without one (a service) the assertion of
    the call being served is forwarded.
    """

    def __init__(self, deadline_s: float, signer: ActorSigner | None = None) -> None:
        self.deadline_s = deadline_s
        self.signer = signer

    def _assertion(self, request: Any) -> str | None:
        if self.signer is None:
            return current_assertion.get()
        actor = current_user.get()
        if actor is None:
            name = actor_field(request) if hasattr(request, "DESCRIPTOR") else None
            actor = getattr(request, name) if name else ""
        return self.signer.mint(actor or "")

    def _details(self, client_call_details: Any, request: Any) -> _CallDetails:
        metadata = list(client_call_details.metadata or [])
        keys = {k for k, _ in metadata}
        if ASSERTION_KEY not in keys and (assertion := self._assertion(request)):
            metadata.append((ASSERTION_KEY, assertion))
        if REQUEST_KEY not in keys and (rid := request_id.get()):
            metadata.append((REQUEST_KEY, rid))
        if COMMAND_KEY not in keys and (cid := command_id.get()):
            metadata.append((COMMAND_KEY, cid))
        timeout = (client_call_details.timeout if client_call_details.timeout is not None
                   else self.deadline_s)
        if (left := deadlines.remaining()) is not None:  # serving a call: never outlive it
            timeout = max(0.0, min(timeout, left))
        return _CallDetails(
            client_call_details.method, timeout,
            metadata, client_call_details.credentials,
            client_call_details.wait_for_ready, client_call_details.compression)

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any,
                              request: Any) -> Any:
        details = self._details(client_call_details, request)
        started = time.perf_counter()
        with tracing.client_span(details.method, details.metadata):
            outcome = continuation(details, request)
        outcome.add_done_callback(lambda call: metrics.observe_client_rpc(
            details.method, call.code().name, time.perf_counter() - started))
        return outcome

    def intercept_unary_stream(self, continuation: Any, client_call_details: Any,
                               request: Any) -> Any:
        details = self._details(client_call_details, request)
        with tracing.client_span(details.method, details.metadata):
            return continuation(details, request)

    def intercept_stream_unary(self, continuation: Any, client_call_details: Any,
                               request_iterator: Any) -> Any:
        first = None
        if self.signer is not None and current_user.get() is None:
            # Background work names its actor in the stream's first message.
            request_iterator = iter(request_iterator)
            first = next(request_iterator, None)
            if first is not None:
                request_iterator = itertools.chain([first], request_iterator)
        details = self._details(client_call_details, first)
        with tracing.client_span(details.method, details.metadata):
            return continuation(details, request_iterator)


@dataclass(frozen=True)
class _CallDetails(grpc.ClientCallDetails):
    method: str
    timeout: float | None
    metadata: list[tuple[str, str]]
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


def channel(address: str, deadline_s: float = DEFAULT_DEADLINE_S,
            signer: ActorSigner | None = None, direct_unary: bool = False) -> grpc.Channel:
    """A reusable channel to ``address`` whose calls carry a deadline and the caller's assertion.

    ``signer``: mint assertions (the gateway only); otherwise forward the one
    of the call being served. The name is resolved by DNS to every address it has
    (a headless Service lists each pod) and calls are spread over them round robin,
    per call rather than per connection. ``direct_unary``: plain unary calls do the
    same (deadline, metadata, span, latency metric) without grpc's interceptor
    machinery, a tenth of a millisecond of CPU per call (:class:`_DirectChannel`)."""
    target = address if "://" in address or address.startswith("dns:") else f"dns:///{address}"
    raw = grpc.insecure_channel(target, options=[
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.max_receive_message_length", 8 * 1024 * 1024),
        ("grpc.lb_policy_name", "round_robin"),
        # Connections of its own: gRPC otherwise shares one connection per address across a
        # process's channels, and a new channel to an address whose earlier server died
        # (its port now reused by a new one) inherits that connection's back-off and fails
        # its first calls with "Connection refused".
        ("grpc.use_local_subchannel_pool", 1),
    ])
    interceptor = _ClientInterceptor(deadline_s, signer)
    intercepted = grpc.intercept_channel(raw, interceptor)
    if direct_unary:
        return cast(grpc.Channel, _DirectChannel(raw, intercepted, interceptor))
    return intercepted


class _DirectUnary:
    """A blocking unary call made on the raw channel with what :class:`_ClientInterceptor`
    adds; ``with_call``/``future`` go through the intercepted channel."""

    def __init__(self, raw: Any, intercepted: Any, method: str,
                 interceptor: _ClientInterceptor) -> None:
        self._raw = raw
        self._intercepted = intercepted
        self._method = method
        self._interceptor = interceptor

    def __call__(self, request: Any, timeout: float | None = None,
                 metadata: Sequence[tuple[str, str]] | None = None,
                 credentials: grpc.CallCredentials | None = None,
                 wait_for_ready: bool | None = None,
                 compression: grpc.Compression | None = None) -> Any:
        details = self._interceptor._details(_CallDetails(
            self._method, timeout, list(metadata or ()), credentials, wait_for_ready,
            compression), request)
        started = time.perf_counter()
        code = "OK"
        try:
            call = functools.partial(
                self._raw, request, timeout=details.timeout, metadata=details.metadata,
                credentials=details.credentials, wait_for_ready=details.wait_for_ready,
                compression=details.compression)
            if not tracing.enabled():  # no span: spare the context manager
                return call()
            with tracing.client_span(details.method, details.metadata):
                return call()
        except grpc.RpcError as exc:
            code = exc.code().name if isinstance(exc, grpc.Call) else "UNKNOWN"
            raise
        finally:
            metrics.observe_client_rpc(self._method, code, time.perf_counter() - started)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._intercepted, name)


class _DirectChannel:
    """A channel whose unary-unary calls are :class:`_DirectUnary`; everything else is the
    intercepted channel's."""

    def __init__(self, raw: grpc.Channel, intercepted: grpc.Channel,
                 interceptor: _ClientInterceptor) -> None:
        self._raw = raw
        self._intercepted = intercepted
        self._interceptor = interceptor

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> _DirectUnary:
        return _DirectUnary(self._raw.unary_unary(method, *args, **kwargs),
                            self._intercepted.unary_unary(method, *args, **kwargs),
                            method, self._interceptor)

    def close(self) -> None:
        self._intercepted.close()  # closes the raw channel

    def __getattr__(self, name: str) -> Any:
        return getattr(self._intercepted, name)


@contextmanager
def dependency(service: str) -> Iterator[None]:
    """Calls to ``service`` inside: one that fails becomes :class:`DependencyUnavailable`
    (the one error, and code, for a dependency that did not answer)."""
    try:
        yield
    except grpc.RpcError as exc:
        raise DependencyUnavailable(
            f"{service} did not answer: {exc.code().name}") from None


def error_info(exc: grpc.RpcError) -> tuple[grpc.StatusCode, str, str | None, dict[str, Any]]:
    """``(status, message, kith error code, details)`` of a failed call."""
    trailing = dict(exc.trailing_metadata() or ())
    details = trailing.get(ERROR_DETAILS_KEY)
    return (exc.code(), exc.details() or "",
            trailing.get(ERROR_CODE_KEY), json.loads(details) if details else {})

