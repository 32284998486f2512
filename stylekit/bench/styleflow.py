"""StyleFlow on toyfaces: does setting one attribute with the flow change it, and only it, compared with InterFaceGAN
sliders moved to the same asked values; and how far does a sequence of three edits drift?

Report codes: ``--n-test`` codes ``Latent.from_seed`` on report seeds from ``7,000,000 + --report-offset`` (default
7,800,000; ``report_seed_start`` / ``report_seed_count`` in the JSON). Every figure is read by the held-out judge
(:mod:`stylekit.judge`), which never trained, tuned or selected the flow (trained on the latents' ground truth, its
settings fixed before this benchmark ran); the attribute predictor reads the source attributes StyleFlow maps with
(binary readings snapped to 0 / 1) and labels InterFaceGAN's codes.

**Single edits.** For each attribute and each code one target is asked (as in ``bench rig``): a continuous value
drawn uniformly over the middle 90% of its range at least ``MIN_SHIFT`` (unit scale) from the predictor's current
reading, a binary one switched. Methods:

- ``styleflow``: :func:`stylekit.edit.styleflow.styleflow_edit`, the one attribute set, the others kept at their
  read values;
- ``interfacegan``: the attribute's InterFaceGAN boundary (``--n-fit`` codes, extreme ``keep_fraction`` at each
  end, SVM, the library's preset protocol), labelled like the flow's training codes (``--ifg-labels flow``: the
  latents' ground truth for the shipped toyfaces flow, so both methods learn from the same labels; ``predictor``:
  the attribute predictor, the library's default labeller), the code moved along the normal just far enough that
  the predictor reads the asked value (binary: 0.9 / 0.1), by bisection up to ``--max-sigmas``;
- ``interfacegan_matched``: the same slider moved until the predictor reads what it reads of StyleFlow's edit, so
  both made the same change by the predictor's reading and their leakage compares like with like.

**Sequences of three edits.** Each code gets three different attributes (drawn per code) and a target for each,
asked one after another: StyleFlow with :func:`~stylekit.edit.styleflow.styleflow_sequence` (each step keeps the
values set before it), InterFaceGAN by moving each slider in turn from the previous step's code to the asked value.

Metrics (95% bootstrap intervals on means, Wilson on rates; suffixes ``_lo``, ``_hi``, ``_n``):

- ``<method>_error_<attr>``, ``<method>_success_<attr>`` (and ``_crossed_``, ``_face_ok_``, ``_kept_``),
  ``<method>_leakage_<attr>`` (mean ``|change|`` of the 14 other attributes), and ``<method>_mean_*`` pooled;
  success is the rule of :mod:`stylekit.bench.judging`;
- ``diff_error_styleflow_minus_interfacegan``, ``diff_leakage_styleflow_minus_interfacegan`` and
  ``diff_leakage_styleflow_minus_interfacegan_matched``: paired differences pooled (negative favours StyleFlow);
- ``seq_<method>_drift``: after the three edits, the mean ``|change|`` of the 12 attributes never asked (the
  face's identity in this world), judge, unit scale; ``seq_<method>_error``: mean ``|judge - asked|`` of the three
  asked attributes at the end (do earlier edits survive later ones?); ``seq_<method>_face_ok``: the face rule at
  the end; ``seq_diff_drift_styleflow_minus_interfacegan``;
- ``styleflow_seconds`` / ``interfacegan_seconds``: wall time of the single edits (the slider's includes its
  bisection renders).
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import torch

from stylekit.bench.judging import DEFAULT_RULE, outcomes_from_readings
from stylekit.bench.rig import MIN_SHIFT, _Reader, _slider_strengths, _targets
from stylekit.edit.presets import INTERFACEGAN

#: Report seeds start at ``REPORT_SEED_START + REPORT_OFFSET`` = 7,800,000.
REPORT_OFFSET = 800_000
METHODS = ("styleflow", "interfacegan", "interfacegan_matched")
SEQUENCE_METHODS = ("styleflow", "interfacegan")
#: ``--quick``'s attributes (two binary, three continuous).
QUICK_ATTRIBUTES = "smile,yaw,hair_length,glasses,eyes_open"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="toyfaces", help="generator (default: toyfaces)")
    parser.add_argument("--flow", default=None, help="StyleFlow flow (name or file; default: the model's registered)")
    parser.add_argument("--predictor", default="toyfaces", help="attribute predictor (source readings, InterFaceGAN)")
    parser.add_argument("--judge", default="toyfaces", help="held-out judge (name or file)")
    parser.add_argument("--attributes", default="", help="comma-separated attributes to edit (default: all the flow's)")
    parser.add_argument("--n-test", type=int, default=200, help="report codes per attribute (default 200)")
    parser.add_argument("--report-offset", type=int, default=REPORT_OFFSET,
                        help=f"first report seed = 7,000,000 + this (default {REPORT_OFFSET})")
    parser.add_argument("--n-fit", type=int, default=INTERFACEGAN.n, help="InterFaceGAN labelled codes (preset)")
    parser.add_argument("--ifg-labels", choices=("flow", "predictor"), default="flow",
                        help="InterFaceGAN's labels: the flow's own labeller (toyfaces: the latents' ground truth; "
                             "default) or the attribute predictor")
    parser.add_argument("--max-sigmas", type=float, default=6.0,
                        help="InterFaceGAN slider range, in std of the codes' signed distance (default 6)")
    parser.add_argument("--bisection-steps", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0, help="seed of InterFaceGAN's fitting codes")
    parser.add_argument("--quick", action="store_true", help=f"small run: 40 codes, 1,000 fitting codes, attributes "
                                                             f"{QUICK_ATTRIBUTES}")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--device", default="cpu")


def _log(msg: str) -> None:
    print(f"[bench styleflow] {msg}", file=sys.stderr, flush=True)


def run(args) -> dict[str, float]:
    import stylekit
    from stylekit import registry
    from stylekit.checkpoints.predictor import load_predictor
    from stylekit.edit.styleflow import load_flow
    from stylekit.errors import InvalidArgumentError
    from stylekit.judge import load_judge

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.n_test, args.n_fit = min(args.n_test, 40), min(args.n_fit, 1000)
        args.attributes = args.attributes or QUICK_ATTRIBUTES
    G = stylekit.load_generator(args.model, device=args.device)
    name = args.flow or registry.companion(args.model, "styleflow") or args.model
    flow = load_flow(name, G=G, generator_name=args.model, device=args.device)
    attrs = [a.strip() for a in args.attributes.split(",") if a.strip()] or list(flow.attribute_names)
    unknown = [a for a in attrs if a not in flow.attribute_names]
    if unknown:
        raise InvalidArgumentError(f"--attributes {unknown} are not the flow's; it has "
                                   f"{', '.join(flow.attribute_names)}.")
    if len(attrs) < 3:
        raise InvalidArgumentError("--attributes needs at least three attributes (the sequences edit three).")
    predictor = load_predictor(args.predictor, device=args.device)
    judge = load_judge(args.judge, device=args.device)
    truth = args.ifg_labels == "flow" and getattr(flow, "meta", {}).get("labeller") == "truth"
    return evaluate(G, flow, predictor, judge, attributes=attrs, n_test=args.n_test, ifg_truth=truth,
                    report_offset=args.report_offset, n_fit=args.n_fit, max_sigmas=args.max_sigmas,
                    bisection_steps=args.bisection_steps, seed=args.seed, batch_size=args.batch_size)


def _fit_boundaries(reader, G, params, pnames, n_fit, seed, truth):
    """Per attribute ``(normal [1, 1, D], std of the fitting codes' signed distance)``; labels from the predictor or
    (``truth``) the toyfaces latents' ground truth."""
    from stylekit.edit.interfacegan import fit_boundary
    from stylekit.latent import Latent
    from stylekit.toyfaces.attributes import ATTRIBUTE_NAMES, attributes_to_unit
    from stylekit.toyfaces.latents import z_to_attributes

    z = Latent.sample(G, n_fit, seed=seed + 1, space="z").tensor  # the codes Latent.sample(seed + 1) maps
    fit = Latent.from_z(G, z, psi=1.0)
    if truth:
        scores, columns = attributes_to_unit(z_to_attributes(z)), list(ATTRIBUTE_NAMES)
    else:
        scores, columns = reader.predict(fit.tensor), pnames
    k = max(1, int(round(n_fit * INTERFACEGAN.keep_fraction)))
    out = {}
    for p in params:
        order = np.argsort(-scores[:, columns.index(p.name)], kind="stable")
        keep = np.concatenate([order[:k], order[-k:]])
        labels = np.concatenate([np.ones(k), np.zeros(k)])
        b = fit_boundary(fit.select(keep.tolist()), labels, per_layer=False, name=p.name, seed=seed)
        normal = b.vector.to(fit.tensor.dtype)
        out[p.name] = (normal.view(1, 1, -1), float((fit.tensor[:, 0] @ normal).std()))
    return out


def _slide(reader, ws, boundary, col, goal, sign, max_sigmas, steps):
    """``ws`` moved along the boundary's normal until the predictor reads ``goal`` (see :func:`_slider_strengths`)."""
    normal, spread = boundary
    s = _slider_strengths(reader, ws, normal, col, goal, sign, max_sigmas * spread, steps)
    return ws + torch.from_numpy(s * sign).float().view(-1, 1, 1) * normal, s / spread


def _goal_and_sign(param, target, now):
    """The predictor reading a slider aims at and the way it goes, per code."""
    if param.kind == "binary":
        sign = np.where(target > 0.5, 1.0, -1.0)
        return np.where(sign > 0, 0.9, 0.1), sign
    return target, np.where(target >= now, 1.0, -1.0)


def evaluate(G, flow, predictor, judge, *, attributes, n_test=200, report_offset=REPORT_OFFSET, ifg_truth=False,
             n_fit=INTERFACEGAN.n, max_sigmas=6.0, bisection_steps=8, seed=0, batch_size=50) -> dict[str, float]:
    """The measurements behind :func:`run`; see the module docstring."""
    from stylekit.edit.styleflow import read_attributes, styleflow_edit
    from stylekit.latent import Latent

    from .stats import mean_metrics, rate_metrics, report_seeds

    reader = _Reader(G, predictor, judge, batch_size)
    seeds = report_seeds(n_test, report_offset)
    test = Latent.from_seed(G, list(seeds), psi=1.0)
    ws = test.tensor
    names, pnames = list(judge.attribute_names), list(predictor.attribute_names)
    params = [flow.attributes[flow.attribute_names.index(a)] for a in attributes]
    before_pred = reader.predict(ws)
    before = reader.judge_read(ws)
    source = read_attributes(G, flow, test, predictor)
    metrics: dict[str, float] = {"report_seed_start": seeds.start, "report_seed_count": len(seeds), "n_test": n_test,
                                 "n_fit": n_fit, "n_attributes": len(params), "max_sigmas": max_sigmas,
                                 "min_shift": MIN_SHIFT, "fit_seed": seed + 1, "ifg_labels_truth": int(ifg_truth),
                                 "rule_face_threshold": DEFAULT_RULE.face_threshold,
                                 "rule_binary_tolerance": DEFAULT_RULE.binary_tolerance,
                                 "rule_continuous_tolerance": DEFAULT_RULE.continuous_tolerance,
                                 "rule_target_shift": DEFAULT_RULE.target_shift}
    t0 = time.perf_counter()
    boundaries = _fit_boundaries(reader, G, params, pnames, n_fit, seed, ifg_truth)
    metrics["interfacegan_fit_seconds"] = time.perf_counter() - t0

    # --- single edits ----------------------------------------------------------------------------
    pooled = {m: {"error": [], "success": [], "leakage": [], "face_ok": []} for m in METHODS}
    diffs = {"error": [], "leakage": [], "leakage_matched": []}
    seconds = {"styleflow": 0.0, "interfacegan": 0.0}
    for j, p in enumerate(params):
        col_p, col_j = pnames.index(p.name), names.index(p.name)
        target = _targets(p, before_pred[:, col_p], np.random.default_rng(seeds.start + j))
        goal, sign = _goal_and_sign(p, target, before_pred[:, col_p])
        t0 = time.perf_counter()
        edited = {"styleflow": styleflow_edit(G, flow, test, {p.name: p.from_unit(target)}, source=source,
                                              check=False).tensor}
        seconds["styleflow"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        edited["interfacegan"], s = _slide(reader, ws, boundaries[p.name], col_p, goal, sign, max_sigmas,
                                           bisection_steps)
        seconds["interfacegan"] += time.perf_counter() - t0
        metrics[f"interfacegan_mean_sigmas_{p.name}"] = float(np.mean(s))
        flow_read = reader.predict(edited["styleflow"])[:, col_p]
        edited["interfacegan_matched"], _ = _slide(reader, ws, boundaries[p.name], col_p, flow_read, sign, max_sigmas,
                                                   bisection_steps)
        per = {}
        for m, w_edit in edited.items():
            after = reader.judge_read(w_edit)
            o = outcomes_from_readings(before, after, p.name, sign, names=names)
            err = np.abs(after[0][:, col_j] - target)
            per[m] = (err, o["leakage"])
            metrics.update(mean_metrics(f"{m}_error_{p.name}", err))
            for rate in ("success", "crossed", "face_ok", "kept"):
                metrics.update(rate_metrics(f"{m}_{rate}_{p.name}", o[rate]))
            metrics.update(mean_metrics(f"{m}_leakage_{p.name}", o["leakage"]))
            for key, value in (("error", err), ("success", o["success"]), ("leakage", o["leakage"]),
                               ("face_ok", o["face_ok"])):
                pooled[m][key].append(value)
        diffs["error"].append(per["styleflow"][0] - per["interfacegan"][0])
        diffs["leakage"].append(per["styleflow"][1] - per["interfacegan"][1])
        diffs["leakage_matched"].append(per["styleflow"][1] - per["interfacegan_matched"][1])
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
    metrics.update(mean_metrics("diff_error_styleflow_minus_interfacegan", np.concatenate(diffs["error"])))
    metrics.update(mean_metrics("diff_leakage_styleflow_minus_interfacegan", np.concatenate(diffs["leakage"])))
    metrics.update(mean_metrics("diff_leakage_styleflow_minus_interfacegan_matched",
                                np.concatenate(diffs["leakage_matched"])))

    # --- sequences of three edits ----------------------------------------------------------------
    metrics.update(_sequences(G, flow, reader, test, before, before_pred, source, params, boundaries, names, pnames,
                              max_sigmas=max_sigmas, bisection_steps=bisection_steps, rng_seed=seeds.start + 999))
    metrics["images_rendered"] = reader.rendered
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}


def _sequences(G, flow, reader, test, before, before_pred, source, params, boundaries, names, pnames, *, max_sigmas,
               bisection_steps, rng_seed) -> dict[str, float]:
    """The sequence part of :func:`evaluate`: three attributes per code, asked one after another."""
    from stylekit.edit.styleflow import styleflow_sequence

    from .stats import mean_metrics, rate_metrics

    n = test.batch_size
    rng = np.random.default_rng(rng_seed)
    picks = np.stack([rng.choice(len(params), size=3, replace=False) for _ in range(n)])  # [N, 3]
    targets = np.zeros((n, 3))
    for k in range(3):
        for j, p in enumerate(params):
            rows = np.flatnonzero(picks[:, k] == j)
            if rows.size:
                targets[rows, k] = _targets(p, before_pred[rows, pnames.index(p.name)], rng)
    # StyleFlow: one call, the attribute vector carried from step to step
    steps = []
    for k in range(3):
        step = {}
        for j, p in enumerate(params):
            # codes not asked this attribute at this step keep the value they have (read, or set earlier)
            value = p.to_unit(source[p.name])
            for kk in range(k + 1):
                value = np.where(picks[:, kk] == j, targets[:, kk], value)
            step[p.name] = p.from_unit(value)
        steps.append(step)
    final = {"styleflow": styleflow_sequence(G, flow, test, steps, source=source, check=False)[-1].tensor}
    # InterFaceGAN: each slider in turn, from the previous step's code
    ws = test.tensor.clone()
    for k in range(3):
        now = reader.predict(ws)
        for j, p in enumerate(params):
            rows = np.flatnonzero(picks[:, k] == j)
            if not rows.size:
                continue
            col = pnames.index(p.name)
            goal, sign = _goal_and_sign(p, targets[rows, k], now[rows, col])
            ws[rows], _ = _slide(reader, ws[rows], boundaries[p.name], col, goal, sign, max_sigmas, bisection_steps)
    final["interfacegan"] = ws
    asked_cols = np.array([[names.index(params[j].name) for j in row] for row in picks])  # [N, 3]
    out, drift = {}, {}
    for m, w_final in final.items():
        unit, face = reader.judge_read(w_final)
        change = np.abs(unit - before[0])
        never = np.ones_like(change, dtype=bool)
        np.put_along_axis(never, asked_cols, False, axis=1)
        drift[m] = (change * never).sum(1) / never.sum(1)
        err = np.abs(np.take_along_axis(unit, asked_cols, axis=1) - targets).mean(1)
        out.update(mean_metrics(f"seq_{m}_drift", drift[m]))
        out.update(mean_metrics(f"seq_{m}_error", err))
        out.update(rate_metrics(f"seq_{m}_face_ok", face >= DEFAULT_RULE.face_threshold))
    out.update(mean_metrics("seq_diff_drift_styleflow_minus_interfacegan", drift["styleflow"] - drift["interfacegan"]))
    _log("sequences: " + "; ".join(f"{m} drift {out[f'seq_{m}_drift']:.4f} error {out[f'seq_{m}_error']:.3f}"
                                   for m in SEQUENCE_METHODS))
    return out
