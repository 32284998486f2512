"""Generator speed and memory: synthesis images/s and peak RSS, fast vs reference path, on CPU.

Networks are randomly initialised (seeded) at the official sizes, float32:

- ``sg2``: StyleGAN2 config-f (z/w 512, 8 mapping layers, channel_base 32768, channel_max 512,
  'skip', no clamp), at each ``--resolutions`` entry (default 256 and 1024), batches ``--batches``;
  every ``noise_strength`` is set to 0.1 so the noise inputs take part as in a trained model.
- ``sg3t`` / ``sg3r``: StyleGAN3-T / -R at ``--sg3-resolution`` (default 1024; -R with the official
  doubled channel_base/channel_max, 1x1 convolutions and radial filters), batches ``--sg3-batches``
  (default 1: a 1024 StyleGAN3 image needs about 3-4 GB, so batch 8 would not fit in RAM here).
  Skipped, with ``stylegan3_available = 0``, when ``stylekit.networks.stylegan3`` is not importable.

Each (network, resolution, batch, path) runs in a fresh subprocess, so its peak RSS
(``getrusage`` ru_maxrss) is its own: ``*_setup_rss_mb`` is the peak after building the model and
its inputs, ``*_peak_rss_mb`` the peak after synthesis. Times are the best of ``--repeats`` calls
after a warm-up call (or the first call alone when it exceeds the ``--budget``); ``images_per_s``
is wall clock (sensitive to other load on the machine), ``cpu_s_per_image`` the process CPU time
(all threads). Per pair: ``speedup_fast_vs_reference`` (ratio of images/s), ``max_abs_diff`` and
``max_rel_diff`` (over ``max|reference|``) between the two paths' images.

Metric names: ``{net}_{res}_b{batch}_{fast|reference}_{images_per_s|cpu_s_per_image|peak_rss_mb|
setup_rss_mb|timed_runs}``, ``{net}_{res}_b{batch}_{speedup_fast_vs_reference|max_abs_diff|
max_rel_diff}``, ``{...}_failed`` (1 when a subprocess crashed or timed out), and ``threads``,
``quick``, ``stylegan3_available``.
"""

from __future__ import annotations

import argparse
import importlib
import json
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
IMPLS = ("fast", "reference")


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
                        help="short run: StyleGAN2 at 256 (batches 1, 2), StyleGAN3 at 256 batch 1, one repeat")
    parser.add_argument("--resolutions", type=_int_list, default=None, help="StyleGAN2 resolutions (default 256,1024)")
    parser.add_argument("--batches", type=_int_list, default=None, help="StyleGAN2 batch sizes (default 1,8)")
    parser.add_argument("--sg3-resolution", type=int, default=None, help="StyleGAN3 resolution (default 1024)")
    parser.add_argument("--sg3-batches", type=_int_list, default=None, help="StyleGAN3 batch sizes (default 1)")
    parser.add_argument("--no-sg3", action="store_true", help="skip StyleGAN3 even if it is available")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls after the warm-up (default 2; quick 1)")
    parser.add_argument("--budget", type=float, default=60.0,
                        help="seconds per configuration: if the first call is slower than budget/(repeats+1), "
                             "it is the only measurement (default 60)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads in each worker (default: torch's default here)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds before a worker is abandoned")


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


