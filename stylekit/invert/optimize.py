"""Inversion by optimisation: Image2StyleGAN (W / W+) and Image2StyleGAN++ (noise maps, masks, style).

Stage 1 (Image2StyleGAN, Abdal et al. 2019) searches a latent that reconstructs the target::

    w  <- w_avg (or a given latent), one code ([1, 1, w_dim], space 'w') or one per layer (W+)
    for t in 0 .. steps-1:                                  # schedule of NVIDIA's projector.py
        lr    = lr0 * cos_ramp(min(1, (1 - t/T) / 0.25)) * min(1, (t/T) / 0.05)
        sigma = w_std * 0.05 * max(0, 1 - (t/T) / 0.75)^2  # latent noise, gone after 75 % of the steps
        img   = G.synthesis(w + sigma * randn, noise = G's stored maps)
        loss  = pixel_weight * MSE(img, x; M_m) + perceptual_weight * P(M_p * img, M_p * x)
                (+ style_weight * Gram(M_s * img, M_s * y))
        Adam step on w

with ``cos_ramp(r) = 0.5 - 0.5 cos(pi r)``. Stage 2 (Image2StyleGAN++, Abdal et al. 2020) keeps the
latent fixed and optimises the per-layer noise maps with the same loss plus NVIDIA's noise
regulariser (squared lag-1 auto-correlation over a pyramid), so the maps recover detail without
turning into a copy of the image; the best maps seen are kept, so stage 2 never makes it worse.

Masks (1 = use the pixel) make the same loop do inpainting (pixel and perceptual masks cover the
known region) and composites (:func:`invert_composite`: pixels of image A inside the mask, of B outside,
Image2StyleGAN++'s "crossover").
"""

from __future__ import annotations

import math
import time

import torch

from ..errors import InvalidArgumentError
from ..validate import check_positive, check_steps
from ._inputs import as_w_plus, frozen, progress_or_default, target_tensor, w_statistics
from .losses import ReconstructionLoss, build_perceptual, noise_regularization, prepare_mask
from .presets import OPTIMIZE
from .result import InversionResult, inversion_latent


def learning_rate(t: float, lr: float, *, rampdown: float = 0.25, rampup: float = 0.05) -> float:
    """NVIDIA projector's schedule at progress ``t`` in ``[0, 1]``: linear ramp-up, cosine ramp-down."""
    ramp = min(1.0, (1.0 - t) / rampdown) if rampdown > 0 else 1.0
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    if rampup > 0:
        ramp *= min(1.0, t / rampup)
    return lr * ramp


def latent_noise_scale(t: float, w_std: float, *, initial: float = 0.05, ramp_length: float = 0.75) -> float:
    """Std of the noise added to the latent at progress ``t``: ``w_std * initial * max(0, 1 - t/ramp)^2``."""
    if ramp_length <= 0:
        return 0.0
    return w_std * initial * max(0.0, 1.0 - t / ramp_length) ** 2


