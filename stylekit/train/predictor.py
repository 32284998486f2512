"""Train the toyfaces attribute predictor on renders made on the fly.

    python -m stylekit.train predictor --out runs/predictor --steps 3000

Every step samples fresh random attributes, renders them, mixes them with as many renders drawn
from a replay pool of recent renders (so each render serves about two steps) and degrades about
half of the batch the way GAN samples and re-encoded images are degraded (see
:mod:`stylekit.train.predictor_data`). The loss is binary cross-entropy on the binary attributes
plus a weighted mean squared error on the unit-scale continuous ones; AdamW with a 150-step warm-up
and a cosine down to 2%. The network is channels-last in every precision; with ``--precision bf16``
(or fp16) its forward runs under autocast and the outputs are cast to float32 before the loss
(:mod:`stylekit.train.mixed_precision`).

The run is resumable (``checkpoint-latest.pt`` every ``snapshot_every`` steps; ``--resume``
continues it). At the end a held-out set of fresh renders (clean and degraded) is scored: accuracy
per binary attribute and R² per continuous one; the weights are written as float16 safetensors
(``predictor.safetensors``) with the metrics in the metadata, and the model card
(``predictor.md``) with the metrics and the exact command.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from ..checkpoints.predictor import save_predictor
from ..errors import InvalidArgumentError
from ..networks.predictor import AttributePredictor
from ..progress import ProgressCallback, no_progress
from ..toyfaces.attributes import ATTRIBUTES, BINARY_ATTRIBUTES, CONTINUOUS_ATTRIBUTES
from ..toyfaces.predictor import new_predictor
from .predictor_data import RenderPool, make_batch
from .skeleton import Run, Smoothed, StepsConfig

__all__ = ["PredictorConfig", "evaluate", "train_predictor", "model_card"]

_BINARY_MASK = torch.tensor([a.kind == "binary" for a in ATTRIBUTES])
_REG_WEIGHT = 20.0


@dataclass
class PredictorConfig(StepsConfig):
    """Settings of :func:`train_predictor`."""

    steps: int = 3000
    batch: int = 64                   # renders per step
    lr: float = 2e-3                  # peak AdamW learning rate
    warmup: int = 150
    lr_floor: float = 0.02
    log_every: int = 50
    snapshot_every: int = 250
    eval_samples: int = 2000          # held-out renders scored at the end (clean, and degraded)
    pool: int = 4096                  # renders kept in the replay pool
    fresh_per_step: int | None = None  # new renders per step (default half the batch; = batch: no pool)
    command: str = ""                 # the command line, recorded in the model card

    kind: ClassVar[str] = "predictor"
    RUN_FIELDS: ClassVar[tuple[str, ...]] = StepsConfig.RUN_FIELDS + ("command",)

    def fresh(self) -> int:
        return self.batch // 2 if self.fresh_per_step is None else int(self.fresh_per_step)

    def validate(self) -> None:
        super().validate()
        if self.batch < 2:
            raise InvalidArgumentError("the predictor trainer needs --batch >= 2.")
        if not 1 <= self.fresh() <= self.batch or self.pool < self.batch - self.fresh():
            raise InvalidArgumentError("--fresh-per-step must be in [1, batch size] and --pool at "
                                       "least batch size minus fresh renders.")


def _loss(raw: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE on the binary columns of ``raw [N, A]`` + 20 x MSE on the unit-scale continuous ones."""
    mask = _BINARY_MASK.to(raw.device)
    bce = F.binary_cross_entropy_with_logits(raw[:, mask], target[:, mask])
    mse = F.mse_loss(raw[:, ~mask], target[:, ~mask])
    return bce + _REG_WEIGHT * mse


