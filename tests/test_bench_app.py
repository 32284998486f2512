"""The app benchmark calls every endpoint of the gallery (so a new tab cannot escape the latency bar)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

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


def test_endpoint_calls_fill_every_input_from_defaults_and_the_settings(tmp_path):
    sys.path.insert(0, str(ROOT))
    try:
        from demos.bench_app import ALWAYS, SMALL, _inputs, endpoint_calls
    finally:
        sys.path.remove(str(ROOT))
    files = _inputs(tmp_path)

    def param(name, default=None, has=True):
        return {"parameter_name": name, "parameter_has_default": has, "parameter_default": default}

    api = {"named_endpoints": {
        "/generate": {"parameters": [param("model", "toyfaces"), param("seeds", "0-7"), param("psi", 0.7)]},
        "/invert": {"parameters": [param("model"), param("image", has=False), param("steps", 100)]},
        "/text_prepare": {"parameters": [param("model"), param("images", 100), param("rank", 32)]},
        "/sg3_pose": {"parameters": [param("model")]},
        "/generate_use": {"parameters": [param("model"), param("seeds", "0-7")]},
    }}
    calls = endpoint_calls(api, files, "ffhq-1024", 2)
    assert [name for name, _ in calls] == ["generate", "invert", "text_prepare", "generate_use"]  # app order
    args = dict(calls)
    assert args["generate"] == ("ffhq-1024", "0-7", 0.7)  # the widget's defaults, the model replaced
    assert args["invert"][2] == 2 and args["invert"][1] is not None  # --steps, the example photo
    assert args["text_prepare"] == ("ffhq-1024", ALWAYS["images"], ALWAYS["rank"])
    small = dict(endpoint_calls(api, files, "ffhq-1024", 2, small=True))
    assert small["generate"] == ("ffhq-1024", SMALL["seeds"], 0.7)
    extra = dict(endpoint_calls(api, files, "ffhq-1024", 2, small=True, extra={"psi": 1.0}))
    assert extra["generate"] == ("ffhq-1024", SMALL["seeds"], 1.0)  # extra comes last
    api["named_endpoints"]["/new_tab"] = {"parameters": [param("model"), param("mystery", has=False)]}
    with pytest.raises(ValueError, match="new_tab.*mystery"):
        endpoint_calls(api, files, "toyfaces", 2)


def test_background_jobs_are_followed_only_while_they_compute():
    sys.path.insert(0, str(ROOT))
    try:
        from demos.bench_app import _running
    finally:
        sys.path.remove(str(ROOT))
    assert _running("computing the relevance table of ffhq-1024: 40% (3 of 8 images).")
    assert _running("the InterFaceGAN boundary of 'smile': queued behind another computation.")
    for line in ("the relevance table of ffhq-1024 (2 images, 2 probes each): done in 31 s.",
                 "the relevance table failed: out of memory Start it again to retry.",
                 "The relevance table of toyfaces with CLIP toyfaces is ready: press *Edit with text*.",
                 "toyfaces reads its attributes with its predictor: nothing to fit."):
        assert not _running(line), line


def test_rehearsal_options_default_to_ffhq_1024_two_sessions():
    sys.path.insert(0, str(ROOT))
    try:
        from demos.bench_app import _resolve, build_parser
    finally:
        sys.path.remove(str(ROOT))
    args = build_parser().parse_args(["--world", "rehearsal"])
    _resolve(args)
    assert (args.model, args.repeats, args.steps, args.sessions) == ("ffhq-1024", 1, 2, 2)
    args = build_parser().parse_args([])
    _resolve(args)
    assert (args.model, args.repeats, args.steps, args.sessions) == ("toyfaces", 5, 10, 0)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--world", "mars"])


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
    assert "python -m demos.bench_app --json out.json" in err and "--world rehearsal" in err
    assert "unknown benchmark" not in err


def test_soak_does_every_tabs_default_action_and_parses_its_options(tmp_path):
    sys.path.insert(0, str(ROOT))
    try:
        from demos.bench_app import _inputs
        from demos.bench_soak import _actions, build_parser, summarise, Recorder
    finally:
        sys.path.remove(str(ROOT))
    actions = _actions(_inputs(tmp_path))
    names = {name for name, _, _ in actions}
    from demos.text import GLOBAL  # the soak's text edit uses the tab's own defaults, i.e. the library's preset
    (global_text,) = [args for name, args, _ in actions if name == "text_edit" and args[3] == "global"]
    assert (global_text[4], global_text[7]) == (GLOBAL.alpha, GLOBAL.top_k)
    tabs = {"generate", "style_mix", "invert", "edit_interfacegan", "edit_sefa", "stylespace_edit", "local_transfer",
            "local_crossover", "morph", "analogy", "text_edit"}
    assert tabs <= names
    args = build_parser().parse_args(["--sessions", "3", "--minutes", "0.5", "--json", "x.json"])
    assert (args.sessions, args.minutes, args.state_ttl) == (3, 0.5, 60.0)
    rec = Recorder()
    for i in range(20):
        rec.add("generate", 0.1 * (i + 1), 0.01, None, float(i))
    rec.add("morph", 1.0, 0.5, "ValueError: boom", 40.0)
    series = [(0.0, 500.0), (60.0, 1000.0), (300.0, 1050.0), (400.0, 900.0)]
    out = summarise(rec, series, load_end=350.0)
    assert out["generate_calls"] == 20 and out["generate_p50_s"] == pytest.approx(1.05)
    assert out["generate_p95_s"] == pytest.approx(1.9) and out["errors"] == 1
    assert out["rss_growth_after_warmup"] == pytest.approx(0.05) and out["rss_after_cooldown_mb"] == 900.0
