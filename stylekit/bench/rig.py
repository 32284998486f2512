"""Rig control on toyfaces: does the rig network set the asked values, and only those, compared with InterFaceGAN
sliders moved to the same asked values?

Report codes: ``--n-test`` codes ``Latent.from_seed`` on report seeds from ``7,000,000 + --report-offset``
(default 7,600,000; ``report_seed_start`` / ``report_seed_count`` in the JSON). Every figure is read by the held-out
judge (:mod:`stylekit.judge`), never by the attribute predictor that trained the rig network and labels
InterFaceGAN's codes; tuning uses the predictor on development seeds (the trainer's own scores), never this.

For each rig value and each code one target is asked: a continuous value is drawn uniformly over the middle 90%
of its range at least :data:`MIN_SHIFT` (unit scale) away from the predictor's current reading (what a user
sees on the slider), a binary one is switched (asked 1 when the predictor reads below 0.5, else 0). Methods:

- ``rig``: :func:`stylekit.edit.rig.apply_rig` asked that one value;
- ``interfacegan``: the value's InterFaceGAN boundary (the library's preset protocol: ``--n-fit`` codes labelled
  by the predictor, extreme ``keep_fraction`` at each end, SVM; continuous values use the predictor's value as
  the score), the code moved along the normal the asked way just far enough that the predictor reads the asked
  value (binary: a probability of 0.9 / 0.1), found by bisection up to ``--max-sigmas`` standard deviations of
  the codes' signed distance: a slider set by a user who watches the same reading the rig network was trained
  on. Both methods are thus taken to the same asked value by the same predictor; the judge says how close each
  really came and what else moved;
- ``interfacegan_matched``: the same slider moved until the predictor reads what it reads of the rig network's
  edit of that code, so both methods made the same change by the predictor's reading (the same "success" as the
  rig network's, code by code), and their leakage compares like with like.

Metrics (``<method>`` is ``rig``, ``interfacegan`` or ``interfacegan_matched``; ``<value>`` a rig value; 95% bootstrap intervals on means,
Wilson on rates, suffixes ``_lo``, ``_hi``, ``_n``):

- ``<method>_error_<value>``: mean ``|judge reading - asked|`` of the value, unit scale (its range = 1);
- ``<method>_success_<value>`` (and ``_crossed_``, ``_face_ok_``, ``_kept_``): the edit success rule of
  :mod:`stylekit.bench.judging` with the asked direction as the sign;
- ``<method>_leakage_<value>``: mean ``|change|`` of the 14 other attributes (judge, unit scale);
- ``<method>_mean_error`` / ``_mean_success`` / ``_mean_leakage``: pooled over every rig value;
- ``diff_error_rig_minus_interfacegan``, ``diff_leakage_rig_minus_interfacegan`` and
  ``diff_leakage_rig_minus_interfacegan_matched``: paired per-sample differences pooled (negative favours the rig
  network);
- ``rig_recon_change``: asking every rig value at its current reading, the mean ``|change|`` of all 15 judge
  readings (0 is a perfect reconstruction), ``rig_recon_w_change`` the mean ``|delta|`` in standard deviations of W;
- ``predictor_<method>_error_<value>``: the predictor's own error (what the methods were steered by), for
  comparison; ``rig_seconds`` / ``interfacegan_seconds`` wall time of the edits (the slider's includes its
  bisection renders).
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import torch

from stylekit.bench.judging import DEFAULT_RULE, judge_readings, outcomes_from_readings
from stylekit.edit.presets import INTERFACEGAN

#: Report seeds start at ``REPORT_SEED_START + REPORT_OFFSET`` = 7,600,000.
REPORT_OFFSET = 600_000
#: The smallest asked move of a continuous value, unit scale (above the rule's target shift of 0.25).
MIN_SHIFT = 0.35
METHODS = ("rig", "interfacegan", "interfacegan_matched")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="toyfaces", help="generator (default: toyfaces)")
    parser.add_argument("--rig", default=None, help="rig network (name or file; default: the model's registered one)")
    parser.add_argument("--predictor", default="toyfaces", help="attribute predictor (the methods' reader)")
    parser.add_argument("--judge", default="toyfaces", help="held-out judge (name or file)")
    parser.add_argument("--n-test", type=int, default=200, help="report codes per rig value (default 200)")
    parser.add_argument("--report-offset", type=int, default=REPORT_OFFSET,
                        help=f"first report seed = 7,000,000 + this (default {REPORT_OFFSET})")
    parser.add_argument("--n-fit", type=int, default=INTERFACEGAN.n, help="InterFaceGAN labelled codes (preset)")
    parser.add_argument("--max-sigmas", type=float, default=6.0,
                        help="InterFaceGAN slider range, in std of the codes' signed distance (default 6)")
    parser.add_argument("--bisection-steps", type=int, default=8)
    parser.add_argument("--psi", type=float, default=1.0, help="truncation of the report codes")
    parser.add_argument("--seed", type=int, default=0, help="seed of InterFaceGAN's fitting codes")
    parser.add_argument("--quick", action="store_true", help="small run: 40 codes, 1,000 fitting codes")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--device", default="cpu")


def _log(msg: str) -> None:
    print(f"[bench rig] {msg}", file=sys.stderr, flush=True)


def run(args) -> dict[str, float]:
    import stylekit
    from stylekit import registry
    from stylekit.checkpoints.predictor import load_predictor
    from stylekit.edit.rig import load_rig
    from stylekit.judge import load_judge

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.n_test, args.n_fit = min(args.n_test, 40), min(args.n_fit, 1000)
    G = stylekit.load_generator(args.model, device=args.device)
    rig_name = args.rig or registry.companion(args.model, "rig") or args.model
    rignet = load_rig(rig_name, G=G, generator_name=args.model, device=args.device)
    predictor = load_predictor(args.predictor, device=args.device)
    judge = load_judge(args.judge, device=args.device)
    return evaluate(G, rignet, predictor, judge, n_test=args.n_test, report_offset=args.report_offset,
                    n_fit=args.n_fit, max_sigmas=args.max_sigmas, bisection_steps=args.bisection_steps, psi=args.psi,
                    seed=args.seed, batch_size=args.batch_size)


class _Reader:
    """Renders W+ codes in batches; reads them with the predictor (unit ``[N, A]``) or the judge."""

    def __init__(self, G, predictor, judge, batch_size):
        self.G, self.predictor, self.judge, self.batch_size = G, predictor, judge, batch_size
        self.rendered = 0

    @torch.no_grad()
    def images(self, ws: torch.Tensor) -> torch.Tensor:
        out = []
        for i in range(0, ws.shape[0], self.batch_size):
            out.append(self.G.synthesis(ws[i:i + self.batch_size], noise_mode="const"))
        self.rendered += ws.shape[0]
        return torch.cat(out)

    @torch.no_grad()
    def predict(self, ws: torch.Tensor) -> np.ndarray:
        img = self.images(ws)
        return torch.cat([self.predictor.predict_unit(img[i:i + self.batch_size])
                          for i in range(0, img.shape[0], self.batch_size)]).double().cpu().numpy()

    def judge_read(self, ws: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        return judge_readings(self.judge, self.images(ws), batch_size=self.batch_size)


def _targets(param, current: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Asked unit values ``[N]`` for current unit readings ``[N]`` (see the module docstring)."""
    if param.kind == "binary":
        return (current < 0.5).astype(np.float64)
    lo, hi = 0.05, 0.95
    out = np.empty_like(current)
    for i, c in enumerate(current):
        below = max(0.0, min(hi, c - MIN_SHIFT) - lo)   # length of [lo, c - shift]
        above = max(0.0, hi - max(lo, c + MIN_SHIFT))   # length of [c + shift, hi]
        u = rng.uniform(0.0, below + above)
        out[i] = lo + u if u < below else max(lo, c + MIN_SHIFT) + (u - below)
    return out