def project(G, image, *, space: str = "w+", steps: int = OPTIMIZE.steps, noise_steps: int = 0,
            init_latent=None, lr: float = OPTIMIZE.lr, noise_lr: float = OPTIMIZE.noise_lr,
            pixel_weight: float = OPTIMIZE.pixel_weight, perceptual_weight: float = OPTIMIZE.perceptual_weight,
            style_weight: float = 0.0, mask=None, pixel_mask=None, perceptual_mask=None, style_image=None,
            style_mask=None, perceptual: str = "auto", initial_noise_factor: float = OPTIMIZE.initial_noise_factor,
            noise_ramp_length: float = OPTIMIZE.noise_ramp_length,
            lr_rampdown_length: float = OPTIMIZE.lr_rampdown_length, lr_rampup_length: float = OPTIMIZE.lr_rampup_length,
            regularize_noise_weight: float = OPTIMIZE.regularize_noise_weight, seed: int = 0, progress=None,
            device=None) -> InversionResult:
    """Invert ``image`` into ``G`` by optimisation (Image2StyleGAN, plus Image2StyleGAN++ options).

    The defaults are :data:`stylekit.invert.presets.OPTIMIZE`.

    Args:
        G: a :class:`stylekit.networks.base.Generator` (left unchanged).
        image: anything :func:`stylekit.images.image_to_tensor` accepts, or a tensor ``[1, 3, H, W]``
            in ``[-1, 1]``; resampled to ``G.img_resolution``.
        space: ``'w'`` (one code broadcast to every layer) or ``'w+'`` (one code per layer).
        steps: latent optimisation steps (1..20000).
        noise_steps: Image2StyleGAN++ noise-map optimisation steps after the latent stage (0 = off).
        init_latent: start here (W ``[1, w_dim]`` or W+ ``[1, num_ws, w_dim]``) instead of ``w_avg``.
            For ``space='w'`` a W+ start is averaged over layers.
        lr, noise_lr: peak Adam learning rates of the two stages.
        pixel_weight, perceptual_weight, style_weight: weights of MSE, perceptual and Gram terms.
        mask: shorthand for ``pixel_mask = perceptual_mask = mask`` (inpainting: 1 where the image is
            known, 0 where it should be filled in). ``[H, W]`` array/tensor/PIL image in ``[0, 1]``.
        pixel_mask, perceptual_mask: per-term masks (override ``mask``).
        style_image, style_mask: target and mask of the Gram loss (``style_image`` defaults to
            ``image``); the style term is active when ``style_weight > 0``.
        perceptual: ``'auto'``, ``'lpips-vgg'``, ``'toyfaces'``, ``'random-cnn'`` or ``'none'``
            (see :mod:`stylekit.invert.losses`); the one used is recorded in ``result.perceptual``.
        initial_noise_factor, noise_ramp_length: latent-noise schedule (NVIDIA: 0.05, 0.75).
        lr_rampdown_length, lr_rampup_length: learning-rate schedule (NVIDIA: 0.25, 0.05).
        regularize_noise_weight: weight of the noise regulariser in stage 2 (NVIDIA: 1e5).
        seed: seeds the latent noise (results are deterministic for a given seed).
        progress: ``callback(step, total, message, **metrics)``; may raise ``Cancelled``.
        device: where to compute (default: the generator's device).

    Returns: :class:`InversionResult` whose ``latent`` is a ``'w'`` or ``'w+'`` Latent (tensor
    ``[1, num_ws, w_dim]``, with the ``noise`` maps when ``noise_steps > 0``), ``image [1, 3, R, R]``
    and one ``loss_history`` entry per step.
    """
    start = time.perf_counter()
    return _project_targets(G, target_tensor, image, start, space=space, steps=steps, noise_steps=noise_steps,
                            init_latent=init_latent, lr=lr, noise_lr=noise_lr, pixel_weight=pixel_weight,
                            perceptual_weight=perceptual_weight, style_weight=style_weight, mask=mask,
                            pixel_mask=pixel_mask, perceptual_mask=perceptual_mask, style_image=style_image,
                            style_mask=style_mask, perceptual=perceptual, initial_noise_factor=initial_noise_factor,
                            noise_ramp_length=noise_ramp_length, lr_rampdown_length=lr_rampdown_length,
                            lr_rampup_length=lr_rampup_length, regularize_noise_weight=regularize_noise_weight,
                            seed=seed, progress=progress, device=device)[0]


#: :func:`project` options that make :func:`project_batch` run image by image (they are per-image by nature)
PER_IMAGE_OPTIONS = ("noise_steps", "init_latent", "style_weight", "style_image", "style_mask")


def project_batch(G, images, *, progress=None, **options) -> list[InversionResult]:
    """:func:`project` for a batch: ``images`` a list of images or a tensor ``[N, 3, H, W]``; ``N`` results in order.

    The ``N`` latents are optimised together: the loss is the sum of the per-image losses, so each
    latent's gradient is its own image's, and Adam acts element by element, so each latent follows the
    path it would follow alone (the latent noise of image ``i`` is drawn from its own generator seeded
    with ``seed``, as a single run draws it); the results equal one-by-one runs up to float rounding in
    batched convolutions, which Adam's normalised steps amplify somewhat (measured on toyfaces, 50 W+
    steps with the toyfaces perceptual loss: latents within 3e-2, PSNR within 0.006 dB). ``seconds`` is the batch's time / N. With Image2StyleGAN++'s noise stage
    (``noise_steps > 0``), a style loss or an ``init_latent`` (see :data:`PER_IMAGE_OPTIONS`) the
    images are inverted one by one.
    """
    from ._inputs import target_batch

    start = time.perf_counter()
    if any(_is_set(options.get(k)) for k in PER_IMAGE_OPTIONS):
        target = target_batch(G, images, device=options.get("device"))
        out = []
        n = target.shape[0]
        for i in range(n):
            sub = None if progress is None else (
                lambda s, t, m="", _i=i, **kw: progress(_i * t + s, n * t, m, **kw))
            out.append(project(G, target[i:i + 1], progress=sub, **options))
        return out
    return _project_targets(G, target_batch, images, start, progress=progress, **options)


