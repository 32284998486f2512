"""Scaling over processes: one process against several on the same cores, with threads split fairly.

Three workloads, each launched the way a user launches it (``torchrun --standalone
--nproc_per_node P``), in a fresh output folder, on the toyfaces world:

- ``invert``: ``python -m stylekit invert IN OUT --model toyfaces --method encoder`` over
  ``--images`` rendered faces (batched through the encoder, ``--batch-size 8``);
- ``label``: ``python -m stylekit label --model toyfaces --scorer predictor --samples N OUT``
  (InterFaceGAN's sample-and-label step);
- ``train``: ``python -m stylekit.train supervised`` at 32x32, global batch ``--train-batch``, one
  log line per half of ``--train-steps`` (the DDP step time, read from the last ``sec/step``
  field of the run's ``log.txt``: the first line carries the warm-up).

Each runs in three layouts on this machine's ``C`` cores (``os.cpu_count()``, 2 here):

- ``p1t1``: one process, one thread (the per-core rate, the basis of the efficiency);
- ``p1tC``: one process with every core as threads (what a plain run does);
- ``pCt1``: ``C`` processes, one thread each (the same cores, split by process).

Metrics, per workload ``w`` and layout ``l``: ``{w}_{l}_items_per_s`` (items over the job's own wall
seconds, from the manifest; model loading and interpreter start are outside it and reported
separately as ``{w}_{l}_launch_s``, the whole command's wall time) or, for ``train``,
``train_{l}_sec_per_step`` and ``train_{l}_images_per_s``. Per workload: ``{w}_speedup_vs_threads``
(``pCt1`` over ``p1tC``: processes against threads on the same cores) and
``{w}_scaling_efficiency`` (``pCt1`` over ``C`` times ``p1t1``: 1.0 is perfect scaling). A failed
launch gives ``{w}_{l}_failed`` = 1 and its output's tail on stderr. ``cores``, ``images``,
``samples``, ``train_steps``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Report-seed offset of the rendered faces (stats.py's table of offsets).
SEED_OFFSET = 500_000


def add_arguments(parser) -> None:
    parser.add_argument("--images", type=int, default=64, help="faces inverted by the invert workload")
    parser.add_argument("--samples", type=int, default=1024, help="codes labelled by the label workload")
    parser.add_argument("--train-steps", type=int, default=20, help="optimiser steps of the train workload (even)")
    parser.add_argument("--train-batch", type=int, default=16, help="global batch of the train workload")
    parser.add_argument("--workloads", default="invert,label,train", help="comma-separated subset")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds before a launch is given up")


def layouts(cores: int) -> dict[str, tuple[int, int]]:
    """Layout name -> (processes, threads per process) on ``cores`` cores."""
    cores = max(1, int(cores))
    return {"p1t1": (1, 1), f"p1t{cores}": (1, cores), f"p{cores}t1": (cores, 1)}


def _launch(argv: list[str], processes: int, threads: int, timeout: float) -> tuple[bool, float, str]:
    """Run ``torchrun --standalone --nproc_per_node processes -m ARGV`` with ``threads`` per process."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               TORCHELASTIC_ERROR_FILE="", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
           "-m", *argv]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        return False, time.perf_counter() - t0, f"timed out after {timeout} s: {exc}"
    out = (proc.stdout or "") + (proc.stderr or "")
    return proc.returncode == 0, time.perf_counter() - t0, out


def _fail(metrics: dict, key: str, out: str) -> None:
    metrics[f"{key}_failed"] = 1
    print(f"[bench scale] {key} failed:\n{out[-3000:]}", file=sys.stderr)


def _render_faces(folder: Path, n: int) -> None:
    """``n`` toyfaces renders (64 px PNGs, report-seed attributes) in ``folder``."""
    from ..images import tensor_to_pil
    from ..toyfaces.attributes import sample_attributes
    from ..toyfaces.renderer import render_batch
    from .stats import REPORT_SEED_START

    folder.mkdir(parents=True, exist_ok=True)
    images = render_batch(sample_attributes(n, seed=REPORT_SEED_START + SEED_OFFSET), size=64,
                          seeds=range(REPORT_SEED_START + SEED_OFFSET, REPORT_SEED_START + SEED_OFFSET + n))
    pils = tensor_to_pil(images)
    for i, pil in enumerate(pils if isinstance(pils, list) else [pils]):
        pil.save(folder / f"face_{i:04d}.png")


