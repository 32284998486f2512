"""Text-guided editing on toyfaces with its CLIP: StyleCLIP's three methods, judged by the held-out judge.

Prompts (``PROMPTS``): "smiling", "with glasses", "with a beard", "with long hair", "red hair", each
turned into a target sentence ("a face with glasses") and the neutral "a face", and tied to the
toyfaces attribute it names. For every prompt, ``--n-test`` **report codes** that do *not* show the
attribute are edited: prompt ``i`` draws a pool of ``max(4 n_test, 200)`` report seeds
(:func:`stylekit.bench.stats.report_seeds`, from ``--report-offset`` on, one pool after the other; the
whole range is in ``report_seed_start`` / ``report_seed_count``) and keeps the first codes the held-out
judge (:mod:`stylekit.judge`) reads without the attribute (probability <= 0.5; smile <= 0.15, the
captions' "smiling" threshold; hair length <= 0.7, the captions' "long"). The judge then applies the
edit success rule of ``bench editing`` (:mod:`stylekit.bench.judging`; a continuous target must move
at least ``rule_target_shift`` of its range *and* end past the threshold):

- ``<method>_success_<prompt>`` (and its parts ``_crossed_``, ``_face_ok_``, ``_kept_``): rates with 95%
  Wilson intervals (``_lo``, ``_hi``, ``_n``);
- ``<method>_leakage_<prompt>``: mean absolute unit-scale change of the 14 other attributes, and
  ``<method>_face_<prompt>`` the edited face score (bootstrap intervals); ``<method>_min_success`` /
  ``<method>_mean_success`` / ``<method>_mean_leakage`` summarise.
- ``predictor_<method>_success_<prompt>`` / ``predictor_<method>_leakage_<prompt>`` (and ``_min_success``,
  ``_mean_leakage``): the former figures, for comparison: the attribute predictor's reading past the
  threshold, and the mean change of the other binary probabilities, on the same edited codes.

Methods: ``global`` (global directions, one relevance table for all prompts: whitened relevance
``--whiten``, the ``--top-k`` most relevant channels above ``--beta``, strength ``--alpha``; see
:func:`stylekit.text.global_direction`), ``global_plain`` (the same table with StyleCLIP's plain
rule, every channel with ``|Δi_c · Δt| >= --plain-beta`` at ``--plain-alpha``, for comparison),
``optimize`` (latent optimisation, ``--opt-steps``, on the first ``--n-opt`` test codes; its text
loss StyleCLIP's ``1 - cos`` plus, unless ``--opt-plain``, 0.3 times the loss of CLIP's zero-shot
choice between the target and the neutral text (:func:`stylekit.text.optimize_latent`), both averaged
over ``--opt-augment`` jittered copies; the codes batched in one run per prompt),
``mapper`` (one mapper trained per prompt for ``--mapper-steps``, then applied). Every setting
defaults to the library's ``"toyfaces"`` preset (:mod:`stylekit.text.presets`; ``global_plain``: the
``"toyfaces-plain"`` one), so the benchmark measures what a user gets by default; the flags override
single fields.

Relevance preprocessing (all S channels):

- ``relevance_toyfaces_s``: the default (``'lowrank'``, ``--rank`` probes) computation of the whole
  table the edits use, ``--n-images`` codes (``relevance_n_images``); ``relevance_captured_energy``
  its held-out probe check.
- The methods are compared at ``--compare-images`` codes (``relevance_compare_n_images``; every
  method's time is linear in it): ``relevance_lowrank_s`` is the lowrank table at that size, and
  the one-channel-at-a-time reference (as StyleCLIP) runs on ``--reference-channels`` channels drawn at
  random from all layers, with the same codes and statistics; its time per channel is exact
  (every channel costs the same ``2 * n_images`` renders), so ``relevance_reference_s`` is that time
  times the number of channels; ``relevance_speedup`` = reference / lowrank;
  ``relevance_mean_cosine`` / ``relevance_min_cosine``: agreement of the lowrank vectors with the
  reference on those channels; the exact Jacobian (``'jacobian'``, the whole table:
  ``relevance_jacobian_s``, ``relevance_jacobian_speedup``, ``relevance_jacobian_mean_cosine``) and
  the vectorised finite differences (``'difference'``, on the sampled channels:
  ``relevance_difference_speedup``, ``relevance_difference_max_error``) are measured beside it.
- ``relevance_ffhq_estimate_s``: a random-weight FFHQ-1024 config-f StyleGAN2 (9088 S channels) with a
  random-weight open_clip ViT-B-32 (224 px, D = 512): one forward pass with graph, one probe render
  + embedding and ``--ffhq-dims`` vector-Jacobian products are timed and extrapolated to the lowrank
  method's ``rank`` probes and products per code and ``--ffhq-images`` codes (StyleCLIP: 100);
  ``relevance_ffhq_jacobian_estimate_s`` the same with all 512 products (the exact Jacobian);
  ``relevance_ffhq_reference_estimate_s`` extrapolates one timed ``2``-image render + embedding per
  (channel, code) for the reference. ``ffhq_clip_224_s``: the CLIP forward at 224 px per image.
  Whether 32 probes capture a ViT-B-32 Jacobian of real weights as well as the toyfaces CLIP's
  cannot be checked offline (``meta['captured_energy']`` of a real run says).

Times: ``global_edit_s`` (text pair -> S edit -> rendered image, one code, table in memory),
``global_edit_with_load_s`` (the same including reading the relevance file), ``optimize_s_per_image``,
``mapper_train_s`` (mean per prompt), ``mapper_edit_s``.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from stylekit.bench.judging import (DEFAULT_RULE, judge_readings, outcome_metrics, outcomes_from_readings,
                                    summary_metrics)
from stylekit.text.presets import GLOBAL_DIRECTIONS, MAPPER, OPTIMIZE
from stylekit.toyfaces.attributes import attribute_spec
from stylekit.toyfaces.captions import CALM_SMILE

#: prompt -> (toyfaces attribute, target text, neutral text)
PROMPTS: dict[str, tuple[str, str, str]] = {
    "smiling": ("smile", "a smiling face", "a face"),
    "with glasses": ("glasses", "a face with glasses", "a face"),
    "with a beard": ("beard", "a face with a beard", "a face"),
    "with long hair": ("hair_length", "a face with long hair", "a face"),
    "red hair": ("red_hair", "a face with red hair", "a face"),
}
#: attribute -> value above which the attribute counts as shown (attribute units)
THRESHOLDS = {"smile": CALM_SMILE, "hair_length": 0.7}
#: Report seeds of this benchmark start at ``REPORT_SEED_START + REPORT_OFFSET`` (bench editing uses 0 on).
REPORT_OFFSET = 100_000

#: the library's presets the benchmark measures (what a user gets by default) and the plain-rule comparison
GLOBAL, PLAIN = GLOBAL_DIRECTIONS["toyfaces"], GLOBAL_DIRECTIONS["toyfaces-plain"]
OPTIMISE, MAPPING = OPTIMIZE["toyfaces"], MAPPER["toyfaces"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="toyfaces", help="generator (default: the shipped toyfaces)")
    parser.add_argument("--clip", default="toyfaces", help="CLIP name (default: the shipped toyfaces CLIP)")
    parser.add_argument("--clip-weights", default=None, help="other weights for the toyfaces CLIP (a path)")
    parser.add_argument("--n-test", type=int, default=50, help="codes edited per prompt and method (default 50)")
    parser.add_argument("--n-opt", type=int, default=32, help="codes for latent optimisation per prompt (default 32)")
    parser.add_argument("--n-images", type=int, default=128,
                        help="codes for the relevance table the edits use (default 128)")
    parser.add_argument("--compare-images", type=int, default=32,
                        help="codes for the timed comparison of the relevance methods (default 32)")
    parser.add_argument("--reference-channels", type=int, default=64, help="channels the reference computes")
    parser.add_argument("--rank", type=int, default=32, help="probes per code of the lowrank relevance method")
    parser.add_argument("--alpha", type=float, default=GLOBAL.alpha,
                        help=f"global direction strength (default {GLOBAL.alpha:g}, the toyfaces preset's)")
    parser.add_argument("--beta", type=float, default=GLOBAL.beta,
                        help=f"global direction threshold (default {GLOBAL.beta:g})")
    parser.add_argument("--top-k", type=int, default=GLOBAL.top_k or 0,
                        help=f"global direction channels (default {GLOBAL.top_k or 0}; 0: all)")
    parser.add_argument("--whiten", type=float, default=GLOBAL.whiten or 0.0,
                        help=f"global direction whitening shrinkage (default {GLOBAL.whiten or 0:g}; 0: StyleCLIP's "
                             "plain cosine)")
    parser.add_argument("--plain-alpha", type=float, default=PLAIN.alpha,
                        help="StyleCLIP's plain rule, for comparison (default: the toyfaces-plain preset)")
    parser.add_argument("--plain-beta", type=float, default=PLAIN.beta, help="StyleCLIP's plain rule, for comparison")
    parser.add_argument("--opt-steps", type=int, default=OPTIMISE.steps,
                        help=f"latent optimisation steps (default {OPTIMISE.steps})")
    parser.add_argument("--opt-l2", type=float, default=OPTIMISE.l2_weight, help="latent optimisation L2 weight")
    parser.add_argument("--opt-plain", action="store_true",
                        help="latent optimisation with StyleCLIP's 1 - cos(image, prompt) loss alone (no "
                             "contrast with the neutral text)")
    parser.add_argument("--opt-augment", type=int, default=OPTIMISE.augmentations,
                        help=f"jittered copies per image in the latent optimisation's CLIP term (default "
                             f"{OPTIMISE.augmentations}; 0: none)")
    parser.add_argument("--mapper-steps", type=int, default=MAPPING.steps,
                        help=f"mapper training steps (default {MAPPING.steps})")
    parser.add_argument("--prompts", default=None, help="comma-separated subset of the prompts")
    parser.add_argument("--no-ffhq", action="store_true", help="skip the FFHQ-1024 estimate")
    parser.add_argument("--no-mapper", action="store_true", help="skip the latent mapper")
    parser.add_argument("--no-optimize", action="store_true", help="skip latent optimisation")
    parser.add_argument("--ffhq-dims", type=int, default=4, help="CLIP dimensions timed for the FFHQ estimate")
    parser.add_argument("--ffhq-images", type=int, default=100, help="codes assumed for the FFHQ estimate")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--judge", default="toyfaces", help="held-out judge (name or file; default: the shipped one)")
    parser.add_argument("--report-offset", type=int, default=REPORT_OFFSET,
                        help=f"first report seed = 7,000,000 + this (default {REPORT_OFFSET:,})")
    parser.add_argument("--psi", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0, help="seed of the relevance codes, mappers and optimisation")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")


def _log(msg: str) -> None:
    print(f"[bench text] {msg}", file=sys.stderr, flush=True)


def _present(pred: dict, attr: str) -> torch.Tensor:
    """``[N]`` bool: the attribute shows in ``pred`` (name -> ``[N]`` in attribute units)."""
    return pred[attr] > THRESHOLDS.get(attr, 0.5)


def unit_threshold(attr: str) -> float:
    """The threshold of :func:`_present` on the unit scale the judge's ``read_unit`` uses."""
    return float(attribute_spec(attr).to_unit(THRESHOLDS.get(attr, 0.5)))


