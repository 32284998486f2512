"""Pixel and string identity of the toyfaces renderer and captions.

The digests below were computed from the renderer and ``caption`` as they stood before their code
was split into named drawing steps and caption parts; a refactor must leave every pixel and every
word unchanged. If a change is *meant* to alter the pictures or the captions, recompute the digests
(``python tests/test_toyfaces_identity.py``) and say so in the commit: the shipped generator, CLIP,
predictor and relevance table were all trained on these renders and captions.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from stylekit.toyfaces.attributes import ATTRIBUTES
from stylekit.toyfaces.captions import caption
from stylekit.toyfaces.renderer import render_batch

#: sha256 of the uint8 renders of ``_faces()`` at 16, 64 and 97 px (seeds 0..23).
RENDER_DIGEST = "a5edef30cd4df40a93acfd1afb1611cb9bad37d1195a52e368baf1c660695a35"
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


def render_digest() -> str:
    faces = _faces()
    h = hashlib.sha256()
    for size in (16, 64, 97):
        x = render_batch(faces, size=size, seeds=list(range(24)))
        h.update(((x + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def caption_digest() -> str:
    faces = _faces(400, seed=3)
    lines = [caption({k: float(v[i]) for k, v in faces.items()}, rng=np.random.default_rng(i)) for i in range(400)]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def test_renders_are_pixel_identical_to_the_reference():
    assert render_digest() == RENDER_DIGEST


def test_captions_are_word_identical_to_the_reference():
    assert caption_digest() == CAPTION_DIGEST


if __name__ == "__main__":
    print("RENDER_DIGEST =", render_digest())
    print("CAPTION_DIGEST =", caption_digest())
