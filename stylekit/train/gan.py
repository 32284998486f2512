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

With ``--precision bf16`` (or fp16) G renders through its own reduced-precision synthesis path
(``G.synthesis(..., precision=...)``; the mapping stays float32) and D runs under autocast
(channels-last on CPU); the losses and penalties are float32 (:mod:`stylekit.train.mixed_precision`).

On several processes (:mod:`stylekit.train.distributed`) the latents, style mixing and real images
of the global batch are drawn from the shared streams and each rank synthesises and scores its
rows (the mapping runs on the whole batch, so ``w_avg`` sees it all); the path-length rows use each
rank's own stream and the path-length mean is averaged over the ranks. D's minibatch standard
deviation groups are formed within each rank's rows.

The run folder gets a checkpoint every ``snapshot_kimg`` (``checkpoint-KKKKKK.pt`` and
``checkpoint-latest.pt``, see :class:`stylekit.train.skeleton.Run`) with a sample grid
``samples-KKKKKK.png`` from G_ema for fixed latents, and at the end G_ema in stylekit's canonical
format (``generator.safetensors``).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Callable, ClassVar

import torch

from ..errors import InvalidArgumentError
from ..progress import ProgressCallback, no_progress
from .adversarial import d_main_loss, g_main_loss, lazy_reg_adam, path_length_penalty, r1_penalty
from .compiled import synthesis_callable
from .generators import GeneratorConfig, fixed_latents, generator_for_run, mixed_ws, sample_grid, save_canonical
from .kimg_loop import run_kimg_loop
from .skeleton import Run, ema_beta, ema_update

__all__ = ["GanConfig", "train_gan"]


@dataclass
class GanConfig(GeneratorConfig):
    """Everything that defines an adversarial training run (JSON-able; stored in checkpoints).

    ``lr`` is the generator's learning rate, ``d_lr`` the discriminator's.
    """

    lr: float = 0.002
    data: str = "toyfaces"              # 'toyfaces' (renderer on the fly) or a folder of images
    mirror: bool = False                # x-flip augmentation for image folders
    # discriminator
    d_channel_base: int = 4096
    d_channel_max: int = 128
    d_channels: dict | None = None
    mbstd_group: int = 4
    # optimisation
    d_lr: float = 0.002
    betas: tuple = (0.0, 0.99)
    r1_gamma: float = 0.1               # R1 weight (0 = off)
    r1_interval: int = 16
    pl_weight: float = 0.0              # path-length weight (0 = off; StyleGAN2 uses 2)
    pl_interval: int = 4
    pl_decay: float = 0.01
    pl_batch_shrink: int = 2
    style_mixing_prob: float = 0.9
    ema_rampup: float | None = None     # if set, EMA half-life = min(ema_kimg, cur_kimg * ema_rampup)

    kind: ClassVar[str] = "gan"

    def discriminator_kwargs(self) -> dict:
        return dict(img_resolution=self.resolution, img_channels=3, channel_base=self.d_channel_base,
                    channel_max=self.d_channel_max, channels=self.d_channels, mbstd_group_size=self.mbstd_group,
                    conv_clamp=self.conv_clamp)

    def resumed_from(self, saved: dict) -> "GanConfig":
        if "g_lr" in saved and "lr" not in saved:  # checkpoints written before the shared TrainConfig
            saved = {**saved, "lr": saved["g_lr"]}
        return super().resumed_from(saved)

    def validate(self) -> None:
        super().validate()
        if self.arch != "stylegan2":
            raise InvalidArgumentError(f"the adversarial trainer builds StyleGAN2 generators, not {self.arch}; train a "
                                       "StyleGAN3 with 'supervised' (toyfaces).")
        if not 0.0 <= self.style_mixing_prob <= 1.0:
            raise InvalidArgumentError(f"style mixing probability must be in [0, 1], not {self.style_mixing_prob}")
        for name in ("r1_interval", "pl_interval"):
            if getattr(self, name) < 1:
                raise InvalidArgumentError(f"{name} must be >= 1")
        if self.r1_gamma < 0 or self.pl_weight < 0:
            raise InvalidArgumentError("regularisation weights must be >= 0")


def _compiled_note(cfg: GanConfig) -> str:
    """What ``--compile`` compiled, for the run's first log line ('' without it)."""
    if not cfg.compile:
        return ""
    if cfg.data == "toyfaces":
        return ", synthesis and the toyfaces renders compiled (the first step compiles them)"
    return ", synthesis compiled (the first step compiles it)"


