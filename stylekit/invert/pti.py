"""Pivotal Tuning Inversion (Roich et al. 2021): a pivot latent, then a generator tuned around it.

1. Pivot: ``w_p`` from :func:`stylekit.invert.optimize.project` in W (PTI's choice; W+ possible) or
   from an encoder pass.
2. Tuning: a deep copy ``G'`` of the generator (the original is never touched); its synthesis
   network is trained with Adam (lr 3e-4) so that ``G'(w_p)`` reconstructs the target::

       loss = l2_weight * MSE(G'(w_p), x) + perceptual_weight * P(G'(w_p), x)
            + locality_weight * [ MSE(G'(w_r), G(w_r)) + P(G'(w_r), G(w_r)) ]
       w_r  = w_p + alpha * (w_z - w_p) / ||w_z - w_p||,   w_z = mapping(z) (truncated towards w_avg)

   The locality regulariser (PTI's "latent ball") keeps the tuned generator equal to the original
   at codes a fixed distance ``alpha`` from the pivot, so editing directions keep working and the
   change stays local. PTI uses ``alpha = 30`` for FFHQ; the default here is ``w_std``, the RMS
   distance of W samples from ``w_avg``, which adapts to any generator.
3. The result's latent carries the tuned generator; the result also holds a compact weight delta,
   ``{name: (G' - G)}`` in float16 for every tensor that changed (the mapping network never
   changes), with its size in bytes; :func:`apply_delta` rebuilds ``G'`` from ``G`` and the delta.
"""

from __future__ import annotations

import copy
import time

import torch

from ..errors import InvalidArgumentError
from ..validate import check_positive, check_steps
from ._inputs import as_w_plus, progress_or_default, target_tensor, w_statistics
from .losses import ReconstructionLoss, build_perceptual
from .presets import PTI
from .result import InversionResult, inversion_latent, psnr


