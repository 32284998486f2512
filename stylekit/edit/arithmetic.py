"""Latent arithmetic: interpolation, style mixing, analogies and truncation.

All functions take and return :class:`~stylekit.latent.Latent` codes. Shapes: ``N`` codes of
``[num_ws, w_dim]`` in W/W+ (a W code has equal rows), ``[z_dim]`` in Z, a list of ``[C_l]`` per
style layer in S. Two codes with different ``N`` combine when one of them has ``N == 1`` (it is
broadcast). Layer choices (``layers=``) accept indices, ranges, ``'4-7'``, ``'all'`` and the presets
``'coarse'`` / ``'middle'`` / ``'fine'`` computed from the generator (see :mod:`stylekit.edit.layers`).

- :func:`lerp`: straight line ``a + t (b - a)``; right for W/W+/S, where the mapping network has
  already undone Z's Gaussian shell.
- :func:`slerp`: along the great circle with the norm interpolated linearly; right for Z, whose
  samples live near a sphere of radius ``sqrt(z_dim)`` (a straight line would cut inside it).
- :func:`style_mix`, :func:`crossover`, :func:`mixing_grid`: take some W+ rows from another code
  (Karras et al. 2019, Fig. 3).
- :func:`analogy`: ``w1 + strength (w3 - w2)``, e.g. transfer the expression change ``w2 -> w3``
  (neutral -> smiling) of one face onto another face ``w1``.
- :func:`truncate`: ``w_avg + psi (w - w_avg)`` on the first ``cutoff`` rows.
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np
import torch

from ..errors import InvalidArgumentError
from ..latent import Latent
from .direction import as_latent
from .layers import check_strength, resolve_layers

__all__ = ["lerp", "slerp", "interpolate", "interpolation_frames", "style_mix", "crossover", "MixingGrid",
           "mixing_grid", "analogy", "truncate"]


# ----------------------------------------------------------------------------------------------
# helpers


def _pair(a, b, G) -> tuple[Latent, Latent, str]:
    """Bring two codes into one space (converting with G when they differ)."""
    a, b = as_latent(a, G), as_latent(b, G)
    spaces = {a.space, b.space}
    if len(spaces) == 1:
        space = a.space
    elif spaces <= {"w", "w+"}:
        space = "w+"
    else:
        if G is None and a.generator is None and b.generator is None:
            raise InvalidArgumentError(f"the two codes are in different spaces ({a.space!r} and {b.space!r}); pass G so "
                                       "they can be converted, or convert them yourself first.")
        space = "s" if "s" in spaces else "w+"
        a = a.to_styles(G) if space == "s" else a.to_wplus(G)
        b = b.to_styles(G) if space == "s" else b.to_wplus(G)
    if space == "s":
        if len(a.tensor) != len(b.tensor) or any(x.shape[1] != y.shape[1] for x, y in zip(a.tensor, b.tensor)):
            raise InvalidArgumentError("the two S codes come from different generators (their style layers differ).")
    elif a.tensor.shape[1:] != b.tensor.shape[1:]:
        raise InvalidArgumentError(f"the two codes have different shapes {list(a.tensor.shape[1:])} and "
                                   f"{list(b.tensor.shape[1:])}; they come from different generators.")
    na, nb = a.batch_size, b.batch_size
    if na != nb and 1 not in (na, nb):
        raise InvalidArgumentError(f"cannot combine {na} codes with {nb} codes; use the same number, or one code.")
    return a, b, space


def _weights(t, n: int, like: torch.Tensor, name: str = "t") -> torch.Tensor:
    t = check_strength(t, name=name, batch=n)
    t = t.to(like) if isinstance(t, torch.Tensor) else torch.tensor(t, dtype=like.dtype, device=like.device)
    return t.reshape(-1)


def _bcast(t: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1, *([1] * (ref.ndim - 1)))


def _combine_extras(a: Latent, b: Latent, fn) -> dict:
    noise = None
    if a.noise is not None and b.noise is not None and len(a.noise) == len(b.noise):
        noise = [fn(x, y) for x, y in zip(a.noise, b.noise)]
    elif a.noise is not None and b.noise is None:
        noise = a.noise
    generator = a.generator if a.generator is b.generator else None
    return {"noise": noise, "generator": generator}


def _result_space(space: str, a: Latent, b: Latent) -> str:
    if space == "w" and not (a.space == "w" and b.space == "w"):
        return "w+"
    return space


# ----------------------------------------------------------------------------------------------
# interpolation


def lerp(a, b, t, *, G=None) -> Latent:
    """Linear interpolation ``a + t (b - a)``.

    Args:
        a, b: codes in the same space (W and W+ mix to W+; with ``G`` other spaces are converted).
        t: a finite float (0 gives ``a``, 1 gives ``b``; outside [0, 1] extrapolates) or ``[N]``.
        G: needed only to convert between spaces.

    Returns: a Latent in the shared space. Noise maps present on both codes are interpolated too;
    a tuned generator is kept only when both codes share it.
    """
    a, b, space = _pair(a, b, G)
    ref = a.tensor[0] if space == "s" else a.tensor
    w = _weights(t, max(a.batch_size, b.batch_size), ref)

    def mix(x, y):
        tt = _bcast(w, x) if w.numel() > 1 else w.reshape(())
        return x + tt * (y - x)

    if space == "s":
        tensor = [mix(x, y) for x, y in zip(a.tensor, b.tensor)]
    else:
        tensor = mix(a.tensor, b.tensor)
    return Latent(_result_space(space, a, b), tensor, **_combine_extras(a, b, mix))


def slerp(a, b, t, *, G=None, eps: float = 1e-7) -> Latent:
    """Spherical interpolation along the last dimension, with the norm interpolated linearly.

    For Z codes ``[N, z_dim]`` this keeps samples on the Gaussian shell: when ``|a| == |b|`` every
    frame has that same norm. W/W+ codes are interpolated row by row. Nearly parallel vectors fall
    back to :func:`lerp`.

    Args: as :func:`lerp`. Returns: a Latent in the shared space.
    """
    a, b, space = _pair(a, b, G)
    if space == "s":
        raise InvalidArgumentError("slerp is meant for Z (and W); interpolate S codes with lerp.")
    x, y = a.tensor, b.tensor
    w = _weights(t, max(a.batch_size, b.batch_size), x)
    tt = _bcast(w, x) if w.numel() > 1 else w.reshape(())
    nx = x.norm(dim=-1, keepdim=True)
    ny = y.norm(dim=-1, keepdim=True)
    ux = x / nx.clamp_min(eps)
    uy = y / ny.clamp_min(eps)
    cos = (ux * uy).sum(-1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    so = torch.sin(omega)
    close = so.abs() < 1e-4
    safe = torch.where(close, torch.ones_like(so), so)
    ca = torch.where(close, 1 - tt, torch.sin((1 - tt) * omega) / safe)
    cb = torch.where(close, tt, torch.sin(tt * omega) / safe)
    u = ca * ux + cb * uy
    u = u / u.norm(dim=-1, keepdim=True).clamp_min(eps)
    out = u * (nx + tt * (ny - nx))
    extras = _combine_extras(a, b, lambda p, q: p + (_bcast(w, p) if w.numel() > 1 else w.reshape(())) * (q - p))
    return Latent(_result_space(space, a, b), out, **extras)


def interpolate(a, b, t, *, G=None, method: str = "auto") -> Latent:
    """``method='auto'``: :func:`slerp` for Z codes, :func:`lerp` otherwise; or ``'lerp'`` / ``'slerp'``."""
    if method not in ("auto", "lerp", "slerp"):
        raise InvalidArgumentError(f"unknown interpolation method {method!r}; use 'auto', 'lerp' or 'slerp'.")
    if method == "auto":
        a_, b_ = as_latent(a, G), as_latent(b, G)
        method = "slerp" if a_.space == "z" and b_.space == "z" else "lerp"
    return slerp(a, b, t, G=G) if method == "slerp" else lerp(a, b, t, G=G)


def interpolation_frames(a, b, n: int, *, G=None, method: str = "auto") -> list[Latent]:
    """``n`` evenly spaced frames from ``a`` (first) to ``b`` (last), for a morph animation.

    Args:
        a, b: codes (see :func:`lerp`).
        n: number of frames, an integer >= 2.
        method: ``'auto'`` (slerp in Z, lerp elsewhere), ``'lerp'`` or ``'slerp'``.

    Returns: a list of ``n`` Latents; frame ``k`` is at ``t = k / (n - 1)``.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise InvalidArgumentError(f"the number of frames must be an integer >= 2, got {n!r}.")
    return [interpolate(a, b, float(k) / (n - 1), G=G, method=method) for k in range(int(n))]


