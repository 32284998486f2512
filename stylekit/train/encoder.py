"""Train a pSp / e4e encoder (or a ReStyle encoder) for a generator.

The loop follows e4e's training (Tov et al. 2021), sized for a CPU::

    x      = a batch of training images: toyfaces renders, generator samples, or both ('mix')
    codes  = E(x)                                     (offsets from latent_avg, [N, num_ws, w_dim])
    y      = G.synthesis(latent_avg + codes)          (G frozen, stored noise)
    loss   = pixel_weight * MSE(y, x) + perceptual_weight * P(y, x)
           + delta_weight * mean_i ||code_i - code_0||          (e4e delta regularisation)
           + w_disc_weight * softplus(-D(w rows))                 (e4e latent discriminator; off by default)
           + latent_weight * MSE(latent_avg + codes, w_true)       (generator samples only; off by default)

The last term is a supervised shortcut that e4e does not have: for the generator's own samples the
true code is known, so the encoder can regress it directly. With ``pixel_weight = perceptual_weight
= 0`` and ``data='samples'`` no gradient flows through the generator at all, which makes CPU
pre-training several times cheaper; fine-tune with the image losses afterwards.

e4e's progressive training is available: with ``progressive_every > 0`` only the base code is
trained until ``progressive_start``, then one more layer offset every ``progressive_every``
steps. With ``restyle=True`` the encoder takes 6 channels and every batch runs
``restyle_iterations`` ReStyle steps from ``latent_avg``, each with its own loss and backward pass,
the previous reconstruction detached (as in ReStyle's coach). With ``bootstrap`` (an encoder name or
file) the steps start from that frozen encoder's inversion instead of ``latent_avg``: ReStyle's
"encoder bootstrapping", which trains the refinement where it is used, next to a good first guess;
the trained encoder records the name and :func:`stylekit.invert.refine.restyle` starts from it.

With ``--precision bf16`` (or fp16) the encoder runs under autocast (channels-last on CPU) and G
through its own reduced-precision synthesis path; the codes are cast to float32 before G, and the
loss terms (the perceptual network included) are float32 (:mod:`stylekit.train.mixed_precision`).

The learning rate is constant, then follows a cosine down to 5% over the last ``decay`` fraction
of the run. The run folder gets ``checkpoint-latest.pt`` (see :class:`stylekit.train.skeleton.Run`)
and the exported encoder ``encoder.safetensors`` every ``snapshot_every`` steps (on a logged step),
so an interrupted run resumes where it stopped (by default a run folder holding a checkpoint is
continued), and one line per ``log_every`` steps in ``log.jsonl``.

CLI::

    python -m stylekit.train encoder --generator toyfaces --out runs/e4e-toyfaces \
        --steps 20000 --batch 16 [--restyle] [--export path/to/encoder.safetensors]
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Callable, ClassVar

import torch
import torch.nn.functional as F

from ..errors import InvalidArgumentError
from ..invert.encoder import save_encoder
from ..invert.losses import build_perceptual, reconstruction_loss
from ..invert.refine import initial_latent, load_bootstrap, restyle_steps
from ..invert.result import psnr
from ..networks.encoders import TOYFACES_CONFIG, LatentEncoder, delta_regularization, normalize_config
from ..progress import ProgressCallback, no_progress
from ..validate import check_steps
from .skeleton import Run, StepsConfig, is_due

__all__ = ["EncoderConfig", "LatentDiscriminator", "training_batch", "evaluate", "init_from", "train_encoder"]


@dataclass
class EncoderConfig(StepsConfig):
    """Options of :func:`train_encoder` (all have CPU-friendly defaults)."""

    steps: int = 20000
    batch: int = 16
    lr: float = 5e-4
    decay: float | None = 0.3         # cosine decay over the last 30 % of the steps ...
    lr_floor: float = 0.05            # ... down to 5 % of lr
    log_every: int = 50
    snapshot_every: int = 500
    resume: str | None = "auto"       # continue a run folder that holds a checkpoint
    generator: str = "toyfaces"       # what to invert: a registered name or a file (when no G is passed)
    init: str | None = None           # start from this encoder's weights (see init_from) unless resuming
    data: str = "mix"                 # 'renders', 'samples' or 'mix'
    pixel_weight: float = 1.0
    perceptual_weight: float = 0.8
    perceptual: str = "auto"
    delta_weight: float = 2e-4
    w_disc_weight: float = 0.0        # e4e's latent discriminator (0 = off)
    latent_weight: float = 0.0        # supervised W regression on generator samples (0 = off)
    w_disc_lr: float = 2e-5
    w_disc_r1: float = 10.0
    progressive_start: int = 0
    progressive_every: int = 0        # 0 = every offset active from the start
    restyle: bool = False
    restyle_iterations: int = 3
    bootstrap: str = ""               # ReStyle only: start from this frozen encoder's output ('' = latent_avg)
    eval_images: int = 64
    half_export: bool = True
    encoder_config: dict = field(default_factory=lambda: dict(TOYFACES_CONFIG))

    kind: ClassVar[str] = "encoder"

    def stage_at(self, step: int, num_ws: int) -> int:
        """The last trained W+ row at ``step`` (progressive training)."""
        if self.progressive_every <= 0:
            return num_ws - 1
        if step < self.progressive_start:
            return 0
        return min(num_ws - 1, 1 + (step - self.progressive_start) // self.progressive_every)

    def validate(self) -> None:
        super().validate()
        check_steps(self.steps, "steps")
        if self.bootstrap and not self.restyle:
            raise InvalidArgumentError("bootstrap is a ReStyle option: add restyle=True (--restyle), or drop bootstrap.")
        if self.data not in ("renders", "samples", "mix"):
            raise InvalidArgumentError(f"data must be 'renders', 'samples' or 'mix', not {self.data!r}.")
        if self.pixel_weight <= 0 and self.perceptual_weight <= 0 and (self.latent_weight <= 0 or self.data == "renders"):
            raise InvalidArgumentError("nothing to train on: give pixel_weight or perceptual_weight > 0, or "
                                       "latent_weight > 0 with data='samples' or 'mix' (renders have no true latent).")


class LatentDiscriminator(torch.nn.Module):
    """e4e's ``LatentCodesDiscriminator``: 4 x (Linear + LeakyReLU 0.2) then Linear -> 1 logit per W code."""

    def __init__(self, w_dim: int, layers: int = 4):
        super().__init__()
        mods = []
        for _ in range(layers):
            mods += [torch.nn.Linear(w_dim, w_dim), torch.nn.LeakyReLU(0.2)]
        mods.append(torch.nn.Linear(w_dim, 1))
        self.net = torch.nn.Sequential(*mods)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return self.net(w)


