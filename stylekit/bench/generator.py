"""Generator speed on CPU against a fair reference: images/s, peak RSS, GFLOP/s and the fraction of
this machine's convolution peak, measured in one run.

Networks are randomly initialised (seeded) at the official sizes:

- ``sg2``: StyleGAN2 config-f (z/w 512, 8 mapping layers, channel_base 32768, channel_max 512,
  'skip', no clamp) at ``--resolutions`` (default 1024), batches ``--batches`` (default 1 and 8);
  every ``noise_strength`` is 0.1 so the noise inputs take part as in a trained model.
- ``sg3t`` / ``sg3r``: StyleGAN3-T / -R at ``--sg3-resolution`` (default 1024; -R with the official
  doubled channel_base/channel_max, 1x1 convolutions and radial filters), batches ``--sg3-batches``
  (default 1).

Paths, each timed the same way (one warm-up call, then the median of ``--repeats`` calls, default
3) in a fresh subprocess of its own (so ``peak_rss_mb``, getrusage's ru_maxrss, is its own):

- ``nvidia``: NVIDIA's own inference algorithm in plain PyTorch, float32, as its CPU path runs it.
  StyleGAN2 (``networks_stylegan2.py`` at inference, ``fused_modconv=True``): per-sample modulated
  and demodulated weights run as one grouped convolution (groups = batch; an ordinary convolution
  at batch 1); upsampling layers as ``conv2d_resample`` does it: a stride-2 transposed convolution,
  then the FIR through ``upfirdn2d``'s reference (pad + depthwise 4x4 convolution); the skip image by
  ``upsample2d`` (zero insertion + 4x4 FIR); ``bias_act`` and the noise as separate passes;
  contiguous NCHW memory (NVIDIA uses channels-last only for its float16 layers).
  StyleGAN3: stylekit's ``impl='reference'``, which is NVIDIA's reference ops written out
  (grouped modulated convolution, ``filtered_lrelu``'s reference: zero-insertion upsampling,
  full-rate downsampling filter, then decimation).
- ``fp32`` / ``bf16``: stylekit's fast path (``impl='fast'``) in that precision, with freed memory
  kept for reuse as stylekit's loaders arrange it (:mod:`stylekit.networks.cpu_memory`;
  ``--malloc system`` leaves glibc's malloc alone there too). The ``nvidia`` path runs with the
  system's malloc, as NVIDIA's code does (``--reference-malloc keep`` gives it stylekit's setting, to
  see how much of a speed-up is the allocator's); the convolution peak is measured with memory kept
  (the higher peak, so the stricter fraction). ``{...}_{path}_malloc_kept`` says which ran.

Per configuration and path: ``images_per_s`` (wall clock), ``cpu_s_per_image``, ``peak_rss_mb``,
``gflops`` (the network's multiply-adds counted once, x2, with ``torch.utils.flop_counter`` on the
fast float32 path at batch 1 (no multiplication by an inserted zero), divided by the time per
image: the same useful work for every path) and ``fraction_of_peak`` (``gflops`` / the measured convolution peak of the path's dtype).
The peaks are measured first in the same run and thread count: ``conv_peak_{fp32|bf16}_gflops``, a
3x3 convolution of an 8x256x64x64 input with 256 filters, best of contiguous and channels-last.
Per configuration: ``gflop_per_image``, ``speedup_{fp32|bf16}_vs_nvidia``, ``speedup_bf16_vs_fp32``,
``psnr_bf16_vs_fp32_db`` (images in [-1, 1], peak-to-peak 2; ``..._clamped_db`` after clamping to
[-1, 1] as displayed) and ``max_abs_diff_fp32_vs_nvidia``. One extra, profiled call per path gives
``dense_conv_gflops`` (FLOPs over wall time inside the dense, i.e. not depthwise, convolutions),
``dense_conv_fraction_of_peak`` and ``dense_conv_time_share`` (their share of that call): how
fast the convolutions themselves run, told apart from the elementwise and filtering work around them
(the FLOPs counted are the layer's useful ones: the bf16 path's 2x2 phase kernels of the upsampling
layers count 9 of their 16 taps).

Metric names: ``{net}_{res}_b{batch}_{path}_{metric}``, ``{net}_{res}_b{batch}_{metric}``,
``{...}_failed`` (1 when a worker crashed or timed out), ``conv_peak_*``, ``threads``, ``repeats``,
``quick``, ``stylegan3_available``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

NETWORKS = {
    "sg2": ("stylekit.networks.stylegan2", "StyleGAN2Generator"),
    "sg3t": ("stylekit.networks.stylegan3", "StyleGAN3Generator"),
    "sg3r": ("stylekit.networks.stylegan3", "StyleGAN3Generator"),
}
PATHS = ("nvidia", "fp32", "bf16")


def network_config(net: str, resolution: int) -> dict:
    """Official constructor kwargs of the benchmarked networks (random weights)."""
    if net == "sg2":
        return dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=resolution, img_channels=3,
                    mapping_kwargs=dict(num_layers=8), channel_base=32768, channel_max=512, conv_clamp=None,
                    architecture="skip")
    base = dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=resolution, img_channels=3,
                mapping_kwargs=dict(num_layers=2), channel_base=32768, channel_max=512, conv_clamp=256)
    if net == "sg3r":
        base.update(channel_base=65536, channel_max=1024, conv_kernel=1, use_radial_filters=True)
    return base


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="short run: StyleGAN2 at 256 (batches 1, 2), StyleGAN3 at 256 batch 1, 2 repeats")
    parser.add_argument("--resolutions", type=_int_list, default=None, help="StyleGAN2 resolutions (default 1024)")
    parser.add_argument("--batches", type=_int_list, default=None, help="StyleGAN2 batch sizes (default 1,8)")
    parser.add_argument("--sg3-resolution", type=int, default=None, help="StyleGAN3 resolution (default 1024)")
    parser.add_argument("--sg3-batches", type=_int_list, default=None, help="StyleGAN3 batch sizes (default 1)")
    parser.add_argument("--no-sg3", action="store_true", help="skip StyleGAN3 even if it is available")
    parser.add_argument("--paths", default=",".join(PATHS), help=f"paths to time (default {','.join(PATHS)})")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls after the warm-up (default 3; quick 2)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads in each worker (default: torch's default here)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds before a worker is abandoned")
    from ..settings import CPU_MALLOC

    parser.add_argument("--malloc", choices=CPU_MALLOC, default="keep",
                        help="stylekit's paths and the peak: keep freed memory for reuse, as stylekit's loaders do "
                             "(default), or leave glibc's malloc alone")
    parser.add_argument("--reference-malloc", choices=CPU_MALLOC, default="system",
                        help="the nvidia path: glibc's malloc as NVIDIA's code runs it (default), or kept as stylekit "
                             "keeps it")


def _stylegan3_available() -> bool:
    try:
        module = importlib.import_module(NETWORKS["sg3t"][0])
    except ImportError:
        return False
    return hasattr(module, NETWORKS["sg3t"][1])


def _log(message: str) -> None:
    print(f"[bench generator] {message}", file=sys.stderr, flush=True)


def _run_worker(spec: dict, timeout: float) -> dict | None:
    """Run one measurement in a fresh interpreter; None when it failed (the reason is logged)."""
    cmd = [sys.executable, "-m", "stylekit.bench.generator", "--worker", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        _log(f"{spec['name']}: timed out after {timeout:.0f} s")
        return None
    if proc.returncode != 0:
        _log(f"{spec['name']}: worker failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}")
        return None
    try:
        return json.loads(Path(spec["result"]).read_text())
    except (OSError, ValueError) as exc:
        _log(f"{spec['name']}: no result ({exc})")
        return None


def _psnr(a, b) -> float:
    """PSNR (dB) of image arrays in [-1, 1] (peak-to-peak 2); capped at 200 for identical arrays."""
    mse = float(((a.astype("float64") - b.astype("float64")) ** 2).mean())
    return 200.0 if mse == 0 else min(200.0, 10 * math.log10(4.0 / mse))


def _plan(args) -> list[tuple[str, int, int]]:
    quick = bool(args.quick)
    plan = [("sg2", r, b) for r in (args.resolutions or ([256] if quick else [1024]))
            for b in (args.batches or ([1, 2] if quick else [1, 8]))]
    if _stylegan3_available() and not args.no_sg3:
        res = args.sg3_resolution or (256 if quick else 1024)
        plan += [(net, res, b) for net in ("sg3t", "sg3r") for b in (args.sg3_batches or [1])]
    elif not args.no_sg3:
        _log("stylekit.networks.stylegan3.StyleGAN3Generator is not importable: StyleGAN3 skipped")
    return plan


def run(args: argparse.Namespace) -> dict[str, float]:
    import numpy as np
    import torch

    repeats = args.repeats if args.repeats is not None else (2 if args.quick else 3)
    threads = args.threads or torch.get_num_threads()
    paths = [p for p in args.paths.split(",") if p]
    unknown = sorted(set(paths) - set(PATHS))
    if unknown:
        raise SystemExit(f"unknown --paths {unknown}; choose from {PATHS}")
    metrics: dict[str, float] = {"threads": threads, "repeats": repeats, "quick": int(bool(args.quick)),
                                 "stylegan3_available": int(_stylegan3_available())}
    with tempfile.TemporaryDirectory(prefix="stylekit-bench-") as tmp:
        spec = dict(name="conv_peak", kind="peak", threads=threads, repeats=max(repeats, 5), malloc=args.malloc,
                    result=os.path.join(tmp, "peak.json"))
        peak = _run_worker(spec, args.timeout) or {}
        metrics.update({f"conv_peak_{k}": v for k, v in peak.items()})
        for net, res, batch in _plan(args):
            key = f"{net}_{res}_b{batch}"
            spec = dict(name=f"{key}_flops", kind="flops", net=net, config=network_config(net, res), threads=threads,
                        result=os.path.join(tmp, key + "_flops.json"))
            flops = (_run_worker(spec, args.timeout) or {}).get("flops_per_image")
            if flops:
                metrics[f"{key}_gflop_per_image"] = flops / 1e9
            results, images = {}, {}
            for path in paths:
                name = f"{key}_{path}"
                _log(f"{name} ...")
                spec = dict(name=name, kind="time", net=net, config=network_config(net, res), batch=batch, path=path,
                            threads=threads, repeats=repeats, seed=0, result=os.path.join(tmp, name + ".json"),
                            output=os.path.join(tmp, name + ".npy"),
                            malloc=args.reference_malloc if path == "nvidia" else args.malloc)
                result = _run_worker(spec, args.timeout)
                if result is None:
                    metrics[f"{name}_failed"] = 1
                    continue
                results[path], images[path] = result, spec["output"]
                per_image = result["wall_s"] / batch
                metrics[f"{name}_images_per_s"] = 1.0 / per_image
                metrics[f"{name}_cpu_s_per_image"] = result["cpu_s"] / batch
                metrics[f"{name}_peak_rss_mb"] = result["peak_rss_mb"]
                metrics[f"{name}_malloc_kept"] = int(bool(result.get("malloc_kept")))
                if flops:
                    gflops = flops / per_image / 1e9
                    metrics[f"{name}_gflops"] = gflops
                    peak_key = f"conv_peak_{'bf16' if path == 'bf16' else 'fp32'}_gflops"
                    if peak.get(peak_key.removeprefix("conv_peak_")):
                        metrics[f"{name}_fraction_of_peak"] = gflops / metrics[peak_key]
                if result.get("dense_conv_s"):
                    conv_rate = result["dense_conv_flops"] / result["dense_conv_s"] / 1e9
                    metrics[f"{name}_dense_conv_gflops"] = conv_rate
                    metrics[f"{name}_dense_conv_time_share"] = result["dense_conv_s"] / result["profiled_call_s"]
                    peak_rate = peak.get("bf16_gflops" if path == "bf16" else "fp32_gflops")
                    if peak_rate:
                        metrics[f"{name}_dense_conv_fraction_of_peak"] = conv_rate / peak_rate
                _log(f"{name}: {1 / per_image:.3f} images/s, peak {result['peak_rss_mb']:.0f} MB")
            for path in ("fp32", "bf16"):
                if path in results and "nvidia" in results:
                    metrics[f"{key}_speedup_{path}_vs_nvidia"] = results["nvidia"]["wall_s"] / results[path]["wall_s"]
            if "fp32" in results and "bf16" in results:
                metrics[f"{key}_speedup_bf16_vs_fp32"] = results["fp32"]["wall_s"] / results["bf16"]["wall_s"]
            loaded = {p: np.load(f) for p, f in images.items()}
            if "fp32" in loaded and "bf16" in loaded:
                metrics[f"{key}_psnr_bf16_vs_fp32_db"] = _psnr(loaded["bf16"], loaded["fp32"])
                metrics[f"{key}_psnr_bf16_vs_fp32_clamped_db"] = _psnr(np.clip(loaded["bf16"], -1, 1),
                                                                       np.clip(loaded["fp32"], -1, 1))
            if "fp32" in loaded and "nvidia" in loaded:
                metrics[f"{key}_max_abs_diff_fp32_vs_nvidia"] = float(np.abs(loaded["fp32"] - loaded["nvidia"]).max())
            for f in images.values():
                Path(f).unlink(missing_ok=True)
    return metrics


# ----------------------------------------------------------------------------------------------
# Workers (one measurement, one fresh process)


def _median_time(fn, repeats: int) -> dict[str, float]:
    """One warm-up call, then the median wall and CPU seconds of ``repeats`` calls."""
    import time

    fn()
    walls, cpus = [], []
    for _ in range(max(1, repeats)):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    order = sorted(range(len(walls)), key=walls.__getitem__)
    mid = order[len(order) // 2]
    return {"wall_s": walls[mid], "cpu_s": cpus[mid], "runs": float(len(walls))}


def _conv_peak(spec: dict) -> dict[str, float]:
    """The convolution rate this machine reaches: GFLOP/s of a 3x3 conv, 8x256x64x64 -> 256 channels."""
    import torch
    import torch.nn.functional as F

    out = {}
    flops = 2 * 8 * 256 * 256 * 9 * 64 * 64
    for dtype, label in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        best = 0.0
        for layout, memory_format in (("contiguous", torch.contiguous_format), ("channels_last", torch.channels_last)):
            x = torch.randn(8, 256, 64, 64).to(dtype).contiguous(memory_format=memory_format)
            w = torch.randn(256, 256, 3, 3).to(dtype).contiguous(memory_format=memory_format)
            with torch.no_grad():
                t = _median_time(lambda: F.conv2d(x, w, padding=1), int(spec["repeats"]))["wall_s"]
            out[f"{label}_{layout}_gflops"] = flops / t / 1e9
            best = max(best, flops / t / 1e9)
        out[f"{label}_gflops"] = best
    return out


def _count_flops(spec: dict) -> dict[str, float]:
    """FLOPs (2 x multiply-adds) of one image, counted on the fast float32 path (transposed convolutions,
    strided filters: no multiplication by an inserted zero, no output thrown away), the useful work."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    module_name, class_name = NETWORKS[spec["net"]]
    G = getattr(importlib.import_module(module_name), class_name)(spec["config"]).eval().requires_grad_(False)
    with torch.no_grad():
        ws = G.mapping(torch.zeros([1, G.z_dim]), None)
        with FlopCounterMode(display=False) as counter:
            _synthesize(G, ws, "fp32")
    return {"flops_per_image": float(counter.get_total_flops())}


