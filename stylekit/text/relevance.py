"""StyleCLIP's preprocessing for global directions: every S channel's relevance vector ``Δi_c`` in CLIP image space.

:func:`compute_relevance` measures, over ``n_images`` random codes, how each StyleSpace channel
moves the CLIP image embedding (the formulas and the four methods: :mod:`.relevance_methods`) and
returns a :class:`~stylekit.text.relevance_table.RelevanceTable`. The method is chosen by name or by
an options object that also carries that method's own settings::

    compute_relevance(G, clip)                                             # 'lowrank', rank 32
    compute_relevance(G, clip, method=LowRankOptions(rank=64), n_images=128)
    compute_relevance(G, clip, method="reference", channels=[(0, 3)])     # StyleCLIP's loop

========================  ==========================================================================
``LowRankOptions``        the default: the Jacobian through ``rank`` random probes (fastest)
``JacobianOptions``       the exact Jacobian, ``D`` vector-Jacobian products per code
``DifferenceOptions``     StyleCLIP's ±``sigmas`` finite differences, a block of channels per batch
``ReferenceOptions``      the same differences one channel at a time, as StyleCLIP (the yardstick)
========================  ==========================================================================
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import ClassVar, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from ..edit.layers import check_strength
from ..edit.stylespace import StyleStats, style_statistics
from ..errors import InvalidArgumentError
from ..latent import Latent
from ..progress import no_progress
from .keys import clip_key, generator_fingerprint
from .prompts import resolve_clip
from .relevance_methods import sum_difference, sum_jacobian, sum_lowrank, sum_reference
from .relevance_table import RelevanceTable

__all__ = ["LowRankOptions", "JacobianOptions", "DifferenceOptions", "ReferenceOptions", "RelevanceMethod",
           "METHODS", "method_options", "channel_layout", "compute_relevance", "compute_relevance_reference",
           "RelevancePart", "relevance_part", "relevance_from_parts"]


def _positive_int(value, name: str, *, allow_zero: bool = False) -> int:
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        kind = "a non-negative" if allow_zero else "a positive"
        raise InvalidArgumentError(f"{name} must be {kind} integer, got {value!r}.")
    return int(value)


def _positive_float(value, name: str, hint: str) -> float:
    value = check_strength(value, name=name)
    if value <= 0:
        raise InvalidArgumentError(f"{name} must be positive ({hint}), got {value}.")
    return value


def _normalise(options, **values) -> None:
    for name, value in values.items():
        object.__setattr__(options, name, value)


@dataclass(frozen=True)
class LowRankOptions:
    """``'lowrank'``: the Jacobian through a randomised range finder (:func:`~.relevance_methods.sum_lowrank`).

    rank: probe directions per code; at or above the CLIP's dimension the exact Jacobian is used.
        Raise it for CLIPs with wide embeddings if ``meta['captured_energy']`` is low.
    holdout: extra probes per code that only measure the captured energy.
    probe_step: finite-difference step of the probes, in channel standard deviations.
    grad_chunk: cotangents per batched backward (lower it to save memory).
    """

    rank: int = 32
    holdout: int = 4
    probe_step: float = 0.1
    grad_chunk: int = 32
    name: ClassVar[str] = "lowrank"

    def __post_init__(self):
        _normalise(self, rank=_positive_int(self.rank, "rank"),
                   holdout=_positive_int(self.holdout, "holdout", allow_zero=True),
                   probe_step=_positive_float(self.probe_step, "probe_step", "default 0.1"),
                   grad_chunk=_positive_int(self.grad_chunk, "grad_chunk"))


@dataclass(frozen=True)
class JacobianOptions:
    """``'jacobian'``: the exact derivative ``∂E/∂s``. grad_chunk: cotangents per batched backward."""

    grad_chunk: int = 32
    name: ClassVar[str] = "jacobian"

    def __post_init__(self):
        _normalise(self, grad_chunk=_positive_int(self.grad_chunk, "grad_chunk"))


@dataclass(frozen=True)
class DifferenceOptions:
    """``'difference'``: vectorised finite differences of ±``sigmas`` channel standard deviations
    (StyleCLIP: 5), ``block_size`` channels perturbed in one batch."""

    sigmas: float = 5.0
    block_size: int = 32
    name: ClassVar[str] = "difference"

    def __post_init__(self):
        _normalise(self, sigmas=_positive_float(self.sigmas, "sigmas", "StyleCLIP uses 5"),
                   block_size=_positive_int(self.block_size, "block_size"))


@dataclass(frozen=True)
class ReferenceOptions:
    """``'reference'``: StyleCLIP's loop, one channel at a time, ±``sigmas`` standard deviations (StyleCLIP: 5)."""

    sigmas: float = 5.0
    name: ClassVar[str] = "reference"

    def __post_init__(self):
        _normalise(self, sigmas=_positive_float(self.sigmas, "sigmas", "StyleCLIP uses 5"))


