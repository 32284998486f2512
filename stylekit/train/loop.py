"""The StyleGAN2 adversarial training loop (as in StyleGAN2-ADA, without augmentation).

One iteration, for a minibatch of ``batch`` images:

- ``Gmain``: non-saturating logistic loss ``softplus(-D(G(z)))`` on generator samples (with
  style mixing: with probability ``style_mixing_prob`` the layers from a random cutoff on take
  their W from a second latent), one Adam step for G.
- ``Greg`` (every ``pl_interval`` iterations, when ``pl_weight > 0``): path-length regularisation
  ``pl_weight * (|J_w^T y| - a)^2`` on half a batch, ``a`` an exponential moving average of the
  lengths, scaled by the interval (lazy regularisation); one Adam step for G.
- ``Dmain``: ``softplus(D(G(z))) + softplus(-D(x))``, one Adam step for D.
- ``Dreg`` (every ``r1_interval`` iterations, when ``r1_gamma > 0``): R1 penalty
  ``gamma / 2 * |grad_x D(x)|^2`` on reals, scaled by the interval; one Adam step for D.
- G_ema: ``ema = lerp(G, ema, 0.5 ** (batch / (ema_kimg * 1000)))``; buffers copied.

Adam uses ``betas=(0, 0.99)``; with lazy regularisation the learning rate and betas are corrected
by ``ratio = interval / (interval + 1)`` (``lr * ratio``, ``beta ** ratio``) as in the paper.

The loop is resumable: every ``snapshot_kimg`` it writes ``checkpoint-KKKKKK.pt`` (G, D, G_ema,
both optimiser states, the image counter, the path-length mean, the RNG states and the config)
plus ``checkpoint-latest.pt``, and a sample grid ``samples-KKKKKK.png`` from G_ema for fixed
latents. At the end it writes G_ema in stylekit's canonical format (``generator.safetensors``).
Checkpoints load with ``torch.load(weights_only=True)``: they hold only tensors, numbers and strings.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import CheckpointError, InvalidArgumentError
from ..progress import no_progress
from .discriminator import Discriminator


# ------------------------------------------------------------------------------------------------
# Configuration


@dataclass
class GanConfig:
    """Everything that defines an adversarial training run (JSON-able; stored in checkpoints)."""

    data: str = "toyfaces"              # 'toyfaces' (renderer on the fly) or a folder of images
    out: str = "runs/gan"               # run directory (checkpoints, samples, log, final generator)
    resolution: int = 64                # training resolution R (power of two)
    batch: int = 32                     # minibatch size
    kimg: float = 100.0                 # total length of training in thousands of real images shown
    seed: int = 0                       # seeds the networks' initialisation and the data/latent streams
    mirror: bool = False                # x-flip augmentation for image folders
    # generator (ignored when init is given: the init file's config wins)
    z_dim: int = 64
    w_dim: int = 64
    map_layers: int = 4
    channel_base: int = 4096            # feature maps per resolution: min(channel_base // res, channel_max)
    channel_max: int = 128
    g_channels: dict | None = None      # optional explicit {str(res): channels} for G
    conv_clamp: float | None = None
    init: str | None = None             # start G (and G_ema) from this canonical generator file
    # discriminator
    d_channel_base: int = 4096
    d_channel_max: int = 128
    d_channels: dict | None = None
    mbstd_group: int = 4
    # optimisation
    g_lr: float = 0.002
    d_lr: float = 0.002
    betas: tuple = (0.0, 0.99)
    r1_gamma: float = 0.1               # R1 weight (0 = off)
    r1_interval: int = 16
    pl_weight: float = 0.0              # path-length weight (0 = off; StyleGAN2 uses 2)
    pl_interval: int = 4
    pl_decay: float = 0.01
    pl_batch_shrink: int = 2
    style_mixing_prob: float = 0.9
    ema_kimg: float = 1.0               # half-life of the generator EMA in kimg
    ema_rampup: float | None = None     # if set, half-life = min(ema_kimg, cur_kimg * ema_rampup)
    # bookkeeping
    snapshot_kimg: float = 4.0          # checkpoint + sample grid every this many kimg
    log_kimg: float = 0.5               # progress line every this many kimg
    grid_size: int = 36                 # images in the sample grid
    threads: int | None = None          # torch.set_num_threads (None = leave as is)
    device: str = "cpu"

    def generator_config(self) -> dict:
        """NVIDIA-style Generator kwargs for :class:`StyleGAN2Generator`."""
        cfg = dict(z_dim=self.z_dim, c_dim=0, w_dim=self.w_dim, img_resolution=self.resolution, img_channels=3,
                   mapping_kwargs=dict(num_layers=self.map_layers), channel_base=self.channel_base,
                   channel_max=self.channel_max, conv_clamp=self.conv_clamp, architecture="skip")
        if self.g_channels:
            cfg["channels"] = {str(k): int(v) for k, v in self.g_channels.items()}
        return cfg

    def discriminator_kwargs(self) -> dict:
        return dict(img_resolution=self.resolution, img_channels=3, channel_base=self.d_channel_base,
                    channel_max=self.d_channel_max, channels=self.d_channels, mbstd_group_size=self.mbstd_group,
                    conv_clamp=self.conv_clamp)

    def validate(self) -> None:
        log2 = int(round(math.log2(self.resolution))) if self.resolution > 0 else 0
        if self.resolution < 8 or 2 ** log2 != self.resolution:
            raise InvalidArgumentError(f"--resolution must be a power of two >= 8, not {self.resolution}")
        if self.batch < 1:
            raise InvalidArgumentError(f"--batch must be >= 1, not {self.batch}")
        if self.kimg <= 0:
            raise InvalidArgumentError(f"--kimg must be positive, not {self.kimg}")
        if not 0.0 <= self.style_mixing_prob <= 1.0:
            raise InvalidArgumentError(f"style mixing probability must be in [0, 1], not {self.style_mixing_prob}")
        for name in ("r1_interval", "pl_interval"):
            if getattr(self, name) < 1:
                raise InvalidArgumentError(f"{name} must be >= 1")
        if self.r1_gamma < 0 or self.pl_weight < 0:
            raise InvalidArgumentError("regularisation weights must be >= 0")


# ------------------------------------------------------------------------------------------------
# Shared helpers (also used by the supervised recipe)


def build_generator(config: dict, device="cpu"):
    """A fresh :class:`StyleGAN2Generator` from NVIDIA-style kwargs, on ``device``, in train mode."""
    from ..networks.stylegan2 import StyleGAN2Generator

    return StyleGAN2Generator(dict(config)).to(device).train()


def load_init_generator(path: str, device="cpu"):
    """Read a canonical generator file to start training from: returns a trainable StyleGAN2 G."""
    from ..checkpoints.canonical import read_canonical
    from ..checkpoints.load import load_state_checked

    arch, config, state, _ = read_canonical(path)
    if arch != "stylegan2":
        raise CheckpointError(f"{path}: only StyleGAN2 generators can be trained here, this one is {arch!r}.")
    G = build_generator(config, device="cpu")
    load_state_checked(G, state, source=str(path))
    return G.to(device).train().requires_grad_(True)


def save_canonical(G, path: str | Path, extra_metadata: dict | None = None) -> Path:
    """Write ``G`` in stylekit's canonical safetensors format."""
    from ..checkpoints.canonical import save_generator

    return save_generator(G, path, extra_metadata=extra_metadata)


