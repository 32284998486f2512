"""StyleCLIP global directions: per-channel relevance in CLIP space, computed once, then any prompt instantly.

Preprocessing (once per generator and CLIP). For every StyleSpace channel ``c`` (all style layers,
conv and toRGB) and ``n_images`` random codes ``s``, StyleCLIP measures how the CLIP image
embedding moves when the channel is pushed ``sigmas`` of its standard deviation either way::

    d_i,c  = E(G(s_i + sigmas * std_c * e_c)) - E(G(s_i - sigmas * std_c * e_c))   E: unit CLIP image embedding
    Δi_c   = normalize( mean_i normalize(d_i,c) )                                  [D], the relevance vector

Four ways to get ``Δi_c`` (``method=``):

- ``'reference'``: the straightforward loop, one channel at a time, ``2 * n_images`` renders per
  channel (what StyleCLIP's preprocessing does; the yardstick).
- ``'difference'``: the same finite differences, vectorised: a block of channels is perturbed across
  one batch (``2 * block * images`` codes built with one indexed add per layer), rendered and
  embedded together. Same numbers as ``'reference'`` up to float rounding; faster only by batching.
- ``'jacobian'``: the central difference is the derivative to second order, so take the
  derivative: one forward pass per image batch and ``D`` vector-Jacobian products (all ``D`` CLIP
  dimensions at once through ``is_grads_batched``) give ``∂E/∂s`` for *every* channel; each
  image's column ``∂E/∂s_c`` plays the role of ``d_i,c``. Cost ``~ 1 + 2D`` forward passes per image
  instead of ``2 * channels``, i.e. an order of magnitude fewer when a generator has many more S
  channels than CLIP has dimensions (toyfaces: 1408 vs 128; FFHQ-1024: 9088 vs 512). It is a
  linearisation of the ±5σ secant, so it agrees with the reference closely but not exactly; the
  benchmark measures the agreement.
- ``'lowrank'`` (default): the same Jacobian, through a randomised range finder. Each image's
  Jacobian ``J_i = ∂E/∂s`` ``[D, channels]`` is numerically low-rank (toyfaces: 16 of 128
  directions hold 99 % of its energy), so ``rank`` random StyleSpace probes ``J_i Ω`` (forward
  differences, forward passes only, no graph), orthonormalised to ``Q_i`` ``[D, rank]``, span
  nearly all of its range; then ``rank`` vector-Jacobian products give ``Q_iᵀ J_i`` and
  ``J_i ≈ Q_i Q_iᵀ J_i`` (Halko, Martinsson & Tropp 2011). Cost ``~ 1 + 2 rank`` forward-pass
  equivalents plus ``rank`` forward passes per image instead of ``1 + 2D``. A few held-out
  probes measure how much of ``J_i`` the basis captures (``meta['captured_energy']``, 1 = all);
  ``rank >= D`` is the exact ``'jacobian'``.

Editing (instant). For a text pair, ``Δt = normalize(T(target) - T(neutral))``; each channel's relevance is
``r_c = Δi_c · Δt``; channels with ``|r_c| < beta`` are dropped, the rest scaled by ``1 / max |r|``::

    s' = s + alpha * (r_c / max|r|) * std_c        on channels with |r_c| >= beta

(StyleCLIP eq. 5 and its manipulator). Two options go beyond StyleCLIP (see :func:`global_direction`):
``whiten`` scores channels by the cosine in a whitened relevance space, which discounts the CLIP
axes that nearly every channel moves, and ``top_k`` keeps a fixed number of the most relevant
channels instead of whatever passes ``beta``. The :class:`RelevanceTable` (vectors + S mean/std) is saved as
safetensors keyed by a fingerprint of the generator's weights and the CLIP's name and weights, so a
table made for another generator or CLIP is refused with a clear error instead of producing garbage edits.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..latent import as_latent
from ..edit.layers import check_strength
from ..edit.stylespace import StyleStats, style_statistics
from ..errors import CheckpointError, InvalidArgumentError
from ..latent import Latent
from ..progress import no_progress
from .prompts import resolve_clip, text_direction

__all__ = ["RelevanceTable", "StyleDirection", "generator_fingerprint", "clip_key", "compute_relevance",
           "compute_relevance_reference", "save_relevance", "load_relevance", "relevance_for", "default_cache_dir",
           "shipped_table", "shipped_table_path",
           "global_direction", "global_edit", "METHODS"]

METHODS = ("lowrank", "jacobian", "difference", "reference")
_FORMAT = "stylekit-relevance"
_FORMAT_VERSION = "1"


# ----------------------------------------------------------------------------------------------
# Keys


_FINGERPRINTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _version_key(G) -> tuple:
    return tuple((t.data_ptr(), t._version) for t in G.state_dict().values())


def generator_fingerprint(G) -> str:
    """A hex digest of the generator's architecture, config and every weight and buffer.

    Two generators share it only when they compute the same function (a PTI-tuned copy, another
    checkpoint or another architecture all differ), so relevance files can be keyed by it. The digest
    is remembered per generator object until one of its tensors changes.
    """
    key = _version_key(G)
    known = _FINGERPRINTS.get(G)
    if known is not None and known[0] == key:
        return known[1]
    h = hashlib.blake2b(digest_size=20)
    h.update(str(getattr(G, "arch", type(G).__name__)).encode())
    h.update(json.dumps(getattr(G, "config", {}), sort_keys=True, default=str).encode())
    for name, t in G.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    digest = h.hexdigest()
    _FINGERPRINTS[G] = (key, digest)
    return digest


def clip_key(clip) -> str:
    """The CLIP identity a relevance table is keyed by: its name and a digest of its weights.

    ``'toyfaces:1a2b3c4d5e6f7a8b'``, ``'ViT-B-32:...'``: the name alone is not enough, because one
    architecture comes with many weights (open_clip's pretrained tags, a fine-tuned toyfaces CLIP),
    and a table measured in one CLIP's image space means nothing in another's. The digest is
    :func:`generator_fingerprint` of the open_clip model (remembered until a weight changes).
    """
    return f"{clip.name}:{generator_fingerprint(clip.model)[:16]}"


# ----------------------------------------------------------------------------------------------
# The table


@dataclass(eq=False)
class RelevanceTable:
    """Relevance vectors of every S channel in CLIP image space, with S statistics.

    Attributes:
        relevance: one ``[C_l, D]`` tensor per entry of ``G.style_layers``; rows are unit vectors
            ``Δi_c`` (zero rows for channels that were not computed or have no effect).
        stats: the S channel mean/std (:class:`~stylekit.edit.stylespace.StyleStats`).
        fingerprint: :func:`generator_fingerprint` of the generator it was computed for.
        clip_id: the CLIP's name and weights digest (:func:`clip_key`).
        layer_kinds: each style layer's kind (``'conv'``, ``'torgb'``, ``'input'``).
        meta: how it was computed (method, n_images, sigmas, seconds, ...).
    """

    relevance: list[torch.Tensor]
    stats: StyleStats
    fingerprint: str
    clip_id: str
    layer_kinds: tuple[str, ...]
    meta: dict = field(default_factory=dict)
    _whiteners: dict = field(default_factory=dict, init=False, repr=False)

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(self.stats.layer_names)

    @property
    def embed_dim(self) -> int:
        return int(self.relevance[0].shape[1])

    @property
    def num_channels(self) -> int:
        return sum(int(r.shape[0]) for r in self.relevance)

    def flat(self) -> torch.Tensor:
        """All relevance vectors as one ``[channels, D]`` tensor, in style-layer order."""
        return torch.cat(self.relevance)

    def vectors(self, channels: Sequence[tuple[int, int]]) -> torch.Tensor:
        """The relevance vectors ``[K, D]`` of ``(layer index, channel)`` pairs."""
        return torch.stack([self.relevance[li][c] for li, c in channels])

    def whitener(self, shrink: float) -> torch.Tensor:
        """The symmetric ``[D, D]`` matrix ``W = (Σ + shrink * mean(eig Σ) * I)^(-1/2)``.

        ``Σ = mean_c Δi_c Δi_cᵀ`` over the computed channels: the second moment of the relevance
        vectors. Its large eigen-axes are CLIP directions that a great many channels move (on
        toyfaces the top 10 of 128 hold about 95 % of the energy: overall colour, face shape, ...);
        ``W`` shrinks them so that a channel scores by what sets it apart. ``shrink`` (> 0) keeps
        ``W`` well conditioned: large values approach the identity (StyleCLIP's plain cosine).
        Remembered per ``shrink``.
        """
        key = float(shrink)
        if key not in self._whiteners:
            rows = self.flat().double()
            rows = rows[rows.abs().sum(1) > 0]
            sigma = rows.T @ rows / max(rows.shape[0], 1)
            ev, U = torch.linalg.eigh(sigma)
            ev = ev.clamp(min=0.0)
            self._whiteners[key] = (U @ torch.diag((ev + key * ev.mean()).rsqrt()) @ U.T).float()
        return self._whiteners[key]

    def check_generator(self, G) -> None:
        """CheckpointError unless this table was computed for ``G`` (same fingerprint)."""
        fp = generator_fingerprint(G)
        if fp != self.fingerprint:
            raise CheckpointError(
                f"this relevance table was computed for another generator (fingerprint {self.fingerprint[:12]}..., "
                f"this one is {fp[:12]}...). Compute one for this generator with "
                "stylekit.text.relevance_for(G, clip) (it is cached afterwards).")

    def check_clip(self, clip) -> None:
        """CheckpointError unless this table was computed with ``clip``."""
        key = clip_key(clip)
        if key != self.clip_id:
            same_name = key.split(":")[0] == self.clip_id.split(":")[0]
            what = (f"CLIP {clip.name!r} with other weights ({self.clip_id!r}, this one is {key!r})" if same_name
                    else f"CLIP {self.clip_id!r}, not {key!r}")
            raise CheckpointError(
                f"this relevance table was computed with {what}; text directions of one CLIP mean nothing in "
                "another's space. Load that CLIP, or compute a table for this one with "
                "stylekit.text.relevance_for(G, clip).")


def _layout(G) -> list[tuple[int, int]]:
    """Flat channel list: ``(layer index, channel)`` for every S channel, in style-layer order."""
    return [(li, c) for li, sl in enumerate(G.style_layers) for c in range(sl.channels)]


def _check_channels(G, channels) -> list[tuple[int, int]]:
    if channels is None:
        return _layout(G)
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


def _flat_index(styles, channels, device) -> torch.Tensor:
    """Positions ``[K]`` of ``(layer, channel)`` pairs in the concatenated ``styles`` (``[m, C_l]`` per layer)."""
    offsets = np.cumsum([0] + [s.shape[1] for s in styles])
    return torch.tensor([offsets[li] + c for li, c in channels], device=device)


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidArgumentError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


# ----------------------------------------------------------------------------------------------
# The three computations. Each returns the per-channel sum over images of the unit per-image
# change, [K, D] (the caller divides and normalises).


def _embed(G, clip, styles, noise_mode):
    return clip.encode_image(G.synthesis(None, noise_mode=noise_mode, styles=styles))


@torch.no_grad()
def _sum_reference(G, clip, styles, std, channels, *, sigmas, batch_size, noise_mode, progress):
    n = styles[0].shape[0]
    out = torch.zeros(len(channels), clip.embed_dim)
    for k, (li, c) in enumerate(channels):
        step = float(sigmas * std[li][c])
        for i in range(0, n, batch_size):
            base = [s[i:i + batch_size] for s in styles]
            m = base[0].shape[0]
            plus = [t.clone() for t in base]
            minus = [t.clone() for t in base]
            plus[li][:, c] += step
            minus[li][:, c] -= step
            e = _embed(G, clip, [torch.cat([p, q]) for p, q in zip(plus, minus)], noise_mode)
            out[k] += F.normalize(e[:m] - e[m:], dim=1).sum(0).cpu()
        progress(k + 1, len(channels), "relevance (reference)")
    return out


@torch.no_grad()
def _sum_difference(G, clip, styles, std, channels, *, sigmas, batch_size, block_size, noise_mode, progress):
    n = styles[0].shape[0]
    device = styles[0].device
    out = torch.zeros(len(channels), clip.embed_dim)
    # images per chunk so that one chunk of a block is about one render batch (at least one image)
    for b0 in range(0, len(channels), block_size):
        block = channels[b0:b0 + block_size]
        kb = len(block)
        m_chunk = max(1, batch_size // (2 * kb))
        for i in range(0, n, m_chunk):
            base = [s[i:i + m_chunk] for s in styles]
            m = base[0].shape[0]
            # [2 (sign), kb (channel), m (image), C_l] copies of the base codes
            reps = [t.unsqueeze(0).unsqueeze(0).repeat(2, kb, 1, 1) for t in base]
            for li in {li for li, _ in block}:
                ks = torch.tensor([k for k, (l2, _) in enumerate(block) if l2 == li], device=device)
                cs = torch.tensor([c for l2, c in block if l2 == li], device=device)
                step = (sigmas * std[li].to(device)[cs]).unsqueeze(1)     # [k_l, 1]
                reps[li][0, ks, :, cs] += step
                reps[li][1, ks, :, cs] -= step
            flat = [r.reshape(2 * kb * m, -1) for r in reps]
            total = flat[0].shape[0]
            embs = [_embed(G, clip, [f[j:j + batch_size] for f in flat], noise_mode) for j in range(0, total, batch_size)]
            e = torch.cat(embs).reshape(2, kb, m, -1)
            out[b0:b0 + kb] += F.normalize(e[0] - e[1], dim=2).sum(1).cpu()
        progress(min(b0 + kb, len(channels)), len(channels), "relevance (difference)")
    return out


def _vjp_rows(e, styles, rows, grad_chunk):
    """``rows[g, i] · ∂e[i] / ∂styles`` for every ``g``: ``[m, G, channels]`` (one batched backward per chunk).

    ``e`` ``[m, D]``; ``rows`` ``[G, m, D]``, a cotangent per image (image ``i`` may have its own).
    """
    m = e.shape[0]
    parts = []
    for g0 in range(0, rows.shape[0], grad_chunk):
        grad_out = rows[g0:g0 + grad_chunk]                                   # [g, m, D]
        try:
            grads = torch.autograd.grad(e, styles, grad_outputs=grad_out, retain_graph=True, is_grads_batched=True,
                                        allow_unused=True)
            g = torch.cat([torch.zeros(grad_out.shape[0], m, s.shape[1], device=e.device) if x is None else x
                           for x, s in zip(grads, styles)], dim=2)           # [g, m, C]
        except RuntimeError:  # an op without a batching rule: one backward per row
            cols = []
            for r in grad_out:
                gr = torch.autograd.grad(e, styles, grad_outputs=r, retain_graph=True, allow_unused=True)
                cols.append(torch.cat([torch.zeros(m, s.shape[1], device=e.device) if x is None else x
                                       for x, s in zip(gr, styles)], dim=1))
            g = torch.stack(cols)
        parts.append(g.transpose(0, 1))                                       # [m, g, C]
    return torch.cat(parts, dim=1)                                            # [m, G, C]


def _vjp_all(e, styles, grad_chunk):
    """``∂e[:, d] / ∂styles`` for every ``d``: ``[m, D, channels]`` (all ``D`` rows of the Jacobian)."""
    m, D = e.shape
    eye = torch.eye(D, device=e.device, dtype=e.dtype)
    return _vjp_rows(e, styles, eye.unsqueeze(1).expand(D, m, D), grad_chunk)


@torch.no_grad()
def _probe(G, clip, styles, base, directions, *, step, batch_size, noise_mode):
    """Forward differences ``(E(s + h v) - E(s)) / h`` for ``directions`` ``[m, k, channels]``: ``[m, k, D]``.

    ``base`` ``[m, D]`` is ``E(s)``. One-sided (``O(h)``) is enough: the probes only have to span
    the Jacobian's range, and a central difference would cost twice the renders.
    """
    m, k, _ = directions.shape
    sizes = [s.shape[1] for s in styles]
    codes = (torch.cat(styles, dim=1).unsqueeze(1) + step * directions).reshape(m * k, -1)
    embs = []
    for j in range(0, codes.shape[0], batch_size):
        embs.append(_embed(G, clip, list(codes[j:j + batch_size].split(sizes, dim=1)), noise_mode))
    return (torch.cat(embs).reshape(m, k, -1) - base.unsqueeze(1)) / step


def _sum_lowrank(G, clip, styles, std, channels, *, rank, holdout, probe_step, seed, batch_size, grad_chunk,
                 noise_mode, progress):
    """The ``'lowrank'`` method; returns ``(sums [K, D], mean captured energy or None without holdout probes)``."""
    n = styles[0].shape[0]
    device = styles[0].device
    index = _flat_index(styles, channels, device)
    scale = torch.cat(std).to(device)                                          # probes in units of each channel's std
    total = int(scale.shape[0])
    gen = torch.Generator(device="cpu").manual_seed(int(seed) + 7919)
    out = torch.zeros(len(channels), clip.embed_dim)
    captured = []
    for i in range(0, n, batch_size):
        chunk = [s[i:i + batch_size].detach() for s in styles]
        m = chunk[0].shape[0]
        inputs = [s.clone().requires_grad_(True) for s in chunk]
        with torch.enable_grad():
            e = _embed(G, clip, inputs, noise_mode)
        omega = torch.randn(m, rank + holdout, total, generator=gen).to(device) * scale
        y = _probe(G, clip, chunk, e.detach(), omega, step=probe_step, batch_size=batch_size,
                   noise_mode=noise_mode)                                      # [m, rank + holdout, D]
        q, _ = torch.linalg.qr(y[:, :rank].transpose(1, 2))                    # [m, D, rank], orthonormal columns
        if holdout:
            test = y[:, rank:].transpose(1, 2)                                  # [m, D, holdout]
            kept = (q.transpose(1, 2) @ test).pow(2).sum((1, 2))
            captured.append((kept / test.pow(2).sum((1, 2)).clamp_min(1e-30)).cpu())
        with torch.enable_grad():
            p = _vjp_rows(e, inputs, q.permute(2, 0, 1).to(e.dtype), grad_chunk)   # [m, rank, C]
        cols = q @ p.detach()[:, :, index]                                     # [m, D, K] ~ J_i restricted
        out += F.normalize(cols, dim=1).sum(0).transpose(0, 1).cpu()
        del e, p, cols
        progress(min(i + batch_size, n), n, "relevance (lowrank)")
    energy = float(torch.cat(captured).mean()) if captured else None
    return out, energy


def _sum_jacobian(G, clip, styles, std, channels, *, batch_size, grad_chunk, noise_mode, progress):
    n = styles[0].shape[0]
    index = _flat_index(styles, channels, styles[0].device)
    out = torch.zeros(len(channels), clip.embed_dim)
    for i in range(0, n, batch_size):
        chunk = [s[i:i + batch_size].detach().clone().requires_grad_(True) for s in styles]
        with torch.enable_grad():
            e = _embed(G, clip, chunk, noise_mode)
            jac = _vjp_all(e, chunk, grad_chunk)                                  # [m, D, C]
        jac = jac.detach()[:, :, index]
        out += F.normalize(jac, dim=1).sum(0).transpose(0, 1).cpu()              # [K, D]
        del e, jac
        progress(min(i + batch_size, n), n, "relevance (jacobian)")
    return out


def compute_relevance(G, clip="toyfaces", *, method: str = "lowrank", n_images: int = 100, sigmas: float = 5.0,
                      seed: int = 0, psi: float = 1.0, stats: StyleStats | None = None, stats_samples: int = 2000,
                      channels: Sequence[tuple[int, int]] | None = None, batch_size: int = 16, block_size: int = 32,
                      grad_chunk: int = 32, rank: int = 32, holdout: int = 4, probe_step: float = 0.1,
                      noise_mode: str = "const", progress=no_progress) -> RelevanceTable:
    """Every S channel's relevance vector ``Δi_c`` in CLIP image space (see the module docstring).

    Args:
        G: the generator.
        clip: a :class:`ClipModel` or a CLIP name.
        method: ``'lowrank'`` (default, fastest), ``'jacobian'`` (exact derivative), ``'difference'``
            (vectorised finite differences) or ``'reference'`` (one channel at a time, as StyleCLIP).
        n_images: random codes averaged over (StyleCLIP: 100).
        sigmas: perturbation size in channel standard deviations for the finite differences (StyleCLIP: 5).
        seed, psi: the random codes (``Latent.sample(G, n_images, seed=seed, psi=psi)``).
        stats: S statistics (computed from ``stats_samples`` codes when None).
        channels: ``(layer index, channel)`` pairs to compute (default: all; others stay zero rows).
        batch_size: images per render (the jacobian method: codes per forward/backward).
        block_size: channels perturbed together (``'difference'``).
        grad_chunk: cotangents per batched backward (``'jacobian'``, ``'lowrank'``; lower it to save memory).
        rank: probe directions per image (``'lowrank'``); at or above the CLIP's dimension the exact
            Jacobian is used. Raise it for CLIPs with wide embeddings if ``captured_energy`` is low.
        holdout: extra probes per image that only measure the captured energy (``'lowrank'``).
        probe_step: finite-difference step of the probes, in channel standard deviations.
        progress: ``callback(step, total, message)``; it may raise ``Cancelled``.

    Returns: a :class:`RelevanceTable` (``meta['seconds']`` is the time spent, statistics excluded;
    ``'lowrank'`` adds ``meta['rank']`` and ``meta['captured_energy']``, the mean fraction of the
    held-out probes' squared norm inside the basis).
    """
    if method not in METHODS:
        raise InvalidArgumentError(f"unknown relevance method {method!r}; use one of {', '.join(METHODS)}.")
    n_images = _positive_int(n_images, "n_images")
    batch_size = _positive_int(batch_size, "batch_size")
    block_size = _positive_int(block_size, "block_size")
    grad_chunk = _positive_int(grad_chunk, "grad_chunk")
    rank = _positive_int(rank, "rank")
    if isinstance(holdout, bool) or not isinstance(holdout, (int, np.integer)) or holdout < 0:
        raise InvalidArgumentError(f"holdout must be a non-negative integer, got {holdout!r}.")
    probe_step = check_strength(probe_step, name="probe_step")
    if probe_step <= 0:
        raise InvalidArgumentError(f"probe_step must be positive (default 0.1), got {probe_step}.")
    sigmas = check_strength(sigmas, name="sigmas")
    if sigmas <= 0:
        raise InvalidArgumentError(f"sigmas must be positive (StyleCLIP uses 5), got {sigmas}.")
    clip = resolve_clip(clip, device=G.device)
    chans = _check_channels(G, channels)
    if stats is None:
        stats = style_statistics(G, n_samples=stats_samples, seed=seed + 1, psi=psi)
    elif [int(s.shape[0]) for s in stats.std] != [sl.channels for sl in G.style_layers]:
        raise InvalidArgumentError("these style statistics belong to another generator; recompute them with "
                                   "stylekit.edit.stylespace.style_statistics(G).")
    with torch.no_grad():
        styles = [s.detach() for s in Latent.sample(G, n_images, seed=seed, psi=psi).to_styles(G).tensor]
    std = [s.to(G.device) for s in stats.std]
    extra: dict = {}
    t0 = time.perf_counter()
    if method == "reference":
        sums = _sum_reference(G, clip, styles, std, chans, sigmas=sigmas, batch_size=batch_size,
                              noise_mode=noise_mode, progress=progress)
    elif method == "difference":
        sums = _sum_difference(G, clip, styles, std, chans, sigmas=sigmas, batch_size=batch_size,
                               block_size=block_size, noise_mode=noise_mode, progress=progress)
    elif method == "lowrank" and rank < clip.embed_dim:
        sums, extra["captured_energy"] = _sum_lowrank(
            G, clip, styles, std, chans, rank=rank, holdout=int(holdout), probe_step=probe_step, seed=seed,
            batch_size=batch_size, grad_chunk=grad_chunk, noise_mode=noise_mode, progress=progress)
        extra["rank"] = rank
    else:
        sums = _sum_jacobian(G, clip, styles, std, chans, batch_size=batch_size, grad_chunk=grad_chunk,
                             noise_mode=noise_mode, progress=progress)
        if method == "lowrank":
            extra.update(rank=int(clip.embed_dim), captured_energy=1.0)
    seconds = time.perf_counter() - t0
    vectors = F.normalize(sums / n_images, dim=1)
    consistency = (sums / n_images).norm(dim=1)
    relevance = [torch.zeros(sl.channels, clip.embed_dim) for sl in G.style_layers]
    for (li, c), v in zip(chans, vectors):
        relevance[li][c] = v
    meta = {"method": method, "n_images": n_images, "sigmas": sigmas, "seed": seed, "psi": psi,
            "seconds": seconds, "channels_computed": len(chans), "mean_consistency": float(consistency.mean()),
            "clip_pretrained": str(clip.pretrained), **extra}
    return RelevanceTable(relevance, stats, generator_fingerprint(G), clip_key(clip),
                          tuple(sl.kind for sl in G.style_layers), meta)


def compute_relevance_reference(G, clip="toyfaces", **kwargs) -> RelevanceTable:
    """:func:`compute_relevance` with ``method='reference'``: one channel at a time, as StyleCLIP does it."""
    return compute_relevance(G, clip, method="reference", **kwargs)


# ----------------------------------------------------------------------------------------------
# Files


def save_relevance(table: RelevanceTable, path) -> Path:
    """Write a table as safetensors (vectors, S mean/std; keys and provenance in the metadata)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for i, (r, m, s) in enumerate(zip(table.relevance, table.stats.mean, table.stats.std)):
        tensors[f"relevance.{i}"] = r.detach().cpu().float().contiguous()
        tensors[f"mean.{i}"] = m.detach().cpu().float().contiguous()
        tensors[f"std.{i}"] = s.detach().cpu().float().contiguous()
    meta = {"format": _FORMAT, "format_version": _FORMAT_VERSION, "fingerprint": table.fingerprint,
            "clip_id": table.clip_id, "layer_names": json.dumps(list(table.layer_names)),
            "layer_kinds": json.dumps(list(table.layer_kinds)), "stats_samples": str(table.stats.n_samples),
            "meta": json.dumps(table.meta, default=str)}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


def load_relevance(path, *, G=None, clip=None) -> RelevanceTable:
    """Read a table written by :func:`save_relevance`.

    Args:
        path: the file.
        G: when given, the table must have been computed for this generator.
        clip: when given (a ClipModel), the table must have been computed with this CLIP.

    Raises:
        CheckpointError: missing/unreadable file, not a relevance file, or made for another generator / CLIP.
    """
    from ..checkpoints.tagged import read_tagged

    path = Path(os.fspath(path))
    meta, tensors = read_tagged(
        path, fmt=_FORMAT, kind="relevance",
        missing="no such relevance file; compute one with stylekit.text.relevance_for(G, clip).",
        unreadable_advice="; delete it and recompute")
    try:
        names = tuple(json.loads(meta["layer_names"]))
        kinds = tuple(json.loads(meta["layer_kinds"]))
        relevance = [tensors[f"relevance.{i}"].float() for i in range(len(names))]
        stats = StyleStats([tensors[f"mean.{i}"].float() for i in range(len(names))],
                           [tensors[f"std.{i}"].float() for i in range(len(names))], names,
                           int(meta.get("stats_samples", 0)))
        table = RelevanceTable(relevance, stats, meta["fingerprint"], meta.get("clip_id") or meta["clip_name"], kinds,
                               json.loads(meta.get("meta", "{}")))
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{path}: incomplete relevance file ({exc}); delete it and recompute.") from None
    if G is not None:
        table.check_generator(G)
    if clip is not None:
        table.check_clip(clip)
    return table


def default_cache_dir() -> Path:
    """``$STYLEKIT_CACHE/relevance`` or ``~/.cache/stylekit/relevance``."""
    root = os.environ.get("STYLEKIT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "stylekit")
    return Path(root) / "relevance"


def cache_path(G, clip, cache_dir=None) -> Path:
    """Where :func:`relevance_for` keeps the table of ``(G, clip)``."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", clip_key(clip)).strip("_") or "clip"
    return Path(cache_dir or default_cache_dir()) / f"relevance-{generator_fingerprint(G)[:20]}-{slug}.safetensors"


def shipped_table_path() -> Path:
    """``stylekit/toyfaces/weights/relevance.safetensors``: the table of the shipped toyfaces generator
    with the shipped toyfaces CLIP (128 codes; how it was made: ``weights/relevance.md``)."""
    return Path(__file__).resolve().parent.parent / "toyfaces" / "weights" / "relevance.safetensors"


def shipped_table(G, clip) -> RelevanceTable | None:
    """The package's precomputed table when it was made for exactly this generator and CLIP, else None."""
    path = shipped_table_path()
    if not path.is_file():
        return None
    try:
        table = load_relevance(path)
    except CheckpointError:
        return None
    if table.fingerprint != generator_fingerprint(G) or table.clip_id != clip_key(clip):
        return None
    return table


def relevance_for(G, clip="toyfaces", *, cache_dir=None, recompute: bool = False, **compute_kwargs) -> RelevanceTable:
    """The relevance table of ``(G, clip)``: read from the cache, or computed and cached.

    The shipped toyfaces generator with the shipped toyfaces CLIP needs no computation: the package
    carries their table (:func:`shipped_table`). ``compute_kwargs`` go to :func:`compute_relevance`
    (a cached or shipped table is used whatever they are; pass ``recompute=True`` to compute and
    cache a new one).
    """
    clip = resolve_clip(clip, device=G.device)
    path = cache_path(G, clip, cache_dir)
    if path.is_file() and not recompute:
        return load_relevance(path, G=G, clip=clip)
    if not recompute:
        shipped = shipped_table(G, clip)
        if shipped is not None:
            return shipped
    table = compute_relevance(G, clip, **compute_kwargs)
    save_relevance(table, path)
    return table


# ----------------------------------------------------------------------------------------------
# Editing


@dataclass(eq=False)
class StyleDirection:
    """An S-space edit from a text pair.

    delta: one ``[C_l]`` tensor per style layer: the change of ``s`` for ``alpha = 1``
        (``r_c / max|r| * std_c`` on the kept channels, 0 elsewhere).
    scores: one ``[C_l]`` tensor per layer: each channel's relevance ``r_c = Δi_c · Δt``.
    n_channels: how many channels pass ``beta``.
    """

    delta: list[torch.Tensor]
    scores: list[torch.Tensor]
    n_channels: int
    target: str = ""
    neutral: str = ""
    beta: float = 0.0


def _check_choice(top_k, whiten):
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise InvalidArgumentError(f"top_k must be a positive whole number of channels or None, got {top_k!r}.")
    if whiten is not None:
        whiten = check_strength(whiten, name="whiten")
        if whiten <= 0:
            raise InvalidArgumentError(f"whiten must be positive (try 8) or None for StyleCLIP's plain cosine, got {whiten}.")
    return (None if top_k is None else int(top_k)), whiten


def global_direction(table: RelevanceTable, target, neutral, *, clip="toyfaces", beta: float = 0.1,
                     top_k: int | None = None, whiten: float | None = None,
                     kinds: Sequence[str] = ("conv", "torgb"), templates: Sequence[str] | None = None) -> StyleDirection:
    """The S edit of a (neutral, target) text pair from a relevance table (StyleCLIP's global direction).

    Each channel's score is StyleCLIP's ``r_c = Δi_c · Δt``, or with ``whiten`` the cosine in the
    whitened relevance space, ``r_c = cos(W Δi_c, W Δt)`` (:meth:`RelevanceTable.whitener`): a
    Mahalanobis relevance that discounts the CLIP axes nearly every channel moves, so that the chosen
    channels are the ones specific to the text change. Channels with ``|r_c| < beta`` are dropped and,
    with ``top_k``, all but the ``top_k`` highest ``|r_c|``; the rest move by ``r_c / max|r| * std_c``.

    On toyfaces (its CLIP, the shipped 128-code table) ``whiten=8, top_k=40, beta=0, alpha=4.5``
    edits the five attribute prompts of ``bench text`` at 0.88-1.00 success with mean leakage
    0.07-0.09 (three sets of 50 test codes per prompt), where StyleCLIP's plain rule has no single
    (alpha, beta) that serves all of them: the "smiling" text direction lies along the few CLIP axes
    that hundreds of channels move, so a threshold low enough for "with long hair" makes smiling
    edits smear the face.

    Args:
        table: from :func:`compute_relevance` / :func:`relevance_for` / :func:`load_relevance`.
        target, neutral: prompts (``"a face with glasses"``, ``"a face"``) or text embeddings ``[D]``.
        clip: the CLIP the table was computed with (a ClipModel or its name).
        beta: disentanglement threshold on ``|r_c|`` (StyleCLIP: 0.08-0.3; higher = fewer channels).
        top_k: keep at most this many channels, the most relevant (None: as many as pass ``beta``).
        whiten: the whitener's shrinkage (a multiple of the mean eigenvalue; smaller = stronger
            whitening), or None for StyleCLIP's plain cosine.
        kinds: style layer kinds that may change (StyleCLIP edits conv layers only; toRGB channels
            carry colour, so they are allowed by default).
        templates: prompt templates.

    Raises:
        InvalidArgumentError: bad prompts or settings, or no channel passes ``beta`` (the message gives
            the largest ``|r_c|``).
        CheckpointError: the table was computed with another CLIP.
    """
    clip = resolve_clip(clip)
    table.check_clip(clip)
    beta = check_strength(beta, name="beta")
    if beta < 0:
        raise InvalidArgumentError(f"beta must be >= 0, got {beta}.")
    top_k, whiten = _check_choice(top_k, whiten)
    bad = [k for k in kinds if k not in ("conv", "torgb", "input")]
    if bad or not kinds:
        raise InvalidArgumentError(f"kinds must name style layer kinds ('conv', 'torgb', 'input'), got {list(kinds)}.")
    dt = text_direction(clip, target, neutral, templates).cpu()
    if whiten is None:
        scores = [r @ dt for r in table.relevance]
    else:
        W = table.whitener(whiten)
        wdt = F.normalize(W @ dt, dim=0)
        scores = [F.normalize(r @ W, dim=1) @ wdt * (r.abs().sum(1) > 0) for r in table.relevance]
    allowed = [(k in kinds) for k in table.layer_kinds]
    kept = [torch.where((s.abs() >= beta) & ok, s, torch.zeros_like(s)) for s, ok in zip(scores, allowed)]
    if top_k is not None:
        flat = torch.cat(kept).abs()
        if int((flat > 0).sum()) > top_k:
            keep = torch.zeros_like(flat, dtype=torch.bool)
            keep[flat.topk(top_k).indices] = True                    # exactly top_k, ties broken by topk
            kept = [torch.where(m, k, torch.zeros_like(k)) for k, m in zip(kept, keep.split([k.shape[0] for k in kept]))]
    peak = max(float(k.abs().max()) for k in kept)
    if peak == 0.0:
        top = max(float(s.abs().max()) if ok else 0.0 for s, ok in zip(scores, allowed))
        raise InvalidArgumentError(f"no style channel has relevance |r| >= beta={beta} for {target!r} vs {neutral!r} "
                                   f"(the largest is {top:.3f}); lower beta or rephrase the prompts.")
    delta = [k / peak * sd for k, sd in zip(kept, table.stats.std)]
    n = int(sum(int((k != 0).sum()) for k in kept))
    return StyleDirection(delta, scores, n, target if isinstance(target, str) else "",
                          neutral if isinstance(neutral, str) else "", beta)


def global_edit(G, latent, table: RelevanceTable, target, neutral="a face", *, clip="toyfaces", alpha: float = 3.0,
                beta: float = 0.1, top_k: int | None = None, whiten: float | None = None,
                kinds: Sequence[str] = ("conv", "torgb"), templates: Sequence[str] | None = None,
                direction: StyleDirection | None = None) -> Latent:
    """Edit codes with a text pair through global directions: ``s' = s + alpha * delta``.

    Args:
        G: the generator the table was computed for (checked by fingerprint).
        latent: ``N`` codes in any space (converted to S).
        table, target, neutral, clip, beta, top_k, whiten, kinds, templates: as :func:`global_direction`.
        alpha: edit strength (StyleCLIP's slider, typically -10..10; negative removes the attribute).
        direction: a precomputed :func:`global_direction` (then target/neutral/beta/top_k/whiten/kinds are
            not used).

    Returns: an ``'s'`` Latent (noise maps and tuned generator kept).
    """
    lat = as_latent(latent, G)
    table.check_generator(G)
    alpha = check_strength(alpha, name="alpha", batch=lat.batch_size)
    if direction is None:
        direction = global_direction(table, target, neutral, clip=clip, beta=beta, top_k=top_k, whiten=whiten,
                                     kinds=kinds, templates=templates)
    lat = lat.to_styles(G)
    if len(direction.delta) != len(lat.tensor) or any(d.shape[0] != s.shape[1] for d, s in zip(direction.delta, lat.tensor)):
        raise InvalidArgumentError("this global direction was made for another generator's StyleSpace.")
    a = alpha.reshape(-1, 1) if isinstance(alpha, torch.Tensor) else alpha
    styles = [s + (a.to(s) if isinstance(a, torch.Tensor) else a) * d.to(s).unsqueeze(0)
              for s, d in zip(lat.tensor, direction.delta)]
    return lat.replace(tensor=styles)