RelevanceMethod = Union[LowRankOptions, JacobianOptions, DifferenceOptions, ReferenceOptions]

#: method name -> its options class (the name alone means that class's defaults)
METHODS: dict[str, type] = {cls.name: cls for cls in (LowRankOptions, JacobianOptions, DifferenceOptions,
                                                      ReferenceOptions)}


def method_options(method) -> RelevanceMethod:
    """The options object of ``method``: a name from :data:`METHODS` (its defaults) or an options object."""
    if isinstance(method, tuple(METHODS.values())):
        return method
    if isinstance(method, str) and method in METHODS:
        return METHODS[method]()
    raise InvalidArgumentError(f"unknown relevance method {method!r}; use one of {', '.join(METHODS)} "
                               "or an options object such as LowRankOptions(rank=32).")


def channel_layout(G) -> list[tuple[int, int]]:
    """Flat channel list: ``(layer index, channel)`` for every S channel, in style-layer order."""
    return [(li, c) for li, sl in enumerate(G.style_layers) for c in range(sl.channels)]


def _check_channels(G, channels) -> list[tuple[int, int]]:
    if channels is None:
        return channel_layout(G)
    layers = G.style_layers
    out = []
    for item in channels:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise InvalidArgumentError(f"channels must be (layer index, channel) pairs, got {item!r}.")
        li, c = int(item[0]), int(item[1])
        if not 0 <= li < len(layers) or not 0 <= c < layers[li].channels:
            raise InvalidArgumentError(f"channel ({li}, {c}) does not exist in this generator "
                                       f"({len(layers)} style layers).")
        out.append((li, c))
    if not out:
        raise InvalidArgumentError("channels is empty; pass None for all channels.")
    return out


def _measure(opts: RelevanceMethod, G, clip, styles, std, chans, *, seed, batch_size, noise_mode, progress,
             image_ids=None):
    """Run one method: ``(sums [K, D], extra meta)``."""
    common = dict(batch_size=batch_size, noise_mode=noise_mode, progress=progress)
    if isinstance(opts, ReferenceOptions):
        return sum_reference(G, clip, styles, std, chans, sigmas=opts.sigmas, **common), {}
    if isinstance(opts, DifferenceOptions):
        return sum_difference(G, clip, styles, std, chans, sigmas=opts.sigmas, block_size=opts.block_size, **common), {}
    if isinstance(opts, LowRankOptions) and opts.rank < clip.embed_dim:
        sums, energy = sum_lowrank(G, clip, styles, std, chans, rank=opts.rank, holdout=opts.holdout,
                                   probe_step=opts.probe_step, seed=seed, grad_chunk=opts.grad_chunk,
                                   image_ids=image_ids, **common)
        return sums, {"captured_energy": energy, "rank": opts.rank}
    sums = sum_jacobian(G, clip, styles, std, chans, grad_chunk=opts.grad_chunk, **common)
    full = {"rank": int(clip.embed_dim), "captured_energy": 1.0} if isinstance(opts, LowRankOptions) else {}
    return sums, full