def lazy_reg_adam(params, lr: float, betas, reg_interval: int | None) -> torch.optim.Adam:
    """Adam with the lazy-regularisation correction (``lr * r``, ``beta ** r``, ``r = k / (k + 1)``)."""
    ratio = 1.0 if not reg_interval else reg_interval / (reg_interval + 1)
    return torch.optim.Adam(params, lr=lr * ratio, betas=tuple(b ** ratio for b in betas), eps=1e-8)


@torch.no_grad()
def ema_update(G_ema, G, beta: float) -> None:
    """``p_ema <- lerp(p, p_ema, beta)`` for parameters; buffers (w_avg, noise) copied from ``G``."""
    for p_ema, p in zip(G_ema.parameters(), G.parameters()):
        p_ema.copy_(p.detach().lerp(p_ema, beta))
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)


def mixed_ws(G, z: torch.Tensor, *, style_mixing_prob: float, update_emas: bool = False,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Map ``z [N, z_dim]`` to ``ws [N, num_ws, w_dim]`` with style-mixing regularisation.

    With probability ``style_mixing_prob`` (per batch, as in StyleGAN2-ADA) a random cutoff in
    ``[1, num_ws)`` is drawn and the ws from it onward come from a second random latent.
    """
    ws = G.mapping(z, None, update_emas=update_emas)
    if style_mixing_prob > 0 and G.num_ws > 1:
        u = torch.rand([], generator=generator).item()
        if u < style_mixing_prob:
            cutoff = int(torch.randint(1, G.num_ws, [], generator=generator).item())
            z2 = torch.randn(z.shape, generator=generator).to(z.device)
            ws = ws.clone()
            ws[:, cutoff:] = G.mapping(z2, None, update_emas=False)[:, cutoff:]
    return ws


def save_grid(images: torch.Tensor, path: str | Path, *, ncols: int | None = None) -> Path:
    """Write ``[N, 3, H, W]`` images in [-1, 1] as one PNG grid."""
    from ..images import make_grid, tensor_to_pil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensor_to_pil(make_grid(images.clamp(-1, 1), ncols=ncols, padding=1)).save(path)
    return path


def fixed_latents(G, n: int, seed: int = 1234) -> torch.Tensor:
    """``n`` reproducible standard-normal latents ``[n, z_dim]`` for sample grids."""
    return torch.randn([n, G.z_dim], generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def sample_grid(G, z: torch.Tensor, path: str | Path, device="cpu") -> Path:
    """Render ``G`` at fixed ``z`` (noise_mode='const') and save the grid PNG."""
    was_training = G.training
    G.eval()
    imgs = []
    for i in range(0, len(z), 64):
        ws = G.mapping(z[i:i + 64].to(device), None)
        imgs.append(G.synthesis(ws, noise_mode="const").cpu())
    G.train(was_training)
    return save_grid(torch.cat(imgs), path)


class RunLog:
    """Appends progress lines to ``out/log.txt`` and echoes them to stdout."""

    def __init__(self, out: Path, echo: bool = True):
        self.path = out / "log.txt"
        self.echo = echo

    def __call__(self, line: str) -> None:
        with open(self.path, "a") as fh:
            fh.write(line + "\n")
        if self.echo:
            print(line, flush=True)


# ------------------------------------------------------------------------------------------------
# Losses


def g_main_loss(D, gen_img: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss, mean over the batch: ``softplus(-D(G(z)))``."""
    return F.softplus(-D(gen_img)).mean()


def d_main_loss(D, gen_img: torch.Tensor, real_img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logistic discriminator loss ``softplus(D(fake)) + softplus(-D(real))``; also returns the logits."""
    fake_logits = D(gen_img)
    real_logits = D(real_img)
    loss = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
    return loss, fake_logits.detach(), real_logits.detach()


def r1_penalty(D, real_img: torch.Tensor) -> torch.Tensor:
    """``|grad_x D(x)|^2`` per sample ``[N]`` (create_graph for the backward through it)."""
    real = real_img.detach().requires_grad_(True)
    logits = D(real)
    (grad,) = torch.autograd.grad(outputs=[logits.sum()], inputs=[real], create_graph=True, only_inputs=True)
    return grad.square().sum(dim=[1, 2, 3])


def path_length_penalty(G, z: torch.Tensor, pl_mean: torch.Tensor, *, style_mixing_prob: float,
                        decay: float, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Path-length penalty ``(|J_w^T y| - a)^2`` per sample, with ``y ~ N(0, I) / sqrt(H W)``.

    Returns ``(penalty [N], new pl_mean)`` where the mean is ``lerp(pl_mean, mean length, decay)``.
    """
    ws = mixed_ws(G, z, style_mixing_prob=style_mixing_prob, generator=generator)
    img = G.synthesis(ws, noise_mode="random")
    noise = torch.randn(img.shape, generator=generator).to(img.device) / math.sqrt(img.shape[2] * img.shape[3])
    (grad,) = torch.autograd.grad(outputs=[(img * noise).sum()], inputs=[ws], create_graph=True, only_inputs=True)
    lengths = grad.square().sum(dim=2).mean(dim=1).sqrt()
    new_mean = pl_mean.lerp(lengths.mean().detach(), decay)
    return (lengths - new_mean).square(), new_mean


# ------------------------------------------------------------------------------------------------
# Checkpoints


def _rng_state(rng: np.random.Generator) -> str:
    return json.dumps(rng.bit_generator.state)


def _restore_rng(state: str) -> np.random.Generator:
    rng = np.random.default_rng()
    rng.bit_generator.state = json.loads(state)
    return rng


def save_checkpoint(path: Path, *, kind: str, config: dict, nets: dict, optims: dict, cur_nimg: int,
                    rng: np.random.Generator, torch_gen: torch.Generator, extra: dict | None = None) -> Path:
    """Write a resumable training checkpoint (atomic rename). Holds only tensors, numbers and strings."""
    state = {
        "kind": kind,
        "config": json.dumps(config),
        "cur_nimg": int(cur_nimg),
        "nets": {name: net.state_dict() for name, net in nets.items()},
        "optims": {name: opt.state_dict() for name, opt in optims.items()},
        "numpy_rng": _rng_state(rng),
        "torch_rng": torch_gen.get_state(),
        "extra": extra or {},
    }
    if "G" in nets:
        state["g_config"] = json.dumps(nets["G"].config)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(path: str | Path, *, kind: str) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only``: nothing is executed)."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint-latest.pt"
    if not path.is_file():
        raise CheckpointError(f"{path}: no such training checkpoint; pass a checkpoint-*.pt file or its run folder.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt / foreign files
        raise CheckpointError(f"{path}: not a readable training checkpoint ({exc}).") from exc
    if not isinstance(state, dict) or state.get("kind") != kind:
        raise CheckpointError(f"{path}: not a {kind!r} training checkpoint (found {state.get('kind') if isinstance(state, dict) else type(state).__name__!r}).")
    return state


# ------------------------------------------------------------------------------------------------
# The loop


def train_gan(cfg: GanConfig, *, resume: str | None = None, progress=no_progress, echo: bool = True) -> dict:
    """Run (or resume) adversarial training; returns a summary dict.

    Args:
        cfg: the run's settings (see :class:`GanConfig`). When resuming, the checkpoint's settings
            are used except ``kimg`` (so a finished run can be extended), ``out``,
            ``snapshot_kimg``, ``log_kimg``, ``threads`` and ``device``.
        resume: a checkpoint file or run folder (``checkpoint-latest.pt`` inside it).
        progress: ``callback(step_nimg, total_nimg, message, **metrics)``.

    Returns: ``dict(kimg=..., generator=<path of the final canonical G_ema>, checkpoint=<path>, ...)``.
    """
    state = None
    if resume is not None:
        state = load_checkpoint(resume, kind="gan")
        saved = json.loads(state["config"])
        keep = {k: getattr(cfg, k) for k in ("kimg", "out", "snapshot_kimg", "log_kimg", "threads", "device")}
        saved.update(keep)
        saved["betas"] = tuple(saved["betas"])
        saved["init"] = None
        cfg = GanConfig(**saved)
    cfg.validate()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device(cfg.device)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    log = RunLog(out, echo=echo)

    from .data import make_source

    source = make_source(cfg.data, cfg.resolution, mirror=cfg.mirror, device="cpu")

    torch.manual_seed(cfg.seed)
    if cfg.init and state is None:
        G = load_init_generator(cfg.init, device=device)
        if G.img_resolution != cfg.resolution:
            raise InvalidArgumentError(
                f"--init generator is {G.img_resolution}x{G.img_resolution} but --resolution is {cfg.resolution}; "
                "use the same resolution.")
    else:
        g_config = json.loads(state["g_config"]) if state is not None else cfg.generator_config()
        G = build_generator(g_config, device=device)
    D = Discriminator(**cfg.discriminator_kwargs()).to(device).train()
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)

    d_reg = cfg.r1_interval if cfg.r1_gamma > 0 else None
    g_reg = cfg.pl_interval if cfg.pl_weight > 0 else None
    opt_G = lazy_reg_adam(G.parameters(), cfg.g_lr, cfg.betas, g_reg)
    opt_D = lazy_reg_adam(D.parameters(), cfg.d_lr, cfg.betas, d_reg)

    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    cur_nimg = 0
    pl_mean = torch.zeros([], device=device)
    if state is not None:
        G.load_state_dict(state["nets"]["G"])
        D.load_state_dict(state["nets"]["D"])
        G_ema.load_state_dict(state["nets"]["G_ema"])
        opt_G.load_state_dict(state["optims"]["G"])
        opt_D.load_state_dict(state["optims"]["D"])
        cur_nimg = int(state["cur_nimg"])
        rng = _restore_rng(state["numpy_rng"])
        gen.set_state(state["torch_rng"])
        pl_mean = torch.as_tensor(float(state["extra"].get("pl_mean", 0.0)), device=device)
        log(f"resumed from {resume} at kimg {cur_nimg / 1000:.1f}")
    else:
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
        log(f"G: {sum(p.numel() for p in G.parameters()):,} params, D: {sum(p.numel() for p in D.parameters()):,} params, "
            f"data={cfg.data} at {cfg.resolution}x{cfg.resolution}, batch {cfg.batch}")

    grid_z = fixed_latents(G, cfg.grid_size)
    total_nimg = int(round(cfg.kimg * 1000))
    batch = cfg.batch
    step = 0
    tick_start_nimg, tick_start_time = cur_nimg, time.time()
    next_log = (cur_nimg // int(cfg.log_kimg * 1000) + 1) * int(cfg.log_kimg * 1000) if cfg.log_kimg > 0 else None
    snap = int(cfg.snapshot_kimg * 1000)
    next_snap = (cur_nimg // snap + 1) * snap if snap > 0 else None
    stats: dict[str, list[float]] = {}
    ckpt_path = None

    def record(name, value):
        stats.setdefault(name, []).append(float(value))

    def snapshot():
        nonlocal ckpt_path
        kimg_tag = f"{cur_nimg // 1000:06d}"
        nets = {"G": G, "D": D, "G_ema": G_ema}
        ckpt_path = save_checkpoint(out / f"checkpoint-{kimg_tag}.pt", kind="gan", config=asdict(cfg), nets=nets,
                                    optims={"G": opt_G, "D": opt_D}, cur_nimg=cur_nimg, rng=rng, torch_gen=gen,
                                    extra={"pl_mean": float(pl_mean)})
        latest = out / "checkpoint-latest.pt"
        tmp = out / "checkpoint-latest.tmp"
        tmp.write_bytes(ckpt_path.read_bytes())
        tmp.replace(latest)
        sample_grid(G_ema, grid_z, out / f"samples-{kimg_tag}.png", device=device)

    if state is None:
        sample_grid(G_ema, grid_z, out / "samples-init.png", device=device)

    while cur_nimg < total_nimg:
        # ---- Gmain
        G.requires_grad_(True)
        D.requires_grad_(False)
        z = torch.randn([batch, G.z_dim], generator=gen).to(device)
        ws = mixed_ws(G, z, style_mixing_prob=cfg.style_mixing_prob, generator=gen)
        gen_img = G.synthesis(ws, noise_mode="random")
        loss_g = g_main_loss(D, gen_img)
        opt_G.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_G.step()
        record("loss_G", loss_g.item())

        # ---- Greg: path length
        if g_reg and step % cfg.pl_interval == 0:
            n_pl = max(batch // cfg.pl_batch_shrink, 1)
            z = torch.randn([n_pl, G.z_dim], generator=gen).to(device)
            penalty, pl_mean = path_length_penalty(G, z, pl_mean, style_mixing_prob=cfg.style_mixing_prob,
                                                   decay=cfg.pl_decay, generator=gen)
            loss_pl = penalty.mean() * cfg.pl_weight
            opt_G.zero_grad(set_to_none=True)
            (loss_pl * cfg.pl_interval).backward()
            opt_G.step()
            record("loss_pl", loss_pl.item())

        # ---- Dmain
        G.requires_grad_(False)
        D.requires_grad_(True)
        with torch.no_grad():
            z = torch.randn([batch, G.z_dim], generator=gen).to(device)
            ws = mixed_ws(G, z, style_mixing_prob=cfg.style_mixing_prob, update_emas=True, generator=gen)
            gen_img = G.synthesis(ws, noise_mode="random")
        real_img = source.batch(batch, rng).to(device)
        loss_d, fake_logits, real_logits = d_main_loss(D, gen_img, real_img)
        opt_D.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_D.step()
        record("loss_D", loss_d.item())
        record("D_real", real_logits.mean().item())
        record("D_fake", fake_logits.mean().item())

        # ---- Dreg: R1
        if d_reg and step % cfg.r1_interval == 0:
            penalty = r1_penalty(D, real_img)
            loss_r1 = penalty.mean() * (cfg.r1_gamma / 2)
            opt_D.zero_grad(set_to_none=True)
            (loss_r1 * cfg.r1_interval).backward()
            opt_D.step()
            record("r1", penalty.mean().item())

        # ---- G_ema
        ema_nimg = cfg.ema_kimg * 1000
        if cfg.ema_rampup is not None:
            ema_nimg = min(ema_nimg, (cur_nimg + batch) * cfg.ema_rampup)
        ema_update(G_ema, G, 0.5 ** (batch / max(ema_nimg, 1e-8)))

        cur_nimg += batch
        step += 1
        done = cur_nimg >= total_nimg

        if next_log is not None and (cur_nimg >= next_log or done):
            elapsed = time.time() - tick_start_time
            sec_per_kimg = elapsed / max((cur_nimg - tick_start_nimg) / 1000, 1e-9)
            means = {k: float(np.mean(v)) for k, v in stats.items()}
            log(f"kimg {cur_nimg / 1000:8.2f}  " + "  ".join(f"{k} {v:7.4f}" for k, v in means.items())
                + f"  sec/kimg {sec_per_kimg:7.1f}")
            progress(cur_nimg, total_nimg, "gan", **means)
            stats.clear()
            tick_start_nimg, tick_start_time = cur_nimg, time.time()
            while next_log <= cur_nimg:
                next_log += int(cfg.log_kimg * 1000)
        if (next_snap is not None and cur_nimg >= next_snap) or done:
            snapshot()
            if next_snap is not None:
                while next_snap <= cur_nimg:
                    next_snap += snap

    if ckpt_path is None:  # resumed a run that was already complete
        snapshot()
    G_ema.eval()
    final = save_canonical(G_ema, out / "generator.safetensors",
                           extra_metadata={"source": "stylekit.train gan", "kimg": f"{cur_nimg / 1000:.1f}",
                                           "data": cfg.data})
    log(f"done at kimg {cur_nimg / 1000:.2f}; wrote {final}")
    return dict(kimg=cur_nimg / 1000, generator=str(final), checkpoint=str(ckpt_path), out=str(out))