class _Nets:
    """G, D, G_ema, both optimisers, the path-length mean and the data source of a run."""

    def __init__(self, cfg: GanConfig, state: dict | None, device, amp):
        from .data import make_source
        from .discriminator import Discriminator

        self.source = make_source(cfg.data, cfg.resolution, mirror=cfg.mirror, device="cpu", compiled=cfg.compile)
        self.G = generator_for_run(cfg, state, device)
        self.D = amp.channels_last(Discriminator(**cfg.discriminator_kwargs()).to(device).train())
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.synthesis = synthesis_callable(self.G, enabled=cfg.compile, device=device)  # G.synthesis or compiled
        self.g_reg = cfg.pl_interval if cfg.pl_weight > 0 else None
        self.d_reg = cfg.r1_interval if cfg.r1_gamma > 0 else None
        self.opt_G = lazy_reg_adam(self.G.parameters(), cfg.lr, cfg.betas, self.g_reg)
        self.opt_D = lazy_reg_adam(self.D.parameters(), cfg.d_lr, cfg.betas, self.d_reg)
        self.pl_mean = torch.zeros([], device=device)

    def nets(self) -> dict:
        return {"G": self.G, "D": self.D, "G_ema": self.G_ema}

    def optims(self) -> dict:
        return {"G": self.opt_G, "D": self.opt_D}


