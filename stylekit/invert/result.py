"""What every inversion method returns: :class:`InversionResult`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..latent import Latent


@dataclass
class InversionResult:
    """The outcome of :func:`stylekit.invert.invert`, whatever the method.

    Attributes:
        latent: the code as a :class:`~stylekit.latent.Latent`: space ``'w'`` (every row of its
            tensor ``[1, num_ws, w_dim]`` equal) or ``'w+'``, carrying the optimised ``noise`` maps and,
            for PTI, the tuned ``generator``, so ``result.latent.render(G)`` reproduces ``image``.
        image: the reconstruction ``[1, 3, R, R]`` in about ``[-1, 1]`` (rendered with ``noise`` and,
            for PTI, the tuned ``generator``).
        target: the image that was inverted, ``[1, 3, R, R]`` in ``[-1, 1]``.
        method: ``'optimize'``, ``'encoder'``, ``'restyle'`` or ``'pti'``.
        loss_history: one dict per step (``step``, ``stage``, ``loss`` and its terms).
        perceptual: which perceptual loss was used (``'lpips-vgg'``, ``'toyfaces'``,
            ``'random-cnn'`` or ``'none'``).
        seconds: wall-clock time of the inversion.
        generator_delta: PTI only: ``{parameter name: tuned - original}`` (float16) for every tensor
            that changed; :func:`stylekit.invert.pti.apply_delta` rebuilds the tuned generator.
        generator_delta_bytes: size of ``generator_delta`` in bytes.
        extra: method-specific details (e.g. the pivot's loss for PTI, the ReStyle per-step images).

    ``space``, ``noise`` and ``generator`` read the latent's own fields.
    """

    latent: Latent
    image: torch.Tensor
    target: torch.Tensor
    method: str
    loss_history: list[dict] = field(default_factory=list)
    perceptual: str = "none"
    seconds: float = 0.0
    generator_delta: dict[str, torch.Tensor] | None = None
    generator_delta_bytes: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def space(self) -> str:
        """The space the method searched: ``'w'`` or ``'w+'`` (the latent's space)."""
        return self.latent.space

    @property
    def noise(self) -> list[torch.Tensor] | None:
        """The per-layer noise maps ``[1, 1, H, W]`` (order of ``G.noise_shapes()``) when they were
        optimised, else None (the generator's stored noise was used)."""
        return self.latent.noise

    @property
    def generator(self) -> torch.nn.Module | None:
        """PTI only: the tuned copy of the generator (the original is untouched); else None."""
        return self.latent.generator

    # --- quality ------------------------------------------------------------------------------
    def mse(self) -> float:
        """Mean squared error between ``image`` and ``target`` in ``[-1, 1]`` units."""
        return float((self.image.detach().float().cpu() - self.target.detach().float().cpu()).square().mean())

    def psnr(self) -> float:
        """PSNR in dB of ``image`` against ``target`` (peak-to-peak 2, the ``[-1, 1]`` range)."""
        return psnr(self.image, self.target)

    def render(self, G=None) -> torch.Tensor:
        """Re-synthesize the reconstruction ``[1, 3, R, R]`` (with the tuned generator when there is one)."""
        net = self.generator if self.generator is not None else G
        if net is None:
            raise ValueError("pass the generator the latent belongs to: result.render(G)")
        ws = self.latent.tensor.to(net.w_avg.device)
        with torch.no_grad():
            if self.noise is not None:
                return net.synthesis(ws, noise=self.noise)
            return net.synthesis(ws, noise_mode="const")


def inversion_latent(ws: torch.Tensor, space: str, *, noise=None, generator=None) -> Latent:
    """The :class:`Latent` of an inversion: W+ rows ``ws [1, num_ws, w_dim]`` in ``space`` ``'w'`` or ``'w+'``."""
    return Latent("w" if space == "w" else "w+", ws, noise=noise, generator=generator)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR (dB) of two images in ``[-1, 1]`` (peak-to-peak 2); both are clamped to that range first."""
    a = a.detach().float().cpu().clamp(-1, 1)
    b = b.detach().float().cpu().clamp(-1, 1)
    mse = float((a - b).square().mean())
    return float("inf") if mse == 0 else 10.0 * math.log10(4.0 / mse)