@torch.no_grad()
def evaluate(model: AttributePredictor, *, samples: int = 2000, seed: int = 1_000_003,
             degraded: bool = False, batch_size: int = 100, device="cpu") -> dict:
    """Score a model on fresh held-out renders.

    Returns {"accuracy": {binary: acc}, "r2": {continuous: R²}, "samples": n, "degraded": bool}.
    R² is 1 - SSE/SST over the held-out set, in attribute units.
    """
    was_training = model.training
    model.eval()
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    preds, targets = [], []
    for start in range(0, samples, batch_size):
        n = min(batch_size, samples - start)
        images, target = make_batch(n, rng, gen, device=device,
                                    degrade_p=1.0 if degraded else 0.0,
                                    low_res_fraction=0.25 if degraded else 0.0)
        preds.append(model.predict_unit(images).cpu())
        targets.append(target.cpu())
    model.train(was_training)
    p, t = torch.cat(preds), torch.cat(targets)
    out = {"accuracy": {}, "r2": {}, "samples": samples, "degraded": degraded}
    for j, spec in enumerate(ATTRIBUTES):
        if spec.kind == "binary":
            out["accuracy"][spec.name] = float(((p[:, j] >= 0.5) == (t[:, j] >= 0.5)).float().mean())
        else:
            sse = float(((p[:, j] - t[:, j]) ** 2).sum())
            sst = float(((t[:, j] - t[:, j].mean()) ** 2).sum())
            out["r2"][spec.name] = 1.0 - sse / max(sst, 1e-12)
    return out


def _loop(run: Run, cfg: PredictorConfig, model, opt) -> None:
    """Steps ``run.step .. cfg.steps`` (fresh renders plus the pool, degraded), logging and checkpointing."""
    start, device = run.step, run.device
    fresh = cfg.fresh()
    use_pool = fresh < cfg.batch
    if use_pool and start < cfg.steps:
        run.log(f"filling a pool of {cfg.pool} renders ...")
        pool = RenderPool(cfg.pool, run.rng, run.gen, device=device)
    model.train()
    t0, running = time.time(), Smoothed()
    for step in range(start, cfg.steps):
        for group in opt.param_groups:
            group["lr"] = cfg.lr_at(step)
        if use_pool:
            images, target = pool.batch(cfg.batch, fresh)
        else:
            images, target = make_batch(cfg.batch, run.rng, run.gen, device=device)
        images, target = run.shard(images), run.shard(target)  # every rank draws the batch, trains on its rows
        with run.amp.autocast():
            out = model(images.contiguous(memory_format=torch.channels_last))
        loss = _loss(out.float(), target)
        opt.zero_grad(set_to_none=True)
        run.amp.backward(loss)
        run.amp.step(opt)
        running.update(float(loss.detach()))
        run.end_step(cfg, step, "predictor", running.value, opt, start=start, t0=t0,
                     nets={"model": model}, optims={"optimizer": opt})
    run.step = cfg.steps
    run.checkpoint(nets={"model": model}, optims={"optimizer": opt})


def _finish(run: Run, cfg: PredictorConfig, model) -> dict:
    """Score the held-out renders, write ``predictor.safetensors`` and ``predictor.md``; return the metrics."""
    model.eval()
    clean = evaluate(model, samples=cfg.eval_samples, device=run.device)
    degraded = evaluate(model, samples=cfg.eval_samples, degraded=True, device=run.device)
    metrics = {"clean": clean, "degraded": degraded, "steps": cfg.steps, "batch_size": cfg.batch,
               "lr": cfg.lr, "seed": cfg.seed}
    for name in BINARY_ATTRIBUTES:
        run.log(f"  {name:16s} accuracy {clean['accuracy'][name]:.4f}  (degraded {degraded['accuracy'][name]:.4f})")
    for name in CONTINUOUS_ATTRIBUTES:
        run.log(f"  {name:16s} R2       {clean['r2'][name]:.4f}  (degraded {degraded['r2'][name]:.4f})")
    model = model.to(memory_format=torch.contiguous_format)
    out = save_predictor(model.cpu(), run.out / "predictor.safetensors", metrics=metrics)
    card = out.with_name("predictor.md")
    card.write_text(model_card(model, metrics, command=cfg.command or None, weights_file=out.name))
    run.export(out, companions=(card,))
    run.log(f"saved {out} ({out.stat().st_size / 1e6:.2f} MB) and {card}")
    return metrics


