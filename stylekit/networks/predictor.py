"""A small CNN that reads named attributes back from images (the toyfaces world's predictor).

Files are read and written by :mod:`stylekit.checkpoints.predictor` (``load_predictor("toyfaces")``).
The network knows its attributes from its own file: each output head is named, binary (a logit) or
continuous (a unit-scale regression over ``[low, high]``), and that table travels in the safetensors
metadata, so any code can load and use a predictor by name without importing the world that
trained it. Used as InterFaceGAN's labeller, as an offline perceptual feature space, and (on
toyfaces) by the benchmarks.

Architecture (input resized to ``input_size``, 64 for toyfaces):

    conv5x5/2  3 -> c0   BN SiLU          conv3x3  c0 -> c1   BN SiLU
    conv3x3/2  c1 -> c2  BN SiLU          conv3x3  c2 -> c3   BN SiLU
    conv3x3/2  c3 -> c4  BN SiLU          conv3x3  c4 -> c5   BN SiLU
    conv3x3/2  c5 -> c6  BN SiLU          (input_size / 16 squared positions)
    flatten -> linear feature_dim SiLU      <- features(), [N, feature_dim]
    linear feature_dim -> A                 <- forward(), [N, A] raw outputs in head order

The flatten (not a global pool) keeps where things are, which position, rotation and yaw need.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, ImageInputError

__all__ = ["AttributeHead", "AttributePredictor", "FORMAT", "FORMAT_VERSION", "prepare_images"]

#: The ``format`` tag of predictor files.
FORMAT = "stylekit.toyfaces.predictor"
FORMAT_VERSION = "2"  # 2: the attribute table (names, kinds, ranges) is in the config


def prepare_images(images: torch.Tensor, size: int, like: torch.Tensor, who: str) -> torch.Tensor:
    """Check ``images [N, 3, H, W]`` (H, W >= 8) and resize them to ``[N, 3, size, size]`` (bilinear,
    antialiased) on ``like``'s device and dtype; ``who`` names the network in the error.

    Raises:
        ImageInputError: not a 4-d 3-channel tensor, or smaller than 8x8.
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ImageInputError(f"{who} needs an image tensor [N, 3, H, W] in [-1, 1], got {shape}.")
    if images.shape[-2] < 8 or images.shape[-1] < 8:
        raise ImageInputError(f"Images of {images.shape[-2]}x{images.shape[-1]} are too small for "
                              f"{who[0].lower() + who[1:]}; give at least 8x8 pixels.")
    x = images.to(device=like.device, dtype=like.dtype)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x


@dataclass(frozen=True)
class AttributeHead:
    """One output of the predictor: ``kind`` is ``"binary"`` (logit) or ``"continuous"`` (unit scale over [low, high])."""

    name: str
    kind: str
    low: float = 0.0
    high: float = 1.0


def _conv(cin: int, cout: int, k: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.SiLU())


class AttributePredictor(nn.Module):
    """Predict named attributes from an image.

    Args:
        heads: the outputs, in order (:class:`AttributeHead` or dicts with its fields).
        channels: widths of the seven conv layers (see the module docstring for the layout).
        feature_dim: width of the penultimate (feature) layer.
        input_size: images are resized to this square size first (a multiple of 16).
    """

    def __init__(self, heads: Sequence[AttributeHead | dict], channels: Sequence[int] = (24, 32, 48, 48, 64, 64, 64),
                 feature_dim: int = 128, input_size: int = 64):
        super().__init__()
        heads = tuple(h if isinstance(h, AttributeHead) else AttributeHead(**h) for h in heads)
        if not heads or any(h.kind not in ("binary", "continuous") for h in heads):
            raise CheckpointError("an attribute predictor needs at least one head, each 'binary' or 'continuous'.")
        if len(channels) != 7:
            raise CheckpointError(f"AttributePredictor needs 7 channel widths, got {len(channels)}.")
        if input_size % 16:
            raise CheckpointError(f"the predictor's input size must be a multiple of 16, not {input_size}.")
        self.heads = heads
        self.attribute_names = tuple(h.name for h in heads)
        self.input_size = int(input_size)
        self.config = {"channels": [int(c) for c in channels], "feature_dim": int(feature_dim),
                       "attribute_names": list(self.attribute_names), "input_size": self.input_size,
                       "attributes": [asdict(h) for h in heads]}
        c = channels
        self.trunk = nn.Sequential(_conv(3, c[0], 5, 2), _conv(c[0], c[1], 3, 1), _conv(c[1], c[2], 3, 2),
                                   _conv(c[2], c[3], 3, 1), _conv(c[3], c[4], 3, 2), _conv(c[4], c[5], 3, 1),
                                   _conv(c[5], c[6], 3, 2))
        spatial = self.input_size // 16
        self.fc = nn.Linear(c[6] * spatial * spatial, feature_dim)
        self.head = nn.Linear(feature_dim, len(heads))
        self.register_buffer("binary_mask", torch.tensor([h.kind == "binary" for h in heads], dtype=torch.bool),
                             persistent=False)
        self.register_buffer("low", torch.tensor([float(h.low) for h in heads]), persistent=False)
        self.register_buffer("high", torch.tensor([float(h.high) for h in heads]), persistent=False)

    @property
    def binary_attributes(self) -> tuple[str, ...]:
        return tuple(h.name for h in self.heads if h.kind == "binary")

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        """``[N, 3, H, W]`` in ``[-1, 1]`` -> ``[N, 3, S, S]`` on the weights' device and dtype."""
        return prepare_images(images, self.input_size, self.fc.weight, "The attribute predictor")

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate features. images: ``[N, 3, H, W]`` in ``[-1, 1]`` -> ``[N, feature_dim]``."""
        x = self.trunk(self._prepare(images))
        return F.silu(self.fc(x.flatten(1)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Raw outputs ``[N, A]`` in head order: binary logits, continuous unit-scale values."""
        return self.head(self.features(images))

    def outputs_to_attributes(self, raw: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw ``[N, A]`` -> dict name -> ``[N]``: binary probabilities in ``[0, 1]``, continuous values in
        attribute units (clamped to their range)."""
        unit = torch.where(self.binary_mask, torch.sigmoid(raw), raw.clamp(0.0, 1.0))
        values = torch.where(self.binary_mask, unit, self.low + unit * (self.high - self.low))
        return {name: values[:, j] for j, name in enumerate(self.attribute_names)}

    def predict(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """images ``[N, 3, H, W]`` in ``[-1, 1]`` (any size) -> dict name -> ``[N]`` (see :meth:`outputs_to_attributes`)."""
        return self.outputs_to_attributes(self(images))

    def predict_unit(self, images: torch.Tensor) -> torch.Tensor:
        """Like :meth:`predict` as one ``[N, A]`` tensor in unit scale (binaries as probabilities)."""
        raw = self(images)
        return torch.where(self.binary_mask, torch.sigmoid(raw), raw.clamp(0.0, 1.0))
