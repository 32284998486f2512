"""StyleSpace (Wu et al., CVPR 2021): edit single style channels, and find the channels behind an attribute.

StyleSpace S is the output of every layer's affine map (``G.ws_to_styles``): one ``[N, C_l]``
tensor per entry of ``G.style_layers``. Single S channels are often remarkably disentangled (one
channel opens the eyes, another turns the hair grey), so an edit is

    s'[layer][:, channel] = s[layer][:, channel] + amount * std[layer][channel]

with ``amount`` in standard deviations of that channel over random samples (:func:`style_statistics`).

Finding the channels for an attribute:

- :func:`channels_from_labels` (the paper's method): given codes labelled for the attribute,
  compare each channel's mean over the positive codes with its mean over all codes, divided by
  its standard deviation over all codes. Channels whose positives sit far from the mean control
  the attribute.
- :func:`channels_from_gradients`: differentiate a scorer (e.g. the toyfaces predictor or CLIP)
  with respect to S and rank channels by the score change per standard deviation
  (:func:`gradient_scores` then :func:`top_channels`; scores of fixed codes can be kept and
  combined with those of a new one).

Both return :class:`ChannelScore` lists ``(layer name, layer index, channel, score)``, sorted by
``|score|``; a positive score means raising the channel raises the attribute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..errors import InvalidArgumentError
from ..latent import Latent
from ..progress import no_progress
from .direction import as_latent
from .layers import check_strength, resolve_style_layer

__all__ = ["StyleStats", "ChannelScore", "style_statistics", "edit_channel", "edit_channels",
           "channels_from_labels", "channels_from_gradients", "format_channels"]


@dataclass(eq=False)
class StyleStats:
    """Per-channel statistics of S over random samples.

    mean, std: one ``[C_l]`` tensor per entry of ``G.style_layers``.
    layer_names: the style layers' names, in order.
    n_samples: how many codes were used.
    """

    mean: list[torch.Tensor]
    std: list[torch.Tensor]
    layer_names: tuple[str, ...]
    n_samples: int


@dataclass(frozen=True)
class ChannelScore:
    """One StyleSpace channel and how strongly it relates to an attribute (signed)."""

    layer: str
    layer_index: int
    channel: int
    score: float

    def __str__(self) -> str:
        return f"{self.layer} (style layer {self.layer_index}) channel {self.channel}: {self.score:+.3f}"


@torch.no_grad()
def style_statistics(G, *, n_samples: int = 2000, seed: int = 0, psi: float = 1.0,
                     batch_size: int = 1000) -> StyleStats:
    """Mean and standard deviation of every S channel over ``n_samples`` random codes (mapping and
    affines only; nothing is rendered, so this is cheap)."""
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 2:
        raise InvalidArgumentError(f"n_samples must be an integer >= 2, got {n_samples!r}.")
    lat = Latent.sample(G, int(n_samples), seed=seed, psi=psi)
    sums = sq = None
    for i in range(0, n_samples, batch_size):
        styles = [s.double() for s in G.ws_to_styles(lat.tensor[i:i + batch_size])]
        if sums is None:
            sums = [s.sum(0) for s in styles]
            sq = [s.square().sum(0) for s in styles]
        else:
            sums = [a + s.sum(0) for a, s in zip(sums, styles)]
            sq = [a + s.square().sum(0) for a, s in zip(sq, styles)]
    n = float(n_samples)
    mean = [s / n for s in sums]
    std = [((q / n - m.square()).clamp_min(0) * n / (n - 1)).sqrt() for q, m in zip(sq, mean)]
    return StyleStats([m.float() for m in mean], [s.float() for s in std],
                      tuple(sl.name for sl in G.style_layers), int(n_samples))


def _stats(G, stats: StyleStats | None) -> StyleStats:
    if stats is None:
        return style_statistics(G)
    if (tuple(stats.layer_names) != tuple(sl.name for sl in G.style_layers)
            or [int(sd.shape[0]) for sd in stats.std] != [sl.channels for sl in G.style_layers]):
        raise InvalidArgumentError("these style statistics belong to another generator (different style layers); "
                                   "recompute them with style_statistics(G).")
    return stats


def _check_channel(G, layer_index: int, channel) -> int:
    c = G.style_layers[layer_index].channels
    if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)) or not 0 <= channel < c:
        raise InvalidArgumentError(f"channel {channel!r} does not exist in style layer "
                                   f"{G.style_layers[layer_index].name}, which has channels 0-{c - 1}.")
    return int(channel)


def edit_channels(G, latent, edits: Sequence[tuple], *, stats: StyleStats | None = None) -> Latent:
    """Shift several S channels at once.

    Args:
        G: the generator.
        latent: ``N`` codes in any space (converted to S with ``G``).
        edits: ``[(layer, channel, amount), ...]``; ``layer`` is a style-layer index or name
            (``'b16.conv0'``), ``amount`` a finite number of that channel's standard deviations.
        stats: from :func:`style_statistics` (computed with defaults when None; pass it to save time).

    Returns: an ``'s'`` Latent (noise maps and tuned generator kept).
    """
    lat = as_latent(latent, G).to_styles(G)
    stats = _stats(G, stats)
    styles = [s.clone() for s in lat.tensor]
    edits = list(edits)
    if not edits:
        raise InvalidArgumentError("no channel edits given; pass [(layer, channel, amount), ...].")
    for item in edits:
        if not isinstance(item, (tuple, list)) or len(item) != 3:
            raise InvalidArgumentError(f"each channel edit must be (layer, channel, amount), got {item!r}.")
        li = resolve_style_layer(G, item[0])
        c = _check_channel(G, li, item[1])
        amount = check_strength(item[2], name="amount")
        styles[li][:, c] = styles[li][:, c] + amount * stats.std[li][c].to(styles[li])
    return lat.replace(tensor=styles)


def edit_channel(G, latent, layer, channel: int, amount: float, *, stats: StyleStats | None = None) -> Latent:
    """Shift one S channel by ``amount`` standard deviations (see :func:`edit_channels`)."""
    return edit_channels(G, latent, [(layer, channel, amount)], stats=stats)


def _kinds_mask(G, kinds) -> list[bool]:
    known = {sl.kind for sl in G.style_layers}
    kinds = tuple(kinds)
    unknown = [k for k in kinds if k not in ("conv", "torgb", "input")]
    if unknown:
        raise InvalidArgumentError(f"unknown style layer kinds {unknown}; use 'conv', 'torgb' or 'input' "
                                   f"(this generator has {sorted(known)}).")
    return [sl.kind in kinds for sl in G.style_layers]


def _top(G, scores: list[torch.Tensor], use: list[bool], top_k: int) -> list[ChannelScore]:
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise InvalidArgumentError(f"top_k must be a positive integer, got {top_k!r}.")
    flat = []
    for li, (s, ok) in enumerate(zip(scores, use)):
        if ok:
            flat.extend((float(v), li, c) for c, v in enumerate(s.tolist()))
    if not flat:
        raise InvalidArgumentError("no style layers of the requested kinds; include 'conv' in kinds.")
    flat.sort(key=lambda t: -abs(t[0]) if np.isfinite(t[0]) else 0.0)
    names = [sl.name for sl in G.style_layers]
    return [ChannelScore(names[li], li, c, v) for v, li, c in flat[:top_k]]


def channels_from_labels(G, latent, labels, *, top_k: int = 10, kinds=("conv",)) -> list[ChannelScore]:
    """Channels whose values separate the positive codes from the rest (StyleSpace Sec. 4).

    ``score = (mean over positives - mean over all) / std over all``, per channel.

    Args:
        G: the generator.
        latent: ``N`` codes (any space; converted to S).
        labels: ``[N]`` 0/1; at least 2 positives and 2 negatives.
        top_k: how many channels to return.
        kinds: style layer kinds to search (``'conv'`` by default, as the paper; add ``'torgb'``).

    Returns: ``top_k`` :class:`ChannelScore`, largest ``|score|`` first.
    """
    lat = as_latent(latent, G).to_styles(G)
    n = lat.batch_size
    y = torch.as_tensor(np.asarray(labels.detach().cpu() if isinstance(labels, torch.Tensor) else labels,
                                   dtype=np.float64))
    if y.ndim != 1 or y.shape[0] != n or not torch.all((y == 0) | (y == 1)):
        raise InvalidArgumentError(f"labels must be {n} values of 0/1 (one per code).")
    pos = int(y.sum())
    if pos < 2 or n - pos < 2:
        raise InvalidArgumentError(f"need at least 2 positive and 2 negative codes, got {pos} and {n - pos}.")
    use = _kinds_mask(G, kinds)
    mask = y.bool()
    scores = []
    for s in lat.tensor:
        s = s.detach().double().cpu()
        std = s.std(dim=0).clamp_min(1e-12)
        scores.append((s[mask].mean(0) - s.mean(0)) / std)
    return _top(G, scores, use, top_k)


def channels_from_gradients(G, scorer, latent, *, top_k: int = 10, kinds=("conv",), stats: StyleStats | None = None,
                            batch_size: int = 8, noise_mode: str = "const", progress=no_progress) -> list[ChannelScore]:
    """Channels whose change moves a differentiable ``scorer`` the most.

    ``score_c = mean over codes of d scorer / d s_c * std_c``: the first-order score change for one
    standard deviation of channel ``c``.

    Args:
        G: the generator.
        scorer: differentiable ``images [N, 3, R, R] in [-1, 1] -> [N]`` (e.g. ``predictor_scorer('glasses')``).
        latent: codes at which to measure (any space; a few dozen random ones are typical).
        top_k, kinds: as :func:`channels_from_labels`.
        stats: channel standard deviations (:func:`style_statistics`; computed when None).
        batch_size: codes per backward pass.

    Returns: ``top_k`` :class:`ChannelScore`, largest ``|score|`` first. The same as
    ``top_channels(G, gradient_scores(...), top_k=top_k, kinds=kinds)``.
    """
    scores = gradient_scores(G, scorer, latent, stats=stats, batch_size=batch_size, noise_mode=noise_mode,
                             progress=progress)
    return top_channels(G, scores, top_k=top_k, kinds=kinds)


def gradient_scores(G, scorer, latent, *, stats: StyleStats | None = None, batch_size: int = 8,
                    noise_mode: str = "const", progress=no_progress) -> list[torch.Tensor]:
    """Per-channel scores of :func:`channels_from_gradients` before ranking: one float64 tensor ``[C_l]`` per
    style layer, ``mean over the N codes of d scorer / d s_c * std_c``.

    Scores of disjoint sets of codes combine by their weighted mean (``(n_a * a + n_b * b) / (n_a + n_b)``),
    so a caller may keep the scores of fixed codes and add those of a new one.
    """
    lat = as_latent(latent, G).to_styles(G)
    stats = _stats(G, stats)
    n = lat.batch_size
    totals = [torch.zeros(s.shape[1], dtype=torch.float64) for s in lat.tensor]
    renderer = lat.generator if lat.generator is not None else G
    for i in range(0, n, batch_size):
        styles = [s[i:i + batch_size].detach().clone().requires_grad_(True) for s in lat.tensor]
        with torch.enable_grad():
            kwargs = {}
            if lat.noise is not None:
                kwargs["noise"] = [m if m.shape[0] == 1 else m[i:i + batch_size] for m in lat.noise]
            images = renderer.synthesis(None, noise_mode=noise_mode, styles=styles, **kwargs)
            out = scorer(images)
            if not isinstance(out, torch.Tensor) or not out.requires_grad:
                raise InvalidArgumentError("the scorer is not differentiable (its output has no gradient); use "
                                           "channels_from_labels with labels from the scorer instead.")
            grads = torch.autograd.grad(out.sum(), styles, allow_unused=True)
        for t, g in zip(totals, grads):
            if g is not None:
                t += g.detach().double().sum(0).cpu()
        progress(min(i + batch_size, n), n, "gradients")
    return [t / n * sd.double().cpu() for t, sd in zip(totals, stats.std)]


def top_channels(G, scores: Sequence[torch.Tensor], *, top_k: int = 10, kinds=("conv",)) -> list[ChannelScore]:
    """The ``top_k`` channels of per-layer ``scores`` (``[C_l]`` each, e.g. :func:`gradient_scores`) by
    ``|score|``, among the style layers of ``kinds``."""
    if len(scores) != len(G.style_layers):
        raise InvalidArgumentError(f"need one score tensor per style layer ({len(G.style_layers)}), "
                                   f"got {len(scores)}.")
    return _top(G, list(scores), _kinds_mask(G, kinds), top_k)


def format_channels(scores: Sequence[ChannelScore]) -> str:
    """A small text table of channel scores (for the CLI and the gallery)."""
    lines = [f"{'layer':<22} {'idx':>3} {'channel':>7} {'score':>8}"]
    for s in scores:
        lines.append(f"{s.layer:<22} {s.layer_index:>3} {s.channel:>7} {s.score:>+8.3f}")
    return "\n".join(lines)
