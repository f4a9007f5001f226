"""The rules every uploaded photo passes, on bytes built with Pillow in memory."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageCms

from kith.media.imaging import InvalidImage, render, sniff


def encoded(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def test_the_type_comes_from_the_bytes() -> None:
    rgb = Image.new("RGB", (8, 8))
    assert sniff(encoded(rgb, "JPEG")) == "JPEG"
    assert sniff(encoded(rgb, "PNG")) == "PNG"
    assert sniff(encoded(rgb, "WEBP")) == "WEBP"
    assert sniff(encoded(rgb, "GIF")) is None
    assert sniff(b"<svg xmlns='http://www.w3.org/2000/svg'/>") is None


def test_a_webp_keeps_its_format_and_alpha_and_gets_three_sizes() -> None:
    data = encoded(Image.new("RGBA", (2000, 500), (1, 2, 3, 100)), "WEBP", lossless=True)
    sizes = {r.size: r for r in render(data, "image/webp")}
    assert {r.content_type for r in sizes.values()} == {"image/webp"}
    assert (sizes["original"].width, sizes["display"].width, sizes["thumb"].width) == \
        (2000, 1600, 320)
    assert Image.open(io.BytesIO(sizes["thumb"].data)).mode == "RGBA"


def test_a_small_photo_reuses_one_encoding_for_every_size() -> None:
    sizes = render(encoded(Image.new("RGB", (100, 80)), "JPEG"), "image/jpeg; charset=x")
    assert len({id(r.data) for r in sizes}) == 1


def test_an_icc_profile_is_converted_to_srgb_and_not_kept() -> None:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for icc in (profile, srgb):
        data = encoded(Image.new("RGB", (40, 40), (10, 200, 30)), "JPEG", icc_profile=icc)
        original = render(data, "image/jpeg")[0]
        assert "icc_profile" not in Image.open(io.BytesIO(original.data)).info


def test_palette_and_grayscale_images_are_reencoded() -> None:
    palette = Image.new("P", (30, 30))
    palette.info["transparency"] = 0
    assert Image.open(io.BytesIO(render(encoded(palette, "PNG"), "image/png")[0].data)) \
        .mode == "RGBA"
    gray = render(encoded(Image.new("L", (30, 30)), "JPEG"), "image/jpeg")[0]
    assert Image.open(io.BytesIO(gray.data)).mode == "L"


@pytest.mark.parametrize("declared", ["image/png", "", "application/octet-stream"])
def test_a_declared_type_that_is_not_what_the_bytes_are_is_refused(declared: str) -> None:
    with pytest.raises(InvalidImage) as refused:
        render(encoded(Image.new("RGB", (8, 8)), "JPEG"), declared)
    assert refused.value.code == "invalid_image"


def test_more_pixels_than_the_limit_is_refused_before_decoding() -> None:
    data = encoded(Image.new("1", (3000, 2000)), "PNG")
    with pytest.raises(InvalidImage, match="megapixels"):
        render(data, "image/png", max_pixels=5_000_000)
    assert render(data, "image/png", max_pixels=6_000_000)[0].width == 3000