def _slider_strengths(reader: _Reader, ws, normal, column: int, goal, sign, s_max, steps):
    """Per code the smallest strength ``s`` in ``[0, s_max]`` (bisection, ``steps`` halvings) with which the
    predictor's unit reading ``column`` of ``ws + s * sign * normal`` reaches ``goal [N]`` (``sign [N]``: the way to
    go); ``s_max`` where it never does."""
    def reached(s):
        read = reader.predict(ws + torch.from_numpy(s * sign).float().view(-1, 1, 1) * normal)[:, column]
        return sign * (read - goal) >= 0

    lo, hi = np.zeros(ws.shape[0]), np.full(ws.shape[0], float(s_max))
    for _ in range(steps):
        mid = (lo + hi) / 2
        ok = reached(mid)
        hi, lo = np.where(ok, mid, hi), np.where(ok, lo, mid)
    return hi


def evaluate(G, rignet, predictor, judge, *, n_test=200, report_offset=REPORT_OFFSET,
             n_fit=INTERFACEGAN.n, max_sigmas=6.0, bisection_steps=8, psi=1.0, seed=0,
             batch_size=50) -> dict[str, float]:
    """The measurements behind :func:`run` (any generator with a rig network, the predictor it was trained with and
    the judge); see the module docstring for the metrics."""
    from stylekit.edit.interfacegan import fit_boundary
    from stylekit.edit.rig import apply_rig
    from stylekit.latent import Latent

    from .stats import mean_metrics, rate_metrics, report_seeds

    reader = _Reader(G, predictor, judge, batch_size)
    seeds = report_seeds(n_test, report_offset)
    test = Latent.from_seed(G, list(seeds), psi=psi)
    ws = test.tensor
    names = list(judge.attribute_names)
    pnames = list(predictor.attribute_names)
    before_pred = reader.predict(ws)
    before = reader.judge_read(ws)
    metrics: dict[str, float] = {"report_seed_start": seeds.start, "report_seed_count": len(seeds),
                                 "n_test": n_test, "n_fit": n_fit, "psi": psi,
                                 "max_sigmas": max_sigmas, "min_shift": MIN_SHIFT, "fit_seed": seed + 1,
                                 "rule_face_threshold": DEFAULT_RULE.face_threshold,
                                 "rule_binary_tolerance": DEFAULT_RULE.binary_tolerance,
                                 "rule_continuous_tolerance": DEFAULT_RULE.continuous_tolerance,
                                 "rule_target_shift": DEFAULT_RULE.target_shift}

    # --- reconstruction: every rig value asked at its current reading ---------------------------
    current = {p.name: p.from_unit(np.clip(before_pred[:, pnames.index(p.name)], 0, 1)) for p in rignet.rig}
    rec = apply_rig(G, rignet, test, current).tensor
    after_rec = reader.judge_read(rec)
    metrics.update(mean_metrics("rig_recon_change", np.abs(after_rec[0] - before[0]).mean(axis=1)))
    metrics.update(mean_metrics("rig_recon_w_change", ((rec - ws).abs() / rignet.w_std).mean(dim=(1, 2)).numpy()))
    _log(f"reconstruction: judge change {metrics['rig_recon_change']:.4f}, "
         f"W change {metrics['rig_recon_w_change']:.4f} std")

    # --- InterFaceGAN boundaries of the rig values (one labelled set serves all) ----------------
    t0 = time.perf_counter()
    fit = Latent.sample(G, n_fit, seed=seed + 1, psi=1.0)
    fit_read = reader.predict(fit.tensor)
    k = max(1, int(round(n_fit * INTERFACEGAN.keep_fraction)))
    boundaries = {}
    for p in rignet.rig:
        order = np.argsort(-fit_read[:, pnames.index(p.name)], kind="stable")
        keep = np.concatenate([order[:k], order[-k:]])
        labels = np.concatenate([np.ones(k), np.zeros(k)])
        boundaries[p.name] = fit_boundary(fit.select(keep.tolist()), labels, per_layer=False, name=p.name, seed=seed)
    metrics["interfacegan_fit_seconds"] = time.perf_counter() - t0

    pooled = {m: {"error": [], "success": [], "leakage": [], "face_ok": []} for m in METHODS}
    diffs = {"error": [], "leakage": [], "leakage_matched": []}
    seconds = {"rig": 0.0, "interfacegan": 0.0}
    for j, p in enumerate(rignet.rig):
        col_p, col_j = pnames.index(p.name), names.index(p.name)
        rng = np.random.default_rng(seeds.start + j)
        target = _targets(p, before_pred[:, col_p], rng)
        sign = np.where(target >= before_pred[:, col_p], 1.0, -1.0)
        if p.kind == "binary":
            sign = np.where(target > 0.5, 1.0, -1.0)
        t0 = time.perf_counter()
        edited = {"rig": apply_rig(G, rignet, test, {p.name: p.from_unit(target)}).tensor}
        seconds["rig"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        b = boundaries[p.name]
        normal = b.vector.to(ws.dtype).view(1, 1, -1)
        spread = float((fit.tensor[:, 0] @ b.vector.to(ws.dtype)).std())
        goal = np.where(sign > 0, 0.9, 0.1) if p.kind == "binary" else target
        s = _slider_strengths(reader, ws, normal, col_p, goal, sign, max_sigmas * spread, bisection_steps)
        edited["interfacegan"] = ws + torch.from_numpy(s * sign).float().view(-1, 1, 1) * normal
        seconds["interfacegan"] += time.perf_counter() - t0
        metrics[f"interfacegan_mean_sigmas_{p.name}"] = float(np.mean(s) / spread)
        metrics[f"interfacegan_at_limit_{p.name}"] = float(np.mean(s >= max_sigmas * spread * (1 - 1e-6)))
        # matched: the slider moved until the predictor reads what it reads of the rig network's edit
        rig_read = reader.predict(edited["rig"])[:, col_p]
        s = _slider_strengths(reader, ws, normal, col_p, rig_read, sign, max_sigmas * spread, bisection_steps)
        edited["interfacegan_matched"] = ws + torch.from_numpy(s * sign).float().view(-1, 1, 1) * normal
        errors = {}
        for m, w_edit in edited.items():
            after = reader.judge_read(w_edit)
            o = outcomes_from_readings(before, after, p.name, sign, names=names)
            err = np.abs(after[0][:, col_j] - target)
            errors[m] = (err, o["leakage"])
            metrics.update(mean_metrics(f"{m}_error_{p.name}", err))
            for rate in ("success", "crossed", "face_ok", "kept"):
                metrics.update(rate_metrics(f"{m}_{rate}_{p.name}", o[rate]))
            metrics.update(mean_metrics(f"{m}_leakage_{p.name}", o["leakage"]))
            metrics[f"predictor_{m}_error_{p.name}"] = float(np.abs(reader.predict(w_edit)[:, col_p] - target).mean())
            for key, value in (("error", err), ("success", o["success"]), ("leakage", o["leakage"]),
                               ("face_ok", o["face_ok"])):
                pooled[m][key].append(value)
        diffs["error"].append(errors["rig"][0] - errors["interfacegan"][0])
        diffs["leakage"].append(errors["rig"][1] - errors["interfacegan"][1])
        diffs["leakage_matched"].append(errors["rig"][1] - errors["interfacegan_matched"][1])
        _log(f"{p.name}: " + "; ".join(
            f"{m} error {metrics[f'{m}_error_{p.name}']:.3f} success {metrics[f'{m}_success_{p.name}']:.2f} "
            f"leakage {metrics[f'{m}_leakage_{p.name}']:.4f}" for m in METHODS))
    for m in METHODS:
        metrics.update(mean_metrics(f"{m}_mean_error", np.concatenate(pooled[m]["error"])))
        metrics.update(rate_metrics(f"{m}_mean_success", np.concatenate(pooled[m]["success"])))
        metrics.update(mean_metrics(f"{m}_mean_leakage", np.concatenate(pooled[m]["leakage"])))
        metrics.update(rate_metrics(f"{m}_mean_face_ok", np.concatenate(pooled[m]["face_ok"])))
        if m in seconds:
            metrics[f"{m}_seconds"] = seconds[m]
    metrics.update(mean_metrics("diff_error_rig_minus_interfacegan", np.concatenate(diffs["error"])))
    metrics.update(mean_metrics("diff_leakage_rig_minus_interfacegan", np.concatenate(diffs["leakage"])))
    metrics.update(mean_metrics("diff_leakage_rig_minus_interfacegan_matched",
                                np.concatenate(diffs["leakage_matched"])))
    metrics["images_rendered"] = reader.rendered
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}
