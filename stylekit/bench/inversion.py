"""Inversion benchmark: quality, speed and memory of every inversion method; writes JSON.

    python -m stylekit.bench inversion [--json out.json] [--generator toyfaces] [--quick]

Measured (keys of the JSON):

- ``self_psnr_optimize_wplus``: mean PSNR (dB) of W+ optimisation on the generator's own samples
  (stored noise), the sanity bar (>= 30 dB).
- ``renders_psnr_<method>`` for ``optimize_w``, ``optimize_wplus``, ``encoder``, ``restyle``,
  ``pti``: mean PSNR on toyfaces renders drawn from report seeds (attributes sampled with seed
  ``report_seed_start``, pixel noise seeded ``report_seed_start + i``; ``report_seed_count`` renders;
  :mod:`stylekit.bench.stats`), with a 95% bootstrap interval over the images (``_lo``, ``_hi``, ``_n``);
  plus ``renders_mse_*``, ``renders_perceptual_*`` (distance under the perceptual extractor named in
  ``perceptual``), ``renders_attr_error_*`` (the held-out judge's, :mod:`stylekit.judge`: mean absolute
  difference of its unit-scale readings of all 15 attributes between target and reconstruction, with an
  interval), ``renders_face_*`` / ``renders_face_ok_*`` (the judge's face score of the reconstructions,
  and the share at or above :data:`stylekit.judge.FACE_THRESHOLD`, Wilson interval),
  ``renders_predictor_attr_error_*`` (the same error read by the attribute predictor, the former figure:
  the encoders were trained with it, so it flatters them) and ``seconds_per_image_*``. The generator's own
  samples for the self PSNR come from report seeds too (``self_seed_start``).
- ``pti_delta_bytes``: mean size of PTI's float16 weight delta.
- ``encoder_images_per_s``: the shipped toyfaces encoder's CPU throughput (batch 32).
- ``ffhq_encoder_cpu_s`` / ``ffhq_encoder_peak_mb``: one 256x256 forward of the official-size e4e
  encoder (random weights, same compute; a warm-up, then the median of ``--repeats``), run in a
  fresh subprocess so the peak resident memory (VmHWM) is its own; ``ffhq_encoder_cpu_s_bf16`` /
  ``ffhq_encoder_peak_mb_bf16`` / ``ffhq_encoder_first_s_bf16`` (the first call, which casts the
  weights) the same in ``precision='bf16'``, ``ffhq_encoder_speedup_bf16`` the ratio.
- ``vit_b32_image_s_fp32_b1`` / ``_b8`` and ``vit_b32_image_s_bf16_b1`` / ``_b8``: seconds per
  :meth:`stylekit.clip_backend.ClipModel.encode_image` call of an open_clip ViT-B-32 with random
  weights (224x224 inputs, a warm-up, then the median of ``--repeats``) at batch 1 and 8, and
  ``vit_b32_speedup_bf16_b1`` / ``_b8``.
- ``bar_*``: 1/0 for each target (self PSNR >= 30 dB; PTI and W+ beat the encoder on renders;
  ReStyle beats one encoder pass; encoder >= 20 images/s), so a regression is visible in the JSON.
- ``perceptual_lpips_vgg`` / ``perceptual_toyfaces`` / ``perceptual_random_cnn``: 1 for the
  perceptual loss that was used (the JSON holds numbers only; the names are printed to stderr).

Step counts default to the library's presets (:mod:`stylekit.invert.presets`: 500 optimisation
steps, PTI 450 pivot + 350 tuning steps, 3 ReStyle iterations), so the numbers are what
``stylekit.invert.invert`` gives without options; ``--quick`` shrinks them for a smoke run;
``--speed-only`` measures only the encoder and ViT timings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from ..invert.presets import OPTIMIZE, PTI, RESTYLE


def _mean(values):
    values = list(values)
    return float(sum(values) / len(values)) if values else float("nan")


#: Report seeds of this benchmark: renders from ``REPORT_SEED_START + RENDERS_OFFSET``, generator samples from
#: ``REPORT_SEED_START + SAMPLES_OFFSET`` (bench editing and bench text use 0 and 100,000 on).
RENDERS_OFFSET, SAMPLES_OFFSET = 200_000, 210_000


def held_out_renders(n: int, size: int, seed: int | None = None) -> torch.Tensor:
    """``n`` toyfaces renders ``[n, 3, size, size]``: attributes sampled with ``seed`` (default: the first report
    seed of this benchmark, which no training run or tuning uses), pixel noise seeded ``seed + i``."""
    import numpy as np

    from ..toyfaces.attributes import sample_attributes
    from ..toyfaces.renderer import render_batch
    from .stats import report_seeds

    seed = report_seeds(1, RENDERS_OFFSET).start if seed is None else int(seed)
    return render_batch(sample_attributes(n, seed=seed), size=size, seeds=np.arange(seed, seed + n)).float()


def generator_samples(G, n: int, seed: int | None = None) -> torch.Tensor:
    """``n`` samples ``[n, 3, R, R]`` of ``G``, one per seed ``seed + i`` (default: this benchmark's report seeds)."""
    from ..latent import Latent
    from .stats import report_seeds

    seed = report_seeds(1, SAMPLES_OFFSET).start if seed is None else int(seed)
    with torch.no_grad():
        return Latent.from_seed(G, list(range(seed, seed + n))).render(G, noise_mode="const")


def _attr_predictor():
    try:
        from ..checkpoints.predictor import load_predictor

        return load_predictor()
    except Exception:  # noqa: BLE001 - the predictor is optional here; the JSON says it was missing
        return None


def _score(results, targets, extractor, predictor, judge=None) -> dict:
    """Flat quality figures of ``results`` (one per target of ``targets [n, 3, R, R]``): ``psnr`` with its
    bootstrap interval (``psnr_lo``, ``psnr_hi``, ``psnr_n``), ``mse``, ``seconds_per_image``; with an extractor
    ``perceptual``; with a predictor ``predictor_attr_error``; with a judge ``attr_error`` (interval), ``face``
    (interval) and ``face_ok`` (Wilson interval)."""
    import numpy as np

    from ..invert.result import psnr
    from .judging import judge_readings
    from .stats import mean_metrics, rate_metrics

    recon = torch.cat([r.image for r in results])
    out = {**mean_metrics("psnr", [psnr(r.image, t[None]) for r, t in zip(results, targets)]),
           "mse": float((recon - targets).square().mean()),
           "seconds_per_image": _mean(r.seconds for r in results)}
    with torch.no_grad():
        if extractor is not None:
            out["perceptual"] = float(extractor.distance(recon, targets).mean())
        if predictor is not None:
            out["predictor_attr_error"] = float((predictor.predict_unit(recon)
                                                 - predictor.predict_unit(targets)).abs().mean())
    if judge is not None:
        (u_recon, face), (u_target, _) = judge_readings(judge, recon), judge_readings(judge, targets)
        out.update(mean_metrics("attr_error", np.abs(u_recon - u_target).mean(axis=1)))
        out.update(mean_metrics("face", face))
        out.update(rate_metrics("face_ok", face >= judge_face_threshold()))
    return out


def judge_face_threshold() -> float:
    """:data:`stylekit.judge.FACE_THRESHOLD`, the face score a reconstruction must reach to count as a face."""
    from ..judge import FACE_THRESHOLD

    return FACE_THRESHOLD


def median_seconds(fn, repeats: int) -> tuple[float, float]:
    """``(first call's seconds, median seconds of the next repeats calls)`` of ``fn()``."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    mid = len(times) // 2
    return first, (times[mid] if len(times) % 2 else 0.5 * (times[mid - 1] + times[mid]))


def ffhq_encoder_measure(precision: str = "fp32", repeats: int = 3) -> dict:
    """Build the official-size e4e encoder (random weights) and time a 256x256 forward in ``precision``:
    a warm-up, then the median of ``repeats`` (run this in a fresh process, so the peak memory is its own).

    Keys: ``ffhq_encoder_cpu_s``, ``ffhq_encoder_first_s``, ``ffhq_encoder_build_s``,
    ``ffhq_encoder_peak_mb``, ``ffhq_encoder_params``; suffixed ``_<precision>`` unless fp32.
    """
    from ..invert.encoder import load_encoder
    from ..networks.encoders import FFHQ_CONFIG, LatentEncoder

    torch.manual_seed(0)
    t0 = time.perf_counter()
    enc = load_encoder(LatentEncoder(FFHQ_CONFIG).eval().requires_grad_(False), precision=precision)
    build_s = time.perf_counter() - t0
    x = torch.rand(1, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        first_s, forward_s = median_seconds(lambda: enc(x), repeats)
    peak_kb = 0
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak_kb = int(line.split()[1])
    except OSError:
        import resource

        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    suffix = "" if precision == "fp32" else f"_{precision}"
    out = {"ffhq_encoder_cpu_s": forward_s, "ffhq_encoder_first_s": first_s, "ffhq_encoder_build_s": build_s,
           "ffhq_encoder_peak_mb": peak_kb / 1024, "ffhq_encoder_params": sum(p.numel() for p in enc.parameters())}
    return {key + suffix: value for key, value in out.items()}


def vit_b32_measure(precision: str, batches=(1, 8), repeats: int = 5) -> dict:
    """Seconds per ``ClipModel.encode_image`` call of an open_clip ViT-B-32 with random weights (no
    download) on ``[batch, 3, 224, 224]`` inputs in ``precision``: ``{vit_b32_image_s_<precision>_b<batch>: s}``."""
    import open_clip

    from ..clip_backend import ClipModel

    torch.manual_seed(0)
    clip = ClipModel(open_clip.create_model("ViT-B-32"), None, name="ViT-B-32", pretrained=None, precision=precision)
    out = {}
    for batch in batches:
        x = torch.rand(batch, 3, 224, 224) * 2 - 1
        with torch.no_grad():
            _, seconds = median_seconds(lambda: clip.encode_image(x), repeats)
        out[f"vit_b32_image_s_{precision}_b{batch}"] = seconds
    return out


def encoder_throughput(enc, size: int, batch: int = 32, repeats: int = 3) -> float:
    x = torch.rand(batch, 3, size, size) * 2 - 1
    with torch.no_grad():
        enc(x)
        t0 = time.perf_counter()
        for _ in range(repeats):
            enc(x)
    return batch * repeats / (time.perf_counter() - t0)


def run(args) -> dict:
    from ..checkpoints.load import load_generator
    from ..invert.losses import build_perceptual
    from ..judge import load_judge
    from .stats import report_seeds

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.speed_only:
        return _speed_only(args)
    G = load_generator(args.generator)
    res = G.img_resolution
    extractor, perceptual_name = build_perceptual(args.perceptual)
    predictor = _attr_predictor()
    judge = load_judge(args.judge)
    if args.quick:
        args.steps, args.pti_steps, args.pivot_steps, args.n_samples, args.n_renders = 20, 10, 20, 2, 2
    report: dict = {"resolution": res, "attribute_predictor": predictor is not None,
                    "threads": torch.get_num_threads(), "steps_optimize": args.steps, "steps_pti": args.pti_steps,
                    "pivot_steps": args.pivot_steps, "restyle_iterations": args.restyle_iterations,
                    "n_samples": args.n_samples, "n_renders": args.n_renders}
    for kind in ("lpips-vgg", "toyfaces", "random-cnn"):
        report["perceptual_" + kind.replace("-", "_")] = int(perceptual_name == kind)
    _log(f"generator {args.generator}, perceptual loss {perceptual_name}, torch {torch.__version__}, "
         f"python {platform.python_version()}, {torch.get_num_threads()} thread(s)")

    report["self_psnr_optimize_wplus"] = _self_psnr(G, args)
    _log(f"self W+ PSNR {report['self_psnr_optimize_wplus']:.2f} dB")
    renders = held_out_renders(args.n_renders, res)
    report.update(report_seed_start=report_seeds(1, RENDERS_OFFSET).start, report_seed_count=args.n_renders,
                  self_seed_start=report_seeds(1, SAMPLES_OFFSET).start)
    methods, enc = _invert_renders(G, renders, args)
    report["pti_delta_bytes"] = _mean(r.generator_delta_bytes for r in methods["pti"])
    report["pti_pivot_psnr"] = _mean(r.extra["pivot_psnr"] for r in methods["pti"])
    for name, results in methods.items():
        report.update(_keys(_score(results, renders, extractor, predictor, judge), name))
        r = {k: report[f"{k}_{name}"]
             for k in ("renders_psnr", "renders_attr_error", "renders_face", "seconds_per_image")}
        _log(f"{name}: PSNR {r['renders_psnr']:.2f} dB [{report[f'renders_psnr_{name}_lo']:.2f}, "
             f"{report[f'renders_psnr_{name}_hi']:.2f}], judge attribute error {r['renders_attr_error']:.3f}, "
             f"face score {r['renders_face']:.3f}, {r['seconds_per_image']:.2f} s/image")
    report.update(_speed_and_memory(enc, res, args))
    report.update(_bars(report))
    return report


def _keys(scores: dict, method: str) -> dict:
    """``_score``'s figures of ``method`` under their JSON names: ``renders_<figure>_<method>[_lo|_hi|_n]``,
    ``seconds_per_image_<method>``."""
    out = {}
    for key, value in scores.items():
        if key == "seconds_per_image":
            out[f"seconds_per_image_{method}"] = value
            continue
        base, _, suffix = key.rpartition("_")
        out[f"renders_{base}_{method}_{suffix}" if suffix in ("lo", "hi", "n") else f"renders_{key}_{method}"] = value
    return out


def _speed_only(args) -> dict:
    """The encoder and ViT timings alone (``--speed-only``)."""
    from ..invert.encoder import load_encoder

    enc = load_encoder(args.encoder)
    return {"threads": torch.get_num_threads(), **_speed_and_memory(enc, enc.config["input_size"], args)}


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _self_psnr(G, args) -> float:
    """Mean PSNR of W+ optimisation on the generator's own samples (it must reconstruct them)."""
    from ..invert import invert

    samples = generator_samples(G, args.n_samples)
    opt_self = [invert(G, s[None], method="optimize", space="w+", steps=args.steps, perceptual=args.perceptual,
                       seed=i) for i, s in enumerate(samples)]
    return _score(opt_self, samples, None, None)["psnr"]


def _invert_renders(G, renders, args) -> tuple[dict[str, list], object]:
    """Every method on the held-out ``renders [n, 3, R, R]``: ``({method: [InversionResult]}, encoder or None)``.

    The encoder methods are left out (and logged) when their encoder cannot be loaded.
    """
    from ..invert import invert
    from ..invert.encoder import load_encoder

    methods: dict[str, list] = {}
    methods["optimize_wplus"] = [invert(G, t[None], space="w+", steps=args.steps, perceptual=args.perceptual, seed=i)
                                 for i, t in enumerate(renders)]
    methods["optimize_w"] = [invert(G, t[None], space="w", steps=args.steps, perceptual=args.perceptual, seed=i)
                             for i, t in enumerate(renders)]
    enc = None
    try:
        enc = load_encoder(args.encoder)
        methods["encoder"] = [invert(G, t[None], method="encoder", encoder=enc) for t in renders]
    except Exception as exc:  # noqa: BLE001 - reported, and the encoder metrics are left out
        _log(f"encoder skipped: {type(exc).__name__}: {exc}")
    try:
        restyle_enc = load_encoder(args.restyle_encoder)
        methods["restyle"] = [invert(G, t[None], method="restyle", encoder=restyle_enc, steps=args.restyle_iterations)
                              for t in renders]
    except Exception as exc:  # noqa: BLE001
        _log(f"restyle skipped: {type(exc).__name__}: {exc}")
    methods["pti"] = [invert(G, t[None], method="pti", steps=args.pti_steps, pivot_steps=args.pivot_steps,
                             perceptual=args.perceptual, seed=i) for i, t in enumerate(renders)]
    return methods, enc


def _speed_and_memory(enc, res: int, args) -> dict:
    """The shipped encoder's throughput and file size; the official-size encoder's time and memory."""
    out: dict = {}
    if enc is not None:
        out["encoder_images_per_s"] = encoder_throughput(enc, res)
        path = _encoder_file(args.encoder)
        if path is not None:
            out["encoder_bytes"] = Path(path).stat().st_size
    if not args.skip_ffhq:
        out.update(_ffhq_encoder_subprocess("fp32", args.repeats))
        out.update(_ffhq_encoder_subprocess("bf16", args.repeats))
        if "ffhq_encoder_cpu_s" in out and "ffhq_encoder_cpu_s_bf16" in out:
            out["ffhq_encoder_speedup_bf16"] = out["ffhq_encoder_cpu_s"] / out["ffhq_encoder_cpu_s_bf16"]
            _log(f"official-size e4e encoder: fp32 {out['ffhq_encoder_cpu_s']:.3f} s, bf16 "
                 f"{out['ffhq_encoder_cpu_s_bf16']:.3f} s ({out['ffhq_encoder_speedup_bf16']:.2f}x)")
    if not args.skip_vit:
        for precision in ("fp32", "bf16"):
            out.update(vit_b32_measure(precision, repeats=args.repeats))
        for batch in (1, 8):
            out[f"vit_b32_speedup_bf16_b{batch}"] = (out[f"vit_b32_image_s_fp32_b{batch}"]
                                                     / out[f"vit_b32_image_s_bf16_b{batch}"])
            _log(f"ViT-B-32 image encoding, batch {batch}: fp32 {out[f'vit_b32_image_s_fp32_b{batch}']:.3f} s, bf16 "
                 f"{out[f'vit_b32_image_s_bf16_b{batch}']:.3f} s ({out[f'vit_b32_speedup_bf16_b{batch}']:.2f}x)")
    return out


def _ffhq_encoder_subprocess(precision: str, repeats: int) -> dict:
    """:func:`ffhq_encoder_measure` in a fresh Python process with this process's thread count ({} on failure)."""
    cmd = [sys.executable, "-c", "import json; from stylekit.bench.inversion import ffhq_encoder_measure as m; "
           f"print(json.dumps(m({precision!r}, {int(repeats)})))"]
    env = dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads()))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode == 0:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    _log(f"official-size encoder measurement ({precision}) failed: " + proc.stderr.strip()[-500:])
    return {}


