"""The mapping network z (+ class label c) -> W+, shared by StyleGAN2 and StyleGAN3."""

from __future__ import annotations

import torch

from ..errors import InvalidArgumentError
from .ops import FullyConnectedLayer, normalize_2nd_moment


class MappingNetwork(torch.nn.Module):
    """An MLP from ``z [N, z_dim]`` (and ``c [N, c_dim]``) to ``ws [N, num_ws, w_dim]``.

    Parameter names follow NVIDIA's (``embed``, ``fc0`` ... ``fc{num_layers-1}``, buffer ``w_avg``).
    StyleGAN3's mapping network is the special case ``embed_features = layer_features = w_dim``.
    """

    def __init__(self, *, z_dim: int, c_dim: int, w_dim: int, num_ws: int, num_layers: int = 8,
                 embed_features: int | None = None, layer_features: int | None = None,
                 lr_multiplier: float = 0.01, w_avg_beta: float = 0.998):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(features[idx], features[idx + 1], activation="lrelu",
                                        lr_multiplier=lr_multiplier)
            setattr(self, f"fc{idx}", layer)
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z: torch.Tensor | None, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, *, update_emas: bool = False) -> torch.Tensor:
        """Map latents to W+.

        Args:
            z: ``[N, z_dim]`` standard normal latents (may be None only when ``z_dim == 0``).
            c: ``[N, c_dim]`` conditioning labels, required when ``c_dim > 0``.
            truncation_psi: 1 = no truncation; ``w_avg + psi * (w - w_avg)`` otherwise.
            truncation_cutoff: truncate only the first this many of the ``num_ws`` layers (None = all).
            update_emas: during training, track the running mean ``w_avg``.

        Returns: ``ws [N, num_ws, w_dim]``.
        """
        x = None
        if self.z_dim > 0:
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            if c is None:
                raise InvalidArgumentError(f"this generator is conditional: pass c with shape [N, {self.c_dim}] "
                                           "(one-hot class labels).")
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if update_emas:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            x = x.clone()
            x[:, :cutoff] = self.w_avg.lerp(x[:, :cutoff], truncation_psi)
        return x