def _invert(work: Path, layout: str, procs: int, threads: int, args, metrics: dict) -> None:
    faces = work / "faces"
    if not faces.is_dir():
        _render_faces(faces, args.images)
    out = work / f"invert_{layout}"
    ok, wall, text = _launch(["stylekit", "invert", str(faces), str(out), "--model", "toyfaces", "--method",
                              "encoder", "--batch-size", "8"], procs, threads, args.timeout)
    key = f"invert_{layout}"
    if not ok:
        return _fail(metrics, key, text)
    manifest = json.loads((out / "manifest.json").read_text())
    metrics[f"{key}_items_per_s"] = manifest["processed"] / max(manifest["seconds"], 1e-9)
    metrics[f"{key}_launch_s"] = wall


def _label(work: Path, layout: str, procs: int, threads: int, args, metrics: dict) -> None:
    out = work / f"label_{layout}.safetensors"
    chunk = max(16, args.samples // 16)
    ok, wall, text = _launch(["stylekit", "label", "--model", "toyfaces", "--scorer", "predictor", "--samples",
                              str(args.samples), "--chunk-size", str(chunk), "--batch-size", "64", str(out)],
                             procs, threads, args.timeout)
    key = f"label_{layout}"
    if not ok:
        return _fail(metrics, key, text)
    manifest = json.loads((out.with_name(out.name + ".parts") / "manifest.json").read_text())
    codes = sum(int(r.get("codes", 0)) for r in manifest["runs"])
    metrics[f"{key}_items_per_s"] = codes / max(manifest["seconds"], 1e-9)
    metrics[f"{key}_launch_s"] = wall


_SEC_PER_STEP = re.compile(r"^kimg .*sec/step\s+([0-9.]+)\s*$")


def last_sec_per_step(log_text: str) -> float | None:
    """The ``sec/step`` field of the last ``kimg`` line of a training log, or None."""
    found = [float(m.group(1)) for line in log_text.splitlines() if (m := _SEC_PER_STEP.match(line.strip()))]
    return found[-1] if found else None


def _train(work: Path, layout: str, procs: int, threads: int, args, metrics: dict) -> None:
    batch = int(args.train_batch)
    steps = max(2, int(args.train_steps) // 2 * 2)
    kimg = steps * batch / 1000.0
    out = work / f"train_{layout}"
    ok, wall, text = _launch(["stylekit.train", "supervised", "--out", str(out), "--batch", str(batch),
                              "--kimg", f"{kimg:.6f}", "--log-kimg", f"{kimg / 2:.6f}",
                              "--snapshot-kimg", f"{kimg * 10:.6f}", "--threads", str(threads),
                              "--resolution", "32", "--percep", "0"], procs, threads, args.timeout)
    key = f"train_{layout}"
    log = out / "log.txt"
    sec = last_sec_per_step(log.read_text()) if ok and log.is_file() else None
    if sec is None:
        return _fail(metrics, key, text)
    metrics[f"{key}_sec_per_step"] = sec
    metrics[f"{key}_images_per_s"] = batch / max(sec, 1e-9)
    metrics[f"{key}_launch_s"] = wall


WORKLOADS = {"invert": _invert, "label": _label, "train": _train}


def run(args) -> dict[str, float]:
    cores = os.cpu_count() or 1
    names = [w.strip() for w in str(args.workloads).split(",") if w.strip()]
    unknown = [w for w in names if w not in WORKLOADS]
    if unknown:
        raise SystemExit(f"unknown workload(s) {unknown}; choose from {sorted(WORKLOADS)}")
    metrics: dict[str, float] = {"cores": cores, "images": args.images, "samples": args.samples,
                                 "train_steps": args.train_steps}
    plan = layouts(cores)
    with tempfile.TemporaryDirectory(prefix="stylekit-bench-scale-") as tmp:
        work = Path(tmp)
        for name in names:
            for layout, (procs, threads) in plan.items():
                WORKLOADS[name](work, layout, procs, threads, args, metrics)
            rate = "images_per_s" if name == "train" else "items_per_s"
            one, threads_all, procs_all = (metrics.get(f"{name}_{lay}_{rate}") for lay in plan)
            if one and threads_all and procs_all:
                metrics[f"{name}_speedup_vs_threads"] = procs_all / threads_all
                metrics[f"{name}_scaling_efficiency"] = procs_all / (cores * one)
    return metrics
