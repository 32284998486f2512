"""Editing quality on toyfaces: does each method change the attribute it should, and only that?

For every binary toyfaces attribute and every method, an edit direction is found, ``--n-test``
random test codes (W, seeded, disjoint from the fitting samples) are pushed along it toward the
other side (codes the predictor sees without the attribute are pushed toward it, the others away),
and the shipped attribute predictor judges the result:

- ``success``: the fraction of codes whose predicted probability crosses 0.5 the intended way;
- ``leakage``: the mean absolute change of every *other* binary attribute's probability.

Matched strength: all W methods move each code the same distance in W, ``--strength`` times the
standard deviation of the test codes' coordinate along that attribute's InterFaceGAN normal (so
3 means "three standard deviations of the attribute axis"). StyleSpace edits one S channel, a space
where W distances do not apply; it moves the channel by ``--stylespace-sigmas`` of that channel's
standard deviation (reported as ``stylespace_sigmas``).

Methods:

- ``interfacegan``: SVM boundary on ``--n-fit`` codes labelled by the predictor (top/bottom
  ``--keep-fraction``), edit along the unit normal. The defaults are the library's preset
  :data:`stylekit.edit.presets.INTERFACEGAN` (4,000 codes, the extreme 10% at each end), which
  ``find_boundary`` and the gallery's Edit tab use too; they follow InterFaceGAN's protocol of
  fitting on the most confidently scored samples (the paper: the top and bottom 10k of 500k); with
  2,000 codes and 25% ends, a few percent of systematic CLIP mislabels near the middle tilted the
  eyes boundary (cosine 0.39 to the predictor's; 0.93 now).
- ``interfacegan_clip``: the same with labels from CLIP zero-shot (toyfaces CLIP): the positive prompt
  of ``stylekit.toyfaces.captions.attribute_prompts`` (e.g. "a face with glasses") against the class
  prompt that names its absence, ``stylekit.toyfaces.clip_model.NEGATED_PROMPTS`` ("a face without
  glasses"; the other hair colours for red hair), the pairs ``bench toyfaces`` scores the CLIP with; skipped when
  the CLIP cannot be loaded.
- ``conditional``: for the two attributes whose normals are most correlated, edit each one with the
  other projected out, and compare the other's change with the plain edit's
  (``conditional_leakage_reduction`` = plain - conditional, positive is better).
- ``ganspace`` / ``sefa``: the top ``--n-components`` PCA / SeFa directions (all layers); for each
  attribute the one (and sign) that moves it most on ``--n-select`` separate codes is used.
- ``stylespace``: the channel with the largest positive-vs-all separation (StyleSpace's method) on
  the predictor-labelled fitting codes.

Timings: ``*_seconds`` (labelling = rendering + scoring the fitting codes; fit = the direction
computation alone, per attribute where it applies).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass

import torch

from stylekit.edit.presets import INTERFACEGAN

DEFAULT_MODEL = "toyfaces"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=DEFAULT_MODEL, help="generator to edit (default: toyfaces)")
    parser.add_argument("--predictor", default=None, help="predictor weights file (default: the shipped one)")
    parser.add_argument("--n-test", type=int, default=200, help="test codes per edit (default 200)")
    parser.add_argument("--n-fit", type=int, default=INTERFACEGAN.n,
                        help=f"labelled codes for InterFaceGAN/StyleSpace (default {INTERFACEGAN.n}, the preset)")
    parser.add_argument("--keep-fraction", type=float, default=INTERFACEGAN.keep_fraction,
                        help=f"InterFaceGAN: top/bottom share kept (default {INTERFACEGAN.keep_fraction}, the preset)")
    parser.add_argument("--strength", type=float, default=3.0,
                        help="W distance, in std of the attribute's InterFaceGAN coordinate (default 3)")
    parser.add_argument("--stylespace-sigmas", type=float, default=10.0,
                        help="StyleSpace edit size in channel std (default 10)")
    parser.add_argument("--n-components", type=int, default=20, help="GANSpace/SeFa candidates (default 20)")
    parser.add_argument("--n-select", type=int, default=48, help="codes used to pick a component per attribute")
    parser.add_argument("--no-clip", action="store_true", help="skip the CLIP-labelled InterFaceGAN")
    parser.add_argument("--attributes", default=None, help="comma-separated binary attributes (default: all)")
    parser.add_argument("--psi", type=float, default=1.0, help="truncation of all sampled codes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--device", default="cpu")


def _log(msg: str) -> None:
    print(f"[bench editing] {msg}", file=sys.stderr, flush=True)


class _Judge:
    """Renders W+ codes in batches and returns the predictor's binary probabilities ``name -> [N]``."""

    def __init__(self, G, predictor, names, batch_size):
        self.G, self.predictor, self.names, self.batch_size = G, predictor, list(names), batch_size
        self.rendered = 0

    @torch.no_grad()
    def images(self, ws: torch.Tensor):
        for i in range(0, ws.shape[0], self.batch_size):
            yield self.G.synthesis(ws[i:i + self.batch_size], noise_mode="const")

    @torch.no_grad()
    def __call__(self, ws: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {n: [] for n in self.names}
        for img in self.images(ws):
            pred = self.predictor.predict(img)
            for n in self.names:
                out[n].append(pred[n].float().cpu())
            self.rendered += img.shape[0]
        return {n: torch.cat(v) for n, v in out.items()}


def _edit_scores(judge, ws0, p0, attr, vector, distance, names):
    """Push each code along ``vector [w_dim]`` (unit) by ``distance`` toward flipping ``attr``.

    Returns (success rate, mean leakage over the other attributes, per-attribute mean |change|).
    """
    sign = torch.where(p0[attr] < 0.5, 1.0, -1.0)
    ws = ws0 + (sign * distance).reshape(-1, 1, 1) * vector.to(ws0).reshape(1, 1, -1)
    p1 = judge(ws)
    return _score(p0, p1, attr, sign, names)


def _score(p0, p1, attr, sign, names):
    success = torch.where(sign > 0, p1[attr] > 0.5, p1[attr] < 0.5).float().mean().item()
    changes = {b: (p1[b] - p0[b]).abs().mean().item() for b in names if b != attr}
    leakage = sum(changes.values()) / max(len(changes), 1)
    return success, leakage, changes


def run(args) -> dict[str, float]:
    import stylekit
    from stylekit.toyfaces.attributes import BINARY_ATTRIBUTES
    from stylekit.checkpoints.predictor import load_predictor

    G = stylekit.load_generator(args.model, device=args.device)
    predictor = load_predictor(args.predictor or "toyfaces", device=args.device)
    clip = None
    if not args.no_clip:
        try:
            from stylekit.clip_backend import load_clip

            clip = load_clip("toyfaces", device=args.device)
        except stylekit.StylekitError as exc:
            _log(f"CLIP not available ({exc}); skipping interfacegan_clip")
    names = list(BINARY_ATTRIBUTES)
    if args.attributes:
        chosen = [a.strip() for a in args.attributes.split(",") if a.strip()]
        unknown = [a for a in chosen if a not in names]
        if unknown:
            raise SystemExit(f"unknown binary attributes {unknown}; choose from {', '.join(names)}")
        attrs = chosen
    else:
        attrs = names
    return evaluate(G, predictor, clip=clip, attributes=attrs, all_binary=names, n_test=args.n_test,
                    n_fit=args.n_fit, keep_fraction=args.keep_fraction, strength=args.strength,
                    stylespace_sigmas=args.stylespace_sigmas, n_components=args.n_components,
                    n_select=args.n_select, psi=args.psi, seed=args.seed, batch_size=args.batch_size)


@dataclass
class _Codes:
    """The labelled codes every method is measured on: fitting codes ``fit`` (W, ``[n_fit, num_ws,
    w_dim]``) with the predictor's probabilities ``p_fit`` (name -> ``[n_fit]``), test codes ``test``
    with ``ws_test`` its tensor and ``p_test`` its probabilities."""

    judge: _Judge
    names: list
    attributes: list
    fit: object
    p_fit: dict
    test: object
    ws_test: torch.Tensor
    p_test: dict
    keep_fraction: float


@torch.no_grad()
def evaluate(G, predictor, *, clip=None, attributes, all_binary, n_test=200, n_fit=INTERFACEGAN.n,
             keep_fraction=INTERFACEGAN.keep_fraction, strength=3.0, stylespace_sigmas=10.0, n_components=20,
             n_select=48, psi=1.0, seed=0, batch_size=50) -> dict[str, float]:
    """The measurements behind :func:`run`, on any generator and predictor (``predictor.predict(images)``
    returning ``name -> [N]`` probabilities for every name in ``all_binary``).

    ``n_fit`` and ``keep_fraction`` default to the library's preset
    :data:`stylekit.edit.presets.INTERFACEGAN`, so the numbers are those of a default fit."""
    from stylekit.latent import Latent

    metrics: dict[str, float] = {}
    judge = _Judge(G, predictor, all_binary, batch_size)

    # --- labelled fitting codes (one rendering pass serves every attribute) --------------------
    t0 = time.perf_counter()
    fit = Latent.sample(G, n_fit, seed=seed + 1, psi=psi)
    p_fit = judge(fit.tensor)
    metrics["interfacegan_label_seconds"] = time.perf_counter() - t0
    _log(f"labelled {n_fit} codes in {metrics['interfacegan_label_seconds']:.1f}s")

    test = Latent.sample(G, n_test, seed=seed + 2, psi=psi)
    p_test = judge(test.tensor)
    for a in attributes:
        metrics[f"test_prevalence_{a}"] = (p_test[a] > 0.5).float().mean().item()
    codes = _Codes(judge, list(all_binary), list(attributes), fit, p_fit, test, test.tensor, p_test, keep_fraction)

    boundaries, distances, results = _interfacegan(codes, metrics, strength)
    if len(boundaries) >= 2:
        _conditional(codes, metrics, boundaries, distances, results)
    if clip is not None:
        _interfacegan_clip(codes, metrics, clip, boundaries, distances)
    _components(G, codes, metrics, distances, n_components=n_components, n_select=n_select, psi=psi, seed=seed)
    _stylespace(G, predictor, codes, metrics, sigmas=stylespace_sigmas, psi=psi, seed=seed, batch_size=batch_size)

    metrics.update({"n_test": n_test, "n_fit": n_fit, "strength": strength, "images_rendered": judge.rendered,
                    "w_dim": G.w_dim, "num_ws": G.num_ws, "img_resolution": G.img_resolution})
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}