def _synthesize(G, ws, path: str):
    if path == "nvidia":
        if G.arch == "stylegan2":
            return nvidia_stylegan2_synthesis(G.synthesis, ws)
        return G.synthesis(ws, impl="reference")
    return G.synthesis(ws, impl="fast", precision=path)


def _time(spec: dict) -> dict[str, float]:
    import numpy as np
    import torch

    from . import peak_rss_mb

    module_name, class_name = NETWORKS[spec["net"]]
    torch.manual_seed(int(spec["seed"]))
    G = getattr(importlib.import_module(module_name), class_name)(spec["config"]).eval().requires_grad_(False)
    with torch.no_grad():
        for pname, param in G.named_parameters():
            if pname.endswith("noise_strength"):
                param.fill_(0.1)
        z = torch.randn([int(spec["batch"]), G.z_dim], generator=torch.Generator().manual_seed(int(spec["seed"]) + 1))
        ws = G.mapping(z, None)
    out = {}

    def synthesize():
        with torch.no_grad():
            out["img"] = _synthesize(G, ws, spec["path"])

    timing = _median_time(synthesize, int(spec["repeats"]))
    peak = peak_rss_mb()
    np.save(spec["output"], out["img"].float().numpy())
    return {**timing, "peak_rss_mb": peak, **_dense_conv_profile(synthesize)}


