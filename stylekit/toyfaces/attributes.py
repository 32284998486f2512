"""The attributes of a toyface: names, kinds, ranges, priors and the sampler.

A toyface is fully described by a small set of named attributes. Each is either *binary* (0.0 or
1.0 when sampled; the renderer also accepts fractions in between and fades the feature in, which
is handy for interpolations) or *continuous* (a float in ``[low, high]`` in the unit given by its
description). The sampler draws every attribute independently of the others, so any direction
that changes one attribute is, statistically, free of the rest.

Everything here works on plain numpy arrays of shape ``[n]`` per attribute; ``attributes_to_unit``
packs them into an ``[n, A]`` matrix in :data:`ATTRIBUTES` order with every column in ``[0, 1]``,
which is the scale the attribute predictor regresses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from stylekit.errors import InvalidArgumentError

__all__ = [
    "AttributeSpec",
    "ATTRIBUTES",
    "ATTRIBUTE_NAMES",
    "BINARY_ATTRIBUTES",
    "CONTINUOUS_ATTRIBUTES",
    "attribute_spec",
    "attribute_priors",
    "default_attributes",
    "sample_attributes",
    "attributes_to_unit",
    "unit_to_attributes",
    "validate_attributes",
    "clip_attributes",
]


@dataclass(frozen=True)
class AttributeSpec:
    """One attribute of the toyfaces world.

    name:        identifier used as a dict key everywhere (``"glasses"``).
    kind:        ``"binary"`` or ``"continuous"``.
    low, high:   the valid range in attribute units (binaries: 0 and 1).
    description: one sentence saying what the value means and in which unit.
    """

    name: str
    kind: str
    low: float
    high: float
    description: str

    def to_unit(self, values):
        """Map attribute units to ``[0, 1]`` (works on floats and numpy arrays)."""
        return (values - self.low) / (self.high - self.low)

    def from_unit(self, unit):
        """Inverse of :meth:`to_unit`."""
        return self.low + unit * (self.high - self.low)


ATTRIBUTES: tuple[AttributeSpec, ...] = (
    AttributeSpec("skin_tone", "continuous", 0.0, 1.0,
                  "Skin colour from very light (0) through tan to deep brown (1)."),
    AttributeSpec("hair_color", "continuous", 0.0, 1.0,
                  "Hair lightness from black (0) through brown to platinum blond (1); with red_hair "
                  "it runs from dark auburn to bright ginger. Beard and brows share it."),
    AttributeSpec("red_hair", "binary", 0.0, 1.0,
                  "Red (auburn/ginger) hair instead of the black-brown-blond scale."),
    AttributeSpec("hair_length", "continuous", 0.0, 1.0,
                  "Hair length from a short crop on top of the head (0) to hair past the shoulders (1)."),
    AttributeSpec("smile", "continuous", -1.0, 1.0,
                  "Mouth curvature: -1 a deep frown, 0 neutral, 1 a big smile."),
    AttributeSpec("mouth_open", "binary", 0.0, 1.0,
                  "Mouth open (dark opening with teeth) instead of closed lips."),
    AttributeSpec("eyes_open", "binary", 0.0, 1.0,
                  "Eyes open (white, iris, pupil) instead of closed (a lash arc)."),
    AttributeSpec("glasses", "binary", 0.0, 1.0,
                  "Round glasses: dark frames, bridge, temples and faintly tinted lenses."),
    AttributeSpec("beard", "binary", 0.0, 1.0,
                  "A full beard and moustache in the hair colour."),
    AttributeSpec("rotation", "continuous", -25.0, 25.0,
                  "In-plane head roll in degrees; positive tilts the head counter-clockwise as seen."),
    AttributeSpec("yaw", "continuous", -30.0, 30.0,
                  "Head turn in degrees; positive turns the face toward the viewer's right "
                  "(features shift right, the left ear shows more)."),
    AttributeSpec("position_x", "continuous", -0.1, 0.1,
                  "Horizontal offset of the head as a fraction of the image width (positive: right)."),
    AttributeSpec("position_y", "continuous", -0.1, 0.1,
                  "Vertical offset of the head as a fraction of the image height (positive: down)."),
    AttributeSpec("background_hue", "continuous", 0.0, 1.0,
                  "Background colour along the colour wheel from red (0) through yellow, green, cyan "
                  "and blue to violet (1); it stops at 288 degrees so the scale does not wrap."),
    AttributeSpec("light_direction", "continuous", -90.0, 90.0,
                  "Where the light comes from, in degrees from straight above: -90 from the viewer's "
                  "left, 0 from above, 90 from the right. Sets the shading and the cast shadow."),
)

ATTRIBUTE_NAMES: tuple[str, ...] = tuple(a.name for a in ATTRIBUTES)
BINARY_ATTRIBUTES: tuple[str, ...] = tuple(a.name for a in ATTRIBUTES if a.kind == "binary")
CONTINUOUS_ATTRIBUTES: tuple[str, ...] = tuple(a.name for a in ATTRIBUTES if a.kind == "continuous")

_SPECS: dict[str, AttributeSpec] = {a.name: a for a in ATTRIBUTES}

# Probability that each binary attribute is 1 under the sampler.
_PRIORS: dict[str, float] = {
    "red_hair": 0.25,
    "mouth_open": 0.35,
    "eyes_open": 0.75,
    "glasses": 0.3,
    "beard": 0.3,
}

# A neutral, centred face: what the renderer uses for attributes that are not given.
_DEFAULTS: dict[str, float] = {
    "skin_tone": 0.3,
    "hair_color": 0.3,
    "red_hair": 0.0,
    "hair_length": 0.5,
    "smile": 0.3,
    "mouth_open": 0.0,
    "eyes_open": 1.0,
    "glasses": 0.0,
    "beard": 0.0,
    "rotation": 0.0,
    "yaw": 0.0,
    "position_x": 0.0,
    "position_y": 0.0,
    "background_hue": 0.55,
    "light_direction": -30.0,
}

_RANGE_TOL = 1e-4


def _unknown(name: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"Unknown toyfaces attribute {name!r}. Valid names are: {', '.join(ATTRIBUTE_NAMES)}."
    )


def attribute_spec(name: str) -> AttributeSpec:
    """The :class:`AttributeSpec` called ``name``; raises InvalidArgumentError listing valid names."""
    spec = _SPECS.get(name)
    if spec is None:
        raise _unknown(name)
    return spec


def attribute_priors() -> dict[str, float]:
    """Probability of 1.0 for each binary attribute under :func:`sample_attributes`."""
    return dict(_PRIORS)


def default_attributes() -> dict[str, float]:
    """A neutral, centred face (floats); the renderer fills attributes that are not given from it."""
    return dict(_DEFAULTS)


def sample_attributes(n: int, *, seed: int | None = None,
                      rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
    """Draw ``n`` independent random faces.

    Binary attributes are Bernoulli with :func:`attribute_priors`; every continuous attribute is
    uniform on ``[low, high]``. All attributes are drawn independently of one another.

    Args:
        n: number of faces (>= 0).
        seed: seed for a fresh ``numpy.random.default_rng``; ignored when ``rng`` is given.
        rng: a numpy Generator to draw from (advanced in place).

    Returns:
        dict name -> float32 array ``[n]``, in :data:`ATTRIBUTES` order.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise InvalidArgumentError(f"sample_attributes needs a non-negative integer n, got {n!r}.")
    if rng is None:
        rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for spec in ATTRIBUTES:
        if spec.kind == "binary":
            values = (rng.random(n) < _PRIORS[spec.name]).astype(np.float32)
        else:
            values = rng.uniform(spec.low, spec.high, size=n).astype(np.float32)
        out[spec.name] = values
    return out