class _Reading:
    """Readings of ``N`` edited or unedited codes: the judge's ``unit [N, A]`` and ``face [N]`` (numpy), and the
    predictor's ``predicted`` (name -> ``[N]`` in attribute units)."""

    def __init__(self, unit, face, predicted):
        self.unit, self.face, self.predicted = unit, face, predicted

    def select(self, index) -> "_Reading":
        return _Reading(self.unit[index], self.face[index], {k: v[index] for k, v in self.predicted.items()})


class _Judge:
    """Renders latents in batches and reads them with the held-out judge and with the predictor."""

    def __init__(self, G, judge, predictor, binary, batch_size=50):
        self.G, self.judge, self.predictor, self.binary = G, judge, predictor, list(binary)
        self.batch_size = batch_size

    @torch.no_grad()
    def __call__(self, latent) -> _Reading:
        units, faces, pred = [], [], {}
        for i in range(0, latent.batch_size, self.batch_size):
            img = latent.select(slice(i, i + self.batch_size)).render(self.G)
            unit, face = judge_readings(self.judge, img)
            units.append(unit)
            faces.append(face)
            for k, v in self.predictor.predict(img).items():
                pred.setdefault(k, []).append(v.float().cpu())
        return _Reading(np.concatenate(units), np.concatenate(faces), {k: torch.cat(v) for k, v in pred.items()})