def _is_set(value) -> bool:
    return value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0)


def _project_targets(G, to_target, image, start, *, space: str = "w+", steps: int = OPTIMIZE.steps,
                     noise_steps: int = 0, init_latent=None, lr: float = OPTIMIZE.lr,
                     noise_lr: float = OPTIMIZE.noise_lr, pixel_weight: float = OPTIMIZE.pixel_weight,
                     perceptual_weight: float = OPTIMIZE.perceptual_weight, style_weight: float = 0.0, mask=None,
                     pixel_mask=None, perceptual_mask=None, style_image=None, style_mask=None,
                     perceptual: str = "auto", initial_noise_factor: float = OPTIMIZE.initial_noise_factor,
                     noise_ramp_length: float = OPTIMIZE.noise_ramp_length,
                     lr_rampdown_length: float = OPTIMIZE.lr_rampdown_length,
                     lr_rampup_length: float = OPTIMIZE.lr_rampup_length,
                     regularize_noise_weight: float = OPTIMIZE.regularize_noise_weight, seed: int = 0, progress=None,
                     device=None) -> list[InversionResult]:
    """:func:`project` on the images ``to_target(G, image, device=...)`` makes (``[N, 3, R, R]``): N results."""
    steps, noise_steps = _check_options(space, steps, noise_steps, lr=lr, noise_lr=noise_lr, pixel_weight=pixel_weight,
                                        perceptual_weight=perceptual_weight, style_weight=style_weight,
                                        regularize_noise_weight=regularize_noise_weight,
                                        initial_noise_factor=initial_noise_factor)
    progress = progress_or_default(progress)
    device = _generator_device(G, device)
    target = to_target(G, image, device=device)
    n = target.shape[0]
    objective, perceptual_name = _objective(G, target, device, perceptual=perceptual, pixel_weight=pixel_weight,
                                            perceptual_weight=perceptual_weight, style_weight=style_weight, mask=mask,
                                            pixel_mask=pixel_mask, perceptual_mask=perceptual_mask,
                                            style_image=style_image, style_mask=style_mask)
    schedule = {"rampdown": lr_rampdown_length, "rampup": lr_rampup_length}
    with frozen(G):
        w_avg, w_std = w_statistics(G)
        start_plus = (w_avg.to(device).reshape(1, 1, -1).repeat(n, G.num_ws, 1) if init_latent is None
                      else as_w_plus(G, init_latent))
        const_noise = [b.detach().reshape(1, 1, *b.shape).clone() for b in G.synthesis.noise_buffers()] \
            if hasattr(G.synthesis, "noise_buffers") else None
        synth = _synthesizer(G)
        histories: list[list[dict]] = [[] for _ in range(n)]
        total = steps + noise_steps
        w_opt = _optimize_latent(synth, objective, start_plus.mean(dim=1, keepdim=True) if space == "w" else start_plus,
                                 steps, lr, schedule, w_std=w_std, noise_factor=initial_noise_factor,
                                 noise_ramp=noise_ramp_length, seed=seed, histories=histories, progress=progress,
                                 total=total)
        latent_plus = (w_opt.expand(n, G.num_ws, -1) if space == "w" else w_opt).clone()
        noise_out = None
        with torch.no_grad():
            image_out = synth(latent_plus)
            losses = objective(image_out)[0]
        if noise_steps > 0:
            if not const_noise:
                raise InvalidArgumentError("this generator has no noise inputs, so noise_steps must be 0.")
            noise_out, image_out, final_loss = _optimize_noise(
                synth, latent_plus, const_noise, objective, noise_steps, noise_lr, regularize_noise_weight,
                lr_rampdown_length, lr_rampup_length, histories[0], progress, steps, total, float(losses[0]))
            finals = [final_loss]
        else:
            finals = [float(v) for v in losses]

    seconds = (time.perf_counter() - start) / n
    return [InversionResult(latent=inversion_latent(latent_plus[i:i + 1], space, noise=noise_out),
                            image=image_out[i:i + 1].detach(), target=target[i:i + 1], method="optimize",
                            loss_history=histories[i], perceptual=perceptual_name, seconds=seconds,
                            extra={"final_loss": finals[i], "latent_loss": float(losses[i]), "w_std": w_std,
                                   **({"batch_size": n} if to_target is not target_tensor else {})})
            for i in range(n)]


