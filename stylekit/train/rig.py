"""Train a rig network (StyleRig-style rig control) for the toyfaces generator, self-supervised through the
attribute predictor.

    python -m stylekit.train rig --out runs/rig --steps 1500 --w-keep 5 --threads 1

Every step draws fresh codes ``z ~ N(0, I)`` (the labelled latents of the toyfaces world), maps them to W with a
random truncation ``psi`` in ``[psi_min, 1]``, renders them and lets the frozen attribute predictor read every
attribute (the *current* values). Then, per code:

- a **reconstruction** row (``recon_fraction`` of the batch) asks every rig value at its current reading:
  the delta must vanish (StyleRig's cycle term ``RigNet(w, p(w)) = w``);
- an **edit** row asks each rig value with probability ``ask_p`` (at least one): a continuous value gets a
  target drawn uniformly over its range, a binary one is switched with probability ``flip_p`` (kept otherwise).

The edited codes ``w + RigNet(w, targets, mask)`` are rendered (gradients flow through the frozen generator
and predictor to the network) and read again. Losses: *edit*, the asked values read back (continuous:
``10 x`` squared unit-scale error; binary: cross-entropy against the asked 0/1); *keep*, every attribute
not asked (the other rig values and all non-rig attributes) reads as before (squared change: ``10 x`` on
continuous values, ``4 x`` on binary probabilities); *recon*, ``w_recon x`` the mean squared standardised
delta of the reconstruction rows; *delta*, ``w_delta x`` that of every row (small edits). AdamW with warm-up and cosine decay.

The run is resumable (``checkpoint-latest.pt``; ``--resume`` continues). At the end it scores the network with
the predictor on development seeds (:data:`EVAL_SEED_START` on; never the report seeds the benchmark uses, and
never the held-out judge) and writes ``rig.safetensors`` (:func:`stylekit.edit.rig.save_rig`) and its model
card ``rig.md``.
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
from .skeleton import Run, Smoothed, StepsConfig

__all__ = ["RigConfig", "DEFAULT_RIG", "EVAL_SEED_START", "rig_losses", "evaluate_rig", "train_rig", "model_card"]

#: The rig values the shipped toyfaces rig controls: head yaw and roll, smile, mouth and eyes open.
DEFAULT_RIG = "yaw,rotation,smile,mouth_open,eyes_open"
#: The trainer's evaluation codes: ``Latent.from_seed`` development seeds from here (inside 1,000-99,999).
EVAL_SEED_START = 60_000
_CONT_WEIGHT = 10.0


@dataclass
class RigConfig(StepsConfig):
    """Settings of :func:`train_rig`."""

    steps: int = 1500
    batch: int = 24                    # codes per step
    lr: float = 2e-3                   # peak AdamW learning rate
    warmup: int = 30
    lr_floor: float = 0.05
    log_every: int = 25
    snapshot_every: int = 100
    generator: str = "toyfaces"        # registered name or file of the generator
    predictor: str = "toyfaces"        # the attribute predictor that reads the rig values back (the training signal)
    rig: str = DEFAULT_RIG             # comma-separated predictor attributes that form the rig
    hidden: int = 64                   # RigNet: width of each row's decoder
    latent_dim: int = 16               # RigNet: width of each row's encoding
    psi_min: float = 0.6               # codes are truncated with psi uniform in [psi_min, 1]
    recon_fraction: float = 0.25       # share of reconstruction rows
    ask_p: float = 0.5                 # edit rows: probability that a rig value is asked
    flip_p: float = 0.8                # edit rows: probability that an asked binary value is switched
    w_keep: float = 5.0                # weight of the keep term (1 and 5 compared on development seeds)
    w_recon: float = 5.0               # weight of the reconstruction term
    w_delta: float = 0.02              # weight of the delta size term
    eval_codes: int = 200              # development codes scored at the end
    command: str = ""                  # the command line, recorded in the model card

    kind: ClassVar[str] = "rig"
    RUN_FIELDS: ClassVar[tuple[str, ...]] = StepsConfig.RUN_FIELDS + ("command", "eval_codes")

    def rig_names(self) -> list[str]:
        return [n.strip() for n in str(self.rig).split(",") if n.strip()]

    def validate(self) -> None:
        super().validate()
        if not self.rig_names():
            raise InvalidArgumentError("--rig needs at least one attribute name, e.g. --rig yaw,smile.")
        for name in ("recon_fraction", "ask_p", "flip_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InvalidArgumentError(f"--{name.replace('_', '-')} must be in [0, 1], not {getattr(self, name)}.")
        if not 0.0 < self.psi_min <= 1.0:
            raise InvalidArgumentError(f"--psi-min must be in (0, 1], not {self.psi_min}.")
        if min(self.hidden, self.latent_dim, self.eval_codes) < 1:
            raise InvalidArgumentError("--hidden, --latent-dim and --eval-codes must be >= 1.")


def _rig_params(predictor, names: list[str]):
    """The :class:`RigParam` of each name from the predictor's heads (kind and range), and their head indices."""
    from ..networks.rig import RigParam

    heads = {h.name: (j, h) for j, h in enumerate(predictor.heads)}
    unknown = [n for n in names if n not in heads]
    if unknown:
        raise InvalidArgumentError(f"--rig names {unknown} are not read by the predictor; it reads: "
                                   f"{', '.join(heads)}.")
    return ([RigParam(n, heads[n][1].kind, float(heads[n][1].low), float(heads[n][1].high)) for n in names],
            torch.tensor([heads[n][0] for n in names]))