def training_batch(G, kind: str, n: int, gen: torch.Generator, *, step: int = 0,
                   with_latents: bool = False):
    """``n`` training images ``[n, 3, R, R]`` in ``[-1, 1]``: toyfaces renders, generator samples, or half each.

    With ``with_latents`` returns ``(images, ws)`` where ``ws [n, num_ws, w_dim]`` holds the true W+
    of generator samples and NaN for renders.
    """
    if kind == "mix":
        half = n // 2
        a = training_batch(G, "renders", half, gen, step=step, with_latents=with_latents)
        b = training_batch(G, "samples", n - half, gen, step=step, with_latents=with_latents)
        if with_latents:
            return torch.cat([a[0], b[0]]), torch.cat([a[1], b[1]])
        return torch.cat([a, b])
    device = G.w_avg.device
    if kind == "renders":
        from ..toyfaces.attributes import sample_attributes
        from ..toyfaces.renderer import render_batch

        seed = int(torch.randint(0, 2 ** 31 - 1, [1], generator=gen))
        attrs = sample_attributes(n, seed=seed)
        images = render_batch(attrs, size=G.img_resolution).to(device).float()
        if with_latents:
            return images, torch.full([n, G.num_ws, G.w_dim], float("nan"), device=device)
        return images
    if kind == "samples":
        z = torch.randn([n, G.z_dim], generator=gen).to(device)
        c = torch.zeros([n, G.c_dim], device=device) if G.c_dim else None
        with torch.no_grad():
            ws = G.mapping(z, c)
            images = G.synthesis(ws, noise_mode="const")
        return (images, ws) if with_latents else images
    raise InvalidArgumentError(f"data must be 'renders', 'samples' or 'mix', not {kind!r}.")


def evaluate(G, enc: LatentEncoder, images: torch.Tensor, *, restyle_iterations: int = 0,
             bootstrap: LatentEncoder | None = None) -> dict:
    """Mean PSNR (dB) and MSE of the encoder's reconstructions of ``images`` (one pass, or ReStyle steps)."""
    was_training = enc.training
    enc.eval()
    with torch.no_grad():
        if restyle_iterations:
            _, recon, _ = restyle_steps(G, enc, images, restyle_iterations,
                                        start_latent=initial_latent(G, enc, images, bootstrap))
        else:
            recon = G.synthesis(enc(images), noise_mode="const")
    enc.train(was_training)
    psnrs = [psnr(recon[i:i + 1], images[i:i + 1]) for i in range(images.shape[0])]
    return {"psnr": float(sum(psnrs) / len(psnrs)), "mse": float((recon - images).square().mean())}


