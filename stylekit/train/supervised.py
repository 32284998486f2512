"""Supervised pretraining of a toyfaces StyleGAN2: every latent has a target image.

Adversarial training from scratch is far too slow on a small CPU, but the toyfaces world is ours:
the renderer turns attributes into an image deterministically. So we fix a map from z to
attributes (:func:`stylekit.toyfaces.latents.z_to_attributes`, "labelled latents"), render the
target of each sampled z (:func:`~stylekit.toyfaces.latents.render_targets`), and train the whole
generator (mapping and synthesis) to reproduce it. Samples of the trained G for random z then
follow the renderer's attribute distribution and look like renders, and W is organised by
attributes.

**The loss** between ``G(z)`` and the render, both ``[N, 3, R, R]`` in ``[-1, 1]``:
``l1_weight * L1 + multiscale_weight * mean_s L1(avgpool_s(.)) + percep_weight * |f(G) - f(render)|``
``+ grad_weight * L1(d/dx, d/dy) + lap_weight * L1(Laplacian) + face_weight * L1 over the face box``
with ``f`` the toyfaces predictor's features (skipped if no predictor is installed). The last three terms reward
the small features a student looks at: the gradient-domain L1 (finite differences of both images) rewards
sharp edges, which a plain L1 is content to blur when a feature's position is uncertain, the Laplacian L1
(the 5-point Laplacian of both images: second differences, the finest scale) does so for one-pixel lines
(pupils, rims, mouth corners), and the face-box L1
(:func:`stylekit.toyfaces.renderer.face_box`, about a fifth of the image) puts the eyes, mouth and glasses on
a par with the large regions of hair and background. Plus,
optionally, from ``adv_start_kimg`` on, ``adv_weight`` times the non-saturating GAN loss against a
discriminator trained alongside (logistic loss + lazy R1), as in :mod:`stylekit.train.gan`.

With ``--precision bf16`` (or fp16) G renders through its own reduced-precision synthesis path
(``G.synthesis(..., precision=...)``; the mapping stays float32) and the predictor and
discriminator run under autocast (channels-last on CPU); every loss term is computed
in float32 (see :mod:`stylekit.train.mixed_precision`).

The learning rate is constant, then follows a cosine down to 10% over the last ``lr_rampdown_kimg``.
``w_avg`` is tracked by ``G.mapping(..., update_emas=True)``; an EMA copy of G (half-life
``ema_kimg``) is what gets saved. Checkpoints every ``snapshot_kimg`` make the run resumable.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Callable, ClassVar

import torch
import torch.nn.functional as F

from ..errors import InvalidArgumentError
from ..progress import ProgressCallback, no_progress
from ..toyfaces.latents import render_targets
from .adversarial import d_main_loss, g_main_loss, lazy_reg_adam, r1_penalty
from .compiled import synthesis_callable
from .generators import GeneratorConfig, fixed_latents, generator_for_run, sample_grid, save_canonical, save_grid
from .kimg_loop import run_kimg_loop
from .skeleton import Run, cosine_lr, ema_beta, ema_update

__all__ = ["SupervisedConfig", "ReconstructionLoss", "train_supervised"]


@dataclass
class SupervisedConfig(GeneratorConfig):
    """Settings of a supervised (render-target) pretraining run; JSON-able, stored in checkpoints."""

    z_dim: int = 32
    w_dim: int = 128
    lr: float = 0.005
    mapping_lr_scale: float = 100.0    # the mapping network's lr is lr * this (its weights carry lr_multiplier 0.01)
    betas: tuple = (0.9, 0.99)
    lr_rampdown_kimg: float = 0.0      # cosine-decay the lr to 10% over the last this many kimg
    noise_mode: str = "random"         # noise inputs while training ('random' teaches G to ignore them)
    l1_weight: float = 1.0
    multiscale_weight: float = 1.0     # L1 on 2x, 4x, 8x average-pooled images
    percep_weight: float = 0.1         # L1 between toyfaces predictor features (0 = off)
    grad_weight: float = 0.0           # L1 between the images' finite differences (edges; 0 = off)
    lap_weight: float = 0.0            # L1 between the images' 5-point Laplacians (one-pixel lines; 0 = off)
    face_weight: float = 0.0           # extra L1 over the toyfaces face box (0 = off)
    adv_weight: float = 0.0            # weight of the non-saturating GAN loss (0 = off)
    adv_start_kimg: float = 0.0
    d_lr: float = 0.002
    d_channel_base: int = 4096
    d_channel_max: int = 128
    r1_gamma: float = 0.1
    r1_interval: int = 16

    kind: ClassVar[str] = "supervised"
    #: A resumed run also takes the batch size, learning-rate schedule and loss weights from the new
    #: settings, so a run can be extended or fine-tuned with new weights.
    RUN_FIELDS: ClassVar[tuple[str, ...]] = GeneratorConfig.RUN_FIELDS + (
        "batch", "lr", "lr_rampdown_kimg", "l1_weight", "multiscale_weight", "percep_weight", "grad_weight",
        "lap_weight", "face_weight", "adv_weight", "adv_start_kimg")

    def lr_at(self, cur_nimg: int) -> float:
        """The learning rate after ``cur_nimg`` images: constant, then a cosine to 10% over the last ``lr_rampdown_kimg``."""
        return cosine_lr(self.lr, cur_nimg, int(round(self.kimg * 1000)), decay=self.lr_rampdown_kimg * 1000,
                         floor=0.1)

    def validate(self) -> None:
        from ..toyfaces.attributes import ATTRIBUTES

        super().validate()
        if self.z_dim < len(ATTRIBUTES) and self.init is None:
            raise InvalidArgumentError(
                f"--z-dim must be at least {len(ATTRIBUTES)} (one dimension per toyfaces attribute), not {self.z_dim}")
        if self.noise_mode not in ("random", "const", "none"):
            raise InvalidArgumentError(f"noise_mode must be 'random', 'const' or 'none', not {self.noise_mode!r}")


class ReconstructionLoss(torch.nn.Module):
    """``L1 + multi-scale L1 + predictor-feature L1 + gradient L1 + Laplacian L1 + face-box L1`` between images ``[N, 3, R, R]`` in [-1, 1].

    ``forward(pred, target) -> (total scalar, dict of the parts as floats)``. The terms are float32;
    with ``amp`` (a :class:`~stylekit.train.mixed_precision.MixedPrecision`) the predictor's
    feature extraction runs in its precision and layout, the features cast to float32 before the L1.
    """

    def __init__(self, *, l1_weight: float = 1.0, multiscale_weight: float = 1.0, percep_weight: float = 0.1,
                 grad_weight: float = 0.0, face_weight: float = 0.0, lap_weight: float = 0.0, predictor=None,
                 amp=None):
        super().__init__()
        self.l1_weight, self.multiscale_weight, self.percep_weight = l1_weight, multiscale_weight, percep_weight
        self.grad_weight, self.face_weight, self.lap_weight = grad_weight, face_weight, lap_weight
        self.predictor = predictor
        self.amp = amp if amp is not None and amp.enabled else None
        if self.amp is not None and predictor is not None:
            self.amp.channels_last(predictor)

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
        if self.grad_weight:
            d = pred - target  # the finite differences of the difference are those of pred minus those of target
            grad = ((d[..., :, 1:] - d[..., :, :-1]).abs().mean() + (d[..., 1:, :] - d[..., :-1, :]).abs().mean()) / 2
            parts["grad"] = grad.item()
            total = total + self.grad_weight * grad
        if self.lap_weight:
            d = pred - target  # the Laplacian is linear: that of the difference
            lap = d[..., :-2, 1:-1] + d[..., 2:, 1:-1] + d[..., 1:-1, :-2] + d[..., 1:-1, 2:] - 4 * d[..., 1:-1, 1:-1]
            lap = lap.abs().mean()
            parts["lap"] = lap.item()
            total = total + self.lap_weight * lap
        if self.face_weight:
            from ..toyfaces.renderer import face_box

            top, bottom, left, right = face_box(pred.shape[-1])
            face = (pred - target)[..., top:bottom, left:right].abs().mean()
            parts["face"] = face.item()
            total = total + self.face_weight * face
        if self.percep_weight and self.predictor is not None:
            ft, fp = self._features(target, pred)
            pc = (fp - ft).abs().mean()
            parts["percep"] = pc.item()
            total = total + self.percep_weight * pc
        return total, parts

    def _features(self, target: torch.Tensor, pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The predictor's features ``[N, F]`` of the target (no gradient) and of the prediction, float32."""
        if self.amp is None:
            with torch.no_grad():
                ft = self.predictor.features(target)
            return ft, self.predictor.features(pred)
        with self.amp.autocast():
            with torch.no_grad():
                ft = self.predictor.features(self.amp.images(target))
            fp = self.predictor.features(self.amp.images(pred))
        return ft.float(), fp.float()


