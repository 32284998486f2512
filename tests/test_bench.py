"""The benchmark dispatcher: one flat JSON object per run, sub-benchmarks registered by name."""

from __future__ import annotations

import json
import sys
import types

import pytest

import stylekit.bench as bench
from stylekit.bench.__main__ import flatten_metrics, main


@pytest.fixture()
def fake_benchmark(monkeypatch):
    module = types.ModuleType("stylekit_fake_bench")

    def add_arguments(parser):
        parser.add_argument("--size", type=int, default=3)

    def run(args):
        return {"size": args.size, "ok": True, "ratio": 0.5}

    module.add_arguments, module.run = add_arguments, run
    monkeypatch.setitem(sys.modules, "stylekit_fake_bench", module)
    monkeypatch.setitem(bench.BENCHMARKS, "fake", "stylekit_fake_bench")
    return module


def test_dispatcher_writes_one_flat_json_object(fake_benchmark, tmp_path, capsys):
    out = tmp_path / "sub" / "m.json"
    assert main(["fake", "--json", str(out), "--size", "7"]) == 0
    written = json.loads(out.read_text())
    assert written == {"size": 7, "ok": 1, "ratio": 0.5}
    assert json.loads(capsys.readouterr().out) == written


def test_unknown_benchmark_and_bad_metrics_are_refused(fake_benchmark, capsys):
    assert main(["nope"]) == 2
    assert "generator" in capsys.readouterr().err
    with pytest.raises(TypeError):
        flatten_metrics({"nested": {"a": 1}})
    with pytest.raises(TypeError):
        flatten_metrics({"x": float("nan")})


def test_generator_benchmark_is_registered_and_parses_options():
    from stylekit.bench.__main__ import build_parser

    args = build_parser("generator").parse_args(["--quick", "--batches", "1,4", "--no-sg3"])
    assert args.quick and args.batches == [1, 4] and args.no_sg3
    with pytest.raises(SystemExit):
        build_parser("generator").parse_args(["--batches", "0"])


# --- bench editing: judged by the held-out judge on report seeds ----------------------------------------------

class _FooledPredictor:
    """A stand-in attribute predictor that reads each binary attribute from one colour statistic, so any image
    can "show" any attribute; it labels the fitting codes, as the real predictor does for the methods."""

    names = ("red_hair", "mouth_open", "eyes_open", "glasses", "beard")

    def predict(self, images):
        import torch

        stats = [images[:, 0].mean((1, 2)), images[:, 1].mean((1, 2)), images[:, 2].mean((1, 2)),
                 images.mean((1, 2, 3)), images[:, :, :8].mean((1, 2, 3))]
        return {n: torch.sigmoid(40.0 * s) for n, s in zip(self.names, stats)}


def test_bench_editing_judges_on_report_seeds_and_credits_no_edit_of_a_non_face():
    """A random-weight generator draws no faces: whatever the (fooled) predictor reads, the judge's rule gives
    every method success 0, each rate with its Wilson interval, on the report seeds it records.
    Needs the trained judge (stylekit/toyfaces/weights/judge.safetensors)."""
    import numpy as np
    import torch

    from conftest import tiny_stylegan2
    from stylekit.bench.editing import evaluate
    from stylekit.bench.stats import REPORT_SEED_START
    from stylekit.judge import FACE_THRESHOLD, load_judge

    torch.set_num_threads(1)
    G = tiny_stylegan2()
    m = evaluate(G, _FooledPredictor(), load_judge(), attributes=["glasses", "beard"],
                 all_binary=list(_FooledPredictor.names), n_test=12, report_offset=3, n_fit=60, n_components=3,
                 n_select=6, n_planted=8)
    assert m["report_seed_start"] == REPORT_SEED_START + 3 and m["report_seed_count"] == 12
    assert m["rule_face_threshold"] == FACE_THRESHOLD and m["unedited_face_ok"] == 0.0
    methods = ("interfacegan", "ganspace", "sefa", "stylespace")
    for method in methods:
        for a in ("glasses", "beard"):
            assert m[f"{method}_success_{a}"] == 0.0 and m[f"{method}_face_ok_{a}"] == 0.0
            assert m[f"{method}_success_{a}_n"] == 12 and 0.0 < m[f"{method}_success_{a}_hi"] < 0.3
            assert m[f"{method}_leakage_{a}_lo"] - 1e-9 <= m[f"{method}_leakage_{a}"]
            assert m[f"{method}_leakage_{a}"] <= m[f"{method}_leakage_{a}_hi"] + 1e-9
    # the former, predictor-judged figures are kept beside them, and here the predictor is fooled
    assert max(m[f"predictor_{method}_mean_success"] for method in methods) > 0.5
    assert np.isfinite(m["interfacegan_fd_edited"]) and m["fd_unedited"] > 0


