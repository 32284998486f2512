"""The toyfaces attribute predictor: the generic network of :mod:`stylekit.networks.predictor` with one
head per toyfaces attribute.

It reads every attribute of :data:`~stylekit.toyfaces.attributes.ATTRIBUTES` back from an image
(binary ones as logits, continuous ones as unit-scale regressions). The shipped weights are the
registered predictor ``"toyfaces"``: load them with
``stylekit.checkpoints.predictor.load_predictor("toyfaces")``; train new ones with
``python -m stylekit.train predictor``. About 0.28 M parameters, stored as float16 safetensors
(~0.6 MB) with its attribute table in the metadata.
"""

from __future__ import annotations

from typing import Sequence

from ..networks.predictor import AttributeHead, AttributePredictor
from .attributes import ATTRIBUTES

__all__ = ["INPUT_SIZE", "heads", "new_predictor"]

#: Images are resized to this resolution before the network sees them.
INPUT_SIZE = 64


def heads() -> tuple[AttributeHead, ...]:
    """One head per toyfaces attribute, in :data:`ATTRIBUTES` order."""
    return tuple(AttributeHead(a.name, a.kind, float(a.low), float(a.high)) for a in ATTRIBUTES)


def new_predictor(channels: Sequence[int] = (24, 32, 48, 48, 64, 64, 64), feature_dim: int = 128) -> AttributePredictor:
    """An untrained predictor for the toyfaces attributes (the shipped architecture by default)."""
    return AttributePredictor(heads(), channels=channels, feature_dim=feature_dim, input_size=INPUT_SIZE)