def pivotal_tuning(G, image, *, steps: int = PTI.steps, pivot: str = "optimize", pivot_space: str = PTI.pivot_space,
                   pivot_steps: int = PTI.pivot_steps, pivot_latent=None, encoder="e4e-toyfaces",
                   lr: float = PTI.lr, l2_weight: float = PTI.l2_weight, perceptual_weight: float = PTI.perceptual_weight,
                   locality_weight: float = PTI.locality_weight, locality_alpha: float | None = None,
                   locality_interval: int = PTI.locality_interval, locality_truncation: float = PTI.locality_truncation,
                   perceptual: str = "auto", seed: int = 0, progress=None, device=None) -> InversionResult:
    """Invert ``image`` by pivotal tuning; ``result.latent.generator`` is the tuned copy of ``G``.

    The defaults are :data:`stylekit.invert.presets.PTI`.

    Args:
        G: the generator (left unchanged).
        image: anything :func:`stylekit.images.image_to_tensor` accepts, or a tensor in ``[-1, 1]``.
        steps: generator tuning steps (PTI: 350).
        pivot: ``'optimize'`` (projection in ``pivot_space`` for ``pivot_steps`` steps) or ``'encoder'``
            (one pass of ``encoder``); ignored when ``pivot_latent`` is given.
        pivot_latent: a W / W+ code to use as the pivot directly.
        lr: Adam learning rate of the tuning (PTI: 3e-4).
        l2_weight, perceptual_weight: weights of the reconstruction terms.
        locality_weight: weight of the locality regulariser (0 = off; PTI: 0.1 for each of its terms).
        locality_alpha: distance of the regularisation codes from the pivot (default: ``w_std``).
        locality_interval: apply the regulariser every this many steps.
        locality_truncation: truncation psi of the random codes ``w_z`` (PTI: 0.5).
        perceptual: which perceptual loss (see :mod:`stylekit.invert.losses`).

    Returns: :class:`InversionResult` whose ``latent`` is the pivot (``[1, num_ws, w_dim]``, space
    ``pivot_space`` for an optimised pivot, else ``'w+'``) carrying the tuned ``generator``; with
    ``generator_delta`` (float16), ``generator_delta_bytes`` and in ``extra``: ``pivot_image``,
    ``pivot_psnr``, ``pivot_method``, ``locality_alpha``.
    """
    start = time.perf_counter()
    steps = check_steps(steps, "steps")
    check_positive(lr, "lr", allow_zero=False)
    for name, value in (("l2_weight", l2_weight), ("perceptual_weight", perceptual_weight),
                        ("locality_weight", locality_weight)):
        check_positive(value, name)
    locality_interval = check_steps(locality_interval, "locality_interval")
    if pivot not in ("optimize", "encoder"):
        raise InvalidArgumentError(f"pivot must be 'optimize' or 'encoder', not {pivot!r}.")
    progress = progress_or_default(progress)
    device = torch.device(device) if device is not None else G.w_avg.device
    target = target_tensor(G, image, device=device)

    w_pivot, pivot_method, offset = _find_pivot(G, target, pivot, pivot_space, pivot_steps, pivot_latent, encoder,
                                                perceptual=perceptual, seed=seed, progress=progress,
                                                tuning_steps=steps, device=device)
    with torch.no_grad():
        pivot_image = G.synthesis(w_pivot, noise_mode="const")

    extractor, perceptual_name = build_perceptual(perceptual if perceptual_weight > 0 else "none", device=device)
    objective = ReconstructionLoss(target, extractor=extractor, pixel_weight=l2_weight,
                                   perceptual_weight=perceptual_weight)
    _, w_std = w_statistics(G) if locality_weight > 0 else (None, 0.0)
    alpha = w_std if locality_alpha is None else check_positive(locality_alpha, "locality_alpha", allow_zero=False)
    locality = {"weight": locality_weight, "interval": locality_interval, "alpha": alpha,
                "truncation": locality_truncation}
    tuned, history = _tune(G, [(w_pivot, objective)], extractor, steps, lr, locality, seed=seed, offset=offset,
                           progress=progress, device=device)
    with torch.no_grad():
        image_out = tuned.synthesis(w_pivot, noise_mode="const")
    delta = weight_delta(G, tuned)
    space = pivot_space if pivot_latent is None and pivot == "optimize" else "w+"
    return InversionResult(latent=inversion_latent(w_pivot.detach().clone(), space, generator=tuned), image=image_out,
                           target=target, method="pti", loss_history=history, perceptual=perceptual_name,
                           seconds=time.perf_counter() - start, generator_delta=delta,
                           generator_delta_bytes=delta_bytes(delta),
                           extra={"pivot_image": pivot_image, "pivot_psnr": psnr(pivot_image, target),
                                  "pivot_method": pivot_method, "locality_alpha": alpha})


