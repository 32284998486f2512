"""The edit success rule: did an edit change what it was asked to, keep a face, and leave the rest alone?

Every editing benchmark (``bench editing``, ``bench text``) judges with the held-out judge
(:mod:`stylekit.judge`), never with the attribute predictor the generator was trained against and the
methods are labelled with. An edit of one sample **succeeds** when all three hold:

- ``crossed``: the target attribute moved as asked. A binary target (a probability) ends on the asked
  side of 0.5 (``sign=+1``: above, ``-1``: below); a continuous target moves at least
  :attr:`EditRule.target_shift` of its range the asked way (and ends beyond ``target_threshold`` when
  one is given, e.g. "smiling" at the captions' calm/smiling boundary);
- ``face_ok``: the judge's face score of the edited image is at least :attr:`EditRule.face_threshold`;
- ``kept``: every *other* attribute, continuous ones included, moves less than its tolerance
  (:attr:`EditRule.binary_tolerance` in probability, :attr:`EditRule.continuous_tolerance` in unit
  scale, i.e. as a fraction of the attribute's range).

``leakage`` is the mean absolute unit-scale change over all other attributes (binaries as
probabilities), per sample. A flat grey "edit" fails ``face_ok`` (the judge is trained to reject flat
colours, noise, blur and scrambled faces), so it scores success 0 whatever its attribute readings.

- :class:`EditRule`, :func:`judge_pass` / :func:`judge_readings` (batched readings), :func:`outcomes_from_readings`,
  :func:`edit_outcomes`;
- :func:`outcome_metrics` / :func:`summary_metrics`: flat JSON keys with 95% intervals
  (:mod:`stylekit.bench.stats`: Wilson for rates, bootstrap for means);
- :func:`planted_edits`: perfect edits drawn by the renderer: the rule's ceiling and the judge's cross-talk;
- :func:`repeat_noise`: how much the judge's readings move between two renderings of the same code;
- :func:`edit_frechet`: Fréchet distance, in judge features, of an edited set to toyfaces renders,
  beside the unedited set's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch

from ..judge import FACE_THRESHOLD
from ..toyfaces.attributes import ATTRIBUTES
from .stats import mean_metrics, rate_metrics

__all__ = ["EditRule", "DEFAULT_RULE", "OUTCOME_RATES", "PLANTED", "judge_pass", "judge_readings",
           "outcomes_from_readings", "edit_outcomes", "outcome_metrics", "summary_metrics", "planted_edits",
           "repeat_noise", "edit_frechet"]

#: The per-sample yes/no outcomes, reported as rates with Wilson intervals.
OUTCOME_RATES = ("success", "crossed", "face_ok", "kept")


@dataclass(frozen=True)
class EditRule:
    """The thresholds of the edit success rule (all on the judge's unit scale, ``[0, 1]`` per attribute).

    The tolerances are set by how much the judge's readings of the *other* attributes move under a perfect
    edit: :func:`planted_edits` renders faces, then the same faces with one binary attribute switched and
    nothing else (the renderer's attributes are independent), so every change the judge reads in another
    attribute is its own cross-talk. Measured on development renders (attributes seeds 1000-1011, 400 faces
    per planted edit, ten binary switches both ways plus smile and hair length): the 99th percentile of that
    cross-talk is 0.44 pooled over binary attributes (beard, eyes and mouth move most: 0.60, 0.56, 0.44 at
    their own 99th percentiles, e.g. a beard's reading when glasses are drawn) and 0.18 over continuous ones
    (smile 0.27, yaw 0.21, skin tone 0.16). Pixel noise moves the readings far less (99th percentile 0.02,
    :func:`repeat_noise`). ``bench editing`` re-measures both on its report seeds (``judge_crosstalk_p99_*``,
    ``judge_noise_p99_*``) and reports ``planted_success_<attr>``, what a perfect edit scores under the rule.

    face_threshold: the judge's face score an edited image must reach (:data:`stylekit.judge.FACE_THRESHOLD`,
        0.5: the judge's own decision boundary between toy faces and its negatives).
    binary_tolerance: 0.5. How far another binary attribute's probability may move: half the scale, a flip
        from certain to undecided. Above the judge's pooled binary cross-talk (0.44 at the 99th percentile),
        so a perfect edit is not failed for what the judge imagines; any attribute switched on or off
        (a move of about 1) fails.
    continuous_tolerance: 0.25. How far another continuous attribute may move, as a fraction of its range:
        12.5 degrees of roll, 15 of yaw, 5% of the image width of position, 45 degrees of light direction,
        0.5 of smile, a quarter of the skin-tone or hair-lightness scale. Above the judge's pooled
        continuous cross-talk (0.18 at the 99th, 0.21 at the 99.5th percentile); a finer tolerance would
        fail perfect edits (0.1 failed half of them) for the judge's imprecision, not the edit's. Smaller
        drifts still show in ``leakage`` and the per-attribute changes.
    target_shift: 0.25. How far a continuous target must move (unit scale) to count as crossed: the
        continuous tolerance, so a move that would count as leakage on another attribute counts as an edit
        on the target, and the judge's cross-talk alone does not.
    """

    face_threshold: float = FACE_THRESHOLD
    binary_tolerance: float = 0.5
    continuous_tolerance: float = 0.25
    target_shift: float = 0.25

    def tolerances(self, names: Sequence[str] | None = None) -> np.ndarray:
        """Per-attribute tolerance ``[A]`` in :data:`~stylekit.toyfaces.attributes.ATTRIBUTES` order (or ``names``)."""
        kinds = {s.name: s.kind for s in ATTRIBUTES}
        names = list(names) if names is not None else [s.name for s in ATTRIBUTES]
        return np.array([self.binary_tolerance if kinds[n] == "binary" else self.continuous_tolerance
                         for n in names])


DEFAULT_RULE = EditRule()


@torch.no_grad()
def judge_pass(judge, images: torch.Tensor, *, batch_size: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One pass of the judge over ``images [N, 3, H, W]`` in ``[-1, 1]``: ``(unit [N, A], face [N], features [N, F])``
    (float64; unit and face as :meth:`stylekit.judge.Judge.read_unit`, features as ``Judge.features``)."""
    units, faces, feats = [], [], []
    for i in range(0, images.shape[0], batch_size):
        f = judge.features(images[i:i + batch_size])
        unit, face = judge.split(judge.out(f))
        units.append(unit.double().cpu().numpy())
        faces.append(face.double().cpu().numpy())
        feats.append(f.double().cpu().numpy())
    return np.concatenate(units), np.concatenate(faces), np.concatenate(feats)


def judge_readings(judge, images: torch.Tensor, *, batch_size: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """The judge's readings of ``images [N, 3, H, W]`` in ``[-1, 1]``: ``(unit [N, A] float64, face [N] float64)``."""
    return judge_pass(judge, images, batch_size=batch_size)[:2]


def outcomes_from_readings(before: tuple[np.ndarray, np.ndarray], after: tuple[np.ndarray, np.ndarray],
                           target: str, sign, rule: EditRule = DEFAULT_RULE, *, names: Sequence[str] | None = None,
                           target_threshold: float | None = None) -> dict[str, np.ndarray]:
    """The rule applied to judge readings ``(unit [N, A], face [N])`` of the same ``N`` samples before and after.

    Args:
        target: the attribute the edit was asked to change (one of ``names``).
        sign: ``+1`` (turn on / increase) or ``-1`` (turn off / decrease), a number or an array ``[N]``.
        names: the attribute order of the ``A`` columns (default: the toyfaces attributes).
        target_threshold: a continuous target must also end beyond this unit-scale value (``sign`` side).

    Returns:
        dict of numpy arrays ``[N]``: ``crossed``, ``face_ok``, ``kept``, ``success`` (bool), ``leakage``
        (mean ``|change|`` over the other attributes), ``target_move`` (the target's change times ``sign``),
        ``worst_excess`` (the largest ``|change| / tolerance`` over the other attributes; kept iff < 1),
        ``face_before`` / ``face_after`` and ``change_<name>`` (signed unit-scale change) for every attribute.
    """
    names = list(names) if names is not None else [s.name for s in ATTRIBUTES]
    u0, f0 = (np.asarray(x, dtype=np.float64) for x in before)
    u1, f1 = (np.asarray(x, dtype=np.float64) for x in after)
    shapes_ok = u0.ndim == 2 and u0.shape == u1.shape and u0.shape[1] == len(names)
    if not shapes_ok or f0.shape != (u0.shape[0],) or f1.shape != f0.shape:
        raise ValueError(f"readings must be [N, {len(names)}] and [N] alike before and after, got "
                         f"{u0.shape}/{f0.shape} and {u1.shape}/{f1.shape}")
    if target not in names:
        raise ValueError(f"unknown target {target!r}; the readings have {names}")
    n = u0.shape[0]
    sign = np.broadcast_to(np.sign(np.asarray(sign, dtype=np.float64)), (n,))
    if not np.all(np.abs(sign) == 1):
        raise ValueError("sign must be +1 or -1 for every sample")
    t = names.index(target)
    delta = u1 - u0
    kind = {s.name: s.kind for s in ATTRIBUTES}[target]
    move = sign * delta[:, t]
    if kind == "binary":
        crossed = np.where(sign > 0, u1[:, t] > 0.5, u1[:, t] < 0.5)
    else:
        crossed = move >= rule.target_shift
        if target_threshold is not None:
            crossed &= np.where(sign > 0, u1[:, t] > target_threshold, u1[:, t] < target_threshold)
    others = [j for j in range(len(names)) if j != t]
    excess = np.abs(delta[:, others]) / rule.tolerances([names[j] for j in others])[None, :]
    worst = excess.max(axis=1) if others else np.zeros(n)
    kept = worst < 1.0
    face_ok = f1 >= rule.face_threshold
    out = {"crossed": crossed, "face_ok": face_ok, "kept": kept, "success": crossed & face_ok & kept,
           "leakage": np.abs(delta[:, others]).mean(axis=1) if others else np.zeros(n), "target_move": move,
           "worst_excess": worst, "face_before": f0, "face_after": f1}
    out.update({f"change_{name}": delta[:, j] for j, name in enumerate(names)})
    return out


def edit_outcomes(judge, before: torch.Tensor, after: torch.Tensor, target: str, sign, rule: EditRule = DEFAULT_RULE,
                  *, target_threshold: float | None = None, batch_size: int = 100) -> dict[str, np.ndarray]:
    """The rule on images: ``before`` / ``after`` ``[N, 3, H, W]`` in ``[-1, 1]``, sample ``i`` of ``after`` being
    the edit of sample ``i`` of ``before``. See :func:`outcomes_from_readings` for ``sign`` and the result."""
    if before.shape[0] != after.shape[0]:
        raise ValueError(f"before and after must hold the same samples, got {before.shape[0]} and {after.shape[0]}")
    return outcomes_from_readings(judge_readings(judge, before, batch_size=batch_size),
                                  judge_readings(judge, after, batch_size=batch_size), target, sign, rule,
                                  names=list(judge.attribute_names), target_threshold=target_threshold)


def outcome_metrics(outcomes: Mapping[str, np.ndarray], method: str, what: str, *,
                    changes: bool = False) -> dict[str, float]:
    """Flat metrics of one edit (``method`` on ``what``, e.g. ``interfacegan`` / ``glasses``):
    ``<method>_<rate>_<what>`` for every rate of :data:`OUTCOME_RATES` (Wilson interval: ``_lo``, ``_hi``,
    ``_n``), ``<method>_leakage_<what>`` and ``<method>_face_<what>`` (the edited face score; bootstrap
    intervals), and with ``changes`` ``<method>_change_<attribute>_<what>``: the mean ``|change|`` of each
    attribute."""
    out: dict[str, float] = {}
    for rate in OUTCOME_RATES:
        out.update(rate_metrics(f"{method}_{rate}_{what}", outcomes[rate]))
    out.update(mean_metrics(f"{method}_leakage_{what}", outcomes["leakage"]))
    out.update(mean_metrics(f"{method}_face_{what}", outcomes["face_after"]))
    if changes:
        for key, value in outcomes.items():
            if key.startswith("change_"):
                out[f"{method}_change_{key[len('change_'):]}_{what}"] = float(np.abs(value).mean())
    return out


def summary_metrics(by_target: Mapping[str, Mapping[str, np.ndarray]], method: str) -> dict[str, float]:
    """Across targets: ``<method>_min_success`` (the worst target's rate, with its Wilson interval),
    ``<method>_mean_success`` and ``<method>_mean_leakage`` over every edited sample pooled (intervals as if the
    samples were independent; targets share their test codes, so read them as a guide)."""
    rates = {t: float(np.mean(o["success"])) for t, o in by_target.items()}
    worst = min(rates, key=rates.get)
    out = rate_metrics(f"{method}_min_success", by_target[worst]["success"])
    out.update(rate_metrics(f"{method}_mean_success", np.concatenate([o["success"] for o in by_target.values()])))
    out.update(mean_metrics(f"{method}_mean_leakage", np.concatenate([o["leakage"] for o in by_target.values()])))
    out.update(rate_metrics(f"{method}_mean_face_ok", np.concatenate([o["face_ok"] for o in by_target.values()])))
    return out


#: The perfect edits of :func:`planted_edits`: (binary attribute, value before, value after).
PLANTED = (("glasses", 0.0, 1.0), ("beard", 0.0, 1.0), ("red_hair", 0.0, 1.0), ("mouth_open", 0.0, 1.0),
           ("eyes_open", 1.0, 0.0))


def planted_edits(judge, *, n: int = 100, seed: int, size: int = 64, rule: EditRule = DEFAULT_RULE,
                  batch_size: int = 100) -> dict[str, float]:
    """The rule's ceiling and the judge's cross-talk, from perfect edits drawn by the renderer.

    For each ``(attribute, off, on)`` of :data:`PLANTED`: ``n`` renders ``[n, 3, size, size]`` with attributes
    sampled with ``seed + k`` and the attribute set to ``off``, and the same faces (same pixel noise) with it set
    to ``on``. Returns ``planted_success_<attribute>`` (Wilson interval; what a perfect edit scores under
    ``rule``), ``judge_crosstalk_p99_binary`` / ``judge_crosstalk_p99_continuous`` (99th percentile of the other
    attributes' ``|change|``, pooled by kind) and ``planted_leakage`` (mean leakage over all of them)."""
    from ..toyfaces.attributes import sample_attributes
    from ..toyfaces.renderer import render_batch

    names = list(judge.attribute_names)
    kinds = {s.name: s.kind for s in ATTRIBUTES}
    out: dict[str, float] = {}
    binary, continuous, leakage = [], [], []
    for k, (target, off, on) in enumerate(PLANTED):
        attrs = sample_attributes(n, seed=seed + k)
        pixel_seeds = np.arange(seed, seed + n)
        before = render_batch(dict(attrs, **{target: np.full(n, off)}), size=size, seeds=pixel_seeds)
        after = render_batch(dict(attrs, **{target: np.full(n, on)}), size=size, seeds=pixel_seeds)
        o = edit_outcomes(judge, before, after, target, 1 if on > off else -1, rule, batch_size=batch_size)
        out.update(rate_metrics(f"planted_success_{target}", o["success"]))
        leakage.append(o["leakage"])
        for name in names:
            if name != target:
                (binary if kinds[name] == "binary" else continuous).append(np.abs(o[f"change_{name}"]))
    out["judge_crosstalk_p99_binary"] = float(np.percentile(np.concatenate(binary), 99))
    out["judge_crosstalk_p99_continuous"] = float(np.percentile(np.concatenate(continuous), 99))
    out["planted_leakage"] = float(np.concatenate(leakage).mean())
    return out


def repeat_noise(judge, first: torch.Tensor, second: torch.Tensor, *, names: Sequence[str] | None = None,
                 batch_size: int = 100) -> dict[str, float]:
    """How far the judge's readings move between two renderings ``first`` / ``second`` ``[N, 3, H, W]`` of the same
    faces (e.g. a generator's codes with two noise draws): the 99th percentile of ``|change|`` pooled over binary
    attributes (``judge_noise_p99_binary``) and over continuous ones (``judge_noise_p99_continuous``), and the
    largest per-attribute 99th percentile (``judge_noise_p99_max``)."""
    names = list(names) if names is not None else list(judge.attribute_names)
    u0, _ = judge_readings(judge, first, batch_size=batch_size)
    u1, _ = judge_readings(judge, second, batch_size=batch_size)
    d = np.abs(u1 - u0)
    kinds = {s.name: s.kind for s in ATTRIBUTES}
    binary = [j for j, n in enumerate(names) if kinds[n] == "binary"]
    continuous = [j for j, n in enumerate(names) if kinds[n] == "continuous"]
    return {"judge_noise_p99_binary": float(np.percentile(d[:, binary], 99)),
            "judge_noise_p99_continuous": float(np.percentile(d[:, continuous], 99)),
            "judge_noise_p99_max": float(np.percentile(d, 99, axis=0).max())}


def edit_frechet(judge, edited: torch.Tensor, unedited: torch.Tensor, renders: torch.Tensor, *,
                 batch_size: int = 100) -> dict[str, float]:
    """Fréchet distance in judge features (``[N, 256]``) of ``edited`` images to toyfaces ``renders`` (``fd_edited``)
    beside that of the ``unedited`` images they came from (``fd_unedited``); all ``[N, 3, H, W]`` in ``[-1, 1]``.
    An edit that leaves the image distribution of faces raises ``fd_edited`` above ``fd_unedited``. With fewer
    samples than feature dimensions the covariances are singular; the two distances stay comparable with each
    other at the same sample sizes, not with distances at other sizes."""
    from ..train.metrics import frechet_distance

    def features(images):
        return judge_pass(judge, images, batch_size=batch_size)[2]

    fr = features(renders)
    return {"fd_edited": frechet_distance(fr, features(edited)),
            "fd_unedited": frechet_distance(fr, features(unedited))}
