"""The inversion benchmark runs end to end on a tiny generator and reports flat numbers (no timing checks)."""

from __future__ import annotations

import argparse
import math

import pytest

from conftest import tiny_stylegan2


def test_inversion_bench_smoke(tmp_path):
    """Needs the trained judge (stylekit/toyfaces/weights/judge.safetensors)."""
    from stylekit.bench import BENCHMARKS
    from stylekit.bench import inversion
    from stylekit.bench.__main__ import flatten_metrics
    from stylekit.bench.stats import REPORT_SEED_START
    from stylekit.checkpoints.canonical import save_generator

    assert BENCHMARKS["inversion"] == "stylekit.bench.inversion"
    path = tmp_path / "tiny.safetensors"
    save_generator(tiny_stylegan2(), path)
    parser = argparse.ArgumentParser()
    inversion.add_arguments(parser)
    args = parser.parse_args(["--generator", str(path), "--skip-ffhq", "--skip-vit", "--perceptual", "none",
                              "--encoder", str(tmp_path / "none.safetensors"),
                              "--restyle-encoder", str(tmp_path / "none.safetensors")])
    args.steps, args.pti_steps, args.pivot_steps, args.n_samples, args.n_renders = 5, 3, 5, 1, 3
    metrics = flatten_metrics(inversion.run(args))
    for key in ("self_psnr_optimize_wplus", "pti_delta_bytes", "seconds_per_image_pti",
                "bar_self_psnr_optimize_wplus_ge_30"):
        assert key in metrics and math.isfinite(metrics[key])
    assert metrics["pti_delta_bytes"] > 0
    assert "renders_psnr_encoder" not in metrics  # no encoder file: its metrics are left out, not invented
    assert metrics["report_seed_start"] == REPORT_SEED_START + inversion.RENDERS_OFFSET
    assert metrics["report_seed_count"] == 3
    for method in ("optimize_wplus", "optimize_w", "pti"):
        for figure in ("psnr", "attr_error", "face", "face_ok"):
            key = f"renders_{figure}_{method}"
            assert metrics[f"{key}_lo"] - 1e-9 <= metrics[key] <= metrics[f"{key}_hi"] + 1e-9, key
            assert metrics[f"{key}_n"] == 3
        # a random-weight 16-pixel generator reconstructs no face: the judge says so
        assert metrics[f"renders_face_ok_{method}"] == 0.0


def test_inversion_renders_come_from_report_seeds():
    """The renders and the self-PSNR samples are drawn from the benchmark's report seeds: reproducible, and
    other seeds give other images."""
    import torch

    from stylekit.bench import inversion
    from stylekit.bench.stats import report_seeds

    a = inversion.held_out_renders(3, 32)
    assert torch.equal(a, inversion.held_out_renders(3, 32, seed=report_seeds(1, inversion.RENDERS_OFFSET).start))
    assert not torch.equal(a, inversion.held_out_renders(3, 32, seed=987_654))
    G = tiny_stylegan2()
    s = inversion.generator_samples(G, 2)
    assert torch.equal(s, inversion.generator_samples(G, 2, seed=report_seeds(1, inversion.SAMPLES_OFFSET).start))
    assert not torch.equal(s[0], s[1])


def test_library_and_bench_invert_with_the_presets():
    """project, pivotal_tuning, restyle and bench inversion all default to the frozen invert presets."""
    import dataclasses
    import inspect

    from stylekit.bench import inversion
    from stylekit.invert.optimize import project
    from stylekit.invert.presets import OPTIMIZE, PTI, RESTYLE
    from stylekit.invert.pti import pivotal_tuning
    from stylekit.invert.refine import restyle

    for fn, preset in ((project, OPTIMIZE), (pivotal_tuning, PTI), (restyle, RESTYLE)):
        params = inspect.signature(fn).parameters
        for field in dataclasses.fields(preset):
            if field.name != "tuned":
                assert params[field.name].default == getattr(preset, field.name), (fn.__name__, field.name)
    with pytest.raises(dataclasses.FrozenInstanceError):
        OPTIMIZE.steps = 1
    parser = argparse.ArgumentParser()
    inversion.add_arguments(parser)
    args = parser.parse_args([])
    assert (args.steps, args.pti_steps, args.pivot_steps, args.restyle_iterations) == (
        OPTIMIZE.steps, PTI.steps, PTI.pivot_steps, RESTYLE.iterations)
