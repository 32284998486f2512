"""The toyfaces world's acceptance numbers: generator quality, attribute coverage, helper networks.

- ``fd_samples`` / ``fd_floor`` / ``fd_ratio``: Fréchet distance in the attribute predictor's
  feature space between ``--n`` renders and ``--n`` generator samples, next to the same distance
  between two independent sets of renders (the floor a perfect generator would reach at this
  sample size). The bar is ``fd_ratio <= 3``.
- Coverage, on ``--n`` generator samples judged by the predictor: for each continuous attribute
  ``coverage_<name>_span``, the width of the 1st-99th percentile range of the predicted values
  as a fraction of the same width measured on renders (1 = the samples span what the renderer
  spans; near 0 = collapsed); for each binary attribute ``coverage_<name>_rate``, the fraction
  of samples predicted positive, next to ``prior_<name>_rate``, the renderer's prior.
  ``coverage_min_span`` is the smallest span.
- ``predictor_min_binary_acc`` / ``predictor_min_r2``: the predictor on 2,000 fresh clean renders.
- ``clip_min_zeroshot_acc``: the toyfaces CLIP's held-out zero-shot accuracy, the worst binary
  attribute, ``--clip-per-class`` faces per class, with class prompts as in CLIP's zero-shot
  protocol ("a face with glasses" vs "a face without glasses"; red hair vs the set of the other
  hair colours, :data:`stylekit.toyfaces.clip_model.NEGATED_PROMPTS`); ``clip_min_vs_neutral_acc`` is the
  harder test of the attribute prompt against the neutral "a face" (the pair text-guided edits
  use), where an attribute that faces have by default (open eyes) cannot be told apart.
- ``shipped_weights_mb``: every ``*.safetensors`` file shipped in ``stylekit/toyfaces/weights``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="toyfaces", help="generator (default: the shipped toyfaces)")
    parser.add_argument("--n", type=int, default=1000, help="images per set for FD and coverage (default 1000)")
    parser.add_argument("--clip-per-class", type=int, default=200, help="held-out faces per class for CLIP")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--no-clip", action="store_true", help="skip the CLIP accuracy")


def shipped_weights_mb() -> float:
    """Total size of the safetensors files in ``stylekit/toyfaces/weights``, in MB (10^6 bytes)."""
    folder = Path(__file__).resolve().parents[1] / "toyfaces" / "weights"
    return sum(p.stat().st_size for p in folder.glob("*.safetensors")) / 1e6


def _span(values: np.ndarray) -> float:
    lo, hi = np.percentile(values, [1.0, 99.0])
    return float(hi - lo)


def coverage(sample_attrs: dict[str, np.ndarray], render_attrs: dict[str, np.ndarray]) -> dict[str, float]:
    """Coverage metrics from predicted attributes (dict name -> ``[N]``) of samples and renders."""
    from ..toyfaces.attributes import ATTRIBUTES, attribute_priors

    priors = attribute_priors()
    out: dict[str, float] = {}
    spans = []
    for spec in ATTRIBUTES:
        s = np.asarray(sample_attrs[spec.name], dtype=np.float64)
        if spec.kind == "binary":
            out[f"coverage_{spec.name}_rate"] = float((s >= 0.5).mean())
            out[f"prior_{spec.name}_rate"] = float(priors[spec.name])
        else:
            span = _span(s) / max(_span(np.asarray(render_attrs[spec.name], dtype=np.float64)), 1e-12)
            out[f"coverage_{spec.name}_span"] = span
            spans.append(span)
    out["coverage_min_span"] = float(min(spans))
    return out


@torch.no_grad()
def _predict(predictor, images: torch.Tensor, batch: int = 250) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {}
    for i in range(0, len(images), batch):
        for name, value in predictor.predict(images[i:i + batch]).items():
            parts.setdefault(name, []).append(value.cpu().numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def run(args) -> dict[str, float]:
    from ..checkpoints.load import load_generator
    from ..checkpoints.predictor import load_predictor
    from ..train.predictor import evaluate
    from ..train.metrics import fd_between, generator_samples, toyfaces_renders

    if args.threads:
        torch.set_num_threads(args.threads)
    metrics: dict[str, float] = {}
    G = load_generator(args.model)
    predictor = load_predictor()
    t0 = time.perf_counter()
    res = G.img_resolution
    renders_a = toyfaces_renders(args.n, resolution=res, seed=args.seed)
    renders_b = toyfaces_renders(args.n, resolution=res, seed=args.seed + 1)
    samples = generator_samples(G, args.n, seed=args.seed + 2)
    metrics.update(fd_between(renders_a, renders_b, samples, predictor=predictor))
    metrics["fd_ratio"] = metrics["fd_samples"] / max(metrics["fd_floor"], 1e-12)
    metrics["n"] = args.n
    metrics.update(coverage(_predict(predictor, samples), _predict(predictor, renders_a)))
    metrics["fd_and_coverage_seconds"] = time.perf_counter() - t0

    held_out = evaluate(predictor, samples=2000)
    metrics["predictor_min_binary_acc"] = min(held_out["accuracy"].values())
    metrics["predictor_min_r2"] = min(held_out["r2"].values())

    if not args.no_clip:
        from ..clip_backend import load_clip
        from ..toyfaces.clip_model import zero_shot_accuracy

        clip = load_clip("toyfaces")
        accs = zero_shot_accuracy(clip, per_class=args.clip_per_class, prompts="negated")
        for name, acc in accs.items():
            metrics[f"clip_zeroshot_{name}"] = acc
        metrics["clip_min_zeroshot_acc"] = min(accs.values())
        neutral = zero_shot_accuracy(clip, per_class=args.clip_per_class, prompts="neutral")
        for name, acc in neutral.items():
            metrics[f"clip_vs_neutral_{name}"] = acc
        metrics["clip_min_vs_neutral_acc"] = min(neutral.values())
    metrics["shipped_weights_mb"] = shipped_weights_mb()
    return metrics