def _sample(G, n_images, *, seed, psi, stats, stats_samples):
    """The random codes in S (``[n, C_l]`` per layer) and the S statistics."""
    if stats is None:
        stats = style_statistics(G, n_samples=stats_samples, seed=seed + 1, psi=psi)
    elif [int(s.shape[0]) for s in stats.std] != [sl.channels for sl in G.style_layers]:
        raise InvalidArgumentError("these style statistics belong to another generator; recompute them with "
                                   "stylekit.edit.stylespace.style_statistics(G).")
    with torch.no_grad():
        styles = [s.detach() for s in Latent.sample(G, n_images, seed=seed, psi=psi).to_styles(G).tensor]
    return styles, stats


def compute_relevance(G, clip="toyfaces", *, method="lowrank", n_images: int = 100, seed: int = 0,
                      psi: float = 1.0, stats: StyleStats | None = None, stats_samples: int = 2000,
                      channels: Sequence[tuple[int, int]] | None = None, batch_size: int = 16,
                      noise_mode: str = "const", progress=no_progress) -> RelevanceTable:
    """Every S channel's relevance vector ``Δi_c`` in CLIP image space (see the module docstring).

    Args:
        G: the generator.
        clip: a :class:`ClipModel` or a CLIP name.
        method: a name from :data:`METHODS` (``'lowrank'``, the default and fastest; ``'jacobian'``;
            ``'difference'``; ``'reference'``) with that method's default settings, or an options
            object (:class:`LowRankOptions`, :class:`JacobianOptions`, :class:`DifferenceOptions`,
            :class:`ReferenceOptions`) carrying its own.
        n_images: random codes averaged over (StyleCLIP: 100).
        seed, psi: the random codes (``Latent.sample(G, n_images, seed=seed, psi=psi)``).
        stats: S statistics (computed from ``stats_samples`` codes when None).
        channels: ``(layer index, channel)`` pairs to compute (default: all; others stay zero rows).
        batch_size: codes per render (``'jacobian'``, ``'lowrank'``: per forward/backward).
        progress: ``callback(step, total, message)``; it may raise ``Cancelled``.

    Returns: a :class:`RelevanceTable` whose ``meta`` records the method and its options;
    ``meta['seconds']`` is the time spent, statistics excluded; ``'lowrank'`` adds ``meta['rank']``
    and ``meta['captured_energy']``, the mean fraction of the held-out probes' squared norm inside
    the basis.
    """
    part = relevance_part(G, clip, range(int(n_images) if isinstance(n_images, int) else 1), method=method,
                          n_images=n_images, seed=seed, psi=psi, stats=stats, stats_samples=stats_samples,
                          channels=channels, batch_size=batch_size, noise_mode=noise_mode, progress=progress)
    return relevance_from_parts(G, clip, [part], method=method, n_images=n_images, seed=seed, psi=psi,
                                stats=part.stats, channels=channels)


@dataclass
class RelevancePart:
    """The relevance sums over some of the sample's images (a share of :func:`compute_relevance`'s work).

    sums: ``[K, D]`` the sum over these images of each computed channel's unit relevance vector.
    image_ids: the images' indices in the sample of ``n_images`` codes.
    captured_sum: ``'lowrank'``: the sum over these images of the captured energy (else None).
    extra: the method's meta (``rank``, ...); seconds: time spent; stats: the S statistics used.
    """

    sums: torch.Tensor
    image_ids: list[int]
    captured_sum: float | None
    extra: dict
    seconds: float
    stats: StyleStats | None = None


def _prepare(G, clip, method, n_images, batch_size, seed, psi, stats, stats_samples, channels):
    opts = method_options(method)
    n_images = _positive_int(n_images, "n_images")
    batch_size = _positive_int(batch_size, "batch_size")
    clip = resolve_clip(clip, device=G.device)
    chans = _check_channels(G, channels)
    styles, stats = _sample(G, n_images, seed=seed, psi=psi, stats=stats, stats_samples=stats_samples)
    return opts, n_images, batch_size, clip, chans, styles, stats