def train_predictor(cfg: PredictorConfig, *, progress: ProgressCallback = no_progress,
                    log: Callable[[str], None] | None = print) -> dict:
    """Train (or, with ``cfg.resume``, continue) the toyfaces predictor and save it; returns the held-out metrics.

    On several processes each rank draws the whole batch (the renders and the pool are the same on
    every rank) and trains on its rows; BatchNorm uses each rank's rows. Rank 0 alone scores and
    writes the result; the other ranks return an empty dict.

    Writes ``predictor.safetensors``, ``predictor.md`` and ``checkpoint-latest.pt`` in ``cfg.out``
    (``cfg.export`` also gets a copy of the weights, with the card beside it).
    """
    with Run(cfg, log=log, progress=progress) as run:
        model = new_predictor().to(run.device).to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
        run.resume_or_start({"model": model}, {"optimizer": opt})
        run.distribute({"model": model}, {"optimizer": opt})
        _loop(run, cfg, model, opt)
        return _finish(run, cfg, model) if run.is_main else {}


def model_card(model: AttributePredictor, metrics: dict, *, command: str | None,
               weights_file: str) -> str:
    """Markdown model card with the architecture, training recipe, metrics and command."""
    n_params = sum(p.numel() for p in model.parameters())
    clean, degraded = metrics["clean"], metrics["degraded"]
    lines = [
        "# toyfaces attribute predictor",
        "",
        f"`{weights_file}`: a small CNN ({n_params / 1e6:.2f} M parameters, float16 safetensors, "
        "config in the metadata) that reads every toyfaces attribute back from an image "
        "`[N, 3, H, W]` in `[-1, 1]` (resized to 64x64 inside). Load it with "
        "`stylekit.checkpoints.predictor.load_predictor(\"toyfaces\")`.",
        "",
        "- Outputs: one logit per binary attribute (`predict` gives probabilities) and one "
        "unit-scale regression per continuous attribute (`predict` gives attribute units).",
        "- `features(images)`: the 128-d penultimate layer, an offline perceptual feature space "
        "(Fréchet distances, feature matching).",
        "- Architecture: 7 conv layers (BN, SiLU; four stride-2), flatten 4x4x64, linear 128, "
        "linear to the attributes. See `stylekit/networks/predictor.py`.",
        "",
        "## Training data",
        "",
        "Renders of `stylekit.toyfaces.render_batch` made on the fly from independent random "
        "attributes (`sample_attributes`): three quarters at 64x64, one quarter at 32x32 and "
        "upsampled. About half of each batch is degraded like GAN samples: blur (sigma <= 0.8 px), "
        "down/up resampling, Gaussian noise (std <= 0.05), JPEG-like 8x8 block-DCT quantisation, "
        "gain/offset within 4%. Loss: BCE on binaries + 20 x MSE on unit-scale continuous "
        "attributes; AdamW, cosine learning rate.",
        "",
        f"Steps: {metrics['steps']}, batch size {metrics['batch_size']}, learning rate "
        f"{metrics['lr']}, seed {metrics['seed']} (CPU).",
        "",
        "## Command",
        "",
        "```",
        command or "python -m stylekit.train predictor",
        "```",
        "",
        f"## Held-out metrics ({clean['samples']} fresh renders each)",
        "",
        "Clean: 64x64 renders. Degraded: every image degraded as in training, a quarter rendered "
        "at 32x32.",
        "",
        "| attribute | kind | metric | clean | degraded |",
        "|---|---|---|---|---|",
    ]
    for name in BINARY_ATTRIBUTES:
        lines.append(f"| {name} | binary | accuracy | {clean['accuracy'][name]:.4f} | "
                     f"{degraded['accuracy'][name]:.4f} |")
    for name in CONTINUOUS_ATTRIBUTES:
        lines.append(f"| {name} | continuous | R² | {clean['r2'][name]:.4f} | "
                     f"{degraded['r2'][name]:.4f} |")
    lines += [
        "",
        "Targets: accuracy >= 0.95 on every binary attribute and R² >= 0.9 on every continuous "
        "one (clean renders).",
        "",
        "## Limitations",
        "",
        "It has only ever seen toyfaces: on photographs or other drawings its outputs mean "
        "nothing. GAN samples far from the renders (strong artefacts, mixed features) can "
        "confuse it; a fractional binary attribute (a half-faded pair of glasses) gives an "
        "in-between probability.",
        "",
    ]
    return "\n".join(lines)
