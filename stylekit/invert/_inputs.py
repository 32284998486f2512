"""Conversions shared by the inversion methods (private to stylekit.invert; argument checks are in
stylekit.validate)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ImageInputError, InvalidArgumentError
from ..progress import no_progress


def target_tensor(G, image, *, device=None) -> torch.Tensor:
    """The image to invert as ``[1, 3, R, R]`` float32 in ``[-1, 1]`` at the generator's resolution.

    ``image`` is anything :func:`stylekit.images.image_to_tensor` accepts (path, bytes, PIL image,
    numpy array, file object), or a tensor ``[3, H, W]`` / ``[1, 3, H, W]`` in ``[-1, 1]`` (uint8
    tensors are read as 0..255). Non-square tensors are centre-cropped; sizes are resampled to R.
    """
    from ..images import image_to_tensor

    size = G.img_resolution
    device = device if device is not None else G.w_avg.device
    if isinstance(image, torch.Tensor):
        x = image.detach()
        if x.ndim == 3:
            x = x.unsqueeze(0)
        if x.ndim != 4 or x.shape[0] != 1 or x.shape[1] not in (1, 3) or x.shape[2] < 1 or x.shape[3] < 1:
            raise ImageInputError(f"an image tensor must be [3, H, W] or [1, 3, H, W], got {tuple(image.shape)}.")
        x = x.to(torch.float32) / 127.5 - 1.0 if image.dtype == torch.uint8 else x.to(torch.float32)
        if not torch.isfinite(x).all():
            raise ImageInputError("the image tensor contains NaN or infinite values.")
        if x.shape[1] == 1:
            x = x.expand(1, 3, *x.shape[2:])
        h, w = x.shape[2:]
        if h != w:
            side = min(h, w)
            top, left = (h - side) // 2, (w - side) // 2
            x = x[:, :, top:top + side, left:left + side]
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=x.shape[-1] > size)
        return x.clamp(-1, 1).to(device)
    return image_to_tensor(image, size=size, device=device)


def target_batch(G, images, *, device=None) -> torch.Tensor:
    """A batch of images to invert as ``[N, 3, R, R]`` float32 in ``[-1, 1]``.

    ``images`` is a list / tuple of anything :func:`target_tensor` takes, or a tensor ``[N, 3, H, W]``
    (each image is converted as :func:`target_tensor` converts one).
    """
    if isinstance(images, torch.Tensor):
        if images.ndim != 4:
            raise ImageInputError(f"a batch of images must be a tensor [N, 3, H, W], got {tuple(images.shape)}.")
        images = list(images.unbind(0))
    if not isinstance(images, (list, tuple)) or not images:
        raise ImageInputError("a batch of images must be a non-empty list of images or a tensor [N, 3, H, W].")
    return torch.cat([target_tensor(G, x, device=device) for x in images])


def progress_or_default(progress):
    return no_progress if progress is None else progress


def w_statistics(G, *, samples: int = 4096, seed: int = 123) -> tuple[torch.Tensor, float]:
    """``(w_avg [w_dim], w_std)``: the tracked mean of W and the RMS distance of W samples to it.

    ``w_std`` (as in NVIDIA's projector) scales the noise added to the latent early in optimisation.
    """
    device = G.w_avg.device
    gen = torch.Generator(device="cpu").manual_seed(seed)
    z = torch.randn([samples, G.z_dim], generator=gen).to(device)
    c = torch.zeros([samples, G.c_dim], device=device) if G.c_dim else None
    with torch.no_grad():
        w = G.mapping(z, c)[:, 0]
    w_avg = G.w_avg.detach().clone().float()
    w_std = float((w - w_avg).square().sum(dim=1).mean().sqrt())
    return w_avg, w_std


def as_w_plus(G, latent, *, name: str = "init_latent") -> torch.Tensor:
    """A W ``[w_dim]`` / ``[1, w_dim]`` or W+ ``[1, num_ws, w_dim]`` code (or a Latent) -> W+ ``[1, num_ws, w_dim]``."""
    if hasattr(latent, "space") and hasattr(latent, "tensor"):
        if latent.space not in ("w", "w+"):
            raise InvalidArgumentError(f"{name} is in space {latent.space!r}; inversion starts from W or W+ codes.")
        latent = latent.tensor
    if not isinstance(latent, torch.Tensor):
        raise InvalidArgumentError(f"{name} must be a tensor [w_dim], [1, w_dim] or [1, num_ws, w_dim].")
    t = latent.detach().to(torch.float32)
    if t.ndim == 1:
        t = t[None]
    if t.ndim == 2 and t.shape == (1, G.w_dim):
        t = t[:, None].repeat(1, G.num_ws, 1)
    if t.ndim != 3 or t.shape != (1, G.num_ws, G.w_dim):
        raise InvalidArgumentError(f"{name} must have shape [1, {G.w_dim}] (W) or [1, {G.num_ws}, {G.w_dim}] (W+), "
                                   f"got {tuple(latent.shape)}.")
    if not torch.isfinite(t).all():
        raise InvalidArgumentError(f"{name} contains NaN or infinite values.")
    return t.to(G.w_avg.device)


class frozen:
    """Context manager: a module's parameters stop requiring grad inside, restored after."""

    def __init__(self, module: torch.nn.Module):
        self.module = module
        self.saved: list[tuple[torch.nn.Parameter, bool]] = []

    def __enter__(self):
        self.saved = [(p, p.requires_grad) for p in self.module.parameters()]
        for p, _ in self.saved:
            p.requires_grad_(False)
        return self.module

    def __exit__(self, *exc):
        for p, flag in self.saved:
            p.requires_grad_(flag)
        return False
