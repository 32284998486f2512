"""Editing quality on toyfaces: does each method change the attribute it should, keep a face, and only that?

For every binary toyfaces attribute and every method, an edit direction is found on **fitting codes**
(W, ``Latent.sample`` with ``--seed``; the methods label them with the attribute predictor, as
InterFaceGAN and StyleSpace do), then ``--n-test`` **report codes** (one per report seed,
:func:`stylekit.bench.stats.report_seeds` from ``--report-offset``, recorded as ``report_seed_start`` /
``report_seed_count``; no tuning looks at them) are pushed along it toward the other side: codes the
held-out judge (:mod:`stylekit.judge`) reads without the attribute are pushed toward it, the others away.
The judge then applies the edit success rule (:mod:`stylekit.bench.judging`, thresholds in ``rule_*``):

- ``<method>_success_<attr>``: the target crossed as asked, the edited image's face score is at least
  the threshold, and every other attribute (continuous ones too) moved less than its tolerance; with
  its parts ``<method>_crossed_<attr>``, ``_face_ok_``, ``_kept_``, each with a 95% Wilson interval
  (``_lo``, ``_hi``; ``_n`` samples);
- ``<method>_leakage_<attr>``: the mean absolute unit-scale change of all 14 other attributes, and
  ``<method>_face_<attr>`` the edited face score (bootstrap intervals); ``<method>_change_<other>_<attr>``
  the mean absolute change of each attribute, which says where the leakage goes;
- ``<method>_min_success`` (the worst attribute), ``<method>_mean_success``, ``<method>_mean_leakage``;
- ``<method>_fd_edited`` beside ``fd_unedited``: Fréchet distance in judge features between toyfaces
  renders and the edited (mean over attributes) / unedited report codes, ``--n-test`` images each;
- the rule's yardsticks: ``planted_success_<attr>``, what a perfect edit scores (``--n-planted`` renders with
  the attribute switched by the renderer and nothing else, report seeds from ``planted_seed_start``),
  ``judge_crosstalk_p99_*``, how far the judge's readings of the other attributes move under those
  perfect edits (the rule's tolerances sit above it), and ``judge_noise_p99_*``, the judge's repeat noise
  (the report codes rendered twice with random noise).

``predictor_<method>_success_<attr>`` / ``predictor_<method>_leakage_<attr>`` (and ``_min_success``,
``_mean_leakage``) keep the former figures for comparison: the attribute predictor's probability crossing
0.5 the asked way, and the mean change of the other *binary* probabilities, on the same edited images.
The predictor labels the fitting codes and trained the generator, so these overstate what an edit does
(a flat grey image reads glasses 0.99).

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
  fitting on the most confidently scored samples (the paper: the top and bottom 10k of 500k).
- ``interfacegan_clip``: the same with labels from CLIP zero-shot (toyfaces CLIP): the positive prompt
  of ``stylekit.toyfaces.captions.attribute_prompts`` (e.g. "a face with glasses") against the class
  prompt that names its absence, ``stylekit.toyfaces.clip_model.NEGATED_PROMPTS``; skipped when the
  CLIP cannot be loaded or with ``--no-clip``.
- ``conditional``: for the two attributes whose normals are most correlated, edit each one with the
  other projected out, and compare the judge's reading of the other's change with the plain edit's
  (``conditional_leakage_reduction`` = plain - conditional, positive is better).
- ``ganspace`` / ``sefa``: the top ``--n-components`` PCA / SeFa directions (all layers); for each
  attribute the one (and sign) that moves the predictor's reading most on ``--n-select`` fitting-side
  codes is used.
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
from dataclasses import dataclass, field

import numpy as np
import torch

from stylekit.bench.judging import (DEFAULT_RULE, PLANTED, judge_pass, outcome_metrics, outcomes_from_readings,
                                    planted_edits, summary_metrics)
from stylekit.edit.presets import INTERFACEGAN

DEFAULT_MODEL = "toyfaces"
#: Report seeds of this benchmark start at ``REPORT_SEED_START + REPORT_OFFSET`` (bench text uses other ones).
REPORT_OFFSET = 0
#: The planted (perfect) edits' renders use report seeds from ``REPORT_OFFSET + PLANTED_OFFSET`` on.
PLANTED_OFFSET = 50_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=DEFAULT_MODEL, help="generator to edit (default: toyfaces)")
    parser.add_argument("--predictor", default=None, help="predictor weights file (default: the shipped one)")
    parser.add_argument("--judge", default="toyfaces", help="held-out judge (name or file; default: the shipped one)")
    parser.add_argument("--n-test", type=int, default=200, help="report codes per edit (default 200)")
    parser.add_argument("--report-offset", type=int, default=REPORT_OFFSET,
                        help=f"first report seed = 7,000,000 + this (default {REPORT_OFFSET})")
    parser.add_argument("--n-planted", type=int, default=100, help="renders per planted (perfect) edit (default 100)")
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
    parser.add_argument("--seed", type=int, default=0, help="seed of the fitting codes and the methods' sampling")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--device", default="cpu")


def _log(msg: str) -> None:
    print(f"[bench editing] {msg}", file=sys.stderr, flush=True)


@dataclass
class _Reading:
    """What the judge and the predictor read from ``N`` images: judge ``unit [N, A]``, ``face [N]``,
    ``features [N, F]``; predictor binary probabilities ``predicted`` (name -> ``[N]``)."""

    unit: np.ndarray
    face: np.ndarray
    features: np.ndarray
    predicted: dict


class _Readers:
    """Renders W+ codes (or S styles) in batches and reads them with the judge and the predictor."""

    def __init__(self, G, predictor, judge, names, batch_size):
        self.G, self.predictor, self.judge, self.names, self.batch_size = G, predictor, judge, list(names), batch_size
        self.rendered = 0

    @torch.no_grad()
    def images(self, ws: torch.Tensor):
        for i in range(0, ws.shape[0], self.batch_size):
            self.rendered += ws[i:i + self.batch_size].shape[0]
            yield self.G.synthesis(ws[i:i + self.batch_size], noise_mode="const")

    @torch.no_grad()
    def styles_images(self, styles: list):
        n = styles[0].shape[0]
        for i in range(0, n, self.batch_size):
            self.rendered += min(self.batch_size, n - i)
            yield self.G.synthesis(None, styles=[s[i:i + self.batch_size] for s in styles], noise_mode="const")

    @torch.no_grad()
    def predict(self, ws: torch.Tensor) -> dict[str, torch.Tensor]:
        """The predictor's binary probabilities ``name -> [N]`` of the codes ``ws`` (the methods' labeller)."""
        out = {n: [] for n in self.names}
        for img in self.images(ws):
            pred = self.predictor.predict(img)
            for n in self.names:
                out[n].append(pred[n].float().cpu())
        return {n: torch.cat(v) for n, v in out.items()}

    @torch.no_grad()
    def read(self, batches) -> _Reading:
        """Judge and predictor readings of the image batches ``batches`` (an iterable of ``[B, 3, H, W]``)."""
        parts, pred = [], {n: [] for n in self.names}
        for img in batches:
            parts.append(judge_pass(self.judge, img, batch_size=self.batch_size))
            p = self.predictor.predict(img)
            for n in self.names:
                pred[n].append(p[n].float().cpu())
        unit, face, feats = (np.concatenate([p[k] for p in parts]) for k in range(3))
        return _Reading(unit, face, feats, {n: torch.cat(v) for n, v in pred.items()})


@dataclass
class _Codes:
    """The codes every method is measured on: fitting codes ``fit`` (W, ``[n_fit, num_ws, w_dim]``) with
    the predictor's probabilities ``p_fit`` (name -> ``[n_fit]``); report codes ``test`` (one per report seed)
    with ``ws_test`` its tensor, ``before`` their readings, ``sign`` (attribute -> ``[n_test]`` of +-1, the
    way each code is pushed: toward the attribute where the judge reads it absent) and ``renders_features``
    (judge features of ``n_test`` toyfaces renders, for the Fréchet distances)."""

    readers: _Readers
    names: list
    attributes: list
    fit: object
    p_fit: dict
    test: object
    ws_test: torch.Tensor
    before: _Reading
    sign: dict
    keep_fraction: float
    renders_features: np.ndarray
    fd: dict = field(default_factory=dict)


@dataclass
class _Result:
    """One method on one attribute: the judge's per-sample outcomes (``stylekit.bench.judging``), the
    predictor's former figures ``(success, leakage)`` and the Fréchet distance of the edited images."""

    outcomes: dict
    predictor: tuple
    fd: float


