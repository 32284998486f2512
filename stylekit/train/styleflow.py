"""Train a StyleFlow flow (a conditional CNF between W and a Gaussian, conditioned on attributes) for a generator.

    python -m stylekit.train styleflow --out runs/styleflow --steps 20000 --threads 1

Every step draws fresh codes ``z ~ N(0, I)``, maps them to W (the mapping network only, no rendering) and labels
them with a **labeller**, then fits the flow (:class:`~stylekit.networks.flow.AttributeFlow`, zuko's CNF vector
field) to ``p(w | attributes)``. Labellers (``--labeller``):

- ``truth`` (toyfaces): the ground-truth attributes of the latents, :func:`stylekit.toyfaces.latents.z_to_attributes`,
  independent of any network and of the held-out judge;
- ``predictor:NAME``: an attribute predictor's readings of the renders (binary readings snapped to 0 / 1);
- from Python, any :class:`ImageLabeller` scorer, e.g. CLIP zero-shot probabilities of prompt pairs for an FFHQ
  model (:func:`clip_labeller`; ``train_styleflow(cfg, labeller=clip_labeller(clip, {...}))``); ``--pool N`` labels
  ``N`` codes once and draws the batches from them, for scorers that cost a render per code.

Objectives (``--objective``): ``flow_matching`` (conditional flow matching on straight paths: one evaluation of the
vector field per code, no ODE solve while training; the default) or ``likelihood`` (StyleFlow's maximum likelihood
through the ODE with Hutchinson's trace estimate; every step solves the ODE, about two orders of magnitude slower
on a CPU). AdamW with warm-up and cosine decay; resumable (``checkpoint-latest.pt``; ``--resume``).

At the end it scores the flow on development seeds (:data:`EVAL_SEED_START` on; never the report seeds the benchmark
uses, and never the held-out judge): the round trip ``w -> eps -> w``, the noise's statistics and log-likelihood,
and, with an attribute predictor that reads the flow's attributes (``--eval-predictor``), per attribute the
predictor's error after an edit and the change of the other attributes. Writes ``styleflow.safetensors``
(:func:`stylekit.edit.styleflow.save_flow`) and its model card ``styleflow.md``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, ClassVar, Mapping, Sequence

import numpy as np
import torch

from ..errors import InvalidArgumentError
from ..networks.rig import RigParam
from ..progress import ProgressCallback, no_progress
from .skeleton import Run, Smoothed, StepsConfig

__all__ = ["StyleFlowConfig", "EVAL_SEED_START", "TruthLabeller", "ImageLabeller", "clip_labeller", "make_labeller",
           "evaluate_styleflow", "train_styleflow"]

#: The trainer's evaluation codes: ``Latent.from_seed`` development seeds from here (inside 1,000-99,999).
EVAL_SEED_START = 63_000
#: How far (unit scale) the evaluation moves a continuous attribute (the way there is room); binaries switch.
EVAL_SHIFT = 0.4


@dataclass
class StyleFlowConfig(StepsConfig):
    """Settings of :func:`train_styleflow`."""

    steps: int = 20000
    batch: int = 256                   # codes per step
    lr: float = 1e-3                   # peak AdamW learning rate
    warmup: int = 200
    lr_floor: float = 0.02
    log_every: int = 500
    snapshot_every: int = 2000
    generator: str = "toyfaces"        # registered name or file of the generator
    labeller: str = "truth"            # 'truth' (toyfaces ground truth) or 'predictor:NAME'
    attributes: str = ""               # comma-separated attributes to condition on ('' = all the labeller gives)
    hidden: str = "256,256,256"        # the vector field MLP's hidden widths
    freqs: int = 4                     # time-embedding frequencies
    objective: str = "flow_matching"   # 'flow_matching' or 'likelihood'
    pool: int = 0                      # 0: fresh labelled codes every step; N: label N codes once, draw from them
    eval_codes: int = 200              # development codes scored at the end
    eval_predictor: str = "toyfaces"   # predictor that scores edits at the end ('' = skip the edit scores)
    command: str = ""                  # the command line, recorded in the model card

    kind: ClassVar[str] = "styleflow"
    RUN_FIELDS: ClassVar[tuple[str, ...]] = StepsConfig.RUN_FIELDS + ("command", "eval_codes", "eval_predictor")

    def hidden_sizes(self) -> tuple[int, ...]:
        try:
            sizes = tuple(int(h) for h in str(self.hidden).split(",") if h.strip())
        except ValueError:
            sizes = ()
        if not sizes or min(sizes) < 1:
            raise InvalidArgumentError(f"--hidden must be comma-separated widths >= 1 like 256,256,256, not "
                                       f"{self.hidden!r}.")
        return sizes

    def attribute_names(self) -> list[str]:
        return [n.strip() for n in str(self.attributes).split(",") if n.strip()]

    def validate(self) -> None:
        super().validate()
        self.hidden_sizes()
        if self.objective not in ("flow_matching", "likelihood"):
            raise InvalidArgumentError(f"--objective must be flow_matching or likelihood, not {self.objective!r}.")
        if not (self.labeller == "truth" or str(self.labeller).startswith("predictor")):
            raise InvalidArgumentError(f"--labeller must be 'truth' or 'predictor:NAME', not {self.labeller!r} (other "
                                       "scorers, such as CLIP zero-shot, plug in from Python: train_styleflow(cfg, "
                                       "labeller=ImageLabeller(...))).")
        if self.pool < 0 or self.freqs < 1 or self.eval_codes < 1:
            raise InvalidArgumentError("--pool must be >= 0, --freqs and --eval-codes >= 1.")


# ----------------------------------------------------------------------------------------------
# Labellers: (G, z [N, z_dim], ws [N, L, D]) -> attributes in unit scale [N, A]


class TruthLabeller:
    """The toyfaces ground truth: ``z_to_attributes(z)`` in unit scale (needs a toyfaces generator's z)."""

    name = "truth"

    def __init__(self):
        from ..toyfaces.attributes import ATTRIBUTES

        self.attributes = tuple(RigParam(a.name, a.kind, a.low, a.high) for a in ATTRIBUTES)

    def __call__(self, G, z: torch.Tensor, ws: torch.Tensor) -> np.ndarray:
        from ..toyfaces.attributes import attributes_to_unit
        from ..toyfaces.latents import z_to_attributes

        return attributes_to_unit(z_to_attributes(z))


class ImageLabeller:
    """Any scorer of renders: ``score(images [N, 3, R, R] in [-1, 1]) -> [N, A]`` in unit scale, one column per
    entry of ``attributes`` (:class:`RigParam`: name, kind, range), e.g. CLIP zero-shot probabilities of prompt
    pairs. Binary columns are snapped to 0 / 1 (``snap_binary``). ``name`` is recorded in the flow's file."""

    def __init__(self, attributes: Sequence[RigParam], score: Callable[[torch.Tensor], torch.Tensor], *,
                 name: str = "image scorer", snap_binary: bool = True, batch_size: int = 64):
        self.attributes, self.score, self.name = tuple(attributes), score, name
        self.snap_binary, self.batch_size = snap_binary, batch_size

    @torch.no_grad()
    def __call__(self, G, z: torch.Tensor, ws: torch.Tensor) -> np.ndarray:
        out = []
        for i in range(0, ws.shape[0], self.batch_size):
            img = G.synthesis(ws[i:i + self.batch_size], noise_mode="const")
            out.append(torch.as_tensor(self.score(img)).double().cpu().numpy())
        unit = np.clip(np.concatenate(out), 0.0, 1.0)
        if unit.shape != (ws.shape[0], len(self.attributes)):
            raise InvalidArgumentError(f"the labeller {self.name!r} returned shape {unit.shape}, expected "
                                       f"{(ws.shape[0], len(self.attributes))} (one column per attribute).")
        if self.snap_binary:
            for j, p in enumerate(self.attributes):
                if p.kind == "binary":
                    unit[:, j] = (unit[:, j] > 0.5).astype(np.float64)
        return unit


def clip_labeller(clip, prompts: Mapping[str, tuple[str, str]], *, name: str = "clip zero-shot") -> ImageLabeller:
    """An :class:`ImageLabeller` of binary attributes from CLIP zero-shot scores: ``prompts`` maps an attribute
    name to ``(positive prompt, neutral prompt)``; the attribute is the probability that the positive one applies
    (:meth:`stylekit.clip_backend.ClipModel.zero_shot_scores`), snapped to 0 / 1. E.g. for an FFHQ model:
    ``clip_labeller(load_clip("ViT-B-32"), {"smiling": ("a smiling face", "a face"), "glasses": ("a face with
    glasses", "a face")})``, then ``train_styleflow(cfg, labeller=...)`` with ``pool`` set (each code is rendered)."""
    if not isinstance(prompts, Mapping) or not prompts:
        raise InvalidArgumentError("clip_labeller needs at least one attribute: {name: (positive, neutral) prompt}.")
    for key, pair in prompts.items():
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(isinstance(t, str) and t for t in pair)):
            raise InvalidArgumentError(f"prompts[{key!r}] must be (positive prompt, neutral prompt), got {pair!r}.")
    params = [RigParam(str(key), "binary", 0.0, 1.0) for key in prompts]

    def score(images: torch.Tensor) -> torch.Tensor:
        return torch.stack([clip.zero_shot_scores(images, pos, neu) for pos, neu in prompts.values()], dim=1)

    return ImageLabeller(params, score, name=name)