def _scores(p0, p1, attr, binary):
    """The predictor's former figures: ``(success, leakage)`` from its readings before/after (name -> ``[N]``)."""
    success = _present(p1, attr).float().mean().item()
    others = [b for b in binary if b != attr]
    leakage = sum((p1[b] - p0[b]).abs().mean().item() for b in others) / max(len(others), 1)
    return success, leakage


def _judged(judge: _Judge, before: _Reading, after: _Reading, attr: str):
    """``(the judge's outcomes, the predictor's (success, leakage))`` of an edit toward ``attr``."""
    threshold = unit_threshold(attr) if attribute_spec(attr).kind == "continuous" else None
    outcomes = outcomes_from_readings((before.unit, before.face), (after.unit, after.face), attr, 1.0, DEFAULT_RULE,
                                      names=list(judge.judge.attribute_names), target_threshold=threshold)
    return outcomes, _scores(before.predicted, after.predicted, attr, judge.binary)


def _pool_size(n: int) -> int:
    return max(4 * n, 200)


def _test_codes(G, judge: _Judge, attr, n, *, seeds, psi):
    """``n`` report codes (W) without the attribute, as the judge reads them, from the report seeds ``seeds``,
    and their readings."""
    from stylekit.latent import Latent

    pool = Latent.from_seed(G, list(seeds), psi=psi)
    reading = judge(pool)
    j = list(judge.judge.attribute_names).index(attr)
    idx = np.flatnonzero(reading.unit[:, j] <= unit_threshold(attr))[:n].tolist()
    if len(idx) < n:
        _log(f"only {len(idx)} of {pool.batch_size} codes lack {attr}; using those")
    return pool.select(idx), reading.select(idx)


