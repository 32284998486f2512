"""Training data: an image folder (any sizes, centre-cropped and resized) or the toyfaces renderer.

Both sources hand out batches the same way, ``source.batch(n, rng, rows=None) -> [n, 3, R, R]`` float32 in
``[-1, 1]``, where ``rng`` is a ``numpy.random.Generator`` owned by the training loop (so a resumed
run draws a reproducible stream) and ``rows`` picks one training process's rows of the ``n`` drawn.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..errors import ImageInputError, InvalidArgumentError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")


def load_image_square(path: str | os.PathLike, resolution: int) -> np.ndarray:
    """Read an image file as RGB, centre-crop it to a square and resize it to ``resolution``.

    Returns uint8 ``[3, resolution, resolution]``. Modes, EXIF orientation and size limits are
    handled by :func:`stylekit.images.image_to_tensor`; unreadable files raise ImageInputError.
    """
    from ..images import image_to_tensor

    try:
        x = image_to_tensor(path, size=resolution, crop=True)
    except ImageInputError as exc:
        raise ImageInputError(f"{exc} Remove or re-save this file in the training folder.") from exc
    arr = ((x[0] + 1.0) * 127.5 + 0.5).clamp(0, 255).to(torch.uint8).numpy()
    return np.ascontiguousarray(arr)


class ImageFolderDataset(torch.utils.data.Dataset):
    """All images under ``root`` (recursively), as ``[3, R, R]`` float32 tensors in ``[-1, 1]``.

    Args:
        root: a folder holding image files of any size and mode.
        resolution: R, the side the images are centre-cropped and resized to.
        mirror: also return horizontally flipped copies (doubles the length).
        cache: keep decoded images in memory after the first read (fine for small folders).
    """

    def __init__(self, root: str | os.PathLike, resolution: int, *, mirror: bool = False, cache: bool = True):
        self.root = Path(root)
        if not self.root.is_dir():
            raise InvalidArgumentError(f"{self.root} is not a folder; pass a folder of images or 'toyfaces'.")
        if resolution < 4:
            raise InvalidArgumentError(f"resolution must be at least 4, not {resolution}")
        self.files = sorted(p for p in self.root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise InvalidArgumentError(
                f"{self.root} holds no images ({', '.join(IMAGE_SUFFIXES)}); put training images there.")
        self.resolution = resolution
        self.mirror = mirror
        self._cache: dict[int, np.ndarray] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.files) * (2 if self.mirror else 1)

    def _raw(self, index: int) -> np.ndarray:
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        arr = load_image_square(self.files[index], self.resolution)
        if self._cache is not None:
            self._cache[index] = arr
        return arr

    def __getitem__(self, index: int) -> torch.Tensor:
        """``[3, R, R]`` float32 in ``[-1, 1]``."""
        if not 0 <= index < len(self):
            raise IndexError(index)
        n = len(self.files)
        arr = self._raw(index % n)
        if index >= n:
            arr = arr[:, :, ::-1]
        return torch.from_numpy(np.ascontiguousarray(arr)).to(torch.float32) / 127.5 - 1.0

    def batch(self, n: int, rng: np.random.Generator, rows: slice | None = None) -> torch.Tensor:
        """``n`` images drawn uniformly with replacement: ``[n, 3, R, R]`` in ``[-1, 1]``.

        ``rows``: only these rows of the ``n`` drawn are loaded and returned (one rank's share; the
        draw, and so ``rng``'s state, is that of the whole batch)."""
        idx = rng.integers(0, len(self), size=n)
        return torch.stack([self[int(i)] for i in idx[rows if rows is not None else slice(None)]])


class ToyfacesSource:
    """Endless toyfaces renders: attributes from the sampler's distribution, rendered on the fly.

    ``batch(n, rng) -> [n, 3, R, R]`` in ``[-1, 1]``.
    """

    def __init__(self, resolution: int, *, device: str | torch.device = "cpu", compiled: bool = False):
        self.resolution = resolution
        self.device = device
        self.compiled = compiled  # draw through torch.compile (render_batch's compiled)

    def batch(self, n: int, rng: np.random.Generator, rows: slice | None = None) -> torch.Tensor:
        """``n`` renders ``[n, 3, R, R]``; ``rows``: only these rows of the ``n`` drawn are rendered."""
        from ..toyfaces.attributes import sample_attributes
        from ..toyfaces.renderer import render_batch

        rows = rows if rows is not None else slice(None)
        attrs = sample_attributes(n, rng=rng)
        seeds = rng.integers(0, 2 ** 31 - 1, size=n)
        img = render_batch({k: v[rows] for k, v in attrs.items()}, size=self.resolution,
                           seeds=[int(s) for s in seeds[rows]], device=self.device, compiled=self.compiled)
        return img.to(torch.float32)


def make_source(data: str, resolution: int, *, mirror: bool = False, device: str | torch.device = "cpu",
                compiled: bool = False):
    """``'toyfaces'`` -> :class:`ToyfacesSource` (``compiled``: its renderer through torch.compile); a folder path
    -> :class:`ImageFolderDataset`."""
    if data == "toyfaces":
        return ToyfacesSource(resolution, device=device, compiled=compiled)
    return ImageFolderDataset(data, resolution, mirror=mirror)
