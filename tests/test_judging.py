"""The edit success rule (stylekit.bench.judging) and the intervals every edit figure carries.

Two kinds of test:

- the rule's logic on hand-made judge readings, and the intervals' coverage (no weights needed);
- the rule with the **trained judge** (``trained_judge`` fixture: ``stylekit/toyfaces/weights/judge.safetensors``,
  shipped with the package; a missing file fails these tests, it never skips them): degenerate "edits" (flat
  grey, black, noise) score 0, a planted edit (the renderer switching the target on) scores high with low
  leakage, an edit that also switches another attribute fails ``kept``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stylekit.bench.judging import (DEFAULT_RULE, EditRule, edit_frechet, edit_outcomes, outcome_metrics,
                                    outcomes_from_readings, repeat_noise, summary_metrics)
from stylekit.toyfaces.attributes import ATTRIBUTE_NAMES, attribute_spec, sample_attributes

N_ATTR = len(ATTRIBUTE_NAMES)
G_ = ATTRIBUTE_NAMES.index("glasses")
SMILE = ATTRIBUTE_NAMES.index("smile")
BEARD = ATTRIBUTE_NAMES.index("beard")
ROT = ATTRIBUTE_NAMES.index("rotation")
BT, CT = DEFAULT_RULE.binary_tolerance, DEFAULT_RULE.continuous_tolerance


def _readings(n=4, value=0.2, face=0.9):
    return np.full((n, N_ATTR), value), np.full(n, face)


# --- the rule on hand-made readings ----------------------------------------------------------------

def test_binary_target_crossed_kept_and_face():
    before = _readings()
    after_unit = before[0].copy()
    after_unit[:, G_] = [0.9, 0.4, 0.9, 0.9]          # sample 1 does not cross
    after_unit[2, BEARD] += BT + 0.05                  # sample 2 leaks a binary past its tolerance
    after_face = np.array([0.9, 0.9, 0.9, 0.3])        # sample 3 is no longer a face
    o = outcomes_from_readings(before, (after_unit, after_face), "glasses", +1)
    assert o["crossed"].tolist() == [True, False, True, True]
    assert o["kept"].tolist() == [True, True, False, True]
    assert o["face_ok"].tolist() == [True, True, True, False]
    assert o["success"].tolist() == [True, False, False, False]
    assert o["leakage"][2] == pytest.approx((BT + 0.05) / (N_ATTR - 1))
    assert o["change_glasses"][0] == pytest.approx(0.7) and o["change_beard"][2] == pytest.approx(BT + 0.05)
    assert o["worst_excess"][2] == pytest.approx((BT + 0.05) / BT)


def test_continuous_attributes_count_for_kept_and_as_targets():
    before = _readings(n=3, value=0.5)
    after = before[0].copy()
    after[:, G_] = 0.9
    after[0, ROT] += CT / 2                # half the continuous tolerance: kept
    after[1, ROT] -= CT + 0.02             # past it: not kept
    after[2, BEARD] += CT + 0.02           # a binary may move that far (its tolerance is larger)
    o = outcomes_from_readings(before, (after, before[1]), "glasses", +1)
    assert BT > CT + 0.02 and o["kept"].tolist() == [True, False, True]
    # a continuous target needs a move of at least target_shift the asked way, and the threshold when given
    target = before[0].copy()
    shift = DEFAULT_RULE.target_shift
    target[:, SMILE] = [0.5 + shift + 0.01, 0.5 + shift - 0.05, 0.5 - shift - 0.01]
    up = outcomes_from_readings(before, (target, before[1]), "smile", +1)
    assert up["crossed"].tolist() == [True, False, False]
    down = outcomes_from_readings(before, (target, before[1]), "smile", -1)
    assert down["crossed"].tolist() == [False, False, True]
    assert down["target_move"].tolist() == pytest.approx([-shift - 0.01, -shift + 0.05, shift + 0.01])
    high = outcomes_from_readings(before, (target, before[1]), "smile", +1, target_threshold=0.5 + shift + 0.02)
    assert not high["crossed"].any()


def test_sign_per_sample_and_bad_inputs():
    before = _readings(n=2)
    before[0][1, G_] = 0.8                            # sample 1 has glasses: it is asked to lose them
    after = before[0].copy()
    after[:, G_] = [0.7, 0.1]
    o = outcomes_from_readings(before, (after, before[1]), "glasses", np.array([1.0, -1.0]))
    assert o["success"].tolist() == [True, True]
    o = outcomes_from_readings(before, (after, before[1]), "glasses", np.array([-1.0, 1.0]))
    assert o["crossed"].tolist() == [False, False]
    with pytest.raises(ValueError):
        outcomes_from_readings(before, (after, before[1]), "glasses", 0)
    with pytest.raises(ValueError):
        outcomes_from_readings(before, (after[:1], before[1][:1]), "glasses", 1)
    with pytest.raises(ValueError):
        outcomes_from_readings(before, (after, before[1]), "moustache", 1)


def test_stricter_rule_fails_what_the_default_keeps():
    before = _readings(n=1)
    after = before[0].copy()
    after[0, G_] = 0.9
    after[0, BEARD] += 0.2
    assert outcomes_from_readings(before, (after, before[1]), "glasses", 1)["success"].all()
    strict = EditRule(binary_tolerance=0.1)
    assert not outcomes_from_readings(before, (after, before[1]), "glasses", 1, strict)["success"].any()
    assert strict.tolerances(["beard", "rotation"]).tolist() == [0.1, DEFAULT_RULE.continuous_tolerance]


# --- metrics and their intervals ---------------------------------------------------------------------

def test_metrics_carry_intervals_that_contain_the_rate():
    rng = np.random.default_rng(0)
    success = rng.random(80) < 0.3
    outcomes = {"success": success, "crossed": success | (rng.random(80) < 0.5), "face_ok": np.ones(80, bool),
                "kept": success, "leakage": rng.random(80) * 0.1, "face_after": 0.6 + 0.3 * rng.random(80),
                "change_glasses": rng.random(80)}
    m = outcome_metrics(outcomes, "m", "glasses", changes=True)
    assert m["m_success_glasses"] == pytest.approx(success.mean())
    assert m["m_success_glasses_lo"] < m["m_success_glasses"] < m["m_success_glasses_hi"]
    assert m["m_success_glasses_n"] == 80
    assert m["m_face_ok_glasses"] == 1.0 and m["m_face_ok_glasses_hi"] == pytest.approx(1.0)
    assert m["m_face_ok_glasses_lo"] > 0.9
    assert m["m_leakage_glasses_lo"] < m["m_leakage_glasses"] < m["m_leakage_glasses_hi"]
    assert m["m_change_glasses_glasses"] == pytest.approx(outcomes["change_glasses"].mean())
    worse = dict(outcomes, success=np.zeros(80, bool))
    s = summary_metrics({"glasses": outcomes, "beard": worse}, "m")
    assert s["m_min_success"] == 0.0 and s["m_min_success_hi"] < 0.06       # Wilson: 0 of 80 -> [0, 0.046]
    assert s["m_mean_success"] == pytest.approx(success.mean() / 2) and s["m_mean_success_n"] == 160


def test_wilson_and_bootstrap_intervals_cover_the_true_value():
    """Over 300 simulated benchmarks each 95% interval contains the true rate / mean about 95% of the time."""
    from stylekit.bench.stats import bootstrap_mean, wilson

    rng = np.random.default_rng(1)
    p, n = 0.2, 60
    wilson_hits = sum(lo <= p <= hi for lo, hi in (wilson(int((rng.random(n) < p).sum()), n) for _ in range(300)))
    boot_hits = 0
    for i in range(300):
        lo, hi = bootstrap_mean(rng.exponential(0.1, size=n), resamples=500, seed=i)
        boot_hits += lo <= 0.1 <= hi
    assert 0.90 <= wilson_hits / 300 <= 0.99
    assert 0.88 <= boot_hits / 300 <= 0.99


# --- the rule with the trained judge ---------------------------------------------------------------

@pytest.fixture(scope="module")
def trained_judge():
    """The shipped held-out judge; a missing weights file is an error (the file ships with the package)."""
    from stylekit.judge import load_judge

    torch.set_num_threads(1)
    return load_judge()


def _faces(n=32, seed=11, **fixed):
    """``n`` renders ``[n, 3, 64, 64]`` with attributes from ``seed`` and ``fixed`` ones overriding, and the dict."""
    from stylekit.toyfaces.renderer import render_batch

    attrs = sample_attributes(n, seed=seed)
    for name, value in fixed.items():
        attrs[name] = np.full(n, float(value))
    return render_batch(attrs, size=64, seeds=np.arange(n)), attrs


@pytest.mark.parametrize("kind", ["grey", "black", "noise"])
def test_degenerate_edits_score_zero_and_are_no_faces(trained_judge, kind):
    before, _ = _faces(glasses=0.0)
    after = {"grey": torch.zeros_like(before), "black": -torch.ones_like(before),
             "noise": torch.rand(before.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1}[kind]
    o = edit_outcomes(trained_judge, before, after, "glasses", +1)
    assert (o["face_before"] >= DEFAULT_RULE.face_threshold).all(), "the unedited renders must read as faces"
    assert (o["face_after"] < DEFAULT_RULE.face_threshold).all()
    assert o["success"].sum() == 0


@pytest.mark.parametrize("target,on", [("glasses", 1.0), ("beard", 1.0), ("red_hair", 1.0), ("mouth_open", 1.0),
                                       ("eyes_open", 0.0), ("smile", 0.9)])
def test_planted_edit_succeeds_with_low_leakage(trained_judge, target, on):
    """"After" = the same faces rendered with the target switched (the ideal edit): high success, low leakage."""
    from stylekit.toyfaces.renderer import render_batch

    spec = attribute_spec(target)
    off = {"glasses": 0.0, "beard": 0.0, "red_hair": 0.0, "mouth_open": 0.0, "eyes_open": 1.0, "smile": -0.5}[target]
    before, attrs = _faces(**{target: off})
    after = render_batch(dict(attrs, **{target: np.full(len(before), on)}), size=64, seeds=np.arange(len(before)))
    sign = 1 if spec.to_unit(on) > spec.to_unit(off) else -1
    o = edit_outcomes(trained_judge, before, after, target, sign)
    assert o["success"].mean() >= 0.8, {k: o[k].mean() for k in ("crossed", "face_ok", "kept")}
    assert o["leakage"].mean() < 0.05


def test_perfect_edits_pass_because_the_tolerances_sit_above_the_judges_cross_talk(trained_judge):
    """The rule's justification, re-measured on other renders than it was set on (attribute seeds 1000-1011):
    the judge's cross-talk under perfect edits stays below both tolerances, so perfect edits succeed."""
    from stylekit.bench.judging import PLANTED, planted_edits

    m = planted_edits(trained_judge, n=100, seed=2000)
    assert m["judge_crosstalk_p99_binary"] < DEFAULT_RULE.binary_tolerance
    assert m["judge_crosstalk_p99_continuous"] < DEFAULT_RULE.continuous_tolerance
    for attr, _, _ in PLANTED:
        assert m[f"planted_success_{attr}"] >= 0.85, (attr, m[f"planted_success_{attr}"])
        assert m[f"planted_success_{attr}_n"] == 100
    assert m["planted_leakage"] < 0.05