def _as_array(name: str, value) -> np.ndarray:
    try:
        import torch  # local: keep import light when torch is not needed
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            f"Attribute {name!r} must be a number or an array of numbers, got {type(value).__name__}."
        ) from exc
    return arr


def validate_attributes(attrs: Mapping[str, object], *, require_all: bool = False,
                        check_range: bool = True) -> dict[str, np.ndarray]:
    """Check names, values and ranges of an attribute dict.

    Args:
        attrs: name -> float or array ``[n]`` (numpy, list or torch tensor).
        require_all: also demand every attribute in :data:`ATTRIBUTES`.
        check_range: reject values outside ``[low, high]`` (a tiny tolerance is allowed).

    Returns:
        dict name -> float64 numpy array (0-d or 1-d), in :data:`ATTRIBUTES` order.

    Raises:
        InvalidArgumentError: unknown name (the message lists the valid ones), missing names when
        ``require_all``, NaN/inf, values out of range, or arrays of different lengths.
    """
    if not isinstance(attrs, Mapping):
        raise InvalidArgumentError(
            f"Attributes must be a dict of name -> value, got {type(attrs).__name__}."
        )
    for name in attrs:
        if name not in _SPECS:
            raise _unknown(name)
    if require_all:
        missing = [n for n in ATTRIBUTE_NAMES if n not in attrs]
        if missing:
            raise InvalidArgumentError(
                f"Missing toyfaces attributes: {', '.join(missing)}. Give every attribute in "
                f"ATTRIBUTES order ({', '.join(ATTRIBUTE_NAMES)})."
            )
    out: dict[str, np.ndarray] = {}
    length = None
    for spec in ATTRIBUTES:
        if spec.name not in attrs:
            continue
        arr = _as_array(spec.name, attrs[spec.name])
        if arr.ndim > 1:
            raise InvalidArgumentError(
                f"Attribute {spec.name!r} must be a scalar or a 1-D array [n], got shape {arr.shape}."
            )
        if arr.ndim == 1:
            if length is not None and arr.shape[0] != length:
                raise InvalidArgumentError(
                    f"Attribute arrays have different lengths ({length} and {arr.shape[0]} for "
                    f"{spec.name!r}); give every attribute the same batch size."
                )
            length = arr.shape[0]
        if not np.all(np.isfinite(arr)):
            raise InvalidArgumentError(f"Attribute {spec.name!r} contains NaN or infinite values.")
        if check_range and arr.size:
            lo, hi = float(arr.min()), float(arr.max())
            tol = _RANGE_TOL * (spec.high - spec.low)
            if lo < spec.low - tol or hi > spec.high + tol:
                raise InvalidArgumentError(
                    f"Attribute {spec.name!r} must lie in [{spec.low:g}, {spec.high:g}] "
                    f"({spec.description}); got values in [{lo:g}, {hi:g}]. "
                    f"Use stylekit.toyfaces.clip_attributes to clamp edited values."
                )
        out[spec.name] = arr
    return out