def run(args) -> dict[str, float]:
    import stylekit
    from stylekit.checkpoints.predictor import load_predictor
    from stylekit.judge import load_judge
    from stylekit.toyfaces.attributes import BINARY_ATTRIBUTES

    if args.threads:
        torch.set_num_threads(args.threads)
    G = stylekit.load_generator(args.model, device=args.device)
    predictor = load_predictor(args.predictor or "toyfaces", device=args.device)
    judge = load_judge(args.judge, device=args.device)
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
    return evaluate(G, predictor, judge, clip=clip, attributes=attrs, all_binary=names, n_test=args.n_test,
                    report_offset=args.report_offset, n_fit=args.n_fit, keep_fraction=args.keep_fraction,
                    strength=args.strength, stylespace_sigmas=args.stylespace_sigmas, n_components=args.n_components,
                    n_select=args.n_select, psi=args.psi, seed=args.seed, batch_size=args.batch_size,
                    n_planted=args.n_planted)


@torch.no_grad()
def evaluate(G, predictor, judge, *, clip=None, attributes, all_binary, n_test=200, report_offset=REPORT_OFFSET,
             n_fit=INTERFACEGAN.n, keep_fraction=INTERFACEGAN.keep_fraction, strength=3.0, stylespace_sigmas=10.0,
             n_components=20, n_select=48, psi=1.0, seed=0, batch_size=50, n_planted=100) -> dict[str, float]:
    """The measurements behind :func:`run`, on any generator, predictor (``predictor.predict(images)`` returning
    ``name -> [N]`` probabilities for every name in ``all_binary``) and judge (a :class:`stylekit.judge.Judge`).

    ``n_fit`` and ``keep_fraction`` default to the library's preset
    :data:`stylekit.edit.presets.INTERFACEGAN`, so the numbers are those of a default fit."""
    from stylekit.latent import Latent

    from .stats import report_seeds

    metrics: dict[str, float] = {}
    readers = _Readers(G, predictor, judge, all_binary, batch_size)

    # --- predictor-labelled fitting codes (one rendering pass serves every attribute) ----------
    t0 = time.perf_counter()
    fit = Latent.sample(G, n_fit, seed=seed + 1, psi=psi)
    p_fit = readers.predict(fit.tensor)
    metrics["interfacegan_label_seconds"] = time.perf_counter() - t0
    _log(f"labelled {n_fit} codes in {metrics['interfacegan_label_seconds']:.1f}s")

    # --- report codes, read by the judge ------------------------------------------------------
    seeds = report_seeds(n_test, report_offset)
    test = Latent.from_seed(G, list(seeds), psi=psi)
    before = readers.read(readers.images(test.tensor))
    names = list(judge.attribute_names)
    sign = {a: np.where(before.unit[:, names.index(a)] < 0.5, 1.0, -1.0) for a in attributes}
    for a in attributes:
        metrics[f"test_prevalence_{a}"] = float((sign[a] < 0).mean())
    metrics.update(_reference_metrics(G, judge, test, before, batch_size, seed))
    planted_seed = report_seeds(1, report_offset + PLANTED_OFFSET).start
    metrics.update(planted_edits(judge, n=n_planted, seed=planted_seed, size=G.img_resolution, batch_size=batch_size))
    metrics["planted_seed_start"] = planted_seed
    _log("perfect (planted) edits: " + ", ".join(f"{a} {metrics[f'planted_success_{a}']:.3f}" for a, _, _ in PLANTED)
         + f"; judge cross-talk p99 binary {metrics['judge_crosstalk_p99_binary']:.3f}, continuous "
         f"{metrics['judge_crosstalk_p99_continuous']:.3f}")
    codes = _Codes(readers, list(all_binary), list(attributes), fit, p_fit, test, test.tensor, before, sign,
                   keep_fraction, _render_features(G, judge, n_test, report_offset, batch_size))
    metrics["fd_unedited"] = _fd(codes.renders_features, before.features)

    boundaries, distances, results = _interfacegan(codes, metrics, strength)
    if len(boundaries) >= 2:
        _conditional(codes, metrics, boundaries, distances, results)
    if clip is not None:
        _interfacegan_clip(codes, metrics, clip, boundaries, distances)
    _components(G, codes, metrics, distances, n_components=n_components, n_select=n_select, psi=psi, seed=seed)
    _stylespace(G, codes, metrics, sigmas=stylespace_sigmas, psi=psi, seed=seed)

    metrics.update({"n_test": n_test, "n_fit": n_fit, "strength": strength, "images_rendered": readers.rendered,
                    "report_seed_start": seeds.start, "report_seed_count": len(seeds), "fit_seed": seed + 1,
                    "w_dim": G.w_dim, "num_ws": G.num_ws, "img_resolution": G.img_resolution,
                    "rule_face_threshold": DEFAULT_RULE.face_threshold,
                    "rule_binary_tolerance": DEFAULT_RULE.binary_tolerance,
                    "rule_continuous_tolerance": DEFAULT_RULE.continuous_tolerance,
                    "rule_target_shift": DEFAULT_RULE.target_shift})
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}