def test_report_seed_ranges_of_the_benches_do_not_overlap():
    """bench editing, bench text and bench inversion report on disjoint report seeds at their default sizes,
    all outside the development range tuning may use."""
    from stylekit.bench import editing, inversion, text
    from stylekit.bench.__main__ import build_parser
    from stylekit.bench.stats import DEV_SEED_RANGE, report_seeds

    e = build_parser("editing").parse_args([])
    t = build_parser("text").parse_args([])
    i = build_parser("inversion").parse_args([])
    ranges = [report_seeds(e.n_test, e.report_offset), report_seeds(len(text.PROMPTS) * max(4 * t.n_test, 200),
                                                                      t.report_offset),
              report_seeds(i.n_renders, inversion.RENDERS_OFFSET), report_seeds(i.n_samples, inversion.SAMPLES_OFFSET)]
    assert e.report_offset == editing.REPORT_OFFSET and e.judge == t.judge == i.judge == "toyfaces"
    for k, a in enumerate(ranges):
        assert a.start > DEV_SEED_RANGE.stop
        for b in ranges[k + 1:]:
            assert a.stop <= b.start or b.stop <= a.start, (a, b)


def test_every_edit_and_text_preset_names_the_codes_it_was_tuned_on():
    """Presets say which development codes they were tuned on; the gallery's were chosen on seeds inside
    DEV_SEED_RANGE, none on the report seeds the benches report on."""
    import re

    from stylekit.bench.stats import DEV_SEED_RANGE, REPORT_SEED_START
    from stylekit.edit import presets as edit_presets
    from stylekit.text.presets import GLOBAL_DIRECTIONS, MAPPER, OPTIMIZE

    edits = [edit_presets.INTERFACEGAN, edit_presets.SEFA, edit_presets.STYLESPACE, edit_presets.PART_TRANSFER,
             edit_presets.ANALOGY]
    texts = [p for table in (GLOBAL_DIRECTIONS, OPTIMIZE, MAPPER) for p in table.values()]
    for preset in edits + texts:
        assert len(preset.dev_seeds) > 20, preset
        numbers = [int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", preset.dev_seeds)]
        assert all(n < REPORT_SEED_START or "report seed" in preset.dev_seeds for n in numbers), preset.dev_seeds
    for preset in edits[1:]:
        lo, hi = (int(x) for x in re.search(r"seeds (\d+)-(\d+)", preset.dev_seeds).groups())
        assert lo in DEV_SEED_RANGE and hi in DEV_SEED_RANGE


def test_bench_video_measures_reconstruction_flicker_and_judged_edits_on_report_clips():
    from stylekit.bench import video
    from stylekit.bench.__main__ import build_parser
    from stylekit.bench.stats import DEV_SEED_RANGE

    args = build_parser("video").parse_args(["--quick"])
    m = video.run(args)
    assert m["report_seed_first"] == 7_700_000 > DEV_SEED_RANGE.stop and video.DEV_FIT_SEED in DEV_SEED_RANGE
    for kind in video.KINDS:
        for sigma in ("0", "1"):
            tag = f"{kind}_sigma{sigma}"
            assert 15 < m[f"{tag}_psnr"] < 40 and m[f"{tag}_psnr_lo"] <= m[f"{tag}_psnr"] <= m[f"{tag}_psnr_hi"]
            assert m[f"{tag}_edit_success_n"] == 2 * 8 and 0 <= m[f"{tag}_edit_success"] <= 1
            assert abs(m[f"{tag}_flicker_excess"]) < 10
    # the edit is judged, not assumed: over every quick clip it succeeds on some frames and the judge's intervals
    # are reported (measured 0.80-0.97 at the default strength on the full run)
    assert max(m[f"{k}_sigma1_edit_success"] for k in video.KINDS) > 0.3
    # PTI over the clip (the preset's fits a frame) on the same clips: a paired gain in reconstruction
    assert m["pti_steps_per_frame"] == 10
    for kind in video.KINDS:
        tag = f"{kind}_sigma1_pti"
        assert m[f"{tag}_psnr"] == pytest.approx(m[f"{kind}_sigma1_psnr"] + m[f"{tag}_psnr_gain"], abs=1e-6)
        assert m[f"{tag}_psnr_gain"] > 0 and m[f"{tag}_edit_success_n"] == 2 * 8
        assert abs(m[f"{tag}_flicker_change"]) < 5


def test_bench_training_reads_the_runs_logs_and_times_each_precision(tmp_path):
    """``bench training`` parses a supervised run's log into a steady rate (the first interval, which holds the
    warm-up or the compilation, left out) and a loss curve; a real short float32 run gives all of them."""
    from stylekit.bench import training

    log = ("G: 1 params\n"
           "kimg     2.00  l1  0.03  loss  0.3000  lr 0.00200  sec/kimg    30.0  sec/step 0.48\n"
           "kimg     4.00  l1  0.03  loss  0.2500  lr 0.00200  sec/kimg     8.0  sec/step 0.13\n"
           "kimg     6.00  l1  0.03  loss  0.2400  lr 0.00200  sec/kimg     9.0  sec/step 0.14\n"
           "kimg     8.00  l1  0.03  loss  0.2300  lr 0.00200  sec/kimg     7.0  sec/step 0.11\n")
    rows = training.parse_log(log)
    assert [r["kimg"] for r in rows] == [2, 4, 6, 8] and rows[0]["sec/kimg"] == 30.0
    m = training.curve_metrics("bf16", rows)
    assert m["bf16_sec_per_kimg"] == 8.0 and m["bf16_kimg_per_hour"] == 450.0
    assert m["bf16_first_interval_s"] == 60.0 and m["bf16_loss_at_4kimg"] == 0.25
    assert m["bf16_loss_end"] == pytest.approx(0.24)
    with pytest.raises(ValueError):
        training.curve_metrics("bf16", rows[:1])

    args = bench.__main__.build_parser("training").parse_args(
        ["--configs", "fp32", "--kimg", "0.08", "--log-kimg", "0.04", "--threads", "1", "--profile-steps", "1"])
    metrics = training.run(args)
    assert "fp32_failed" not in metrics
    assert metrics["fp32_sec_per_kimg"] > 0 and metrics["fp32_speedup_vs_fp32"] == 1.0
    assert 0 < metrics["fp32_loss_end"] < 2
    parts = [metrics[f"fp32_profile_{p}_ms"] for p in ("convolutions", "render_targets", "other")]
    assert all(v > 0 for v in parts) and metrics["fp32_profile_wall_ms"] > 0

    # each part's speedup against fp32, for the configurations that ran
    given = {"fp32_profile_wall_ms": 100.0, "fp32_profile_convolutions_ms": 50.0, "fp32_profile_other_ms": 30.0,
             "bf16_profile_wall_ms": 50.0, "bf16_profile_convolutions_ms": 20.0, "bf16_profile_other_ms": 30.0,
             "fp32_sec_per_kimg": 9.0}
    assert training.part_speedups(given, ["fp32", "bf16", "bf16-compile"]) == {
        "bf16_profile_convolutions_speedup_vs_fp32": 2.5, "bf16_profile_other_speedup_vs_fp32": 1.0}
    with pytest.raises(SystemExit):
        training.run(bench.__main__.build_parser("training").parse_args(["--configs", "fp64"]))