def _summarise(metrics, method, results):
    """``results``: prompt -> (judge outcomes, predictor (success, leakage))."""
    for prompt, (outcomes, (success, leakage)) in results.items():
        key = prompt.replace(" ", "_")
        metrics.update(outcome_metrics(outcomes, method, key))
        metrics[f"predictor_{method}_success_{key}"] = success
        metrics[f"predictor_{method}_leakage_{key}"] = leakage
    metrics.update(summary_metrics({p: r[0] for p, r in results.items()}, method))
    metrics[f"predictor_{method}_min_success"] = min(r[1][0] for r in results.values())
    metrics[f"predictor_{method}_mean_success"] = sum(r[1][0] for r in results.values()) / len(results)
    metrics[f"predictor_{method}_mean_leakage"] = sum(r[1][1] for r in results.values()) / len(results)


def _log_result(method: str, prompt: str, result, extra: str = "") -> None:
    o, (success, leakage) = result
    _log(f"{method} {prompt}: success {o['success'].mean():.3f} (crossed {o['crossed'].mean():.3f}, face "
         f"{o['face_ok'].mean():.3f}, kept {o['kept'].mean():.3f}) leakage {o['leakage'].mean():.3f}; predictor "
         f"success {success:.3f} leakage {leakage:.3f}{extra}")


