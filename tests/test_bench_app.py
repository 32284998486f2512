"""The app benchmark calls every endpoint of the gallery (so a new tab cannot escape the latency bar)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_app_benchmark_covers_every_endpoint(tmp_path):
    sys.path.insert(0, str(ROOT))
    try:
        import app
        from demos.bench_app import NOT_TIMED, _calls, _inputs
    finally:
        sys.path.remove(str(ROOT))

    demo = app.build_app()
    names = {fn.api_name for fn in demo.fns.values() if fn.api_name and fn.api_visibility != "private"}
    called = [name for name, _ in _calls(_inputs(tmp_path), 2)]
    assert len(called) == len(set(called))
    missing = names - set(called) - set(NOT_TIMED)
    assert missing == set(), f"endpoints the app benchmark does not time: {sorted(missing)}"
    assert set(called) <= names and set(NOT_TIMED) <= names


def test_app_benchmark_finds_the_gallery_and_parses_its_options():
    sys.path.insert(0, str(ROOT))
    try:
        from demos.bench_app import ROOT as APP_DIR, build_parser
    finally:
        sys.path.remove(str(ROOT))
    assert (APP_DIR / "app.py").is_file()
    args = build_parser().parse_args(["--json", "out.json", "--repeats", "3"])
    assert args.app_dir == APP_DIR and args.repeats == 3 and args.json == Path("out.json")


def test_stylekit_bench_app_points_to_the_new_command(capsys):
    from stylekit.bench import BENCHMARKS
    from stylekit.bench.__main__ import main

    assert "app" not in BENCHMARKS  # the package no longer holds a benchmark that needs the repository
    assert main(["app", "--json", "out.json"]) == 2
    err = capsys.readouterr().err
    assert "python -m demos.bench_app --json out.json" in err
    assert "unknown benchmark" not in err
