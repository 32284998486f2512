"""The settings each inversion method runs with by default, as named, frozen presets.

The library's defaults (:func:`stylekit.invert.optimize.project`, :func:`stylekit.invert.pti.pivotal_tuning`,
:func:`stylekit.invert.refine.restyle`) and ``python -m stylekit.bench inversion`` read the same
objects, so the benchmark measures what a user gets without passing any option. Each preset says in
``tuned`` where its numbers come from and whether stylekit tuned them. The numbers hold for every
generator (none was tuned per world so far); a world that needs others gets its own preset here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OptimizePreset:
    """Image2StyleGAN optimisation (:func:`stylekit.invert.optimize.project`).

    ``steps`` latent steps at peak Adam rate ``lr`` under NVIDIA's schedule (ramp-up
    ``lr_rampup_length``, cosine ramp-down ``lr_rampdown_length``, both fractions of the run), latent
    noise ``w_std * initial_noise_factor`` fading to zero at ``noise_ramp_length``; loss
    ``pixel_weight * MSE + perceptual_weight * perceptual``. The Image2StyleGAN++ noise stage runs at
    ``noise_lr`` with the noise regulariser weighted ``regularize_noise_weight``.
    """

    steps: int
    lr: float
    noise_lr: float
    pixel_weight: float
    perceptual_weight: float
    initial_noise_factor: float
    noise_ramp_length: float
    lr_rampdown_length: float
    lr_rampup_length: float
    regularize_noise_weight: float
    tuned: str


@dataclass(frozen=True)
class PTIPreset:
    """Pivotal tuning (:func:`stylekit.invert.pti.pivotal_tuning`): a pivot found by ``pivot_steps``
    optimisation steps in ``pivot_space``, then ``steps`` Adam steps at ``lr`` on the synthesis
    network with loss ``l2_weight * MSE + perceptual_weight * perceptual + locality_weight *
    locality`` (the locality term every ``locality_interval`` steps, its random codes truncated by
    ``locality_truncation``)."""

    steps: int
    pivot_steps: int
    pivot_space: str
    lr: float
    l2_weight: float
    perceptual_weight: float
    locality_weight: float
    locality_interval: int
    locality_truncation: float
    tuned: str


@dataclass(frozen=True)
class RestylePreset:
    """ReStyle refinement (:func:`stylekit.invert.refine.restyle`): ``iterations`` encoder passes."""

    iterations: int
    tuned: str


OPTIMIZE = OptimizePreset(
    steps=500, lr=0.1, noise_lr=0.1, pixel_weight=1.0, perceptual_weight=1.0,
    initial_noise_factor=0.05, noise_ramp_length=0.75, lr_rampdown_length=0.25, lr_rampup_length=0.05,
    regularize_noise_weight=1e5,
    tuned=("Not tuned by stylekit. lr, the latent-noise and learning-rate schedules and the noise regulariser "
            "weight are NVIDIA's projector.py defaults; equal pixel and perceptual weights are Image2StyleGAN's; "
            "500 steps (NVIDIA: 1000) was set with the first implementation (commit 564ac73) as a CPU-sized run."),
)

PTI = PTIPreset(
    steps=350, pivot_steps=450, pivot_space="w", lr=3e-4, l2_weight=1.0, perceptual_weight=1.0,
    locality_weight=0.1, locality_interval=1, locality_truncation=0.5,
    tuned=("Not tuned by stylekit: the PTI paper's (Roich et al. 2021) and its code's defaults: 450 W pivot steps, "
            "350 tuning steps at lr 3e-4, locality weight 0.1 with codes truncated at 0.5 (commit 8836934)."),
)

RESTYLE = RestylePreset(
    iterations=3,
    tuned=("Matched to training: the shipped 'restyle-toyfaces' encoder was trained with 3 iterations per batch "
            "(stylekit.train.encoder's restyle_iterations), and 3 is where its held-out PSNR was measured "
            "(commit 996685a: 22.3 dB vs e4e 21.9 on toyfaces renders). The ReStyle paper uses 5."),
)

__all__ = ["OptimizePreset", "PTIPreset", "RestylePreset", "OPTIMIZE", "PTI", "RESTYLE"]
