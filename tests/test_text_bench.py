"""The text benchmark: registered, its prompts name toyfaces attributes, its scoring and relevance timing."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_stylegan2


def test_registered_with_its_options():
    from stylekit.bench import BENCHMARKS
    from stylekit.bench.__main__ import build_parser

    assert BENCHMARKS["text"] == "stylekit.bench.text"
    args = build_parser("text").parse_args(["--quick", "--no-ffhq", "--alpha", "2"])
    assert args.quick and args.no_ffhq and args.alpha == 2.0


def test_prompts_cover_the_issue_and_name_attributes():
    from stylekit.bench.text import PROMPTS, THRESHOLDS
    from stylekit.toyfaces.attributes import ATTRIBUTE_NAMES

    assert list(PROMPTS) == ["smiling", "with glasses", "with a beard", "with long hair", "red hair"]
    assert all(attr in ATTRIBUTE_NAMES for attr, _, _ in PROMPTS.values())
    assert all(p.split()[-1] in target for p, (_, target, _) in PROMPTS.items())
    assert set(THRESHOLDS) <= {a for a, _, _ in PROMPTS.values()}


def test_scores_success_and_leakage():
    from stylekit.bench.text import _scores

    p0 = {"glasses": torch.tensor([0.1, 0.2, 0.3, 0.4]), "beard": torch.zeros(4), "red_hair": torch.ones(4),
          "smile": torch.zeros(4)}
    p1 = {"glasses": torch.tensor([0.9, 0.2, 0.7, 0.6]), "beard": torch.tensor([0.4, 0.0, 0.0, 0.0]),
          "red_hair": torch.ones(4), "smile": torch.ones(4)}
    success, leakage = _scores(p0, p1, "glasses", ["glasses", "beard", "red_hair"])
    assert success == pytest.approx(0.75)
    assert leakage == pytest.approx((0.1 + 0.0) / 2)
    success, _ = _scores(p0, p1, "smile", ["glasses", "beard"])
    assert success == 1.0


def test_relevance_metrics_on_a_tiny_generator():
    import open_clip

    from stylekit.bench.text import relevance_metrics
    from stylekit.clip_backend import ClipModel
    from stylekit.toyfaces.clip_model import OPEN_CLIP_NAME, create_untrained

    torch.set_num_threads(1)
    G = tiny_stylegan2()
    clip = ClipModel(create_untrained(), open_clip.get_tokenizer(OPEN_CLIP_NAME), name="toyfaces", pretrained=None)
    table, m = relevance_metrics(G, clip, n_images=2, reference_channels=5)
    assert m["relevance_channels"] == sum(sl.channels for sl in G.style_layers) == table.num_channels
    assert m["relevance_reference_timed_channels"] == 5
    assert m["relevance_min_cosine"] <= m["relevance_mean_cosine"] and m["relevance_mean_cosine"] > 0.8
    assert m["relevance_difference_max_error"] < 1e-3
    assert table.meta["method"] == "lowrank" and m["relevance_rank"] == 32
    assert table.meta["captured_energy"] > 0.95
    assert m["relevance_jacobian_mean_cosine"] > 0.9
    assert m["relevance_speedup"] == pytest.approx(m["relevance_reference_s"] / m["relevance_lowrank_s"])


def test_thresholds_on_the_judges_unit_scale():
    from stylekit.bench.text import unit_threshold
    from stylekit.toyfaces.captions import CALM_SMILE

    assert unit_threshold("smile") == pytest.approx((CALM_SMILE + 1.0) / 2.0)
    assert unit_threshold("hair_length") == pytest.approx(0.7) and unit_threshold("glasses") == 0.5


@pytest.fixture(scope="module")
def shipped():
    """The shipped generator, the trained held-out judge and the predictor (a missing judge file fails)."""
    import stylekit
    from stylekit.bench.text import _Judge
    from stylekit.checkpoints.predictor import load_predictor
    from stylekit.judge import load_judge
    from stylekit.toyfaces.attributes import BINARY_ATTRIBUTES

    torch.set_num_threads(1)
    G = stylekit.load_generator("toyfaces")
    return G, _Judge(G, load_judge(), load_predictor(), BINARY_ATTRIBUTES)


@pytest.mark.parametrize("attr", ["glasses", "smile"])
def test_test_codes_are_report_codes_the_judge_reads_without_the_attribute(shipped, attr):
    """Needs the trained judge."""
    from stylekit.bench.stats import report_seeds
    from stylekit.bench.text import _test_codes, unit_threshold
    from stylekit.latent import Latent

    G, judge = shipped
    seeds = report_seeds(40, 123)
    lat, before = _test_codes(G, judge, attr, 10, seeds=seeds, psi=1.0)
    j = list(judge.judge.attribute_names).index(attr)
    assert lat.batch_size == 10 and (before.unit[:, j] <= unit_threshold(attr)).all()
    pool = Latent.from_seed(G, list(seeds))
    matches = [int(torch.nonzero((pool.tensor[:, 0] == lat.tensor[k, 0]).all(1)).flatten()[0]) for k in range(10)]
    assert matches == sorted(matches)        # the first codes of the pool that qualify, in seed order
    again = judge(lat)
    assert again.unit == pytest.approx(before.unit, abs=1e-5)


def test_quick_run_judges_with_intervals_on_report_seeds(tmp_path):
    """The whole benchmark at smoke sizes on the shipped world (needs the trained judge): every figure the issue
    names, judged with intervals around it, the former predictor figures beside them, the report seeds recorded."""
    from stylekit.bench.__main__ import build_parser
    from stylekit.bench.judging import DEFAULT_RULE
    from stylekit.bench.stats import REPORT_SEED_START
    from stylekit.bench.text import REPORT_OFFSET, run

    args = build_parser("text").parse_args(["--quick", "--no-ffhq", "--threads", "1", "--prompts",
                                            "with glasses,smiling"])
    m = run(args)
    assert m["relevance_n_images"] == 6 and m["relevance_compare_n_images"] == 4
    from stylekit.text.presets import GLOBAL_DIRECTIONS

    toy = GLOBAL_DIRECTIONS["toyfaces"]
    assert m["global_top_k"] == toy.top_k and m["global_whiten"] == toy.whiten and m["optimize_contrast"] == 1.0
    assert m["report_seed_start"] == REPORT_SEED_START + REPORT_OFFSET and m["report_seed_count"] == 5 * 200
    assert m["rule_binary_tolerance"] == DEFAULT_RULE.binary_tolerance
    for method, n in (("global", 12), ("global_plain", 12), ("optimize", 4), ("mapper", 12)):
        for p in ("with_glasses", "smiling"):
            for part in ("success", "crossed", "face_ok", "kept", "leakage"):
                key = f"{method}_{part}_{p}"
                assert m[f"{key}_lo"] - 1e-9 <= m[key] <= m[f"{key}_hi"] + 1e-9 and m[f"{key}_n"] == n, key
            assert m[f"{method}_success_{p}"] <= min(m[f"{method}_crossed_{p}"], m[f"{method}_kept_{p}"],
                                                     m[f"{method}_face_ok_{p}"])
            assert f"predictor_{method}_success_{p}" in m
        assert m[f"{method}_min_success"] == min(m[f"{method}_success_with_glasses"], m[f"{method}_success_smiling"])