def _dense_conv_profile(fn) -> dict[str, float]:
    """One profiled call: FLOPs and wall seconds inside dense (not depthwise) convolutions, and the
    call's total, so the convolutions' own rate can be told from the time spent around them."""
    import time

    import torch

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True,
                                with_flops=True) as prof:
        t0 = time.perf_counter()  # inside: the profiler's own start and stop are not the call's time
        fn()
        total = time.perf_counter() - t0
    flops = seconds = 0.0
    for event in prof.key_averages(group_by_input_shape=True):
        if event.key not in ("aten::conv2d", "aten::conv_transpose2d") or not event.input_shapes:
            continue
        x_shape, w_shape = event.input_shapes[0], event.input_shapes[1]
        # weight [O, I/groups, k, k] (conv2d) or [I, O/groups, k, k] (transposed): 1 = depthwise (FIR filters)
        if len(x_shape) == 4 and len(w_shape) == 4 and w_shape[1] == 1 and x_shape[1] > 1:
            continue
        if event.key == "aten::conv2d":
            # a 2x2 kernel is an upsampling layer's four phases (modconv.upsample_conv2d_phases): 9 of
            # its 16 taps are the layer's, the rest multiply zeros, so count the useful work only
            useful = 9 / 16 if list(w_shape[2:]) == [2, 2] else 1.0
            flops += float(event.flops or 0) * useful
        else:  # the profiler counts no FLOPs for transposed convolutions: 2 * N*H*W*I * (O/groups)*kh*kw
            flops += 2.0 * math.prod(x_shape) * math.prod(w_shape[1:]) * event.count
        seconds += event.cpu_time_total / 1e6
    return {"dense_conv_flops": flops, "dense_conv_s": seconds, "profiled_call_s": total}


