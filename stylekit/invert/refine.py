"""ReStyle: iterative refinement of an encoder's inversion (Alaluf, Patashnik & Cohen-Or 2021).

The encoder sees the target next to the current reconstruction (6 input channels) and predicts a
residual in W+::

    w_0 = latent_avg (every layer),  y_0 = G(w_0)
    for t = 1 .. N:
        w_t = w_{t-1} + E(concat(x, y_{t-1}))      # E: a pSp / e4e encoder with in_channels = 6
        y_t = G(w_t)

ReStyle's *encoder bootstrapping* replaces ``w_0`` by a one-pass encoder's inversion (``w_0 = E0(x)``);
an encoder trained that way (``python -m stylekit.train encoder --restyle --bootstrap e4e-toyfaces``)
records the bootstrap encoder in its metadata and :func:`restyle` starts from it unless told otherwise.

Train such an encoder with ``python -m stylekit.train encoder --restyle ...``.
"""

from __future__ import annotations

import time

import torch

from ..errors import InvalidArgumentError
from ..validate import check_steps
from ._inputs import progress_or_default, target_tensor
from ..networks.encoders import LatentEncoder
from .encoder import load_encoder
from .presets import RESTYLE
from .result import InversionResult, inversion_latent, psnr

DEFAULT_ENCODER = "restyle-toyfaces"


def load_bootstrap(spec, G, *, device=None, precision: str | None = None) -> LatentEncoder:
    """The one-pass (3-channel) encoder ``spec`` (name, file or object) checked against ``G``, for bootstrapping
    (``precision``: see :func:`~stylekit.invert.encoder.load_encoder`)."""
    boot = load_encoder(spec, device=device if device is not None else G.w_avg.device, precision=precision)
    boot.check_generator(G)
    if boot.config["in_channels"] != 3:
        raise InvalidArgumentError("the bootstrap encoder must be a one-pass (3-channel) encoder such as "
                                   "'e4e-toyfaces'.")
    return boot


def initial_latent(G, enc: LatentEncoder, target: torch.Tensor, boot: LatentEncoder | None = None) -> torch.Tensor:
    """``w_0 [N, num_ws, w_dim]`` for ``target [N, 3, R, R]``: ``boot(target)``, or ``latent_avg`` on every layer."""
    if boot is not None:
        return boot(target)
    return enc.latent_avg.reshape(1, 1, -1).expand(target.shape[0], G.num_ws, -1)


