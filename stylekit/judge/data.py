"""The judge's training batches: renders, generator samples labelled by their latents, and negatives.

A batch of ``n`` images (64x64, ``[-1, 1]``) holds, in order:

- renders of freshly sampled attributes (``render_fraction``), a quarter drawn at 32 px and enlarged;
- samples of the toyfaces generator for ``z ~ N(0, I)`` (``sample_fraction``), labelled with
  :func:`stylekit.toyfaces.latents.z_to_attributes` (the generator was trained to carry the
  attributes in its latent, so every sample has a label that no network produced);
- negatives (the rest): :func:`stylekit.judge.negatives.negatives` of further renders and samples.

:class:`FacePool` keeps recent clean renders and samples so that each serves about four steps (only a
quarter of a batch's faces are new each step); degradations and negatives are drawn afresh every time.

Half of the renders and samples are degraded (:func:`stylekit.train.predictor_data.degrade`: mild
blur, resampling, JPEG-like quantisation, noise, gain). Targets: ``unit [n, A]`` in ``[0, 1]``,
``attr_weight [n]`` (1 for renders, ``sample_weight`` for samples, 0 for negatives), ``face [n]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..toyfaces.attributes import attributes_to_unit, sample_attributes
from ..toyfaces.latents import z_to_attributes
from ..toyfaces.renderer import render_batch
from ..train.predictor_data import degrade
from .negatives import negatives

__all__ = ["JudgeBatch", "renders", "samples", "make_batch", "FacePool"]

SIZE = 64


@dataclass
class JudgeBatch:
    """images ``[n, 3, 64, 64]``, unit ``[n, A]``, attr_weight ``[n]``, face ``[n]`` (1 face, 0 negative)."""

    images: torch.Tensor
    unit: torch.Tensor
    attr_weight: torch.Tensor
    face: torch.Tensor


def renders(n: int, rng: np.random.Generator, *, low_res_fraction: float = 0.25) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` renders of sampled attributes ``[n, 3, 64, 64]`` and their unit targets ``[n, A]``."""
    attrs = sample_attributes(n, rng=rng)
    seeds = rng.integers(0, 2 ** 31 - 1, size=n)
    n_low = int(round(n * low_res_fraction))
    parts = []
    if n_low:
        low = render_batch({k: v[:n_low] for k, v in attrs.items()}, size=SIZE // 2, seeds=seeds[:n_low])
        parts.append(F.interpolate(low, size=(SIZE, SIZE), mode="bilinear", align_corners=False))
    if n - n_low:
        parts.append(render_batch({k: v[n_low:] for k, v in attrs.items()}, size=SIZE, seeds=seeds[n_low:]))
    return torch.cat(parts), torch.from_numpy(attributes_to_unit(attrs)).float()


@torch.no_grad()
def samples(G, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` generator samples (random noise, psi 1) resized to 64 px and their latents' unit targets ``[n, A]``."""
    z = torch.randn([n, G.z_dim], generator=gen)
    c = torch.zeros([n, G.c_dim]) if G.c_dim > 0 else None
    img = G.synthesis(G.mapping(z, c), noise_mode="random").float().clamp(-1, 1)
    if img.shape[-1] != SIZE:
        img = F.interpolate(img, size=(SIZE, SIZE), mode="bilinear", align_corners=False, antialias=True)
    return img, torch.from_numpy(attributes_to_unit(z_to_attributes(z))).float()


def make_batch(G, n: int, rng: np.random.Generator, gen: torch.Generator, *, render_fraction: float = 0.4,
               sample_fraction: float = 0.3, sample_weight: float = 0.5, degrade_p: float = 0.5) -> JudgeBatch:
    """One training batch of ``n`` images (see the module docstring)."""
    n_r = int(round(n * render_fraction))
    n_s = int(round(n * sample_fraction))
    n_neg = n - n_r - n_s
    x_r, t_r = renders(n_r + (n_neg + 1) // 2, rng)
    x_s, t_s = samples(G, n_s + n_neg // 2, gen)
    pos = degrade(torch.cat([x_r[:n_r], x_s[:n_s]]), gen, p=degrade_p)
    neg = negatives(torch.cat([x_r[n_r:], x_s[n_s:]]), gen)
    images = torch.cat([pos, neg])
    unit = torch.cat([t_r[:n_r], t_s[:n_s], torch.zeros(n_neg, t_r.shape[1])])
    weight = torch.cat([torch.ones(n_r), torch.full((n_s,), float(sample_weight)), torch.zeros(n_neg)])
    face = torch.cat([torch.ones(n_r + n_s), torch.zeros(n_neg)])
    return JudgeBatch(images, unit, weight, face)


class FacePool:
    """Recent clean faces (renders and samples, with targets) reused across steps; ``fresh`` new ones per step.

    Args:
        G: the generator whose samples are drawn. size: faces kept (each kind half).
        render_fraction / sample_fraction: the batch mix (the rest negatives, made from pool faces).
    """

    def __init__(self, G, size: int, rng: np.random.Generator, gen: torch.Generator, *, chunk: int = 128):
        self.G, self.rng, self.gen = G, rng, gen
        half = size // 2
        r = [renders(min(chunk, half - i), rng) for i in range(0, half, chunk)]
        s = [samples(G, min(chunk, half - i), gen) for i in range(0, half, chunk)]
        self.images = {"renders": torch.cat([x for x, _ in r]).half(), "samples": torch.cat([x for x, _ in s]).half()}
        self.unit = {"renders": torch.cat([t for _, t in r]), "samples": torch.cat([t for _, t in s])}

    def _take(self, kind: str, n: int, fresh: int) -> tuple[torch.Tensor, torch.Tensor]:
        if fresh:
            x_new, t_new = renders(fresh, self.rng) if kind == "renders" else samples(self.G, fresh, self.gen)
            slots = torch.from_numpy(self.rng.choice(len(self.unit[kind]), size=fresh, replace=False))
            self.images[kind][slots] = x_new.half()
            self.unit[kind][slots] = t_new
        idx = torch.from_numpy(self.rng.choice(len(self.unit[kind]), size=n, replace=False))
        return self.images[kind][idx].float(), self.unit[kind][idx]

    def batch(self, n: int, *, render_fraction: float = 0.4, sample_fraction: float = 0.3, sample_weight: float = 0.5,
              degrade_p: float = 0.5, fresh_fraction: float = 0.25) -> JudgeBatch:
        """A batch like :func:`make_batch`, its faces from the pool (``fresh_fraction`` of them new)."""
        n_r = int(round(n * render_fraction))
        n_s = int(round(n * sample_fraction))
        n_neg = n - n_r - n_s
        x_r, t_r = self._take("renders", n_r + (n_neg + 1) // 2, int(round(n_r * fresh_fraction)))
        x_s, t_s = self._take("samples", n_s + n_neg // 2, int(round(n_s * fresh_fraction)))
        pos = degrade(torch.cat([x_r[:n_r], x_s[:n_s]]), self.gen, p=degrade_p)
        neg = negatives(torch.cat([x_r[n_r:], x_s[n_s:]]), self.gen)
        unit = torch.cat([t_r[:n_r], t_s[:n_s], torch.zeros(n_neg, t_r.shape[1])])
        weight = torch.cat([torch.ones(n_r), torch.full((n_s,), float(sample_weight)), torch.zeros(n_neg)])
        face = torch.cat([torch.ones(n_r + n_s), torch.zeros(n_neg)])
        return JudgeBatch(torch.cat([pos, neg]), unit, weight, face)