def _reference_metrics(G, judge, test, before: _Reading, batch_size: int, seed: int) -> dict[str, float]:
    """The unedited report codes: the judge's face score (``unedited_face``, ``unedited_face_ok``) and its repeat
    noise between two renderings with random noise maps (``judge_noise_p99_*``)."""
    from .judging import repeat_noise
    from .stats import mean_metrics, rate_metrics

    def noisy(draw):
        torch.manual_seed(seed + 1000 + draw)
        return torch.cat([test.select(slice(i, i + batch_size)).render(G, noise_mode="random")
                          for i in range(0, test.batch_size, batch_size)])

    out = {**mean_metrics("unedited_face", before.face),
           **rate_metrics("unedited_face_ok", before.face >= DEFAULT_RULE.face_threshold)}
    out.update(repeat_noise(judge, noisy(0), noisy(1), batch_size=batch_size))
    _log(f"unedited face score {out['unedited_face']:.3f}; judge repeat noise p99 binary "
         f"{out['judge_noise_p99_binary']:.3f}, continuous {out['judge_noise_p99_continuous']:.3f}")
    return out


def _render_features(G, judge, n: int, report_offset: int, batch_size: int) -> np.ndarray:
    """Judge features ``[n, F]`` of ``n`` toyfaces renders at the generator's resolution (attributes drawn with
    the first report seed, so no training set holds them)."""
    from stylekit.toyfaces.attributes import sample_attributes
    from stylekit.toyfaces.renderer import render_batch

    from .stats import report_seeds

    first = report_seeds(1, report_offset).start
    renders = render_batch(sample_attributes(n, seed=first), size=G.img_resolution,
                           seeds=np.arange(first, first + n))
    return judge_pass(judge, renders, batch_size=batch_size)[2]


