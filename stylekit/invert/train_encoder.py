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
iterations. With ``restyle=True`` the encoder takes 6 channels and every batch runs
``restyle_iterations`` ReStyle steps from ``latent_avg``, each with its own loss and backward pass,
the previous reconstruction detached (as in ReStyle's coach). With ``bootstrap`` (an encoder name or
file) the steps start from that frozen encoder's inversion instead of ``latent_avg``: ReStyle's
"encoder bootstrapping", which trains the refinement where it is used, next to a good first guess;
the trained encoder records the name and :func:`stylekit.invert.refine.restyle` starts from it.

Checkpoints (``checkpoint.pt``: plain tensors and dicts, readable with ``weights_only=True``) are
written every ``snapshot_every`` iterations, so an interrupted run resumes where it stopped; the
exported encoder (``encoder.safetensors``) is written at every snapshot too.

CLI::

    python -m stylekit.invert.train_encoder --generator toyfaces --out runs/e4e-toyfaces \
        --iterations 20000 --batch 16 [--restyle] [--export stylekit/toyfaces/weights/encoder.safetensors]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import InvalidArgumentError
from ..progress import no_progress
from ..validate import check_steps
from .encoder import TOYFACES_CONFIG, LatentEncoder, delta_regularization, normalize_config, save_encoder
from .losses import build_perceptual, reconstruction_loss
from .refine import initial_latent, load_bootstrap, restyle_steps
from .result import psnr


@dataclass
class TrainConfig:
    """Options of :func:`train_encoder` (all have CPU-friendly defaults)."""

    iterations: int = 20000
    batch: int = 16
    lr: float = 5e-4
    lr_rampdown: float = 0.3          # cosine decay over the last 30 % of iterations
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
    snapshot_every: int = 500
    log_every: int = 50
    eval_images: int = 64
    seed: int = 0
    half_export: bool = True
    encoder_config: dict = field(default_factory=lambda: dict(TOYFACES_CONFIG))


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


def _lr_at(step: int, cfg: TrainConfig) -> float:
    t = step / max(1, cfg.iterations)
    if cfg.lr_rampdown <= 0 or t < 1 - cfg.lr_rampdown:
        return cfg.lr
    r = (t - (1 - cfg.lr_rampdown)) / cfg.lr_rampdown
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * r)))