def relevance_metrics(G, clip, *, n_images, reference_channels, rank=32, seed=0, psi=1.0, progress=None):
    """Time the lowrank table, the exact Jacobian and the reference on sampled channels; return (table, metrics)."""
    from stylekit.progress import no_progress
    from stylekit.text.relevance import LowRankOptions, channel_layout, compute_relevance

    progress = progress or no_progress
    m: dict[str, float] = {}
    table = compute_relevance(G, clip, method=LowRankOptions(rank=rank), n_images=n_images, seed=seed, psi=psi,
                              progress=progress)
    m["relevance_lowrank_s"] = table.meta["seconds"]
    m["relevance_rank"] = table.meta["rank"]
    exact = compute_relevance(G, clip, method="jacobian", n_images=n_images, seed=seed, psi=psi, stats=table.stats,
                              progress=progress)
    m["relevance_jacobian_s"] = exact.meta["seconds"]
    m["relevance_jacobian_mean_cosine"] = float((table.flat() * exact.flat()).sum(1).mean())
    layout = channel_layout(G)
    rng = random.Random(seed)
    chans = sorted(rng.sample(layout, min(reference_channels, len(layout))))
    ref = compute_relevance(G, clip, method="reference", n_images=n_images, seed=seed, psi=psi, stats=table.stats,
                            channels=chans, progress=progress)
    diff = compute_relevance(G, clip, method="difference", n_images=n_images, seed=seed, psi=psi, stats=table.stats,
                             channels=chans, progress=progress)
    per_channel = ref.meta["seconds"] / len(chans)
    m["relevance_reference_s"] = per_channel * len(layout)
    m["relevance_reference_timed_channels"] = len(chans)
    m["relevance_difference_s"] = diff.meta["seconds"] / len(chans) * len(layout)
    m["relevance_speedup"] = m["relevance_reference_s"] / m["relevance_lowrank_s"]
    m["relevance_jacobian_speedup"] = m["relevance_reference_s"] / m["relevance_jacobian_s"]
    m["relevance_jacobian_ref_cosine"] = float((exact.vectors(chans) * ref.vectors(chans)).sum(1).mean())
    m["relevance_difference_speedup"] = m["relevance_reference_s"] / m["relevance_difference_s"]
    a, r, d = table.vectors(chans), ref.vectors(chans), diff.vectors(chans)
    cos = (a * r).sum(1)
    m["relevance_mean_cosine"] = float(cos.mean())
    m["relevance_min_cosine"] = float(cos.min())
    m["relevance_difference_max_error"] = float((d - r).abs().max())
    m["relevance_channels"] = len(layout)
    m["relevance_compare_n_images"] = n_images
    return table, m