def _fd(a: np.ndarray, b: np.ndarray) -> float:
    from stylekit.train.metrics import frechet_distance

    return frechet_distance(a, b)


def _measure(codes: _Codes, attr: str, after: _Reading) -> _Result:
    """The judge's rule and the predictor's former figures for ``attr`` edited into ``after``."""
    outcomes = outcomes_from_readings((codes.before.unit, codes.before.face), (after.unit, after.face), attr,
                                      codes.sign[attr], DEFAULT_RULE, names=list(codes.readers.judge.attribute_names))
    p0, p1 = codes.before.predicted, after.predicted
    sign = torch.from_numpy(codes.sign[attr]).float()
    success = torch.where(sign > 0, p1[attr] > 0.5, p1[attr] < 0.5).float().mean().item()
    others = [b for b in codes.names if b != attr]
    leakage = sum((p1[b] - p0[b]).abs().mean().item() for b in others) / max(len(others), 1)
    return _Result(outcomes, (success, leakage), _fd(codes.renders_features, after.features))


def _edit_w(codes: _Codes, attr: str, vector: torch.Tensor, distance: float) -> _Result:
    """Push each report code along ``vector [w_dim]`` (unit) by ``distance`` the way ``codes.sign`` asks."""
    sign = torch.from_numpy(codes.sign[attr]).to(codes.ws_test)
    ws = codes.ws_test + (sign * distance).reshape(-1, 1, 1) * vector.to(codes.ws_test).reshape(1, 1, -1)
    return _measure(codes, attr, codes.readers.read(codes.readers.images(ws)))


