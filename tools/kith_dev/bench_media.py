"""``kith bench media``: photo uploads and thumbnail fetches through the gateway.

identity, graph, post, messaging, media and the gateway (granian) run as their
own processes on databases and topics of this run (embedded PostgreSQL and
Kafka unless ``KITH_PG_DSN`` / ``KITH_KAFKA_BOOTSTRAP`` name servers). Images
are drawn here with Pillow (gradients, shapes and sensor-like noise, no
downloads), a mix of 3-4 MP JPEGs as a phone makes them. It measures:

* **upload throughput**: ``--photos`` uploads (``POST /v1/media``) from
  ``--uploaders`` concurrent clients, photos/s and MB/s of request bodies;
* **Pillow alone**: the same images decoded, oriented, resized to the three
  sizes and re-encoded by :func:`kith.media.imaging.render` in this process,
  with as many threads as media has decode slots; ``ratio`` = upload
  photos/s ÷ Pillow-alone photos/s;
* **thumbnail fetch**: ``GET /v1/media/{id}?size=thumb`` at ``--rate`` per
  second for ``--seconds`` (open loop, latency from each request's scheduled
  time), p50/p99;
* **peak RSS** of the media process (with its children), sampled every 10 ms
  while ``--burst`` uploads of a ~9 MiB photo are in flight at once.

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import random
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
from hdrh.histogram import HdrHistogram
from PIL import Image, ImageDraw, ImageFilter

from kith.media.imaging import render
from kith_dev.benchkit import Children, bench_infra, emit, progress, spawn_services

SERVICES = ("identity", "graph", "post", "messaging", "media")
PASSWORD = "bench-password-123"
SIZES = [(2048, 1536), (2304, 1728), (1536, 2048), (2240, 1680)]  # 3.1-4.0 MP


def phone_photo(width: int, height: int, seed: int) -> bytes:
    """A JPEG that compresses like a photo: smooth gradients, shapes, mild noise."""
    rng = random.Random(seed)
    base = Image.linear_gradient("L").resize((width, height))
    image = Image.merge("RGB", (base, base.rotate(90).resize((width, height)),
                                Image.new("L", (width, height), rng.randrange(256))))
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randrange(20, 300)
        draw.ellipse((x - r, y - r, x + r, y + r),
                     fill=tuple(rng.randrange(256) for _ in range(3)))
    image = image.filter(ImageFilter.GaussianBlur(2))
    noise = Image.effect_noise((width, height), 24).convert("RGB")
    image = Image.blend(image, noise, 0.12)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92)
    return out.getvalue()


def large_photo(limit: int = 10 * 1024 * 1024) -> bytes:
    """A noisy JPEG just under ``limit`` (the worst case of the upload path)."""
    side = 3000
    while True:
        out = io.BytesIO()
        Image.effect_noise((side, side), 90).convert("RGB").save(out, "JPEG", quality=97)
        if out.tell() <= limit:
            return out.getvalue()
        side -= 200


class Http:
    """One keep-alive connection per thread to the gateway."""

    def __init__(self, base: str) -> None:
        self.netloc = urlsplit(base).netloc
        self.local = threading.local()

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection(self.netloc, timeout=120)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read()
        except (OSError, http.client.HTTPException):
            self.local.conn = None
            conn.close()
            raise


def sign_up(http_: Http) -> str:
    username = f"bench_{uuid.uuid4().hex[:10]}"
    json_ = {"Content-Type": "application/json"}
    status, _ = http_.request("POST", "/v1/accounts", json.dumps({
        "username": username, "password": PASSWORD, "display_name": "Bench"}).encode(), json_)
    assert status == 201, status
    status, body = http_.request("POST", "/v1/sessions", json.dumps({
        "username": username, "password": PASSWORD}).encode(), json_)
    assert status == 201, status
    return json.loads(body)["access_token"]


def upload(http_: Http, token: str, data: bytes) -> str:
    status, body = http_.request("POST", "/v1/media", data, {
        "Authorization": f"Bearer {token}", "Content-Type": "image/jpeg"})
    if status != 201:
        raise RuntimeError(f"upload answered {status}: {body[:200]!r}")
    return json.loads(body)["id"]


def upload_throughput(http_: Http, token: str, images: list[bytes], count: int,
                      uploaders: int) -> tuple[dict[str, float], list[str]]:
    started = time.perf_counter()
    with ThreadPoolExecutor(uploaders) as pool:
        ids = list(pool.map(lambda i: upload(http_, token, images[i % len(images)]),
                            range(count)))
    elapsed = time.perf_counter() - started
    sent = sum(len(images[i % len(images)]) for i in range(count))
    return {"photos_per_s": round(count / elapsed, 2),
            "mb_per_s": round(sent / elapsed / 1e6, 2), "seconds": round(elapsed, 2)}, ids


def pillow_alone(images: list[bytes], count: int, threads: int) -> dict[str, float]:
    """The same work with no service around it, as parallel as media's decode slots."""
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:  # Pillow releases the GIL while it codes
        list(pool.map(lambda i: render(images[i % len(images)], "image/jpeg"), range(count)))
    elapsed = time.perf_counter() - started
    return {"photos_per_s": round(count / elapsed, 2), "seconds": round(elapsed, 2)}


