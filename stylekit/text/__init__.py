"""Text-guided editing: StyleCLIP's three methods (Patashnik et al., ICCV 2021), for any generator and CLIP.

- :mod:`.optimize`: latent optimisation. Per image, slow, flexible: optimise W+ from a start code
  toward a text prompt (``1 - cos`` CLIP loss, L2 to the start, optional perceptual term).
- :mod:`.global_directions`: global directions. One preprocessing per (generator, CLIP) computes
  every StyleSpace channel's relevance vector in CLIP image space (StyleCLIP's ``Δi_c``), cached in
  a safetensors file; then any (neutral, target) text pair becomes an S-space edit instantly.
- :mod:`.mapper`: latent mapper. A small coarse/medium/fine network trained per prompt that maps
  ``w`` to ``w + 0.1 * M(w)``; instant once trained; saved/loaded as safetensors.
- :mod:`.prompts`: choosing the CLIP model and turning prompts into embeddings/directions.

Every function takes and returns :class:`stylekit.latent.Latent` codes and accepts either a loaded
:class:`stylekit.clip_backend.ClipModel` or a CLIP name (``"toyfaces"``, ``"ViT-B-32"``...).
"""

from __future__ import annotations

from .global_directions import (RelevanceTable, StyleDirection, clip_key, compute_relevance, compute_relevance_reference,
                                generator_fingerprint, global_direction, global_edit, load_relevance,
                                relevance_for, save_relevance)
from .mapper import LatentMapper, apply_mapper, load_mapper, save_mapper, train_mapper
from .optimize import TextOptimizeResult, optimize_latent
from .prompts import resolve_clip, text_direction, text_target

__all__ = [
    "optimize_latent", "TextOptimizeResult",
    "RelevanceTable", "StyleDirection", "clip_key", "compute_relevance", "compute_relevance_reference", "generator_fingerprint",
    "global_direction", "global_edit", "load_relevance", "relevance_for", "save_relevance",
    "LatentMapper", "train_mapper", "apply_mapper", "save_mapper", "load_mapper",
    "resolve_clip", "text_direction", "text_target",
]
