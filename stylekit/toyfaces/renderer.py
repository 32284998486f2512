"""A vectorised torch renderer of cartoon faces whose every pixel follows from known attributes.

Each face is built from signed-distance shapes (negative inside) turned into anti-aliased coverage
and composited in layers, back to front:

    background (hue + light gradient) and the head's cast shadow
    neck and shirt
    hair behind the head (its length sets how far it falls)
    ears, face (cel-shaded from the light direction), cheeks
    beard and moustache
    nose, mouth (curvature from smile; dark opening with teeth when open)
    eyes (white, iris, pupil, lid line; a lash arc when closed), brows
    glasses (tinted lenses, frames, bridge, temples)
    fringe and side locks

Geometry lives in a *head frame*: image coordinates span ``[-1, 1]`` (x right, y down); the head
frame is the image frame shifted by ``position_x/y`` and rolled by ``rotation`` around the face
centre. ``yaw`` is a pseudo-3D turn: features sitting in front of the head shift sideways in
proportion to their depth, the far eye narrows, one ear hides and the hair shows on the other side.

Everything is computed for the whole batch at once with broadcasting (``[n, H, W]`` maps), so 64
faces at 64x64 take a few tens of milliseconds on one CPU core (``render_batch(..., compiled=True)``
fuses the work, about 4x faster once compiled). The renderer is differentiable in
the continuous attributes (binaries fade layers in), and the per-image ``seed`` only adds uniform
pixel noise of at most 1.5/255 (in ``[0, 1]`` units): an image is determined by its attributes.

The drawing steps (one function per layer above, over a shared scene) are in :mod:`._drawing`; the
shapes, colour ramps and compositing they use are in :mod:`._shapes`.
"""

from __future__ import annotations

import functools
from typing import Mapping, Sequence

import numpy as np
import torch
from PIL import Image

from stylekit.errors import InvalidArgumentError
from stylekit.networks.precision import has_cxx_compiler

from ._drawing import LAYERS, background, scene
from .attributes import ATTRIBUTE_NAMES, default_attributes, validate_attributes

__all__ = ["render", "render_batch", "face_box", "NOISE_AMPLITUDE"]

#: Peak amplitude of the seeded pixel noise, in [0, 1] colour units (about 1.5/255).
NOISE_AMPLITUDE = 1.5 / 255.0

_MIN_SIZE, _MAX_SIZE = 8, 2048


# ----------------------------------------------------------------------------------------------
# Attribute handling.


def _prepare(attributes: Mapping[str, object], device) -> tuple[dict[str, torch.Tensor], int]:
    """Validate, fill defaults, and return float32 tensors [n] on ``device`` plus n."""
    validate_attributes(attributes)  # names, finiteness, ranges, equal lengths
    n = None
    for value in attributes.values():
        if isinstance(value, torch.Tensor):
            if value.ndim == 1:
                n = value.shape[0]
        elif np.ndim(value) == 1:
            n = len(value)
    scalar_input = n is None
    n = 1 if scalar_input else n
    defaults = default_attributes()
    out: dict[str, torch.Tensor] = {}
    for name in ATTRIBUTE_NAMES:
        value = attributes.get(name, defaults[name])
        if isinstance(value, torch.Tensor):
            t = value.to(device=device, dtype=torch.float32)
        else:
            t = torch.as_tensor(np.asarray(value, dtype=np.float32), device=device)
        out[name] = t.reshape(-1).expand(n) if t.ndim == 0 else t
    return out, n


def _check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not (
            _MIN_SIZE <= size <= _MAX_SIZE):
        raise InvalidArgumentError(
            f"Render size must be an integer between {_MIN_SIZE} and {_MAX_SIZE} pixels, got {size!r}."
        )
    return int(size)


# ----------------------------------------------------------------------------------------------
# The renderer.


