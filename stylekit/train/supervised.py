"""Supervised pretraining of a toyfaces StyleGAN2: every latent has a target image.

Adversarial training from scratch is far too slow on a small CPU, but the toyfaces world is ours:
the renderer turns attributes into an image deterministically. So we fix a map from z to
attributes, render the target of each sampled z, and train the whole generator (mapping and
synthesis) to reproduce it. Samples of the trained G for random z then follow the renderer's
attribute distribution and look like renders, and W is organised by attributes.

**The z -> attributes map** (:func:`z_to_attributes`). The mapping network first normalises z to
``x = z / rms(z)`` (a point on the sphere of radius ``sqrt(z_dim)``), so the map reads ``x``, the
exact input the network sees; reading raw ``z`` would leave the network unable to tell ``z`` from
``2 z`` and blur every target. The first ``A`` dims of ``x`` (``A`` = number of attributes, in
``ATTRIBUTES`` order) go through their exact marginal CDF to ``u`` in ``[0, 1]`` (uniform): for a
uniform point on that sphere, ``(x_j / sqrt(d) + 1) / 2`` is ``Beta((d-1)/2, (d-1)/2)``; this CDF
tends to the standard normal CDF as ``d`` grows. Continuous attributes are ``low + u (high - low)``
(uniform, as in the sampler); a binary attribute is 1 when ``u < p`` with ``p`` its prior, so
it is 1 with the sampler's probability. The remaining ``z_dim - A`` dims are free (they carry
nothing the renderer uses; the renderer's seed only adds tiny pixel noise, which we leave out).

**The loss** between ``G(z)`` and the render, both ``[N, 3, R, R]`` in ``[-1, 1]``:
``l1_weight * L1 + multiscale_weight * mean_s L1(avgpool_s(.)) + percep_weight * |f(G) - f(render)|``
with ``f`` the toyfaces predictor's features (skipped if no predictor is installed), plus,
optionally, from ``adv_start_kimg`` on, ``adv_weight`` times the non-saturating GAN loss against a
discriminator trained alongside (logistic loss + lazy R1), as in :mod:`stylekit.train.loop`.

``w_avg`` is tracked by ``G.mapping(..., update_emas=True)``; an EMA copy of G (half-life
``ema_kimg``) is what gets saved. Checkpoints every ``snapshot_kimg`` make the run resumable.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InvalidArgumentError
from ..progress import no_progress
from .loop import (RunLog, build_generator, d_main_loss, ema_update, fixed_latents, g_main_loss, lazy_reg_adam,
                   load_checkpoint, load_init_generator, r1_penalty, sample_grid, save_canonical, save_checkpoint,
                   save_grid, _restore_rng)


# ------------------------------------------------------------------------------------------------
# The z -> attributes map


@lru_cache(maxsize=8)
def _sphere_marginal_table(dim: int, points: int = 200_001) -> tuple[np.ndarray, np.ndarray]:
    """CDF table of ``t = x_j / sqrt(dim)`` for ``x`` uniform on the sphere of radius ``sqrt(dim)``.

    Density ``proportional to (1 - t^2)^((dim - 3) / 2)`` on ``[-1, 1]``; returns ``(t, cdf)``.
    """
    t = np.linspace(-1.0, 1.0, points)
    if dim == 1:  # the "sphere" is {-1, +1}
        return np.array([-1.0, 0.0, 0.0, 1.0]), np.array([0.0, 0.5, 0.5, 1.0])
    log_pdf = 0.5 * (dim - 3) * np.log(np.clip(1.0 - t * t, 1e-300, None))
    pdf = np.exp(log_pdf - log_pdf.max())
    if dim == 2:  # density (1 - t^2)^(-1/2): integrate the arcsine law in closed form
        return t, 0.5 + np.arcsin(t) / math.pi
    cdf = np.concatenate([[0.0], np.cumsum((pdf[1:] + pdf[:-1]) * 0.5 * np.diff(t))])
    return t, cdf / cdf[-1]


def z_to_unit(z: torch.Tensor | np.ndarray, num_attributes: int | None = None) -> np.ndarray:
    """The uniform variables ``u [N, A]`` in ``[0, 1]`` that :func:`z_to_attributes` reads from ``z [N, z_dim]``.

    ``u_j = CDF_d(x_j)`` with ``x = z / rms(z)`` (the mapping network's normalisation) and
    ``CDF_d`` the exact marginal CDF of one coordinate on the sphere of radius ``sqrt(d)``,
    ``d = z_dim``. For ``z ~ N(0, I)`` each ``u_j`` is exactly uniform.
    """
    from ..toyfaces.attributes import ATTRIBUTES

    a = len(ATTRIBUTES) if num_attributes is None else num_attributes
    if isinstance(z, torch.Tensor):
        z = z.detach().to("cpu", torch.float64).numpy()
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < a:
        raise InvalidArgumentError(
            f"z must be [N, z_dim] with z_dim >= {a} (one dimension per toyfaces attribute), got shape {z.shape}")
    d = z.shape[1]
    x = z / np.sqrt(np.mean(z * z, axis=1, keepdims=True) + 1e-8)
    t, cdf = _sphere_marginal_table(d)
    return np.clip(np.interp(x[:, :a] / math.sqrt(d), t, cdf), 0.0, 1.0)


def z_to_attributes(z: torch.Tensor | np.ndarray) -> dict[str, np.ndarray]:
    """The fixed map from latents ``z [N, z_dim]`` to toyfaces attributes (dict name -> float32 ``[N]``).

    Continuous attributes are uniform on ``[low, high]`` and binaries are 1 with the sampler's prior
    probability when ``z ~ N(0, I)`` (see the module docstring).
    """
    from ..toyfaces.attributes import ATTRIBUTES, attribute_priors, unit_to_attributes

    u = z_to_unit(z, len(ATTRIBUTES))
    priors = attribute_priors()
    unit = u.copy()
    for j, spec in enumerate(ATTRIBUTES):
        if spec.kind == "binary":
            unit[:, j] = (u[:, j] < priors[spec.name]).astype(np.float64)
    return unit_to_attributes(unit)


def render_targets(z: torch.Tensor, resolution: int, device="cpu") -> torch.Tensor:
    """Renders of ``z_to_attributes(z)``: ``[N, 3, R, R]`` float32 in ``[-1, 1]`` (no pixel noise)."""
    from ..toyfaces.renderer import render_batch

    attrs = z_to_attributes(z)
    img = render_batch(attrs, size=resolution, seeds=None, device=device)
    return img.to(torch.float32)


# ------------------------------------------------------------------------------------------------
# Configuration and losses


@dataclass
class SupervisedConfig:
    """Settings of a supervised (render-target) pretraining run; JSON-able, stored in checkpoints."""

    out: str = "runs/supervised"
    resolution: int = 64
    batch: int = 32
    kimg: float = 100.0
    seed: int = 0
    # generator
    z_dim: int = 32
    w_dim: int = 128
    map_layers: int = 4
    channel_base: int = 4096
    channel_max: int = 128
    g_channels: dict | None = None
    conv_clamp: float | None = None
    init: str | None = None
    # optimisation
    lr: float = 0.005
    mapping_lr_scale: float = 100.0    # the mapping network's lr is lr * this (its weights carry lr_multiplier 0.01)
    betas: tuple = (0.9, 0.99)
    lr_rampdown_kimg: float = 0.0     # cosine-decay the lr to 10% over the last this many kimg
    noise_mode: str = "random"         # noise inputs while training ('random' teaches G to ignore them)
    l1_weight: float = 1.0
    multiscale_weight: float = 1.0     # L1 on 2x, 4x, 8x average-pooled images
    percep_weight: float = 0.1         # L1 between toyfaces predictor features (0 = off)
    adv_weight: float = 0.0            # weight of the non-saturating GAN loss (0 = off)
    adv_start_kimg: float = 0.0
    d_lr: float = 0.002
    d_channel_base: int = 4096
    d_channel_max: int = 128
    r1_gamma: float = 0.1
    r1_interval: int = 16
    ema_kimg: float = 1.0
    # bookkeeping
    snapshot_kimg: float = 4.0
    log_kimg: float = 0.5
    grid_size: int = 36
    threads: int | None = None
    device: str = "cpu"

    def generator_config(self) -> dict:
        cfg = dict(z_dim=self.z_dim, c_dim=0, w_dim=self.w_dim, img_resolution=self.resolution, img_channels=3,
                   mapping_kwargs=dict(num_layers=self.map_layers), channel_base=self.channel_base,
                   channel_max=self.channel_max, conv_clamp=self.conv_clamp, architecture="skip")
        if self.g_channels:
            cfg["channels"] = {str(k): int(v) for k, v in self.g_channels.items()}
        return cfg

    def validate(self) -> None:
        from ..toyfaces.attributes import ATTRIBUTES

        log2 = int(round(math.log2(self.resolution))) if self.resolution > 0 else 0
        if self.resolution < 8 or 2 ** log2 != self.resolution:
            raise InvalidArgumentError(f"--resolution must be a power of two >= 8, not {self.resolution}")
        if self.z_dim < len(ATTRIBUTES) and self.init is None:
            raise InvalidArgumentError(
                f"--z-dim must be at least {len(ATTRIBUTES)} (one dimension per toyfaces attribute), not {self.z_dim}")
        if self.batch < 1 or self.kimg <= 0:
            raise InvalidArgumentError("--batch must be >= 1 and --kimg positive")
        if self.noise_mode not in ("random", "const", "none"):
            raise InvalidArgumentError(f"noise_mode must be 'random', 'const' or 'none', not {self.noise_mode!r}")


class ReconstructionLoss(torch.nn.Module):
    """``L1 + multi-scale L1 + predictor-feature L1`` between images ``[N, 3, R, R]`` in [-1, 1].

    ``forward(pred, target) -> (total scalar, dict of the parts as floats)``.
    """

    def __init__(self, *, l1_weight: float = 1.0, multiscale_weight: float = 1.0, percep_weight: float = 0.1,
                 predictor=None):
        super().__init__()
        self.l1_weight, self.multiscale_weight, self.percep_weight = l1_weight, multiscale_weight, percep_weight
        self.predictor = predictor

    def forward(self, pred: torch.Tensor, target: torch.Tensor):
        parts = {}
        total = pred.new_zeros([])
        if self.l1_weight:
            l1 = (pred - target).abs().mean()
            parts["l1"] = l1.item()
            total = total + self.l1_weight * l1
        if self.multiscale_weight:
            ms, count, p, t = 0.0, 0, pred, target
            while p.shape[-1] > 8:
                p, t = F.avg_pool2d(p, 2), F.avg_pool2d(t, 2)
                ms = ms + (p - t).abs().mean()
                count += 1
            if count:
                ms = ms / count
                parts["ms"] = ms.item()
                total = total + self.multiscale_weight * ms
        if self.percep_weight and self.predictor is not None:
            with torch.no_grad():
                ft = self.predictor.features(target)
            fp = self.predictor.features(pred)
            pc = (fp - ft).abs().mean()
            parts["percep"] = pc.item()
            total = total + self.percep_weight * pc
        return total, parts


def _load_predictor_for_loss(device):
    """The toyfaces predictor as a frozen feature extractor, or None when its weights are not there."""
    from ..errors import CheckpointError
    from ..toyfaces.predictor import load_predictor

    try:
        return load_predictor(device=device)
    except CheckpointError as exc:
        print(f"note: toyfaces predictor unavailable ({exc}); training without the perceptual term", flush=True)
        return None


# ------------------------------------------------------------------------------------------------
# The loop


def train_supervised(cfg: SupervisedConfig, *, resume: str | None = None, progress=no_progress,
                     echo: bool = True, predictor="auto") -> dict:
    """Run (or resume) supervised pretraining; returns a summary dict.

    Args:
        cfg: settings (see :class:`SupervisedConfig`). On resume the checkpoint's settings are used
            except ``kimg``, ``out``, ``batch``, ``snapshot_kimg``, ``log_kimg``, ``threads``, ``device`` and the
            loss weights / lr schedule (so a run can be extended or fine-tuned with new weights).
        resume: a checkpoint file or run folder.
        predictor: ``"auto"`` (load the toyfaces predictor if present), None (no perceptual term),
            or an object with ``.features(images) -> [N, F]``.

    Returns: ``dict(kimg, generator, checkpoint, out, loss)`` where ``loss`` is the last logged total.
    """
    state = None
    if resume is not None:
        state = load_checkpoint(resume, kind="supervised")
        saved = json.loads(state["config"])
        for key in ("kimg", "out", "batch", "snapshot_kimg", "log_kimg", "threads", "device", "lr_rampdown_kimg", "lr",
                    "l1_weight", "multiscale_weight", "percep_weight", "adv_weight", "adv_start_kimg"):
            saved[key] = getattr(cfg, key)
        saved["betas"] = tuple(saved["betas"])
        saved["init"] = None
        cfg = SupervisedConfig(**saved)
    cfg.validate()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device(cfg.device)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log = RunLog(out, echo=echo)

    torch.manual_seed(cfg.seed)
    if cfg.init and state is None:
        G = load_init_generator(cfg.init, device=device)
    else:
        g_config = json.loads(state["g_config"]) if state is not None else cfg.generator_config()
        G = build_generator(g_config, device=device)
    if G.img_resolution != cfg.resolution:
        raise InvalidArgumentError(f"the generator is {G.img_resolution}x{G.img_resolution} but --resolution is "
                                   f"{cfg.resolution}; use the same resolution.")
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    mapping_params = list(G.mapping.parameters())
    mapping_ids = {id(p) for p in mapping_params}
    other_params = [p for p in G.parameters() if id(p) not in mapping_ids]
    opt_G = torch.optim.Adam([{"params": other_params, "lr_scale": 1.0},
                              {"params": mapping_params, "lr_scale": cfg.mapping_lr_scale}],
                             lr=cfg.lr, betas=tuple(cfg.betas), eps=1e-8)

    use_adv = cfg.adv_weight > 0
    D = opt_D = None
    if use_adv:
        from .discriminator import Discriminator

        D = Discriminator(img_resolution=cfg.resolution, channel_base=cfg.d_channel_base,
                          channel_max=cfg.d_channel_max).to(device).train()
        opt_D = lazy_reg_adam(D.parameters(), cfg.d_lr, (0.0, 0.99), cfg.r1_interval if cfg.r1_gamma > 0 else None)

    if predictor == "auto":
        predictor = _load_predictor_for_loss(device) if cfg.percep_weight > 0 else None
    loss_fn = ReconstructionLoss(l1_weight=cfg.l1_weight, multiscale_weight=cfg.multiscale_weight,
                                 percep_weight=cfg.percep_weight, predictor=predictor)

    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    cur_nimg = 0
    if state is not None:
        G.load_state_dict(state["nets"]["G"])
        G_ema.load_state_dict(state["nets"]["G_ema"])
        opt_G.load_state_dict(state["optims"]["G"])
        if use_adv and "D" in state["nets"]:
            D.load_state_dict(state["nets"]["D"])
            opt_D.load_state_dict(state["optims"]["D"])
        cur_nimg = int(state["cur_nimg"])
        rng = _restore_rng(state["numpy_rng"])
        gen.set_state(state["torch_rng"])
        log(f"resumed from {resume} at kimg {cur_nimg / 1000:.1f}")
    else:
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
        log(f"G: {sum(p.numel() for p in G.parameters()):,} params, {cfg.resolution}x{cfg.resolution}, "
            f"batch {cfg.batch}, perceptual term {'on' if loss_fn.predictor is not None and cfg.percep_weight else 'off'}")

    grid_z = fixed_latents(G, cfg.grid_size)
    if state is None:
        save_grid(render_targets(grid_z, cfg.resolution), out / "targets.png")
        sample_grid(G_ema, grid_z, out / "samples-init.png", device=device)

    total_nimg = int(round(cfg.kimg * 1000))
    batch = cfg.batch
    step = 0
    log_every = int(cfg.log_kimg * 1000)
    snap = int(cfg.snapshot_kimg * 1000)
    next_log = (cur_nimg // log_every + 1) * log_every if log_every > 0 else None
    next_snap = (cur_nimg // snap + 1) * snap if snap > 0 else None
    tick_nimg, tick_time = cur_nimg, time.time()
    stats: dict[str, list[float]] = {}
    ckpt_path = None
    last_loss = float("nan")

    def snapshot():
        nonlocal ckpt_path
        tag = f"{cur_nimg // 1000:06d}"
        nets = {"G": G, "G_ema": G_ema}
        optims = {"G": opt_G}
        if use_adv:
            nets["D"], optims["D"] = D, opt_D
        ckpt_path = save_checkpoint(out / f"checkpoint-{tag}.pt", kind="supervised", config=asdict(cfg), nets=nets,
                                    optims=optims, cur_nimg=cur_nimg, rng=rng, torch_gen=gen)
        tmp = out / "checkpoint-latest.tmp"
        tmp.write_bytes(ckpt_path.read_bytes())
        tmp.replace(out / "checkpoint-latest.pt")
        sample_grid(G_ema, grid_z, out / f"samples-{tag}.png", device=device)
        save_canonical(G_ema, out / "generator.safetensors",
                       extra_metadata={"source": "stylekit.train supervised", "kimg": f"{cur_nimg / 1000:.1f}"})

    while cur_nimg < total_nimg:
        # learning-rate schedule: constant, then cosine down to 10% over the last lr_rampdown_kimg
        lr = cfg.lr
        if cfg.lr_rampdown_kimg > 0:
            start = total_nimg - cfg.lr_rampdown_kimg * 1000
            if cur_nimg > start:
                frac = min((cur_nimg - start) / (cfg.lr_rampdown_kimg * 1000), 1.0)
                lr = cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for group in opt_G.param_groups:
            group["lr"] = lr * group["lr_scale"]

        z = torch.randn([batch, G.z_dim], generator=gen)
        target = render_targets(z, cfg.resolution).to(device)
        z = z.to(device)
        adv_on = use_adv and cur_nimg >= cfg.adv_start_kimg * 1000

        G.requires_grad_(True)
        if D is not None:
            D.requires_grad_(False)
        ws = G.mapping(z, None, update_emas=True)
        img = G.synthesis(ws, noise_mode=cfg.noise_mode)
        loss, parts = loss_fn(img, target)
        if adv_on:
            loss_adv = g_main_loss(D, img)
            loss = loss + cfg.adv_weight * loss_adv
            parts["adv_G"] = loss_adv.item()
        opt_G.zero_grad(set_to_none=True)
        loss.backward()
        opt_G.step()
        parts["loss"] = last_loss = loss.item()

        if adv_on:
            G.requires_grad_(False)
            D.requires_grad_(True)
            real = torch.cat([target[: batch // 2],
                              render_targets(torch.randn([batch - batch // 2, G.z_dim], generator=gen),
                                             cfg.resolution).to(device)])
            loss_d, _, _ = d_main_loss(D, img.detach(), real)
            opt_D.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_D.step()
            parts["loss_D"] = loss_d.item()
            if cfg.r1_gamma > 0 and step % cfg.r1_interval == 0:
                loss_r1 = r1_penalty(D, real).mean() * (cfg.r1_gamma / 2)
                opt_D.zero_grad(set_to_none=True)
                (loss_r1 * cfg.r1_interval).backward()
                opt_D.step()

        for k, v in parts.items():
            stats.setdefault(k, []).append(float(v))
        ema_update(G_ema, G, 0.5 ** (batch / max(cfg.ema_kimg * 1000, 1e-8)))
        cur_nimg += batch
        step += 1
        done = cur_nimg >= total_nimg

        if next_log is not None and (cur_nimg >= next_log or done):
            elapsed = time.time() - tick_time
            spk = elapsed / max((cur_nimg - tick_nimg) / 1000, 1e-9)
            means = {k: float(np.mean(v)) for k, v in stats.items()}
            log(f"kimg {cur_nimg / 1000:8.2f}  " + "  ".join(f"{k} {v:7.4f}" for k, v in means.items())
                + f"  lr {lr:.5f}  sec/kimg {spk:7.1f}")
            progress(cur_nimg, total_nimg, "supervised", **means)
            stats.clear()
            tick_nimg, tick_time = cur_nimg, time.time()
            while next_log <= cur_nimg:
                next_log += log_every
        if (next_snap is not None and cur_nimg >= next_snap) or done:
            snapshot()
            if next_snap is not None:
                while next_snap <= cur_nimg:
                    next_snap += snap

    if ckpt_path is None:
        snapshot()
    log(f"done at kimg {cur_nimg / 1000:.2f}; wrote {out / 'generator.safetensors'}")
    return dict(kimg=cur_nimg / 1000, generator=str(out / "generator.safetensors"), checkpoint=str(ckpt_path),
                out=str(out), loss=last_loss)
