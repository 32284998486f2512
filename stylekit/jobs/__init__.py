"""Batch jobs over many items, sharded over ranks and resumable; the command line calls them.

- :func:`invert_folder` (:mod:`.inversion`): every image of a folder -> latents, reconstructions, manifest.
- :func:`edit_latents` (:mod:`.editing`): a direction at one or several strengths on saved latents.
- :func:`label_samples` / :func:`fit_from_labels` (:mod:`.label`): InterFaceGAN's sample-and-label step
  over many codes in resumable chunks, and a boundary fitted from the file it writes.
- :func:`relevance_sharded` (:mod:`.relevance`): a global-directions relevance table with the images
  split over ranks, from resumable partial sums.

Every job takes its share from the launcher (``RANK`` / ``WORLD_SIZE``, :mod:`.shard`), writes per-item
outputs atomically, skips what is already done on a rerun, and records what it did in a manifest
(:mod:`.manifest`); the same command runs plainly or under ``torchrun --nproc_per_node N``.
Nothing is imported until it is used.
"""

from __future__ import annotations

from stylekit.lazy import lazy_exports

_LAZY = {
    "invert_folder": "stylekit.jobs.inversion",
    "edit_latents": "stylekit.jobs.editing",
    "label_samples": "stylekit.jobs.label",
    "fit_from_labels": "stylekit.jobs.label",
    "load_labels": "stylekit.jobs.label",
    "relevance_sharded": "stylekit.jobs.relevance",
    "Shard": "stylekit.jobs.shard",
    "current_shard": "stylekit.jobs.shard",
    "merge": "stylekit.jobs.manifest",
    "save_latent_file": "stylekit.jobs.files",
    "load_latent_file": "stylekit.jobs.files",
}

_SUBMODULES = ("editing", "files", "inversion", "label", "manifest", "progress_bar", "relevance", "shard")

__all__ = sorted(_LAZY) + list(_SUBMODULES)

__getattr__ = lazy_exports(__name__, _LAZY, _SUBMODULES)
