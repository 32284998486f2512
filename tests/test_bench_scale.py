"""bench scale: the layouts it compares, the training log it reads, and one real launch of each kind."""

from __future__ import annotations

import json

import pytest

from stylekit.bench import BENCHMARKS, scale
from stylekit.bench.__main__ import build_parser


def test_layouts_split_the_same_cores_three_ways():
    assert scale.layouts(2) == {"p1t1": (1, 1), "p1t2": (1, 2), "p2t1": (2, 1)}
    assert scale.layouts(0) == {"p1t1": (1, 1)}  # a machine reporting no cores still gets one honest layout
    assert BENCHMARKS["scale"] == "stylekit.bench.scale"


def test_the_step_time_is_the_last_kimg_line_of_the_log():
    log = ("run started\n"
           "kimg 0.016  step 1  loss 0.5  sec/kimg   12.0  sec/step 0.9000\n"
           "kimg 0.032  step 2  loss 0.4  sec/kimg    6.0  sec/step 0.2500\n"
           "saved checkpoint\n")
    assert scale.last_sec_per_step(log) == pytest.approx(0.25)
    assert scale.last_sec_per_step("no kimg lines here\n") is None


def test_a_teardown_abort_after_the_job_is_recorded_not_failed():
    """gloo sometimes aborts a rank at interpreter exit after destroy_process_group: the job's results stand and
    the abort is its own metric; any other failure, or that abort before the results exist, is a failure."""
    abort = "done at kimg 0.01\n" + scale.TEARDOWN_ABORT + "\nfailed (exitcode: -6) local_rank: 1"
    metrics = {}
    assert scale._finished(False, abort, metrics, "train_p2t1", done=True)
    assert metrics == {"train_p2t1_teardown_abort": 1}
    assert not scale._finished(False, abort, {}, "train_p2t1", done=False)
    assert not scale._finished(False, "RuntimeError: out of memory", {}, "train_p2t1", done=True)
    metrics = {}
    assert scale._finished(True, "", metrics, "train_p2t1", done=True) and metrics == {}


def test_a_tiny_run_measures_every_workload_in_every_layout(tmp_path, monkeypatch):
    """Real torchrun launches (2 cores: p1t1, p1t2, p2t1) of label, invert and train at toy sizes."""
    monkeypatch.setattr(scale.os, "cpu_count", lambda: 2)
    args = build_parser("scale").parse_args(["--images", "4", "--samples", "32", "--train-steps", "2",
                                              "--train-batch", "4"])
    metrics = scale.run(args)
    assert not [k for k in metrics if k.endswith("_failed")], json.dumps(metrics, indent=1)
    for workload, rate in (("invert", "items_per_s"), ("label", "items_per_s"), ("train", "images_per_s")):
        for layout in ("p1t1", "p1t2", "p2t1"):
            assert metrics[f"{workload}_{layout}_{rate}"] > 0
        assert metrics[f"{workload}_scaling_efficiency"] > 0
