"""Photos for ``kith demo``, drawn with Pillow (no downloads): skies, hills, a sun, a house."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw

SCENES = ("sunset", "meadow", "night", "seaside")


def demo_photo(seed: int, width: int = 1200, height: int = 800) -> bytes:
    """A JPEG of a small landscape, different for every ``seed``."""
    rng = random.Random(seed)
    scene = SCENES[seed % len(SCENES)]
    top, bottom = {"sunset": ((255, 120, 60), (90, 40, 120)),
                   "meadow": ((120, 190, 255), (220, 240, 255)),
                   "night": ((10, 10, 40), (40, 40, 90)),
                   "seaside": ((90, 170, 240), (200, 230, 250))}[scene]
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        t = y / height
        draw.line([(0, y), (width, y)],
                  fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    sun = (rng.randrange(width // 5, width * 4 // 5), rng.randrange(height // 8, height // 3))
    r = rng.randrange(40, 90)
    draw.ellipse((sun[0] - r, sun[1] - r, sun[0] + r, sun[1] + r),
                 fill=(250, 250, 210) if scene == "night" else (255, 220, 80))
    ground = (30, 120, 200) if scene == "seaside" else (60, 140, 60)
    for i in range(3):  # hills (or waves)
        base = height * (6 + i) // 10
        points = [(0, height)] + [(x, base - int(60 * rng.random()))
                                  for x in range(0, width + 100, 100)] + [(width, height)]
        shade = tuple(max(0, c - 25 * i) for c in ground)
        draw.polygon(points, fill=shade)
    x, y = rng.randrange(100, width - 300), height * 7 // 10
    draw.rectangle((x, y - 120, x + 160, y), fill=(200, 80, 60))
    draw.polygon([(x - 20, y - 120), (x + 80, y - 200), (x + 180, y - 120)], fill=(120, 40, 40))
    draw.rectangle((x + 60, y - 60, x + 100, y), fill=(90, 50, 20))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()
