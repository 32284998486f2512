"""Draw the README's toyfaces grids: ``python docs/toyfaces_grids.py [GENERATOR]`` (default ``toyfaces``).

``docs/toyfaces-samples.png``: the generator's samples of seeds 0-15 (``Latent.seed_z``, psi 1, constant noise),
two rows of eight, each 64x64 image shown at 128 px; ``docs/toyfaces-renders.png``: the renders of the same
latents' attributes (``toyfaces.latents.render_targets``), laid out the same way, so the two compare tile by tile.
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
TILE, BORDER, PER_ROW = 128, 2, 8


def grid(images: torch.Tensor) -> Image.Image:
    """``[N, 3, 64, 64]`` in [-1, 1] -> rows of ``PER_ROW`` tiles of ``TILE`` px (nearest), black borders."""
    rows = -(-images.shape[0] // PER_ROW)
    step = TILE + BORDER
    canvas = np.zeros((rows * step - BORDER, PER_ROW * step - BORDER, 3), np.uint8)
    for i, img in enumerate(images):
        tile = np.asarray(tensor_to_pil(img).resize((TILE, TILE), Image.NEAREST))
        r, c = divmod(i, PER_ROW)
        canvas[r * step:r * step + TILE, c * step:c * step + TILE] = tile
    return Image.fromarray(canvas)


def main(generator: str = "toyfaces") -> None:
    G = stylekit.load_generator(generator, device="cpu")
    z = Latent.seed_z(G, list(SEEDS))
    with torch.no_grad():
        samples = G.synthesis(G.mapping(z, None, truncation_psi=1.0), noise_mode="const").clamp(-1, 1)
    grid(samples).save(DOCS / "toyfaces-samples.png")
    grid(render_targets(z, 64)).save(DOCS / "toyfaces-renders.png")


if __name__ == "__main__":
    main(*sys.argv[1:2])
