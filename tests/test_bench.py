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
