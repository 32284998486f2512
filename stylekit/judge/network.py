"""The held-out judge's network: a normalisation-free residual CNN, another family than the predictor's.

The judge reads the 15 toyfaces attributes and a *face score* (is this a toy face at all?) from an
image. It shares nothing with :class:`stylekit.networks.predictor.AttributePredictor` (a plain
BatchNorm/SiLU stack): residual blocks without normalisation (SkipInit: each residual branch is
scaled by a learned gain that starts at 0), GELU, coordinate channels at the input, another seed
and other data (see :mod:`stylekit.judge.train`).

Layout (input resized to ``input_size`` = 64; C = ``widths``):

    [x, y coordinate channels] + image  -> conv3x3 5 -> C0            64 x 64
    ResBlock(C0)                                                      64 x 64
    down: conv3x3/2 C0 -> C1, ResBlock(C1)                            32 x 32
    down: conv3x3/2 C1 -> C2, ResBlock(C2)                            16 x 16
    down: conv3x3/2 C2 -> C3, ResBlock(C3)                             8 x 8
    conv1x1 C3 -> 32, flatten (8*8*32), linear -> feature_dim GELU    <- features(), [N, feature_dim]
    linear feature_dim -> A + 1                                       <- forward(), [N, A + 1]

The last output is the face logit; the first ``A`` follow the attribute table (binary logits,
continuous unit-scale regressions), like the predictor's heads. ResBlock = x + gain * conv3x3(GELU(
conv3x3(GELU(x)))), gain a learned scalar initialised to 0. (GroupNorm was tried first: its CPU
backward took 42% of a training step.)
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError
from ..networks.predictor import AttributeHead, prepare_images

__all__ = ["Judge", "new_judge", "FACE_THRESHOLD", "FORMAT", "FORMAT_VERSION"]

#: A face score at or above this counts as "still a face".
FACE_THRESHOLD = 0.5
#: The ``format`` tag of judge files.
FORMAT = "stylekit.judge"
FORMAT_VERSION = "1"


class _ResBlock(nn.Module):
    """``x + gain * conv(GELU(conv(GELU(x))))`` with ``gain`` a learned scalar starting at 0 (SkipInit)."""

    def __init__(self, c: int):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)
        self.gain = nn.Parameter(torch.zeros([]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.gain * self.c2(F.gelu(self.c1(F.gelu(x))))


class Judge(nn.Module):
    """Reads toyfaces attributes and a face score from ``[N, 3, H, W]`` images in ``[-1, 1]``.

    Args:
        heads: one :class:`~stylekit.networks.predictor.AttributeHead` (or its dict) per attribute.
        widths: the four stage widths (64, 32, 16, 8 pixels).
        feature_dim: width of the feature layer (:meth:`features`).
        input_size: images are resized to this square size first (a multiple of 8).
    """

    def __init__(self, heads: Sequence[AttributeHead | dict], widths: Sequence[int] = (24, 48, 96, 128),
                 feature_dim: int = 256, input_size: int = 64):
        super().__init__()
        heads = tuple(h if isinstance(h, AttributeHead) else AttributeHead(**h) for h in heads)
        if not heads or any(h.kind not in ("binary", "continuous") for h in heads):
            raise CheckpointError("a judge needs at least one attribute head, each 'binary' or 'continuous'.")
        if len(widths) != 4 or input_size % 8:
            raise CheckpointError("a judge needs 4 stage widths and an input size that is a multiple of 8.")
        self.heads = heads
        self.attribute_names = tuple(h.name for h in heads)
        self.input_size = int(input_size)
        self.config = {"widths": [int(w) for w in widths], "feature_dim": int(feature_dim),
                       "input_size": self.input_size, "attributes": [asdict(h) for h in heads]}
        w = widths
        self.stem = nn.Conv2d(5, w[0], 3, padding=1)
        stages = [_ResBlock(w[0])]
        for a, b in zip(w[:-1], w[1:]):
            stages += [nn.Conv2d(a, b, 3, stride=2, padding=1), _ResBlock(b)]
        self.stages = nn.Sequential(*stages)
        self.squeeze = nn.Conv2d(w[3], 32, 1)
        side = self.input_size // 8
        self.fc = nn.Linear(32 * side * side, feature_dim)
        self.out = nn.Linear(feature_dim, len(heads) + 1)
        self.register_buffer("binary_mask", torch.tensor([h.kind == "binary" for h in heads]), persistent=False)
        self.register_buffer("low", torch.tensor([float(h.low) for h in heads]), persistent=False)
        self.register_buffer("high", torch.tensor([float(h.high) for h in heads]), persistent=False)

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        """``[N, 3, H, W]`` in ``[-1, 1]`` -> ``[N, 5, S, S]`` (image + x/y coordinates) on the weights' device/dtype."""
        s = self.input_size
        x = prepare_images(images, s, self.stem.weight, "The judge")
        t = torch.linspace(-1.0, 1.0, s, device=x.device, dtype=x.dtype)
        coords = torch.stack(torch.meshgrid(t, t, indexing="xy")).expand(x.shape[0], 2, s, s)
        return torch.cat([x, coords], dim=1)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """images ``[N, 3, H, W]`` in ``[-1, 1]`` -> features ``[N, feature_dim]``."""
        h = self.stages(self.stem(self._prepare(images)))
        h = F.gelu(self.squeeze(h))
        return F.gelu(self.fc(h.flatten(1)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Raw outputs ``[N, A + 1]``: attribute logits / unit regressions, then the face logit."""
        return self.out(self.features(images))

    def split(self, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw ``[N, A + 1]`` -> (unit ``[N, A]`` in ``[0, 1]``, binaries as probabilities; face score ``[N]``)."""
        raw = raw.float()
        attrs = raw[:, :-1]
        unit = torch.where(self.binary_mask, torch.sigmoid(attrs), attrs.clamp(0.0, 1.0))
        return unit, torch.sigmoid(raw[:, -1])

    def read_unit(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images -> (unit attributes ``[N, A]`` in ``[0, 1]``, face score ``[N]`` in ``[0, 1]``)."""
        return self.split(self(images))

    def read(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """images -> dict name -> ``[N]`` in attribute units (binaries as probabilities), plus ``"face"``."""
        unit, face = self.read_unit(images)
        values = torch.where(self.binary_mask, unit, self.low + unit * (self.high - self.low))
        out = {name: values[:, j] for j, name in enumerate(self.attribute_names)}
        out["face"] = face
        return out

    def face_score(self, images: torch.Tensor) -> torch.Tensor:
        """images -> face score ``[N]`` in ``[0, 1]`` (>= :data:`FACE_THRESHOLD`: a face)."""
        return self.read_unit(images)[1]


def new_judge(seed: int = 0, **kwargs) -> Judge:
    """An untrained judge with one head per toyfaces attribute, initialised from ``seed``."""
    from ..toyfaces.predictor import heads

    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return Judge(heads(), **kwargs)
    finally:
        torch.random.set_rng_state(gen_state)
