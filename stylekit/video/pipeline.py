"""Edit a clip consistently: invert every frame, smooth the latents over time, apply one edit, re-render.

The recipe of the StyleGAN video-editing studies (Tzaban et al. 2022, "Stitch it in Time"; Alaluf et al.
2022, "Third Time's the Charm?") without their alignment and paste-back, which real faces need::

    frames x_t [T, 3, R, R] (centre-cropped and resized to the generator)
    w_t    = E(x_t)                                   one-pass encoder, in batches      [T, num_ws, w_dim]
    w~_t   = sum_s g_sigma(t - s) w_s / sum_s g_sigma  Gaussian smoothing over time     (sigma in frames)
    y_t    = G(w~_t)                                  the reconstruction
    y'_t   = G(w~_t + strength * d)                   the edit, the same for every frame

Encoders are near-deterministic per frame but not smooth across frames, and StyleGAN2 sticks textures
to the image grid, so a per-frame inversion flickers; smoothing the latents trades a little per-frame
fidelity for steadiness (:func:`flicker` measures it). StyleGAN3 generators go through the same path
(their translation equivariance is why the studies prefer them).

Shapes: frames ``uint8 [T, H, W, 3]`` in and out; tensors ``[T, 3, R, R]`` in ``[-1, 1]``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ImageInputError, InvalidArgumentError
from ..images import to_uint8
from ..latent import Latent
from ..progress import no_progress

DEFAULT_SIGMA = 1.0  # frames of Gaussian smoothing of the latents (0: none)
DEFAULT_BATCH = 8  # frames per encoder / synthesis call


@dataclass
class VideoResult:
    """What :func:`edit_video` made.

    source: ``[T, 3, R, R]`` the frames as the generator sees them; reconstruction / edited: the same shape
    (edited is the reconstruction when no edit was asked); latents: ``'w+'`` Latent of ``T`` codes (smoothed);
    psnr: ``[T]`` dB of the reconstruction against the source; complete: False when ``should_stop`` ended it
    early (the first ``frames_done`` frames are kept); meta: settings and seconds.
    """

    source: torch.Tensor
    reconstruction: torch.Tensor
    edited: torch.Tensor
    latents: Latent
    psnr: torch.Tensor
    complete: bool = True
    meta: dict = field(default_factory=dict)

    @property
    def frames_done(self) -> int:
        return int(self.edited.shape[0])

    def edited_uint8(self) -> np.ndarray:
        """The edited frames as ``uint8 [T, R, R, 3]`` for :func:`stylekit.video.io.write_video`."""
        return to_uint8(self.edited)


def frames_to_tensor(frames, resolution: int) -> torch.Tensor:
    """``uint8 [T, H, W, 3]`` (numpy or tensor) -> ``[T, 3, R, R]`` float32 in ``[-1, 1]``: the centre square of
    each frame, resized (antialiased when shrinking) to ``resolution``."""
    x = torch.as_tensor(np.asarray(frames))
    if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != torch.uint8 or x.shape[0] == 0:
        raise ImageInputError(f"frames must be uint8 [T, H, W, 3] with T >= 1, got {x.dtype} {list(x.shape)}.")
    x = x.permute(0, 3, 1, 2).float() / 127.5 - 1.0
    h, w = x.shape[-2:]
    side = min(h, w)
    x = x[:, :, (h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
    if side != resolution:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False,
                          antialias=side > resolution)
    return x.clamp(-1, 1)


def smooth_latents(codes: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian smoothing along time of ``codes [T, ...]`` with ``sigma`` frames (edges: the kernel renormalised
    over the frames that exist, so a still clip stays still). ``sigma == 0`` returns the codes unchanged."""
    if not np.isfinite(sigma) or sigma < 0:
        raise InvalidArgumentError(f"the smoothing sigma must be >= 0 frames, got {sigma!r}.")
    t = codes.shape[0]
    if sigma == 0 or t == 1:
        return codes.clone()
    radius = min(t - 1, int(np.ceil(3 * sigma)))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    flat = codes.reshape(t, -1).double()
    out = torch.zeros_like(flat)
    norm = torch.zeros(t, 1, dtype=torch.float64)
    for k, off in zip(kernel, offsets.long().tolist()):
        lo, hi = max(0, -off), min(t, t - off)  # frames i with i + off inside the clip
        out[lo:hi] += k * flat[lo + off:hi + off]
        norm[lo:hi] += k
    return (out / norm).to(codes.dtype).reshape(codes.shape)