def _check_options(space, steps, noise_steps, **values) -> tuple[int, int]:
    """Validate :func:`project`'s space, step counts, learning rates and weights; returns the step counts."""
    if space not in ("w", "w+"):
        raise InvalidArgumentError(f"space must be 'w' or 'w+' for optimisation, not {space!r}.")
    steps = check_steps(steps, "steps")
    noise_steps = check_steps(noise_steps, "noise_steps", allow_zero=True)
    for name in ("lr", "noise_lr"):
        check_positive(values[name], name, allow_zero=False)
    for name in ("pixel_weight", "perceptual_weight", "style_weight", "regularize_noise_weight",
                 "initial_noise_factor"):
        check_positive(values[name], name)
    return steps, noise_steps


def _generator_device(G, device) -> torch.device:
    """``device`` (default: the generator's); optimisation cannot move the generator, so they must agree."""
    device = torch.device(device) if device is not None else G.w_avg.device
    if device != G.w_avg.device:
        raise InvalidArgumentError(f"the generator is on {G.w_avg.device} but device={device}; move it with G.to(device).")
    return device


def _objective(G, target, device, *, perceptual, pixel_weight, perceptual_weight, style_weight, mask, pixel_mask,
               perceptual_mask, style_image, style_mask) -> tuple[ReconstructionLoss, str]:
    """The masked reconstruction loss against ``target [1, 3, R, R]`` and the perceptual loss's name.

    ``mask`` stands for both ``pixel_mask`` and ``perceptual_mask`` where those are None.
    """
    if mask is not None:
        pixel_mask = mask if pixel_mask is None else pixel_mask
        perceptual_mask = mask if perceptual_mask is None else perceptual_mask
    res = G.img_resolution
    pmask = None if pixel_mask is None else prepare_mask(pixel_mask, res, device=device, name="pixel_mask")
    qmask = None if perceptual_mask is None else prepare_mask(perceptual_mask, res, device=device, name="perceptual_mask")
    smask = None if style_mask is None else prepare_mask(style_mask, res, device=device, name="style_mask")
    style_target = None if style_image is None else target_tensor(G, style_image, device=device)
    need_features = perceptual_weight > 0 or style_weight > 0
    extractor, perceptual_name = build_perceptual(perceptual if need_features else "none", device=device)
    objective = ReconstructionLoss(target, extractor=extractor, pixel_weight=pixel_weight,
                                   perceptual_weight=perceptual_weight, style_weight=style_weight,
                                   pixel_mask=pmask, perceptual_mask=qmask, style_target=style_target,
                                   style_mask=smask)
    return objective, perceptual_name


def _synthesizer(G):
    """``synth(w [N, 1 or num_ws, w_dim], noise_maps=None) -> [N, 3, R, R]``: W codes broadcast to every layer."""
    def synth(w, noise_maps=None):
        ws = w.expand(-1, G.num_ws, -1) if w.shape[1] == 1 else w
        if noise_maps is not None:
            return G.synthesis(ws, noise=noise_maps)
        return G.synthesis(ws, noise_mode="const")

    return synth