def thumb_latency(http_: Http, token: str, ids: list[str], rate: float,
                  seconds: float) -> dict[str, Any]:
    histogram = HdrHistogram(1, 60_000_000, 3)  # microseconds
    errors = 0
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {token}"}
    total = int(rate * seconds)
    start = time.perf_counter() + 0.2

    def one(i: int) -> None:
        nonlocal errors
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        try:
            status, body = http_.request("GET", f"/v1/media/{ids[i % len(ids)]}?size=thumb",
                                         headers=headers)
            ok = status == 200 and len(body) > 0
        except (OSError, http.client.HTTPException):
            ok = False
        took = int((time.perf_counter() - scheduled) * 1e6)
        with lock:
            histogram.record_value(max(1, took))
            errors += 0 if ok else 1

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(one, range(total)))
    return {"rate_per_s": rate, "requests": total, "errors": errors,
            "p50_ms": round(histogram.get_value_at_percentile(50) / 1000, 2),
            "p99_ms": round(histogram.get_value_at_percentile(99) / 1000, 2)}


def burst_rss(http_: Http, token: str, stack: Children, data: bytes,
              burst: int) -> dict[str, Any]:
    proc = psutil.Process(dict(stack.procs)["media-serve"].pid)

    def rss() -> int:
        try:
            return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])
        except psutil.Error:
            return 0

    before, peak = rss(), 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss())
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    with ThreadPoolExecutor(burst) as pool:
        list(pool.map(lambda _: upload(http_, token, data), range(burst)))
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    return {"concurrent_uploads": burst, "photo_mib": round(len(data) / 2**20, 2),
            "rss_before_mib": round(before / 2**20, 1), "peak_rss_mib": round(peak / 2**20, 1),
            "seconds": round(elapsed, 2)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kith bench media", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=40, help="uploads measured (40)")
    parser.add_argument("--uploaders", type=int, default=4, help="concurrent uploaders (4)")
    parser.add_argument("--rate", type=float, default=50.0, help="thumbnail GETs per s (50)")
    parser.add_argument("--seconds", type=float, default=10.0, help="fetch duration (10)")
    parser.add_argument("--burst", type=int, default=20, help="concurrent big uploads (20)")
    parser.add_argument("--decode-slots", type=int, default=2,
                        help="KITH_MEDIA_DECODE_SLOTS of the media process (2)")
    parser.add_argument("--upload-slots", type=int, default=4,
                        help="KITH_MEDIA_UPLOAD_SLOTS of the media process (4)")
    args = parser.parse_args(argv)

    progress("drawing images")
    images = [phone_photo(w, h, seed) for seed, (w, h) in enumerate(SIZES * 2)]
    big = large_photo()
    workdir = Path(tempfile.mkdtemp(prefix="kith-bench-media-"))
    env = {"KITH_HOME": str(workdir), "KITH_MEDIA_DECODE_SLOTS": str(args.decode_slots),
           "KITH_MEDIA_UPLOAD_SLOTS": str(args.upload_slots),
           "KITH_GATEWAY_WORKERS": "2", "KITH_GATEWAY_THREADS": "16",
           "KITH_GATEWAY_RATE_LIMIT_USER": "1000000/minute",
           "KITH_GATEWAY_RATE_LIMIT_IP": "1000000/minute",
           "KITH_GATEWAY_RATE_LIMIT_SIGN_IN": "1000000/minute"}
    with bench_infra() as infra, spawn_services(
            infra.settings, [*((s, "serve") for s in SERVICES), ("gateway", "serve")],
            workdir, env) as stack:
        http_ = Http(stack.gateway_url)
        token = sign_up(http_)
        upload(http_, token, images[0])  # warm up every connection and process
        progress(f"uploading {args.photos} photos")
        uploads, ids = upload_throughput(http_, token, images, args.photos, args.uploaders)
        progress("Pillow alone")
        alone = pillow_alone(images, max(8, args.photos // 2), args.decode_slots)
        progress(f"thumbnails at {args.rate}/s")
        thumbs = thumb_latency(http_, token, ids, args.rate, args.seconds)
        progress(f"{args.burst} concurrent uploads of a {len(big) / 2**20:.1f} MiB photo")
        rss = burst_rss(http_, token, stack, big, args.burst)
    emit("media", {
        "images": {"count": len(images), "megapixels": sorted({round(w * h / 1e6, 1)
                                                              for w, h in SIZES}),
                   "mean_mb": round(sum(map(len, images)) / len(images) / 1e6, 2)},
        "upload": {**uploads, "photos": args.photos, "uploaders": args.uploaders,
                   "decode_slots": args.decode_slots, "upload_slots": args.upload_slots},
        "pillow_alone": alone,
        "ratio": round(uploads["photos_per_s"] / alone["photos_per_s"], 3),
        "thumb_fetch": thumbs,
        "burst": rss,
        "cpus": psutil.cpu_count(),
    })
    return 0
