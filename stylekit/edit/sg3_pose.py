"""StyleGAN3 pose: explicit rotation / translation controls, and the W direction that rotates.

StyleGAN3 synthesises from Fourier features whose coordinate frame is an explicit transform, so
the image can be rotated and shifted exactly, without touching the latent code
(:func:`render_pose`, :func:`rotation_sweep`; NVIDIA's ``gen_images.py --rotate/--translate``).

The same frame is also set by the network itself: the input layer's affine map turns the first
W+ row into ``t = (r_c, r_s, t_x, t_y)``; the content is rotated by ``atan2(r_s, r_c)`` and shifted
by ``(t_x, t_y) / |(r_c, r_s)|`` (:func:`input_pose`). So the *first style layer steers rotation*:
regressing that angle on W over random samples (:func:`fit_pose_directions`) gives a
:class:`~stylekit.edit.direction.Direction` on row 0 whose strength is in degrees (or image widths
for the shifts), usable with the same :func:`stylekit.edit.edit` as every other direction.
"""

from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np
import torch

from ..errors import InvalidArgumentError
from ..latent import Latent
from .direction import Direction, as_latent
from .layers import check_strength, layers_for_direction

__all__ = ["is_stylegan3", "render_pose", "rotation_sweep", "translation_sweep", "input_pose",
           "fit_pose_directions", "fit_rotation_direction"]


def is_stylegan3(G) -> bool:
    """True for a generator with StyleGAN3's Fourier-feature input (rotation/translation controls)."""
    inp = getattr(getattr(G, "synthesis", None), "input", None)
    return getattr(G, "arch", "") == "stylegan3" or (inp is not None and hasattr(inp, "affine")
                                                      and hasattr(inp, "transform"))


def _require_sg3(G) -> None:
    if not is_stylegan3(G):
        raise InvalidArgumentError(f"rotation and translation controls need a StyleGAN3 generator, but this one is "
                                   f"{getattr(G, 'arch', type(G).__name__)}; its image is tied to the pixel grid. "
                                   "Load a StyleGAN3 model, or use a fitted 'pose' direction (InterFaceGAN) instead.")


def _check_translate(translate) -> tuple[float, float]:
    try:
        tx, ty = translate
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"translate must be a pair (x, y) in image widths, got {translate!r}.") from None
    return (float(check_strength(tx, name="translate x")), float(check_strength(ty, name="translate y")))


def render_pose(G, latent, *, rotate: float = 0.0, translate: Sequence[float] = (0.0, 0.0),
                noise_mode: str = "const") -> torch.Tensor:
    """Render StyleGAN3 codes rotated by ``rotate`` degrees (counter-clockwise) and shifted by
    ``translate = (x, y)`` image widths, as NVIDIA's ``gen_images.py``. Returns ``[N, 3, R, R]`` in about [-1, 1].

    The latent code is not changed; this is the network's exact equivariance, not an edit.
    """
    lat = as_latent(latent, G)
    _require_sg3(lat.generator if lat.generator is not None else G)
    angle = float(check_strength(rotate, name="rotate"))
    shift = _check_translate(translate)
    return lat.render(G, noise_mode=noise_mode, rotate=angle, translate=shift)


@torch.no_grad()
def rotation_sweep(G, latent, angles: Sequence[float], **kwargs) -> torch.Tensor:
    """Frames of a rotation: ``[len(angles), N, 3, R, R]`` (see :func:`render_pose`)."""
    angles = list(angles)
    if not angles:
        raise InvalidArgumentError("give at least one angle, e.g. range(0, 360, 30).")
    return torch.stack([render_pose(G, latent, rotate=a, **kwargs) for a in angles])


@torch.no_grad()
def translation_sweep(G, latent, shifts: Sequence[Sequence[float]], **kwargs) -> torch.Tensor:
    """Frames of a pan: ``[len(shifts), N, 3, R, R]`` for ``shifts = [(x, y), ...]`` in image widths."""
    shifts = list(shifts)
    if not shifts:
        raise InvalidArgumentError("give at least one (x, y) shift.")
    return torch.stack([render_pose(G, latent, translate=s, **kwargs) for s in shifts])


def _input_params(G, w0: torch.Tensor) -> torch.Tensor:
    """``t = affine(w0)`` of the input layer: ``[N, 4]`` (r_c, r_s, t_x, t_y), unnormalised."""
    return G.synthesis.input.affine(w0.to(torch.float32))


def input_pose(G, latent) -> dict[str, torch.Tensor]:
    """The pose the network itself gives each code (from the input affine of W+ row 0).

    Returns: ``{'rotation': [N] degrees (same sign as render_pose's rotate), 'translate': [N, 2]
    image widths}``.
    """
    _require_sg3(G)
    lat = as_latent(latent, G)
    if lat.space == "s":
        t = lat.tensor[0]
    else:
        t = _input_params(G, lat.ws(G)[:, 0])
    t = t.to(torch.float64)
    norm = t[:, :2].norm(dim=1).clamp_min(1e-12)
    rotation = torch.rad2deg(torch.atan2(t[:, 1], t[:, 0]))
    return {"rotation": rotation.float(), "translate": (t[:, 2:] / norm.unsqueeze(1)).float()}