def _ends(scores: torch.Tensor, keep_fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """InterFaceGAN's confident ends of ``scores [N]``: ``(indices [2k], labels [2k])``, top k labelled 1."""
    k = min(max(1, int(round(len(scores) * keep_fraction))), len(scores) // 2)
    order = torch.argsort(scores, descending=True, stable=True)
    keep = torch.cat([order[:k], order[-k:]])
    return keep, torch.cat([torch.ones(k), torch.zeros(k)])


def _interfacegan(codes: _Codes, metrics, strength):
    """Predictor-labelled boundaries; returns ``(boundaries, edit distances, results)`` per attribute."""
    from stylekit.edit import interfacegan

    boundaries, distances, fit_times, results = {}, {}, [], {}
    for a in codes.attributes:
        keep, labels = _ends(codes.p_fit[a], codes.keep_fraction)
        b = interfacegan.fit_boundary(codes.fit.select(keep.tolist()), labels, name=a)
        fit_times.append(b.meta["fit_seconds"])
        boundaries[a] = b
        distances[a] = strength * float((codes.ws_test[:, 0] @ b.vector).std())
        results[a] = _edit_scores(codes.judge, codes.ws_test, codes.p_test, a, b.vector, distances[a], codes.names)
        metrics[f"interfacegan_train_accuracy_{a}"] = b.meta["train_accuracy"]
        metrics[f"edit_distance_{a}"] = distances[a]
        _log(f"interfacegan {a}: success {results[a][0]:.3f} leakage {results[a][1]:.3f}")
    metrics["interfacegan_fit_seconds"] = sum(fit_times) / len(fit_times)
    _summarise(metrics, "interfacegan", results)
    return boundaries, distances, results


def _conditional(codes: _Codes, metrics, boundaries, distances, results) -> None:
    """Conditional editing on the pair of attributes whose normals are most correlated."""
    from stylekit.edit import interfacegan

    attributes = codes.attributes
    pairs = [(a, b) for i, a in enumerate(attributes) for b in attributes[i + 1:]]
    cos = {p: abs(float(boundaries[p[0]].vector @ boundaries[p[1]].vector)) for p in pairs}
    a, b = max(cos, key=cos.get)
    metrics["conditional_pair_cosine"] = cos[(a, b)]
    _log(f"most correlated pair: {a} / {b} (|cos| {cos[(a, b)]:.3f})")
    plain, cond, cond_success = [], [], []
    for primary, other in ((a, b), (b, a)):
        c = interfacegan.condition(boundaries[primary], [boundaries[other]])
        s, _, ch = _edit_scores(codes.judge, codes.ws_test, codes.p_test, primary, c.vector, distances[primary],
                                codes.names)
        plain.append(results[primary][2][other])
        cond.append(ch[other])
        cond_success.append(s)
        metrics[f"conditional_{primary}_given_{other}_success"] = s
        metrics[f"conditional_{primary}_given_{other}_leakage_on_{other}"] = ch[other]
        metrics[f"plain_{primary}_leakage_on_{other}"] = results[primary][2][other]
    metrics["conditional_pair_plain_leakage"] = sum(plain) / 2
    metrics["conditional_pair_conditioned_leakage"] = sum(cond) / 2
    metrics["conditional_leakage_reduction"] = (sum(plain) - sum(cond)) / 2
    metrics["conditional_min_success"] = min(cond_success)


def _interfacegan_clip(codes: _Codes, metrics, clip, boundaries, distances) -> None:
    """InterFaceGAN with CLIP zero-shot labels (the toyfaces prompt pairs), compared with the predictor's."""
    from stylekit.edit import interfacegan
    from stylekit.toyfaces.captions import attribute_prompts
    from stylekit.toyfaces.clip_model import NEGATED_PROMPTS

    prompts = {a: (pos, NEGATED_PROMPTS.get(a, neutral)) for a, (pos, neutral) in attribute_prompts().items()}
    scorers = {a: interfacegan.clip_scorer(*prompts[a], clip=clip) for a in codes.attributes if a in prompts}
    t0 = time.perf_counter()
    clip_scores = {a: [] for a in scorers}
    for img in codes.judge.images(codes.fit.tensor):
        for a, sc in scorers.items():
            clip_scores[a].append(sc(img).float().cpu())
    clip_scores = {a: torch.cat(v) for a, v in clip_scores.items()}
    metrics["interfacegan_clip_label_seconds"] = time.perf_counter() - t0
    clip_results = {}
    for a in scorers:
        keep, labels = _ends(clip_scores[a], codes.keep_fraction)
        agree = ((codes.p_fit[a][keep] > 0.5).float() == labels).float().mean().item()
        metrics[f"interfacegan_clip_label_agreement_{a}"] = agree
        b = interfacegan.fit_boundary(codes.fit.select(keep.tolist()), labels, name=a)
        metrics[f"interfacegan_clip_cosine_to_predictor_{a}"] = float(b.vector @ boundaries[a].vector)
        clip_results[a] = _edit_scores(codes.judge, codes.ws_test, codes.p_test, a, b.vector, distances[a],
                                       codes.names)
        _log(f"interfacegan_clip {a}: success {clip_results[a][0]:.3f} label agreement {agree:.3f}")
    _summarise(metrics, "interfacegan_clip", clip_results)


def _components(G, codes: _Codes, metrics, distances, *, n_components, n_select, psi, seed) -> None:
    """GANSpace and SeFa: for each attribute, the best of the top ``n_components`` directions."""
    from stylekit.edit import ganspace, sefa
    from stylekit.latent import Latent

    select = Latent.sample(G, n_select, seed=seed + 3, psi=psi).tensor
    sel_dist = sum(distances.values()) / len(distances)
    t0 = time.perf_counter()
    pca = ganspace.fit_pca(G, n_samples=max(5000, 10 * G.w_dim), n_components=min(n_components, G.w_dim),
                           seed=seed + 4, psi=psi)
    metrics["ganspace_fit_seconds"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    factors = sefa.sefa(G, k=min(n_components, G.w_dim))
    metrics["sefa_fit_seconds"] = time.perf_counter() - t0
    for method, candidates in (("ganspace", pca.components), ("sefa", factors.directions)):
        chosen = _pick_candidates(codes.judge, select, candidates, sel_dist, codes.attributes)
        res = {}
        for a in codes.attributes:
            k, sign = chosen[a]
            res[a] = _edit_scores(codes.judge, codes.ws_test, codes.p_test, a, sign * candidates[k], distances[a],
                                  codes.names)
            metrics[f"{method}_component_{a}"] = k
            _log(f"{method} {a}: component {k} success {res[a][0]:.3f} leakage {res[a][1]:.3f}")
        _summarise(metrics, method, res)


def _stylespace(G, predictor, codes: _Codes, metrics, *, sigmas, psi, seed, batch_size) -> None:
    """StyleSpace: move the most separating channel per attribute by ``sigmas`` channel deviations."""
    from stylekit.edit import stylespace

    t0 = time.perf_counter()
    stats = stylespace.style_statistics(G, n_samples=2000, seed=seed + 5, psi=psi)
    metrics["stylespace_stats_seconds"] = time.perf_counter() - t0
    s_test = codes.test.to_styles(G)
    n_test = codes.ws_test.shape[0]
    res, find_times = {}, []
    for a in codes.attributes:
        t0 = time.perf_counter()
        labels = (codes.p_fit[a] > 0.5).float()
        top = stylespace.channels_from_labels(G, codes.fit, labels, top_k=1)[0]
        find_times.append(time.perf_counter() - t0)
        sign = torch.where(codes.p_test[a] < 0.5, 1.0, -1.0) * (1.0 if top.score > 0 else -1.0)
        styles = [s.clone() for s in s_test.tensor]
        styles[top.layer_index][:, top.channel] += sign * sigmas * stats.std[top.layer_index][top.channel]
        p1 = {n: [] for n in codes.names}
        for i in range(0, n_test, batch_size):
            img = G.synthesis(None, styles=[s[i:i + batch_size] for s in styles], noise_mode="const")
            pred = predictor.predict(img)
            for n in codes.names:
                p1[n].append(pred[n].float().cpu())
        p1 = {n: torch.cat(v) for n, v in p1.items()}
        intended = torch.where(codes.p_test[a] < 0.5, 1.0, -1.0)
        res[a] = _score(codes.p_test, p1, a, intended, codes.names)
        metrics[f"stylespace_channel_score_{a}"] = top.score
        _log(f"stylespace {a}: {top.layer}[{top.channel}] score {top.score:+.2f} success {res[a][0]:.3f} "
             f"leakage {res[a][1]:.3f}")
    metrics["stylespace_find_seconds"] = sum(find_times) / len(find_times)
    metrics["stylespace_sigmas"] = sigmas
    _summarise(metrics, "stylespace", res)


def _pick_candidates(judge, ws, candidates, distance, attributes):
    """For every attribute, the candidate direction index and sign that raise its probability most."""
    best = {a: (0, 1.0, -math.inf) for a in attributes}
    for k in range(candidates.shape[0]):
        v = candidates[k].to(ws).reshape(1, 1, -1)
        up, down = judge(ws + distance * v), judge(ws - distance * v)
        for a in attributes:
            gain = (up[a] - down[a]).mean().item()
            if abs(gain) > best[a][2]:
                best[a] = (k, 1.0 if gain > 0 else -1.0, abs(gain))
    return {a: (k, s) for a, (k, s, _) in best.items()}


def _summarise(metrics, method, results):
    for a, (success, leakage, _) in results.items():
        metrics[f"{method}_success_{a}"] = success
        metrics[f"{method}_leakage_{a}"] = leakage
    metrics[f"{method}_min_success"] = min(r[0] for r in results.values())
    metrics[f"{method}_mean_success"] = sum(r[0] for r in results.values()) / len(results)
    metrics[f"{method}_mean_leakage"] = sum(r[1] for r in results.values()) / len(results)