def _unit_reading(predictor, raw: torch.Tensor) -> torch.Tensor:
    """Raw predictor outputs ``[N, A]`` -> unit readings (binary probabilities; continuous unclamped)."""
    return torch.where(predictor.binary_mask, torch.sigmoid(raw), raw)


def _draw_targets(current: torch.Tensor, binary: torch.Tensor, cfg: RigConfig, gen: torch.Generator):
    """Targets ``[N, P]`` (unit), mask ``[N, P]`` and the reconstruction rows ``[N]`` (bool) for current readings
    ``current [N, P]`` of the rig values (``binary [P]`` marks binary ones)."""
    n, p = current.shape
    recon = torch.rand(n, generator=gen) < cfg.recon_fraction
    mask = (torch.rand(n, p, generator=gen) < cfg.ask_p).float()
    none = mask.sum(1) == 0
    pick = torch.randint(0, p, (n,), generator=gen)
    mask[none, pick[none]] = 1.0
    uniform = torch.rand(n, p, generator=gen)
    flip = torch.rand(n, p, generator=gen) < cfg.flip_p
    rounded = (current > 0.5).float()
    binary_target = torch.where(flip, 1.0 - rounded, rounded)
    targets = torch.where(binary.unsqueeze(0), binary_target, uniform)
    mask[recon] = 1.0
    targets[recon] = current[recon].clamp(0.0, 1.0)
    return targets, mask, recon


def rig_losses(rignet, G, predictor, ws: torch.Tensor, cfg: RigConfig, gen: torch.Generator,
               rig_index: torch.Tensor) -> dict[str, torch.Tensor]:
    """The losses of one batch of W+ codes ``ws [N, L, D]`` (see the module docstring).

    Returns dict ``edit``, ``keep``, ``recon``, ``delta`` (weighted) and ``total`` (scalars)."""
    with torch.no_grad():
        before = _unit_reading(predictor, predictor(G.synthesis(ws, noise_mode="const")))
    binary_all = predictor.binary_mask
    binary = binary_all[rig_index]
    targets, mask, recon = _draw_targets(before[:, rig_index].cpu(), binary.cpu(), cfg, gen)
    targets, mask, recon = targets.to(ws.device), mask.to(ws.device), recon.to(ws.device)
    delta = rignet(ws, targets, mask)
    raw = predictor(G.synthesis(ws + delta, noise_mode="const"))
    after = _unit_reading(predictor, raw)

    # edit: the asked values read back
    raw_rig, after_rig = raw[:, rig_index], after[:, rig_index]
    bce = F.binary_cross_entropy_with_logits(raw_rig, targets, reduction="none")
    sq = _CONT_WEIGHT * (after_rig - targets).square()
    per = torch.where(binary.unsqueeze(0), bce, sq)
    edit = (per * mask).sum() / mask.sum().clamp_min(1.0)
    # keep: everything not asked reads as before
    asked = torch.zeros_like(after)
    asked[:, rig_index] = mask
    change = (after - before).square() * torch.where(binary_all, 4.0, _CONT_WEIGHT).unsqueeze(0)
    keep = cfg.w_keep * (change * (1 - asked)).sum() / (1 - asked).sum().clamp_min(1.0)
    size = (delta / rignet.w_std).square().mean(dim=(1, 2))  # [N]
    recon_loss = cfg.w_recon * (size[recon].mean() if bool(recon.any()) else size.sum() * 0)
    delta_loss = cfg.w_delta * size.mean()
    total = edit + keep + recon_loss + delta_loss
    return {"edit": edit, "keep": keep, "recon": recon_loss, "delta": delta_loss, "total": total}


