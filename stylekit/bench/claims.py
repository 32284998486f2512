"""The seed papers' claims, measured on toyfaces: ``python -m stylekit.bench claims [--json PATH] [--markdown PATH]``.

Each claim one of the papers behind stylekit makes is measured here on **report seeds**
(:func:`stylekit.bench.stats.report_seeds`, from ``7,000,000 + 300,000`` on; ``bench editing``, ``bench text``
and ``bench inversion`` use other ranges) with a 95% interval, and judged, where a judgement is needed, by the
held-out judge (:mod:`stylekit.judge`), never by the attribute predictor (which labels InterFaceGAN and
StyleSpace here, as in the library). A claim **holds** when its interval says so: the tested quantity
is oriented so that the claim predicts it positive, and the verdict is ``yes`` when the interval's lower
bound is above 0, ``no, reversed`` when its upper bound is below 0, and ``no`` when it straddles 0
(:func:`verdict`). A claim with several tests holds when every test does.

Claims (``key``: what is measured):

- ``wplus_vs_w`` (Image2StyleGAN): PSNR of W+ optimisation minus W optimisation, per render (paired
  bootstrap), both with the library's preset (:data:`stylekit.invert.presets.OPTIMIZE`, 500 steps).
- ``noise`` (Image2StyleGAN++): PSNR after ``--noise-steps`` of noise-map optimisation from the W+ code,
  minus the W+ code's own.
- ``pti_vs_optimisation`` (PTI): PSNR of pivotal tuning (``--pti-steps``, preset 350) minus W+
  optimisation's, on the first ``--n-pti`` renders; the pivot is the W optimisation result (PTI's pivot
  is a W projection; the preset's 450-step pivot is replaced by the 500-step W run already made).
- ``psp_distortion`` (e4e): PSNR of one pSp pass minus one e4e pass (pSp = the same encoder trained
  without e4e's delta regularisation: ``stylekit/toyfaces/weights/psp_encoder.md``), on ``--n-enc`` renders.
- ``e4e_editability`` (e4e): InterFaceGAN editability of the two encoders' inversions: every inversion is
  pushed across each binary attribute's predictor-labelled boundary (the preset's 4,000 codes, extreme
  10%) by ``EDIT_STRENGTH`` standard deviations of the fitting codes' coordinate, toward the side the
  judge does not read, and scored with the edit success rule (:mod:`stylekit.bench.judging`); the
  tested quantity is e4e's mean success per render minus pSp's (paired bootstrap).
- ``restyle`` (ReStyle): PSNR of the shipped ReStyle encoder (preset: 3 steps from the e4e pass) minus
  the e4e pass alone.
- ``stylespace_vs_w`` / ``stylespace_vs_wplus`` (StyleSpace): leakage at equal success. ``--n-codes``
  report codes are edited for each binary attribute by three methods over a grid of strengths: W (the
  InterFaceGAN normal on every row), W+ (the normal on the one layer group, coarse/middle/fine, where the
  *predictor* says it works best on development seeds) and S (the one StyleSpace channel of
  :func:`stylekit.edit.stylespace.channels_from_labels`). For each method the judge's success and
  leakage, pooled over attributes, are interpolated at the success level ``s*`` that every method reaches
  (``min(0.5, each method's best success)``); the tested quantity is the other method's leakage minus
  S's there (codes resampled jointly for the interval).
- ``layers_coarse`` / ``layers_middle`` / ``layers_fine`` (StyleGAN, Fig. 3): style mixing. For
  ``--n-pairs`` report code pairs (A, B), A takes one layer group's W+ rows from B; for each attribute
  group (``ATTRIBUTE_GROUPS``: pose-shape, features, colours) the share of the A-to-B difference that
  moved, ``sum((mix - A)(B - A)) / sum((B - A)^2)`` over pairs and the group's attributes (judge, unit
  scale). The tested quantity is the expected group's share minus the largest other group's share.
- ``truncation`` (StyleGAN, truncation trick): ``--n-trunc`` report codes at each psi of ``--psis``.
  Diversity: mean pairwise distance of the judge's attribute readings (unit scale); fidelity: mean face
  score; also the Fréchet distance to renders in judge features (reported, not tested). Tested, between
  psi 1 and ``TRUNCATION_PSI``: diversity lost (psi 1 minus psi 0.5) and face score gained (0.5 minus 1).

Keys: ``claim_<key>_holds`` (1/0), ``claim_<key>[_<test>]`` with ``_lo``, ``_hi``, ``_n`` for every test;
per-method figures (``psnr_<method>``, ``success_<encoder>``, ...), ``seconds_<part>``,
``report_seed_start`` / ``report_seed_count`` (the span from the first to the last report seed used; each
part draws from its own sub-range), ``judge_trained`` (0 when
``--judge`` names an untrained judge, for plumbing only). The Markdown table (``--markdown``, default the
JSON path with ``.md``) has one row per claim: claim | source | the paper's figure | measured here (95%
interval, n) | holds?.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..invert.presets import OPTIMIZE, PTI
from .stats import bootstrap_mean, report_seeds

#: Report seeds of this benchmark start at ``REPORT_SEED_START + REPORT_OFFSET`` (editing: 0 on, text: 100,000 on, inversion: 200,000 on).
REPORT_OFFSET = 300_000
#: Sub-ranges (added to REPORT_OFFSET) of the report seeds each part draws from.
RENDER_OFFSET, EDIT_OFFSET, MIX_OFFSET, TRUNC_OFFSET = 0, 20_000, 40_000, 60_000
#: Development seeds (inside DEV_SEED_RANGE) on which the W+ layer group of each attribute is chosen.
DEV_LAYER_SEEDS = range(60_000, 60_064)
#: InterFaceGAN edit size on inversions, in std of the fitting codes' coordinate (bench editing's default).
EDIT_STRENGTH = 3.0
#: Strength grids of the disentanglement claim: W / W+ in std of the coordinate, S in channel std. Chosen on
#: development seeds 90,000-90,059 so that each method's judged success rises to its peak inside the grid
#: (W and W+ peak near 2 std, S near 4-6; beyond, edits overshoot, leak and lose the face).
W_GRID = (0.25, 0.5, 1.0, 2.0, 3.0, 4.0)
S_GRID = (0.5, 1.0, 2.0, 3.0, 4.0, 6.0)
#: The success level leakage is compared at (lowered to the best success every method reaches) ...
TARGET_SUCCESS = 0.5
#: ... but not below this: with less, "equal success" compares edits that hardly happen (the test says no).
MIN_SUCCESS = 0.1
#: The psi compared with psi = 1 in the truncation claim.
TRUNCATION_PSI = 0.5
#: Which toyfaces attributes each layer group is claimed to carry (StyleGAN Fig. 3); light_direction is in none.
ATTRIBUTE_GROUPS = {
    "pose_shape": ("rotation", "yaw", "position_x", "position_y", "hair_length"),
    "features": ("smile", "mouth_open", "eyes_open", "glasses", "beard"),
    "colours": ("skin_tone", "hair_color", "red_hair", "background_hue"),
}
LAYER_CLAIMS = {"coarse": "pose_shape", "middle": "features", "fine": "colours"}
CLAIM_ORDER = ("wplus_vs_w", "noise", "psp_distortion", "e4e_editability", "restyle", "pti_vs_optimisation",
               "stylespace_vs_w", "stylespace_vs_wplus", "layers_coarse", "layers_middle", "layers_fine",
               "truncation")
PARTS = ("optimisation", "encoders", "disentanglement", "layers", "truncation")


# ------------------------------------------------------------------------------------------------
# verdicts and the table


@dataclass(frozen=True)
class Test:
    """One tested quantity, oriented so that the claim predicts it positive: estimate and 95% interval."""

    name: str
    estimate: float
    lo: float
    hi: float
    n: int

    @property
    def verdict(self) -> str:
        """:func:`verdict` of the interval; ``'no'`` for fewer than 2 samples (no interval to speak of)."""
        return verdict(self.lo, self.hi) if self.n >= 2 else "no"


@dataclass
class Claim:
    """A claim's row: what it says, where, the paper's figure, what was measured (text) and its tests."""

    key: str
    claim: str
    source: str
    paper: str
    measured: str
    tests: list[Test]
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def holds(self) -> str:
        return combine([t.verdict for t in self.tests])


def verdict(lo: float, hi: float) -> str:
    """``'yes'`` when the interval ``[lo, hi]`` of a quantity the claim predicts positive lies above 0,
    ``'no, reversed'`` when it lies below 0, ``'no'`` when it contains 0."""
    if lo > 0:
        return "yes"
    if hi < 0:
        return "no, reversed"
    return "no"


def combine(verdicts: Sequence[str]) -> str:
    """A claim with several tests: ``'yes'`` only if every test says yes; ``'no, reversed'`` if any is reversed."""
    if not verdicts:
        raise ValueError("a claim needs at least one test")
    if all(v == "yes" for v in verdicts):
        return "yes"
    return "no, reversed" if any(v == "no, reversed" for v in verdicts) else "no"


def paired_test(name: str, values: Sequence[float] | np.ndarray, *, seed: int = 0) -> Test:
    """Mean of per-sample values ``[n]`` (e.g. paired differences) with its bootstrap interval."""
    x = np.asarray(values, dtype=np.float64).ravel()
    lo, hi = bootstrap_mean(x, seed=seed)
    return Test(name, float(x.mean()), lo, hi, int(x.size))


def bootstrap_statistic(n: int, statistic: Callable[[np.ndarray], np.ndarray], *, resamples: int = 1000,
                        seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile-bootstrap intervals of a vector statistic of ``n`` samples: ``statistic(indices [n]) -> [k]``.

    Returns ``(estimate [k], lo [k], hi [k])``, the estimate on all samples, the bounds over ``resamples``
    draws of ``n`` indices with replacement.
    """
    rng = np.random.default_rng(seed)
    full = np.asarray(statistic(np.arange(n)), dtype=np.float64)
    draws = np.stack([np.asarray(statistic(rng.integers(0, n, n)), dtype=np.float64) for _ in range(resamples)])
    lo, hi = np.percentile(draws, [2.5, 97.5], axis=0)
    return full, lo, hi