def tune_generator(G, targets: torch.Tensor, pivots: torch.Tensor, *, steps: int, batch_size: int = 4,
                   lr: float = PTI.lr, l2_weight: float = PTI.l2_weight,
                   perceptual_weight: float = PTI.perceptual_weight,
                   locality_weight: float = PTI.locality_weight, locality_alpha: float | None = None,
                   locality_interval: int = PTI.locality_interval, locality_truncation: float = PTI.locality_truncation,
                   perceptual: str = "auto", seed: int = 0, progress=None, should_stop=None, device=None):
    """PTI's step 2 for several images sharing one tuned generator (a clip's frames, Tzaban et al. 2022).

    ``targets [N, 3, R, R]`` in ``[-1, 1]`` and their ``pivots [N, num_ws, w_dim]`` are cut into consecutive
    chunks of ``batch_size``; tuning step ``s`` fits chunk ``s % chunks`` (the same loss and locality term as
    :func:`pivotal_tuning`). ``should_stop()`` ends the tuning early (the steps done are kept).
    Returns ``(tuned copy of G, history, perceptual name)``; ``len(history)`` is the number of steps done.
    """
    steps = check_steps(steps, "steps")
    batch_size = check_steps(batch_size, "batch_size")
    check_positive(lr, "lr", allow_zero=False)
    for name, value in (("l2_weight", l2_weight), ("perceptual_weight", perceptual_weight),
                        ("locality_weight", locality_weight)):
        check_positive(value, name)
    device = torch.device(device) if device is not None else G.w_avg.device
    if targets.ndim != 4 or pivots.ndim != 3 or targets.shape[0] != pivots.shape[0] or targets.shape[0] == 0:
        raise InvalidArgumentError(f"targets [N, 3, R, R] and pivots [N, num_ws, w_dim] must have the same N >= 1, "
                                   f"got {list(targets.shape)} and {list(pivots.shape)}.")
    extractor, perceptual_name = build_perceptual(perceptual if perceptual_weight > 0 else "none", device=device)
    chunks = []
    for i in range(0, targets.shape[0], batch_size):
        target = targets[i:i + batch_size].detach().float().to(device)
        chunks.append((pivots[i:i + batch_size].detach().float().to(device),
                       ReconstructionLoss(target, extractor=extractor, pixel_weight=l2_weight,
                                          perceptual_weight=perceptual_weight)))
    _, w_std = w_statistics(G) if locality_weight > 0 else (None, 0.0)
    alpha = w_std if locality_alpha is None else check_positive(locality_alpha, "locality_alpha", allow_zero=False)
    locality = {"weight": locality_weight, "interval": check_steps(locality_interval, "locality_interval"),
                "alpha": alpha, "truncation": locality_truncation}
    tuned, history = _tune(G, chunks, extractor, steps, lr, locality, seed=seed, offset=0,
                           progress=progress_or_default(progress), device=device, should_stop=should_stop)
    return tuned, history, perceptual_name


def _find_pivot(G, target, pivot, pivot_space, pivot_steps, pivot_latent, encoder, *, perceptual, seed, progress,
                tuning_steps, device) -> tuple[torch.Tensor, str, int]:
    """PTI step 1: ``(w_pivot [1, num_ws, w_dim], method name, steps it took)`` for ``target [1, 3, R, R]``."""
    if pivot_latent is not None:
        return as_w_plus(G, pivot_latent, name="pivot_latent"), "given", 0
    if pivot == "optimize":
        from .optimize import project

        pivot_steps = check_steps(pivot_steps, "pivot_steps")
        piv = project(G, target, space=pivot_space, steps=pivot_steps, perceptual=perceptual, seed=seed,
                      progress=lambda s, t, m="", **kw: progress(s, t + tuning_steps, "pivot", **kw))
        return piv.latent.tensor, f"optimize-{pivot_space}", pivot_steps
    from .encoder import encode

    return encode(G, target, encoder=encoder, device=device).latent.tensor, "encoder", 0


def _tune(G, chunks, extractor, steps, lr, locality, *, seed, offset, progress, device, should_stop=None):
    """PTI step 2: Adam on a deep copy of ``G``'s synthesis network so it renders each target at its pivot.

    ``chunks``: ``(pivots [B, num_ws, w_dim], objective against those B targets)`` pairs; step ``s`` tunes on
    chunk ``s % len(chunks)`` (one chunk for one image). ``locality``: ``weight``, ``interval``, ``alpha``,
    ``truncation`` of the latent-ball regulariser. ``should_stop()`` (optional) is asked before each step.
    Returns ``(tuned generator in eval mode without grad, history)``; ``G`` is untouched.
    """
    tuned = copy.deepcopy(G).to(device)
    tuned.requires_grad_(False)
    tuned.synthesis.requires_grad_(True)
    params = [p for p in tuned.synthesis.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999))
    gen = torch.Generator(device="cpu").manual_seed(seed)
    history: list[dict] = []
    total = offset + steps
    try:
        for step in range(steps):
            if should_stop is not None and should_stop():
                break
            w_pivot, objective = chunks[step % len(chunks)]
            img = tuned.synthesis(w_pivot, noise_mode="const")
            loss, terms = objective(img)
            loss = loss.sum()
            record = {"step": offset + step, "stage": "tuning", "loss": float(loss.detach())}
            record.update({k: float(v.detach().sum()) for k, v in terms.items()})
            if locality["weight"] > 0 and step % locality["interval"] == 0:
                reg = _locality_loss(G, tuned, w_pivot, locality["alpha"], locality["truncation"], extractor, gen)
                loss = loss + locality["weight"] * reg
                record["locality"] = float(reg.detach())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            history.append(record)
            progress(offset + step + 1, total, "tuning", loss=record["loss"])
    finally:
        tuned.requires_grad_(False)
    tuned.eval()
    return tuned, history


