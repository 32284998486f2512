"""The four ways to measure StyleCLIP's relevance vectors; each returns per-channel sums over images.

For every StyleSpace channel ``c`` (all style layers, conv and toRGB) and ``n`` random codes ``s``,
StyleCLIP measures how the CLIP image embedding moves when the channel is pushed ``sigmas`` of its
standard deviation either way::

    d_i,c  = E(G(s_i + sigmas * std_c * e_c)) - E(G(s_i - sigmas * std_c * e_c))   E: unit CLIP image embedding
    Δi_c   = normalize( mean_i normalize(d_i,c) )                                  [D], the relevance vector

Each ``sum_*`` below returns ``sum_i normalize(d_i,c)`` ``[K, D]`` for the ``K`` requested channels
(:func:`stylekit.text.relevance.compute_relevance` divides and normalises):

- :func:`sum_reference`: the straightforward loop, one channel at a time, ``2 * n`` renders per
  channel (what StyleCLIP's preprocessing does; the yardstick).
- :func:`sum_difference`: the same finite differences, vectorised: a block of channels is perturbed
  across one batch (``2 * block * images`` codes built with one indexed add per layer), rendered and
  embedded together. Same numbers as the reference up to float rounding; faster only by batching.
- :func:`sum_jacobian`: the central difference is the derivative to second order, so take the
  derivative: one forward pass per image batch and ``D`` vector-Jacobian products (all ``D`` CLIP
  dimensions at once through ``is_grads_batched``) give ``∂E/∂s`` for *every* channel; each
  image's column ``∂E/∂s_c`` plays the role of ``d_i,c``. Cost ``~ 1 + 2D`` forward passes per image
  instead of ``2 * channels``, i.e. an order of magnitude fewer when a generator has many more S
  channels than CLIP has dimensions (toyfaces: 1408 vs 128; FFHQ-1024: 9088 vs 512). It is a
  linearisation of the ±5σ secant, so it agrees with the reference closely but not exactly.
- :func:`sum_lowrank`: the same Jacobian, through a randomised range finder. Each image's Jacobian
  ``J_i = ∂E/∂s`` ``[D, channels]`` is numerically low-rank (toyfaces: 16 of 128 directions hold
  99 % of its energy), so ``rank`` random StyleSpace probes ``J_i Ω`` (forward differences, forward
  passes only, no graph), orthonormalised to ``Q_i`` ``[D, rank]``, span nearly all of its range;
  then ``rank`` vector-Jacobian products give ``Q_iᵀ J_i`` and ``J_i ≈ Q_i Q_iᵀ J_i`` (Halko,
  Martinsson & Tropp 2011). Cost ``~ 1 + 2 rank`` forward-pass equivalents plus ``rank`` forward
  passes per image instead of ``1 + 2D``. A few held-out probes measure how much of ``J_i`` the
  basis captures (1 = all).

Shared arguments: ``styles`` is the random codes in S (one ``[n, C_l]`` tensor per style layer),
``std`` the channels' standard deviations (one ``[C_l]`` tensor per layer), ``channels`` the
``(layer index, channel)`` pairs to measure; ``progress(step, total, message)`` may raise ``Cancelled``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["embed_styles", "flat_index", "probe_directions", "sum_reference", "sum_difference", "sum_jacobian", "sum_lowrank"]


def flat_index(styles, channels, device) -> torch.Tensor:
    """Positions ``[K]`` of ``(layer, channel)`` pairs in the concatenated ``styles`` (``[m, C_l]`` per layer)."""
    offsets = np.cumsum([0] + [s.shape[1] for s in styles])
    return torch.tensor([offsets[li] + c for li, c in channels], device=device)


def embed_styles(G, clip, styles, noise_mode):
    """Unit CLIP image embeddings ``[n, D]`` of the images that S codes ``styles`` (``[n, C_l]`` per layer) render."""
    return clip.encode_image(G.synthesis(None, noise_mode=noise_mode, styles=styles))


@torch.no_grad()
def sum_reference(G, clip, styles, std, channels, *, sigmas, batch_size, noise_mode, progress):
    """One channel at a time: ``2 * n`` renders per channel, ``batch_size`` codes per render. Returns ``[K, D]``."""
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
            e = embed_styles(G, clip, [torch.cat([p, q]) for p, q in zip(plus, minus)], noise_mode)
            out[k] += F.normalize(e[:m] - e[m:], dim=1).sum(0).cpu()
        progress(k + 1, len(channels), "relevance (reference)")
    return out


@torch.no_grad()
def sum_difference(G, clip, styles, std, channels, *, sigmas, batch_size, block_size, noise_mode, progress):
    """``block_size`` channels perturbed together, about ``batch_size`` codes per render. Returns ``[K, D]``."""
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
            embs = [embed_styles(G, clip, [f[j:j + batch_size] for f in flat], noise_mode) for j in range(0, total, batch_size)]
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
        embs.append(embed_styles(G, clip, list(codes[j:j + batch_size].split(sizes, dim=1)), noise_mode))
    return (torch.cat(embs).reshape(m, k, -1) - base.unsqueeze(1)) / step


def probe_directions(seed: int, image_ids, count: int, total: int) -> torch.Tensor:
    """``[m, count, total]`` standard-normal probes; image ``i``'s come from its own generator seeded with
    ``(seed, i)``, so an image gets the same probes whichever batch or rank computes it."""
    rows = []
    for i in image_ids:
        gen = torch.Generator(device="cpu").manual_seed(((int(seed) + 7919) * 1_000_003 + int(i)) % (2 ** 63))
        rows.append(torch.randn(count, total, generator=gen))
    return torch.stack(rows)


def sum_lowrank(G, clip, styles, std, channels, *, rank, holdout, probe_step, seed, batch_size, grad_chunk,
                 noise_mode, progress, image_ids=None):
    """The ``'lowrank'`` method; returns ``(sums [K, D], mean captured energy or None without holdout probes)``.

    ``image_ids`` ``[n]``: the images' indices in the whole sample, which seed their probes
    (:func:`probe_directions`; default ``0 .. n - 1``).
    """
    n = styles[0].shape[0]
    device = styles[0].device
    image_ids = list(range(n)) if image_ids is None else list(image_ids)
    index = flat_index(styles, channels, device)
    scale = torch.cat(std).to(device)                                          # probes in units of each channel's std
    total = int(scale.shape[0])
    out = torch.zeros(len(channels), clip.embed_dim)
    captured = []
    for i in range(0, n, batch_size):
        chunk = [s[i:i + batch_size].detach() for s in styles]
        m = chunk[0].shape[0]
        inputs = [s.clone().requires_grad_(True) for s in chunk]
        with torch.enable_grad():
            e = embed_styles(G, clip, inputs, noise_mode)
        omega = probe_directions(seed, image_ids[i:i + m], rank + holdout, total).to(device) * scale
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


def sum_jacobian(G, clip, styles, std, channels, *, batch_size, grad_chunk, noise_mode, progress):
    """Every channel's column of the exact Jacobian ``∂E/∂s`` ``[D, channels]`` per image. Returns ``[K, D]``."""
    n = styles[0].shape[0]
    index = flat_index(styles, channels, styles[0].device)
    out = torch.zeros(len(channels), clip.embed_dim)
    for i in range(0, n, batch_size):
        chunk = [s[i:i + batch_size].detach().clone().requires_grad_(True) for s in styles]
        with torch.enable_grad():
            e = embed_styles(G, clip, chunk, noise_mode)
            jac = _vjp_all(e, chunk, grad_chunk)                                  # [m, D, C]
        jac = jac.detach()[:, :, index]
        out += F.normalize(jac, dim=1).sum(0).transpose(0, 1).cpu()              # [K, D]
        del e, jac
        progress(min(i + batch_size, n), n, "relevance (jacobian)")
    return out
