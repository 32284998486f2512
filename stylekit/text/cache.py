"""Where relevance tables come from: the user's cache, the registered relevance artifacts, or a fresh computation.

:func:`relevance_for` looks, in order, at

1. the cache file of ``(G, clip)`` under ``stylekit.settings.cache_dir() / "relevance"``
   (``STYLEKIT_CACHE``, default ``~/.cache/stylekit``);
2. the relevance artifacts of :mod:`stylekit.registry` (kind ``"relevance"``; e.g. ``"toyfaces"``, the
   table of the shipped toyfaces generator with the shipped toyfaces CLIP) whose file is on this
   machine, using the first one made for exactly this generator and CLIP (same weights fingerprint
   and CLIP key);
3. :func:`~stylekit.text.relevance.compute_relevance`, whose table is then written to the cache.
"""

from __future__ import annotations

import re
from pathlib import Path

from .. import registry, settings
from ..errors import StylekitError
from .keys import clip_key, generator_fingerprint
from .prompts import resolve_clip
from .relevance import compute_relevance
from .relevance_table import RelevanceTable, load_relevance, save_relevance

__all__ = ["default_cache_dir", "cache_path", "registered_table", "relevance_for"]


def default_cache_dir() -> Path:
    """``stylekit.settings.cache_dir() / "relevance"`` (``$STYLEKIT_CACHE/relevance`` or ``~/.cache/stylekit/relevance``)."""
    return settings.cache_dir() / "relevance"


def cache_path(G, clip, cache_dir=None) -> Path:
    """Where :func:`relevance_for` keeps the table of ``(G, clip)`` (``clip``: a loaded ClipModel)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", clip_key(clip)).strip("_") or "clip"
    return Path(cache_dir or default_cache_dir()) / f"relevance-{generator_fingerprint(G)[:20]}-{slug}.safetensors"


def registered_table(G, clip) -> RelevanceTable | None:
    """The first registered relevance artifact made for exactly ``G`` and ``clip`` (a loaded ClipModel), or None.

    Only artifacts whose file is already on this machine (shipped in a package, or in the Hub
    cache) are read: nothing is downloaded. Unreadable or stale files are skipped.
    """
    for artifact in registry.list_artifacts("relevance"):
        try:
            table = load_relevance(registry.artifact_path(artifact, local_files_only=True))
        except StylekitError:
            continue
        if table.matches(G, clip):
            return table
    return None


def relevance_for(G, clip="toyfaces", *, cache_dir=None, recompute: bool = False, **compute_kwargs) -> RelevanceTable:
    """The relevance table of ``(G, clip)``: from the cache, a registered artifact, or computed and cached.

    The shipped toyfaces generator with the shipped toyfaces CLIP needs no computation: the
    registry's ``"toyfaces"`` relevance artifact is their table (:func:`registered_table`).
    ``compute_kwargs`` go to :func:`~stylekit.text.relevance.compute_relevance` (a cached or
    registered table is used whatever they are; pass ``recompute=True`` to compute and cache a new one).
    """
    clip = resolve_clip(clip, device=G.device)
    path = cache_path(G, clip, cache_dir)
    if path.is_file() and not recompute:
        return load_relevance(path, G=G, clip=clip)
    if not recompute:
        known = registered_table(G, clip)
        if known is not None:
            return known
    table = compute_relevance(G, clip, **compute_kwargs)
    save_relevance(table, path)
    return table
