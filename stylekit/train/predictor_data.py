"""Training data of the toyfaces attribute predictor: renders made on the fly, degraded like GAN samples.

Three quarters of a batch are rendered at 64x64 and one quarter at 32x32 and upsampled (like a
low-resolution generator); about half of a batch is degraded the way GAN samples and re-encoded
images are: slight blur, a down/up resampling, sensor-like noise, JPEG-like 8x8 block-DCT
quantisation and a tiny gain/offset change. A :class:`RenderPool` of recent renders lets each
render serve about two steps.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..toyfaces.attributes import attributes_to_unit, sample_attributes
from ..toyfaces.predictor import INPUT_SIZE
from ..toyfaces.renderer import render_batch

__all__ = ["degrade", "make_batch", "RenderPool"]


# ----------------------------------------------------------------------------------------------
# Degradations (all vectorised over the batch; images [N, 3, H, W] in [-1, 1]).


def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-image Gaussian blur. sigma: [N] pixels (0 leaves the image unchanged)."""
    n, c, h, w = x.shape
    r = 3
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    s = sigma.clamp(min=1e-3).view(n, 1)
    k = torch.exp(-0.5 * (t[None] / s) ** 2)
    k = k / k.sum(1, keepdim=True)                                    # [N, 7]
    k = k.repeat_interleave(c, 0)                                      # [N*C, 7]
    y = x.reshape(1, n * c, h, w)
    y = F.pad(y, (r, r, r, r), mode="replicate")
    y = F.conv2d(y, k.view(n * c, 1, 1, 2 * r + 1), groups=n * c)
    y = F.conv2d(y, k.view(n * c, 1, 2 * r + 1, 1), groups=n * c)
    return y.view(n, c, h, w)


def _dct_matrix(n: int, dtype, device) -> torch.Tensor:
    i = torch.arange(n, dtype=dtype, device=device)
    m = torch.cos(math.pi * (2 * i[None, :] + 1) * i[:, None] / (2 * n)) * math.sqrt(2.0 / n)
    m[0] /= math.sqrt(2.0)
    return m  # orthonormal: m @ m.T = I


