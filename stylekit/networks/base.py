"""The one Generator interface that every architecture implements.

A ``Generator`` is a ``torch.nn.Module`` with two submodules, as in NVIDIA's code:

- ``G.mapping(z, c=None, truncation_psi=1.0, truncation_cutoff=None) -> ws [N, num_ws, w_dim]``
- ``G.synthesis(ws, noise_mode='const', noise=None, styles=None, **arch_kwargs) -> img [N, 3, R, R]``
  (float32, about [-1, 1]). ``noise_mode`` is ``'const'`` (the stored noise buffers), ``'random'``
  or ``'none'``; ``noise`` is an explicit list of per-layer noise maps (see ``noise_shapes``) that
  overrides ``noise_mode``. ``styles`` (StyleSpace S, see ``ws_to_styles``) replaces ``ws``.

Plus the attributes ``arch``, ``config`` (JSON-able constructor kwargs), ``z_dim``, ``w_dim``,
``c_dim``, ``num_ws``, ``img_resolution``, ``img_channels`` and the property ``w_avg [w_dim]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import InvalidArgumentError
from .precision import dtype_of


@dataclass(frozen=True)
class StyleLayer:
    """One StyleSpace layer: the affine map ``name`` turns ``ws[:, ws_index]`` into ``channels`` styles."""

    name: str
    ws_index: int
    channels: int
    kind: str  # 'conv' (modulates a convolution) or 'torgb' (modulates an output layer) or 'input'


class Generator(torch.nn.Module):
    """Base class: subclasses build ``self.mapping`` and ``self.synthesis`` in ``__init__``."""

    arch: str = "unknown"

    def __init__(self, config: dict):
        super().__init__()
        self.config = dict(config)

    # --- sizes -------------------------------------------------------------------------------
    @property
    def z_dim(self) -> int:
        return self.mapping.z_dim

    @property
    def c_dim(self) -> int:
        return self.mapping.c_dim

    @property
    def w_dim(self) -> int:
        return self.mapping.w_dim

    @property
    def num_ws(self) -> int:
        return self.synthesis.num_ws

    @property
    def img_resolution(self) -> int:
        return self.synthesis.img_resolution

    @property
    def img_channels(self) -> int:
        return self.synthesis.img_channels

    @property
    def w_avg(self) -> torch.Tensor:
        """The tracked mean of W, ``[w_dim]`` (truncation pulls toward it)."""
        return self.mapping.w_avg

    @property
    def device(self) -> torch.device:
        return self.mapping.w_avg.device

    # --- precision -----------------------------------------------------------------------------
    @property
    def precision(self) -> str:
        """Compute precision of the synthesis network's fast path: ``'fp32'``, ``'bf16'`` or ``'fp16'``.

        Weights stay float32 whatever it is; images are returned float32. Set it directly
        (``G.precision = 'bf16'``) or through ``load_generator(..., precision=...)``; see
        :mod:`stylekit.networks.precision`.
        """
        return getattr(self.synthesis, "precision", "fp32")

    @precision.setter
    def precision(self, value: str) -> None:
        dtype_of(value)  # raises InvalidArgumentError for an unknown name
        self.synthesis.precision = value

    # --- StyleSpace ----------------------------------------------------------------------------
    @property
    def style_layers(self) -> list[StyleLayer]:
        """The StyleSpace layers in synthesis order."""
        return self.synthesis.style_layers

    def ws_to_styles(self, ws: torch.Tensor) -> list[torch.Tensor]:
        """W+ ``[N, num_ws, w_dim]`` -> StyleSpace S: one ``[N, channels]`` tensor per style layer."""
        return self.synthesis.ws_to_styles(ws)

    def noise_shapes(self) -> list[tuple[str, tuple[int, int]]]:
        """Per-layer noise maps the synthesis network takes: ``(layer name, (H, W))`` in order."""
        return self.synthesis.noise_shapes()

    # --- convenience ---------------------------------------------------------------------------
    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "const", **synthesis_kwargs) -> torch.Tensor:
        """``z [N, z_dim] -> img [N, img_channels, R, R]``."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode, **synthesis_kwargs)

    def describe(self) -> str:
        """A human-readable summary of the architecture (used by ``python -m stylekit info``)."""
        n_params = sum(p.numel() for p in self.parameters())
        lines = [
            f"architecture: {self.arch}",
            f"resolution:   {self.img_resolution}x{self.img_resolution}, {self.img_channels} channels",
            f"z_dim={self.z_dim} w_dim={self.w_dim} c_dim={self.c_dim} num_ws={self.num_ws}",
            f"mapping layers: {self.mapping.num_layers}",
            f"parameters:   {n_params:,}",
            f"precision:    {self.precision} (weights float32)",
            "style layers (StyleSpace):",
        ]
        for layer in self.style_layers:
            lines.append(f"  {layer.name:<28} ws[{layer.ws_index:>2}] -> {layer.channels:>4} channels ({layer.kind})")
        return "\n".join(lines)


def check_ws(ws, num_ws: int, w_dim: int) -> torch.Tensor:
    """``ws`` as float32 after checking it is a W+ tensor ``[N, num_ws, w_dim]``; else ``InvalidArgumentError``."""
    if not isinstance(ws, torch.Tensor) or ws.ndim != 3 or tuple(ws.shape[1:]) != (num_ws, w_dim):
        shape = tuple(ws.shape) if isinstance(ws, torch.Tensor) else type(ws).__name__
        raise InvalidArgumentError(f"ws must be a W+ tensor of shape [N, {num_ws}, {w_dim}], got {shape}; "
                                   f"broadcast a W code with w.unsqueeze(1).repeat(1, {num_ws}, 1).")
    return ws.to(torch.float32)


def check_styles(styles, style_layers: list[StyleLayer]) -> list[torch.Tensor]:
    """StyleSpace ``styles`` (one ``[N, channels]`` tensor per entry of ``style_layers``) as float32.

    Raises ``InvalidArgumentError`` naming the first layer whose tensor has the wrong shape, or when
    the count differs from ``len(style_layers)``.
    """
    if isinstance(styles, torch.Tensor) or not isinstance(styles, (list, tuple)):
        try:
            styles = list(styles) if not isinstance(styles, torch.Tensor) else None
        except TypeError:
            styles = None
    if styles is None or len(styles) != len(style_layers):
        raise InvalidArgumentError(f"styles must be a list of {len(style_layers)} tensors [N, C] (one per entry of "
                                   "synthesis.style_layers); get them from ws_to_styles(ws).")
    n = None
    out = []
    for s, layer in zip(styles, style_layers):
        if (not isinstance(s, torch.Tensor) or s.ndim != 2 or s.shape[1] != layer.channels
                or (n is not None and s.shape[0] != n)):
            got = tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
            raise InvalidArgumentError(f"style of layer {layer.name} must be [N, {layer.channels}] with the same N "
                                       f"for every layer, got {got}.")
        n = s.shape[0]
        out.append(s.to(torch.float32))
    return out