def _sample_ws(G, n: int, cfg: RigConfig, gen: torch.Generator, device) -> torch.Tensor:
    """``[n, L, D]`` W codes of fresh ``z ~ N(0, I)`` truncated with ``psi ~ U[psi_min, 1]`` per code."""
    z = torch.randn(n, G.z_dim, generator=gen).to(device)
    psi = (cfg.psi_min + (1 - cfg.psi_min) * torch.rand(n, generator=gen)).to(device)
    with torch.no_grad():
        ws = G.mapping(z, None)
        return G.w_avg + psi.view(n, 1, 1) * (ws - G.w_avg)


@torch.no_grad()
def evaluate_rig(rignet, G, predictor, *, n: int = 200, seed_start: int = EVAL_SEED_START, psi: float = 1.0,
                 batch_size: int = 50) -> dict:
    """Score ``rignet`` with the predictor on ``n`` codes ``Latent.from_seed(G, seed_start ...)``.

    Returns ``recon_change`` (mean ``|change|`` of the predictor's unit readings of every attribute when the
    current readings are asked back), ``recon_w_change`` (mean ``|delta|`` / std of W), and per rig value
    ``error_<name>`` (mean ``|read - asked|`` in unit scale, one value asked at a time, targets uniform for
    continuous values and switched for binary ones) and ``keep_<name>`` (mean ``|change|`` of the other
    attributes then)."""
    from ..edit.rig import apply_rig
    from ..latent import Latent

    lat = Latent.from_seed(G, list(range(seed_start, seed_start + n)), psi=psi)
    ws = lat.tensor
    rng = np.random.default_rng(seed_start)
    names = list(rignet.rig_names)
    index = [predictor.attribute_names.index(x) for x in names]

    def read(w):
        return torch.cat([predictor.predict_unit(G.synthesis(w[i:i + batch_size], noise_mode="const"))
                          for i in range(0, w.shape[0], batch_size)])

    before = read(ws)
    current = {p.name: p.from_unit(before[:, j].clamp(0, 1).numpy().astype(np.float64))
               for p, j in zip(rignet.rig, index)}
    rec = apply_rig(G, rignet, lat, current, check=False).tensor
    out = {"n": n, "seed_start": seed_start, "psi": psi,
           "recon_change": float((read(rec) - before).abs().mean()),
           "recon_w_change": float(((rec - ws).abs() / rignet.w_std).mean())}
    for p, j in zip(rignet.rig, index):
        if p.kind == "binary":
            target_unit = 1.0 - (before[:, j].numpy() > 0.5)
        else:
            target_unit = rng.uniform(0.0, 1.0, size=n)
        edited = apply_rig(G, rignet, lat, {p.name: p.from_unit(target_unit)}, check=False).tensor
        after = read(edited)
        out[f"error_{p.name}"] = float(np.abs(after[:, j].numpy() - target_unit).mean())
        others = [k for k in range(after.shape[1]) if k != j]
        out[f"keep_{p.name}"] = float((after[:, others] - before[:, others]).abs().mean())
    return out


