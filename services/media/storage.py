"""Encrypted, chunked bytes in the media database, and the uploaders' keys.

Each size of a photo is cut into chunks (256 KiB by default) and each chunk is
sealed with AES-256-GCM under its uploader's key, with a fresh nonce and
``"<media>/<size>/<seq>"`` as associated data (a chunk cannot be moved to
another photo, size or position). A 10 MiB photo is thus many small rows, read
back one at a time. Deleting the uploader's key (:func:`destroy_key`) makes
every stored byte of their photos unreadable.
"""

from __future__ import annotations

import hashlib
import os

import psycopg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kith.common import crypto
from kith.media.imaging import Rendition

CHUNK_BYTES = 256 * 1024


class Unreadable(LookupError):
    """The uploader's key is gone (or a chunk was tampered with)."""


def chunk_subject(media_id: str, size: str, seq: int) -> bytes:
    return f"{media_id}/{size}/{seq}".encode()


def seal(key: bytes, media_id: str, size: str, seq: int, plaintext: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, chunk_subject(media_id, size, seq))


def unseal(key: bytes | None, media_id: str, size: str, seq: int, sealed: bytes) -> bytes:
    if key is None:
        raise Unreadable(media_id)
    try:
        return AESGCM(key).decrypt(sealed[:12], sealed[12:], chunk_subject(media_id, size, seq))
    except InvalidTag:
        raise Unreadable(media_id) from None


def etag_of(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


# -- keys ------------------------------------------------------------------------------------

# Each uploader's key, created with their first photo; destroying it shreds every photo
# they uploaded (their chunks can never be opened again).
MEDIA_KEYS = crypto.KeyTable("media", "media_keys")


# -- bytes -----------------------------------------------------------------------------------

def store(conn: psycopg.Connection, key: bytes, media_id: str, rendition: Rendition,
          chunk_bytes: int = CHUNK_BYTES) -> None:
    """Seal and write one size of a photo, chunk by chunk."""
    data = rendition.data
    rows = [(media_id, rendition.size, seq,
             seal(key, media_id, rendition.size, seq, data[start:start + chunk_bytes]))
            for seq, start in enumerate(range(0, max(len(data), 1), chunk_bytes))]
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO media_chunks (media_id, size, seq, sealed)"
                        " VALUES (%s, %s, %s, %s)", rows)
    conn.execute(
        "INSERT INTO media_variants (media_id, size, content_type, width, height, length, etag,"
        " chunks) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (media_id, rendition.size, rendition.content_type, rendition.width, rendition.height,
         len(data), etag_of(data), len(rows)))


def sealed_chunk(conn: psycopg.Connection, media_id: str, size: str, seq: int) -> bytes:
    """One stored chunk, still sealed."""
    row = conn.execute("SELECT sealed FROM media_chunks WHERE media_id = %s AND size = %s"
                       " AND seq = %s", (media_id, size, seq)).fetchone()
    if row is None:
        raise Unreadable(media_id)
    return bytes(row[0])


def erase_bytes(conn: psycopg.Connection, media_id: str) -> None:
    conn.execute("DELETE FROM media_chunks WHERE media_id = %s", (media_id,))
    conn.execute("DELETE FROM media_variants WHERE media_id = %s", (media_id,))
