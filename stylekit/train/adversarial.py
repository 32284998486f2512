"""StyleGAN2's adversarial losses and regularisers (as in StyleGAN2-ADA), and Adam with the
lazy-regularisation correction. Images are ``[N, 3, R, R]`` in ``[-1, 1]``; ``D(x)`` gives ``[N, 1]`` logits.

The losses and penalties are computed in float32 whatever precision the networks ran in (logits,
gradients and images are cast with ``.float()``, a no-op in float32 training).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .generators import mixed_ws

__all__ = ["lazy_reg_adam", "g_main_loss", "d_main_loss", "r1_penalty", "path_length_penalty"]


def lazy_reg_adam(params, lr: float, betas, reg_interval: int | None) -> torch.optim.Adam:
    """Adam with the lazy-regularisation correction (``lr * r``, ``beta ** r``, ``r = k / (k + 1)``)."""
    ratio = 1.0 if not reg_interval else reg_interval / (reg_interval + 1)
    return torch.optim.Adam(params, lr=lr * ratio, betas=tuple(b ** ratio for b in betas), eps=1e-8)


def g_main_loss(D, gen_img: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss, mean over the batch: ``softplus(-D(G(z)))``."""
    return F.softplus(-D(gen_img).float()).mean()


def d_main_loss(D, gen_img: torch.Tensor, real_img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logistic discriminator loss ``softplus(D(fake)) + softplus(-D(real))``; also returns the logits ``[N, 1]``."""
    fake_logits = D(gen_img).float()
    real_logits = D(real_img).float()
    loss = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
    return loss, fake_logits.detach(), real_logits.detach()


def r1_penalty(D, real_img: torch.Tensor) -> torch.Tensor:
    """``|grad_x D(x)|^2`` per sample ``[N]`` (create_graph for the backward through it)."""
    real = real_img.detach().requires_grad_(True)
    logits = D(real).float()
    (grad,) = torch.autograd.grad(outputs=[logits.sum()], inputs=[real], create_graph=True, only_inputs=True)
    return grad.float().square().sum(dim=[1, 2, 3])


def path_length_penalty(G, z: torch.Tensor, pl_mean: torch.Tensor, *, style_mixing_prob: float,
                        decay: float, generator=None, precision: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Path-length penalty ``(|J_w^T y| - a)^2`` per sample, with ``y ~ N(0, I) / sqrt(H W)``.

    ``precision`` is passed to ``G.synthesis`` (None: G's own). Returns ``(penalty [N], new pl_mean)``
    where the mean is ``lerp(pl_mean, mean length, decay)``.
    """
    ws = mixed_ws(G, z, style_mixing_prob=style_mixing_prob, generator=generator)
    img = G.synthesis(ws, noise_mode="random", precision=precision).float()
    noise = torch.randn(img.shape, generator=generator).to(img.device) / math.sqrt(img.shape[2] * img.shape[3])
    (grad,) = torch.autograd.grad(outputs=[(img * noise).sum()], inputs=[ws], create_graph=True, only_inputs=True)
    lengths = grad.square().sum(dim=2).mean(dim=1).sqrt()
    new_mean = pl_mean.lerp(lengths.mean().detach(), decay)
    return (lengths - new_mean).square(), new_mean
