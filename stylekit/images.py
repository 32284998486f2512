"""The edge between PIL images and stylekit's tensors.

Inside stylekit images are float32 tensors ``[N, 3, H, W]`` in ``[-1, 1]``. This module is the one
place where files, bytes, PIL modes (RGBA, LA, L, P, CMYK, I;16, F ...), EXIF orientation and size
limits are handled.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

from .errors import ImageInputError

MAX_PIXELS = 40_000_000  # larger uploads are refused before decoding (decompression-bomb guard)


def open_image(source, *, max_pixels: int = MAX_PIXELS):
    """Open a path, bytes, file object, numpy array or PIL image as an RGB ``PIL.Image``.

    EXIF orientation is applied; transparency is composited on white; 16-bit and float images are
    scaled to 8 bits. Raises :class:`ImageInputError` for unreadable, corrupt or oversized input.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if isinstance(source, Image.Image):
        img = source
    elif hasattr(source, "__array_interface__"):
        import numpy as np

        arr = np.asarray(source)
        if arr.ndim not in (2, 3) or arr.size == 0:
            raise ImageInputError(f"an image array must be HxW or HxWxC, not shape {arr.shape}.")
        if arr.dtype != np.uint8:
            arr = arr.astype(np.float64)
            hi = 1.0 if arr.max(initial=0) <= 1.0 else (65535.0 if arr.max() > 255 else 255.0)
            arr = np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        img = Image.fromarray(arr)
    else:
        if isinstance(source, (bytes, bytearray)):
            fh, name = io.BytesIO(bytes(source)), "<uploaded bytes>"
        elif isinstance(source, (str, os.PathLike)):
            name = str(source)
            if not Path(name).is_file():
                raise ImageInputError(f"{name}: no such image file.")
            fh = name
        else:
            fh, name = source, getattr(source, "name", "<file>")
        previous = Image.MAX_IMAGE_PIXELS
        try:
            Image.MAX_IMAGE_PIXELS = max_pixels
            img = Image.open(fh)
            width, height = img.size
            if width * height > max_pixels:
                raise ImageInputError(
                    f"{name}: the image is {width}x{height} pixels, more than the {max_pixels:,} stylekit accepts; "
                    "resize it (e.g. to 1024 pixels on the long side) and try again.")
            img.load()
        except ImageInputError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageInputError(f"{name}: the image is too large to decode safely ({exc}); resize it first.") from exc
        except UnidentifiedImageError as exc:
            raise ImageInputError(f"{name}: not an image file stylekit can read (PNG, JPEG, WebP, BMP, TIFF, GIF...).") from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageInputError(f"{name}: the image file is corrupt or truncated ({exc}); export it again.") from exc
        finally:
            Image.MAX_IMAGE_PIXELS = previous
    if img.width * img.height > max_pixels:
        raise ImageInputError(f"the image is {img.width}x{img.height} pixels, more than the {max_pixels:,} stylekit "
                              "accepts; resize it first.")
    if img.width < 1 or img.height < 1:
        raise ImageInputError("the image is empty (zero width or height).")
    try:
        img = ImageOps.exif_transpose(img)
    except (OSError, ValueError, KeyError, TypeError):
        pass  # a broken EXIF block should not stop the image from being used
    return to_rgb(img)


def to_rgb(img):
    """Any PIL mode -> 8-bit RGB (alpha composited on white, 16-bit/float rescaled, CMYK converted)."""
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        import numpy as np

        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        if img.mode.startswith("I;16") or hi > 255:
            scale = 65535.0 if hi <= 65535 else max(hi, 1.0)
            arr = arr / scale * 255.0
        elif img.mode == "F" and hi <= 1.0 and lo >= 0.0:
            arr = arr * 255.0
        img = Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), mode="L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")


def center_crop_square(img):
    """Crop the largest centred square out of a PIL image."""
    side = min(img.size)
    left = (img.width - side) // 2
    top = (img.height - side) // 2
    return img.crop((left, top, left + side, top + side))


def image_to_tensor(source, *, size: int | None = None, crop: bool = True, device="cpu"):
    """Image (anything :func:`open_image` takes) -> ``[1, 3, size, size]`` float32 in ``[-1, 1]``.

    Non-square images are centre-cropped (``crop=True``) or padded with white; then resized with
    Lanczos (down) or bicubic (up) to ``size`` (None keeps the size).
    """
    import numpy as np
    import torch
    from PIL import Image

    img = open_image(source)
    if img.width != img.height:
        if crop:
            img = center_crop_square(img)
        else:
            side = max(img.size)
            canvas = Image.new("RGB", (side, side), (255, 255, 255))
            canvas.paste(img, ((side - img.width) // 2, (side - img.height) // 2))
            img = canvas
    if size is not None and img.width != size:
        resample = Image.LANCZOS if img.width > size else Image.BICUBIC
        img = img.resize((size, size), resample)
    arr = np.asarray(img, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).to(device)


def to_uint8(images):
    """``[N, C, H, W]`` in ``[-1, 1]`` -> ``uint8 [N, H, W, C]`` numpy (rounded; out-of-range values clipped)."""
    import torch

    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5 + 0.5).clamp(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def tensor_to_pil(images):
    """``[N, 3, H, W]`` or ``[3, H, W]`` in ``[-1, 1]`` -> a PIL image (N == 1) or a list of them."""
    from PIL import Image

    single = images.ndim == 3
    arr = to_uint8(images.unsqueeze(0) if single else images)
    pils = [Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a) for a in arr]
    return pils[0] if (single or len(pils) == 1) else pils


def make_grid(images, *, ncols: int | None = None, padding: int = 2, pad_value: float = 1.0):
    """Tile ``[N, C, H, W]`` images (in ``[-1, 1]``) into one ``[C, H', W']`` tensor (row-major)."""
    import torch

    n, c, h, w = images.shape
    ncols = ncols or int(math.ceil(math.sqrt(n)))
    nrows = int(math.ceil(n / ncols))
    grid = torch.full((c, nrows * (h + padding) + padding, ncols * (w + padding) + padding), pad_value,
                      dtype=images.dtype)
    for idx in range(n):
        r, col = divmod(idx, ncols)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top:top + h, left:left + w] = images[idx].detach().cpu()
    return grid