def make_labeller(spec: str, *, device="cpu"):
    """``'truth'`` -> :class:`TruthLabeller`; ``'predictor[:NAME]'`` -> an :class:`ImageLabeller` of that attribute
    predictor (default ``toyfaces``)."""
    if spec == "truth":
        return TruthLabeller()
    if str(spec).startswith("predictor"):
        from ..checkpoints.predictor import load_predictor

        name = str(spec).partition(":")[2] or "toyfaces"
        predictor = load_predictor(name, device=device)
        params = [RigParam(h.name, h.kind, float(h.low), float(h.high)) for h in predictor.heads]
        return ImageLabeller(params, predictor.predict_unit, name=f"predictor:{name}")
    raise InvalidArgumentError(f"unknown labeller {spec!r}; use 'truth' or 'predictor:NAME'.")


def _columns(labeller, names: list[str]) -> tuple[list[RigParam], list[int]]:
    known = [p.name for p in labeller.attributes]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InvalidArgumentError(f"--attributes {unknown} are not given by the labeller {labeller.name!r}; it gives: "
                                   f"{', '.join(known)}.")
    names = names or known
    return [labeller.attributes[known.index(n)] for n in names], [known.index(n) for n in names]


# ----------------------------------------------------------------------------------------------
# Evaluation and training