def run(args: argparse.Namespace) -> dict[str, float]:
    import numpy as np
    import torch

    quick = bool(args.quick)
    resolutions = args.resolutions or ([256] if quick else [256, 1024])
    batches = args.batches or ([1, 2] if quick else [1, 8])
    sg3_resolution = args.sg3_resolution or (256 if quick else 1024)
    sg3_batches = args.sg3_batches or [1]
    repeats = args.repeats if args.repeats is not None else (1 if quick else 2)
    threads = args.threads or torch.get_num_threads()
    sg3 = _stylegan3_available()

    metrics: dict[str, float] = {"threads": threads, "quick": int(quick), "stylegan3_available": int(sg3)}
    plan = [("sg2", r, b) for r in resolutions for b in batches]
    if sg3 and not args.no_sg3:
        plan += [(net, sg3_resolution, b) for net in ("sg3t", "sg3r") for b in sg3_batches]
    elif not sg3:
        _log("stylekit.networks.stylegan3.StyleGAN3Generator is not importable: StyleGAN3 skipped")

    with tempfile.TemporaryDirectory(prefix="stylekit-bench-") as tmp:
        for net, res, batch in plan:
            key = f"{net}_{res}_b{batch}"
            results, images = {}, {}
            for impl in IMPLS:
                name = f"{key}_{impl}"
                _log(f"{name} ...")
                spec = dict(name=name, net=net, config=network_config(net, res), batch=batch, impl=impl,
                            threads=threads, repeats=repeats, budget=args.budget, seed=0,
                            result=os.path.join(tmp, name + ".json"), output=os.path.join(tmp, name + ".npy"))
                result = _run_worker(spec, args.timeout)
                if result is None:
                    metrics[f"{name}_failed"] = 1
                    continue
                results[impl] = result
                images[impl] = spec["output"]
                metrics[f"{name}_images_per_s"] = batch / result["wall_s"]
                metrics[f"{name}_cpu_s_per_image"] = result["cpu_s"] / batch
                metrics[f"{name}_peak_rss_mb"] = result["peak_rss_mb"]
                metrics[f"{name}_setup_rss_mb"] = result["setup_rss_mb"]
                metrics[f"{name}_timed_runs"] = result["runs"]
                _log(f"{name}: {batch / result['wall_s']:.3f} images/s, peak {result['peak_rss_mb']:.0f} MB")
            if len(results) == 2:
                metrics[f"{key}_speedup_fast_vs_reference"] = results["reference"]["wall_s"] / results["fast"]["wall_s"]
                fast, ref = np.load(images["fast"]), np.load(images["reference"])
                diff = float(np.abs(fast - ref).max())
                metrics[f"{key}_max_abs_diff"] = diff
                metrics[f"{key}_max_rel_diff"] = diff / max(float(np.abs(ref).max()), 1e-12)
            for path in images.values():
                Path(path).unlink(missing_ok=True)
    return metrics


# ----------------------------------------------------------------------------------------------
# Worker (one configuration, one fresh process)


def _worker(spec: dict) -> None:
    import numpy as np
    import torch

    from . import peak_rss_mb, time_calls

    torch.set_num_threads(int(spec["threads"]))
    module_name, class_name = NETWORKS[spec["net"]]
    cls = getattr(importlib.import_module(module_name), class_name)
    torch.manual_seed(int(spec["seed"]))
    G = cls(spec["config"]).eval().requires_grad_(False)
    with torch.no_grad():
        for pname, param in G.named_parameters():
            if pname.endswith("noise_strength"):
                param.fill_(0.1)
    z = torch.randn([int(spec["batch"]), G.z_dim], generator=torch.Generator().manual_seed(int(spec["seed"]) + 1))
    with torch.no_grad():
        ws = G.mapping(z, None)
    setup_rss = peak_rss_mb()
    out = {}

    def synthesize():
        with torch.no_grad():
            out["img"] = G.synthesis(ws, impl=spec["impl"])

    timing = time_calls(synthesize, repeats=int(spec["repeats"]), budget_s=float(spec["budget"]))
    peak = peak_rss_mb()
    np.save(spec["output"], out["img"].numpy())
    Path(spec["result"]).write_text(json.dumps({**timing, "setup_rss_mb": setup_rss, "peak_rss_mb": peak}))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        _worker(json.loads(sys.argv[2]))
    else:
        print("internal worker entry point; run 'python -m stylekit.bench generator' instead", file=sys.stderr)
        sys.exit(2)
