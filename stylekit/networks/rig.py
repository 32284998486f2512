"""RigNet: a small network that edits a W+ code so that named rig values (head yaw, smile, ...) become asked ones.

After StyleRig (Tewari et al., CVPR 2020): every W+ row is encoded to a low-dimensional code ``l``, which is
concatenated with the target rig parameters and decoded to a delta added to that row. Ours adds a mask saying
which rig values are asked, so a caller may ask for some values and leave the others as they are (StyleRig
always gives the whole parameter vector, read from a 3D face model fit):

    w      [N, L, D]  --standardise (w - w_mean) / w_std-->
    enc    per row r: l_r = x_r @ E_r + e_r                          [N, L, latent_dim]
    input  per row r: [l_r, target * mask, mask]                    [N, L, latent_dim + 2 P]
    dec    per row r: SiLU(input @ A_r + a_r) @ B_r + b_r           [N, L, D]
    out    delta = w_std * dec                                      (the last layer starts at zero: delta 0)

``L`` = ``num_ws``, ``D`` = ``w_dim``, ``P`` = the number of rig values; targets are given in unit scale (each
value's ``[low, high]`` mapped to ``[0, 1]``). The network knows its rig (names, kinds, ranges) from its
config, which travels in the file's metadata (:mod:`stylekit.edit.rig` reads and writes the files and applies
the network to :class:`~stylekit.latent.Latent` codes).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError

__all__ = ["RigParam", "RigNet"]


@dataclass(frozen=True)
class RigParam:
    """One rig value: ``kind`` is ``"binary"`` (0..1, a probability-like amount) or ``"continuous"`` over
    ``[low, high]`` in the value's own unit (degrees of yaw, smile from -1 to 1, ...)."""

    name: str
    kind: str
    low: float = 0.0
    high: float = 1.0

    def to_unit(self, value):
        """Value in its unit -> ``[0, 1]`` (floats, numpy arrays or tensors)."""
        return (value - self.low) / (self.high - self.low)

    def from_unit(self, unit):
        """Inverse of :meth:`to_unit`."""
        return self.low + unit * (self.high - self.low)


class RigNet(nn.Module):
    """Map ``(w [N, L, D], targets [N, P] in unit scale, mask [N, P])`` to a W+ delta ``[N, L, D]``.

    Args:
        w_dim: ``D``, the generator's W width.
        num_ws: ``L``, its number of W+ rows.
        rig: the rig values, in order (:class:`RigParam` or dicts with its fields).
        hidden: width of each row's decoder.
        latent_dim: width of each row's encoding ``l``.
        w_mean, w_std: the standardisation of W (``[D]`` and a scalar); default 0 and 1. Training sets them
            from the generator's samples; they are buffers and travel with the weights.
    """

    def __init__(self, w_dim: int, num_ws: int, rig: Sequence[RigParam | dict], hidden: int = 64,
                 latent_dim: int = 16, *, w_mean: torch.Tensor | None = None, w_std: float = 1.0):
        super().__init__()
        rig = tuple(p if isinstance(p, RigParam) else RigParam(**p) for p in rig)
        if not rig or any(p.kind not in ("binary", "continuous") or not p.high > p.low for p in rig):
            raise CheckpointError("a rig network needs at least one rig value, each 'binary' or 'continuous' with "
                                  "high > low.")
        if len({p.name for p in rig}) != len(rig):
            raise CheckpointError(f"the rig values' names repeat: {[p.name for p in rig]}.")
        if min(w_dim, num_ws, hidden, latent_dim) < 1:
            raise CheckpointError(f"RigNet sizes must be >= 1 (w_dim {w_dim}, num_ws {num_ws}, hidden {hidden}, "
                                  f"latent_dim {latent_dim}).")
        self.rig = rig
        self.rig_names = tuple(p.name for p in rig)
        self.w_dim, self.num_ws, self.hidden, self.latent_dim = int(w_dim), int(num_ws), int(hidden), int(latent_dim)
        self.config = {"w_dim": self.w_dim, "num_ws": self.num_ws, "hidden": self.hidden,
                       "latent_dim": self.latent_dim, "rig": [asdict(p) for p in rig]}
        L, D, P, H, K = self.num_ws, self.w_dim, len(rig), self.hidden, self.latent_dim
        self.enc_weight = nn.Parameter(torch.randn(L, D, K) / D ** 0.5)
        self.enc_bias = nn.Parameter(torch.zeros(L, K))
        self.dec1_weight = nn.Parameter(torch.randn(L, K + 2 * P, H) / (K + 2 * P) ** 0.5)
        self.dec1_bias = nn.Parameter(torch.zeros(L, H))
        self.dec2_weight = nn.Parameter(torch.zeros(L, H, D))  # zero: an untrained network changes nothing
        self.dec2_bias = nn.Parameter(torch.zeros(L, D))
        mean = torch.zeros(D) if w_mean is None else torch.as_tensor(w_mean, dtype=torch.float32).reshape(D)
        self.register_buffer("w_mean", mean.clone())
        self.register_buffer("w_std", torch.tensor(float(w_std)))

    def forward(self, ws: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The delta to add to ``ws``.

        Args:
            ws: ``[N, L, D]`` W+ codes.
            targets: ``[N, P]`` asked rig values in unit scale (entries where ``mask`` is 0 are ignored).
            mask: ``[N, P]`` 1 where a value is asked, 0 where it should stay as it is.

        Returns: ``[N, L, D]``, the edit is ``ws + delta``.
        """
        x = (ws - self.w_mean) / self.w_std
        code = torch.einsum("nld,ldk->nlk", x, self.enc_weight) + self.enc_bias
        mask = mask.to(x.dtype)
        cond = torch.cat([targets.to(x.dtype) * mask, mask], dim=1)  # [N, 2P]
        h = torch.cat([code, cond.unsqueeze(1).expand(-1, self.num_ws, -1)], dim=2)
        h = F.silu(torch.einsum("nlk,lkh->nlh", h, self.dec1_weight) + self.dec1_bias)
        out = torch.einsum("nlh,lhd->nld", h, self.dec2_weight) + self.dec2_bias
        return out * self.w_std
