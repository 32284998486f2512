"""Toyfaces clips with ground truth per frame: one face whose head turns, smile grows or eyes blink.

The renderer draws any attribute values, so a clip is one random face (:func:`sample_attributes` with
``seed``) with one attribute animated over the frames; the attributes of every frame are returned beside the
pictures, which is what the video pipeline's measurements compare against. Shapes: frames
``[T, 3, S, S]`` in ``[-1, 1]``; attributes name -> ``float32 [T]``.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InvalidArgumentError

#: kind -> (attribute, value per frame as a function of the phase p in [0, 1])
CLIP_KINDS = {
    "turn": ("yaw", lambda p: -25.0 + 50.0 * p),
    "smile": ("smile", lambda p: -0.8 + 1.7 * p),
    # open, closed, open; fractions fade the eyes (the renderer draws binary attributes in between too)
    "blink": ("eyes_open", lambda p: np.clip(np.abs(4.0 * p - 2.0) - 0.5, 0.0, 1.0)),
}
MAX_CLIP_FRAMES = 300


def make_clip(kind: str = "turn", *, frames: int = 24, seed: int = 0, size: int = 64
              ) -> tuple[torch.Tensor, dict[str, np.ndarray]]:
    """``(frames [T, 3, size, size] in [-1, 1], attributes name -> float32 [T])`` of a ``kind`` clip
    (:data:`CLIP_KINDS`) of face ``seed``; the animated attribute changes evenly from the first frame to the last
    (a blink closes the eyes in the middle of the clip)."""
    from .attributes import sample_attributes
    from .renderer import render_batch

    if kind not in CLIP_KINDS:
        raise InvalidArgumentError(f"unknown clip kind {kind!r}; use one of {', '.join(CLIP_KINDS)}.")
    if isinstance(frames, bool) or not isinstance(frames, int) or not 2 <= frames <= MAX_CLIP_FRAMES:
        raise InvalidArgumentError(f"frames must be an integer in 2..{MAX_CLIP_FRAMES}, got {frames!r}.")
    base = sample_attributes(1, seed=seed)
    attrs = {name: np.repeat(np.asarray(v, dtype=np.float32), frames) for name, v in base.items()}
    name, value = CLIP_KINDS[kind]
    attrs[name] = np.asarray(value(np.linspace(0.0, 1.0, frames)), dtype=np.float32)
    images = render_batch({k: torch.from_numpy(v) for k, v in attrs.items()}, size=size, seeds=None)
    return images.float(), attrs