def _regress(w: torch.Tensor, y: torch.Tensor, name: str) -> tuple[torch.Tensor, dict]:
    """Least-squares ``y ~ w . a + b`` over samples: returns ``a [w_dim]`` and the fit's r2 / correlation."""
    wc = w - w.mean(0)
    yc = y - y.mean()
    a = torch.linalg.lstsq(wc, yc.unsqueeze(1)).solution.squeeze(1)
    spread = float(yc.abs().max())
    if not torch.isfinite(a).all() or spread < 1e-9 or float(a.norm()) < 1e-12:
        raise InvalidArgumentError(f"the network's {name} does not depend on W (its input affine weights are zero, as "
                                   "in an untrained StyleGAN3), so no direction in W changes it; use render_pose "
                                   "for explicit rotation/translation instead.")
    pred = wc @ a
    r2 = 1 - float((yc - pred).square().sum() / yc.square().sum().clamp_min(1e-30))
    corr = float(torch.corrcoef(torch.stack([pred, yc]))[0, 1])
    return a, {"r2": r2, "correlation": corr}


def _direction(a: torch.Tensor, others: list[torch.Tensor], name: str, unit: str, rows, stats: dict) -> Direction:
    """Unit direction along ``a`` (with the ``others`` projected out when given) scaled so that one unit of
    strength changes the regressed quantity by one ``unit`` to first order."""
    d = a.clone()
    if others:
        b = torch.stack(others, dim=1)  # [D, k]
        d = d - b @ torch.linalg.lstsq(b, d.unsqueeze(1)).solution.squeeze(1)
    d = d / d.norm().clamp_min(1e-30)
    slope = float(d @ a)  # change per unit W distance along d
    if not math.isfinite(slope) or abs(slope) < 1e-12:
        raise InvalidArgumentError(f"no direction changes the {name} alone (it moves only together with the others); "
                                   "fit with pure=False.")
    meta = dict(stats, unit=unit, per_unit_w_distance=1.0 / slope, pure=bool(others))
    return Direction(d.to(torch.float32), rows, name, "sg3-" + name.replace("_", "-"), 1.0 / slope, None, meta)


@torch.no_grad()
def fit_pose_directions(G, *, n_samples: int = 4000, seed: int = 0, psi: float = 1.0,
                        layers=(0,), pure: bool = True) -> dict[str, Direction]:
    """Directions in W that rotate and shift the content of a StyleGAN3 image.

    Samples ``n_samples`` W codes, reads the pose each one gets from the input affine
    (:func:`input_pose`), and regresses rotation (degrees, unwrapped around the mean angle) and the
    two shifts (image widths) linearly on W.

    Args:
        G: a StyleGAN3 generator.
        n_samples, seed, psi: the random codes.
        layers: W+ rows the directions act on (default row 0, the only row the input layer reads;
            ``None`` = all rows, which also changes everything the other layers do).
        pure: make each direction orthogonal to the other two regressions, so that to first order the
            rotation direction does not shift the image and the shifts do not rotate it.

    Returns: ``{'rotation', 'translate_x', 'translate_y'}`` -> :class:`Direction`; ``edit(lat, d, 5.0)``
    with the rotation direction turns the content by about 5 degrees. ``meta`` holds the regression's
    ``r2`` and ``correlation`` and ``fit_seconds``.
    """
    _require_sg3(G)
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < G.w_dim + 2:
        raise InvalidArgumentError(f"n_samples must be an integer > w_dim + 1 = {G.w_dim + 1}, got {n_samples!r}.")
    t0 = time.perf_counter()
    rows = layers_for_direction(G, layers)
    w = Latent.sample(G, int(n_samples), seed=seed, psi=psi).tensor[:, 0]
    t = _input_params(G, w).cpu().to(torch.float64)
    w = w.cpu().to(torch.float64)
    mean_dir = t[:, :2].mean(0)
    base = math.atan2(float(mean_dir[1]), float(mean_dir[0]))
    angle = torch.atan2(t[:, 1], t[:, 0]) - base
    angle = torch.remainder(angle + math.pi, 2 * math.pi) - math.pi  # unwrap around the mean angle
    norm = t[:, :2].norm(dim=1).clamp_min(1e-12)
    targets = {"rotation": (torch.rad2deg(angle), "degrees"),
               "translate_x": (t[:, 2] / norm, "image widths"),
               "translate_y": (t[:, 3] / norm, "image widths")}
    fits = {k: _regress(w, y, k) for k, (y, _) in targets.items()}
    out = {}
    for k, (a, stats) in fits.items():
        others = [fits[o][0] for o in fits if o != k] if pure else []
        out[k] = _direction(a, others, k, targets[k][1], rows, stats)
    seconds = time.perf_counter() - t0
    for d in out.values():
        d.meta["fit_seconds"] = seconds
        d.meta["n_samples"] = int(n_samples)
    return out


def fit_rotation_direction(G, **kwargs) -> Direction:
    """The rotation direction of :func:`fit_pose_directions` alone (strength in degrees)."""
    return fit_pose_directions(G, **kwargs)["rotation"]
