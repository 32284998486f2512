"""SeFa (Shen & Zhou, CVPR 2021): closed-form edit directions from the generator's own weights.

Every style layer maps W linearly (``s = A w + b``), so moving ``w`` by ``n`` changes that layer's
styles by ``A n``. The unit directions ``n`` that change the chosen layers' styles the most are the
top eigenvectors of ``A^T A``, where ``A`` stacks the chosen layers' affine weights ``[C_l, w_dim]``
(each row normalised to unit length, as the official code does, so no layer dominates by scale).
No sampling, no labels, no training: a few milliseconds.

Edits apply the direction on the W+ rows that feed the chosen layers (SeFa's own convention), so
``layers='coarse'`` finds pose-like directions and edits only the coarse rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import InvalidArgumentError
from .direction import Direction
from .layers import layers_for_direction, resolve_layers

__all__ = ["SefaFactors", "affine_weights", "sefa", "sefa_direction"]


@dataclass(eq=False)
class SefaFactors:
    """Result of :func:`sefa`.

    directions:   ``[K, w_dim]`` unit eigenvectors of ``A^T A``, largest eigenvalue first.
    eigenvalues:  ``[K]`` descending.
    layers:       W+ rows of the chosen style layers (edits apply there).
    style_layers: names of the style layers whose affine weights formed ``A``.
    meta:         timing etc.
    """

    directions: torch.Tensor
    eigenvalues: torch.Tensor
    layers: tuple[int, ...]
    style_layers: tuple[str, ...]
    meta: dict = field(default_factory=dict)


def affine_weights(G, layers="all", *, kinds=("conv",), normalize: bool = True) -> tuple[torch.Tensor, tuple, tuple]:
    """``A [sum C_l, w_dim]``: the effective affine weights of the style layers fed by W+ rows ``layers``.

    Args:
        G: the generator.
        layers: W+ rows (indices, range, ``'all'`` or a preset); every style layer reading one of them counts.
        kinds: which style layers: ``'conv'`` (default, as the official SeFa for StyleGAN2), ``'torgb'``,
            ``'input'`` (StyleGAN3's rotation/translation affine).
        normalize: scale each row to unit length (official SeFa).

    Returns: ``(A, ws_rows, style_layer_names)``.
    """
    rows = resolve_layers(G, layers)
    chosen = [sl for sl in G.style_layers if sl.ws_index in rows and sl.kind in kinds]
    if not chosen:
        raise InvalidArgumentError(f"no {'/'.join(kinds)} style layers read W+ rows {list(rows)}; choose other layers "
                                   f"or kinds (this generator's style layers: "
                                   f"{', '.join(f'{sl.name}<-{sl.ws_index}' for sl in G.style_layers)}).")
    mats = []
    for sl in chosen:
        affine = G.synthesis.get_submodule(sl.name).affine
        w = affine.weight.detach().to(torch.float64) * float(getattr(affine, "weight_gain", 1.0))
        mats.append(w)
    a = torch.cat(mats, dim=0)
    if normalize:
        a = a / a.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return a, tuple(sorted({sl.ws_index for sl in chosen})), tuple(sl.name for sl in chosen)


def sefa(G, *, layers="all", k: int = 10, kinds=("conv",), normalize: bool = True) -> SefaFactors:
    """Closed-form directions: the top-``k`` eigenvectors of ``A^T A`` (see :func:`affine_weights`).

    Args:
        G: the generator.
        layers: W+ rows whose style layers are factorised, e.g. ``'coarse'`` or ``'0-1'`` (default all).
        k: how many directions (1 to ``w_dim``).
        kinds, normalize: see :func:`affine_weights`.

    Returns: :class:`SefaFactors`; ``directions[i]`` satisfies ``A^T A v = eigenvalues[i] v``.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= G.w_dim:
        raise InvalidArgumentError(f"k must be an integer in 1-{G.w_dim}, got {k!r}.")
    t0 = time.perf_counter()
    a, rows, names = affine_weights(G, layers, kinds=kinds, normalize=normalize)
    evals, evecs = torch.linalg.eigh(a.t() @ a)  # ascending
    evals, evecs = evals.flip(0)[:k], evecs.flip(1)[:, :k].t()
    sign = torch.sign(evecs.gather(1, evecs.abs().argmax(1, keepdim=True)))
    evecs = evecs * sign  # deterministic sign: largest entry positive
    return SefaFactors(evecs.to(torch.float32), evals.to(torch.float32), rows, names,
                       {"fit_seconds": time.perf_counter() - t0, "rows_of_A": int(a.shape[0])})


def sefa_direction(factors: SefaFactors, index: int, *, layers=None, G=None) -> Direction:
    """Direction ``index`` of ``factors`` as a :class:`Direction` (unit norm; strength = distance in W)
    that edits ``factors.layers`` unless ``layers`` overrides it (a preset name needs ``G``)."""
    k = factors.directions.shape[0]
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < k:
        raise InvalidArgumentError(f"SeFa direction {index!r} does not exist; choose 0-{k - 1}.")
    rows = factors.layers if layers is None else layers_for_direction(G, layers)
    return Direction(factors.directions[int(index)].clone(), rows, f"SeFa {int(index)}", "sefa", 1.0, None,
                     {"eigenvalue": float(factors.eigenvalues[int(index)])})