def ffhq_estimate(*, dims=4, n_images=100, rank=32, seed=0) -> dict[str, float]:
    """Extrapolated relevance time for a random-weight FFHQ-1024 config-f StyleGAN2 + random ViT-B-32 (224 px)."""
    import logging

    import open_clip

    from stylekit.bench.generator import network_config
    from stylekit.clip_backend import ClipModel
    from stylekit.latent import Latent
    from stylekit.networks.stylegan2 import StyleGAN2Generator
    from stylekit.text.relevance_methods import embed_styles

    torch.manual_seed(seed)
    G = StyleGAN2Generator(network_config("sg2", 1024)).eval().requires_grad_(False)
    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)
    try:
        model = open_clip.create_model("ViT-B-32")
    finally:
        logging.getLogger().setLevel(level)
    clip = ClipModel(model, open_clip.get_tokenizer("ViT-B-32"), name="ViT-B-32", pretrained=None)
    channels = sum(sl.channels for sl in G.style_layers)
    D = clip.embed_dim
    styles = [s.detach() for s in Latent.sample(G, 2, seed=seed).to_styles(G).tensor]
    m: dict[str, float] = {"ffhq_channels": channels, "ffhq_clip_dim": D, "ffhq_images_assumed": n_images}
    with torch.no_grad():
        t0 = time.perf_counter()
        img = G.synthesis(None, styles=styles)
        m["ffhq_render_s"] = (time.perf_counter() - t0) / 2
        t0 = time.perf_counter()
        clip.encode_image(img)
        m["ffhq_clip_224_s"] = (time.perf_counter() - t0) / 2
    one = [s[:1].clone().requires_grad_(True) for s in styles]
    t0 = time.perf_counter()
    with torch.enable_grad():
        e = embed_styles(G, clip, one, "const")
        t_fwd = time.perf_counter() - t0
        t0 = time.perf_counter()
        # ``dims`` of the D vector-Jacobian products, batched as compute_relevance does them
        grads = torch.autograd.grad(e, one, grad_outputs=torch.eye(D)[:dims].unsqueeze(1), retain_graph=True,
                                    is_grads_batched=True, allow_unused=True)
        t_vjp = (time.perf_counter() - t0) / dims
    del grads, e
    m["ffhq_forward_with_graph_s"] = t_fwd
    m["ffhq_vjp_s"] = t_vjp
    t_probe = m["ffhq_render_s"] + m["ffhq_clip_224_s"]
    k = min(rank, D)
    m["ffhq_rank"] = k
    m["relevance_ffhq_jacobian_estimate_s"] = n_images * (t_fwd + D * t_vjp)
    m["relevance_ffhq_estimate_s"] = (n_images * (t_fwd + k * (t_probe + t_vjp)) if k < D
                                      else m["relevance_ffhq_jacobian_estimate_s"])
    m["relevance_ffhq_reference_estimate_s"] = n_images * channels * 2 * (m["ffhq_render_s"] + m["ffhq_clip_224_s"])
    m["relevance_ffhq_estimate_speedup"] = m["relevance_ffhq_reference_estimate_s"] / m["relevance_ffhq_estimate_s"]
    return m


@dataclass
class _Run:
    """What every part of the benchmark works on: the world, the judge and the test codes per prompt."""

    args: argparse.Namespace
    G: object
    clip: object
    judge: _Judge
    binary: list
    prompts: list
    tests: dict | None = None


def _setup(args) -> _Run:
    import stylekit
    from stylekit.checkpoints.predictor import load_predictor
    from stylekit.clip_backend import load_clip
    from stylekit.judge import load_judge
    from stylekit.toyfaces.attributes import BINARY_ATTRIBUTES

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.n_test, args.n_opt, args.n_images, args.compare_images, args.reference_channels = 12, 4, 6, 4, 16
        args.opt_steps, args.mapper_steps, args.ffhq_dims = 20, 20, 1
    prompts = list(PROMPTS)
    if args.prompts:
        prompts = [p.strip() for p in args.prompts.split(",") if p.strip()]
        unknown = [p for p in prompts if p not in PROMPTS]
        if unknown:
            raise SystemExit(f"unknown prompts {unknown}; choose from {', '.join(PROMPTS)}")
    G = stylekit.load_generator(args.model)
    clip = load_clip(args.clip, args.clip_weights) if args.clip_weights else load_clip(args.clip)
    binary = list(BINARY_ATTRIBUTES)
    return _Run(args, G, clip, _Judge(G, load_judge(args.judge), load_predictor(), binary), binary, prompts)


