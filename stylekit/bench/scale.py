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
launch gives ``{w}_{l}_failed`` = 1 and its output's tail on stderr; a launch whose job finished and wrote its
results but one of whose ranks then aborted in gloo's teardown (PyTorch's rare 'terminate called without an
active exception' at exit, after ``destroy_process_group``) keeps its measurement and gives
``{w}_{l}_teardown_abort`` = 1. ``cores``, ``images``,
``samples``, ``train_steps``.

With ``--world DIR`` (a rehearsal world, ``python -m stylekit rehearsal DIR``), a fourth workload,
``ffhq``, prices the two big FFHQ jobs per item on this machine (one process, every core): labelling
(``label --model ffhq-1024 --scorer clip:... --clip ViT-B-32``; ``ffhq_label_sec_per_code``) and the
global-directions relevance table (``relevance --model ffhq-1024 --clip ViT-B-32``, lowrank;
``ffhq_relevance_sec_per_image``). It counts the floating-point work of one forward pass (1024x1024
synthesis + ViT-B-32 on its 224x224 input) with ``torch.utils.flop_counter``
(``ffhq_forward_gflop``) and, from the lowrank method's cost of ``1 + 3 rank + holdout`` forward-pass
equivalents per image, the relevance work per image (``ffhq_relevance_gflop_per_image``). From those:
``ffhq_label_500k_cpu_hours`` and ``ffhq_relevance_100_cpu_hours`` (this machine, measured per item,
times the count) and, **on paper**, ``..._gpu_hours_estimate``: the counted work divided by
``--gpu-tflops`` (an assumed sustained rate per GPU, default 100 TFLOP/s: about a third of an A100's
bfloat16 peak), i.e. GPU-hours to split over as many GPUs as the launch has.
"""

from __future__ import annotations

import json
import os
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
    parser.add_argument("--world", default=None, metavar="DIR",
                        help="a rehearsal world (python -m stylekit rehearsal DIR): adds the ffhq per-item costs")
    parser.add_argument("--ffhq-codes", type=int, default=4, help="codes labelled by the ffhq workload")
    parser.add_argument("--ffhq-images", type=int, default=1, help="images of the ffhq relevance measurement")
    parser.add_argument("--gpu-tflops", type=float, default=100.0,
                        help="assumed sustained TFLOP/s of one GPU for the on-paper estimate")


def layouts(cores: int) -> dict[str, tuple[int, int]]:
    """Layout name -> (processes, threads per process) on ``cores`` cores."""
    cores = max(1, int(cores))
    return {"p1t1": (1, 1), f"p1t{cores}": (1, cores), f"p{cores}t1": (cores, 1)}


def _launch(argv: list[str], processes: int, threads: int, timeout: float,
            extra_env: dict | None = None) -> tuple[bool, float, str]:
    """Run ``torchrun --standalone --nproc_per_node processes -m ARGV`` with ``threads`` per process."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               TORCHELASTIC_ERROR_FILE="", PYTHONUNBUFFERED="1", **(extra_env or {}))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
           "-m", *argv]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        return False, time.perf_counter() - t0, f"timed out after {timeout} s: {exc}"
    out = (proc.stdout or "") + (proc.stderr or "")
    return proc.returncode == 0, time.perf_counter() - t0, out


#: what a rank prints when gloo's threads abort it at interpreter exit (after its job is done)
TEARDOWN_ABORT = "terminate called without an active exception"


def _finished(ok: bool, text: str, metrics: dict, key: str, done: bool) -> bool:
    """Whether to measure a launch: it succeeded, or its job is ``done`` (results written) and the only failure is
    a rank's teardown abort, which is then recorded as ``{key}_teardown_abort``."""
    if ok:
        return True
    if done and TEARDOWN_ABORT in text:
        metrics[f"{key}_teardown_abort"] = 1
        print(f"[bench scale] {key}: a rank aborted at exit after the job finished ({TEARDOWN_ABORT!r})",
              file=sys.stderr)
        return True
    return False


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
    if not _finished(ok, text, metrics, key, (out / "manifest.json").is_file()):
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
    if not _finished(ok, text, metrics, key, (out.with_name(out.name + ".parts") / "manifest.json").is_file()):
        return _fail(metrics, key, text)
    manifest = json.loads((out.with_name(out.name + ".parts") / "manifest.json").read_text())
    codes = sum(int(r.get("codes", 0)) for r in manifest["runs"])
    metrics[f"{key}_items_per_s"] = codes / max(manifest["seconds"], 1e-9)
    metrics[f"{key}_launch_s"] = wall