# ----------------------------------------------------------------------------------------------
# style mixing


def _two_wplus(G, a, b) -> tuple[Latent, Latent]:
    if G is None:
        raise InvalidArgumentError("style mixing needs the generator G (to map codes and resolve layer presets).")
    a, b = as_latent(a, G), as_latent(b, G)
    if "s" in (a.space, b.space):
        raise InvalidArgumentError("style mixing works on W/W+ rows; mix before converting to S (or use "
                                   "stylekit.edit.local for S-space part transfer).")
    a, b = a.to_wplus(G), b.to_wplus(G)
    na, nb = a.batch_size, b.batch_size
    if na != nb and 1 not in (na, nb):
        raise InvalidArgumentError(f"cannot mix {na} codes with {nb} codes; use the same number, or one code.")
    return a, b


def style_mix(G, a, b, layers="coarse") -> Latent:
    """Code ``a`` with the W+ rows ``layers`` taken from code ``b``.

    Args:
        G: the generator.
        a: the base code (its other rows are kept), ``N`` or 1 codes.
        b: the code that provides ``layers``, ``N`` or 1 codes.
        layers: which rows to take from ``b``: ``'coarse'`` (pose, face shape), ``'middle'`` (features,
            hair style), ``'fine'`` (colours, texture), indices, or a range.

    Returns: a ``'w+'`` Latent ``[max(N_a, N_b), num_ws, w_dim]`` (``a``'s noise/generator kept).
    """
    a, b = _two_wplus(G, a, b)
    rows = list(resolve_layers(G, layers))
    n = max(a.batch_size, b.batch_size)
    out = a.tensor.expand(n, -1, -1).clone()
    out[:, rows] = b.tensor.expand(n, -1, -1)[:, rows]
    return a.replace(space="w+", tensor=out)