def _generator_step(n: _Nets, cfg: GanConfig, run: Run, stats: dict) -> None:
    """Gmain, then Greg (path length) on its interval."""
    G, D, gen, device, amp = n.G, n.D, run.gen, run.device, run.amp
    G.requires_grad_(True)
    D.requires_grad_(False)
    z = torch.randn([cfg.batch, G.z_dim], generator=gen).to(device)
    ws = run.shard(mixed_ws(G, z, style_mixing_prob=cfg.style_mixing_prob, generator=gen))  # this rank's rows
    img = amp.images(n.synthesis(ws, noise_mode="random", precision=amp.synthesis).float())
    with amp.autocast():
        loss_g = g_main_loss(D, img)
    n.opt_G.zero_grad(set_to_none=True)
    amp.backward(loss_g)
    amp.step(n.opt_G)
    stats["loss_G"] = loss_g.item()
    if n.g_reg and run.step % cfg.pl_interval == 0:
        z = torch.randn([max(cfg.batch // cfg.pl_batch_shrink, run.dist.world), G.z_dim], generator=gen).to(device)
        penalty, pl_mean = path_length_penalty(G, run.shard(z), n.pl_mean, style_mixing_prob=cfg.style_mixing_prob,
                                               decay=cfg.pl_decay, generator=run.local_gen, precision=amp.synthesis)
        n.pl_mean = run.dist.average(pl_mean)
        loss_pl = penalty.mean() * cfg.pl_weight
        n.opt_G.zero_grad(set_to_none=True)
        amp.backward(loss_pl * cfg.pl_interval)
        amp.step(n.opt_G)
        stats["loss_pl"] = loss_pl.item()


def _discriminator_step(n: _Nets, cfg: GanConfig, run: Run, stats: dict) -> None:
    """Dmain on a fresh fake batch and a real batch, then Dreg (R1) on its interval."""
    G, D, gen, device, amp = n.G, n.D, run.gen, run.device, run.amp
    G.requires_grad_(False)
    D.requires_grad_(True)
    with torch.no_grad():
        z = torch.randn([cfg.batch, G.z_dim], generator=gen).to(device)
        ws = run.shard(mixed_ws(G, z, style_mixing_prob=cfg.style_mixing_prob, update_emas=True, generator=gen))
        gen_img = amp.images(n.synthesis(ws, noise_mode="random", precision=amp.synthesis).float())
    with torch.profiler.record_function("data"):  # a scope of --profile-steps
        real = n.source.batch(cfg.batch, run.rng, rows=run.dist.rows(cfg.batch))
    real_img = amp.images(real.to(device))
    with amp.autocast():
        loss_d, fake_logits, real_logits = d_main_loss(D, gen_img, real_img)
    n.opt_D.zero_grad(set_to_none=True)
    amp.backward(loss_d)
    amp.step(n.opt_D)
    stats.update(loss_D=loss_d.item(), D_real=real_logits.mean().item(), D_fake=fake_logits.mean().item())
    if n.d_reg and run.step % cfg.r1_interval == 0:
        with amp.autocast():
            penalty = r1_penalty(D, real_img)
        loss_r1 = penalty.mean() * (cfg.r1_gamma / 2)
        n.opt_D.zero_grad(set_to_none=True)
        amp.backward(loss_r1 * cfg.r1_interval)
        amp.step(n.opt_D)
        stats["r1"] = penalty.mean().item()


def _train_step(n: _Nets, cfg: GanConfig, run: Run) -> tuple[dict, int]:
    """One iteration (Gmain, Greg, Dmain, Dreg, G_ema); returns its numbers and the images it used."""
    stats: dict[str, float] = {}
    _generator_step(n, cfg, run, stats)
    _discriminator_step(n, cfg, run, stats)
    ema_nimg = cfg.ema_kimg * 1000
    if cfg.ema_rampup is not None:
        ema_nimg = min(ema_nimg, (run.cur_nimg + cfg.batch) * cfg.ema_rampup)
    ema_update(n.G_ema, n.G, ema_beta(cfg.batch, ema_nimg))
    return stats, cfg.batch


def train_gan(cfg: GanConfig, *, progress: ProgressCallback = no_progress,
              log: Callable[[str], None] | None = print) -> dict:
    """Run (or, with ``cfg.resume``, continue) adversarial training; returns a summary dict.

    Args:
        cfg: the run's settings (see :class:`GanConfig`). When resuming, the checkpoint's settings
            are used except the run fields (``kimg`` — so a finished run can be extended — ``out``,
            ``snapshot_kimg``, ``log_kimg``, ``threads``, ``device``, ``export``).
        progress: ``callback(images_shown, total_images, "gan", **means)`` at every log line.
        log: where log lines go besides ``out/log.txt`` (None: the file only).

    Returns: ``dict(kimg=..., generator=<path of the final canonical G_ema>, checkpoint=<path>, out=...)``.
    """
    with Run(cfg, log=log, progress=progress) as run:
        state = run.resume_state()
        if state is not None:
            cfg = run.cfg = cfg.resumed_from(run.saved_config(state))
            cfg.validate()
        n = _Nets(cfg, state, run.device, run.amp)
        if state is not None:
            extra = run.restore(state, n.nets(), n.optims())
            n.pl_mean = torch.as_tensor(float(extra.get("pl_mean", 0.0)), device=run.device)
            run.distribute(n.nets(), n.optims())
            run.log(f"resumed from {run.resume_path} at kimg {run.cur_nimg / 1000:.1f}")
        else:
            run.distribute(n.nets(), n.optims())
            run.write_config()
            run.log(f"G: {sum(p.numel() for p in n.G.parameters()):,} params, "
                    f"D: {sum(p.numel() for p in n.D.parameters()):,} params, "
                    f"data={cfg.data} at {cfg.resolution}x{cfg.resolution}, batch {cfg.batch}"
                    f"{_compiled_note(cfg)}")
        grid_z = fixed_latents(n.G, cfg.grid_size)
        if state is None and run.is_main:
            sample_grid(n.G_ema, grid_z, run.out / "samples-init.png", device=run.device)

        written = {}

        def snapshot() -> None:
            tag = f"{run.cur_nimg // 1000:06d}"
            written["checkpoint"] = run.checkpoint(nets=n.nets(), optims=n.optims(), keep=tag,
                           extra={"pl_mean": float(n.pl_mean), "g_config": json.dumps(n.G.config),
                                  "g_arch": n.G.arch})
            if run.is_main:
                sample_grid(n.G_ema, grid_z, run.out / f"samples-{tag}.png", device=run.device)

        run_kimg_loop(run, cfg, lambda: _train_step(n, cfg, run), snapshot, label="gan")
        n.G_ema.eval()
        final = run.out / "generator.safetensors"
        if run.is_main:
            save_canonical(n.G_ema, final, extra_metadata={"source": "stylekit.train gan",
                                                           "kimg": f"{run.cur_nimg / 1000:.1f}", "data": cfg.data})
        run.export(final)
        run.log(f"done at kimg {run.cur_nimg / 1000:.2f}; wrote {final}")
        return dict(kimg=run.cur_nimg / 1000, generator=str(final), checkpoint=str(written["checkpoint"]),
                    out=str(run.out))
