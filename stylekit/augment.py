"""Differentiable random image jitter (affine, colour, blur, pixel noise) for ``[N, 3, H, W]`` images.

Used to train the toyfaces CLIP (so it reads imperfect GAN samples) and by text-guided latent
optimisation (:func:`stylekit.text.optimize_latent` averages its CLIP term over jittered copies).
Every operation is differentiable in the images; the random parameters come from a CPU
``torch.Generator``, so a seed gives the same jitter on any device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["augment"]


def augment(images: torch.Tensor, generator: torch.Generator, *, strength: float = 1.0) -> torch.Tensor:
    """Random photometric/geometric jitter that mimics imperfect GAN samples.

    Args:
        images: ``[N, 3, H, W]`` in ``[-1, 1]``.
        generator: torch CPU generator for the random parameters.
        strength: scales every jitter range (0 disables augmentation).

    Returns:
        ``[N, 3, H, W]`` in ``[-1, 1]``: per image a small affine jitter (scale 0.92-1.08, rotation
        +-6 degrees, shift +-5%), brightness/contrast/saturation jitter, with probability 0.3 a blur
        by down-sampling to 50-75% and back, and with probability 0.5 Gaussian pixel noise.
    """
    if strength <= 0:
        return images
    n, _, h, w = images.shape
    dev = images.device

    def u(lo, hi, *shape):
        return (torch.rand(n, *shape, generator=generator) * (hi - lo) + lo).to(dev)

    s = strength
    scale = 1.0 + u(-0.08, 0.08) * s
    angle = u(-6.0, 6.0) * s * math.pi / 180.0
    shift = u(-0.05, 0.05, 2) * 2.0 * s
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    x = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)

    x = (x + 1.0) * 0.5
    gray = x.mean(dim=1, keepdim=True)
    x = gray + (x - gray) * (1.0 + u(-0.2, 0.2, 1, 1, 1) * s)                       # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = mean + (x - mean) * (1.0 + u(-0.2, 0.2, 1, 1, 1) * s) + u(-0.08, 0.08, 1, 1, 1) * s  # contrast, brightness

    blur = (torch.rand(n, generator=generator) < 0.3 * min(s, 1.0)).to(dev)
    if bool(blur.any()):
        factor = float(torch.empty(1).uniform_(0.5, 0.75, generator=generator))
        small = F.interpolate(x, size=(max(4, round(h * factor)), max(4, round(w * factor))),
                              mode="bilinear", align_corners=False, antialias=True)
        blurred = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
        x = torch.where(blur.view(n, 1, 1, 1), blurred, x)
    noisy = (torch.rand(n, 1, 1, 1, generator=generator) < 0.5).to(dev)
    sigma = u(0.0, 0.04, 1, 1, 1) * s
    x = x + torch.where(noisy, sigma, torch.zeros_like(sigma)) * torch.randn(x.shape, generator=generator).to(dev)
    return (x.clamp(0.0, 1.0) * 2.0 - 1.0).contiguous()
