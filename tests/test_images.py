"""Every kind of image a user can upload becomes [1, 3, R, R] in [-1, 1], or a clear ImageInputError."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from stylekit.errors import ImageInputError
from stylekit.images import image_to_tensor, make_grid, open_image, tensor_to_pil


def _png_bytes(img: Image.Image, fmt="PNG", **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "CMYK", "I;16", "I", "F", "1"])
def test_every_mode_becomes_rgb_tensor(mode):
    rng = np.random.default_rng(0)
    base = Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8))
    if mode == "I;16":
        img = Image.fromarray((rng.integers(0, 65535, (40, 30))).astype(np.uint16))
    elif mode == "F":
        img = Image.fromarray(rng.random((40, 30)).astype(np.float32))
    else:
        img = base.convert(mode)
    x = image_to_tensor(img, size=16)
    assert x.shape == (1, 3, 16, 16) and x.dtype == torch.float32
    assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0


def test_sixteen_bit_png_keeps_its_range():
    ramp = np.tile(np.linspace(0, 65535, 32).astype(np.uint16), (32, 1))
    img = open_image(_png_bytes(Image.fromarray(ramp)))
    arr = np.asarray(img)
    assert arr[:, 0].max() < 5 and arr[:, -1].min() > 250


def test_transparent_pixels_become_white():
    img = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    assert open_image(img).getpixel((3, 3)) == (255, 255, 255)


def test_exif_rotation_is_applied():
    img = Image.new("RGB", (40, 20), (0, 0, 0))
    img.paste((255, 255, 255), (0, 0, 20, 20))  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    out = open_image(_png_bytes(img, fmt="JPEG", exif=exif.tobytes()))
    assert out.size == (20, 40)
    assert np.asarray(out)[:10].mean() > 200  # the white half is now on top


def test_non_square_is_center_cropped():
    img = Image.new("RGB", (60, 20), (0, 0, 0))
    img.paste((255, 255, 255), (20, 0, 40, 20))  # white centre square
    x = image_to_tensor(img, size=8)
    assert float(x.min()) > 0.9


def test_tiny_image_is_upscaled():
    x = image_to_tensor(Image.new("RGB", (1, 1), (10, 20, 30)), size=32)
    assert x.shape == (1, 3, 32, 32)


@pytest.mark.parametrize("data, match", [
    (b"not an image at all", "not an image"),
    (b"", "not an image"),
])
def test_unreadable_bytes(data, match):
    with pytest.raises(ImageInputError, match=match):
        open_image(data)


def test_truncated_png_is_reported():
    data = _png_bytes(Image.new("RGB", (64, 64), (1, 2, 3)))
    with pytest.raises(ImageInputError, match="corrupt or truncated"):
        open_image(data[: len(data) // 2])


def test_decompression_bomb_refused_before_decoding():
    data = _png_bytes(Image.new("1", (9000, 9000)))  # tiny file, 81 megapixels
    with pytest.raises(ImageInputError, match="resize"):
        open_image(data)


def test_tensor_round_trip_and_grid():
    x = torch.rand(4, 3, 8, 8) * 2 - 1
    pils = tensor_to_pil(x)
    assert len(pils) == 4 and pils[0].size == (8, 8)
    back = image_to_tensor(pils[0])
    assert (back - x[:1]).abs().max() <= 1 / 127.5 + 1e-6
    grid = make_grid(x, ncols=2, padding=1)
    assert grid.shape == (3, 2 * 9 + 1, 2 * 9 + 1)