def test_an_edit_that_also_changes_another_attribute_is_not_kept(trained_judge):
    from stylekit.toyfaces.renderer import render_batch

    before, attrs = _faces(glasses=0.0, beard=0.0, rotation=-10.0)
    n = len(before)
    with_beard = render_batch(dict(attrs, glasses=np.ones(n), beard=np.ones(n)), size=64, seeds=np.arange(n))
    o = edit_outcomes(trained_judge, before, with_beard, "glasses", +1)
    assert o["crossed"].mean() >= 0.85 and o["kept"].mean() <= 0.1 and o["success"].mean() <= 0.1
    alone = edit_outcomes(trained_judge, before, render_batch(dict(attrs, glasses=np.ones(n)), size=64,
                                                              seeds=np.arange(n)), "glasses", +1)
    assert o["leakage"].mean() > alone["leakage"].mean() + 0.04     # the beard's move of ~1, over 14 attributes
    tilted = render_batch(dict(attrs, glasses=np.ones(n), rotation=np.full(n, 12.0)), size=64, seeds=np.arange(n))
    o = edit_outcomes(trained_judge, before, tilted, "glasses", +1)   # 22 degrees of roll: 0.44 of the range
    assert o["crossed"].mean() >= 0.85 and o["kept"].mean() <= 0.1
    assert np.abs(o["change_rotation"]).mean() > DEFAULT_RULE.continuous_tolerance