def last_sec_per_step(log_text: str) -> float | None:
    """The ``sec/step`` field of the last ``kimg`` line of a training log, or None."""
    from ..train.kimg_loop import parse_log_lines

    found = [row["sec/step"] for row in parse_log_lines(log_text) if "sec/step" in row]
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
    done = (out / "generator.safetensors").is_file() and log.is_file()
    sec = last_sec_per_step(log.read_text()) if _finished(ok, text, metrics, key, done) and log.is_file() else None
    if sec is None:
        return _fail(metrics, key, text)
    metrics[f"{key}_sec_per_step"] = sec
    metrics[f"{key}_images_per_s"] = batch / max(sec, 1e-9)
    metrics[f"{key}_launch_s"] = wall


WORKLOADS = {"invert": _invert, "label": _label, "train": _train}

#: the ffhq workload's CLIP prompt pair (any pair costs the same)
FFHQ_PROMPTS = "clip:a smiling face|a face"
#: the lowrank relevance method's defaults the per-image work is derived from
RELEVANCE_RANK, RELEVANCE_HOLDOUT = 32, 4


def forward_gflop(model: str = "ffhq-1024", clip: str = "ViT-B-32") -> float:
    """GFLOP of one scoring forward pass: ``model``'s synthesis of one code + ``clip``'s image tower."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from ..checkpoints.load import load_generator
    from ..clip_backend import load_clip

    G = load_generator(model, device="cpu", precision="fp32")
    net = load_clip(clip)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        ws = G.mapping(torch.randn(1, G.z_dim), None)
        img = G.synthesis(ws, noise_mode="const")
        net.encode_image(img)
    return counter.get_total_flops() / 1e9


def _ffhq(work: Path, cores: int, args, metrics: dict) -> None:
    from ..rehearsal import check_world, world_env

    world = Path(args.world)
    problems = check_world(world, parts=["ffhq-1024", "clip-vit-b-32"])
    if problems:
        raise SystemExit(f"the rehearsal world {world} lacks {sorted(problems)}; run python -m stylekit rehearsal {world}")
    env = {k: str(v) for k, v in world_env(world).items()}
    out = work / "ffhq_labels.safetensors"
    codes = int(args.ffhq_codes)
    ok, wall, text = _launch(["stylekit", "label", "--model", "ffhq-1024", "--scorer", FFHQ_PROMPTS, "--clip",
                              "ViT-B-32", "--samples", str(codes), "--chunk-size", str(codes), "--batch-size", "1",
                              str(out)], 1, cores, args.timeout, env)
    if not ok:
        return _fail(metrics, "ffhq_label", text)
    manifest = json.loads((out.with_name(out.name + ".parts") / "manifest.json").read_text())
    metrics["ffhq_label_sec_per_code"] = manifest["seconds"] / codes
    images = int(args.ffhq_images)
    ok, wall, text = _launch(["stylekit", "relevance", "--model", "ffhq-1024", "--clip", "ViT-B-32", "--method",
                              "lowrank", "--rank", str(RELEVANCE_RANK), "--n-images", str(images), "--batch-size",
                              "1", "--out", str(work / "ffhq_relevance.safetensors")], 1, cores, args.timeout, env)
    if not ok:
        return _fail(metrics, "ffhq_relevance", text)
    metrics["ffhq_relevance_sec_per_image"] = wall / images  # launch wall time: loading included (an upper bound)
    # counted in a fresh process: huggingface_hub reads its cache location once, at import
    proc = subprocess.run([sys.executable, "-c", "from stylekit.bench.scale import forward_gflop; print(forward_gflop())"],
                          env=dict(os.environ, **env), capture_output=True, text=True, timeout=args.timeout)
    if proc.returncode != 0:
        return _fail(metrics, "ffhq_flops", proc.stdout + proc.stderr)
    gflop = float(proc.stdout.strip().splitlines()[-1])
    per_image = (1 + 3 * RELEVANCE_RANK + RELEVANCE_HOLDOUT) * gflop
    metrics.update(ffhq_forward_gflop=gflop, ffhq_relevance_gflop_per_image=per_image,
                   ffhq_label_500k_cpu_hours=500_000 * metrics["ffhq_label_sec_per_code"] / 3600,
                   ffhq_relevance_100_cpu_hours=100 * metrics["ffhq_relevance_sec_per_image"] / 3600,
                   ffhq_label_500k_gpu_hours_estimate=500_000 * gflop / (args.gpu_tflops * 1e3) / 3600,
                   ffhq_relevance_100_gpu_hours_estimate=100 * per_image / (args.gpu_tflops * 1e3) / 3600,
                   gpu_tflops_assumed=args.gpu_tflops)


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
        if args.world:
            _ffhq(work, cores, args, metrics)
    return metrics