def clip_attributes(attrs: Mapping[str, object]) -> dict[str, np.ndarray]:
    """Clamp every given attribute into its ``[low, high]`` range (unknown names still raise).

    Returns a dict name -> float32 array (or 0-d array for scalars).
    """
    checked = validate_attributes(attrs, check_range=False)
    return {name: np.clip(arr, _SPECS[name].low, _SPECS[name].high).astype(np.float32)
            for name, arr in checked.items()}


def attributes_to_unit(attrs: Mapping[str, object]) -> np.ndarray:
    """Pack a full attribute dict into a unit-scale matrix.

    Args:
        attrs: every attribute name -> scalar or array ``[n]`` in attribute units.

    Returns:
        float32 ``[n, A]`` (``[1, A]`` for scalars) with column ``j`` = ``ATTRIBUTES[j]`` mapped
        linearly from ``[low, high]`` to ``[0, 1]`` (binaries stay 0/1).
    """
    checked = validate_attributes(attrs, require_all=True)
    cols = [np.atleast_1d(_SPECS[name].to_unit(checked[name])) for name in ATTRIBUTE_NAMES]
    n = max(c.shape[0] for c in cols)
    cols = [np.broadcast_to(c, (n,)) for c in cols]
    return np.stack(cols, axis=1).astype(np.float32)


def unit_to_attributes(unit) -> dict[str, np.ndarray]:
    """Inverse of :func:`attributes_to_unit`.

    Args:
        unit: array-like ``[n, A]`` or ``[A]`` in ATTRIBUTES order (numpy or torch).

    Returns:
        dict name -> float32 array ``[n]``: continuous attributes mapped back to attribute units
        (clamped to range), binaries thresholded at 0.5 to 0.0/1.0.
    """
    u = _as_array("unit", unit)
    if u.ndim == 1:
        u = u[None]
    if u.ndim != 2 or u.shape[1] != len(ATTRIBUTES):
        raise InvalidArgumentError(
            f"unit_to_attributes needs an array [n, {len(ATTRIBUTES)}] in ATTRIBUTES order, "
            f"got shape {tuple(u.shape)}."
        )
    out: dict[str, np.ndarray] = {}
    for j, spec in enumerate(ATTRIBUTES):
        col = u[:, j]
        if spec.kind == "binary":
            out[spec.name] = (col >= 0.5).astype(np.float32)
        else:
            out[spec.name] = spec.from_unit(np.clip(col, 0.0, 1.0)).astype(np.float32)
    return out
