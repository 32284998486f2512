"""Batch rendering for the gallery: synthesis in small chunks, pictures at display size, full-size downloads.

A 1024 px generator makes 12 MB of float pixels per image and several hundred MB of activations per image in
one synthesis call, so a tab that rendered 16 seeds (or 24 morph frames, or a 6 x 6 mixing grid) in one call
and kept the results at full size needed 11-15 GB. Here every batch is rendered :func:`chunk_size` codes at a
time under ``no_grad``; each chunk is shrunk to the size it is shown at as soon as it is done, and its
full-size pictures go straight into a PNG file (or a zip of them) offered as a download, so peak memory does
not grow with the number of images. The display sizes are :data:`demos.common.DISPLAY_MAX` (one picture) and
:data:`GRID_TILE` (a tile of a grid, a morph frame).

Shapes: codes are ``[N, num_ws, w_dim]`` W+ tensors; images ``[N, 3, H, W]`` floats in ``[-1, 1]``.
"""

from __future__ import annotations

import tempfile
import threading
import time
import zipfile
from pathlib import Path

from stylekit.images import to_uint8

from .common import DISPLAY_MAX, shrink

GRID_TILE = 256  # side of one tile of a grid (Generate, Style mixing) and of a Morph frame, in pixels
CHUNK_PIXELS = 2 * 1024 * 1024  # at most this many output pixels per synthesis call (2 images at 1024)
DOWNLOAD_MAX_AGE_S = 3600.0  # full-size downloads older than this are deleted when the next one is written
PNG_LEVEL = 1  # zlib level of the full-size PNGs: fast to write (the files are about 1.3x those of level 6)
_ROOT: dict = {}
_ROOT_LOCK = threading.Lock()


#: generators above this side are "large": the tabs that render batches default to fewer pictures for them
#: (a 1024 px face takes about 0.23 s to synthesize in bfloat16 on a 2-core AMX CPU, about 0.4 s in the gallery
#: with its display copy and full-size PNG; the gallery's bar for a default action is 5 s)
LARGE_MODEL_PX = 256


def sized_default(G, small, large):
    """``small`` for a generator up to :data:`LARGE_MODEL_PX` (or when none is loaded), ``large`` above it: the
    default batch of a tab (Generate's seeds, Style mixing's grid, Morph's frames) sized to the model's cost."""
    return small if G is None or int(G.img_resolution) <= LARGE_MODEL_PX else large


def default_for(model: str | None, small, large):
    """:func:`sized_default` for the model called ``model`` (loaded; None or a model that fails to load: ``small``)."""
    import gradio as gr

    from .common import get_generator

    if model is None:
        return small
    try:
        return sized_default(get_generator(model), small, large)
    except gr.Error:  # not installed (yet): the value follows when a model loads
        return small


def chunk_size(G) -> int:
    """Codes per synthesis call for ``G``: 2 at 1024 px, 8 at 512, more for smaller generators."""
    return max(1, CHUNK_PIXELS // (int(G.img_resolution) ** 2))


def download_dir() -> Path:
    """The process's folder of full-size downloads (made once; files older than an hour are pruned)."""
    with _ROOT_LOCK:
        if "dir" not in _ROOT:
            _ROOT["dir"] = Path(tempfile.mkdtemp(prefix="stylekit-downloads-"))
        root = _ROOT["dir"]
    now = time.time()
    for path in root.iterdir():
        try:
            if now - path.stat().st_mtime > DOWNLOAD_MAX_AGE_S:
                path.unlink()
        except OSError:
            pass  # another thread pruned it, or it is being written
    return root


def new_download(stem: str, suffix: str) -> Path:
    """A fresh file name in :func:`download_dir` (``stem-XXXX.suffix``)."""
    handle = tempfile.NamedTemporaryFile(dir=download_dir(), prefix=f"{stem}-", suffix=suffix, delete=False)
    handle.close()
    return Path(handle.name)


def save_png(image, stem: str) -> str:
    """One ``[1, 3, H, W]`` image as a full-size PNG download; returns its path."""
    from PIL import Image

    path = new_download(stem, ".png")
    Image.fromarray(to_uint8(image[:1])[0]).save(path, compress_level=PNG_LEVEL)
    return str(path)


class ZipOfPngs:
    """A zip of full-size PNGs written one image at a time (``add``), closed by ``close() -> path``."""

    def __init__(self, stem: str):
        self.path = new_download(stem, ".zip")
        self._zip = zipfile.ZipFile(self.path, "w", compression=zipfile.ZIP_STORED)  # PNGs are compressed already

    def add(self, images, names: list[str]) -> None:
        import io

        from PIL import Image

        for arr, name in zip(to_uint8(images), names):
            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, format="PNG", compress_level=PNG_LEVEL)
            self._zip.writestr(f"{name}.png", buf.getvalue())

    def close(self) -> str:
        self._zip.close()
        return str(self.path)


def render_chunks(G, ws, *, size: int, names: list[str] | None = None, archive: ZipOfPngs | None = None,
                  noise_mode: str = "const", renderer=None):
    """Render W+ codes ``ws [N, num_ws, w_dim]`` :func:`chunk_size` at a time, without gradients.

    Each chunk is shrunk to ``size`` (``[n, 3, size, size]``, area-averaged; smaller generators are enlarged
    with nearest neighbour) on the CPU before the next one is drawn; with ``archive``, its full-size pictures
    are added to it as ``names[i].png``. ``renderer(ws) -> images`` replaces ``G.synthesis`` (a PTI-tuned
    generator, a latent's own noise). Returns the display-size images ``[N, 3, size, size]`` on the CPU.
    """
    import torch

    step = chunk_size(G)
    shown = []
    with torch.no_grad():
        for i in range(0, ws.shape[0], step):
            part = ws[i:i + step]
            images = renderer(part) if renderer is not None else G.synthesis(part, noise_mode=noise_mode)
            if archive is not None:
                archive.add(images, (names or [f"{j:03d}" for j in range(ws.shape[0])])[i:i + step])
            shown.append(shrink(images.detach().float().cpu(), size))
            del images
    return torch.cat(shown)


__all__ = ["DISPLAY_MAX", "GRID_TILE", "CHUNK_PIXELS", "chunk_size", "render_chunks", "save_png", "ZipOfPngs",
           "download_dir"]