def init_from(enc: LatentEncoder, source) -> list[str]:
    """Copy the weights of another encoder (file, name or :class:`LatentEncoder`) into ``enc``.

    Tensors of the same name and shape are copied; a 3-channel stem copied into a 6-channel (ReStyle)
    encoder fills the target-image channels and zeroes the reconstruction channels, so the first
    ReStyle step starts out equal to the e4e pass. Returns the names that were not copied.
    """
    from ..invert.encoder import load_encoder

    src = load_encoder(source).state_dict()
    dst = enc.state_dict()
    skipped = []
    with torch.no_grad():
        for name, value in dst.items():
            if name == "latent_avg":
                continue
            other = src.get(name)
            if other is None:
                skipped.append(name)
            elif other.shape == value.shape:
                value.copy_(other)
            elif name == "encoder.stem.conv.weight" and other.shape[1] * 2 == value.shape[1]:
                value.zero_()
                value[:, :other.shape[1]].copy_(other)
            else:
                skipped.append(name)
    return skipped


class _Parts:
    """The encoder, its optimiser, the optional latent discriminator, the perceptual extractor and the
    run's precision (``amp``)."""

    def __init__(self, G, cfg: EncoderConfig, device, amp):
        self.amp = amp
        info = {"trained_by": "stylekit.train encoder", "restyle": cfg.restyle}
        self.boot = None
        if cfg.bootstrap:
            self.boot = load_bootstrap(cfg.bootstrap, G, device=device, precision=amp.synthesis)
            info["bootstrap"] = cfg.bootstrap
        self.enc = amp.channels_last(LatentEncoder(cfg.encoder_config, G.w_avg.detach().cpu(), info=info).to(device))
        self.enc.train()
        self.optimizer = torch.optim.Adam(self.enc.encoder.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
        self.disc = self.disc_opt = None
        if cfg.w_disc_weight > 0:
            self.disc = LatentDiscriminator(G.w_dim).to(device)
            self.disc_opt = torch.optim.Adam(self.disc.parameters(), lr=cfg.w_disc_lr, betas=(0.9, 0.999))
        self.extractor, self.perceptual_name = build_perceptual(
            cfg.perceptual if cfg.perceptual_weight > 0 else "none", device=device)

    def nets(self) -> dict:
        return {"encoder": self.enc, "disc": self.disc}

    def optims(self) -> dict:
        return {"encoder": self.optimizer, "disc": self.disc_opt}


def _start(run: Run, cfg: EncoderConfig, p: _Parts) -> int:
    """Resume from the run's checkpoint or initialise from ``cfg.init``; returns the first step."""
    state = run.resume_state()
    if state is not None:
        run.restore(state, p.nets(), p.optims())
        run.log(f"resumed from {run.resume_path} at step {run.step}")
    elif cfg.init is not None:
        skipped = init_from(p.enc, cfg.init)
        run.log(f"initialised from {cfg.init}" + (f" ({len(skipped)} tensors kept fresh)" if skipped else ""))
    run.distribute(p.nets(), p.optims())
    run.write_config({"perceptual_used": p.perceptual_name})
    run.log(f"encoder: {sum(t.numel() for t in p.enc.parameters()):,} params, restyle={cfg.restyle}, "
            f"data={cfg.data}, perceptual={p.perceptual_name}")
    return run.step


def _snapshot(run: Run, cfg: EncoderConfig, p: _Parts, step: int, eval_psnr: float) -> None:
    """Checkpoint, then export ``encoder.safetensors`` (and the ``cfg.export`` copy)."""
    run.step, run.cur_nimg = step, step * cfg.batch
    run.checkpoint(nets=p.nets(), optims=p.optims())
    if not run.is_main:
        return
    p.enc.eval()
    meta = {"iterations": step, "eval_psnr": f"{eval_psnr:.3f}", "perceptual": p.perceptual_name}
    run.export(save_encoder(p.enc, run.out / "encoder.safetensors", metadata=meta, half=cfg.half_export))
    p.enc.train()


def train_encoder(cfg: EncoderConfig, *, G=None, progress: ProgressCallback = no_progress,
                  log: Callable[[str], None] | None = print) -> LatentEncoder:
    """Train an encoder; writes ``checkpoint-latest.pt``, ``encoder.safetensors`` and ``log.jsonl`` in ``cfg.out``.

    Args:
        cfg: :class:`EncoderConfig` (``cfg.export``: also copy the exported encoder there at every snapshot).
        G: the frozen generator (its ``num_ws``/``w_dim`` override the encoder config's); default:
            ``load_generator(cfg.generator)``.
        progress: ``callback(step, total, "encoder", **losses)`` every step; may raise ``Cancelled``.
        log: where log lines go besides ``out/log.txt`` (None: the file only).

    Returns: the trained :class:`LatentEncoder` (eval mode).
    """
    cfg.validate()
    if G is None:
        from ..checkpoints.load import load_generator

        G = load_generator(cfg.generator, device=cfg.device)
    device = G.w_avg.device
    G = G.eval().requires_grad_(False)
    enc_cfg = dict(cfg.encoder_config)
    enc_cfg.update(num_ws=G.num_ws, w_dim=G.w_dim, in_channels=6 if cfg.restyle else 3)
    cfg.encoder_config = normalize_config(enc_cfg)
    with Run(cfg, log=log, progress=progress) as run:
        p = _Parts(G, cfg, device, run.amp)
        eval_gen = torch.Generator(device="cpu").manual_seed(10_000 + cfg.seed)
        eval_images = training_batch(G, "renders" if cfg.data != "samples" else "samples", cfg.eval_images, eval_gen)
        start = _start(run, cfg, p)
        with (run.out / "log.jsonl").open("a") as log_file:
            _loop(run, cfg, G, p, start, eval_images, log_file)
    p.enc.encoder.progressive_stage = G.num_ws - 1
    return p.enc.eval()


def _loop(run: Run, cfg: EncoderConfig, G, p: _Parts, start: int, eval_images: torch.Tensor, log_file) -> None:
    """Steps ``start .. cfg.steps``: a record every ``log_every`` steps; on logged multiples of
    ``snapshot_every`` (and at the end) a held-out evaluation and a snapshot."""
    t0 = time.perf_counter()
    running: dict[str, float] = {}
    for step in range(start, cfg.steps):
        lr = cfg.lr_at(step)
        for group in p.optimizer.param_groups:
            group["lr"] = lr
        stage = cfg.stage_at(step, G.num_ws)
        p.enc.encoder.progressive_stage = stage
        x, w_true = training_batch(G, cfg.data, cfg.batch, run.gen, step=step, with_latents=True)
        x, w_true = run.shard(x), run.shard(w_true)  # every rank draws the batch, trains on its rows
        parts = _train_step(G, p, x, cfg, stage, w_true)
        for k, v in parts.items():
            running[k] = running.get(k, 0.0) + v
        run.progress(step + 1, cfg.steps, "encoder", **parts)
        done = step + 1
        if not is_due(done, cfg.log_every, cfg.steps):
            continue
        record = {"iteration": done, "lr": lr, "stage": stage, "sec": round(time.perf_counter() - t0, 1),
                  **{k: v / max(1, cfg.log_every) for k, v in running.items()}}
        running.clear()
        snap = is_due(done, cfg.snapshot_every, cfg.steps)
        if not run.is_main:  # rank 0 evaluates, logs and writes; the others only checkpoint (a no-op)
            if snap:
                _snapshot(run, cfg, p, done, float("nan"))
            continue
        if snap:
            record.update({f"eval_{k}": v for k, v in evaluate(
                G, p.enc, eval_images, restyle_iterations=cfg.restyle_iterations if cfg.restyle else 0,
                bootstrap=p.boot).items()})
        log_file.write(json.dumps(record) + "\n")
        log_file.flush()
        run.log(" ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items()))
        if snap:
            _snapshot(run, cfg, p, done, record.get("eval_psnr", float("nan")))


def _latent_term(ws: torch.Tensor, w_true: torch.Tensor | None) -> torch.Tensor | None:
    """Mean squared error to the true W+ over the samples that have one (rows of ``w_true`` not NaN)."""
    if w_true is None:
        return None
    known = ~torch.isnan(w_true[:, 0, 0])
    if not bool(known.any()):
        return None
    return (ws[known] - w_true[known]).square().mean()


def _image_loss(G, latent: torch.Tensor, x: torch.Tensor, p: _Parts, cfg: EncoderConfig):
    """``(loss, terms, reconstruction)`` of the image terms at ``latent [N, num_ws, w_dim]`` against
    ``x [N, 3, R, R]`` (no gradient through G when both image weights are 0: the loss is then 0)."""
    if cfg.pixel_weight > 0 or cfg.perceptual_weight > 0:
        y = G.synthesis(latent, noise_mode="const", precision=p.amp.synthesis).float()
        rec, terms = reconstruction_loss(y, x, extractor=p.extractor, pixel_weight=cfg.pixel_weight,
                                         perceptual_weight=cfg.perceptual_weight)
        return rec.mean(), terms, y
    with torch.no_grad():
        y = G.synthesis(latent, noise_mode="const", precision=p.amp.synthesis).float()
    return None, {}, y


def _codes(p: _Parts, x: torch.Tensor) -> torch.Tensor:
    """The encoder's codes ``[N, num_ws, w_dim]`` for ``x`` in the run's precision, as float32."""
    with p.amp.autocast():
        return p.enc.encoder(p.amp.images(x)).float()


def _restyle_step(G, p: _Parts, x, cfg: EncoderConfig, stage: int, w_true) -> dict:
    """``restyle_iterations`` refinement steps, each with its own loss and optimiser step."""
    parts: dict[str, float] = {}
    with torch.no_grad():
        latent = initial_latent(G, p.enc, x, p.boot)
        y = G.synthesis(latent, noise_mode="const", precision=p.amp.synthesis).float()
    for it in range(cfg.restyle_iterations):
        codes = _codes(p, torch.cat([x, y], dim=1))
        latent_new = latent + codes
        loss = codes.new_zeros([])
        rec, terms, y_new = _image_loss(G, latent_new, x, p, cfg)
        if rec is not None:
            loss = loss + rec
        lat = _latent_term(latent_new, w_true) if cfg.latent_weight > 0 else None
        if lat is not None:
            loss = loss + cfg.latent_weight * lat
            terms = {**terms, "latent": lat}
        if cfg.delta_weight > 0:
            loss = loss + cfg.delta_weight * delta_regularization(codes, stage)
        p.optimizer.zero_grad(set_to_none=True)
        p.amp.backward(loss)
        p.amp.step(p.optimizer)
        latent, y = latent_new.detach(), y_new.detach()
        if it == cfg.restyle_iterations - 1:
            parts["loss"] = float(loss.detach())
            parts.update({k: float(v.detach().mean()) for k, v in terms.items()})
    return parts


def _train_step(G, p: _Parts, x, cfg: EncoderConfig, stage: int, w_true: torch.Tensor | None = None) -> dict:
    """One optimiser step of the encoder (several for ReStyle) on images ``x [N, 3, R, R]``; returns the losses."""
    if cfg.restyle:
        return _restyle_step(G, p, x, cfg, stage, w_true)
    parts: dict[str, float] = {}
    codes = _codes(p, x)
    ws = codes + p.enc.latent_avg.reshape(1, 1, -1)
    loss = codes.new_zeros([])
    if cfg.pixel_weight > 0 or cfg.perceptual_weight > 0:
        rec, terms, _ = _image_loss(G, ws, x, p, cfg)
        loss = loss + rec
        parts.update({k: float(v.detach().mean()) for k, v in terms.items()})
    if cfg.latent_weight > 0:
        lat = _latent_term(ws, w_true)
        if lat is not None:
            loss = loss + cfg.latent_weight * lat
            parts["latent"] = float(lat.detach())
    if cfg.delta_weight > 0:
        dreg = delta_regularization(codes, stage)
        loss = loss + cfg.delta_weight * dreg
        parts["delta"] = float(dreg.detach())
    if p.disc is not None:
        adv = F.softplus(-p.disc(ws[:, :stage + 1].reshape(-1, G.w_dim))).mean()
        loss = loss + cfg.w_disc_weight * adv
        parts["w_adv"] = float(adv.detach())
    p.optimizer.zero_grad(set_to_none=True)
    p.amp.backward(loss)
    p.amp.step(p.optimizer)
    parts["loss"] = float(loss.detach())
    if p.disc is not None:
        parts["w_disc"] = _disc_step(G, p.disc, p.disc_opt, ws.detach()[:, :stage + 1].reshape(-1, G.w_dim), cfg)
    return parts


def _disc_step(G, disc, disc_opt, fake_rows, cfg: EncoderConfig) -> float:
    """One latent-discriminator update: logistic loss on mapping samples vs encoder codes, plus R1 on reals."""
    n = fake_rows.shape[0]
    z = torch.randn([n, G.z_dim], device=fake_rows.device)
    with torch.no_grad():
        real = G.mapping(z, torch.zeros([n, G.c_dim], device=z.device) if G.c_dim else None)[:, 0]
    real.requires_grad_(True)
    real_logits = disc(real)
    loss = F.softplus(-real_logits).mean() + F.softplus(disc(fake_rows)).mean()
    if cfg.w_disc_r1 > 0:
        grad, = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
        loss = loss + cfg.w_disc_r1 / 2 * grad.square().sum(dim=1).mean()
    disc_opt.zero_grad(set_to_none=True)
    loss.backward()
    disc_opt.step()
    return float(loss.detach())