@torch.no_grad()
def evaluate_styleflow(flow, G, predictor=None, *, n: int = 200, seed_start: int = EVAL_SEED_START,
                       labeller=None, batch_size: int = 50) -> dict:
    """Score ``flow`` on ``n`` codes ``Latent.from_seed(G, seed_start ...)`` (psi 1).

    Returns ``roundtrip_w_error`` (mean ``|w - T^-1(T(w))|`` in standard deviations of W, with the labeller's
    attributes when given, else the predictor's), ``noise_mean`` / ``noise_std`` of ``eps`` (0 and 1 when the flow
    fits), ``nll_per_dim`` (exact, 50 codes, nats per dimension of standardised W) and, with ``predictor``, per
    attribute ``error_<name>`` (mean ``|read - asked|``, unit scale; continuous moved :data:`EVAL_SHIFT` the way
    there is room, binary switched; source attributes read by the predictor) and ``keep_<name>`` (mean ``|change|``
    of every other attribute the predictor reads)."""
    from ..edit.styleflow import read_attributes, styleflow_sequence
    from ..latent import Latent

    seeds = list(range(seed_start, seed_start + n))
    lat = Latent.from_seed(G, seeds, psi=1.0)
    w = lat.tensor[:, 0]
    out = {"n": n, "seed_start": seed_start}
    if labeller is not None:
        _, cols = _columns(labeller, list(flow.attribute_names))
        unit = torch.from_numpy(labeller(G, Latent.seed_z(G, seeds), lat.tensor)[:, cols]).float()
    elif predictor is not None:
        read = read_attributes(G, flow, lat, predictor)
        unit = torch.from_numpy(np.stack([p.to_unit(read[p.name]) for p in flow.attributes], 1)).float()
    else:
        raise InvalidArgumentError("evaluate_styleflow needs a labeller or a predictor for the source attributes.")
    eps = flow.to_noise(w, unit)
    back = flow.from_noise(eps, unit)
    out["roundtrip_w_error"] = float(((back - w).abs() / flow.w_std).mean())
    out["noise_mean"], out["noise_std"] = float(eps.mean()), float(eps.std())
    out["nll_per_dim"] = float(-flow.log_prob(w[:50], unit[:50]).mean() / flow.w_dim)
    if predictor is None or any(a not in predictor.attribute_names for a in flow.attribute_names):
        return out

    def read_unit(ws):
        return torch.cat([predictor.predict_unit(G.synthesis(ws[i:i + batch_size], noise_mode="const"))
                          for i in range(0, ws.shape[0], batch_size)]).double().numpy()

    before = read_unit(lat.tensor)
    source = read_attributes(G, flow, lat, predictor)
    for p in flow.attributes:
        j = predictor.attribute_names.index(p.name)
        now = before[:, j]
        target = (now < 0.5).astype(np.float64) if p.kind == "binary" else np.where(now < 0.5, now + EVAL_SHIFT,
                                                                                     now - EVAL_SHIFT)
        edited = styleflow_sequence(G, flow, lat, [{p.name: p.from_unit(target)}], source=source, check=False)[0]
        after = read_unit(edited.tensor)
        others = [k for k in range(after.shape[1]) if k != j]
        out[f"error_{p.name}"] = float(np.abs(after[:, j] - target).mean())
        out[f"keep_{p.name}"] = float(np.abs(after[:, others] - before[:, others]).mean())
    return out