def _build(cfg: RigConfig, device):
    import stylekit
    from ..checkpoints.predictor import load_predictor
    from ..networks.rig import RigNet

    G = stylekit.load_generator(cfg.generator, device=device).requires_grad_(False).eval()
    predictor = load_predictor(cfg.predictor, device=device)
    params, rig_index = _rig_params(predictor, cfg.rig_names())
    with torch.no_grad():
        z = torch.randn(2000, G.z_dim, generator=torch.Generator().manual_seed(cfg.seed + 7)).to(device)
        w = G.mapping(z, None)[:, 0]
    rignet = RigNet(G.w_dim, G.num_ws, params, hidden=cfg.hidden, latent_dim=cfg.latent_dim,
                    w_mean=w.mean(0), w_std=float(w.std(0).mean())).to(device)
    return G, predictor, rignet, rig_index.to(device)


def train_rig(cfg: RigConfig, *, progress: ProgressCallback = no_progress,
              log: Callable[[str], None] | None = print) -> dict:
    """Train (or, with ``cfg.resume``, continue) a rig network and save it; returns the evaluation metrics.

    Writes ``rig.safetensors``, ``rig.md`` and ``checkpoint-latest.pt`` in ``cfg.out`` (``cfg.export`` also gets
    the weights, with the card beside it). One process (the network is tiny; the cost is the generator)."""
    from ..edit.rig import save_rig
    from ..networks.fingerprint import generator_fingerprint

    with Run(cfg, log=log, progress=progress) as run:
        if run.dist.active:
            raise InvalidArgumentError("the rig trainer runs on one process; start it without torchrun.")
        G, predictor, rignet, rig_index = _build(cfg, run.device)
        opt = torch.optim.AdamW(rignet.parameters(), lr=cfg.lr, weight_decay=1e-4)
        run.resume_or_start({"rignet": rignet}, {"optimizer": opt})
        start, t0, running = run.step, time.time(), Smoothed()
        parts = {k: Smoothed() for k in ("edit", "keep", "recon", "delta")}
        rignet.train()
        for step in range(start, cfg.steps):
            for group in opt.param_groups:
                group["lr"] = cfg.lr_at(step)
            ws = _sample_ws(G, cfg.batch, cfg, run.gen, run.device)
            with run.amp.autocast():
                losses = rig_losses(rignet, G, predictor, ws, cfg, run.gen, rig_index)
            opt.zero_grad(set_to_none=True)
            run.amp.backward(losses["total"].float())
            run.amp.step(opt)
            running.update(float(losses["total"].detach()))
            for k, s in parts.items():
                s.update(float(losses[k].detach()))
            if cfg.log_every and (step + 1) % cfg.log_every == 0:
                run.log("  parts " + "  ".join(f"{k} {s.value:.4f}" for k, s in parts.items()))
            run.end_step(cfg, step, "rig", running.value, opt, start=start, t0=t0,
                         nets={"rignet": rignet}, optims={"optimizer": opt})
        train_seconds = time.time() - t0
        run.step = cfg.steps
        run.checkpoint(nets={"rignet": rignet}, optims={"optimizer": opt})
        rignet.eval()
        metrics = evaluate_rig(rignet, G, predictor, n=cfg.eval_codes)
        metrics.update({"steps": cfg.steps, "batch": cfg.batch, "lr": cfg.lr, "seed": cfg.seed,
                        "train_seconds_this_process": train_seconds, "final_loss": running.value,
                        "threads": torch.get_num_threads()})
        run.log("evaluation (predictor, development seeds): " + ", ".join(
            f"{k} {v:.4f}" for k, v in metrics.items() if k.startswith(("error_", "keep_", "recon_"))))
        out = save_rig(rignet.cpu(), run.out / "rig.safetensors", generator=cfg.generator,
                       fingerprint=generator_fingerprint(G), metrics=metrics, command=cfg.command)
        card = out.with_name("rig.md")
        card.write_text(model_card(rignet, metrics, cfg, weights_file=out.name))
        run.export(out, companions=(card,))
        run.log(f"saved {out} ({out.stat().st_size / 1e6:.2f} MB) and {card}")
        return metrics


