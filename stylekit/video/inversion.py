"""The clip's codes: a one-pass encoder in batches, or optimisation warm-started frame to frame; PTI over the clip.

- :func:`encode_frames`: ``w_t = E(x_t)``, ``batch_size`` frames an encoder call (StyleGAN2 worlds ship one).
- :func:`optimize_frames`: for generators without an encoder (StyleGAN3): ``w_0`` = :func:`project` from
  ``w_avg``; ``w_t`` = :func:`project` started at ``w_{t-1}`` with a small budget
  (:data:`stylekit.video.presets.VIDEO_OPTIMIZE`). Consecutive frames differ little, so the warm start converges in
  a fraction of the steps and keeps consecutive codes close (less flicker than independent runs).
- :func:`tune_on_clip`: PTI's generator tuning shared by every frame, the (smoothed) codes as pivots
  (:func:`stylekit.invert.pti.tune_generator`; Tzaban et al. 2022 tune one generator per clip the same way).

Every function takes ``stop()`` (asked between units of work; the first unit is always done, so a stop keeps at
least one frame) and ``report(done, total, what)``. Shapes: frames ``[T, 3, R, R]`` in ``[-1, 1]``, codes
``[n, num_ws, w_dim]`` with ``n <= T`` the frames done.
"""

from __future__ import annotations

import math

import torch

from ..validate import check_steps
from .presets import VIDEO_OPTIMIZE, VIDEO_PTI


def encode_frames(G, source: torch.Tensor, *, encoder, batch_size: int, stop, report, device=None,
                  precision=None) -> torch.Tensor:
    """W+ codes ``[n, num_ws, w_dim]`` of the frames ``source [T, 3, R, R]`` by a one-pass ``encoder``."""
    from ..invert.encoder import encode_batch

    t = source.shape[0]
    codes = []
    for i in range(0, t, batch_size):
        if i > 0 and stop():
            break
        results = encode_batch(G, source[i:i + batch_size], encoder=encoder, device=device, precision=precision)
        codes.append(torch.cat([r.latent.ws(G) for r in results]))
        report(min(i + batch_size, t), t, "inverting frames (encoder)")
    return torch.cat(codes)


def optimize_frames(G, source: torch.Tensor, *, stop, report, preset=VIDEO_OPTIMIZE, perceptual: str = "auto",
                    seed: int = 0) -> torch.Tensor:
    """W+ codes ``[n, num_ws, w_dim]`` by optimisation, each frame starting from the previous frame's code."""
    from ..invert.optimize import project

    first_steps = check_steps(preset.first_steps, "first_steps")
    steps = check_steps(preset.steps, "steps")
    t = source.shape[0]
    codes = []
    for i in range(t):
        if i > 0 and stop():
            break
        if i == 0:
            result = project(G, source[:1], space="w+", steps=first_steps, perceptual=perceptual, seed=seed)
        else:
            result = project(G, source[i:i + 1], space="w+", steps=steps, init_latent=codes[-1], lr=preset.lr,
                             initial_noise_factor=0.0, lr_rampup_length=0.0, perceptual=perceptual, seed=seed)
        codes.append(result.latent.tensor.detach())
        report(i + 1, t, "inverting frames (optimisation)")
    return torch.cat(codes)


def pti_total_steps(frames: int, steps_per_frame: int, batch_size: int = VIDEO_PTI.batch_size) -> int:
    """Tuning steps for ``frames`` frames fitted ``steps_per_frame`` times each, ``batch_size`` frames a step."""
    return steps_per_frame * math.ceil(frames / batch_size)


def tune_on_clip(G, source: torch.Tensor, codes: torch.Tensor, *, steps_per_frame: int, stop, report,
                 preset=VIDEO_PTI, perceptual: str = "auto", seed: int = 0):
    """One tuned copy of ``G`` for the whole clip: ``(tuned generator, info dict)``; ``G`` is untouched.

    ``source [n, 3, R, R]`` and ``codes [n, num_ws, w_dim]`` (the pivots) are fitted ``batch_size`` consecutive
    frames a step, ``steps_per_frame`` times each. A stop ends the tuning early; the steps done are kept.
    """
    from ..invert.pti import tune_generator

    steps_per_frame = check_steps(steps_per_frame, "pti steps per frame")
    total = pti_total_steps(source.shape[0], steps_per_frame, preset.batch_size)
    done = [0]

    def progress(step, steps, what="", **metrics):
        done[0] = step
        report(step, steps, "tuning the generator (PTI)")

    stopped = [False]

    def should_stop():
        if done[0] > 0 and stop():
            stopped[0] = True
        return stopped[0]

    tuned, history, perceptual_name = tune_generator(
        G, source, codes, steps=total, batch_size=preset.batch_size, lr=preset.lr,
        locality_weight=preset.locality_weight, perceptual=perceptual, seed=seed, progress=progress,
        should_stop=should_stop)
    return tuned, {"pti_steps": total, "pti_steps_done": len(history), "pti_perceptual": perceptual_name,
                   "pti_stopped": stopped[0]}


__all__ = ["encode_frames", "optimize_frames", "tune_on_clip", "pti_total_steps"]
