"""Pixel and string identity of the toyfaces renderer and captions.

A refactor must leave every picture and every word unchanged: the shipped generator, CLIP, predictor and
relevance table were all trained on these renders and captions. If a change is *meant* to alter them,
recompute the references (``python tests/test_toyfaces_identity.py --write``) and say so in the commit.

Captions are compared by digest (strings are the same everywhere). Renders are not: torch's float32
elementwise kernels round a few values differently on different CPUs (the uint8 digest of the same code
was a5edef30... on an AVX-512 Xeon and b65ba754... on an AVX2 EPYC), so a byte digest fails for no change.
The reference is instead the renders' 8x8 block means (float64, ``[0, 1]`` scale) at 16, 64 and 97 px,
``tests/fixtures/toyfaces/render_blocks.npz``, compared within :data:`BLOCK_TOL`: float32 rounding
differences are of the order of 1e-7 per pixel (every edge is anti-aliased, so none is amplified), far inside
it, while one pixel changed by one uint8 level moves its block's mean by at least 2.3e-5
(a 13x13 block at 97 px), so any real change is caught. The blocks were written on 2026-12-03 from the code
whose renders matched the earlier byte digest (the renderer is unchanged since).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from stylekit.toyfaces.attributes import ATTRIBUTES
from stylekit.toyfaces.captions import caption
from stylekit.toyfaces.renderer import render_batch

#: 8x8 block means of the renders of ``_faces()`` at 16, 64 and 97 px (seeds 0..23): ``s16``, ``s64``, ``s97``
#: arrays ``[24, 3, 8, 8]``.
RENDER_BLOCKS = Path(__file__).parent / "fixtures" / "toyfaces" / "render_blocks.npz"
BLOCK_TOL = 1e-5
#: sha256 of the captions of ``_faces(400, seed=3)`` (face i captioned with rng seed i), one per line.
CAPTION_DIGEST = "4245276c4b93c92684c07f6893d358b82905638cb64cfe10743c248a98662bc7"


def _faces(n: int = 24, seed: int = 7) -> dict[str, np.ndarray]:
    """``n`` faces drawn uniformly over every attribute's range (binaries as fractions in [0, 1]);
    faces 0 and 1 sit at every attribute's low and high end."""
    rng = np.random.default_rng(seed)
    out = {}
    for spec in ATTRIBUTES:
        v = rng.uniform(spec.low, spec.high, size=n).astype(np.float32)
        v[:2] = (spec.low, spec.high)
        out[spec.name] = v
    return out


def _renders(size: int) -> torch.Tensor:
    """The renders of ``_faces()`` (seeds 0..23) at ``size`` px: ``[24, 3, size, size]`` float64 in ``[0, 1]``."""
    return (render_batch(_faces(), size=size, seeds=list(range(24))).double() + 1.0) / 2.0


def _blocks(x: torch.Tensor) -> np.ndarray:
    """8x8 block means ``[N, 3, 8, 8]`` of images ``[N, 3, H, W]``."""
    return F.adaptive_avg_pool2d(x, 8).numpy()


def render_blocks() -> dict[str, np.ndarray]:
    """``{"s16" | "s64" | "s97": [24, 3, 8, 8]}``: the renders' 8x8 block means on the ``[0, 1]`` scale."""
    return {f"s{size}": _blocks(_renders(size)) for size in (16, 64, 97)}


def caption_digest() -> str:
    faces = _faces(400, seed=3)
    lines = [caption({k: float(v[i]) for k, v in faces.items()}, rng=np.random.default_rng(i)) for i in range(400)]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def test_renders_are_pixel_identical_to_the_reference():
    reference = np.load(RENDER_BLOCKS)
    for key, blocks in render_blocks().items():
        worst = float(np.abs(blocks - reference[key]).max())
        assert worst < BLOCK_TOL, f"{key}: a block mean moved by {worst:.2e} (tolerance {BLOCK_TOL:g})"


def test_the_block_reference_would_catch_one_pixel_one_level_off():
    x = _renders(97)
    x[5, 1, 60, 33] += 1.0 / 255.0  # one pixel, one uint8 level
    moved = np.abs(_blocks(x) - np.load(RENDER_BLOCKS)["s97"]).max()
    assert moved > 2 * BLOCK_TOL


def test_captions_are_word_identical_to_the_reference():
    assert caption_digest() == CAPTION_DIGEST


if __name__ == "__main__":
    if "--write" in sys.argv:
        RENDER_BLOCKS.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(RENDER_BLOCKS, **render_blocks())
        print("wrote", RENDER_BLOCKS)
    print("CAPTION_DIGEST =", caption_digest())