def flicker(frames: torch.Tensor) -> float:
    """Mean absolute change between consecutive frames of ``[T, 3, R, R]`` (in ``[-1, 1]``), on the 0..255 scale;
    0 for a single frame. The temporal-flicker measure: a result's minus its source's."""
    if frames.shape[0] < 2:
        return 0.0
    return float((frames[1:] - frames[:-1]).abs().mean() * 127.5)


def edit_video(G, frames, *, encoder="e4e-toyfaces", direction=None, strength: float = 0.0, layers=None,
               sigma: float = DEFAULT_SIGMA, batch_size: int = DEFAULT_BATCH, progress=no_progress,
               should_stop=None, device=None, precision: str | None = None) -> VideoResult:
    """Invert ``frames`` (``uint8 [T, H, W, 3]`` or a ``[T, 3, R, R]`` tensor in ``[-1, 1]``) with a one-pass
    ``encoder``, smooth the latents over ``sigma`` frames, and render them with ``direction`` (a
    :class:`~stylekit.edit.Direction`, optional) applied at ``strength`` on ``layers`` (default: the direction's).

    ``progress(done, total, what)`` is called per batch; ``should_stop()`` (optional) is asked between batches
    and, when it returns True, the frames inverted so far are rendered (at least one batch of them) and returned
    with ``complete=False``.
    """
    from ..edit.direction import Direction, edit
    from ..invert.encoder import encode_batch
    from ..invert.result import psnr

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if direction is not None and not isinstance(direction, Direction):
        raise InvalidArgumentError("direction must be a stylekit.edit.Direction (load_direction, find_boundary, "
                                   f"...), got {type(direction).__name__}.")
    strength = float(strength)
    if not np.isfinite(strength):
        raise InvalidArgumentError(f"strength must be a finite number, got {strength!r}.")
    start = time.perf_counter()
    device = torch.device(device) if device is not None else G.w_avg.device
    source = (frames.detach().float() if isinstance(frames, torch.Tensor)
              else frames_to_tensor(frames, G.img_resolution)).to(device)
    if source.ndim != 4 or source.shape[1] != 3 or source.shape[-1] != G.img_resolution:
        raise ImageInputError(f"frame tensors must be [T, 3, {G.img_resolution}, {G.img_resolution}] in [-1, 1], "
                              f"got {list(source.shape)}.")
    t = source.shape[0]
    stop = should_stop or (lambda: False)
    codes = []
    for i in range(0, t, batch_size):
        if stop():
            break
        results = encode_batch(G, source[i:i + batch_size], encoder=encoder, device=device, precision=precision)
        codes.append(torch.cat([r.latent.ws(G) for r in results]))
        progress(min(i + batch_size, t), 2 * t, "inverting frames")
    done = sum(c.shape[0] for c in codes)
    if done == 0:
        raise InvalidArgumentError("stopped before the first frame was inverted; nothing to keep.")
    smoothed = smooth_latents(torch.cat(codes), sigma)
    latents = Latent("w+", smoothed)
    moved = latents if direction is None or strength == 0 else edit(latents, direction, strength, layers=layers, G=G)
    recon, edited = [], []
    with torch.no_grad():
        for i in range(0, done, batch_size):
            if i > 0 and stop():  # the first batch is always rendered, so a stop keeps at least one
                break
            recon.append(G.synthesis(latents.ws(G)[i:i + batch_size], noise_mode="const").float())
            edited.append(recon[-1] if moved is latents
                          else G.synthesis(moved.ws(G)[i:i + batch_size], noise_mode="const").float())
            progress(t + min(i + batch_size, done), 2 * t, "rendering frames")
    n = sum(r.shape[0] for r in recon)
    recon_t = torch.cat(recon) if recon else source[:0]
    edited_t = torch.cat(edited) if edited else source[:0]
    return VideoResult(
        source=source[:n].cpu(), reconstruction=recon_t.cpu(), edited=edited_t.cpu(),
        latents=Latent("w+", smoothed[:n]), psnr=torch.tensor([psnr(x, y) for x, y in zip(recon_t, source[:n])]), complete=n == t,
        meta={"frames": t, "frames_done": n, "sigma": sigma, "strength": strength, "encoder": str(encoder),
              "direction": getattr(direction, "name", None), "seconds": time.perf_counter() - start})
