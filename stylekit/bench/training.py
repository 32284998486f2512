"""Training speed by compute precision: the toyfaces supervised recipe in float32 and bfloat16, eager and compiled.

Each configuration runs ``python -m stylekit.train supervised`` in a fresh process, one after the other
on the same cores (``--threads``), for ``--kimg`` thousand images of the sharpening recipe of the
toyfaces generator's card: from the shipped generator (``--init``), batch 16, lr 0.002, L1 +
multi-scale L1 + 0.3 predictor features + 2 gradient L1 + 2 face-box L1, seed ``--seed``. The
configurations (``--configs``):

- ``fp32``: float32, eager (what training did before issue 21);
- ``bf16``: ``--precision bf16`` (the generator's bfloat16 synthesis, autocast and channels-last for
  the predictor);
- ``fp32-compile`` / ``bf16-compile``: the same with ``--compile`` (the synthesis through
  ``torch.compile``; :mod:`stylekit.train.compiled`).

Metrics per configuration ``c``, read from the run's own log (a line every ``--log-kimg``):

- ``{c}_sec_per_kimg``: the median of the log lines' ``sec/kimg`` after the first (the first carries
  the warm-up, and the compilation where there is one); ``{c}_kimg_per_hour`` = 3600 / that;
- ``{c}_first_interval_s``: the wall seconds of the first log interval (warm-up + compilation);
- ``{c}_loss_at_{k}kimg``: the logged total loss (the mean over the interval) at each log line: the
  curve; ``{c}_loss_end``: the mean of the last three, where the runs are compared "at the same loss";
- ``{c}_speedup_vs_fp32``: ``fp32``'s seconds per kimg over ``c``'s (when ``fp32`` ran);
- ``{c}_failed`` = 1 (and the output's tail on stderr) when a run fails.

Where the time goes (``--profile-steps N``, default 20; 0 skips): each run profiles N steps after its
first three (:mod:`stylekit.train.profiling`; they fall in the first log interval, which the steady
rate leaves out) and the bench reads its ``profile.json``:

- ``{c}_profile_wall_ms``: a profiled step's wall milliseconds (the profiler's overhead included);
- ``{c}_profile_convolutions_ms``, ``{c}_profile_render_targets_ms``, ``{c}_profile_other_ms``: its
  parts (:func:`~stylekit.train.profiling.time_shares`): the convolutions and matrix products, drawing
  the targets, and everything else (elementwise work, losses, copies, the optimiser);
- ``{c}_profile_{part}_speedup_vs_fp32``: ``fp32``'s milliseconds for that part over ``c``'s. The
  whole step's speedup is a weighted mean of the parts', so it can be no larger than the largest.

``cores`` and ``threads`` say what it ran on; ``bf16_units`` whether the CPU has AMX / AVX-512-BF16.
The loss is the training loss on fresh renders each step (the runs draw the same latents: same seed),
not a held-out measure; the generator's fidelity is ``bench toyfaces``'s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = ("fp32", "fp32-compile", "bf16", "bf16-compile")
#: the sharpening recipe's loss weights and schedule (stylekit/toyfaces/weights/generator.md)
RECIPE = ["--resolution", "64", "--batch", "16", "--lr", "0.002", "--percep", "0.3", "--grad", "2", "--face", "2"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        help=f"comma-separated configurations, of {', '.join(CONFIGS)}")
    parser.add_argument("--kimg", type=float, default=20.0, help="length of each run in thousands of images")
    parser.add_argument("--log-kimg", type=float, default=2.0, help="a log line (a point of the curve) every this many kimg")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads of each run")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--init", default=None,
                        help="generator file to start from (default: the shipped toyfaces generator)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds before a run counts as failed")
    parser.add_argument("--profile-steps", type=int, default=20,
                        help="profile this many steps of each run (where the time goes, by part); 0: none")


def parse_log(text: str) -> list[dict[str, float]]:
    """The numeric fields of each ``kimg ...`` line of a supervised run's ``log.txt``, in order
    (:func:`stylekit.train.kimg_loop.parse_log_lines`)."""
    from ..train.kimg_loop import parse_log_lines

    return parse_log_lines(text)


def curve_metrics(config: str, rows: list[dict[str, float]]) -> dict[str, float]:
    """Speed and loss-curve metrics of one configuration from its parsed log lines (see the module doc)."""
    if len(rows) < 2:
        raise ValueError(f"{config}: need at least two log lines to tell the warm-up from the steady rate, got {len(rows)}")
    steady = statistics.median(r["sec/kimg"] for r in rows[1:])
    out = {f"{config}_sec_per_kimg": steady, f"{config}_kimg_per_hour": 3600.0 / steady,
           f"{config}_first_interval_s": rows[0]["sec/kimg"] * rows[0]["kimg"],
           f"{config}_loss_end": statistics.fmean(r["loss"] for r in rows[-3:])}
    for r in rows:
        out[f"{config}_loss_at_{r['kimg']:g}kimg"] = r["loss"]
    return out


def _command(config: str, out: Path, args) -> list[str]:
    from ..train.skeleton import shipped_weights_dir

    init = args.init or str(shipped_weights_dir() / "generator.safetensors")
    precision, _, compiled = config.partition("-")
    cmd = [sys.executable, "-m", "stylekit.train", "supervised", "--out", str(out), *RECIPE, "--init", init,
           "--kimg", f"{args.kimg:g}", "--log-kimg", f"{args.log_kimg:g}", "--snapshot-kimg", f"{args.kimg * 10:g}",
           "--seed", str(args.seed), "--threads", str(args.threads), "--precision", precision,
           "--profile-steps", str(args.profile_steps)]
    return cmd + (["--compile"] if compiled else [])


def profile_metrics(config: str, profile: dict) -> dict[str, float]:
    """``{config}_profile_wall_ms`` and ``{config}_profile_{part}_ms`` of a run's ``profile.json``."""
    out = {f"{config}_profile_wall_ms": profile["wall_ms"]}
    out.update({f"{config}_profile_{part}_ms": ms for part, ms in profile["shares_ms"].items()})
    return out