def _locality_loss(G, tuned, w_pivot, alpha, truncation, extractor, gen) -> torch.Tensor:
    """PTI's latent-ball regulariser at one random code ``alpha`` away from the pivot."""
    device = w_pivot.device
    z = torch.randn([1, G.z_dim], generator=gen).to(device)
    c = torch.zeros([1, G.c_dim], device=device) if G.c_dim else None
    with torch.no_grad():
        w_z = G.mapping(z, c, truncation_psi=truncation)
        direction = w_z - w_pivot
        w_r = w_pivot + alpha * direction / direction.norm(dim=2, keepdim=True).clamp_min(1e-8)
        reference = G.synthesis(w_r, noise_mode="const")
    out = tuned.synthesis(w_r, noise_mode="const")
    reg = (out - reference).square().mean()
    if extractor is not None:
        reg = reg + extractor.distance(out, reference).mean()
    return reg


def weight_delta(G, tuned, *, dtype=torch.float16) -> dict[str, torch.Tensor]:
    """``{name: tuned - original}`` (in ``dtype``) for every floating tensor of the state dict that changed."""
    base = G.state_dict()
    out = {}
    for name, value in tuned.state_dict().items():
        ref = base[name]
        if value.is_floating_point() and not torch.equal(value, ref):
            out[name] = (value.detach() - ref.detach()).to(dtype).cpu()
    return out


def delta_bytes(delta: dict[str, torch.Tensor]) -> int:
    """Storage size of a weight delta in bytes (tensor data only)."""
    return int(sum(t.numel() * t.element_size() for t in delta.values()))


def apply_delta(G, delta: dict[str, torch.Tensor]):
    """A tuned copy of ``G``: ``G + delta`` (the delta of :func:`pivotal_tuning`); ``G`` is unchanged."""
    tuned = copy.deepcopy(G)
    state = tuned.state_dict()
    unknown = [k for k in delta if k not in state]
    if unknown:
        raise InvalidArgumentError(f"the weight delta names {unknown[0]!r}, which this generator does not have; "
                                   "apply it to the generator it was tuned from.")
    with torch.no_grad():
        for name, d in delta.items():
            if tuple(d.shape) != tuple(state[name].shape):
                raise InvalidArgumentError(f"the delta for {name!r} has shape {tuple(d.shape)}, the generator's "
                                           f"tensor {tuple(state[name].shape)}; wrong generator.")
            state[name].add_(d.to(state[name].dtype).to(state[name].device))
    return tuned.eval().requires_grad_(False)


def save_delta(delta: dict[str, torch.Tensor], path) -> int:
    """Write a weight delta as safetensors; returns the file size in bytes."""
    from pathlib import Path

    from safetensors.torch import save_file

    path = Path(path)
    save_file({k: v.contiguous() for k, v in delta.items()}, str(path), metadata={"format": "stylekit-pti-delta"})
    return path.stat().st_size


__all__ = ["pivotal_tuning", "tune_generator", "weight_delta", "delta_bytes", "apply_delta", "save_delta", "w_statistics"]