def _worker(spec: dict) -> None:
    import torch

    torch.set_num_threads(int(spec["threads"]))
    kept = False
    if spec.get("malloc") == "keep":
        from ..networks.cpu_memory import keep_freed_memory

        kept = keep_freed_memory("cpu")
    result = {"peak": _conv_peak, "flops": _count_flops, "time": _time}[spec["kind"]](spec)
    result["malloc_kept"] = int(kept)
    Path(spec["result"]).write_text(json.dumps(result))


# ----------------------------------------------------------------------------------------------
# NVIDIA's StyleGAN2 inference algorithm in plain PyTorch (the fair reference)


def nvidia_stylegan2_synthesis(synthesis, ws):
    """``networks_stylegan2.SynthesisNetwork.forward`` at inference (float32, ``noise_mode='const'``,
    ``fused_modconv=True``) on a stylekit StyleGAN2 synthesis network's parameters.

    ``ws [N, num_ws, w_dim]`` -> ``[N, img_channels, R, R]``.
    """
    from ..networks import ops

    styles = iter(synthesis.ws_to_styles(ws))
    n = ws.shape[0]
    x = img = None
    for block in synthesis.blocks():
        if block.in_channels == 0:
            x = block.const.unsqueeze(0).repeat([n, 1, 1, 1])
        for _name, layer in block.conv_layers():
            x = _nvidia_layer(x, layer, next(styles))
        if img is not None:
            f = block.resample_filter
            img = ops.upfirdn2d(img, f, up=2, padding=[(f.shape[1] + 1) // 2, (f.shape[1] - 2) // 2,
                                                       (f.shape[0] + 1) // 2, (f.shape[0] - 2) // 2], gain=4)
        if block.num_torgb:
            torgb = block.torgb
            y = _nvidia_modconv(x, torgb.weight, next(styles) * torgb.weight_gain, demodulate=False)
            y = ops.bias_act(y, torgb.bias, clamp=torgb.conv_clamp)
            img = y if img is None else img + y
    return img


def _nvidia_layer(x, layer, style):
    """``SynthesisLayer.forward``: modulated conv (+ resampling), ``x.add_(noise)``, ``bias_act``."""
    from ..networks import ops

    x = _nvidia_modconv(x, layer.weight, style, demodulate=True, up=layer.up, padding=layer.padding,
                        resample_filter=layer.resample_filter)
    if layer.use_noise:
        x = x.add_(layer.noise_const * layer.noise_strength)
    return ops.bias_act(x, layer.bias, act="lrelu", gain=layer.act_gain, clamp=layer.conv_clamp)


def _nvidia_modconv(x, weight, styles, *, demodulate: bool, up: int = 1, padding: int = 0, resample_filter=None):
    """``modulated_conv2d(fused_modconv=True)`` + ``conv2d_resample``: grouped conv with per-sample weights;
    for ``up=2`` a stride-2 transposed convolution, then ``upfirdn2d`` with the filter (gain 4)."""
    import torch.nn.functional as F

    from ..networks import ops

    n = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    w = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt().reshape(n, -1, 1, 1, 1)
    x = x.reshape(1, -1, *x.shape[2:])
    if up == 1:
        x = F.conv2d(x, w.reshape(-1, in_ch, kh, kw), padding=padding, groups=n)
        return x.reshape(n, -1, *x.shape[2:])
    fh, fw = resample_filter.shape
    px0, px1 = padding + (fw + up - 1) // 2 - (kw - 1), padding + (fw - up) // 2 - (kw - up)
    py0, py1 = padding + (fh + up - 1) // 2 - (kh - 1), padding + (fh - up) // 2 - (kh - up)
    pxt, pyt = max(min(-px0, -px1), 0), max(min(-py0, -py1), 0)
    w = w.transpose(1, 2).reshape(n * in_ch, out_ch, kh, kw)  # [groups * in, out, k, k]
    x = F.conv_transpose2d(x, w, stride=up, padding=[pyt, pxt], groups=n)
    x = ops.upfirdn2d(x, resample_filter, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], gain=up * up)
    return x.reshape(n, -1, *x.shape[2:])


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        _worker(json.loads(sys.argv[2]))
    else:
        print("internal worker entry point; run 'python -m stylekit.bench generator' instead", file=sys.stderr)
        sys.exit(2)