def crossover(G, a, b, cutoff: int) -> Latent:
    """Rows ``[0, cutoff)`` from ``a`` and ``[cutoff, num_ws)`` from ``b`` (StyleGAN's mixing regulariser)."""
    if isinstance(cutoff, bool) or not isinstance(cutoff, (int, np.integer)) or not 0 < cutoff < G.num_ws:
        raise InvalidArgumentError(f"the crossover point must be an integer in 1-{G.num_ws - 1} for this generator's "
                                   f"{G.num_ws} W+ layers, got {cutoff!r}.")
    return style_mix(G, a, b, range(int(cutoff), G.num_ws))


@dataclass
class MixingGrid:
    """Result of :func:`mixing_grid`.

    images:     ``[R, C, 3, H, W]`` cell ``(i, j)`` = row code ``i`` with ``layers`` from column code ``j``.
    row_images: ``[R, 3, H, W]`` the row codes alone.
    col_images: ``[C, 3, H, W]`` the column codes alone.
    latents:    the ``R * C`` mixed codes (row-major) as one W+ Latent.
    layers:     the W+ rows taken from the columns.
    """

    images: torch.Tensor
    row_images: torch.Tensor
    col_images: torch.Tensor
    latents: Latent
    layers: tuple[int, ...]


def _as_batch(G, latents) -> Latent:
    if isinstance(latents, (list, tuple)):
        latents = Latent.cat([as_latent(x, G).to_wplus(G) for x in latents])
    return as_latent(latents, G).to_wplus(G)


@torch.no_grad()
def mixing_grid(G, row_latents, col_latents, layers="coarse", *, noise_mode: str = "const",
                batch_size: int = 16) -> MixingGrid:
    """The style-mixing figure: every row code combined with every column code.

    Cell ``(i, j)`` keeps row code ``i`` and takes the rows ``layers`` from column code ``j`` (as
    NVIDIA's ``style_mixing.py``): with ``'coarse'`` the column decides pose and shape, the row
    keeps identity details and colours.

    Args:
        G: the generator.
        row_latents, col_latents: a Latent holding several codes, or a list of Latents.
        layers: preset name, indices or range (see :func:`style_mix`).
        noise_mode: passed to synthesis.
        batch_size: codes rendered per synthesis call.

    Returns: a :class:`MixingGrid`.
    """
    rows = _as_batch(G, row_latents)
    cols = _as_batch(G, col_latents)
    idx = list(resolve_layers(G, layers))
    r, c = rows.batch_size, cols.batch_size
    mixed = rows.tensor.unsqueeze(1).repeat(1, c, 1, 1)  # [R, C, num_ws, w_dim]
    mixed[:, :, idx] = cols.tensor.unsqueeze(0).expand(r, -1, -1, -1)[:, :, idx]
    mixed = mixed.reshape(r * c, G.num_ws, G.w_dim)

    def render(ws):
        return torch.cat([G.synthesis(ws[i:i + batch_size], noise_mode=noise_mode)
                          for i in range(0, ws.shape[0], batch_size)])

    images = render(mixed)
    return MixingGrid(images.reshape(r, c, *images.shape[1:]), render(rows.tensor), render(cols.tensor),
                      Latent("w+", mixed), tuple(idx))


