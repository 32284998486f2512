"""Intervals and seed ranges for every benchmark: what a figure is measured on, and how sure it is.

Tuned settings are picked on **development seeds** (each preset names its range); benchmarks report
on **report seeds**, a range no tuning looks at, recorded in the JSON next to every figure.

- :func:`wilson`: the 95% Wilson score interval of a rate (``k`` successes of ``n``).
- :func:`bootstrap_mean`: a 95% percentile-bootstrap interval of a mean.
- :func:`rate_metrics` / :func:`mean_metrics`: the flat JSON keys ``<key>``, ``<key>_lo``, ``<key>_hi``
  (and ``<key>_n``).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["REPORT_SEED_START", "DEV_SEED_RANGE", "report_seeds", "wilson", "bootstrap_mean", "rate_metrics",
           "mean_metrics", "Z95"]

#: The first report seed of every benchmark; report seeds are ``REPORT_SEED_START + offset + i``.
REPORT_SEED_START = 7_000_000
#: The development seeds tuning may look at (``range``); presets name the sub-range they used.
DEV_SEED_RANGE = range(1000, 100_000)
#: The two-sided 95% normal quantile.
Z95 = 1.959963984540054


def report_seeds(n: int, offset: int = 0) -> range:
    """``n`` report seeds starting at ``REPORT_SEED_START + offset`` (disjoint from :data:`DEV_SEED_RANGE`)."""
    start = REPORT_SEED_START + int(offset)
    return range(start, start + int(n))


def wilson(k: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval ``(lo, hi)`` of the rate ``k / n`` (``(0, 1)`` when ``n == 0``)."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # the interval always contains p; clamping also removes rounding residue at p = 0 or 1
    return min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half))


def bootstrap_mean(values: Sequence[float] | np.ndarray, *, resamples: int = 2000, seed: int = 0,
                   level: float = 0.95) -> tuple[float, float]:
    """Percentile-bootstrap interval ``(lo, hi)`` of the mean of ``values [n]`` (``resamples`` draws)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("bootstrap_mean needs at least one value")
    if x.size == 1:
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(means, [tail, 100.0 - tail])
    return float(lo), float(hi)


def rate_metrics(key: str, outcomes: Sequence[bool] | np.ndarray) -> dict[str, float]:
    """``{key: rate, key_lo, key_hi, key_n}`` from per-sample 0/1 outcomes (Wilson interval)."""
    x = np.asarray(outcomes, dtype=np.float64).ravel()
    lo, hi = wilson(float(x.sum()), x.size)
    return {key: float(x.mean()) if x.size else 0.0, f"{key}_lo": lo, f"{key}_hi": hi, f"{key}_n": float(x.size)}


def mean_metrics(key: str, values: Sequence[float] | np.ndarray, *, seed: int = 0) -> dict[str, float]:
    """``{key: mean, key_lo, key_hi, key_n}`` from per-sample values (bootstrap interval)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    lo, hi = bootstrap_mean(x, seed=seed)
    return {key: float(x.mean()), f"{key}_lo": lo, f"{key}_hi": hi, f"{key}_n": float(x.size)}
