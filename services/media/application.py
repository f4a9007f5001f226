"""Media commands and queries: upload, fetch, claim/attach/release, hydrate, erase, expire.

Each photo is an event stream (``media_id``); the ``media`` row is its
snapshot, written in the same transaction as each append, and locked
(``FOR UPDATE``) by every command on it, so commands on one photo serialise.

Attaching around the creation of a carrier (see ``proto/media.proto``):
``claim`` (all ids or none) → the caller creates the carrier → ``attach`` (a
``MediaAttached`` per photo), or ``release`` when the create failed. A claim
lapses by itself after :data:`CLAIM_LEASE_MS`, so a caller that dies between
the steps leaves nothing attached and nothing claimed for long.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import grpc
import psycopg

from kith.common.commands import Command, CommandRunner, ResultCodec
from kith.common.db import scalar
from kith.common.errors import DomainError, InvalidArgument, NotFound, check, require
from kith.common.events import to_new_event
from kith.common.eventstore import EventStore
from kith.media import storage
from kith.media.carriers import KINDS, Carriers
from kith.media.events import (
    ACCOUNT_DELETED,
    CARRIER_DELETED,
    EXPIRED,
    MediaAttached,
    MediaDetached,
    MediaPurged,
    MediaUploaded,
)
from kith.media.imaging import MAX_PIXELS, SIZES, render

log = logging.getLogger(__name__)
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_MEDIA_PER_CARRIER = 10
CLAIM_LEASE_MS = 5 * 60 * 1000
UNATTACHED_TTL_S = 24 * 3600


class TooLarge(DomainError):
    status = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_code = "too_large"


def invalid_media(reason: str, details: dict[str, str]) -> InvalidArgument:
    return InvalidArgument(reason, "invalid_media", details)


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class MediaView:
    id: str
    uploader_id: str
    content_type: str
    width: int
    height: int
    bytes: int
    uploaded_at_ms: int


@dataclass(frozen=True)
class Variant:
    content_type: str
    length: int
    etag: str
    chunks: int


@dataclass(frozen=True)
class CarrierRef:
    kind: str
    id: str
    parent_id: str = ""


_COLUMNS = "id::text, uploader_id::text, content_type, width, height, bytes, uploaded_at_ms"


class MediaApplication:
    def __init__(self, store: EventStore, carriers: Carriers, decode_slots: int = 2,
                 max_pixels: int = MAX_PIXELS, unattached_ttl_s: int = UNATTACHED_TTL_S,
                 upload_slots: int = 4) -> None:
        self.store = store
        self.commands = CommandRunner(store)
        self.carriers = carriers
        self.max_pixels = max_pixels
        self.unattached_ttl_s = unattached_ttl_s
        # Image work is memory-heavy: at most this many decodes at once per process.
        self._decode = threading.BoundedSemaphore(max(1, decode_slots))
        # Uploads buffered at once (≤ 10 MiB each); the others wait, unread, in gRPC's
        # flow-control window: memory stays bounded however many arrive together.
        self.intake = threading.BoundedSemaphore(max(1, upload_slots))

    # -- upload ------------------------------------------------------------------------------

    def upload(self, actor: str, declared: str, data: bytes) -> MediaView:
        """Decode, re-encode and store a photo; nothing is stored if any step refuses it."""
        check(len(data) <= MAX_UPLOAD_BYTES, TooLarge("a photo is at most 10 MiB"))
        with self._decode:
            renditions = render(data, declared, self.max_pixels)
        original = renditions[0]
        media_id = str(uuid.uuid4())
        event = MediaUploaded(media_id, actor, original.content_type, original.width,
                              original.height, len(original.data), now_ms())

        def record(command: Command) -> MediaView:
            conn = command.conn
            _lock_uploader(conn, actor)  # against a concurrent erase_account
            check(not self._deleted(conn, actor), NotFound("no such account", "not_found"))
            key = storage.MEDIA_KEYS.key_for(conn, actor)  # created with the first photo
            for rendition in renditions:
                storage.store(conn, key, media_id, rendition)
            conn.execute(
                "INSERT INTO media (id, uploader_id, content_type, width, height, bytes,"
                " uploaded_at_ms, version, state) VALUES (%s, %s, %s, %s, %s, %s, %s, 1,"
                " 'pending')",
                (media_id, actor, event.content_type, event.width, event.height, event.bytes,
                 event.uploaded_at_ms))
            command.append(media_id, 0, [to_new_event(event)])
            return MediaView(media_id, actor, event.content_type, event.width, event.height,
                             event.bytes, event.uploaded_at_ms)

        def first_upload(conn: psycopg.Connection, kept: dict[str, str]) -> MediaView:
            row = require(conn.execute(f"SELECT {_COLUMNS} FROM media WHERE id = %s"
                                       " AND state <> 'purged'", (kept["media_id"],)).fetchone(),
                          NotFound("no such photo", "not_found"))  # purged since
            return MediaView(*row)

        # A repeat of the command (same command id) answers with the photo it stored.
        return self.commands.run("upload", record, actor_id=actor, result=ResultCodec[MediaView](
            lambda view: {"media_id": view.id}, first_upload))

    def get(self, actor: str, media_id: str) -> MediaView:
        with self.store.transaction() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM media WHERE id = %s AND uploader_id = %s"
                               " AND state <> 'purged'", (media_id, actor)).fetchone()
        if row is None:
            raise NotFound("no such photo")
        return MediaView(*row)

    # -- fetch -------------------------------------------------------------------------------

    def open(self, actor: str, media_id: str, size: str) -> tuple[Variant, str, str]:
        """The variant ``actor`` may read, with its uploader; :class:`NotFound` otherwise."""
        check(size in SIZES, InvalidArgument("unknown size", details={
            "size": "one of original, display, thumb"}))
        with self.store.transaction() as conn:
            row = conn.execute(
                "SELECT m.uploader_id::text, m.state, m.carrier_kind, m.carrier_id::text,"
                " m.parent_id::text, v.content_type, v.length, v.etag, v.chunks"
                " FROM media m JOIN media_variants v ON v.media_id = m.id AND v.size = %s"
                " WHERE m.id = %s AND m.state <> 'purged'", (size, media_id)).fetchone()
        if row is None:
            raise NotFound("no such photo")
        uploader, state, kind, carrier_id, parent_id = row[:5]
        if actor != uploader and not (
                state == "attached"
                and self.carriers.can_see(actor, kind, carrier_id, parent_id or "", uploader)):
            raise NotFound("no such photo")
        return Variant(*row[5:]), uploader, media_id

    def read(self, uploader: str, media_id: str, size: str, variant: Variant
             ) -> Iterator[bytes]:
        """The plaintext chunks of a variant opened by :meth:`open`, one at a time."""
        pool = self.store.pool
        with pool.connection() as conn:
            key = storage.MEDIA_KEYS.key_of(conn, uploader)
        for seq in range(variant.chunks):  # a slow reader holds no connection between chunks
            with pool.connection() as conn:
                sealed = storage.sealed_chunk(conn, media_id, size, seq)
            yield storage.unseal(key, media_id, size, seq, sealed)

    # -- attach ------------------------------------------------------------------------------

    def claim(self, actor: str, claim_id: str, media_ids: Sequence[str]) -> None:
        """Reserve every id for one carrier, or none (:func:`invalid_media`)."""
        at = now_ms()
        with self.store.transaction() as conn:
            rows = {r[0]: r[1:] for r in conn.execute(
                "SELECT id::text, uploader_id::text, state, claim_id::text, claimed_until_ms,"
                " attached_by_claim::text"
                " FROM media WHERE id = ANY(%s::uuid[]) ORDER BY id FOR UPDATE",
                (list(media_ids),))}
            problems: dict[str, str] = {}
            if rows and all(r[1] == "attached" and r[4] == claim_id for r in rows.values()) \
                    and len(rows) == len(media_ids) and all(r[0] == actor for r in rows.values()):
                return  # a retry of the command that attached them: nothing left to claim
            for i, media_id in enumerate(media_ids):
                row = rows.get(media_id)
                if row is None or row[0] != actor or row[1] == "purged":
                    problems[f"media_ids[{i}]"] = "no photo of yours has this id"
                elif row[1] != "pending":
                    problems[f"media_ids[{i}]"] = "already attached elsewhere"
                elif row[2] and row[2] != claim_id and (row[3] or 0) > at:
                    problems[f"media_ids[{i}]"] = "being attached elsewhere"
            if problems:
                raise invalid_media("photos must be yours and not attached elsewhere", problems)
            with conn.cursor() as cur:  # position: the order the client listed them in
                cur.executemany("UPDATE media SET claim_id = %s, claimed_until_ms = %s,"
                                " position = %s WHERE id = %s",
                                [(claim_id, at + CLAIM_LEASE_MS, i, media_id)
                                 for i, media_id in enumerate(media_ids)])

    def attach(self, actor: str, claim_id: str, carrier: CarrierRef) -> int:
        """Attach what ``claim_id`` holds to the created carrier; how many were attached."""
        check(carrier.kind in KINDS, InvalidArgument("unknown carrier kind", details={
            "carrier.kind": "post, comment or message"}))
        at = now_ms()

        def record(command: Command) -> int:
            conn = command.conn
            rows = conn.execute(
                "SELECT id::text, version FROM media WHERE claim_id = %s AND uploader_id = %s"
                " AND state = 'pending' ORDER BY position, id FOR UPDATE",
                (claim_id, actor)).fetchall()
            start = scalar(conn, "SELECT count(*) FROM media WHERE carrier_id = %s",
                           (carrier.id,))
            for offset, (media_id, version) in enumerate(rows):
                event = MediaAttached(media_id, actor, carrier.kind, carrier.id,
                                      carrier.parent_id, start + offset, at)
                conn.execute(
                    "UPDATE media SET state = 'attached', carrier_kind = %s, carrier_id = %s,"
                    " parent_id = %s, position = %s, claim_id = NULL, claimed_until_ms = NULL,"
                    " attached_by_claim = claim_id, version = %s WHERE id = %s",
                    (carrier.kind, carrier.id, carrier.parent_id or None, event.position,
                     version + 1, media_id))
                command.append(media_id, version, [to_new_event(event)])
            return len(rows)

        return self.commands.run("attach", record, actor_id=actor)

    def release(self, actor: str, claim_id: str) -> None:
        with self.store.transaction() as conn:
            conn.execute("UPDATE media SET claim_id = NULL, claimed_until_ms = NULL"
                         " WHERE claim_id = %s AND uploader_id = %s AND state = 'pending'",
                         (claim_id, actor))

    def list_attached(self, carriers: Sequence[CarrierRef]) -> dict[str, list[MediaView]]:
        """Carrier id → its photos in attachment order (carriers without photos left out)."""
        if not carriers:
            return {}
        found: dict[str, list[MediaView]] = {}
        with self.store.transaction() as conn:
            for carrier_id, *row in conn.execute(
                    f"SELECT carrier_id::text, {_COLUMNS} FROM media"
                    " WHERE carrier_id = ANY(%s::uuid[]) AND state = 'attached'"
                    " ORDER BY carrier_id, position", ([c.id for c in carriers],)):
                found.setdefault(carrier_id, []).append(MediaView(*row))
        return found

    # -- reactions to other services' events -------------------------------------------------

    def detach_carriers(self, conn: psycopg.Connection, carrier_ids: Sequence[str],
                        parent_ids: Sequence[str] = ()) -> int:
        """Carriers were deleted (a post takes its comments along): only uploaders see them."""
        rows = conn.execute(
            "SELECT id::text, uploader_id::text, version, carrier_kind, carrier_id::text"
            " FROM media WHERE state = 'attached' AND (carrier_id = ANY(%s::uuid[])"
            " OR parent_id = ANY(%s::uuid[])) ORDER BY id FOR UPDATE",
            (list(carrier_ids), list(parent_ids))).fetchall()
        at = now_ms()

        def record(command: Command) -> int:
            for media_id, uploader, version, kind, carrier_id in rows:
                conn.execute("UPDATE media SET state = 'detached', version = %s WHERE id = %s",
                             (version + 1, media_id))
                command.append(media_id, version, [to_new_event(MediaDetached(
                    media_id, uploader, kind, carrier_id, CARRIER_DELETED, at))])
            return len(rows)

        return self.commands.run("detach_carriers", record, actor_id=None, conn=conn)

    def erase_account(self, conn: psycopg.Connection, user_id: str, deleted_at_ms: int) -> int:
        """Shred the uploader's key (every stored byte becomes unreadable), then purge."""
        _lock_uploader(conn, user_id)
        conn.execute("INSERT INTO deleted_accounts (user_id, deleted_at_ms) VALUES (%s, %s)"
                     " ON CONFLICT DO NOTHING", (user_id, deleted_at_ms))
        storage.MEDIA_KEYS.destroy(conn, user_id)
        rows = conn.execute("SELECT id::text, version FROM media WHERE uploader_id = %s"
                            " AND state <> 'purged' ORDER BY id FOR UPDATE",
                            (user_id,)).fetchall()
        self._purge(conn, user_id, rows, ACCOUNT_DELETED)
        return len(rows)

    def expire_unattached(self, limit: int = 100) -> int:
        """Purge photos left unattached (and unclaimed) for longer than the TTL."""
        at = now_ms()
        with self.store.transaction() as conn:
            rows = conn.execute(
                "SELECT id::text, uploader_id::text, version FROM media WHERE state = 'pending'"
                " AND uploaded_at_ms < %s AND coalesce(claimed_until_ms, 0) < %s"
                " ORDER BY uploaded_at_ms LIMIT %s FOR UPDATE SKIP LOCKED",
                (at - self.unattached_ttl_s * 1000, at, limit)).fetchall()
            for media_id, uploader, version in rows:
                self._purge(conn, uploader, [(media_id, version)], EXPIRED)
        return len(rows)

    def _purge(self, conn: psycopg.Connection, uploader: str, rows: Sequence[tuple[str, int]],
               reason: str) -> None:
        at = now_ms()

        def record(command: Command) -> None:
            for media_id, version in rows:
                storage.erase_bytes(conn, media_id)
                conn.execute("UPDATE media SET state = 'purged', version = %s, claim_id = NULL"
                             " WHERE id = %s", (version + 1, media_id))
                command.append(media_id, version, [to_new_event(
                    MediaPurged(media_id, uploader, reason, at))])

        self.commands.run("purge", record, actor_id=None, conn=conn, reason=reason)

    @staticmethod
    def _deleted(conn: psycopg.Connection, user_id: str) -> bool:
        return conn.execute("SELECT 1 FROM deleted_accounts WHERE user_id = %s",
                            (user_id,)).fetchone() is not None


def _lock_uploader(conn: psycopg.Connection, user_id: str) -> None:
    """Serialise an upload with the erasure of its uploader (until the transaction ends)."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 7))", (user_id,))
