"""Inversion: put any image into a StyleGAN's latent space.

``stylekit.invert.invert(G, image, method=...)`` is the one entry point:

- ``'optimize'``: Image2StyleGAN in W or W+ (NVIDIA projector schedule), Image2StyleGAN++ noise
  stage, masks for inpainting and composites, Gram style loss (:mod:`.optimize`).
- ``'encoder'``: one pass of an e4e / pSp encoder (:mod:`.encoder`).
- ``'restyle'``: ReStyle's iterative refinement with a 6-channel encoder (:mod:`.refine`).
- ``'pti'``: pivotal tuning: a pivot latent, then a fine-tuned copy of the generator (:mod:`.pti`).

Every method returns an :class:`~stylekit.invert.result.InversionResult` whose ``latent`` is a
:class:`~stylekit.latent.Latent`; given a batch (a list of images or a tensor ``[N, 3, H, W]`` with
``N > 1``), :func:`invert` returns a list of them, one per image (see :mod:`.batch`). Each method's default settings are the named presets of
:mod:`.presets`. Nothing is imported until it is used; no exported name is also a submodule's name.
"""

from __future__ import annotations

from stylekit.lazy import lazy_exports

METHODS = ("optimize", "encoder", "restyle", "pti")

_LAZY = {
    "InversionResult": "stylekit.invert.result",
    "project": "stylekit.invert.optimize",
    "invert_composite": "stylekit.invert.optimize",
    "encode": "stylekit.invert.encoder",
    "load_encoder": "stylekit.invert.encoder",
    "restyle": "stylekit.invert.refine",
    "pivotal_tuning": "stylekit.invert.pti",
    "apply_delta": "stylekit.invert.pti",
    "align_face": "stylekit.invert.align",
    "is_batch": "stylekit.invert.batch",
}

__all__ = ["invert", "METHODS", *sorted(_LAZY)]


def invert(G, image, *, method: str = "optimize", space: str = "w+", steps: int | None = None, progress=None,
           **options):
    """Invert ``image`` into generator ``G``; returns an :class:`InversionResult` (a list of them for a batch).

    Args:
        G: a stylekit Generator (see :func:`stylekit.load_generator`).
        image: a path, bytes, PIL image, numpy array, file object, or a tensor ``[1, 3, H, W]`` in
            ``[-1, 1]``; it is resampled to ``G.img_resolution``. A batch: a list / tuple of such images,
            or a tensor ``[N, 3, H, W]`` with ``N > 1``; the result is then a list of ``N`` results in
            the same order. The encoders and ReStyle run the batch in one pass; ``'optimize'`` optimises
            the ``N`` latents together (each image's loss is its own, so each latent moves as it would
            alone; the noise stage, a style loss or an ``init_latent`` run image by image); ``'pti'``
            tunes one generator per image, so it runs image by image (see :mod:`.batch`).
        method: ``'optimize'``, ``'encoder'``, ``'restyle'`` or ``'pti'``.
        space: ``'w'`` or ``'w+'`` for ``'optimize'`` (and the pivot of ``'pti'``, default there
            ``'w'``); encoders always produce W+. ``result.latent`` is a Latent in that space, its
            tensor ``[1, num_ws, w_dim]`` in any case.
        steps: iterations of the method (optimisation steps, ReStyle iterations, PTI tuning steps);
            None picks the method's preset (:mod:`stylekit.invert.presets`).
        progress: ``callback(step, total, message, **metrics)``; raise ``stylekit.progress.Cancelled``
            in it to stop.
        **options: the chosen method's options: see :func:`stylekit.invert.optimize.project`,
            :func:`stylekit.invert.encoder.encode`, :func:`stylekit.invert.refine.restyle`,
            :func:`stylekit.invert.pti.pivotal_tuning`.
    """
    from ..errors import InvalidArgumentError
    from .batch import invert_batch, is_batch

    if method not in METHODS:
        raise InvalidArgumentError(f"method must be one of {METHODS}, not {method!r}.")
    if method == "encoder" and steps is not None:
        raise InvalidArgumentError("method='encoder' is a single forward pass and takes no steps; use "
                                   "method='restyle' for iterative refinement.")
    if method in ("encoder", "restyle"):
        _only_w_plus(space, method)
    if steps is not None:
        options["iterations" if method == "restyle" else "steps"] = steps
    if is_batch(image):
        return invert_batch(G, image, method=method, space=space, progress=progress, **options)
    if method == "optimize":
        from .optimize import project

        return project(G, image, space=space, progress=progress, **options)
    if method == "encoder":
        from .encoder import encode

        return encode(G, image, progress=progress, **options)
    if method == "restyle":
        from .refine import restyle

        return restyle(G, image, progress=progress, **options)
    from .pti import pivotal_tuning

    pivot_space = options.pop("pivot_space", "w" if space == "w+" and "pivot_space" not in options else space)
    return pivotal_tuning(G, image, pivot_space=pivot_space, progress=progress, **options)


def _only_w_plus(space: str, method: str) -> None:
    from ..errors import InvalidArgumentError

    if space != "w+":
        raise InvalidArgumentError(f"method={method!r} predicts W+ codes; pass space='w+' (or use method='optimize' "
                                   "for a W-space inversion).")


__getattr__ = lazy_exports(__name__, _LAZY)
