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


def test_toyfaces_coverage_sees_a_collapsed_attribute():
    import numpy as np

    from stylekit.bench.toyfaces import coverage
    from stylekit.toyfaces.attributes import ATTRIBUTES, sample_attributes

    renders = sample_attributes(500, seed=0)
    same = coverage(renders, renders)
    assert all(abs(same[f"coverage_{s.name}_span"] - 1.0) < 1e-9 for s in ATTRIBUTES if s.kind == "continuous")
    collapsed = dict(renders, smile=np.full(500, 0.3))
    cov = coverage(collapsed, renders)
    assert cov["coverage_smile_span"] < 1e-6 and cov["coverage_min_span"] == cov["coverage_smile_span"]
    assert 0.0 <= cov["coverage_glasses_rate"] <= 1.0 and "prior_glasses_rate" in cov
    args = __import__("stylekit.bench.__main__", fromlist=["build_parser"]).build_parser("toyfaces").parse_args(
        ["--n", "50", "--no-clip"])
    assert args.n == 50 and args.no_clip