def model_card(rignet, metrics: dict, cfg: RigConfig, *, weights_file: str) -> str:
    """Markdown model card: what it is, the recipe, the command and the predictor's development-seed scores."""
    n_params = sum(p.numel() for p in rignet.parameters())
    rig = ", ".join(f"{p.name} ({p.kind}, {p.low:g}..{p.high:g})" for p in rignet.rig)
    lines = [
        f"# {cfg.generator} rig network (StyleRig-style rig control)",
        "",
        f"`{weights_file}`: a RigNet ({n_params / 1e3:.1f} k parameters, float32 safetensors; config, generator name "
        "and fingerprint in the metadata) that edits a W+ code of the toyfaces generator so that asked rig values "
        f"are read back from its render. Rig: {rig}. Load it with `stylekit.edit.rig.load_rig(\"toyfaces\", G=G)`; "
        "apply it with `apply_rig(G, rignet, latent, {\"yaw\": 20.0})`. It is refused for any other generator.",
        "",
        f"- Architecture (`stylekit/networks/rig.py`): per W+ row, a linear encoder of the standardised row to "
        f"{rignet.latent_dim} numbers, concatenated with the asked values (unit scale) and the asked-mask, a "
        f"{rignet.hidden}-wide SiLU layer and a linear layer to the row's delta (zero at initialisation).",
        "",
        "## Training",
        "",
        "Self-supervised through the toyfaces attribute predictor (`predictor.safetensors`), never the held-out "
        "judge. Fresh codes z ~ N(0, I) every step (the toyfaces world's labelled latents), truncated with psi "
        f"uniform in [{cfg.psi_min:g}, 1]; the predictor reads the current values from their renders. "
        f"{cfg.recon_fraction:.0%} of the rows ask every rig value at its current reading (reconstruction: the "
        f"delta must vanish, weight {cfg.w_recon:g}); the others ask each value with probability {cfg.ask_p:g} "
        f"(continuous targets uniform over the range, binary ones switched with probability {cfg.flip_p:g}). "
        "Losses on the edited render read by the predictor: asked values (10 x squared unit error; binary "
        f"cross-entropy), every value not asked unchanged (weight {cfg.w_keep:g}), and the delta's size "
        f"(weight {cfg.w_delta:g}). AdamW, warm-up {cfg.warmup} steps, cosine to {cfg.lr_floor:g} x.",
        "",
        f"Steps: {metrics['steps']}, batch {metrics['batch']}, learning rate {metrics['lr']}, seed {metrics['seed']}; "
        f"{metrics['train_seconds_this_process'] / 60:.1f} min of training on {metrics['threads']} CPU thread(s).",
        "",
        "## Command",
        "",
        "```",
        cfg.command or "python -m stylekit.train rig --out runs/rig",
        "```",
        "",
        f"## Development scores (predictor, {metrics['n']} codes, Latent.from_seed {metrics['seed_start']}.., "
        f"psi {metrics['psi']:g})",
        "",
        "These are the training signal's own readings, so they flatter the network; `python -m stylekit.bench rig` "
        "measures it with the held-out judge on report seeds, against InterFaceGAN.",
        "",
        "- Reconstruction (current readings asked back): mean |change| of every attribute "
        f"{metrics['recon_change']:.4f} "
        f"(unit scale), mean |delta| {metrics['recon_w_change']:.4f} standard deviations of W.",
        "",
        "| rig value | mean abs error, asked vs read (unit scale) | mean abs change of the other attributes |",
        "|---|---|---|",
    ]
    for p in rignet.rig:
        lines.append(f"| {p.name} | {metrics[f'error_{p.name}']:.4f} | {metrics[f'keep_{p.name}']:.4f} |")
    lines += [
        "",
        "## Limitations",
        "",
        "Only for the toyfaces generator (fingerprint checked). Targets at the ends of a range, or far from what the "
        "generator renders, are met less well. Real faces would need a 3D morphable face model (3DMM) fitted to every "
        "render, as StyleRig does; stylekit has none, so there is no rig for FFHQ or other real-face models.",
        "",
    ]
    return "\n".join(lines)