def run(args) -> dict[str, float]:
    from ..networks.precision import has_bf16_units, host_cpu_flags

    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown or not configs:
        raise SystemExit(f"--configs: unknown {unknown}; choose from {', '.join(CONFIGS)}")
    metrics: dict[str, float] = {"cores": os.cpu_count() or 1, "threads": args.threads, "kimg": args.kimg,
                                 "bf16_units": has_bf16_units(host_cpu_flags())}
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONUNBUFFERED="1")
    with tempfile.TemporaryDirectory(prefix="stylekit-bench-training-") as tmp:
        for config in configs:
            out = Path(tmp) / config
            print(f"[bench training] {config}: {args.kimg:g} kimg", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            try:
                proc = subprocess.run(_command(config, out, args), env=env, capture_output=True, text=True,
                                      timeout=args.timeout)
                ok, text = proc.returncode == 0, (proc.stdout or "") + (proc.stderr or "")
            except subprocess.TimeoutExpired as exc:
                ok, text = False, f"timed out after {args.timeout} s: {exc}"
            log = out / "log.txt"
            rows = parse_log(log.read_text()) if log.is_file() else []
            if not ok or len(rows) < 2:
                metrics[f"{config}_failed"] = 1
                print(f"[bench training] {config} failed:\n{text[-3000:]}", file=sys.stderr, flush=True)
                continue
            metrics.update(curve_metrics(config, rows))
            metrics[f"{config}_wall_s"] = time.perf_counter() - t0
            if (out / "profile.json").is_file():
                metrics.update(profile_metrics(config, json.loads((out / "profile.json").read_text())))
    if "fp32_sec_per_kimg" in metrics:
        for config in configs:
            if f"{config}_sec_per_kimg" in metrics:
                metrics[f"{config}_speedup_vs_fp32"] = metrics["fp32_sec_per_kimg"] / metrics[f"{config}_sec_per_kimg"]
    metrics.update(part_speedups(metrics, configs))
    return metrics


def part_speedups(metrics: dict[str, float], configs) -> dict[str, float]:
    """``{c}_profile_{part}_speedup_vs_fp32``: fp32's profiled milliseconds of each part over ``c``'s."""
    out = {}
    for key in [k for k in metrics if k.startswith("fp32_profile_") and k.endswith("_ms") and k != "fp32_profile_wall_ms"]:
        part = key[len("fp32_profile_"):-len("_ms")]
        for config in configs:
            theirs = metrics.get(f"{config}_profile_{part}_ms")
            if config != "fp32" and theirs:
                out[f"{config}_profile_{part}_speedup_vs_fp32"] = metrics[key] / theirs
    return out
