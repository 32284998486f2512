"""Text-guided editing: StyleCLIP's three methods (Patashnik et al., ICCV 2021), for any generator and CLIP.

- :mod:`.optimize`: latent optimisation. Per image, slow, flexible: optimise W+ from a start code
  toward a text prompt (``1 - cos`` CLIP loss, L2 to the start, optional perceptual term).
- Global directions. One preprocessing per (generator, CLIP) computes every StyleSpace channel's
  relevance vector in CLIP image space (StyleCLIP's ``Δi_c``); then any (neutral, target) text pair
  becomes an S-space edit instantly. :mod:`.relevance` computes a table (:mod:`.relevance_methods`:
  the four ways to measure it), :mod:`.relevance_table` holds it and its safetensors file,
  :mod:`.cache` finds one (cache, registered artifacts) or computes it, :mod:`.directions` turns a
  table and a text pair into an S edit.
- :mod:`.mapper`: latent mapper. A small coarse/medium/fine network trained per prompt that maps
  ``w`` to ``w + 0.1 * M(w)``; instant once trained; saved/loaded as safetensors.
- :mod:`.prompts`: choosing the CLIP model and turning prompts into embeddings/directions.
- :mod:`.presets`: the named settings of the three methods (default ``"toyfaces"``), each saying
  where it was tuned; :mod:`.keys`: the generator fingerprint and CLIP key files are keyed by.

Every function takes and returns :class:`stylekit.latent.Latent` codes and accepts either a loaded
:class:`stylekit.clip_backend.ClipModel` or a CLIP name (``"toyfaces"``, ``"ViT-B-32"``...).

Names are imported lazily: ``import stylekit.text`` does no work. No exported name is also the
name of a submodule, so ``stylekit.text.<module>`` always means the module.
"""

from __future__ import annotations

from stylekit.lazy import lazy_exports

_LAZY = {
    "optimize_latent": "optimize", "TextOptimizeResult": "optimize",
    "RelevanceTable": "relevance_table", "save_relevance": "relevance_table", "load_relevance": "relevance_table",
    "compute_relevance": "relevance", "compute_relevance_reference": "relevance", "LowRankOptions": "relevance",
    "JacobianOptions": "relevance", "DifferenceOptions": "relevance", "ReferenceOptions": "relevance",
    "relevance_for": "cache", "cache_path": "cache",
    "generator_fingerprint": "keys", "clip_key": "keys",
    "StyleDirection": "directions", "global_direction": "directions", "global_edit": "directions",
    "LatentMapper": "mapper", "train_mapper": "mapper", "apply_mapper": "mapper", "save_mapper": "mapper",
    "load_mapper": "mapper",
    "resolve_clip": "prompts", "text_direction": "prompts", "text_target": "prompts",
    "GlobalDirectionsPreset": "presets", "OptimizePreset": "presets", "MapperPreset": "presets",
}

_SUBMODULES = ("cache", "directions", "keys", "mapper", "optimize", "presets", "prompts", "relevance",
               "relevance_methods", "relevance_table")

__all__ = sorted(_LAZY) + list(_SUBMODULES)


__getattr__ = lazy_exports(__name__, _LAZY, _SUBMODULES)
