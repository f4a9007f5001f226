"""Photos for the browser tests, drawn with Pillow (no files, nothing downloaded)."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw


def landscape(width: int = 640, height: int = 480) -> bytes:
    """A PNG of a sun over a green hill."""
    img = Image.new("RGB", (width, height), (120, 180, 230))
    draw = ImageDraw.Draw(img)
    draw.ellipse((width * 0.65, height * 0.1, width * 0.85, height * 0.1 + width * 0.2),
                 fill=(250, 210, 60))
    draw.ellipse((-width * 0.3, height * 0.55, width * 1.3, height * 1.6), fill=(70, 140, 60))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()