def _jpeg_like(x: torch.Tensor, quality_step: torch.Tensor) -> torch.Tensor:
    """Quantise 8x8 block DCT coefficients (coarser at high frequencies), like JPEG.

    quality_step: [N] base quantisation step in [0, 1] units (0 leaves the image unchanged).
    """
    n, c, h, w = x.shape
    if h % 8 or w % 8:
        return x
    d = _dct_matrix(8, x.dtype, x.device)
    blocks = x.reshape(n, c, h // 8, 8, w // 8, 8).permute(0, 1, 2, 4, 3, 5)  # [N,C,hb,wb,8,8]
    coef = d @ blocks @ d.T
    f = torch.arange(8, dtype=x.dtype, device=x.device)
    weight = 1.0 + (f[:, None] + f[None, :]) * 0.5                    # coarser high frequencies
    step = (quality_step.view(n, 1, 1, 1, 1, 1) * weight).clamp(min=1e-6)
    q = torch.round(coef / step) * step
    q = torch.where(quality_step.view(n, 1, 1, 1, 1, 1) > 0, q, coef)
    out = d.T @ q @ d
    return out.permute(0, 1, 2, 4, 3, 5).reshape(n, c, h, w)


def degrade(images: torch.Tensor, generator: torch.Generator, *, p: float = 0.5) -> torch.Tensor:
    """Randomly degrade about a fraction ``p`` of a batch (each degradation independently).

    images: [N, 3, H, W] in [-1, 1]; returns the same shape, clamped to [-1, 1]. Degradations:
    blur (sigma up to 0.8 px), down/up resampling (to 60-90% size), Gaussian noise (std up to
    0.05), JPEG-like block-DCT quantisation, gain in [0.96, 1.04] and offset in [-0.03, 0.03].
    """
    n = images.shape[0]
    dev = images.device

    def rand(*shape):
        return torch.rand(*shape, generator=generator).to(dev)

    chosen = rand(n) < p
    x = images
    # 1. blur
    use = chosen & (rand(n) < 0.5)
    sigma = torch.where(use, 0.3 + 0.5 * rand(n), torch.zeros(n, device=dev))
    if bool(use.any()):
        x = torch.where(use.view(n, 1, 1, 1), _gaussian_blur(x, sigma), x)
    # 2. down/up resampling (one factor for the chosen subset)
    use = chosen & (rand(n) < 0.35)
    if bool(use.any()):
        h, w = x.shape[-2:]
        factor = float(0.6 + 0.3 * rand(1))
        small = F.interpolate(x, size=(max(8, int(h * factor)), max(8, int(w * factor))),
                              mode="bilinear", align_corners=False, antialias=True)
        back = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
        x = torch.where(use.view(n, 1, 1, 1), back, x)
    # 3. JPEG-like quantisation
    use = chosen & (rand(n) < 0.4)
    if bool(use.any()):
        step = torch.where(use, 0.02 + 0.08 * rand(n), torch.zeros(n, device=dev))
        x = _jpeg_like(x, step)
    # 4. noise
    use = chosen & (rand(n) < 0.5)
    std = torch.where(use, 0.05 * rand(n), torch.zeros(n, device=dev)).view(n, 1, 1, 1)
    x = x + std * torch.randn(x.shape, generator=generator).to(dev)
    # 5. gain / offset
    use = (chosen & (rand(n) < 0.5)).view(n, 1, 1, 1)
    gain = 0.96 + 0.08 * rand(n, 1, 1, 1)
    offset = 0.06 * rand(n, 1, 1, 1) - 0.03
    x = torch.where(use, x * gain + offset, x)
    return x.clamp(-1.0, 1.0)


# ----------------------------------------------------------------------------------------------
# Data.


def make_batch(n: int, rng: np.random.Generator, generator: torch.Generator, *,
               device="cpu", degrade_p: float = 0.5, low_res_fraction: float = 0.25
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Fresh random renders and their unit-scale targets.

    Returns images [n, 3, 64, 64] in [-1, 1] and targets [n, A] in [0, 1] (ATTRIBUTES order).
    """
    attrs = sample_attributes(n, rng=rng)
    seeds = rng.integers(0, 2 ** 31 - 1, size=n)
    n_low = int(round(n * low_res_fraction))
    parts = []
    if n_low:
        low = render_batch({k: v[:n_low] for k, v in attrs.items()}, size=INPUT_SIZE // 2,
                           seeds=seeds[:n_low], device=device)
        parts.append(F.interpolate(low, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                                   align_corners=False))
    if n - n_low:
        parts.append(render_batch({k: v[n_low:] for k, v in attrs.items()}, size=INPUT_SIZE,
                                  seeds=seeds[n_low:], device=device))
    images = torch.cat(parts)
    if degrade_p > 0:
        images = degrade(images, generator, p=degrade_p)
    targets = torch.from_numpy(attributes_to_unit(attrs)).to(device)
    return images, targets


class RenderPool:
    """A pool of clean renders refreshed a little every step, so each render serves ~2 steps.

    ``fresh`` new renders replace random pool entries every step; a batch is the fresh renders
    plus random pool entries, then degraded independently. Images are kept as float16.
    """

    def __init__(self, size: int, rng: np.random.Generator, generator: torch.Generator, *,
                 device="cpu", chunk: int = 64):
        self.rng, self.generator, self.device = rng, generator, device
        images, targets = [], []
        for start in range(0, size, chunk):
            x, t = make_batch(min(chunk, size - start), rng, generator, device=device, degrade_p=0)
            images.append(x.half())
            targets.append(t)
        self.images, self.targets = torch.cat(images), torch.cat(targets)

    def batch(self, n: int, fresh: int, degrade_p: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
        """n images [n, 3, 64, 64] in [-1, 1] (``fresh`` of them new) and targets [n, A]."""
        x_new, t_new = make_batch(fresh, self.rng, self.generator, device=self.device, degrade_p=0)
        size = self.images.shape[0]
        old = torch.from_numpy(self.rng.choice(size, size=n - fresh, replace=False)).to(self.device)
        x = torch.cat([x_new, self.images[old].float()])
        t = torch.cat([t_new, self.targets[old]])
        slots = torch.from_numpy(self.rng.choice(size, size=fresh, replace=False)).to(self.device)
        self.images[slots] = x_new.half()
        self.targets[slots] = t_new
        return degrade(x, self.generator, p=degrade_p), t