def _build(cfg: StyleFlowConfig, device, labeller=None):
    import stylekit
    from ..networks.flow import AttributeFlow

    G = stylekit.load_generator(cfg.generator, device=device).requires_grad_(False).eval()
    labeller = labeller if labeller is not None else make_labeller(cfg.labeller, device=device)
    params, cols = _columns(labeller, cfg.attribute_names())
    with torch.no_grad():
        z = torch.randn(10_000, G.z_dim, generator=torch.Generator().manual_seed(cfg.seed + 7)).to(device)
        w = G.mapping(z, None)[:, 0]
    flow = AttributeFlow(G.w_dim, params, hidden=cfg.hidden_sizes(), freqs=cfg.freqs, w_mean=w.mean(0),
                         w_std=w.std(0)).to(device)
    return G, labeller, flow, cols


class _Codes:
    """Labelled W codes: fresh every batch, or drawn from a pool labelled once (``cfg.pool``)."""

    def __init__(self, G, labeller, cols, cfg: StyleFlowConfig, device):
        self.G, self.labeller, self.cols, self.device = G, labeller, cols, device
        self.pool = None
        if cfg.pool:
            gen = torch.Generator().manual_seed(cfg.seed + 11)  # the same pool on a resumed run
            self.pool = self.draw(cfg.pool, gen)

    @torch.no_grad()
    def draw(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.randn(n, self.G.z_dim, generator=gen).to(self.device)
        ws = self.G.mapping(z, None)
        unit = self.labeller(self.G, z, ws)[:, self.cols]
        return ws[:, 0], torch.from_numpy(np.ascontiguousarray(unit)).float().to(self.device)

    def batch(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if self.pool is None:
            return self.draw(n, gen)
        idx = torch.randint(0, self.pool[0].shape[0], (n,), generator=gen).to(self.device)
        return self.pool[0][idx], self.pool[1][idx]


def train_styleflow(cfg: StyleFlowConfig, *, labeller=None, progress: ProgressCallback = no_progress,
                    log: Callable[[str], None] | None = print) -> dict:
    """Train (or, with ``cfg.resume``, continue) a StyleFlow flow and save it; returns the evaluation metrics.

    ``labeller`` (a :class:`TruthLabeller`, an :class:`ImageLabeller` or any object with ``attributes``, ``name``
    and ``__call__(G, z, ws) -> [N, A]`` unit scale) overrides ``cfg.labeller``. Writes ``styleflow.safetensors``,
    ``styleflow.md`` and ``checkpoint-latest.pt`` in ``cfg.out`` (``cfg.export`` also gets the weights, with the
    card beside it). One process (the flow is small; the cost is the ODE at the end)."""
    from ..checkpoints.predictor import load_predictor
    from ..edit.styleflow import save_flow
    from ..networks.fingerprint import generator_fingerprint
    from .styleflow_card import model_card

    with Run(cfg, log=log, progress=progress) as run:
        if run.dist.active:
            raise InvalidArgumentError("the StyleFlow trainer runs on one process; start it without torchrun.")
        G, labeller, flow, cols = _build(cfg, run.device, labeller)
        codes = _Codes(G, labeller, cols, cfg, run.device)
        opt = torch.optim.AdamW(flow.parameters(), lr=cfg.lr, weight_decay=1e-5)
        run.resume_or_start({"flow": flow}, {"optimizer": opt})
        start, t0, running = run.step, time.time(), Smoothed()
        flow.train()
        for step in range(start, cfg.steps):
            for group in opt.param_groups:
                group["lr"] = cfg.lr_at(step)
            w, unit = codes.batch(cfg.batch, run.gen)
            with run.amp.autocast():
                loss = (flow.flow_matching_loss(w, unit, run.gen) if cfg.objective == "flow_matching"
                        else flow.nll(w, unit))
            opt.zero_grad(set_to_none=True)
            run.amp.backward(loss.float())
            run.amp.step(opt)
            running.update(float(loss.detach()))
            run.end_step(cfg, step, "styleflow", running.value, opt, start=start, t0=t0,
                         nets={"flow": flow}, optims={"optimizer": opt})
        train_seconds = time.time() - t0
        run.step = cfg.steps
        run.checkpoint(nets={"flow": flow}, optims={"optimizer": opt})
        flow.eval()
        predictor = load_predictor(cfg.eval_predictor, device=run.device) if cfg.eval_predictor else None
        metrics = evaluate_styleflow(flow, G, predictor, n=cfg.eval_codes, labeller=labeller)
        metrics.update({"steps": cfg.steps, "batch": cfg.batch, "lr": cfg.lr, "seed": cfg.seed,
                        "objective": cfg.objective, "train_seconds_this_process": train_seconds,
                        "final_loss": running.value, "threads": torch.get_num_threads()})
        run.log("evaluation (development seeds): " + ", ".join(
            f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float)))
        out = save_flow(flow.cpu(), run.out / "styleflow.safetensors", generator=cfg.generator,
                        fingerprint=generator_fingerprint(G), labeller=labeller.name,
                        metrics={k: v for k, v in metrics.items() if isinstance(v, (int, float))},
                        command=cfg.command)
        card = out.with_name("styleflow.md")
        card.write_text(model_card(flow, metrics, cfg, weights_file=out.name, labeller=labeller.name))
        run.export(out, companions=(card,))
        run.log(f"saved {out} ({out.stat().st_size / 1e6:.2f} MB) and {card}")
        return metrics