def _load_predictor_for_loss(device):
    """The toyfaces predictor as a frozen feature extractor, or None when its weights are not there."""
    from ..errors import CheckpointError
    from ..checkpoints.predictor import load_predictor

    try:
        return load_predictor(device=device)
    except CheckpointError as exc:
        print(f"note: toyfaces predictor unavailable ({exc}); training without the perceptual term", flush=True)
        return None


# ------------------------------------------------------------------------------------------------
# The loop


class _Nets:
    """G, its EMA, the optimiser (mapping at ``mapping_lr_scale``), the optional discriminator and the loss."""

    def __init__(self, cfg: SupervisedConfig, state: dict | None, device, predictor, amp):
        self.G = generator_for_run(cfg, state, device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.synthesis = synthesis_callable(self.G, enabled=cfg.compile, device=device)  # G.synthesis or compiled
        mapping_params = list(self.G.mapping.parameters())
        mapping_ids = {id(p) for p in mapping_params}
        other_params = [p for p in self.G.parameters() if id(p) not in mapping_ids]
        self.opt_G = torch.optim.Adam([{"params": other_params, "lr_scale": 1.0},
                                       {"params": mapping_params, "lr_scale": cfg.mapping_lr_scale}],
                                      lr=cfg.lr, betas=tuple(cfg.betas), eps=1e-8)
        self.D = self.opt_D = None
        if cfg.adv_weight > 0:
            from .discriminator import Discriminator

            self.D = amp.channels_last(Discriminator(img_resolution=cfg.resolution, channel_base=cfg.d_channel_base,
                                                     channel_max=cfg.d_channel_max).to(device).train())
            self.opt_D = lazy_reg_adam(self.D.parameters(), cfg.d_lr, (0.0, 0.99),
                                       cfg.r1_interval if cfg.r1_gamma > 0 else None)
        if predictor == "auto":
            predictor = _load_predictor_for_loss(device) if cfg.percep_weight > 0 else None
        self.loss_fn = ReconstructionLoss(l1_weight=cfg.l1_weight, multiscale_weight=cfg.multiscale_weight,
                                          percep_weight=cfg.percep_weight, grad_weight=cfg.grad_weight,
                                          lap_weight=cfg.lap_weight,
                                          face_weight=cfg.face_weight, predictor=predictor, amp=amp)
        self.lr = cfg.lr

    def nets(self) -> dict:
        return {"G": self.G, "G_ema": self.G_ema, "D": self.D}

    def optims(self) -> dict:
        return {"G": self.opt_G, "D": self.opt_D}


def _discriminator_step(n: _Nets, cfg: SupervisedConfig, run: Run, img: torch.Tensor, z: torch.Tensor,
                        target: torch.Tensor, parts: dict) -> None:
    """Logistic D loss on the step's samples vs renders (half the targets, half fresh), then lazy R1.

    ``z [batch, z_dim]`` is the step's global batch of latents, ``img`` / ``target`` this rank's rows.
    """
    batch, G, D = cfg.batch, n.G, n.D
    G.requires_grad_(False)
    D.requires_grad_(True)
    fresh_z = torch.randn([batch - batch // 2, G.z_dim], generator=run.gen)
    with torch.profiler.record_function("render_targets"):  # a scope of --profile-steps
        if run.dist.active:  # this rank's rows of [first half of the targets, fresh renders]
            real = render_targets(run.shard(torch.cat([z[: batch // 2], fresh_z])), cfg.resolution, device=run.device,
                                  compiled=cfg.compile)
        else:
            real = torch.cat([target[: batch // 2],
                              render_targets(fresh_z, cfg.resolution, device=run.device, compiled=cfg.compile)])
    real = run.amp.images(real)
    with run.amp.autocast():
        loss_d, _, _ = d_main_loss(D, run.amp.images(img.detach()), real)
    n.opt_D.zero_grad(set_to_none=True)
    run.amp.backward(loss_d)
    run.amp.step(n.opt_D)
    parts["loss_D"] = loss_d.item()
    if cfg.r1_gamma > 0 and run.step % cfg.r1_interval == 0:
        with run.amp.autocast():
            loss_r1 = r1_penalty(D, real).mean() * (cfg.r1_gamma / 2)
        n.opt_D.zero_grad(set_to_none=True)
        run.amp.backward(loss_r1 * cfg.r1_interval)
        run.amp.step(n.opt_D)


def _train_step(n: _Nets, cfg: SupervisedConfig, run: Run) -> tuple[dict, int]:
    """One regression step of G onto the renders of its latents (+ the optional adversarial terms) and the EMA.

    The global batch's latents are drawn from the shared stream; this rank renders and trains on its rows.
    """
    n.lr = cfg.lr_at(run.cur_nimg)
    for group in n.opt_G.param_groups:
        group["lr"] = n.lr * group["lr_scale"]
    G = n.G
    z_all = torch.randn([cfg.batch, G.z_dim], generator=run.gen)
    z = run.shard(z_all)
    with torch.profiler.record_function("render_targets"):  # a scope of --profile-steps
        # drawn where G trains (a GPU draws them too); --compile compiles the drawing as well
        target = render_targets(z, cfg.resolution, device=run.device, compiled=cfg.compile)
    z = z.to(run.device)
    adv_on = n.D is not None and run.cur_nimg >= cfg.adv_start_kimg * 1000
    G.requires_grad_(True)
    if n.D is not None:
        n.D.requires_grad_(False)
    amp = run.amp  # G has its own reduced-precision path (styles and demodulation stay float32): no autocast
    img = n.synthesis(G.mapping(z, None, update_emas=True), noise_mode=cfg.noise_mode, precision=amp.synthesis,
                      update_emas=True).float()  # StyleGAN3 tracks its layers' input magnitudes
    loss, parts = n.loss_fn(img, target)
    if adv_on:
        with amp.autocast():
            loss_adv = g_main_loss(n.D, amp.images(img))
        loss = loss + cfg.adv_weight * loss_adv
        parts["adv_G"] = loss_adv.item()
    n.opt_G.zero_grad(set_to_none=True)
    amp.backward(loss)
    amp.step(n.opt_G)
    parts["loss"] = loss.item()
    if adv_on:
        _discriminator_step(n, cfg, run, img, z_all, target, parts)
    ema_update(n.G_ema, G, ema_beta(cfg.batch, cfg.ema_kimg * 1000))
    return parts, cfg.batch


_COMPILED_NOTE = ", synthesis and the targets' drawing compiled (the first step compiles them)"


def _start(run: Run, cfg: SupervisedConfig, n: _Nets, state: dict | None, grid_z: torch.Tensor) -> None:
    """Restore a resumed run, or write the config, the target grid and the initial samples of a new one."""
    if state is not None:
        run.restore(state, n.nets(), n.optims())
        run.distribute(n.nets(), n.optims())
        run.log(f"resumed from {run.resume_path} at kimg {run.cur_nimg / 1000:.1f}")
        return
    run.distribute(n.nets(), n.optims())
    run.write_config()
    run.log(f"G: {sum(p.numel() for p in n.G.parameters()):,} params, {cfg.resolution}x{cfg.resolution}, "
            f"batch {cfg.batch}, perceptual term "
            f"{'on' if n.loss_fn.predictor is not None and cfg.percep_weight else 'off'}"
            f"{_COMPILED_NOTE if cfg.compile else ''}")
    if run.is_main:
        save_grid(render_targets(grid_z, cfg.resolution), run.out / "targets.png")
        sample_grid(n.G_ema, grid_z, run.out / "samples-init.png", device=run.device)


def train_supervised(cfg: SupervisedConfig, *, progress: ProgressCallback = no_progress,
                     log: Callable[[str], None] | None = print, predictor="auto") -> dict:
    """Run (or, with ``cfg.resume``, continue) supervised pretraining; returns a summary dict.

    Args:
        cfg: settings (see :class:`SupervisedConfig`). On resume the checkpoint's settings are used
            except the run fields (``kimg``, ``out``, ``batch``, ``snapshot_kimg``, ``log_kimg``,
            ``threads``, ``device``, the loss weights and the lr schedule), so a run can be
            extended or fine-tuned with new weights.
        progress: ``callback(images_shown, total_images, "supervised", **means)`` at every log line.
        log: where log lines go besides ``out/log.txt`` (None: the file only).
        predictor: ``"auto"`` (load the toyfaces predictor if present), None (no perceptual term),
            or an object with ``.features(images) -> [N, F]``.

    Returns: ``dict(kimg, generator, checkpoint, out, loss)`` where ``loss`` is the last step's total.
    """
    with Run(cfg, log=log, progress=progress) as run:
        state = run.resume_state()
        if state is not None:
            cfg = run.cfg = cfg.resumed_from(run.saved_config(state))
            cfg.validate()
        n = _Nets(cfg, state, run.device, predictor, run.amp)
        grid_z = fixed_latents(n.G, cfg.grid_size)
        _start(run, cfg, n, state, grid_z)
        last = {"loss": float("nan")}
        final = run.out / "generator.safetensors"

        def step() -> tuple[dict, int]:
            parts, images = _train_step(n, cfg, run)
            last["loss"] = parts["loss"]
            return parts, images

        def snapshot() -> None:
            tag = f"{run.cur_nimg // 1000:06d}"
            last["checkpoint"] = run.checkpoint(nets=n.nets(), optims=n.optims(), keep=tag,
                                                extra={"g_config": json.dumps(n.G.config), "g_arch": n.G.arch})
            if not run.is_main:
                return
            sample_grid(n.G_ema, grid_z, run.out / f"samples-{tag}.png", device=run.device)
            save_canonical(n.G_ema, final, extra_metadata={"source": "stylekit.train supervised",
                                                           "kimg": f"{run.cur_nimg / 1000:.1f}"})

        run_kimg_loop(run, cfg, step, snapshot, label="supervised", describe=lambda: f"  lr {n.lr:.5f}")
        run.export(final)
        run.log(f"done at kimg {run.cur_nimg / 1000:.2f}; wrote {final}")
        return dict(kimg=run.cur_nimg / 1000, generator=str(final), checkpoint=str(last["checkpoint"]),
                    out=str(run.out), loss=last["loss"])
