"""Translation equivariance and texture sticking, measured and shown (Karras et al. 2021, "Alias-Free GAN").

A generator is translation-equivariant when moving its input grid moves the image and nothing else:
``g(t[x]) = t[g(x)]``. StyleGAN3 is built for it; StyleGAN2 is not (its noise maps, zero padding and
aliasing tie fine detail to pixel coordinates: "texture sticking"). Both are translated the paper's way,
through the input: StyleGAN3's Fourier-feature input is shifted (``translate=``), StyleGAN2's learned 4x4
constant is shifted band-limited (``translate=`` of :class:`~stylekit.networks.stylegan2.StyleGAN2Generator`).

**EQ-T** (the paper's Eq. 14, in the paper's form)::

    EQ-T = 10 log10( I_max^2 / E_{w, t}[ mean over the valid pixels of (g(t[w]) - t[g(w)])^2 ] )

with ``I_max = 2`` (images in ``[-1, 1]``), ``t`` integer-pixel shifts of up to 1/8 of the image (both
images are compared only where both are defined: the shifted-in border is cropped), ``g(t[w])`` the
generator asked to translate its input by ``t`` and ``t[g(w)]`` its untranslated image, shifted. Higher is
better; the paper reports about 15-20 dB for StyleGAN2 and 50-60 dB for StyleGAN3-T on FFHQ.

**The sticking view** (:func:`sticking_frames`): frames of a slow pan of the input, and their average. An
equivariant generator's average is the face smeared along the motion; where detail sticks to the pixel
grid the average keeps it sharp in place while the face moves.

Shapes: codes ``ws [N, num_ws, w_dim]``, or a :class:`~stylekit.latent.Latent` of any space (a StyleSpace
code renders through its styles, a PTI-tuned one through its own generator and noise); images
``[N, 3, R, R]`` in about ``[-1, 1]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..errors import InvalidArgumentError
from ..latent import Latent

__all__ = ["translated", "shift_image", "EquivarianceResult", "eq_t", "sticking_frames", "random_shifts"]

MAX_SHIFT_FRACTION = 1 / 8  # the paper's translation range, in image widths


def _check_generator(G) -> None:
    if getattr(G, "arch", None) not in ("stylegan2", "stylegan3"):
        raise InvalidArgumentError(f"translation equivariance is defined here for StyleGAN2 and StyleGAN3 "
                                   f"generators, not {getattr(G, 'arch', type(G).__name__)!r}.")


def _render(G, codes, translate=(0.0, 0.0), *, noise_mode: str, precision: str | None) -> torch.Tensor:
    """Images ``[N, 3, R, R]`` float32 of ``codes`` (``ws`` or a Latent, see the module docstring), input moved by
    ``translate`` image widths."""
    if isinstance(codes, Latent):
        return codes.render(G, noise_mode=noise_mode, translate=translate, precision=precision).float()
    return G.synthesis(codes, noise_mode=noise_mode, translate=translate, precision=precision).float()


@torch.no_grad()
def translated(G, ws: torch.Tensor | Latent, shift_px: Sequence[int], *, noise_mode: str = "const",
               precision: str | None = None) -> torch.Tensor:
    """``g(t[w])``: G's images ``[N, 3, R, R]`` of codes ``ws`` with its input grid moved by ``shift_px = (dx, dy)``
    output pixels (content moves right / down for positive values)."""
    _check_generator(G)
    r = G.img_resolution
    dx, dy = (float(v) for v in shift_px)
    return _render(G, ws, (dx / r, dy / r), noise_mode=noise_mode, precision=precision)


def shift_image(images: torch.Tensor, shift_px: Sequence[int]) -> tuple[torch.Tensor, tuple[slice, slice]]:
    """``t[x]``: ``images [N, C, H, W]`` moved by the integer ``(dx, dy)`` pixels (right / down), and the rows and
    columns where the moved image is defined (the vacated border is not)."""
    dx, dy = (int(v) for v in shift_px)
    h, w = images.shape[-2:]
    if abs(dx) >= w or abs(dy) >= h:
        raise InvalidArgumentError(f"a shift of {(dx, dy)} pixels leaves nothing of a {w}x{h} image.")
    out = torch.roll(images, shifts=(dy, dx), dims=(-2, -1))
    rows = slice(max(dy, 0), h + min(dy, 0))
    cols = slice(max(dx, 0), w + min(dx, 0))
    return out, (rows, cols)


def random_shifts(resolution: int, count: int, *, seed: int = 0,
                  max_fraction: float = MAX_SHIFT_FRACTION) -> list[tuple[int, int]]:
    """``count`` integer shifts ``(dx, dy)``, each uniform in ``[-m, m]`` pixels with ``m = max_fraction * R``
    (at least 1), never ``(0, 0)``."""
    m = max(1, int(math.floor(max_fraction * resolution)))
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        dx, dy = (int(v) for v in rng.integers(-m, m + 1, size=2))
        if (dx, dy) != (0, 0):
            out.append((dx, dy))
    return out


@dataclass
class EquivarianceResult:
    """What :func:`eq_t` measured: ``eq_t_db`` over all pairs, and per code ``per_code_db [N]`` (each code's
    mean squared error over its shifts, in the same dB form), for intervals."""

    eq_t_db: float
    per_code_db: torch.Tensor
    shifts: list

    def as_dict(self) -> dict:
        return {"eq_t_db": self.eq_t_db, "codes": int(self.per_code_db.numel()), "shifts": len(self.shifts)}


def _db(mse: torch.Tensor) -> torch.Tensor:
    return 10.0 * torch.log10(4.0 / mse.clamp_min(1e-20))  # I_max = 2 for images in [-1, 1]


@torch.no_grad()
def eq_t(G, ws: torch.Tensor | Latent, shifts: Sequence[Sequence[int]], *, noise_mode: str = "const",
         precision: str | None = None, base: torch.Tensor | None = None) -> EquivarianceResult:
    """EQ-T of ``G`` (see the module docstring) over codes ``ws`` (``[N, num_ws, w_dim]`` or a Latent) and
    integer ``shifts``. ``base``: the codes' untranslated images ``[N, 3, R, R]`` when the caller has already
    rendered them (``translated(G, ws, (0, 0))`` with the same noise mode and precision), else rendered here."""
    _check_generator(G)
    shifts = [tuple(int(v) for v in s) for s in shifts]
    if not shifts:
        raise InvalidArgumentError("give at least one (dx, dy) shift, e.g. random_shifts(G.img_resolution, 8).")
    if base is None:
        base = _render(G, ws, noise_mode=noise_mode, precision=precision)
    errors = []  # [S, N]
    for s in shifts:
        moved, (rows, cols) = shift_image(base, s)
        asked = translated(G, ws, s, noise_mode=noise_mode, precision=precision)
        errors.append((asked - moved)[..., rows, cols].pow(2).flatten(1).mean(1))
    mse = torch.stack(errors)
    return EquivarianceResult(eq_t_db=float(_db(mse.mean())), per_code_db=_db(mse.mean(0)), shifts=shifts)


@torch.no_grad()
def sticking_frames(G, ws: torch.Tensor | Latent, *, steps: int = 9, max_shift_px: float | None = None,
                    noise_mode: str = "const", precision: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A horizontal pan of the input grid over ``steps`` frames from ``-m`` to ``+m`` pixels (``m`` default
    R/8), for codes ``ws`` (``[N, ...]`` or a Latent): returns ``(frames [steps, N, 3, R, R], average [N, 3, R, R])``."""
    _check_generator(G)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 2 <= steps <= 64:
        raise InvalidArgumentError(f"steps must be an integer from 2 to 64, got {steps!r}.")
    m = G.img_resolution * MAX_SHIFT_FRACTION if max_shift_px is None else float(max_shift_px)
    if not (math.isfinite(m) and 0 < m <= G.img_resolution / 2):
        raise InvalidArgumentError(f"max_shift_px must be in (0, {G.img_resolution / 2}], got {max_shift_px!r}.")
    frames = torch.stack([translated(G, ws, (x, 0.0), noise_mode=noise_mode, precision=precision)
                          for x in np.linspace(-m, m, steps)])
    return frames, frames.mean(0)
