"""Draw the README's toyfaces grids.

``python docs/toyfaces_grids.py [GENERATOR]`` (default ``toyfaces``):
``docs/toyfaces-samples.png``: the generator's samples of seeds 0-15 (``Latent.seed_z``, psi 1, constant noise),
two rows of eight, each 64x64 image shown at 128 px; ``docs/toyfaces-renders.png``: the renders of the same
latents' attributes (``toyfaces.latents.render_targets``), laid out the same way, so the two compare tile by tile.

``python docs/toyfaces_grids.py --sharpening FILE [FILE ...]``: ``docs/toyfaces-sharpening.png``, one row of
the renders of seeds 777,000-777,007, then one row per generator file in the order given (each image at 192 px),
to show how a generator's training changed its samples.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import stylekit
from stylekit.images import tensor_to_pil
from stylekit.latent import Latent
from stylekit.toyfaces.latents import render_targets

DOCS = Path(__file__).resolve().parent
SEEDS = range(16)
SHARPENING_SEEDS = range(777_000, 777_008)
TILE, BORDER, PER_ROW = 128, 2, 8


def grid(images: torch.Tensor, tile: int = TILE) -> Image.Image:
    """``[N, 3, 64, 64]`` in [-1, 1] -> rows of ``PER_ROW`` tiles of ``tile`` px (nearest), black borders."""
    rows = -(-images.shape[0] // PER_ROW)
    step = tile + BORDER
    canvas = np.zeros((rows * step - BORDER, PER_ROW * step - BORDER, 3), np.uint8)
    for i, img in enumerate(images):
        pixels = np.asarray(tensor_to_pil(img).resize((tile, tile), Image.NEAREST))
        r, c = divmod(i, PER_ROW)
        canvas[r * step:r * step + tile, c * step:c * step + tile] = pixels
    return Image.fromarray(canvas)


def samples(G, seeds) -> tuple[torch.Tensor, torch.Tensor]:
    """The latents ``z [N, z_dim]`` of ``seeds`` and ``G``'s images of them ``[N, 3, 64, 64]`` (psi 1,
    constant noise, clamped to [-1, 1])."""
    z = Latent.seed_z(G, list(seeds))
    with torch.no_grad():
        return z, G.synthesis(G.mapping(z, None, truncation_psi=1.0), noise_mode="const").clamp(-1, 1)


def main(generator: str = "toyfaces") -> None:
    z, images = samples(stylekit.load_generator(generator, device="cpu"), SEEDS)
    grid(images).save(DOCS / "toyfaces-samples.png")
    grid(render_targets(z, 64)).save(DOCS / "toyfaces-renders.png")


def sharpening(files: list[str]) -> None:
    rows = []
    for f in files:
        z, images = samples(stylekit.load_generator(f, device="cpu"), SHARPENING_SEEDS)
        rows.append(images)
    grid(torch.cat([render_targets(z, 64)] + rows), tile=192).save(DOCS / "toyfaces-sharpening.png")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--sharpening"]:
        sharpening(sys.argv[2:])
    else:
        main(*sys.argv[1:2])
