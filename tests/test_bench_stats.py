"""The intervals every benchmark reports, and the split between development and report seeds."""

from __future__ import annotations

import numpy as np
import pytest

from stylekit.bench.stats import (DEV_SEED_RANGE, REPORT_SEED_START, bootstrap_mean, mean_metrics, rate_metrics,
                                  report_seeds, wilson)


def test_wilson_matches_the_textbook_value_and_contains_the_rate():
    lo, hi = wilson(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    assert wilson(0, 20)[0] == 0.0 and 0.1 < wilson(0, 20)[1] < 0.2   # 0 successes: [0, 0.161]
    assert wilson(20, 20)[1] == 1.0 and 0.8 < wilson(20, 20)[0] < 0.9
    assert wilson(0, 0) == (0.0, 1.0)
    for k in range(0, 51):
        lo, hi = wilson(k, 50)
        assert lo <= k / 50 <= hi
    # more samples, narrower interval
    assert np.diff(wilson(50, 100)) > np.diff(wilson(500, 1000))


def test_bootstrap_interval_covers_the_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    covered = 0
    for trial in range(200):
        x = rng.normal(1.0, 2.0, size=60)
        lo, hi = bootstrap_mean(x, resamples=500, seed=trial)
        covered += lo <= 1.0 <= hi
    assert 0.88 <= covered / 200 <= 0.99
    assert bootstrap_mean([3.0]) == (3.0, 3.0)
    with pytest.raises(ValueError):
        bootstrap_mean([])


def test_flat_metric_keys():
    r = rate_metrics("success", [1, 1, 0, 1])
    assert r["success"] == 0.75 and r["success_n"] == 4 and r["success_lo"] < 0.75 < r["success_hi"]
    m = mean_metrics("psnr", [20.0, 22.0, 24.0])
    assert m["psnr"] == 22.0 and m["psnr_lo"] >= 20.0 and m["psnr_hi"] <= 24.0 and m["psnr_n"] == 3


def test_report_seeds_never_meet_development_seeds():
    seeds = report_seeds(1000, offset=300_000)
    assert seeds.start == REPORT_SEED_START + 300_000 and len(seeds) == 1000
    assert seeds.start > DEV_SEED_RANGE.stop
