"""Train the held-out judge: ``python -m stylekit.judge --out runs/judge [--steps 2500] [--precision bf16]``.

Data: :class:`stylekit.judge.data.FacePool` batches (renders, generator samples labelled by their
latents, negatives; a quarter of the faces new each step; the generator runs in the run's precision). Loss: on faces, binary cross-entropy on the binary attributes plus 10 x the squared error
of the unit-scale continuous ones (per-image weight: renders 1, samples ``sample_weight``); on every
image, binary cross-entropy of the face logit. AdamW, warm-up then cosine; seed 20261202 by default
(the predictor's is 0). Resumable through :class:`stylekit.train.skeleton.Run`.

At the end the judge is scored on fresh held-out data (its own seed): attribute accuracy / R² on
renders and on generator samples (against their latents' labels), the face score's acceptance of
renders and samples, and its rejection of each kind of negative. The weights (float16
``judge.safetensors``, metrics in the metadata) and the card ``judge.md`` go to the run folder
(``--export``: also there).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InvalidArgumentError
from ..progress import ProgressCallback, no_progress
from ..toyfaces.attributes import ATTRIBUTES, BINARY_ATTRIBUTES, CONTINUOUS_ATTRIBUTES
from ..train.skeleton import Run, Smoothed, StepsConfig
from .data import FacePool, renders, samples
from .load import save_judge
from .negatives import KINDS, negatives
from .network import FACE_THRESHOLD, Judge, new_judge

__all__ = ["JudgeConfig", "train_judge", "evaluate_judge", "model_card"]

_BINARY = torch.tensor([a.kind == "binary" for a in ATTRIBUTES])
_REG_WEIGHT = 10.0
EVAL_SEED = 424_242


@dataclass
class JudgeConfig(StepsConfig):
    """Settings of :func:`train_judge`."""

    steps: int = 2000
    batch: int = 64
    lr: float = 2e-3
    warmup: int = 150
    lr_floor: float = 0.02
    seed: int = 20261202
    log_every: int = 50
    snapshot_every: int = 250
    generator: str = "toyfaces"       # the generator whose samples (labelled by latents) it learns to read
    render_fraction: float = 0.4
    sample_fraction: float = 0.3
    sample_weight: float = 0.5
    eval_samples: int = 1000
    pool: int = 4096                  # clean faces kept for reuse (half renders, half samples)
    fresh_fraction: float = 0.25      # share of a batch's faces that are new each step
    command: str = ""

    kind: ClassVar[str] = "judge"
    RUN_FIELDS: ClassVar[tuple[str, ...]] = StepsConfig.RUN_FIELDS + ("command",)

    def validate(self) -> None:
        super().validate()
        if self.batch < 4 or self.pool < 2 * self.batch:
            raise InvalidArgumentError("the judge trainer needs --batch >= 4 and --pool >= 2 x batch.")
        fractions = (self.render_fraction, self.sample_fraction, self.fresh_fraction)
        if not all(0 <= f <= 1 for f in fractions) or self.render_fraction + self.sample_fraction > 1:
            raise InvalidArgumentError("render_fraction, sample_fraction and fresh_fraction must be in [0, 1], "
                                       "the first two summing to at most 1 (the rest are negatives).")
        if self.eval_samples < 1:
            raise InvalidArgumentError("--eval-samples must be >= 1.")


def _loss(raw: torch.Tensor, unit: torch.Tensor, weight: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
    raw = raw.float()
    attrs, face_logit = raw[:, :-1], raw[:, -1]
    b = _BINARY.to(raw.device)
    bce = F.binary_cross_entropy_with_logits(attrs[:, b], unit[:, b], reduction="none").mean(1)
    mse = ((attrs[:, ~b] - unit[:, ~b]) ** 2).mean(1)
    attr_loss = ((bce + _REG_WEIGHT * mse) * weight).sum() / weight.sum().clamp(min=1e-6)
    return attr_loss + F.binary_cross_entropy_with_logits(face_logit, face)


def _scores(pred: torch.Tensor, target: torch.Tensor) -> dict:
    out = {"accuracy": {}, "r2": {}}
    for j, spec in enumerate(ATTRIBUTES):
        if spec.kind == "binary":
            out["accuracy"][spec.name] = float(((pred[:, j] >= 0.5) == (target[:, j] >= 0.5)).float().mean())
        else:
            sse = float(((pred[:, j] - target[:, j]) ** 2).sum())
            sst = float(((target[:, j] - target[:, j].mean()) ** 2).sum())
            out["r2"][spec.name] = 1.0 - sse / max(sst, 1e-12)
    return out


@torch.no_grad()
def evaluate_judge(judge: Judge, G, *, n: int = 1000, seed: int = EVAL_SEED, batch: int = 100) -> dict:
    """Held-out scores of ``judge`` on fresh renders, samples of ``G`` and negatives (see the module docstring)."""
    judge.eval()
    rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    sets: dict[str, list] = {"renders": [], "samples": []}
    neg_face: dict[str, list] = {k: [] for k in KINDS}
    for start in range(0, n, batch):
        m = min(batch, n - start)
        for name, (x, t) in (("renders", renders(m, rng, low_res_fraction=0.0)), ("samples", samples(G, m, gen))):
            unit, face = judge.read_unit(x)
            sets[name].append((unit, t, face))
            for kind in KINDS:
                neg_face[kind].append(judge.face_score(negatives(x, gen, kinds=(kind,))))
    out: dict = {"n": n, "seed": seed, "face_threshold": FACE_THRESHOLD}
    for name, parts in sets.items():
        unit, target, face = (torch.cat([p[i] for p in parts]) for i in range(3))
        out[name] = {**_scores(unit, target), "face_accept": float((face >= FACE_THRESHOLD).float().mean())}
    out["negatives_reject"] = {k: float((torch.cat(v) < FACE_THRESHOLD).float().mean()) for k, v in neg_face.items()}
    return out


def _loop(run: Run, cfg: JudgeConfig, model: Judge, opt, G) -> None:
    start = run.step
    run.log(f"filling a pool of {cfg.pool} faces ...")
    pool = FacePool(G, cfg.pool, run.rng, run.gen)
    model.train()
    t0, running = time.time(), Smoothed()
    for step in range(start, cfg.steps):
        for group in opt.param_groups:
            group["lr"] = cfg.lr_at(step)
        b = pool.batch(cfg.batch, render_fraction=cfg.render_fraction, sample_fraction=cfg.sample_fraction,
                       sample_weight=cfg.sample_weight, fresh_fraction=cfg.fresh_fraction)
        images, unit, weight, face = (run.shard(t) for t in (b.images, b.unit, b.attr_weight, b.face))
        with run.amp.autocast():
            raw = model(images.contiguous(memory_format=torch.channels_last))
        loss = _loss(raw, unit, weight, face)
        opt.zero_grad(set_to_none=True)
        run.amp.backward(loss)
        run.amp.step(opt)
        running.update(float(loss.detach()))
        run.end_step(cfg, step, "judge", running.value, opt, start=start, t0=t0,
                     nets={"model": model}, optims={"optimizer": opt})
    run.step = cfg.steps
    run.checkpoint(nets={"model": model}, optims={"optimizer": opt})


def train_judge(cfg: JudgeConfig, *, progress: ProgressCallback = no_progress,
                log: Callable[[str], None] | None = print) -> dict:
    """Train (or continue) the judge, score it on held-out data, write ``judge.safetensors`` + ``judge.md``."""
    from ..checkpoints.load import load_generator

    G = load_generator(cfg.generator, precision=cfg.precision).eval().requires_grad_(False)
    with Run(cfg, log=log, progress=progress) as run:
        model = new_judge(seed=cfg.seed).to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
        run.resume_or_start({"model": model}, {"optimizer": opt})
        run.distribute({"model": model}, {"optimizer": opt})
        _loop(run, cfg, model, opt, G)
        if not run.is_main:  # several processes: rank 0 scores and writes the judge
            return {}
        model = model.to(memory_format=torch.contiguous_format).eval()
        metrics = evaluate_judge(model, G, n=cfg.eval_samples)
        metrics.update({"steps": cfg.steps, "batch_size": cfg.batch, "lr": cfg.lr, "train_seed": cfg.seed,
                        "generator": cfg.generator})
        for name in ("renders", "samples"):
            m = metrics[name]
            run.log(f"{name}: min acc {min(m['accuracy'].values()):.3f}  min R2 {min(m['r2'].values()):.3f}  "
                    f"face accept {m['face_accept']:.3f}")
        run.log("negatives rejected: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics["negatives_reject"].items()))
        out = save_judge(model, run.out / "judge.safetensors", metrics=metrics)
        card = out.with_name("judge.md")
        card.write_text(model_card(model, metrics, command=cfg.command or None))
        run.export(out, companions=(card,))
        return metrics


def model_card(model: Judge, metrics: dict, *, command: str | None) -> str:
    """The judge's Markdown card: what it is, who may use it, how it was trained, its held-out scores."""
    n_params = sum(p.numel() for p in model.parameters())
    r, s = metrics["renders"], metrics["samples"]
    lines = [
        "# toyfaces held-out judge",
        "",
        f"`judge.safetensors`: a residual CNN ({n_params / 1e6:.2f} M parameters, no normalisation (SkipInit "
        "gains), GELU, coordinate channels; float16 safetensors, config in the metadata) that reads the 15 toyfaces attributes and a face "
        "score from `[N, 3, H, W]` images in `[-1, 1]` (resized to 64x64 inside). Load it with "
        "`stylekit.judge.load_judge()`.",
        "",
        "**Held out.** Only the benchmarks use it (an import-linter contract forbids every training, selection "
        "and tuning module and the gallery from importing `stylekit.judge`). Nothing was trained, selected or "
        "tuned against it. It is another architecture, seed and data mix than the attribute predictor "
        "(`predictor.md`), which is a training loss of the generator and the labeller of InterFaceGAN.",
        "",
        "## Training",
        "",
        f"{metrics['steps']} steps of batch {metrics['batch_size']}, AdamW lr {metrics['lr']}, seed "
        f"{metrics['train_seed']}. Each batch: 40% renders of sampled attributes, 30% samples of the "
        f"`{metrics['generator']}` generator labelled by their latents (`z_to_attributes`, weight 0.5), half of "
        "both degraded (mild blur, resampling, JPEG-like, noise, gain; the clean faces come from a pool of "
        "4096 in which a quarter of each batch is new, so each face serves about four steps); 30% negatives that must score face 0: flat "
        "colours (grey, black, white included), white/uniform/smooth noise, faces blurred with sigma 2.5-6 px, "
        "faces scrambled into 2x2-8x8 patches, faces with a central box (25-50% of the side) filled with one "
        "colour, faces drowned in 55-90% noise (`stylekit/judge/negatives.py`).",
        "",
        "## Command",
        "",
        "```",
        command or "python -m stylekit.judge --out runs/judge",
        "```",
        "",
        f"## Held-out scores ({metrics['n']} fresh images per set, seed {metrics['seed']})",
        "",
        "Samples are scored against their latents' labels, so their figures include the generator's own "
        "failures to draw an attribute.",
        "",
        "| attribute | metric | renders | generator samples |",
        "|---|---|---|---|",
    ]
    for name in BINARY_ATTRIBUTES:
        lines.append(f"| {name} | accuracy | {r['accuracy'][name]:.3f} | {s['accuracy'][name]:.3f} |")
    for name in CONTINUOUS_ATTRIBUTES:
        lines.append(f"| {name} | R² | {r['r2'][name]:.3f} | {s['r2'][name]:.3f} |")
    lines += [
        f"| face score >= {metrics['face_threshold']} | accepted | {r['face_accept']:.3f} | {s['face_accept']:.3f} |",
        "",
        "| negative kind | rejected (face score < threshold) |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v:.3f} |" for k, v in metrics["negatives_reject"].items()]
    lines += [
        "",
        "## Limitations",
        "",
        "It knows toyfaces only. It has seen the shipped generator's samples, so it reads that generator's "
        "rendering of an attribute; a new generator should be judged by a judge retrained on its samples too. "
        "A negative kind it never saw (e.g. a face drawn twice) may pass the face score.",
        "",
    ]
    return "\n".join(lines)
