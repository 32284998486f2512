"""Inverting a batch of images: one :class:`~stylekit.invert.result.InversionResult` per image.

:func:`stylekit.invert.invert` sends a batch here (a list / tuple of images, or a tensor
``[N, 3, H, W]`` with ``N > 1``). What each method does with it:

- ``'encoder'``: one encoder pass over the whole batch (:func:`.encoder.encode_batch`);
- ``'restyle'``: every refinement step runs on the whole batch (:func:`.refine.restyle_batch`);
- ``'optimize'``: the ``N`` latents are optimised together (:func:`.optimize.project_batch`: each
  latent's loss is its own image's, so each moves as it would alone); the noise stage, a style loss
  or an ``init_latent`` make it run image by image;
- ``'pti'``: image by image, since each image gets its own tuned generator.

Results equal one-by-one results up to float rounding in batched convolutions (the tests check it).
"""

from __future__ import annotations

import torch

__all__ = ["is_batch", "invert_batch"]


def is_batch(image) -> bool:
    """True for a list / tuple of images or an image tensor ``[N, 3, H, W]`` with ``N > 1``."""
    if isinstance(image, (list, tuple)):
        return True
    return isinstance(image, torch.Tensor) and image.ndim == 4 and image.shape[0] > 1


def invert_batch(G, images, *, method: str, space: str = "w+", progress=None, **options) -> list:
    """Invert every image of ``images`` with ``method``; returns a list of results in order.

    ``options`` are the method's (as :func:`stylekit.invert.invert` passes them, ``steps`` already
    renamed); arguments are checked by :func:`stylekit.invert.invert`.
    """
    from ..errors import ImageInputError

    if isinstance(images, (list, tuple)) and not images:
        raise ImageInputError("the batch of images is empty; pass at least one image.")
    if method == "encoder":
        from .encoder import encode_batch

        return encode_batch(G, images, progress=progress, **options)
    if method == "restyle":
        from .refine import restyle_batch

        return restyle_batch(G, images, progress=progress, **options)
    if method == "optimize":
        from .optimize import project_batch

        return project_batch(G, images, space=space, progress=progress, **options)
    from . import invert

    items = list(images.unbind(0)) if isinstance(images, torch.Tensor) else list(images)
    n = len(items)
    out = []
    for i, item in enumerate(items):
        sub = None if progress is None else (lambda s, t, m="", _i=i, **kw: progress(_i * t + s, n * t, m, **kw))
        out.append(invert(G, item, method=method, space=space, progress=sub, **dict(options)))
    return out
