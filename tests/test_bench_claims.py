"""bench claims: verdicts come from intervals, the table has its shape, and every claim runs end to end.

The logic is checked on synthetic inputs (an interval straddling 0 is "no", a claim with one failing test
does not hold, leakage is compared at equal success, a transferred group reads 1 and an untouched one 0);
the smoke run uses the toyfaces generator and encoders with an *untrained* judge and tiny sizes, so it checks
the plumbing, never a number.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from stylekit.bench import claims as C


def test_verdict_reads_the_interval():
    assert C.verdict(0.1, 0.5) == "yes"
    assert C.verdict(-0.2, 0.4) == "no"          # straddles 0: not shown
    assert C.verdict(0.0, 0.3) == "no"           # touching 0 is not above it
    assert C.verdict(-0.5, -0.1) == "no, reversed"
    assert C.combine(["yes", "yes"]) == "yes"
    assert C.combine(["yes", "no"]) == "no"
    assert C.combine(["no", "no, reversed", "yes"]) == "no, reversed"
    with pytest.raises(ValueError):
        C.combine([])


def test_paired_test_says_no_when_the_interval_straddles_zero():
    rng = np.random.default_rng(0)
    clear = C.paired_test("gain", 1.0 + 0.1 * rng.standard_normal(30))
    assert clear.verdict == "yes" and clear.lo > 0.9 and clear.n == 30
    noisy = C.paired_test("gain", np.tile([-1.0, 1.0], 30))
    assert noisy.lo < 0 < noisy.hi and noisy.verdict == "no"
    worse = C.paired_test("gain", -1.0 + 0.1 * rng.standard_normal(30))
    assert worse.verdict == "no, reversed"
    single = C.paired_test("gain", [3.0])        # one sample: no interval, no verdict
    assert single.verdict == "no"


def _claim(key, *tests):
    return C.Claim(key, f"claim {key}", "a paper", "its figure | with a pipe", "measured, n = 3", list(tests))


def test_a_claim_holds_only_when_every_test_does_and_metrics_are_flat():
    ok = C.Test("a", 1.0, 0.5, 1.5, 10)
    straddle = C.Test("b", 0.2, -0.1, 0.5, 10)
    assert _claim("x", ok).holds == "yes"
    assert _claim("y", ok, straddle).holds == "no"
    m = C.claim_metrics([_claim("x", ok), _claim("y", ok, straddle)])
    assert m["claim_x_holds"] == 1 and m["claim_y_holds"] == 0
    assert (m["claim_x"], m["claim_x_lo"], m["claim_x_hi"], m["claim_x_n"]) == (1.0, 0.5, 1.5, 10)
    assert m["claim_y_b_lo"] == -0.1 and m["claim_y_a"] == 1.0
    assert all(isinstance(v, (int, float)) for v in m.values())


def test_markdown_table_shape():
    rows = [_claim("x", C.Test("a", 1.0, 0.5, 1.5, 10)), _claim("y", C.Test("a", -1.0, -1.5, -0.5, 10))]
    text = C.markdown_table(rows)
    lines = text.strip().splitlines()
    assert lines[0] == "| claim | source | the paper's figure | measured here (95% interval) | holds? |"
    assert lines[1] == "|---|---|---|---|---|" and len(lines) == 2 + len(rows)
    for line in lines[2:]:
        cells = [c for c in line.replace("\\|", "").split("|")][1:-1]
        assert len(cells) == 5, line           # the pipe inside a cell is escaped
    assert lines[2].endswith("| yes |") and lines[3].endswith("| no, reversed |")


def test_interpolation_at_equal_success():
    # success 0.2, 0.6, 0.9 at three strengths, leakage 0.01, 0.05, 0.2: success 0.5 lies 3/4 of the way
    assert C.interpolate_at([0.2, 0.6, 0.9], [0.01, 0.05, 0.2], 0.5) == pytest.approx(0.04)
    assert C.interpolate_at([0.2, 0.6, 0.9], [0.01, 0.05, 0.2], 0.1) == pytest.approx(0.005)  # from (0, 0)
    assert C.interpolate_at([0.1, 0.2], [0.3, 0.4], 0.5) == pytest.approx(0.4)   # never reached: the last
    assert C.interpolate_at([0.1, 0.2], [0.3, 0.4], 0.0) == 0.0


def _outcomes(rng, n, success_rate, leak):
    """Synthetic per-code outcomes [n, 2 attributes, 3 strengths]: success rising with strength."""
    s = np.stack([rng.random((n, 2)) < r for r in success_rate], axis=2).astype(float)
    lk = np.stack([np.full((n, 2), x) + 0.01 * rng.random((n, 2)) for x in leak], axis=2)
    return s, lk


def test_leakage_is_compared_at_equal_success():
    rng = np.random.default_rng(1)
    out = {}
    for m, leak in (("w", (0.05, 0.10, 0.20)), ("wplus", (0.04, 0.08, 0.15)), ("s", (0.01, 0.02, 0.04))):
        out[m] = _outcomes(rng, 200, (0.3, 0.6, 0.9), leak)
    r = C.disentanglement_from_outcomes({m: v[0] for m, v in out.items()}, {m: v[1] for m, v in out.items()},
                                        resamples=200)
    assert r["s_star"] == 0.5
    assert r["diff"]["w"][1] > 0 and r["diff"]["wplus"][1] > 0 and r["diff"]["s"][0] == 0
    d = {"success": {m: v[0] for m, v in out.items()}, "leakage": {m: v[1] for m, v in out.items()}, "n": 200}
    rows = C.disentanglement_claims(d)
    assert [c.holds for c in rows] == ["yes", "yes"]
    # the same leakage everywhere: not shown
    same = {m: _outcomes(rng, 200, (0.3, 0.6, 0.9), (0.05, 0.1, 0.2)) for m in ("w", "wplus", "s")}
    d = {"success": {m: v[0] for m, v in same.items()}, "leakage": {m: v[1] for m, v in same.items()}, "n": 200}
    assert [c.holds for c in C.disentanglement_claims(d)] == ["no", "no"]
    # a method that never succeeds leaves no common success level: not measured, "no"
    never = dict(out)
    never["s"] = (np.zeros_like(out["s"][0]), out["s"][1])
    d = {"success": {m: v[0] for m, v in never.items()}, "leakage": {m: v[1] for m, v in never.items()}, "n": 200}
    rows = C.disentanglement_claims(d)
    assert [c.holds for c in rows] == ["no", "no"] and "not measured" in rows[0].measured


def test_the_common_success_level_is_found_again_in_every_resample():
    """A method that barely reaches s* in the full sample misses it in half the resamples; leakage is then
    compared at the level every method reaches there, so the interval brackets the estimate tightly."""
    rng = np.random.default_rng(4)
    out = {"w": _outcomes(rng, 200, (0.3, 0.6, 0.9), (0.01, 0.02, 0.04)),
           "wplus": _outcomes(rng, 200, (0.3, 0.6, 0.9), (0.01, 0.02, 0.04)),
           "s": _outcomes(rng, 200, (0.1, 0.2, 0.15), (0.05, 0.10, 0.30))}
    r = C.disentanglement_from_outcomes({m: v[0] for m, v in out.items()}, {m: v[1] for m, v in out.items()},
                                        resamples=300)
    est, lo, hi = r["leak"]["s"]
    assert r["s_star"] < 0.25 and lo <= est <= hi and hi < 0.2      # never the leakage of the strongest edit
    assert r["diff"]["w"][2] < 0                                     # S leaks more here: reversed


def test_encoder_rows_from_synthetic_measurements():
    rng = np.random.default_rng(5)
    n = 100
    psnrs = {"e4e": 23 + rng.standard_normal(n), "restyle": 24 + rng.standard_normal(n)}
    psnrs["psp"] = psnrs["e4e"] + 0.8 + 0.1 * rng.standard_normal(n)
    edits = {"e4e": {"success": (rng.random((n, 5)) < 0.7).astype(float)},
             "psp": {"success": (rng.random((n, 5)) < 0.3).astype(float)}}
    rows = C.encoder_claims(psnrs, edits, n_attributes=5)
    assert [c.key for c in rows] == ["psp_distortion", "e4e_editability", "restyle"]
    assert [c.holds for c in rows] == ["yes", "yes", "yes"]
    edits = {"e4e": edits["psp"], "psp": edits["e4e"]}
    assert C.encoder_claims(psnrs, edits, n_attributes=5)[1].holds == "no, reversed"


def test_transfer_shares_and_layer_rows():
    rng = np.random.default_rng(2)
    names = [n for group in C.ATTRIBUTE_GROUPS.values() for n in group] + ["light_direction"]
    n = 60
    a, b = rng.random((n, len(names))), rng.random((n, len(names)))
    cols = {g: [names.index(x) for x in attrs] for g, attrs in C.ATTRIBUTE_GROUPS.items()}
    mixes = {}
    for layer, own in C.LAYER_CLAIMS.items():
        mix = a.copy()
        mix[:, cols[own]] = b[:, cols[own]]        # exactly the claimed group moves
        mixes[layer] = mix + 0.01 * rng.standard_normal(mix.shape)
    assert C.transfer_shares(a, b, b, cols["colours"]) == pytest.approx(1.0)
    assert C.transfer_shares(a, b, a, cols["colours"]) == pytest.approx(0.0)
    rows = C.layer_claims({"a": a, "b": b, "n": n, **mixes}, names, resamples=200)
    assert [c.key for c in rows] == ["layers_coarse", "layers_middle", "layers_fine"]
    assert all(c.holds == "yes" for c in rows)
    # the coarse layers moving colours instead: reversed
    swapped = dict(mixes, coarse=mixes["fine"])
    assert C.layer_claims({"a": a, "b": b, "n": n, **swapped}, names, resamples=200)[0].holds == "no, reversed"


def test_truncation_row_needs_both_the_diversity_loss_and_the_fidelity_gain():
    rng = np.random.default_rng(3)
    n = 80
    base = rng.random((n, 15))
    t = {"n": n, "psis": [0.5, 1.0]}
    t[1.0] = {"unit": base, "face": 0.80 + 0.05 * rng.random(n), "fd": 2.0}
    t[0.5] = {"unit": 0.5 + 0.5 * (base - 0.5), "face": 0.90 + 0.05 * rng.random(n), "fd": 3.0}
    row = C.truncation_claims(t, resamples=200)[0]
    assert row.holds == "yes" and [x.name for x in row.tests] == ["diversity_loss", "face_gain"]
    t[0.5] = {"unit": 0.5 + 0.5 * (base - 0.5), "face": t[1.0]["face"].copy(), "fd": 3.0}
    assert C.truncation_claims(t, resamples=200)[0].holds == "no"
    d = C.pairwise_distances(np.array([[0.0, 0.0], [3.0, 4.0]]))
    assert d[0, 1] == pytest.approx(5.0) and C.mean_pairwise(d, np.array([0, 1])) == pytest.approx(5.0)


def test_report_seeds_are_disjoint_from_the_other_benches():
    from stylekit.bench import editing, inversion, text
    from stylekit.bench.stats import DEV_SEED_RANGE, REPORT_SEED_START

    start = REPORT_SEED_START + C.REPORT_OFFSET
    others = [editing.REPORT_OFFSET, text.REPORT_OFFSET, inversion.RENDERS_OFFSET, inversion.SAMPLES_OFFSET]
    assert all(o < C.REPORT_OFFSET for o in others) and start > DEV_SEED_RANGE.stop
    assert max(C.RENDER_OFFSET, C.EDIT_OFFSET, C.MIX_OFFSET, C.TRUNC_OFFSET) + 20_000 <= 100_000
    assert C.DEV_LAYER_SEEDS.start in DEV_SEED_RANGE and C.DEV_LAYER_SEEDS.stop - 1 in DEV_SEED_RANGE


def test_every_claim_runs_end_to_end_with_tiny_sizes(tmp_path):
    """All five parts with tiny sizes and an untrained judge: 12 rows, a verdict each, a flat JSON, the table."""
    from stylekit.bench.__main__ import build_parser, flatten_metrics
    from stylekit.bench.stats import REPORT_SEED_START

    torch.set_num_threads(1)
    args = build_parser("claims").parse_args([
        "--untrained-judge", "--n-opt", "2", "--n-pti", "2", "--opt-steps", "3", "--noise-steps", "2",
        "--pti-steps", "2", "--n-enc", "3", "--n-fit", "60", "--n-codes", "4", "--n-dev", "4", "--n-pairs", "6",
        "--n-trunc", "6", "--psis", "0.5,1.0", "--markdown", str(tmp_path / "claims.md")])
    assert isinstance(args, argparse.Namespace)
    m = flatten_metrics(C.run(args))
    json.dumps(m)
    assert m["claims_measured"] == len(C.CLAIM_ORDER) and m["judge_trained"] == 0
    assert m["report_seed_start"] == REPORT_SEED_START + C.REPORT_OFFSET
    for key in C.CLAIM_ORDER:
        assert m[f"claim_{key}_holds"] in (0, 1)
    lines = (tmp_path / "claims.md").read_text().strip().splitlines()
    assert len(lines) == 2 + len(C.CLAIM_ORDER)
    assert all("n = " in line for line in lines[2:])
    assert all(line.rstrip().endswith(("| yes |", "| no |", "| no, reversed |")) for line in lines[2:])
