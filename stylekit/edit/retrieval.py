"""Part-based face retrieval and transfer, after "Retrieve in Style" (Chong, Lee & Forsyth, ICCV 2021).

Editing in Style (:mod:`~stylekit.edit.local`) measures, for every style channel ``c`` of every layer ``l``,
the share ``M_l[k, c]`` of its activation energy that falls inside part ``k`` (eyes, mouth, hair...).
Retrieve in Style turns those shares into a **part descriptor**: the code's StyleSpace vector weighted by
the part's shares,

    d_k(s) = concat over layers l of  M_l[k, :]^p * (s_l - s̄_l)          [D],  D = sum of the C_l

(``s̄`` the styles of the average latent ``G.w_avg``, so the cosine compares how a face departs from the
average face rather than the large common offset every style vector carries; ``p`` the preset's
``sharpness``, 2 by default, :data:`~stylekit.edit.presets.PART_RETRIEVAL`; ``p = 1`` weighs by the shares as
they are), and compares two faces in part ``k`` by the **cosine distance** ``1 - cos(d_k(a), d_k(b))``.
Channels that act outside the part have shares near 0 and hardly count, so the hair descriptor leans on the
hair's channels (not only: on toyfaces the other parts' attributes still agree more often than by chance,
see ``bench retrieval``). Retrieval ranks a database by that distance
(:func:`retrieve`); the transfer of the part from a retrieved face is Editing in Style's interpolation
on that part's channels (:func:`~stylekit.edit.local.transfer_part`; :func:`retrieve_and_transfer` does
both). Nothing is trained: the descriptors are a fixed function of the generator, its part segmentation
and the codes.

The baseline, whole-face retrieval, compares the W+ codes themselves (:func:`whole_descriptors`: the
flattened ``[num_ws * w_dim]`` code minus ``G.w_avg``, cosine distance), which weighs every part at once.
``python -m stylekit.bench retrieval`` measures both against the toyfaces ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InvalidArgumentError
from ..latent import Latent, as_latent
from .layers import resolve_layers
from .local import PartSegmentation, transfer_part
from .presets import PART_RETRIEVAL

__all__ = ["Retrieval", "part_weights", "part_descriptors", "whole_descriptors", "cosine_distances", "retrieve",
           "retrieve_and_transfer"]

#: cosine distances at or below this count as the same face (``skip_identical``)
IDENTICAL = 1e-6


def _check_parts(G, parts) -> None:
    if not isinstance(parts, PartSegmentation):
        raise InvalidArgumentError("pass the part segmentation of this generator (stylekit.edit.local.find_parts(G)), "
                                   f"got {type(parts).__name__}.")
    if len(parts.contributions) != len(G.style_layers) or any(
            m is not None and m.shape[1] != sl.channels for m, sl in zip(parts.contributions, G.style_layers)):
        raise InvalidArgumentError(f"these parts were found on another generator ({len(parts.contributions)} style "
                                   f"layers; this one has {len(G.style_layers)} or other channel counts); run "
                                   "find_parts(G) for this one.")


def _sharpness(value) -> float:
    try:
        p = float(value)
    except (TypeError, ValueError):
        p = float("nan")
    if isinstance(value, bool) or not np.isfinite(p) or p <= 0:
        raise InvalidArgumentError(f"sharpness must be a positive number (1 = the paper's weights, "
                                   f"{PART_RETRIEVAL.sharpness:g} the default), got {value!r}.")
    return p


def part_weights(G, parts: PartSegmentation, part, *, layers=None,
                 sharpness: float = PART_RETRIEVAL.sharpness) -> list[torch.Tensor | None]:
    """The weights of ``part``'s descriptor: per entry of ``G.style_layers`` a ``[C_l]`` tensor, the share
    ``M_l[k, c]`` of each channel's energy inside the part (summed over the part's clusters, in ``[0, 1]``)
    raised to ``sharpness``, or None for a style without spatial input or a layer outside ``layers`` (W+ rows,
    as in :func:`~stylekit.edit.layers.resolve_layers`; default all).

    Raises InvalidArgumentError for an unknown part or parts found on another generator.
    """
    _check_parts(G, parts)
    clusters = list(parts.resolve(part))
    p = _sharpness(sharpness)
    rows = set(resolve_layers(G, layers))
    return [None if m is None or sl.ws_index not in rows else m[clusters].sum(0).clamp(0, 1) ** p
            for m, sl in zip(parts.contributions, G.style_layers)]


def _styles(G, latent) -> list[torch.Tensor]:
    lat = as_latent(latent, G)
    if lat.batch_size == 0:
        raise InvalidArgumentError("no codes given; pass at least one latent.")
    with torch.no_grad():
        return [s.float() for s in lat.to_styles(G).tensor]


def _centre_styles(G) -> list[torch.Tensor]:
    """The styles ``[1, C_l]`` of ``G.w_avg`` on every layer (the average face)."""
    with torch.no_grad():
        return [s.float() for s in Latent.from_w(G, G.w_avg.reshape(1, -1)).to_styles(G).tensor]


def part_descriptors(G, parts: PartSegmentation, latent, part, *, layers=None, centre: bool = True,
                     sharpness: float = PART_RETRIEVAL.sharpness) -> torch.Tensor:
    """The Retrieve-in-Style descriptor of ``part`` for every code of ``latent``.

    Args:
        G: the generator.
        parts: its segmentation (:func:`~stylekit.edit.local.find_parts` on this generator).
        latent: ``N`` codes in any space (a Latent, or a W+ tensor ``[N, num_ws, w_dim]``); converted to S.
        part: a cluster index, a list of them, or a name set with ``parts.with_names``.
        layers: only the style layers fed by these W+ rows (default all).
        centre: subtract the average face's styles first (see the module docstring).
        sharpness: the exponent ``p`` of the shares (default the preset's).

    Returns: ``[N, D]`` float32, ``D`` = the channel count of every style layer with spatial input (the weights
    of layers left out by ``layers`` are 0, so ``D`` does not depend on them).
    """
    weights = part_weights(G, parts, part, layers=layers, sharpness=sharpness)
    styles = _styles(G, latent)
    centres = _centre_styles(G) if centre else [None] * len(styles)
    out = []
    for s, m, c, m_all in zip(styles, weights, centres, parts.contributions):
        if m_all is None:
            continue
        x = s - c.to(s) if c is not None else s
        out.append(x * (m.to(s) if m is not None else torch.zeros_like(m_all[0]).to(s)))
    return torch.cat(out, dim=1)


def whole_descriptors(G, latent, *, centre: bool = True) -> torch.Tensor:
    """The whole-face baseline: each code's W+ vector flattened, ``[N, num_ws * w_dim]`` float32 (minus
    ``G.w_avg`` on every row with ``centre``).

    S latents (after a StyleSpace or part edit) cannot go back to W+ and are refused: compare them by part,
    or keep the W/W+ code they came from.
    """
    lat = as_latent(latent, G)
    if lat.space == "s":
        raise InvalidArgumentError("whole-face retrieval compares W+ codes, and this is an S (StyleSpace) latent that "
                                   "cannot go back to W+; retrieve by part instead, or use the W/W+ code it came from.")
    if lat.batch_size == 0:
        raise InvalidArgumentError("no codes given; pass at least one latent.")
    with torch.no_grad():
        ws = lat.to_wplus(G).tensor.float()
    if centre:
        ws = ws - G.w_avg.reshape(1, 1, -1).to(ws)
    return ws.reshape(ws.shape[0], -1)


def cosine_distances(query: torch.Tensor, database: torch.Tensor) -> torch.Tensor:
    """``1 - cos`` between every row of ``query [Q, D]`` and every row of ``database [N, D]``: ``[Q, N]`` in
    ``[0, 2]``."""
    if query.ndim != 2 or database.ndim != 2 or query.shape[1] != database.shape[1]:
        raise InvalidArgumentError(f"descriptors must be [Q, D] and [N, D] with the same D, got {tuple(query.shape)} "
                                   f"and {tuple(database.shape)}.")
    q = F.normalize(query.float(), dim=1)
    d = F.normalize(database.float().to(q.device), dim=1)
    return (1 - q @ d.t()).clamp(0, 2)


@dataclass
class Retrieval:
    """The result of :func:`retrieve`.

    indices:   ``[Q, k]`` long, database rows from the closest on, per query.
    distances: ``[Q, k]`` float32 cosine distances (0 = same direction, 1 = unrelated, 2 = opposite).
    part:      the part's cluster indices, or None for whole-face retrieval.
    """

    indices: torch.Tensor
    distances: torch.Tensor
    part: tuple[int, ...] | None


def _database_size(database) -> int:
    if database is None or (isinstance(database, (list, tuple)) and not database):
        raise InvalidArgumentError("the database is empty; pass the codes to search (e.g. Latent.from_seed(G, "
                                   "range(100))).")
    if isinstance(database, (list, tuple)):
        raise InvalidArgumentError("pass the database as one Latent (Latent.cat(list)) or a W+ tensor [N, num_ws, "
                                   "w_dim].")
    n = as_latent(database).batch_size
    if n == 0:
        raise InvalidArgumentError("the database is empty; pass the codes to search (e.g. Latent.from_seed(G, "
                                   "range(100))).")
    return n


def retrieve(G, parts: PartSegmentation | None, query, database, part, k: int = 5, *, layers=None,
             skip_identical: bool = False, sharpness: float = PART_RETRIEVAL.sharpness) -> Retrieval:
    """The ``k`` codes of ``database`` closest to each code of ``query`` in ``part`` (cosine distance of
    :func:`part_descriptors`), or over the whole face in W+ when ``part`` is None (:func:`whole_descriptors`;
    ``parts`` may then be None).

    Args:
        G: the generator.
        parts: its segmentation (for part retrieval).
        query: ``Q`` codes (Latent or W+ tensor).
        database: ``N >= 1`` codes (one Latent or W+ tensor).
        part: cluster index / indices / name, or None for the whole face.
        k: how many to return, ``1 <= k <= N`` (without ``skip_identical`` matches).
        layers: W+ rows whose style layers count (part retrieval only; default all).
        skip_identical: leave out database codes at distance <= 1e-6 from the query (the query itself when it is
            in the database).
        sharpness: the exponent of the part's shares (:func:`part_weights`).

    Returns: a :class:`Retrieval` (``indices [Q, k]``, ``distances [Q, k]``).
    """
    n = _database_size(database)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise InvalidArgumentError(f"k must be a whole number from 1 to the database size ({n}), got {k!r}; ask for "
                                   "fewer faces or search a larger database.")
    if part is None:
        q, d, clusters = whole_descriptors(G, query), whole_descriptors(G, database), None
    else:
        if parts is None:
            raise InvalidArgumentError("part retrieval needs the generator's part segmentation (find_parts(G)); "
                                       "pass part=None for whole-face retrieval.")
        _check_parts(G, parts)
        clusters = parts.resolve(part)
        q = part_descriptors(G, parts, query, part, layers=layers, sharpness=sharpness)
        d = part_descriptors(G, parts, database, part, layers=layers, sharpness=sharpness)
    dist = cosine_distances(q, d)
    if skip_identical:
        same = dist <= IDENTICAL
        left = int((~same).sum(1).min())
        if left < k:
            raise InvalidArgumentError(f"only {left} database codes differ from the query; ask for k <= {left}.")
        dist = dist.masked_fill(same, float("inf"))
    values, indices = torch.topk(dist, int(k), dim=1, largest=False)
    return Retrieval(indices.cpu(), values.float().cpu(), clusters)


def retrieve_and_transfer(G, target, database, parts: PartSegmentation, part, *, rank: int = 1,
                          strength: float = 1.0, rho: float = 0.3, epsilon: float = 4.0,
                          layers=None) -> tuple[Latent, Retrieval]:
    """Give each code of ``target`` the ``part`` of its ``rank``-th closest database face in that part
    (1 = the closest; faces identical to the target are skipped), by
    :func:`~stylekit.edit.local.transfer_part`.

    Returns: ``(the edited 's' Latent [N codes], the Retrieval of the top ``rank`` faces)``.
    """
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 1:
        raise InvalidArgumentError(f"rank must be a whole number >= 1 (1 = the closest face), got {rank!r}.")
    found = retrieve(G, parts, target, database, part, int(rank), layers=layers, skip_identical=True)
    reference = as_latent(database, G).select(found.indices[:, -1].tolist())
    out = transfer_part(G, target, reference, parts, part, strength=strength, rho=rho, epsilon=epsilon, layers=layers)
    return out, found