def _bars(report: dict) -> dict:
    """``bar_<name>``: 1/0 for each target, so a regression is visible in the JSON."""
    bars = {"self_psnr_optimize_wplus>=30": report["self_psnr_optimize_wplus"] >= 30.0}
    if "renders_psnr_encoder" in report:
        bars["pti>encoder"] = report["renders_psnr_pti"] > report["renders_psnr_encoder"]
        bars["optimize_wplus>encoder"] = report["renders_psnr_optimize_wplus"] > report["renders_psnr_encoder"]
        bars["encoder_images_per_s>=20"] = report["encoder_images_per_s"] >= 20.0
    if "renders_psnr_restyle" in report and "renders_psnr_encoder" in report:
        bars["restyle>encoder"] = report["renders_psnr_restyle"] > report["renders_psnr_encoder"]
    for name, ok in bars.items():
        _log(f"bar {name}: {'PASS' if ok else 'FAIL'}")
    return {"bar_" + name.replace(">=", "_ge_").replace(">", "_gt_"): int(ok) for name, ok in bars.items()}


def _encoder_file(spec):
    try:
        from ..invert.encoder import _resolve_encoder_path

        return _resolve_encoder_path(spec)
    except Exception:  # noqa: BLE001
        return None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--generator", default="toyfaces")
    p.add_argument("--encoder", default="e4e-toyfaces")
    p.add_argument("--restyle-encoder", default="restyle-toyfaces")
    p.add_argument("--perceptual", default="auto")
    p.add_argument("--judge", default="toyfaces", help="held-out judge (name or file; default: the shipped one)")
    p.add_argument("--steps", type=int, default=OPTIMIZE.steps, help="optimisation steps (W, W+); default: the preset")
    p.add_argument("--pti-steps", type=int, default=PTI.steps, help="PTI tuning steps; default: the preset")
    p.add_argument("--pivot-steps", type=int, default=PTI.pivot_steps, help="PTI pivot steps; default: the preset")
    p.add_argument("--restyle-iterations", type=int, default=RESTYLE.iterations, help="default: the preset")
    p.add_argument("--n-samples", type=int, default=4)
    p.add_argument("--n-renders", type=int, default=6)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--skip-ffhq", action="store_true", help="skip the official-size encoder measurement (~1.7 GB RAM)")
    p.add_argument("--skip-vit", action="store_true", help="skip the ViT-B-32 image-encoding timing")
    p.add_argument("--repeats", type=int, default=5, help="timed calls after the warm-up (the median is reported)")
    p.add_argument("--speed-only", action="store_true",
                   help="only the speed measurements (shipped encoder, official-size encoder, ViT-B-32)")
    p.add_argument("--quick", action="store_true", help="tiny settings, for a smoke run")


def main(argv=None) -> int:
    """Standalone entry point (``python -m stylekit.bench.inversion``); same as ``python -m stylekit.bench inversion``."""
    from .__main__ import main as dispatch

    return dispatch(["inversion", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
