"""Training stylekit's StyleGAN2 generators.

- :mod:`stylekit.train.loop` — the adversarial loop (StyleGAN2-ADA style, without augmentation):
  non-saturating logistic loss, lazy R1, optional path-length regularisation, style mixing,
  generator EMA, resumable checkpoints, sample grids; data from an image folder or the toyfaces
  renderer.
- :mod:`stylekit.train.supervised` — the pretraining recipe for the toyfaces world: every latent
  has a rendered target image (a fixed z -> attributes map), so G is trained by regression.
- :mod:`stylekit.train.discriminator` — the residual StyleGAN2 discriminator.
- :mod:`stylekit.train.data` — image-folder dataset and renderer-backed source.
- :mod:`stylekit.train.metrics` — Fréchet distance and the toyfaces acceptance metric.

Command line: ``python -m stylekit.train gan ...`` / ``python -m stylekit.train supervised ...``
/ ``python -m stylekit.train fd GENERATOR``. Nothing is imported eagerly.
"""

from __future__ import annotations

__all__ = ["GanConfig", "SupervisedConfig", "train_gan", "train_supervised", "frechet_distance", "toyfaces_fd",
           "z_to_attributes"]


def __getattr__(name):
    if name in ("GanConfig", "train_gan"):
        from . import loop

        return getattr(loop, name)
    if name in ("SupervisedConfig", "train_supervised", "z_to_attributes"):
        from . import supervised

        return getattr(supervised, name)
    if name in ("frechet_distance", "toyfaces_fd"):
        from . import metrics

        return getattr(metrics, name)
    raise AttributeError(f"module 'stylekit.train' has no attribute {name!r}")
