"""The outer loop of the generator trainers (adversarial and supervised), counted in images shown.

It calls one training step after another until ``cfg.kimg`` thousand images have been shown,
averages the step's numbers between log lines (one every ``log_kimg``; over the ranks too on
several processes), reports them to the run's progress callback, and takes a snapshot every
``snapshot_kimg`` and at the end. Each log line ends with ``sec/kimg`` and ``sec/step``, the wall
time per thousand images and per optimiser step since the previous line. With ``cfg.profile_steps``
that many steps (after a few warm-up steps) run under the profiler and the run folder gets
``profile.json`` (:mod:`stylekit.train.profiling`).
"""

from __future__ import annotations

import re
import time
from typing import Callable

import numpy as np
import torch

from .profiling import StepProfile
from .skeleton import Every, KimgConfig, Run

__all__ = ["run_kimg_loop", "parse_log_lines"]

#: one ``name value`` field of a log line (names may hold ``/``, as in ``sec/kimg``)
_FIELD = re.compile(r"([A-Za-z_/]+)\s+(-?[0-9.]+(?:e-?[0-9]+)?)")


def run_kimg_loop(run: Run, cfg: KimgConfig, step: Callable[[], tuple[dict, int]], snapshot: Callable[[], None], *,
                  label: str, describe: Callable[[], str] | None = None) -> None:
    """Train from ``run.cur_nimg`` to ``cfg.kimg``; ``run.step`` and ``run.cur_nimg`` advance as it goes.

    Args:
        step: one optimiser step; returns ``(numbers to log, images it consumed)``.
        snapshot: writes a checkpoint (and whatever else the trainer keeps); called every
            ``snapshot_kimg`` and once at the end (also when the run was already complete).
        label: the progress message (``"gan"``, ``"supervised"``).
        describe: extra text for each log line (e.g. the current learning rate).
    """
    total = int(round(cfg.kimg * 1000))
    log_tick = Every(cfg.log_kimg * 1000, run.cur_nimg)
    snap_tick = Every(cfg.snapshot_kimg * 1000, run.cur_nimg)
    stats: dict[str, list[float]] = {}
    tick_nimg, tick_step, tick_time = run.cur_nimg, run.step, time.time()
    snapped = False
    profile = StepProfile(cfg.profile_steps if run.is_main else 0, run.out, run.device, log=run.log)  # rank 0 profiles
    index = 0  # this process's steps
    while run.cur_nimg < total:
        profile.before(index)
        parts, images = step()
        profile.after(index)
        index += 1
        for k, v in parts.items():
            stats.setdefault(k, []).append(float(v))
        run.cur_nimg += images
        run.step += 1
        done = run.cur_nimg >= total
        if log_tick.next is not None and (log_tick.due(run.cur_nimg) or done):
            elapsed = time.time() - tick_time
            sec_per_kimg = elapsed / max((run.cur_nimg - tick_nimg) / 1000, 1e-9)
            sec_per_step = elapsed / max(run.step - tick_step, 1)
            means = _mean_over_ranks(run, {k: float(np.mean(v)) for k, v in stats.items()})
            run.log(f"kimg {run.cur_nimg / 1000:8.2f}  " + "  ".join(f"{k} {v:7.4f}" for k, v in means.items())
                    + (describe() if describe else "")
                    + f"  sec/kimg {sec_per_kimg:7.1f}  sec/step {sec_per_step:.4f}")
            run.progress(run.cur_nimg, total, label, **means)
            stats.clear()
            tick_nimg, tick_step, tick_time = run.cur_nimg, run.step, time.time()
        if snap_tick.due(run.cur_nimg) or done:
            snapshot()
            snapped = True
    profile.finish(index)
    if not snapped:  # resumed a run that was already complete
        snapshot()


def _mean_over_ranks(run: Run, means: dict[str, float]) -> dict[str, float]:
    """``means`` averaged over the training processes (unchanged on one process)."""
    if not run.dist.active or not means:
        return means
    values = run.dist.average(torch.tensor(list(means.values()), dtype=torch.float64, device=run.device))
    return dict(zip(means, values.tolist()))


def parse_log_lines(log_text: str) -> list[dict[str, float]]:
    """The numeric fields of each ``kimg ...`` line that :func:`run_kimg_loop` wrote to a run's ``log.txt``, in
    order: ``[{"kimg": 2.0, "loss": 0.3, ..., "sec/kimg": 8.8, "sec/step": 0.14}, ...]``."""
    return [{name: float(value) for name, value in _FIELD.findall(line)}
            for line in log_text.splitlines() if line.startswith("kimg ")]