def _stage_at(step: int, cfg: TrainConfig, num_ws: int) -> int:
    if cfg.progressive_every <= 0:
        return num_ws - 1
    if step < cfg.progressive_start:
        return 0
    return min(num_ws - 1, 1 + (step - cfg.progressive_start) // cfg.progressive_every)


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
    from .encoder import load_encoder

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


def train_encoder(G, out_dir, cfg: TrainConfig | None = None, *, export: str | Path | None = None,
                  resume: bool = True, init=None, progress=None, log=print) -> LatentEncoder:
    """Train an encoder for ``G``; writes ``checkpoint.pt``, ``encoder.safetensors`` and ``log.jsonl`` in ``out_dir``.

    Args:
        G: the frozen generator (its ``num_ws``/``w_dim`` override the encoder config's).
        out_dir: run folder (created); an existing ``checkpoint.pt`` there is resumed when ``resume``.
        cfg: :class:`TrainConfig`.
        export: also copy the exported encoder to this path at every snapshot.
        init: start from this encoder's weights (see :func:`init_from`) unless a checkpoint is resumed.
        progress: ``callback(step, total, message, **metrics)``; may raise ``Cancelled``.

    Returns: the trained :class:`LatentEncoder` (eval mode).
    """
    cfg = cfg or TrainConfig()
    check_steps(cfg.iterations, "iterations")
    if cfg.bootstrap and not cfg.restyle:
        raise InvalidArgumentError("bootstrap is a ReStyle option: add restyle=True (--restyle), or drop bootstrap.")
    if cfg.data not in ("renders", "samples", "mix"):
        raise InvalidArgumentError(f"data must be 'renders', 'samples' or 'mix', not {cfg.data!r}.")
    if cfg.pixel_weight <= 0 and cfg.perceptual_weight <= 0 and (cfg.latent_weight <= 0 or cfg.data == "renders"):
        raise InvalidArgumentError("nothing to train on: give pixel_weight or perceptual_weight > 0, or latent_weight "
                                   "> 0 with data='samples' or 'mix' (renders have no true latent).")
    progress = progress or no_progress
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = G.w_avg.device
    G = G.eval().requires_grad_(False)

    enc_cfg = dict(cfg.encoder_config)
    enc_cfg.update(num_ws=G.num_ws, w_dim=G.w_dim, in_channels=6 if cfg.restyle else 3)
    enc_cfg = normalize_config(enc_cfg)
    cfg.encoder_config = enc_cfg
    torch.manual_seed(cfg.seed)
    info = {"trained_by": "stylekit.invert.train_encoder", "restyle": cfg.restyle}
    boot = None
    if cfg.bootstrap:
        boot = load_bootstrap(cfg.bootstrap, G, device=device)
        info["bootstrap"] = cfg.bootstrap
    enc = LatentEncoder(enc_cfg, G.w_avg.detach().cpu(), info=info).to(device)
    enc.train()
    optimizer = torch.optim.Adam(enc.encoder.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    disc = disc_opt = None
    if cfg.w_disc_weight > 0:
        disc = LatentDiscriminator(G.w_dim).to(device)
        disc_opt = torch.optim.Adam(disc.parameters(), lr=cfg.w_disc_lr, betas=(0.9, 0.999))
    extractor, perceptual_name = build_perceptual(cfg.perceptual if cfg.perceptual_weight > 0 else "none",
                                                  device=device)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed + 1)
    eval_gen = torch.Generator(device="cpu").manual_seed(10_000 + cfg.seed)
    eval_images = training_batch(G, "renders" if cfg.data != "samples" else "samples", cfg.eval_images, eval_gen)

    start_step = 0
    ckpt_path = out_dir / "checkpoint.pt"
    if resume and ckpt_path.is_file():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        enc.load_state_dict(state["encoder"])
        optimizer.load_state_dict(state["optimizer"])
        if disc is not None and "disc" in state:
            disc.load_state_dict(state["disc"])
            disc_opt.load_state_dict(state["disc_optimizer"])
        gen.set_state(state["rng"])
        start_step = int(state["step"])
        log(f"resumed from {ckpt_path} at iteration {start_step}")
    elif init is not None:
        skipped = init_from(enc, init)
        log(f"initialised from {init}" + (f" ({len(skipped)} tensors kept fresh)" if skipped else ""))
    (out_dir / "config.json").write_text(json.dumps({**asdict(cfg), "perceptual_used": perceptual_name}, indent=2))
    log(f"encoder: {sum(p.numel() for p in enc.parameters()):,} params, restyle={cfg.restyle}, data={cfg.data}, "
        f"perceptual={perceptual_name}")

    def snapshot(step: int, metrics: dict) -> None:
        state = {"encoder": enc.state_dict(), "optimizer": optimizer.state_dict(), "rng": gen.get_state(),
                 "step": torch.tensor(step)}
        if disc is not None:
            state["disc"], state["disc_optimizer"] = disc.state_dict(), disc_opt.state_dict()
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(ckpt_path)
        enc.eval()
        meta = {"iterations": step, "eval_psnr": f"{metrics.get('psnr', float('nan')):.3f}",
                "perceptual": perceptual_name}
        save_encoder(enc, out_dir / "encoder.safetensors", metadata=meta, half=cfg.half_export)
        if export is not None:
            save_encoder(enc, export, metadata=meta, half=cfg.half_export)
        enc.train()

    log_file = (out_dir / "log.jsonl").open("a")
    t0 = time.perf_counter()
    running: dict[str, float] = {}
    step = start_step
    try:
        for step in range(start_step, cfg.iterations):
            lr = _lr_at(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            stage = _stage_at(step, cfg, G.num_ws)
            enc.encoder.progressive_stage = stage
            x, w_true = training_batch(G, cfg.data, cfg.batch, gen, step=step, with_latents=True)
            parts = _train_step(G, enc, x, cfg, extractor, optimizer, disc, disc_opt, stage, w_true, boot)
            for k, v in parts.items():
                running[k] = running.get(k, 0.0) + v
            progress(step + 1, cfg.iterations, "encoder", **parts)
            done = step + 1
            if done % cfg.log_every == 0 or done == cfg.iterations:
                avg = {k: v / cfg.log_every for k, v in running.items()}
                running.clear()
                record = {"iteration": done, "lr": lr, "stage": stage, "sec": round(time.perf_counter() - t0, 1), **avg}
                if done % cfg.snapshot_every == 0 or done == cfg.iterations:
                    record.update({f"eval_{k}": v for k, v in evaluate(
                        G, enc, eval_images, restyle_iterations=cfg.restyle_iterations if cfg.restyle else 0,
                        bootstrap=boot).items()})
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
                log(" ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items()))
                if done % cfg.snapshot_every == 0 or done == cfg.iterations:
                    snapshot(done, {"psnr": record.get("eval_psnr", float("nan"))})
    finally:
        log_file.close()
    enc.encoder.progressive_stage = G.num_ws - 1
    return enc.eval()


def _latent_term(ws: torch.Tensor, w_true: torch.Tensor | None) -> torch.Tensor | None:
    """Mean squared error to the true W+ over the samples that have one (rows of ``w_true`` not NaN)."""
    if w_true is None:
        return None
    known = ~torch.isnan(w_true[:, 0, 0])
    if not bool(known.any()):
        return None
    return (ws[known] - w_true[known]).square().mean()


def _train_step(G, enc, x, cfg: TrainConfig, extractor, optimizer, disc, disc_opt, stage: int,
                w_true: torch.Tensor | None = None, boot: LatentEncoder | None = None) -> dict:
    parts: dict[str, float] = {}
    image_terms = cfg.pixel_weight > 0 or cfg.perceptual_weight > 0
    if cfg.restyle:
        with torch.no_grad():
            latent = initial_latent(G, enc, x, boot)
            y = G.synthesis(latent, noise_mode="const")
        for it in range(cfg.restyle_iterations):
            codes = enc.encoder(torch.cat([x, y], dim=1))
            latent_new = latent + codes
            loss = codes.new_zeros([])
            terms = {}
            if image_terms:
                y_new = G.synthesis(latent_new, noise_mode="const")
                rec, terms = reconstruction_loss(y_new, x, extractor=extractor, pixel_weight=cfg.pixel_weight,
                                                 perceptual_weight=cfg.perceptual_weight)
                loss = loss + rec.mean()
            else:
                with torch.no_grad():
                    y_new = G.synthesis(latent_new, noise_mode="const")
            lat = _latent_term(latent_new, w_true) if cfg.latent_weight > 0 else None
            if lat is not None:
                loss = loss + cfg.latent_weight * lat
                terms = {**terms, "latent": lat}
            if cfg.delta_weight > 0:
                loss = loss + cfg.delta_weight * delta_regularization(codes, stage)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            latent, y = latent_new.detach(), y_new.detach()
            if it == cfg.restyle_iterations - 1:
                parts["loss"] = float(loss.detach())
                parts.update({k: float(v.detach().mean()) for k, v in terms.items()})
        return parts

    codes = enc.encoder(x)
    ws = codes + enc.latent_avg.reshape(1, 1, -1)
    loss = codes.new_zeros([])
    if image_terms:
        y = G.synthesis(ws, noise_mode="const")
        rec, terms = reconstruction_loss(y, x, extractor=extractor, pixel_weight=cfg.pixel_weight,
                                         perceptual_weight=cfg.perceptual_weight)
        loss = loss + rec.mean()
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
    if disc is not None:
        fake_rows = ws[:, :stage + 1].reshape(-1, G.w_dim)
        adv = F.softplus(-disc(fake_rows)).mean()
        loss = loss + cfg.w_disc_weight * adv
        parts["w_adv"] = float(adv.detach())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    parts["loss"] = float(loss.detach())
    if disc is not None:
        parts["w_disc"] = _disc_step(G, disc, disc_opt, ws.detach()[:, :stage + 1].reshape(-1, G.w_dim), cfg)
    return parts


def _disc_step(G, disc, disc_opt, fake_rows, cfg: TrainConfig) -> float:
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


# ----------------------------------------------------------------------------------------------
# CLI


def build_parser() -> argparse.ArgumentParser:
    defaults = TrainConfig()
    p = argparse.ArgumentParser(prog="python -m stylekit.invert.train_encoder",
                                description="Train an e4e (or ReStyle) encoder for a StyleGAN generator.")
    p.add_argument("--generator", default="toyfaces", help="registered name or checkpoint path (default: toyfaces)")
    p.add_argument("--out", required=True, help="run folder (checkpoint.pt, encoder.safetensors, log.jsonl)")
    p.add_argument("--export", default=None, help="also write the exported encoder here at every snapshot")
    p.add_argument("--preset", choices=("toyfaces", "ffhq"), default="toyfaces", help="encoder size")
    for name in ("iterations", "batch", "restyle_iterations", "snapshot_every", "log_every", "progressive_start",
                 "progressive_every", "seed", "eval_images"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name))
    for name in ("lr", "lr_rampdown", "pixel_weight", "perceptual_weight", "delta_weight", "w_disc_weight",
                 "latent_weight"):
        p.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(defaults, name))
    p.add_argument("--data", choices=("renders", "samples", "mix"), default=defaults.data)
    p.add_argument("--perceptual", default=defaults.perceptual)
    p.add_argument("--restyle", action="store_true", help="train a ReStyle encoder (6 input channels)")
    p.add_argument("--bootstrap", default="", help="ReStyle: start the steps from this encoder's inversion "
                                                   "(registered name or file, e.g. e4e-toyfaces)")
    p.add_argument("--full-precision", action="store_true", help="export float32 weights (default float16)")
    p.add_argument("--no-resume", action="store_true")
    p.add_argument("--init", default=None, help="start from this encoder's weights (file or registered name)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument("--device", default="cpu")
    return p


def main(argv=None) -> int:
    from ..checkpoints.load import load_generator
    from ..errors import StylekitError
    from .encoder import FFHQ_CONFIG

    args = build_parser().parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    cfg = TrainConfig(iterations=args.iterations, batch=args.batch, lr=args.lr, lr_rampdown=args.lr_rampdown,
                      data=args.data, pixel_weight=args.pixel_weight, perceptual_weight=args.perceptual_weight,
                      perceptual=args.perceptual, delta_weight=args.delta_weight, w_disc_weight=args.w_disc_weight,
                      latent_weight=args.latent_weight,
                      progressive_start=args.progressive_start, progressive_every=args.progressive_every,
                      restyle=args.restyle, restyle_iterations=args.restyle_iterations, bootstrap=args.bootstrap,
                      snapshot_every=args.snapshot_every, log_every=args.log_every, eval_images=args.eval_images,
                      seed=args.seed, half_export=not args.full_precision,
                      encoder_config=dict(FFHQ_CONFIG if args.preset == "ffhq" else TOYFACES_CONFIG))
    try:
        G = load_generator(args.generator, device=args.device)
        train_encoder(G, args.out, cfg, export=args.export, resume=not args.no_resume, init=args.init,
                      log=lambda s: print(s, flush=True))
    except StylekitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
