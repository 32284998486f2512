"""The relevance table of global directions: every S channel's relevance vector in CLIP image space,
with the S statistics, and its safetensors file.

A table is keyed by :func:`~stylekit.text.keys.generator_fingerprint` of the generator and
:func:`~stylekit.text.keys.clip_key` of the CLIP it was computed with; a table made for another
generator or CLIP is refused with a clear error instead of producing garbage edits.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from ..checkpoints.tagged import read_tagged
from ..edit.stylespace import StyleStats
from ..errors import CheckpointError
from .keys import clip_key, generator_fingerprint

__all__ = ["RelevanceTable", "save_relevance", "load_relevance", "FORMAT"]

#: the ``format`` tag of a relevance file's metadata
FORMAT = "stylekit-relevance"
_FORMAT_VERSION = "1"


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
        meta: how it was computed (method and its options, n_images, seconds, ...).
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

    def matches(self, G, clip) -> bool:
        """True when this table was computed for ``G`` with ``clip`` (a loaded ClipModel)."""
        return self.fingerprint == generator_fingerprint(G) and self.clip_id == clip_key(clip)

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


def save_relevance(table: RelevanceTable, path) -> Path:
    """Write a table as safetensors (vectors, S mean/std; keys and provenance in the metadata).

    The file is written beside its destination and renamed into place, so a reader never sees half a file.
    """
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for i, (r, m, s) in enumerate(zip(table.relevance, table.stats.mean, table.stats.std)):
        tensors[f"relevance.{i}"] = r.detach().cpu().float().contiguous()
        tensors[f"mean.{i}"] = m.detach().cpu().float().contiguous()
        tensors[f"std.{i}"] = s.detach().cpu().float().contiguous()
    meta = {"format": FORMAT, "format_version": _FORMAT_VERSION, "fingerprint": table.fingerprint,
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
    path = Path(os.fspath(path))
    meta, tensors = read_tagged(
        path, fmt=FORMAT, kind="relevance",
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
