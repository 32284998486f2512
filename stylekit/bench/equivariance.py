"""Translation equivariance (EQ-T, the StyleGAN3 paper's metric) of one or more generators, side by side.

``python -m stylekit.bench equivariance --models toyfaces[,sg3-name,...] --json out.json``

For each model: ``--n`` codes ``Latent.from_seed`` on report seeds from ``7,000,000 + --report-offset`` (default
7,900,000; no training or tuning looks at EQ-T), ``--shifts`` random integer shifts of up to 1/8 of the image
(seeded by ``--seed``), EQ-T as in :mod:`stylekit.edit.equivariance` (the mean squared error of "translate then
generate" against "generate then translate" over the pixels both define, as PSNR with ``I_max = 2``). StyleGAN2
is translated through its 4x4 constant (band-limited), StyleGAN3 through its Fourier-feature input.

Metrics per model ``<m>`` (its registered name, or the file's stem; ``-`` becomes ``_``): ``<m>_eq_t_db``;
``<m>_eq_t_code_db`` with a 95% bootstrap interval over codes (each code's mean error over the shifts, in dB);
``<m>_seconds``; ``<m>_resolution``; and, for two models, ``diff_eq_t_db`` (second minus first).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

REPORT_OFFSET = 900_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", default="toyfaces", help="comma-separated generators (names or files)")
    parser.add_argument("--n", type=int, default=64, help="codes per model (default 64)")
    parser.add_argument("--shifts", type=int, default=8, help="random integer shifts per code (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shifts")
    parser.add_argument("--report-offset", type=int, default=REPORT_OFFSET,
                        help=f"first report seed = 7,000,000 + this (default {REPORT_OFFSET})")
    parser.add_argument("--psi", type=float, default=1.0)
    parser.add_argument("--noise-mode", default="const", choices=("const", "none"))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--precision", default="fp32", help="synthesis precision (default fp32)")
    parser.add_argument("--threads", type=int, default=None)


def _key(spec: str) -> str:
    name = Path(spec).stem if ("/" in spec or spec.endswith((".pkl", ".pt", ".safetensors"))) else spec
    return name.replace("-", "_").replace(".", "_")


def measure(G, seeds: range, *, shifts: int, seed: int, psi: float, noise_mode: str, batch_size: int,
            precision: str | None) -> dict[str, float]:
    """EQ-T figures of ``G`` over ``seeds`` (see the module docstring), unprefixed."""
    from stylekit.edit.equivariance import eq_t, random_shifts
    from stylekit.latent import Latent

    from .stats import mean_metrics

    moves = random_shifts(G.img_resolution, shifts, seed=seed)
    per_code, mse_sum, start = [], 0.0, time.perf_counter()
    seeds = list(seeds)
    for i in range(0, len(seeds), batch_size):
        ws = Latent.from_seed(G, seeds[i:i + batch_size], psi=psi).ws(G)
        res = eq_t(G, ws, moves, noise_mode=noise_mode, precision=precision)
        per_code.append(res.per_code_db)
        mse_sum += float((4.0 / 10 ** (res.per_code_db / 10)).sum())
    per_code_db = torch.cat(per_code)
    overall = 10.0 * torch.log10(torch.tensor(4.0 / (mse_sum / len(seeds)))).item()
    out = {"eq_t_db": overall, "seconds": time.perf_counter() - start, "resolution": float(G.img_resolution)}
    out.update(mean_metrics("eq_t_code_db", per_code_db.numpy()))
    return out


def run(args) -> dict[str, float]:
    from stylekit import load_generator

    from .stats import report_seeds

    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = report_seeds(args.n, args.report_offset)
    metrics: dict[str, float] = {"report_seed_start": float(seeds.start), "report_seed_count": float(len(seeds)),
                                 "shifts_per_code": float(args.shifts)}
    firsts = []
    for spec in [s.strip() for s in args.models.split(",") if s.strip()]:
        G = load_generator(spec)
        key = _key(spec)
        for name, value in measure(G, seeds, shifts=args.shifts, seed=args.seed, psi=args.psi,
                                   noise_mode=args.noise_mode, batch_size=args.batch_size,
                                   precision=args.precision).items():
            metrics[f"{key}_{name}"] = value
        firsts.append(key)
    if len(firsts) == 2:
        metrics["diff_eq_t_db"] = metrics[f"{firsts[1]}_eq_t_db"] - metrics[f"{firsts[0]}_eq_t_db"]
    return metrics