def fmt_interval(value: float, lo: float, hi: float, digits: int = 2, unit: str = "") -> str:
    """``'1.23 [0.98, 1.50] dB'``."""
    u = f" {unit}" if unit else ""
    return f"{value:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]{u}"


def claim_metrics(claims: Sequence[Claim]) -> dict[str, float]:
    """Flat JSON keys of every claim: ``claim_<key>_holds`` and each test's value, ``_lo``, ``_hi``, ``_n``."""
    out: dict[str, float] = {}
    for c in claims:
        out[f"claim_{c.key}_holds"] = int(c.holds == "yes")
        for t in c.tests:
            base = f"claim_{c.key}" if len(c.tests) == 1 else f"claim_{c.key}_{t.name}"
            out.update({base: t.estimate, f"{base}_lo": t.lo, f"{base}_hi": t.hi, f"{base}_n": t.n})
        out.update(c.metrics)
    return out


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def markdown_table(claims: Sequence[Claim]) -> str:
    """The claims as a Markdown table: claim | source | the paper's figure | measured here | holds?."""
    lines = ["| claim | source | the paper's figure | measured here (95% interval) | holds? |",
             "|---|---|---|---|---|"]
    for c in claims:
        lines.append("| " + " | ".join(_cell(x) for x in (c.claim, c.source, c.paper, c.measured, c.holds)) + " |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------
# inputs


def held_out_renders(seeds: Sequence[int], size: int) -> torch.Tensor:
    """One toyfaces render per seed ``[n, 3, size, size]`` (attributes and pixel noise drawn from the seed)."""
    from ..toyfaces.attributes import sample_attributes
    from ..toyfaces.renderer import render_batch

    per_seed = [sample_attributes(1, seed=int(s)) for s in seeds]
    attrs = {k: np.concatenate([a[k] for a in per_seed]) for k in per_seed[0]}
    return render_batch(attrs, size=size, seeds=np.asarray(list(seeds))).float()


@torch.no_grad()
def render_ws(G, ws: torch.Tensor, batch_size: int = 50) -> torch.Tensor:
    """Images ``[N, 3, R, R]`` of W+ codes ``ws [N, num_ws, w_dim]`` (stored noise)."""
    return torch.cat([G.synthesis(ws[i:i + batch_size], noise_mode="const") for i in range(0, ws.shape[0], batch_size)])


@torch.no_grad()
def render_styles(G, styles: list, batch_size: int = 50) -> torch.Tensor:
    """Images of S codes (one ``[N, C_l]`` tensor per style layer)."""
    n = styles[0].shape[0]
    return torch.cat([G.synthesis(None, styles=[s[i:i + batch_size] for s in styles], noise_mode="const")
                      for i in range(0, n, batch_size)])


def per_image_psnr(images: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """PSNR in dB per image on the ``[0, 1]`` scale (:func:`stylekit.bench.fidelity.psnr`)."""
    from .fidelity import psnr

    return psnr(images, targets).numpy()


@dataclass
class Boundaries:
    """Predictor-labelled InterFaceGAN boundaries of the binary attributes and what they were fitted on.

    normals: attribute -> unit normal ``[w_dim]``; unit: attribute -> std of the fitting codes' coordinate
    along it; fit_ws ``[n_fit, num_ws, w_dim]`` with predictor probabilities ``p_fit`` (attribute -> ``[n_fit]``).
    """

    normals: dict
    unit: dict
    fit_ws: torch.Tensor
    p_fit: dict
    fit: object


@torch.no_grad()
def fit_boundaries(G, predictor, attributes: Sequence[str], *, n_fit: int, keep_fraction: float, seed: int = 1,
                   batch_size: int = 50) -> Boundaries:
    """InterFaceGAN's protocol (as ``bench editing``): ``n_fit`` codes, one rendering pass read by the predictor,
    an SVM on each attribute's top and bottom ``keep_fraction``."""
    from ..edit import interfacegan
    from ..latent import Latent

    fit = Latent.sample(G, n_fit, seed=seed)
    probs = {a: [] for a in attributes}
    for i in range(0, n_fit, batch_size):
        pred = predictor.predict(G.synthesis(fit.tensor[i:i + batch_size], noise_mode="const"))
        for a in attributes:
            probs[a].append(pred[a].float().cpu())
    p_fit = {a: torch.cat(v) for a, v in probs.items()}
    normals, unit = {}, {}
    for a in attributes:
        k = min(max(1, int(round(n_fit * keep_fraction))), n_fit // 2)
        order = torch.argsort(p_fit[a], descending=True, stable=True)
        keep = torch.cat([order[:k], order[-k:]])
        labels = torch.cat([torch.ones(k), torch.zeros(k)])
        b = interfacegan.fit_boundary(fit.select(keep.tolist()), labels, name=a)
        normals[a] = b.vector.float()
        unit[a] = float((fit.tensor[:, 0] @ normals[a]).std())
    return Boundaries(normals, unit, fit.tensor, p_fit, fit)


class Context:
    """What the claim functions share: generator, judge, predictor (loaded when first needed), options, log."""

    def __init__(self, G, judge, args, *, predictor=None, log: Callable[[str], None] | None = None):
        self.G, self.judge, self.args = G, judge, args
        self._predictor = predictor
        self._boundaries = None
        self.log = log or (lambda msg: print(f"[bench claims] {msg}", file=sys.stderr, flush=True))
        self.seed_ranges: list[range] = []
        self.names = list(judge.attribute_names)

    @property
    def predictor(self):
        if self._predictor is None:
            from ..checkpoints.predictor import load_predictor

            self._predictor = load_predictor("toyfaces")
        return self._predictor

    def seeds(self, n: int, offset: int) -> range:
        seeds = report_seeds(n, REPORT_OFFSET + offset)
        self.seed_ranges.append(seeds)
        return seeds

    def boundaries(self) -> Boundaries:
        if self._boundaries is None:
            from ..toyfaces.attributes import BINARY_ATTRIBUTES

            t0 = time.perf_counter()
            self._boundaries = fit_boundaries(self.G, self.predictor, BINARY_ATTRIBUTES, n_fit=self.args.n_fit,
                                              keep_fraction=self.args.keep_fraction)
            self.log(f"fitted {len(BINARY_ATTRIBUTES)} InterFaceGAN boundaries on {self.args.n_fit} codes "
                     f"in {time.perf_counter() - t0:.1f}s")
        return self._boundaries

    def read(self, images: torch.Tensor):
        """Judge ``(unit [N, A], face [N], features [N, F])`` as float64 numpy."""
        from .judging import judge_pass

        return judge_pass(self.judge, images)


# ------------------------------------------------------------------------------------------------
# claims 1-3 and 6: optimisation (Image2StyleGAN, Image2StyleGAN++, PTI)


def measure_optimisation(G, targets: torch.Tensor, *, steps: int, noise_steps: int, pti_steps: int, n_pti: int,
                         log=None) -> dict[str, np.ndarray]:
    """W, W+, W+ then noise, and PTI (pivot = the W result) on ``targets [n, 3, R, R]`` with the library's
    :func:`stylekit.invert.invert`, one image per call: PSNR per image ``{'w', 'wplus', 'noise': [n],
    'pti', 'pti_wplus': [n_pti]}`` and seconds per image (``seconds_<method>``)."""
    from ..invert import invert

    out = {k: [] for k in ("w", "wplus", "noise", "pti")}
    secs = {k: 0.0 for k in out}
    for i in range(targets.shape[0]):
        x = targets[i:i + 1]
        r_w = invert(G, x, space="w", steps=steps, seed=i)
        r_wp = invert(G, x, space="w+", steps=steps, seed=i)
        # the noise stage from the W+ code: one latent step at the schedule's zero learning rate keeps the code
        r_n = invert(G, x, space="w+", init_latent=r_wp.latent, steps=1, noise_steps=noise_steps, seed=i)
        for key, r in (("w", r_w), ("wplus", r_wp), ("noise", r_n)):
            out[key].append(float(per_image_psnr(r.image, x)[0]))
            secs[key] += r.seconds
        if i < n_pti:
            r_p = invert(G, x, method="pti", steps=pti_steps, pivot_latent=r_w.latent, seed=i)
            out["pti"].append(float(per_image_psnr(r_p.image, x)[0]))
            secs["pti"] += r_p.seconds
        if log:
            log(f"render {i + 1}/{targets.shape[0]}: W {out['w'][-1]:.2f}, W+ {out['wplus'][-1]:.2f}, noise "
                f"{out['noise'][-1]:.2f}" + (f", PTI {out['pti'][-1]:.2f}" if i < n_pti else "") + " dB")
    res = {k: np.asarray(v) for k, v in out.items()}
    res["pti_wplus"] = res["wplus"][:len(res["pti"])]
    res["pti_w"] = res["w"][:len(res["pti"])]
    for k, s in secs.items():
        res[f"seconds_{k}"] = np.asarray(s / max(1, len(out[k])))
    return res


def noise_strength_max(G) -> float:
    """The largest learned per-layer noise strength of a StyleGAN2 synthesis network (0 when it has none)."""
    values = [float(p.detach().abs().max()) for n, p in G.named_parameters() if n.endswith("noise_strength")]
    return max(values, default=0.0)


def optimisation_claims(p: dict[str, np.ndarray], *, steps: int, noise_steps: int, pti_steps: int,
                        noise_strength: float | None = None) -> list[Claim]:
    """The rows of :func:`measure_optimisation`'s PSNRs (``noise_strength``: :func:`noise_strength_max`, quoted)."""
    n, n_pti = len(p["w"]), len(p["pti"])
    claims = []
    t = paired_test("psnr_gain", p["wplus"] - p["w"])
    claims.append(Claim(
        "wplus_vs_w", "W+ reconstructs better than W", "Image2StyleGAN (Abdal et al. 2019)",
        "W embeddings of faces lose detail and identity; W+ (one code per layer) reconstructs them faithfully",
        f"PSNR W {p['w'].mean():.2f} dB, W+ {p['wplus'].mean():.2f} dB; W+ - W {fmt_interval(t.estimate, t.lo, t.hi)}"
        f" dB ({steps} steps each; n = {n} renders)", [t],
        {"psnr_optimize_w": float(p["w"].mean()), "psnr_optimize_wplus": float(p["wplus"].mean())}))
    t = paired_test("psnr_gain", p["noise"] - p["wplus"])
    claims.append(Claim(
        "noise", "Optimising the noise maps after W+ lifts PSNR", "Image2StyleGAN++ (Abdal et al. 2020)",
        "about 20 dB (W+) -> 45 dB (W+ then noise) on its examples",
        f"PSNR W+ {p['wplus'].mean():.2f} -> {p['noise'].mean():.2f} dB after {noise_steps} noise steps; gain "
        f"{fmt_interval(t.estimate, t.lo, t.hi, 3)} dB" + (
            f"; the generator's learned noise strengths are at most {noise_strength:.1e}" if noise_strength is not None
            else "") + f" (n = {n} renders)", [t],
        {"psnr_optimize_noise": float(p["noise"].mean()), "noise_steps": noise_steps,
         **({"noise_strength_max": noise_strength} if noise_strength is not None else {})}))
    t = paired_test("psnr_gain", p["pti"] - p["pti_wplus"])
    claims.append(Claim(
        "pti_vs_optimisation", "Pivotal tuning reconstructs better than latent optimisation", "PTI (Roich et al. 2021)",
        "PTI's reconstructions beat W and W+ optimisation and the encoders (quantitative comparison, Sec. 5)",
        f"PSNR PTI {p['pti'].mean():.2f} dB (pivot: W, {p['pti_w'].mean():.2f} dB), W+ optimisation "
        f"{p['pti_wplus'].mean():.2f} dB; PTI - W+ {fmt_interval(t.estimate, t.lo, t.hi)} dB ({pti_steps} tuning steps; "
        f"n = {n_pti} renders)", [t],
        {"psnr_pti": float(p["pti"].mean()), "psnr_pti_pivot": float(p["pti_w"].mean()), "pti_steps": pti_steps}))
    return claims


# ------------------------------------------------------------------------------------------------
# claims 3-5: encoders (e4e vs pSp, ReStyle)


def invert_with_encoders(G, targets: torch.Tensor, *, e4e, psp, restyle) -> dict:
    """One pass of ``e4e`` and ``psp`` and the ReStyle steps (bootstrapped from ``e4e``) on every target, with
    :func:`stylekit.invert.invert`: ``{name: (W+ codes [n, num_ws, w_dim], images [n, 3, R, R])}``."""
    from ..invert import invert

    out = {k: ([], []) for k in ("e4e", "psp", "restyle")}
    for i in range(targets.shape[0]):
        x = targets[i:i + 1]
        for name, r in (("e4e", invert(G, x, method="encoder", encoder=e4e)),
                        ("psp", invert(G, x, method="encoder", encoder=psp)),
                        ("restyle", invert(G, x, method="restyle", encoder=restyle, bootstrap=e4e))):
            out[name][0].append(r.latent.tensor)
            out[name][1].append(r.image)
    return {k: (torch.cat(v[0]), torch.cat(v[1])) for k, v in out.items()}


EDIT_OUTCOMES = ("success", "crossed", "face_ok", "kept", "leakage")


@torch.no_grad()
def inversion_editability(ctx: Context, ws: torch.Tensor, images: torch.Tensor, bounds: Boundaries,
                          strength: float = EDIT_STRENGTH) -> dict[str, np.ndarray]:
    """Judged InterFaceGAN edits of inverted codes ``ws [n, num_ws, w_dim]`` whose renders are ``images``: each
    code pushed ``strength`` coordinate std along each attribute's normal, toward the side the judge does not
    read, scored by the edit success rule against ``images``. Returns ``{outcome: [n, attributes]}`` for
    :data:`EDIT_OUTCOMES` (0/1, leakage in unit scale)."""
    from .judging import outcomes_from_readings

    before = ctx.read(images)
    cols = {k: [] for k in EDIT_OUTCOMES}
    for a, normal in bounds.normals.items():
        sign = np.where(before[0][:, ctx.names.index(a)] < 0.5, 1.0, -1.0)
        step = torch.from_numpy(sign).float().reshape(-1, 1, 1) * strength * bounds.unit[a] * normal.reshape(1, 1, -1)
        after = ctx.read(render_ws(ctx.G, ws + step))
        o = outcomes_from_readings(before[:2], after[:2], a, sign, names=ctx.names)
        for k in EDIT_OUTCOMES:
            cols[k].append(np.asarray(o[k], dtype=np.float64))
    return {k: np.stack(v, axis=1) for k, v in cols.items()}


def encoder_claims(psnrs: dict[str, np.ndarray], edits: dict[str, dict], *, n_attributes: int,
                   strength: float = EDIT_STRENGTH) -> list[Claim]:
    """The rows of the encoder measurements: PSNR per render (``e4e``, ``psp``, ``restyle``) and the judged edits
    of the ``e4e`` / ``psp`` inversions (:func:`inversion_editability`; ``success`` alone is enough)."""
    success = {k: v["success"] for k, v in edits.items()}
    label = {"crossed": "crossed", "face_ok": "still a face", "kept": "others kept", "leakage": "leakage"}
    parts = {k: ", ".join(f"{label[o]} {v[o].mean():.2f}" for o in EDIT_OUTCOMES[1:] if o in v)
             for k, v in edits.items()}
    n = len(psnrs["e4e"])
    d = paired_test("psnr_gain", psnrs["psp"] - psnrs["e4e"])
    claims = [Claim(
        "psp_distortion", "pSp reconstructs better than e4e (e4e gives up some distortion)", "e4e (Tov et al. 2021)",
        "e4e accepts slightly worse reconstruction than pSp in exchange for editability (the distortion-editability "
        "trade-off)",
        f"PSNR pSp {psnrs['psp'].mean():.2f} dB, e4e {psnrs['e4e'].mean():.2f} dB; pSp - e4e "
        f"{fmt_interval(d.estimate, d.lo, d.hi)} dB (n = {n} renders)", [d],
        {"psnr_psp": float(psnrs["psp"].mean()), "psnr_e4e": float(psnrs["e4e"].mean())})]
    se, sp = success["e4e"].mean(axis=1), success["psp"].mean(axis=1)
    t = paired_test("success_gain", se - sp)
    claims.append(Claim(
        "e4e_editability", "e4e's inversions edit better than pSp's", "e4e (Tov et al. 2021)",
        "edits of e4e inversions stay realistic where pSp's degrade (the other side of the trade-off)",
        f"InterFaceGAN edit success (judge) e4e {se.mean():.3f}, pSp {sp.mean():.3f}; e4e - pSp "
        f"{fmt_interval(t.estimate, t.lo, t.hi, 3)} ({n_attributes} binary attributes at {strength:g} std; "
        + (f"e4e: {parts['e4e']}; pSp: {parts['psp']}; " if parts["e4e"] else "") + f"n = {n} renders)", [t],
        {"success_e4e": float(se.mean()), "success_psp": float(sp.mean()), "edit_strength": strength,
         **{f"edit_{o}_{k}": float(v[o].mean()) for k, v in edits.items() for o in EDIT_OUTCOMES[1:] if o in v}}))
    r = paired_test("psnr_gain", psnrs["restyle"] - psnrs["e4e"])
    claims.append(Claim(
        "restyle", "ReStyle's iterations refine one encoder pass", "ReStyle (Alaluf et al. 2021)",
        "a few residual iterations reconstruct better than a single pass, for pSp and e4e",
        f"PSNR e4e {psnrs['e4e'].mean():.2f} dB -> ReStyle {psnrs['restyle'].mean():.2f} dB; gain "
        f"{fmt_interval(r.estimate, r.lo, r.hi)} dB (n = {n} renders)", [r],
        {"psnr_restyle": float(psnrs["restyle"].mean())}))
    return claims


# ------------------------------------------------------------------------------------------------
# claim 7: StyleSpace disentanglement


@torch.no_grad()
def choose_wplus_groups(G, predictor, bounds: Boundaries, seeds: Sequence[int], strength: float = 3.0) -> dict[str, str]:
    """For each attribute, the layer group (coarse / middle / fine) whose rows alone carry the InterFaceGAN edit
    best by the *predictor* on development ``seeds``: success minus mean change of the other binary attributes."""
    from ..edit import layer_presets
    from ..latent import Latent

    ws = Latent.from_seed(G, list(seeds), space="w+").tensor
    attrs = list(bounds.normals)
    p0 = predictor.predict(render_ws(G, ws))
    chosen = {}
    for a in attrs:
        sign = torch.where(p0[a] < 0.5, 1.0, -1.0)
        best, best_score = None, -np.inf
        for group, rows in layer_presets(G).items():
            mask = torch.zeros(1, G.num_ws, 1)
            mask[:, list(rows)] = 1
            step = sign.reshape(-1, 1, 1) * strength * bounds.unit[a] * bounds.normals[a].reshape(1, 1, -1) * mask
            p1 = predictor.predict(render_ws(G, ws + step))
            success = torch.where(sign > 0, p1[a] > 0.5, p1[a] < 0.5).float().mean().item()
            leak = float(np.mean([(p1[b] - p0[b]).abs().mean().item() for b in attrs if b != a]))
            if success - leak > best_score:
                best, best_score = group, success - leak
        chosen[a] = best
    return chosen


def interpolate_at(success: np.ndarray, leakage: np.ndarray, target: float) -> float:
    """Leakage at success ``target`` on a strength grid: ``success``/``leakage [k]`` ordered by strength, the grid
    starting at zero strength (0, 0) implicitly; linear between the first point reaching ``target`` and the one
    before it (the last point's leakage if none reaches it)."""
    s = np.concatenate([[0.0], np.asarray(success, dtype=np.float64)])
    lk = np.concatenate([[0.0], np.asarray(leakage, dtype=np.float64)])
    if target <= 0:
        return 0.0
    for j in range(1, len(s)):
        if s[j] >= target:
            if s[j] == s[j - 1]:
                return float(lk[j])
            f = (target - s[j - 1]) / (s[j] - s[j - 1])
            return float(lk[j - 1] + f * (lk[j] - lk[j - 1]))
    return float(lk[-1])


def disentanglement_from_outcomes(success: dict[str, np.ndarray], leakage: dict[str, np.ndarray], *,
                                  target: float = TARGET_SUCCESS, resamples: int = 1000, seed: int = 0) -> dict:
    """Leakage at equal success, from per-code outcomes of each method: ``success[m]`` / ``leakage[m]`` of shape
    ``[n_codes, attributes, strengths]``. The success level is ``s* = min(target, each method's best pooled
    success)``, recomputed in every bootstrap resample (so every method reaches it there too). Returns
    ``{'s_star', 'leak': {m: (est, lo, hi)}, 'diff': {m: (est, lo, hi)}, 'best_success': {m: float}}`` where
    ``diff[m]`` is method ``m``'s leakage minus StyleSpace's (``'s'``), codes resampled jointly."""
    methods = list(success)
    n = next(iter(success.values())).shape[0]
    best = min(float(success[m].mean(axis=(0, 1)).max()) for m in methods)
    s_star = min(target, best)

    def stat(idx):
        curves = {m: (success[m][idx].mean(axis=(0, 1)), leakage[m][idx].mean(axis=(0, 1))) for m in methods}
        level = min(target, min(float(c[0].max()) for c in curves.values()))  # reached by every method here
        leak = [interpolate_at(*curves[m], level) for m in methods]
        diffs = [leak[i] - leak[methods.index("s")] for i in range(len(methods))]
        return np.array(leak + diffs)

    est, lo, hi = bootstrap_statistic(n, stat, resamples=resamples, seed=seed)
    k = len(methods)
    return {"s_star": s_star,
            "leak": {m: (est[i], lo[i], hi[i]) for i, m in enumerate(methods)},
            "diff": {m: (est[k + i], lo[k + i], hi[k + i]) for i, m in enumerate(methods)},
            "best_success": {m: float(success[m].mean(axis=(0, 1)).max()) for m in methods}}


@torch.no_grad()
def measure_disentanglement(ctx: Context, n_codes: int, *, w_grid=W_GRID, s_grid=S_GRID,
                            dev_seeds: Sequence[int] = DEV_LAYER_SEEDS) -> dict:
    """Judge outcomes of W, W+ (one layer group) and S (one channel) edits of ``n_codes`` report codes, for every
    binary attribute over the strength grids: ``success`` / ``leakage`` ``{method: [n, attributes, strengths]}``
    plus the chosen W+ groups and StyleSpace channels."""
    from ..edit import layer_presets, stylespace
    from ..latent import Latent
    from .judging import outcomes_from_readings

    G = ctx.G
    bounds = ctx.boundaries()
    attrs = list(bounds.normals)
    groups = choose_wplus_groups(G, ctx.predictor, bounds, dev_seeds)
    ctx.log(f"W+ layer groups (predictor, {len(dev_seeds)} development seeds from {dev_seeds[0]}): {groups}")
    stats = stylespace.style_statistics(G, n_samples=2000, seed=5)
    channels = {a: stylespace.channels_from_labels(G, bounds.fit, (bounds.p_fit[a] > 0.5).float(), top_k=1)[0]
                for a in attrs}
    codes = Latent.from_seed(G, list(ctx.seeds(n_codes, EDIT_OFFSET)), space="w+")
    ws = codes.tensor
    s0 = codes.to_styles(G).tensor
    before = ctx.read(render_ws(G, ws))
    presets = layer_presets(G)
    success = {m: np.zeros((n_codes, len(attrs), len(w_grid))) for m in ("w", "wplus", "s")}
    leakage = {m: np.zeros_like(success[m]) for m in success}
    for ai, a in enumerate(attrs):
        sign = np.where(before[0][:, ctx.names.index(a)] < 0.5, 1.0, -1.0)
        sign_t = torch.from_numpy(sign).float()
        mask = torch.zeros(1, G.num_ws, 1)
        mask[:, list(presets[groups[a]])] = 1
        ch = channels[a]
        ch_sign = sign_t * (1.0 if ch.score > 0 else -1.0)
        for ki, (kw, ks) in enumerate(zip(w_grid, s_grid)):
            step = sign_t.reshape(-1, 1, 1) * kw * bounds.unit[a] * bounds.normals[a].reshape(1, 1, -1)
            styles = [s.clone() for s in s0]
            styles[ch.layer_index][:, ch.channel] += ch_sign * ks * stats.std[ch.layer_index][ch.channel]
            for m, images in (("w", render_ws(G, ws + step)), ("wplus", render_ws(G, ws + step * mask)),
                              ("s", render_styles(G, styles))):
                after = ctx.read(images)
                o = outcomes_from_readings(before[:2], after[:2], a, sign, names=ctx.names)
                success[m][:, ai, ki] = o["success"]
                leakage[m][:, ai, ki] = o["leakage"]
    return {"success": success, "leakage": leakage, "groups": groups,
            "channels": {a: f"{c.layer}[{c.channel}]" for a, c in channels.items()}, "n": n_codes}


def disentanglement_claims(d: dict, *, target: float = TARGET_SUCCESS) -> list[Claim]:
    """The two StyleSpace rows from :func:`measure_disentanglement`'s outcomes. When some method never reaches
    :data:`MIN_SUCCESS`, leakage at equal success is not measured: the tests are 0 [0, 0] (verdict ``'no'``) and
    the row says so."""
    r = disentanglement_from_outcomes(d["success"], d["leakage"], target=target)
    leak, diff, s_star = r["leak"], r["diff"], r["s_star"]
    n, n_attr = d["n"], d["success"]["s"].shape[1]
    metrics = {"disentanglement_s_star": s_star}
    for m in ("w", "wplus", "s"):
        metrics[f"leakage_at_s_star_{m}"] = leak[m][0]
        metrics[f"leakage_at_s_star_{m}_lo"] = leak[m][1]
        metrics[f"leakage_at_s_star_{m}_hi"] = leak[m][2]
        metrics[f"best_success_{m}"] = r["best_success"][m]
    label = {"w": "W", "wplus": "W+", "s": "S"}
    how = {"w": "the InterFaceGAN normal on every row",
           "wplus": "the normal on one layer group per attribute, chosen by the predictor on development seeds"}
    claims = []
    for m in ("w", "wplus"):
        if s_star < MIN_SUCCESS:
            t = Test("leakage_gap", 0.0, 0.0, 0.0, n)
            best = ", ".join(f"{label[k]} {v:.2f}" for k, v in r["best_success"].items())
            measured = (f"not measured: the best edit success (judge) is {best}, below {MIN_SUCCESS:g} for some "
                        f"method, so there is no common success level ({how[m]}; n = {n} codes)")
        else:
            t = Test("leakage_gap", *diff[m], n)
            measured = (f"leakage (mean |change| of the other 14 attributes, judge) at success {s_star:.2f}: "
                        f"S {leak['s'][0]:.3f} [{leak['s'][1]:.3f}, {leak['s'][2]:.3f}], {label[m]} {leak[m][0]:.3f} "
                        f"[{leak[m][1]:.3f}, {leak[m][2]:.3f}] ({how[m]}); {label[m]} - S "
                        f"{fmt_interval(t.estimate, t.lo, t.hi, 3)} (one S channel per attribute; {n_attr} binary "
                        f"attributes; n = {n} codes)")
        claims.append(Claim(
            f"stylespace_vs_{m}", f"StyleSpace edits are more disentangled than {label[m]} edits",
            "StyleSpace (Wu et al. 2021)",
            "S is more disentangled than W and W+ (DCI disentanglement and attribute-dependency comparisons)",
            measured, [t], metrics if m == "w" else {}))
    return claims


# ------------------------------------------------------------------------------------------------
# claim 8: what each layer group carries (style mixing)


def transfer_shares(unit_a: np.ndarray, unit_b: np.ndarray, unit_mix: np.ndarray, columns: Sequence[int],
                    idx: np.ndarray | None = None) -> float:
    """The share of the A-to-B difference the mix moved on ``columns``: ``sum((mix - a)(b - a)) / sum((b - a)^2)``
    over the pairs ``idx`` (all by default); readings ``[n_pairs, A]`` in unit scale."""
    idx = np.arange(unit_a.shape[0]) if idx is None else idx
    a, b, m = unit_a[idx][:, columns], unit_b[idx][:, columns], unit_mix[idx][:, columns]
    den = float(((b - a) ** 2).sum())
    return float(((m - a) * (b - a)).sum() / den) if den > 0 else 0.0


@torch.no_grad()
def measure_layers(ctx: Context, n_pairs: int) -> dict:
    """Judge readings of ``n_pairs`` report code pairs and of A with each layer group's rows from B."""
    from ..edit import layer_presets, style_mix
    from ..latent import Latent

    G = ctx.G
    a = Latent.from_seed(G, list(ctx.seeds(n_pairs, MIX_OFFSET)), space="w+")
    b = Latent.from_seed(G, list(ctx.seeds(n_pairs, MIX_OFFSET + 10_000)), space="w+")
    out = {"a": ctx.read(render_ws(G, a.tensor))[0], "b": ctx.read(render_ws(G, b.tensor))[0], "n": n_pairs}
    for group in layer_presets(G):
        out[group] = ctx.read(render_ws(G, style_mix(G, a, b, group).tensor))[0]
    return out


def layer_claims(m: dict, names: Sequence[str], *, resamples: int = 1000) -> list[Claim]:
    """One row per layer group: the claimed attribute group's transfer share minus the largest other group's."""
    names = list(names)
    cols = {g: [names.index(x) for x in attrs] for g, attrs in ATTRIBUTE_GROUPS.items()}
    gnames = list(ATTRIBUTE_GROUPS)
    claims = []
    described = {"coarse": "pose, general hair style, face shape, eyeglasses (4x4-8x8)",
                 "middle": "smaller facial features, hair style, eyes open/closed (16x16-32x32)",
                 "fine": "mainly the colour scheme and microstructure (64x64 and up)"}
    label = {"pose_shape": "pose and shape", "features": "features", "colours": "colours"}
    for layer, own in LAYER_CLAIMS.items():
        def stat(idx, layer=layer, own=own):
            shares = [transfer_shares(m["a"], m["b"], m[layer], cols[g], idx) for g in gnames]
            other = max(s for g, s in zip(gnames, shares) if g != own)
            return np.array(shares + [shares[gnames.index(own)] - other])

        est, lo, hi = bootstrap_statistic(m["n"], stat, resamples=resamples)
        t = Test("share_gap", est[-1], lo[-1], hi[-1], m["n"])
        shares = ", ".join(f"{label[g]} {est[i]:.2f} [{lo[i]:.2f}, {hi[i]:.2f}]" for i, g in enumerate(gnames))
        metrics = {f"layers_{layer}_share_{g}": float(est[i]) for i, g in enumerate(gnames)}
        claims.append(Claim(
            f"layers_{layer}", f"The {layer} layers carry {label[own]}", "StyleGAN (Karras et al. 2019), Fig. 3",
            f"copying the {layer} styles brings {described[layer]}",
            f"share of the source's difference transferred (judge): {shares}; {label[own]} - next "
            f"{fmt_interval(t.estimate, t.lo, t.hi)} (n = {m['n']} pairs)", [t], metrics))
    return claims


# ------------------------------------------------------------------------------------------------
# claim 9: truncation


def pairwise_distances(x: np.ndarray) -> np.ndarray:
    """Euclidean distances ``[n, n]`` between the rows of ``x [n, d]``."""
    sq = (x ** 2).sum(1)
    return np.sqrt(np.clip(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0, None))


def mean_pairwise(d: np.ndarray, idx: np.ndarray) -> float:
    """Mean distance over the pairs of distinct draws in ``idx`` (a bootstrap resample may repeat a sample)."""
    sub = d[np.ix_(idx, idx)]
    n = len(idx)
    return float((sub.sum() - np.trace(sub)) / (n * (n - 1)))


@torch.no_grad()
def measure_truncation(ctx: Context, n: int, psis: Sequence[float]) -> dict:
    """Judge readings of ``n`` report codes at each psi (same codes, truncated), and judge features of ``n`` renders."""
    from ..latent import Latent
    from ..train.metrics import frechet_distance

    G = ctx.G
    seeds = list(ctx.seeds(n, TRUNC_OFFSET))
    renders = held_out_renders(ctx.seeds(n, TRUNC_OFFSET + 10_000), G.img_resolution)
    render_feats = ctx.read(renders)[2]
    out = {"n": n, "psis": list(psis)}
    for psi in psis:
        unit, face, feats = ctx.read(render_ws(G, Latent.from_seed(G, seeds, psi=psi, space="w+").tensor))
        out[psi] = {"unit": unit, "face": face, "fd": frechet_distance(render_feats, feats)}
    return out


def truncation_claims(t: dict, *, psi: float = TRUNCATION_PSI, resamples: int = 1000) -> list[Claim]:
    n, psis = t["n"], t["psis"]
    d = {p: pairwise_distances(t[p]["unit"]) for p in psis}

    def stat(idx):
        div = [mean_pairwise(d[p], idx) for p in psis]
        face = [float(t[p]["face"][idx].mean()) for p in psis]
        return np.array(div + face + [div[psis.index(1.0)] - div[psis.index(psi)],
                                      face[psis.index(psi)] - face[psis.index(1.0)]])

    est, lo, hi = bootstrap_statistic(n, stat, resamples=resamples)
    k = len(psis)
    tests = [Test("diversity_loss", est[2 * k], lo[2 * k], hi[2 * k], n),
             Test("face_gain", est[2 * k + 1], lo[2 * k + 1], hi[2 * k + 1], n)]
    series = "; ".join(f"psi {p:g}: diversity {est[i]:.3f}, face {est[k + i]:.4f}, FD {t[p]['fd']:.3g}"
                       for i, p in enumerate(psis))
    metrics = {}
    for i, p in enumerate(psis):
        tag = f"{p:g}".replace(".", "p")
        metrics.update({f"truncation_diversity_psi{tag}": float(est[i]), f"truncation_face_psi{tag}": float(est[k + i]),
                        f"truncation_fd_psi{tag}": float(t[p]["fd"])})
    return [Claim(
        "truncation", "Truncation trades diversity for fidelity", "StyleGAN (Karras et al. 2019), truncation trick in W",
        "psi < 1 gives more typical, cleaner faces at the cost of variation",
        f"{series}. psi 1 -> {psi:g}: diversity lost {fmt_interval(tests[0].estimate, tests[0].lo, tests[0].hi, 3)}, "
        f"face score gained {fmt_interval(tests[1].estimate, tests[1].lo, tests[1].hi, 4)} (diversity: mean pairwise "
        f"distance of the judge's attribute readings; FD: to {n} renders in judge features; n = {n} codes per psi)",
        tests, metrics)]


# ------------------------------------------------------------------------------------------------
# the benchmark


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..edit.presets import INTERFACEGAN

    p.add_argument("--markdown", type=Path, default=None, metavar="PATH",
                   help="write the claims table here (default: the --json path with .md)")
    p.add_argument("--generator", default="toyfaces")
    p.add_argument("--judge", default="toyfaces", help="held-out judge (name or file)")
    p.add_argument("--untrained-judge", action="store_true",
                   help="plumbing only: an untrained judge (stylekit.judge.network.new_judge); numbers are meaningless")
    p.add_argument("--e4e", default="e4e-toyfaces")
    p.add_argument("--psp", default="psp-toyfaces")
    p.add_argument("--restyle", default="restyle-toyfaces")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {', '.join(PARTS)}")
    p.add_argument("--n-opt", type=int, default=10, help="renders for W / W+ / noise optimisation")
    p.add_argument("--n-pti", type=int, default=6, help="renders (the first of --n-opt) for PTI")
    p.add_argument("--opt-steps", type=int, default=OPTIMIZE.steps, help="W and W+ steps (default: the preset)")
    p.add_argument("--noise-steps", type=int, default=300, help="Image2StyleGAN++ noise steps after W+")
    p.add_argument("--pti-steps", type=int, default=PTI.steps, help="PTI tuning steps (default: the preset)")
    p.add_argument("--n-enc", type=int, default=200, help="renders for the encoder claims")
    p.add_argument("--n-fit", type=int, default=INTERFACEGAN.n, help="InterFaceGAN fitting codes (the preset)")
    p.add_argument("--keep-fraction", type=float, default=INTERFACEGAN.keep_fraction)
    p.add_argument("--n-codes", type=int, default=200, help="report codes for the disentanglement claim")
    p.add_argument("--n-dev", type=int, default=len(DEV_LAYER_SEEDS),
                   help="development codes on which the W+ layer group of each attribute is chosen")
    p.add_argument("--n-pairs", type=int, default=300, help="code pairs for the layer claims")
    p.add_argument("--n-trunc", type=int, default=400, help="codes per psi for the truncation claim")
    p.add_argument("--psis", default="0.3,0.5,0.7,1.0", help="truncation psi values (must include 1 and 0.5)")
    p.add_argument("--threads", type=int, default=1)


def _load_judge(args):
    """``(judge, trained)``: the held-out judge, or with ``--untrained-judge`` a fresh one (plumbing only)."""
    from ..judge import load_judge
    from ..judge.network import new_judge

    if args.untrained_judge:
        return new_judge(seed=0).eval().requires_grad_(False), False
    return load_judge(args.judge), True


def run(args) -> dict[str, float]:
    from ..checkpoints.load import load_generator
    from ..invert.encoder import load_encoder

    if args.threads:
        torch.set_num_threads(args.threads)
    parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    unknown = [x for x in parts if x not in PARTS]
    if unknown:
        raise SystemExit(f"unknown parts {unknown}; choose from {', '.join(PARTS)}")
    psis = [float(x) for x in args.psis.split(",")]
    if "truncation" in parts and (1.0 not in psis or TRUNCATION_PSI not in psis):
        raise SystemExit(f"--psis must include 1 and {TRUNCATION_PSI}")
    G = load_generator(args.generator)
    judge, trained = _load_judge(args)
    ctx = Context(G, judge, args)
    claims: list[Claim] = []
    metrics: dict[str, float] = {"judge_trained": int(trained), "threads": torch.get_num_threads()}
    t_all = time.perf_counter()
    renders = None
    if "optimisation" in parts or "encoders" in parts:
        renders = held_out_renders(ctx.seeds(max(args.n_enc, args.n_opt), RENDER_OFFSET), G.img_resolution)
    if "encoders" in parts:
        t0 = time.perf_counter()
        e4e, psp = load_encoder(args.e4e), load_encoder(args.psp)
        inv = invert_with_encoders(G, renders[:args.n_enc], e4e=e4e, psp=psp, restyle=load_encoder(args.restyle))
        psnrs = {k: per_image_psnr(v[1], renders[:args.n_enc]) for k, v in inv.items()}
        bounds = ctx.boundaries()
        edits = {k: inversion_editability(ctx, inv[k][0], inv[k][1], bounds) for k in ("e4e", "psp")}
        claims += encoder_claims(psnrs, edits, n_attributes=len(bounds.normals))
        metrics["seconds_encoders"] = time.perf_counter() - t0
        ctx.log(f"encoders: {metrics['seconds_encoders']:.0f}s")
    if "disentanglement" in parts:
        t0 = time.perf_counter()
        d = measure_disentanglement(ctx, args.n_codes, dev_seeds=DEV_LAYER_SEEDS[:args.n_dev])
        claims += disentanglement_claims(d)
        metrics["seconds_disentanglement"] = time.perf_counter() - t0
        ctx.log(f"disentanglement: {metrics['seconds_disentanglement']:.0f}s; channels {d['channels']}")
    if "layers" in parts:
        t0 = time.perf_counter()
        claims += layer_claims(measure_layers(ctx, args.n_pairs), ctx.names)
        metrics["seconds_layers"] = time.perf_counter() - t0
    if "truncation" in parts:
        t0 = time.perf_counter()
        claims += truncation_claims(measure_truncation(ctx, args.n_trunc, psis))
        metrics["seconds_truncation"] = time.perf_counter() - t0
    if "optimisation" in parts:
        t0 = time.perf_counter()
        p = measure_optimisation(G, renders[:args.n_opt], steps=args.opt_steps, noise_steps=args.noise_steps,
                                 pti_steps=args.pti_steps, n_pti=min(args.n_pti, args.n_opt), log=ctx.log)
        claims += optimisation_claims(p, steps=args.opt_steps, noise_steps=args.noise_steps, pti_steps=args.pti_steps,
                                      noise_strength=noise_strength_max(G))
        metrics.update({f"seconds_per_image_{k[len('seconds_'):]}": float(v) for k, v in p.items()
                        if k.startswith("seconds_")})
        metrics["seconds_optimisation"] = time.perf_counter() - t0
    metrics["seconds_total"] = time.perf_counter() - t_all
    claims.sort(key=lambda c: CLAIM_ORDER.index(c.key))
    metrics.update(claim_metrics(claims))
    metrics["claims_holding"] = sum(c.holds == "yes" for c in claims)
    metrics["claims_measured"] = len(claims)
    starts = [r.start for r in ctx.seed_ranges]
    if starts:
        metrics["report_seed_start"] = min(starts)
        metrics["report_seed_count"] = max(r.stop for r in ctx.seed_ranges) - min(starts)
    table = markdown_table(claims)
    md = args.markdown or (Path(args.json).with_suffix(".md") if getattr(args, "json", None) else None)
    if md is not None:
        md.parent.mkdir(parents=True, exist_ok=True)
        md.write_text(table)
        ctx.log(f"table written to {md}")
    print(table, file=sys.stderr)
    return metrics


def main(argv=None) -> int:
    """Standalone entry point; same as ``python -m stylekit.bench claims``."""
    from .__main__ import main as dispatch

    return dispatch(["claims", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
