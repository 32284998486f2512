"""What every inversion method returns: :class:`InversionResult`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch


@dataclass
class InversionResult:
    """The outcome of :func:`stylekit.invert`, whatever the method.

    Attributes:
        latent: W+ code ``[1, num_ws, w_dim]`` (a W result has every row equal).
        image: the reconstruction ``[1, 3, R, R]`` in about ``[-1, 1]`` (rendered with ``noise`` and,
            for PTI, the tuned ``generator``).
        target: the image that was inverted, ``[1, 3, R, R]`` in ``[-1, 1]``.
        method: ``'optimize'``, ``'encoder'``, ``'restyle'`` or ``'pti'``.
        space: the space the method searched: ``'w'`` or ``'w+'``.
        loss_history: one dict per step (``step``, ``stage``, ``loss`` and its terms).
        perceptual: which perceptual loss was used (``'lpips-vgg'``, ``'toyfaces'``,
            ``'random-cnn'`` or ``'none'``).
        seconds: wall-clock time of the inversion.
        noise: the per-layer noise maps ``[1, 1, H, W]`` (order of ``G.noise_shapes()``) when they were
            optimised, else None (the generator's stored noise was used).
        generator: PTI only: the tuned copy of the generator (the original is untouched).
        generator_delta: PTI only: ``{parameter name: tuned - original}`` (float16) for every tensor
            that changed; :func:`stylekit.invert.pti.apply_delta` rebuilds the tuned generator.
        generator_delta_bytes: size of ``generator_delta`` in bytes.
        extra: method-specific details (e.g. the pivot's loss for PTI, the ReStyle per-step images).
    """

    latent: torch.Tensor
    image: torch.Tensor
    target: torch.Tensor
    method: str
    space: str
    loss_history: list[dict] = field(default_factory=list)
    perceptual: str = "none"
    seconds: float = 0.0
    noise: list[torch.Tensor] | None = None
    generator: torch.nn.Module | None = None
    generator_delta: dict[str, torch.Tensor] | None = None
    generator_delta_bytes: int | None = None
    extra: dict = field(default_factory=dict)

    # --- quality ------------------------------------------------------------------------------
    def mse(self) -> float:
        """Mean squared error between ``image`` and ``target`` in ``[-1, 1]`` units."""
        return float((self.image.detach().float().cpu() - self.target.detach().float().cpu()).square().mean())

    def psnr(self) -> float:
        """PSNR in dB of ``image`` against ``target`` (peak-to-peak 2, the ``[-1, 1]`` range)."""
        return psnr(self.image, self.target)

    @property
    def latent_obj(self):
        """The result as a :class:`stylekit.latent.Latent` (``'w'`` or ``'w+'``, with noise and tuned generator)."""
        from ..latent import Latent  # noqa: PLC0415 (lazy: keeps import light)

        kwargs = {}
        if self.noise is not None:
            kwargs["noise"] = self.noise
        if self.generator is not None:
            kwargs["generator"] = self.generator
        return Latent("w" if self.space == "w" else "w+", self.latent, **kwargs)

    def render(self, G=None) -> torch.Tensor:
        """Re-synthesize the reconstruction ``[1, 3, R, R]`` (with the tuned generator when there is one)."""
        net = self.generator if self.generator is not None else G
        if net is None:
            raise ValueError("pass the generator the latent belongs to: result.render(G)")
        with torch.no_grad():
            if self.noise is not None:
                return net.synthesis(self.latent.to(net.w_avg.device), noise=self.noise)
            return net.synthesis(self.latent.to(net.w_avg.device), noise_mode="const")


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR (dB) of two images in ``[-1, 1]`` (peak-to-peak 2); both are clamped to that range first."""
    a = a.detach().float().cpu().clamp(-1, 1)
    b = b.detach().float().cpu().clamp(-1, 1)
    mse = float((a - b).square().mean())
    return float("inf") if mse == 0 else 10.0 * math.log10(4.0 / mse)