def restyle_steps(G, enc: LatentEncoder, target: torch.Tensor, iterations: int, *, start_latent=None,
                  start_image=None, progress=None) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Run ``iterations`` ReStyle steps on a batch ``target [N, 3, R, R]``.

    Returns ``(latent [N, num_ws, w_dim], image [N, 3, R, R], images)`` with ``images`` the
    reconstruction after each step (``iterations`` tensors). ``start_latent`` defaults to
    :func:`initial_latent` (``latent_avg``); ``start_image``, when the caller has already rendered
    ``start_latent``, saves that synthesis. Gradients flow unless the caller disables them. The encoder
    runs in its ``precision`` (:meth:`LatentEncoder.codes`).
    """
    progress = progress_or_default(progress)
    latent = initial_latent(G, enc, target) if start_latent is None else start_latent
    image = G.synthesis(latent, noise_mode="const") if start_image is None else start_image
    images = []
    for t in range(iterations):
        latent = latent + enc.codes(torch.cat([target, image], dim=1))
        image = G.synthesis(latent, noise_mode="const")
        images.append(image)
        progress(t + 1, iterations, "restyle")
    return latent, image, images


def restyle(G, image, *, encoder=DEFAULT_ENCODER, iterations: int = RESTYLE.iterations, bootstrap="auto",
            progress=None, device=None, precision: str | None = None) -> InversionResult:
    """Invert ``image`` with ``iterations`` ReStyle steps; ``result.extra['psnr_per_step']`` shows the refinement.

    ``result.latent`` is a ``'w+'`` Latent ``[1, num_ws, w_dim]``.

    Args:
        G: the generator the ReStyle encoder was trained for.
        image: anything :func:`stylekit.images.image_to_tensor` accepts, or a tensor in ``[-1, 1]``.
        encoder: a 6-channel :class:`~stylekit.networks.encoders.LatentEncoder`, a registered name
            (``'restyle-toyfaces'``) or a file path.
        iterations: refinement steps (1..20000; default :data:`stylekit.invert.presets.RESTYLE`: 3, what the
            toyfaces encoder was trained with; ReStyle uses 5).
        bootstrap: ``'auto'`` starts from the one-pass encoder the ReStyle encoder was trained with
            (its metadata's ``bootstrap``), or from ``latent_avg`` when it has none; ``None`` always
            starts from ``latent_avg``; an encoder (name, file or object) starts from its inversion.
            ``result.extra['bootstrap_psnr']`` is the PSNR of that starting point.
        precision: the compute precision of the ReStyle and bootstrap encoders (``'fp32'``, ``'bf16'``,
            ``'fp16'``, ``'auto'``; see :func:`~stylekit.invert.encoder.load_encoder`); None: float32, or
            an encoder object's own. The generator renders in ``G.precision``.
    """
    start = time.perf_counter()
    return _restyle_targets(G, image, encoder, iterations, bootstrap, progress, device, precision, start)[0]


def restyle_batch(G, images, *, encoder=DEFAULT_ENCODER, iterations: int = RESTYLE.iterations, bootstrap="auto",
                  progress=None, device=None, precision: str | None = None) -> list[InversionResult]:
    """:func:`restyle` for a batch in one pass per step: ``images`` a list of images or a tensor ``[N, 3, H, W]``;
    returns ``N`` results in order (``seconds`` is the batch's time / N, ``extra['batch_size']`` is N)."""
    start = time.perf_counter()
    return _restyle_targets(G, images, encoder, iterations, bootstrap, progress, device, precision, start, batch=True)


def _restyle_targets(G, images, encoder, iterations, bootstrap, progress, device, precision, start, *,
                     batch: bool = False) -> list[InversionResult]:
    from ._inputs import target_batch

    iterations = check_steps(iterations, "iterations")
    device = torch.device(device) if device is not None else G.w_avg.device
    enc = load_encoder(encoder, device=device, precision=precision)
    enc.check_generator(G)
    if enc.config["in_channels"] != 6:
        raise InvalidArgumentError("ReStyle needs an encoder with 6 input channels (image + reconstruction); this one "
                                   "takes 3: use method='encoder' with it, or train one with --restyle.")
    if bootstrap == "auto":
        bootstrap = enc.info.get("bootstrap") or None
    boot = load_bootstrap(bootstrap, G, device=device, precision=precision) if bootstrap is not None else None
    target = target_batch(G, images, device=device) if batch else target_tensor(G, images, device=device)
    with torch.no_grad():
        start_latent = initial_latent(G, enc, target, boot)
        start_image = G.synthesis(start_latent, noise_mode="const")
        latent, img, images = restyle_steps(G, enc, target, iterations, start_latent=start_latent,
                                            start_image=start_image, progress=progress)
    n = target.shape[0]
    seconds = (time.perf_counter() - start) / n
    results = []
    for i in range(n):
        x = target[i:i + 1]
        steps_i = [y[i:i + 1] for y in images]
        history = []
        for t, y in enumerate(steps_i):
            mse = float((y - x).square().mean())
            history.append({"step": t, "stage": "restyle", "loss": mse, "mse": mse})
        extra = {"psnr_per_step": [psnr(y, x) for y in steps_i], "images": steps_i, "encoder": enc.info,
                 "bootstrap": boot.info if boot is not None else None,
                 "bootstrap_psnr": psnr(start_image[i:i + 1], x) if boot is not None else None}
        if batch:
            extra["batch_size"] = n
        results.append(InversionResult(latent=inversion_latent(latent[i:i + 1], "w+"), image=img[i:i + 1], target=x,
                                       method="restyle", loss_history=history, perceptual="none", seconds=seconds,
                                       extra=extra))
    return results