def relevance_part(G, clip, image_ids, *, method="lowrank", n_images: int = 100, seed: int = 0, psi: float = 1.0,
                   stats: StyleStats | None = None, stats_samples: int = 2000,
                   channels: Sequence[tuple[int, int]] | None = None, batch_size: int = 16, noise_mode: str = "const",
                   progress=no_progress) -> RelevancePart:
    """:func:`compute_relevance`'s sums over the images ``image_ids`` (indices into the ``n_images`` codes).

    Parts over disjoint sets of images add up: :func:`relevance_from_parts` turns parts covering every
    image into the table :func:`compute_relevance` returns (the same numbers up to float summation order:
    the ``'lowrank'`` probes of an image depend only on ``seed`` and its index). This is how
    :func:`stylekit.jobs.relevance_sharded` splits the work over ranks.
    """
    opts, n_images, batch_size, clip, chans, styles, stats = _prepare(G, clip, method, n_images, batch_size, seed,
                                                                      psi, stats, stats_samples, channels)
    ids = [int(i) for i in image_ids]
    if not ids or any(not 0 <= i < n_images for i in ids):
        raise InvalidArgumentError(f"image_ids must be indices in [0, {n_images}), got {ids[:5]}...")
    mine = [s[ids] for s in styles]
    std = [s.to(G.device) for s in stats.std]
    t0 = time.perf_counter()
    sums, extra = _measure(opts, G, clip, mine, std, chans, seed=seed, batch_size=batch_size, noise_mode=noise_mode,
                           progress=progress, image_ids=ids)
    energy = extra.pop("captured_energy", None)
    return RelevancePart(sums, ids, None if energy is None else float(energy) * len(ids), extra,
                         time.perf_counter() - t0, stats)


def relevance_from_parts(G, clip, parts: Sequence[RelevancePart], *, method="lowrank", n_images: int = 100,
                         seed: int = 0, psi: float = 1.0, stats: StyleStats | None = None, stats_samples: int = 2000,
                         channels: Sequence[tuple[int, int]] | None = None) -> RelevanceTable:
    """The :class:`RelevanceTable` from parts that cover each of the ``n_images`` images exactly once.

    ``meta['seconds']`` is the parts' total time (the work, whichever process did it).
    """
    opts = method_options(method)
    n_images = _positive_int(n_images, "n_images")
    clip = resolve_clip(clip, device=G.device)
    chans = _check_channels(G, channels)
    covered = sorted(i for part in parts for i in part.image_ids)
    if covered != list(range(n_images)):
        raise InvalidArgumentError(f"the relevance parts cover {len(set(covered))} distinct images of {n_images} "
                                   f"({len(covered)} in all); every image must be counted exactly once.")
    if stats is None:
        stats = next((p.stats for p in parts if p.stats is not None), None) or _sample(
            G, 1, seed=seed, psi=psi, stats=None, stats_samples=stats_samples)[1]
    mean = sum(p.sums for p in parts) / n_images
    relevance = [torch.zeros(sl.channels, clip.embed_dim) for sl in G.style_layers]
    for (li, c), v in zip(chans, F.normalize(mean, dim=1)):
        relevance[li][c] = v
    extra = dict(parts[0].extra)
    if isinstance(opts, LowRankOptions):  # the mean over images; 1 for the exact Jacobian, None without holdout
        captured = [p.captured_sum for p in parts]
        extra["captured_energy"] = (1.0 if opts.rank >= clip.embed_dim else None if None in captured
                                    else sum(captured) / n_images)
    meta = {"method": opts.name, **asdict(opts), "n_images": n_images, "seed": seed, "psi": psi,
            "seconds": sum(p.seconds for p in parts), "channels_computed": len(chans),
            "mean_consistency": float(mean.norm(dim=1).mean()), "clip_pretrained": str(clip.pretrained), **extra}
    return RelevanceTable(relevance, stats, generator_fingerprint(G), clip_key(clip),
                          tuple(sl.kind for sl in G.style_layers), meta)


def compute_relevance_reference(G, clip="toyfaces", *, sigmas: float = 5.0, **kwargs) -> RelevanceTable:
    """:func:`compute_relevance` with :class:`ReferenceOptions`: one channel at a time, as StyleCLIP does it."""
    return compute_relevance(G, clip, method=ReferenceOptions(sigmas=sigmas), **kwargs)