# ----------------------------------------------------------------------------------------------
# analogies and truncation


def analogy(G, target, source_from, source_to, *, strength: float = 1.0, layers=None) -> Latent:
    """Expression transfer by analogy: ``target + strength * (source_to - source_from)``.

    Example: ``source_from`` a neutral face, ``source_to`` the same person smiling, ``target``
    someone else: the result is ``target`` smiling. Restricting ``layers`` (e.g. ``'middle'``) keeps
    the rest of ``target`` (pose, colours) untouched.

    Args:
        G: the generator (maps Z codes, resolves presets); may be None for W/W+ codes and index layers.
        target: ``N`` or 1 codes.
        source_from, source_to: the two ends of the change, ``N`` or 1 codes each.
        strength: finite multiplier of the difference (1 = the full change).
        layers: W+ rows to change (default: all).

    Returns: ``'w'`` when every input is W and all rows change, else ``'w+'``.
    """
    t, f, s = (as_latent(x, G) for x in (target, source_from, source_to))
    for lat in (t, f, s):
        if lat.space == "s":
            raise InvalidArgumentError("analogy works on W/W+ codes; convert to S only after editing.")
    t, f, s = (lat.to_w(G) if lat.space == "z" else lat for lat in (t, f, s))
    shapes = {tuple(lat.tensor.shape[1:]) for lat in (t, f, s)}
    if len(shapes) != 1:
        raise InvalidArgumentError(f"the three codes have different shapes {sorted(shapes)}; they come from different "
                                   "generators.")
    ns = {lat.batch_size for lat in (t, f, s)} - {1}
    if len(ns) > 1:
        raise InvalidArgumentError(f"the codes hold {sorted(ns)} codes each; use the same number, or one code.")
    num_ws = t.tensor.shape[1]
    rows = list(resolve_layers(G, layers, num_ws=num_ws))
    k = check_strength(strength)
    delta = (s.tensor - f.tensor) * k
    mask = torch.zeros(1, num_ws, 1, dtype=delta.dtype, device=delta.device)
    mask[:, rows] = 1
    out = t.tensor + delta * mask
    all_w = all(lat.space == "w" for lat in (t, f, s)) and len(rows) == num_ws
    return t.replace(space="w" if all_w else "w+", tensor=out)


def truncate(G, latent, psi: float, *, cutoff: int | None = None, layers=None) -> Latent:
    """Truncation toward the average code: ``w_avg + psi (w - w_avg)`` on some rows.

    Args:
        G: the generator (provides ``w_avg [w_dim]``).
        latent: ``N`` codes in Z, W or W+.
        psi: finite; 1 leaves the code alone, 0 gives the average face, 0.5-0.8 trades variety for quality.
        cutoff: truncate only rows ``[0, cutoff)`` (StyleGAN's ``truncation_cutoff``); rows from
            ``cutoff`` on are left exactly as they were. None = every row.
        layers: alternatively, an explicit row choice (not together with ``cutoff``).

    Returns: a Latent (``'w'`` when a W code is truncated on every row, else ``'w+'``).
    """
    psi = check_strength(psi, name="truncation psi")
    lat = as_latent(latent, G)
    if lat.space == "s":
        raise InvalidArgumentError("truncation works in W/W+; truncate before converting to S.")
    lat = lat.to_w(G) if lat.space == "z" else lat
    lat.check_compatible(G)
    if cutoff is not None and layers is not None:
        raise InvalidArgumentError("pass either cutoff or layers, not both.")
    if cutoff is not None:
        if isinstance(cutoff, bool) or not isinstance(cutoff, (int, np.integer)) or not 0 <= cutoff <= G.num_ws:
            raise InvalidArgumentError(f"truncation cutoff must be an integer in 0-{G.num_ws}, got {cutoff!r}.")
        rows = list(range(int(cutoff)))
    else:
        rows = list(resolve_layers(G, layers))
    out = lat.tensor.clone()
    if rows:
        avg = G.w_avg.to(out)
        out[:, rows] = avg + psi * (out[:, rows] - avg)
    keep_w = lat.space == "w" and len(rows) in (0, G.num_ws)
    return lat.replace(space="w" if keep_w else "w+", tensor=out)