def _optimize_latent(synth, objective, start, steps, lr, schedule, *, w_std, noise_factor, noise_ramp, seed, histories,
                     progress, total) -> torch.Tensor:
    """Image2StyleGAN stage 1: Adam on the codes ``start [N, 1 or num_ws, w_dim]`` with NVIDIA's schedule.

    The loss is the sum of the N images' own losses, so each code moves as it would alone; code ``i``'s
    latent noise comes from its own generator seeded with ``seed``. Appends one record per step to
    ``histories[i]`` for each image; returns the optimised codes (detached, same shape).
    """
    device = start.device
    w_opt = start.clone().requires_grad_(True)
    gens = [torch.Generator(device="cpu").manual_seed(seed) for _ in range(start.shape[0])]
    optimizer = torch.optim.Adam([w_opt], betas=(0.9, 0.999), lr=lr)
    for step in range(steps):
        t = step / steps
        step_lr = learning_rate(t, lr, rampdown=schedule["rampdown"], rampup=schedule["rampup"])
        for group in optimizer.param_groups:
            group["lr"] = step_lr
        sigma = latent_noise_scale(t, w_std, initial=noise_factor, ramp_length=noise_ramp)
        if sigma > 0:
            draws = torch.stack([torch.randn(w_opt.shape[1:], generator=g) for g in gens]).to(device)
            w_in = w_opt + draws * sigma
        else:
            w_in = w_opt
        loss, terms = objective(synth(w_in))
        optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        optimizer.step()
        for i, history in enumerate(histories):
            record = {"step": step, "stage": "latent", "loss": float(loss.detach()[i]), "lr": step_lr, "w_noise": sigma}
            record.update({k: float(v.detach()[i]) for k, v in terms.items()})
            history.append(record)
        progress(step + 1, total, "latent", loss=float(loss.detach().sum()))
    return w_opt.detach()


def _optimize_noise(synth, latent_plus, const_noise, objective, noise_steps, noise_lr, reg_weight, rampdown, rampup,
                    history, progress, offset, total, latent_loss):
    """Image2StyleGAN++ stage 2: optimise the noise maps with the latent fixed; keep the best maps."""
    noise_maps = [n.clone().requires_grad_(True) for n in const_noise]
    optimizer = torch.optim.Adam(noise_maps, betas=(0.9, 0.999), lr=noise_lr)
    best_loss, best_maps = latent_loss, None
    for step in range(noise_steps):
        t = step / noise_steps
        step_lr = learning_rate(t, noise_lr, rampdown=rampdown, rampup=rampup)
        for group in optimizer.param_groups:
            group["lr"] = step_lr
        img = synth(latent_plus, noise_maps)
        loss, terms = objective(img)
        # the loss of the maps *before* this update: keep them if they are the best so far
        if float(loss.detach().sum()) < best_loss:
            best_loss, best_maps = float(loss.detach().sum()), [n.detach().clone() for n in noise_maps]
        reg = noise_regularization(noise_maps)
        optimizer.zero_grad(set_to_none=True)
        (loss.sum() + reg_weight * reg).backward()
        optimizer.step()
        record = {"step": offset + step, "stage": "noise", "loss": float(loss.detach().sum()), "lr": step_lr, "noise_reg": float(reg.detach())}
        record.update({k: float(v.detach().sum()) for k, v in terms.items()})
        history.append(record)
        progress(offset + step + 1, total, "noise", loss=record["loss"])
    with torch.no_grad():
        last_loss = float(objective(synth(latent_plus, noise_maps))[0])
        if last_loss < best_loss:
            best_loss, best_maps = last_loss, [n.detach().clone() for n in noise_maps]
        if best_maps is None:  # never beat the latent stage: keep the generator's own maps
            best_maps = [n.detach().clone() for n in const_noise]
        image = synth(latent_plus, best_maps)
    return best_maps, image, best_loss


def invert_composite(G, image_a, image_b, mask, **options) -> InversionResult:
    """Image2StyleGAN++ "crossover": one latent whose image shows ``image_a`` inside ``mask`` and ``image_b`` outside.

    The target is the composite ``mask * A + (1 - mask) * B`` (``[1, 3, R, R]``; ``mask`` as in
    :func:`project`, 1 = take A); the generator turns the seam into a plausible image. ``options``
    are :func:`project` options (``space``, ``steps``, ``noise_steps``...). The mask used,
    ``[1, 1, R, R]``, is in ``result.extra['composite_mask']``.
    (Not to be confused with :func:`stylekit.edit.arithmetic.crossover`, which swaps W+ rows.)
    """
    a = target_tensor(G, image_a)
    b = target_tensor(G, image_b)
    m = prepare_mask(mask, G.img_resolution, device=a.device)
    result = project(G, m * a + (1 - m) * b, **options)
    result.extra["composite_mask"] = m
    return result
