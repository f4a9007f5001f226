"""``kith media serve``: the media gRPC service, its outbox relay, its reactions to account
and carrier deletions, and the expiry of photos left unattached."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from kith.common.config import env_int
from kith.common.projection import Projection
from kith.common.rpc import channel
from kith.common.service import ServiceContext, ServiceSpec, serve
from kith.media.account_deletions import AccountDeletions
from kith.media.application import UNATTACHED_TTL_S, MediaApplication
from kith.media.clients import CarriersClient
from kith.media.grpc_api import SERVICE_NAME, MediaServicer
from kith.media.imaging import MAX_PIXELS
from kith.media.projections import CarrierDeletions
from kith.media.storage import MEDIA_KEYS
from kith.protos import media_pb2_grpc

log = logging.getLogger(__name__)
SWEEP_EVERY_S = 60.0


def _application(ctx: ServiceContext) -> MediaApplication:
    env = ctx.settings.extra
    return MediaApplication(
        ctx.store,
        CarriersClient(channel(ctx.settings.grpc_addr("post")),
                       channel(ctx.settings.grpc_addr("messaging")),
                       channel(ctx.settings.grpc_addr("graph"))),
        decode_slots=env_int(env, "KITH_MEDIA_DECODE_SLOTS", 2, 1),
        upload_slots=env_int(env, "KITH_MEDIA_UPLOAD_SLOTS", 4, 1),
        max_pixels=env_int(env, "KITH_MEDIA_MAX_PIXELS", MAX_PIXELS, 1),
        unattached_ttl_s=env_int(env, "KITH_MEDIA_UNATTACHED_TTL_S", UNATTACHED_TTL_S, 1))


def _register(ctx: ServiceContext) -> Sequence[Callable[[grpc.Server], None]]:
    servicer = MediaServicer(_application(ctx))
    return [lambda server: media_pb2_grpc.add_MediaServiceServicer_to_server(servicer, server)]


def _projections(ctx: ServiceContext) -> Sequence[Projection]:
    app = _application(ctx)
    return [AccountDeletions(app, ctx.settings.topic("identity")),
            CarrierDeletions(app, ctx.settings.topic("post"))]


def _background(ctx: ServiceContext) -> Sequence[Callable[[threading.Event], Any]]:
    app = _application(ctx)
    every = float(env_int(ctx.settings.extra, "KITH_MEDIA_SWEEP_EVERY_S",
                          int(SWEEP_EVERY_S), 1))

    def expire(stop: threading.Event) -> None:
        while not stop.wait(every):
            while (purged := app.expire_unattached()) and not stop.is_set():
                log.info("expired %d unattached photos", purged)

    return [expire]


SPEC = ServiceSpec(
    name="media",
    package="kith.media",
    grpc_services=[SERVICE_NAME],
    register=_register,
    projections=_projections,
    background=_background,
    key_tables=[MEDIA_KEYS],
)

COMMANDS: dict[str, Callable[[list[str]], int]] = {"serve": lambda argv: serve(SPEC)}