def render_batch(attributes: Mapping[str, object], size: int = 64,
                 seeds: Sequence[int] | np.ndarray | torch.Tensor | None = None,
                 device: str | torch.device = "cpu", compiled: bool = False) -> torch.Tensor:
    """Render a batch of toyfaces.

    Args:
        attributes: attribute name -> array or tensor ``[n]`` (or a float, shared by all faces) in
            attribute units (see :data:`stylekit.toyfaces.ATTRIBUTES`). Missing attributes take
            the neutral values of :func:`default_attributes`. Binary attributes may be fractions
            in ``[0, 1]``: the feature fades in. Gradients flow to tensor inputs.
        size: output height and width in pixels (8..2048). Geometry is resolution independent.
        seeds: ``n`` integers seeding the tiny per-image pixel noise; ``None`` uses seed 0 for
            every face (what :func:`render` does by default).
        device: torch device to render on.
        compiled: draw through ``torch.compile`` (inductor): the layers' ~1,900 small elementwise
            operations fuse into a few loops, about 4x faster (batch 16 at 64 px on two CPU cores:
            4.5 ms against 18). The process's first compiled call compiles (about 80 s on two cores
            with a cold inductor cache, a few seconds warm; a C++ compiler is needed on CPU); other
            batch and image sizes reuse it (dynamic shapes), except a batch of one or another
            thread count, which compile anew. Pixels agree with the eager drawing to ~1e-5.
            For drawing without gradients (training targets): inputs must not require grad.

    Returns:
        float32 tensor ``[n, 3, size, size]`` in ``[-1, 1]``.

    Raises:
        InvalidArgumentError: unknown attribute (the message lists the valid names), value out of
            range or NaN, mismatched lengths, bad size or seed count; ``compiled`` with an input that
            requires grad, or on a CPU without a C++ compiler.
    """
    size = _check_size(size)
    device = torch.device(device)
    a, n = _prepare(attributes, device)
    if seeds is None:
        seed_list = [0] * n
    else:
        seed_list = [int(s) for s in (seeds.tolist() if hasattr(seeds, "tolist") else seeds)]
        if len(seed_list) != n:
            raise InvalidArgumentError(
                f"render_batch got {len(seed_list)} seeds for {n} faces; give one seed per face."
            )
    if n == 0:
        return torch.zeros(0, 3, size, size, device=device)

    if compiled:
        if device.type == "cpu" and not has_cxx_compiler():
            raise InvalidArgumentError("render_batch(compiled=True) on a CPU needs a C++ compiler (g++ or clang++) for "
                                       "torch.compile's inductor backend; install one (apt-get install g++) or pass "
                                       "compiled=False.")
        if any(t.requires_grad for t in a.values()):
            raise InvalidArgumentError("render_batch(compiled=True) draws without gradients, but an attribute "
                                       "tensor requires grad; pass compiled=False to differentiate the drawing.")
        with torch.no_grad():
            img = _compiled_draw()(a, n, size, device)
    else:
        img = _draw(a, n, size, device)

    noise = torch.empty(n, 3, size, size)
    for i, s in enumerate(seed_list):
        g = torch.Generator().manual_seed(s)
        noise[i].uniform_(-NOISE_AMPLITUDE, NOISE_AMPLITUDE, generator=g)
    img = img + noise.to(device)
    return (img.clamp(0.0, 1.0) * 2.0 - 1.0).contiguous()


def render(attributes: Mapping[str, float], size: int = 64, seed: int = 0) -> Image.Image:
    """Render one toyface as an RGB PIL image of ``size`` x ``size`` (deterministic).

    ``attributes`` maps names to floats (missing ones take neutral defaults). The result is
    ``render_batch`` on one item, quantised to uint8: ``(x + 1) * 127.5`` rounded.
    """
    for name, value in attributes.items() if isinstance(attributes, Mapping) else ():
        if np.ndim(value) != 0:
            raise InvalidArgumentError(
                f"render() draws one face, so attribute {name!r} must be a single number; "
                f"use render_batch for arrays."
            )
    x = render_batch(attributes, size=size, seeds=[seed], device="cpu")[0]
    arr = ((x + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(np.ascontiguousarray(arr), mode="RGB")


def _draw(a: dict[str, torch.Tensor], n: int, size: int, device) -> torch.Tensor:
    """Compose the layers (see :mod:`._drawing`). Returns [n, 3, size, size] in [0, 1] (before noise)."""
    s = scene(a, n, size, device)
    img = background(s)
    for layer in LAYERS:
        img = layer(img, s)
    return img


@functools.cache
def _compiled_draw():
    """:func:`_draw` through ``torch.compile`` with dynamic shapes (one compilation serves every image size and batch sizes from 2)."""
    return torch.compile(_draw, dynamic=True)


def face_box(resolution: int) -> tuple[int, int, int, int]:
    """Where a centred toyface's face is at ``resolution`` pixels: ``(top, bottom, left, right)`` (rows
    ``top..bottom-1``, columns ``left..right-1``).

    The bounding box of the face ellipse of a centred head (centre ``(0, _FACE_CY)``, radii ``_FACE_RX`` x
    ``_FACE_RY`` in frame units, the image spanning ``[-1, 1]``): the pixels whose centres fall inside it. It holds
    the eyes, brows, nose, mouth, glasses and beard; a head moved by ``position_x/y`` or rolled keeps most of its
    face in it. At 64 px: rows 17-48, columns 19-44. Used by the fidelity benchmark and the supervised loss.
    """
    import math

    from . import _drawing as geometry

    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or resolution < 16:
        raise InvalidArgumentError(f"a face crop needs at least 16 px, got {resolution!r}")
    pw = 2.0 / resolution

    def pixels(lo: float, hi: float) -> tuple[int, int]:
        # pixel i has its centre at (i + 0.5) pw - 1
        first = math.ceil((lo + 1.0) / pw - 0.5 - 1e-9)
        last = math.floor((hi + 1.0) / pw - 0.5 + 1e-9)
        return max(first, 0), min(last + 1, int(resolution))

    top, bottom = pixels(geometry._FACE_CY - geometry._FACE_RY, geometry._FACE_CY + geometry._FACE_RY)
    left, right = pixels(-geometry._FACE_RX, geometry._FACE_RX)
    return top, bottom, left, right
