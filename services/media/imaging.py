"""Turning untrusted upload bytes into clean images: the rules every photo passes.

* The type comes from the bytes (magic numbers), never from the declared
  Content-Type; a declared type that disagrees with the bytes is refused.
* Pillow decodes only that one format, under a pixel limit (40 MP): anything
  larger — a decompression bomb included — is refused before its pixels are
  allocated; a truncated or corrupt file fails to load and is refused.
* The EXIF orientation is applied, colours are converted to sRGB when an ICC
  profile is present, then every size is re-encoded from pixels alone: no
  EXIF, GPS, XMP, ICC, comments or text chunks survive.
* Sizes: the original (full resolution), a display size (longest side ≤ 1600
  px) and a thumbnail (≤ 320 px), each in the format of the upload.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps

from kith.common.errors import InvalidArgument

MAX_PIXELS = 40_000_000
DISPLAY_PX = 1600
THUMB_PX = 320
SIZES = ("original", "display", "thumb")
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


class InvalidImage(InvalidArgument):
    """Not a decodable JPEG, PNG or WebP of at most 40 megapixels."""

    default_code = "invalid_image"


@dataclass(frozen=True)
class Rendition:
    """One encoded size of a photo."""

    size: str
    content_type: str
    width: int
    height: int
    data: bytes


def sniff(data: bytes) -> str | None:
    """The Pillow format name the bytes start with (JPEG, PNG, WEBP), else ``None``."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def check_declared(declared: str, sniffed: str) -> None:
    """A declared Content-Type (parameters ignored) must name what the bytes are."""
    mime = declared.split(";", 1)[0].strip().lower()
    if mime == "image/jpg":
        mime = "image/jpeg"
    if mime != CONTENT_TYPES[sniffed]:
        raise InvalidImage(f"the body is {CONTENT_TYPES[sniffed]}, not {mime or 'untyped'}",
                           details={"content_type": f"the bytes are {CONTENT_TYPES[sniffed]}"})


def decode(data: bytes, declared: str, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """The fully loaded, upright pixels of an upload, or :class:`InvalidImage`."""
    fmt = sniff(data)
    if fmt is None:
        raise InvalidImage("the body is not a JPEG, PNG or WebP image",
                           details={"body": "not a JPEG, PNG or WebP image"})
    check_declared(declared, fmt)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[fmt])
            width, height = image.size
            if width * height > max_pixels or width < 1 or height < 1:
                raise InvalidImage(f"the image has {width}x{height} pixels; at most "
                                   f"{max_pixels // 1_000_000} megapixels are accepted",
                                   details={"body": "too many pixels"})
            image.load()
            upright = ImageOps.exif_transpose(image)
    except InvalidImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidImage("the image decompresses to too many pixels",
                           details={"body": "too many pixels"}) from None
    except Exception:  # untrusted bytes: Pillow fails in many ways (OSError, SyntaxError…)
        raise InvalidImage("the image cannot be decoded (corrupt or truncated)",
                           details={"body": "cannot be decoded"}) from None
    upright.format = fmt
    return upright


def _to_srgb(image: Image.Image) -> Image.Image:
    """Pixels converted from an embedded ICC profile to sRGB (the profile itself is dropped)."""
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in ("RGB", "RGBA"):
        return image
    try:
        from PIL import ImageCms

        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"),
                                         outputMode=image.mode) or image
    except Exception:  # a broken or exotic profile: keep the pixels as they are
        return image


def _normalise(image: Image.Image, fmt: str) -> Image.Image:
    image = _to_srgb(image)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info)
    if fmt == "JPEG":
        mode = "L" if image.mode in ("L", "1") else "RGB"
    else:
        mode = "RGBA" if has_alpha else ("L" if image.mode in ("L", "1") else "RGB")
    clean = image.convert(mode) if image.mode != mode else image.copy()
    clean.info = {}  # nothing read from the file is written back
    return clean


def _encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        image.save(out, "JPEG", quality=85, optimize=False, progressive=False)
    elif fmt == "PNG":
        image.save(out, "PNG", optimize=False, compress_level=6)
    else:
        image.save(out, "WEBP", quality=85, method=4)
    return out.getvalue()


def render(data: bytes, declared: str, max_pixels: int = MAX_PIXELS) -> list[Rendition]:
    """Every size of an upload, re-encoded from pixels alone (original, display, thumb)."""
    decoded = decode(data, declared, max_pixels)
    fmt = decoded.format
    assert fmt is not None  # decode() names the format it checked
    image = _normalise(decoded, fmt)
    del decoded
    renditions: list[Rendition] = []
    for size, bound in (("original", None), ("display", DISPLAY_PX), ("thumb", THUMB_PX)):
        if bound is not None and max(image.size) > bound:
            image = image.copy() if size == "display" else image  # keep no second full copy
            image.thumbnail((bound, bound), Image.Resampling.LANCZOS)
        elif renditions:  # already small enough: the same bytes as the size above
            renditions.append(Rendition(size, renditions[-1].content_type, image.width,
                                        image.height, renditions[-1].data))
            continue
        renditions.append(Rendition(size, CONTENT_TYPES[fmt], image.width, image.height,
                                    _encode(image, fmt)))
    return renditions