def test_judge_repeat_noise_is_far_below_the_tolerances(trained_judge):
    """The rule's tolerances are justified by the judge's repeat noise: the same faces with other pixel noise."""
    from stylekit.toyfaces.renderer import render_batch

    attrs = sample_attributes(64, seed=5)
    first = render_batch(attrs, size=64, seeds=np.arange(64))
    second = render_batch(attrs, size=64, seeds=np.arange(1000, 1064))
    noise = repeat_noise(trained_judge, first, second)
    assert noise["judge_noise_p99_binary"] < DEFAULT_RULE.binary_tolerance / 3
    assert noise["judge_noise_p99_continuous"] < DEFAULT_RULE.continuous_tolerance / 2


def test_frechet_distance_sees_a_broken_edit(trained_judge):
    renders, _ = _faces(n=48, seed=3)
    unedited, attrs = _faces(n=48, seed=4, glasses=0.0)
    from stylekit.toyfaces.renderer import render_batch

    planted = render_batch(dict(attrs, glasses=np.ones(48)), size=64, seeds=np.arange(48))
    good = edit_frechet(trained_judge, planted, unedited, renders)
    grey = edit_frechet(trained_judge, torch.zeros_like(unedited), unedited, renders)
    assert grey["fd_unedited"] == pytest.approx(good["fd_unedited"])
    assert grey["fd_edited"] > 5 * good["fd_edited"]
    assert good["fd_edited"] < 3 * good["fd_unedited"]