def _relevance(r: _Run, metrics: dict):
    """The methods compared at ``--compare-images`` codes; returns the lowrank table the edits use."""
    from stylekit.text.relevance import LowRankOptions, compute_relevance

    args = r.args
    table, rel = relevance_metrics(r.G, r.clip, n_images=args.compare_images, reference_channels=args.reference_channels,
                                   rank=args.rank, seed=args.seed, psi=args.psi)
    metrics.update(rel)
    _log(f"relevance methods at {args.compare_images} codes: speedup {rel['relevance_speedup']:.1f}x "
         f"(exact jacobian {rel['relevance_jacobian_speedup']:.1f}x), cosine {rel['relevance_mean_cosine']:.3f}")
    if args.n_images != args.compare_images:
        table = compute_relevance(r.G, r.clip, method=LowRankOptions(rank=args.rank), n_images=args.n_images,
                                  seed=args.seed, psi=args.psi, stats=table.stats)
    metrics["relevance_toyfaces_s"] = table.meta["seconds"]
    metrics["relevance_captured_energy"] = table.meta["captured_energy"]
    metrics["relevance_n_images"] = args.n_images
    _log(f"relevance table for the edits ({args.n_images} codes): {table.meta['seconds']:.1f}s")
    return table


def _global(r: _Run, table, metrics: dict) -> None:
    """Global directions with the toyfaces preset (as overridden on the command line) and the plain rule."""
    import stylekit
    from stylekit.latent import Latent
    from stylekit.text import global_edit

    args = r.args
    choice = replace(GLOBAL, alpha=args.alpha, beta=args.beta, top_k=args.top_k or None, whiten=args.whiten or None)
    plain = replace(PLAIN, alpha=args.plain_alpha, beta=args.plain_beta)
    for method, preset in (("global", choice), ("global_plain", plain)):
        res = {}
        for p in r.prompts:
            attr, target, neutral = PROMPTS[p]
            lat, before = r.tests[p]
            try:
                edited = global_edit(r.G, lat, table, target, neutral, clip=r.clip, preset=preset)
                res[p] = _judged(r.judge, before, r.judge(edited), attr)
            except stylekit.InvalidArgumentError as exc:  # no channel passes beta: the edit does nothing
                _log(f"{method} {p}: {exc}")
                res[p] = _judged(r.judge, before, before, attr)
            _log_result(method, p, res[p])
        _summarise(metrics, method, res)
    one = Latent.sample(r.G, 1, seed=args.seed + 99, psi=args.psi)
    _time_global(r, table, one, PROMPTS[r.prompts[0]], choice, metrics)
    metrics.update(global_alpha=args.alpha, global_beta=args.beta, global_top_k=args.top_k, global_whiten=args.whiten,
                   global_plain_alpha=args.plain_alpha, global_plain_beta=args.plain_beta)


def _time_global(r: _Run, table, one, prompt, preset, metrics: dict) -> None:
    """``global_edit_s`` (table in memory) and ``global_edit_with_load_s`` (reading the relevance file too)."""
    from stylekit.bench import time_calls
    from stylekit.text import global_edit, load_relevance, save_relevance

    _, target, neutral = prompt

    def edit_once(t):
        with torch.no_grad():
            global_edit(r.G, one, t, target, neutral, clip=r.clip, preset=preset).render(r.G)

    metrics["global_edit_s"] = time_calls(lambda: edit_once(table), repeats=3, budget_s=10)["wall_s"]
    with tempfile.TemporaryDirectory() as tmp:
        path = save_relevance(table, Path(tmp) / "relevance.safetensors")
        metrics["relevance_file_mb"] = path.stat().st_size / 1e6
        t0 = time.perf_counter()
        edit_once(load_relevance(path, G=r.G, clip=r.clip))
        metrics["global_edit_with_load_s"] = time.perf_counter() - t0


