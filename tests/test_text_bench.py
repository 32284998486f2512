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
    assert -1.0 <= m["relevance_min_cosine"] <= m["relevance_mean_cosine"] <= 1.0 + 1e-6
    assert m["relevance_difference_max_error"] < 1e-3
    assert table.meta["method"] == "lowrank" and m["relevance_rank"] == 32
    assert 0.0 < table.meta["captured_energy"] <= 1.0 + 1e-6
    assert m["relevance_jacobian_mean_cosine"] > 0.9
    for key in ("relevance_lowrank_s", "relevance_reference_s", "relevance_speedup", "relevance_jacobian_s",
                "relevance_jacobian_speedup"):
        assert m[key] > 0


def test_quick_run_reports_every_required_metric(tmp_path):
    """The whole benchmark at smoke sizes on the shipped world: every metric the issue names is there."""
    from stylekit.bench.__main__ import build_parser
    from stylekit.bench.text import run

    args = build_parser("text").parse_args(["--quick", "--no-ffhq", "--threads", "1", "--prompts",
                                            "with glasses,smiling"])
    m = run(args)
    for key in ("global_min_success", "global_mean_leakage", "global_plain_min_success", "optimize_min_success",
                "mapper_min_success", "global_edit_s", "relevance_speedup", "relevance_mean_cosine",
                "relevance_toyfaces_s"):
        assert key in m, key
    assert m["relevance_n_images"] == 6 and m["relevance_compare_n_images"] == 4
    assert m["global_top_k"] == 40 and m["global_whiten"] == 8 and m["optimize_contrast"] == 1.0
    assert all(0.0 <= m[f"{k}_success_{p}"] <= 1.0 for k in ("global", "optimize", "mapper")
               for p in ("with_glasses", "smiling"))