def _ends(scores: torch.Tensor, keep_fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """InterFaceGAN's confident ends of ``scores [N]``: ``(indices [2k], labels [2k])``, top k labelled 1."""
    k = min(max(1, int(round(len(scores) * keep_fraction))), len(scores) // 2)
    order = torch.argsort(scores, descending=True, stable=True)
    keep = torch.cat([order[:k], order[-k:]])
    return keep, torch.cat([torch.ones(k), torch.zeros(k)])


def _log_result(method: str, attr: str, r: _Result, extra: str = "") -> None:
    o = r.outcomes
    _log(f"{method} {attr}{extra}: success {o['success'].mean():.3f} (crossed {o['crossed'].mean():.3f}, face "
         f"{o['face_ok'].mean():.3f}, kept {o['kept'].mean():.3f}) leakage {o['leakage'].mean():.3f}; predictor "
         f"success {r.predictor[0]:.3f} leakage {r.predictor[1]:.3f}")


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
        results[a] = _edit_w(codes, a, b.vector, distances[a])
        metrics[f"interfacegan_train_accuracy_{a}"] = b.meta["train_accuracy"]
        metrics[f"edit_distance_{a}"] = distances[a]
        _log_result("interfacegan", a, results[a])
    metrics["interfacegan_fit_seconds"] = sum(fit_times) / len(fit_times)
    _summarise(metrics, "interfacegan", results)
    return boundaries, distances, results


def _conditional(codes: _Codes, metrics, boundaries, distances, results) -> None:
    """Conditional editing on the pair of attributes whose normals are most correlated (the judge reads the
    other attribute's mean absolute change with and without the projection)."""
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
        r = _edit_w(codes, primary, c.vector, distances[primary])
        plain.append(float(np.abs(results[primary].outcomes[f"change_{other}"]).mean()))
        cond.append(float(np.abs(r.outcomes[f"change_{other}"]).mean()))
        cond_success.append(float(r.outcomes["success"].mean()))
        metrics.update(outcome_metrics(r.outcomes, "conditional", f"{primary}_given_{other}"))
        metrics[f"conditional_{primary}_given_{other}_leakage_on_{other}"] = cond[-1]
        metrics[f"plain_{primary}_leakage_on_{other}"] = plain[-1]
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
    for img in codes.readers.images(codes.fit.tensor):
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
        clip_results[a] = _edit_w(codes, a, b.vector, distances[a])
        _log_result("interfacegan_clip", a, clip_results[a], f" (label agreement {agree:.3f})")
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
        chosen = _pick_candidates(codes.readers, select, candidates, sel_dist, codes.attributes)
        res = {}
        for a in codes.attributes:
            k, sign = chosen[a]
            res[a] = _edit_w(codes, a, sign * candidates[k], distances[a])
            metrics[f"{method}_component_{a}"] = k
            _log_result(method, a, res[a], f" (component {k})")
        _summarise(metrics, method, res)


def _stylespace(G, codes: _Codes, metrics, *, sigmas, psi, seed) -> None:
    """StyleSpace: move the most separating channel per attribute by ``sigmas`` channel deviations."""
    from stylekit.edit import stylespace

    t0 = time.perf_counter()
    stats = stylespace.style_statistics(G, n_samples=2000, seed=seed + 5, psi=psi)
    metrics["stylespace_stats_seconds"] = time.perf_counter() - t0
    s_test = codes.test.to_styles(G)
    res, find_times = {}, []
    for a in codes.attributes:
        t0 = time.perf_counter()
        labels = (codes.p_fit[a] > 0.5).float()
        top = stylespace.channels_from_labels(G, codes.fit, labels, top_k=1)[0]
        find_times.append(time.perf_counter() - t0)
        sign = torch.from_numpy(codes.sign[a]).float() * (1.0 if top.score > 0 else -1.0)
        styles = [s.clone() for s in s_test.tensor]
        styles[top.layer_index][:, top.channel] += sign * sigmas * stats.std[top.layer_index][top.channel]
        res[a] = _measure(codes, a, codes.readers.read(codes.readers.styles_images(styles)))
        metrics[f"stylespace_channel_score_{a}"] = top.score
        _log_result("stylespace", a, res[a], f" ({top.layer}[{top.channel}] score {top.score:+.2f})")
    metrics["stylespace_find_seconds"] = sum(find_times) / len(find_times)
    metrics["stylespace_sigmas"] = sigmas
    _summarise(metrics, "stylespace", res)


def _pick_candidates(readers: _Readers, ws, candidates, distance, attributes):
    """For every attribute, the candidate direction index and sign that raise its predicted probability most."""
    best = {a: (0, 1.0, -math.inf) for a in attributes}
    for k in range(candidates.shape[0]):
        v = candidates[k].to(ws).reshape(1, 1, -1)
        up, down = readers.predict(ws + distance * v), readers.predict(ws - distance * v)
        for a in attributes:
            gain = (up[a] - down[a]).mean().item()
            if abs(gain) > best[a][2]:
                best[a] = (k, 1.0 if gain > 0 else -1.0, abs(gain))
    return {a: (k, s) for a, (k, s, _) in best.items()}


def _summarise(metrics, method, results: dict) -> None:
    """The judge's figures with intervals, the predictor's former ones (``predictor_``) and the Fréchet distance."""
    for a, r in results.items():
        metrics.update(outcome_metrics(r.outcomes, method, a, changes=True))
        metrics[f"predictor_{method}_success_{a}"] = r.predictor[0]
        metrics[f"predictor_{method}_leakage_{a}"] = r.predictor[1]
        metrics[f"{method}_fd_edited_{a}"] = r.fd
    metrics.update(summary_metrics({a: r.outcomes for a, r in results.items()}, method))
    metrics[f"predictor_{method}_min_success"] = min(r.predictor[0] for r in results.values())
    metrics[f"predictor_{method}_mean_success"] = sum(r.predictor[0] for r in results.values()) / len(results)
    metrics[f"predictor_{method}_mean_leakage"] = sum(r.predictor[1] for r in results.values()) / len(results)
    metrics[f"{method}_fd_edited"] = sum(r.fd for r in results.values()) / len(results)