def _optimize(r: _Run, metrics: dict) -> None:
    """Latent optimisation with the toyfaces preset (steps, L2 and copies as on the command line)."""
    from stylekit.text import optimize_latent

    args = r.args
    preset = replace(OPTIMISE, steps=args.opt_steps, l2_weight=args.opt_l2, augmentations=args.opt_augment)
    res, secs = {}, []
    for p in r.prompts:
        attr, target, neutral = PROMPTS[p]
        lat, before = r.tests[p]
        lat, before = lat.select(slice(0, args.n_opt)), before.select(slice(0, args.n_opt))
        out = optimize_latent(r.G, lat, target, clip=r.clip, preset=preset, neutral=None if args.opt_plain else neutral,
                              seed=args.seed)
        secs.append(out.seconds / lat.batch_size)
        res[p] = _judged(r.judge, before, r.judge(out.latent), attr)
        _log_result("optimize", p, res[p], f" ({out.seconds:.1f}s)")
    _summarise(metrics, "optimize", res)
    metrics["optimize_s_per_image"] = sum(secs) / len(secs)
    metrics["optimize_steps"] = args.opt_steps
    metrics["optimize_augmentations"] = args.opt_augment
    metrics["optimize_contrast"] = 0.0 if args.opt_plain else 1.0   # the neutral-text contrast term is on
    metrics["optimize_l2_weight"] = args.opt_l2


def _mapper(r: _Run, metrics: dict) -> None:
    """One mapper per prompt with the toyfaces preset (``--mapper-steps``), then applied to the test codes."""
    from stylekit.text import apply_mapper, train_mapper

    args = r.args
    preset = replace(MAPPING, steps=args.mapper_steps)
    res, train_s, edit_s = {}, [], []
    for i, p in enumerate(r.prompts):
        attr, target, _ = PROMPTS[p]
        lat, before = r.tests[p]
        t0 = time.perf_counter()
        mapper, _ = train_mapper(r.G, target, clip=r.clip, preset=preset, seed=args.seed + i, psi=args.psi)
        train_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        edited = apply_mapper(mapper, lat, G=r.G)
        edit_s.append((time.perf_counter() - t0) / lat.batch_size)
        res[p] = _judged(r.judge, before, r.judge(edited), attr)
        _log_result("mapper", p, res[p], f" (train {train_s[-1]:.1f}s)")
    _summarise(metrics, "mapper", res)
    metrics["mapper_train_s"] = sum(train_s) / len(train_s)
    metrics["mapper_edit_s"] = sum(edit_s) / len(edit_s)
    metrics["mapper_steps"] = args.mapper_steps


def run(args) -> dict[str, float]:
    from stylekit.bench.stats import report_seeds

    r = _setup(args)
    metrics: dict[str, float] = {}
    table = _relevance(r, metrics)
    pool = _pool_size(args.n_test)
    r.tests = {p: _test_codes(r.G, r.judge, PROMPTS[p][0], args.n_test, psi=args.psi,
                              seeds=report_seeds(pool, args.report_offset + i * pool))
               for i, p in enumerate(PROMPTS) if p in r.prompts}
    seeds = report_seeds(pool * len(PROMPTS), args.report_offset)
    metrics.update(report_seed_start=seeds.start, report_seed_count=len(seeds),
                   rule_face_threshold=DEFAULT_RULE.face_threshold, rule_binary_tolerance=DEFAULT_RULE.binary_tolerance,
                   rule_continuous_tolerance=DEFAULT_RULE.continuous_tolerance,
                   rule_target_shift=DEFAULT_RULE.target_shift)
    for p, (_, before) in r.tests.items():
        metrics[f"unedited_face_{p.replace(' ', '_')}"] = float(before.face.mean())
    _global(r, table, metrics)
    if not args.no_optimize:
        _optimize(r, metrics)
    if not args.no_mapper:
        _mapper(r, metrics)
    if not args.no_ffhq:
        metrics.update(ffhq_estimate(dims=args.ffhq_dims, n_images=args.ffhq_images, rank=args.rank, seed=args.seed))
        _log(f"FFHQ estimate: {metrics['relevance_ffhq_estimate_s'] / 3600:.1f} h "
             f"(reference {metrics['relevance_ffhq_reference_estimate_s'] / 3600:.1f} h)")
    metrics.update({"n_test": args.n_test, "n_prompts": len(r.prompts)})
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(float(v))}
