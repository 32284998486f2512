"""Edit a clip consistently: invert every frame, smooth the latents over time, apply one edit, re-render.

The recipe of the StyleGAN video-editing studies (Tzaban et al. 2022, "Stitch it in Time"; Alaluf et al.
2022, "Third Time's the Charm?")::

    (real faces) crop_t = FFHQ square of frame t from its landmarks, smoothed over time   (video.align)
    frames x_t [T, 3, R, R] (the crops, or the centre squares resized to the generator)
    w_t    = E(x_t)  or  argmin_w loss(G(w), x_t) from w_{t-1}   encoder in batches / optimisation (video.inversion)
    w~_t   = sum_s g_sigma(t - s) w_s / sum_s g_sigma  Gaussian smoothing over time     (sigma in frames)
    G'     = G tuned on every (w~_t, x_t) at once      optional PTI over the clip (one shared copy)
    y_t    = G'(w~_t)                                 the reconstruction
    y'_t   = G'(w~_t + strength * d)                  the edit, the same for every frame
    (real faces) frame_t with y'_t warped back into its square through a soft mask        (video.paste)

Encoders are near-deterministic per frame but not smooth across frames, and StyleGAN2 sticks textures
to the image grid, so a per-frame inversion flickers; smoothing the latents trades a little per-frame
fidelity for steadiness (:func:`flicker` measures it), and PTI wins the fidelity back without moving the codes.
StyleGAN3 generators go through the same path, inverted by optimisation where they have no encoder (their
translation equivariance is why the studies prefer them).

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
from .presets import ALIGN

DEFAULT_SIGMA = 1.0  # frames of Gaussian smoothing of the latents (0: none)
DEFAULT_BATCH = 8  # frames per encoder / synthesis call


@dataclass
class VideoResult:
    """What :func:`edit_video` made.

    source: ``[T, 3, R, R]`` the frames as the generator sees them; reconstruction / edited: the same shape
    (edited is the reconstruction when no edit was asked); latents: ``'w+'`` Latent of ``T`` codes (smoothed);
    psnr: ``[T]`` dB of the reconstruction against the source; complete: False when ``should_stop`` ended it
    early (the first ``frames_done`` frames are kept); full_frames: ``uint8 [T, H, W, 3]`` the original frames
    with the edited faces pasted back (aligned clips only); track: the :class:`~stylekit.video.align.FaceTrack`
    (aligned clips only); latents carry the PTI-tuned generator when there was tuning; meta: settings and seconds.
    """

    source: torch.Tensor
    reconstruction: torch.Tensor
    edited: torch.Tensor
    latents: Latent
    psnr: torch.Tensor
    complete: bool = True
    full_frames: np.ndarray | None = None
    track: object | None = None
    meta: dict = field(default_factory=dict)

    @property
    def frames_done(self) -> int:
        return int(self.edited.shape[0])

    def edited_uint8(self) -> np.ndarray:
        """The edited clip as uint8 for :func:`stylekit.video.io.write_video`: the full frames ``[T, H, W, 3]``
        with the face pasted back when the clip was aligned, else the crops ``[T, R, R, 3]``."""
        return self.full_frames if self.full_frames is not None else to_uint8(self.edited)


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
               sigma: float = DEFAULT_SIGMA, batch_size: int = DEFAULT_BATCH, align: bool = False, landmarks=None,
               align_sigma: float = ALIGN.sigma, feather: float = ALIGN.feather, pti_steps: int = 0,
               perceptual: str = "auto", progress=no_progress, should_stop=None, device=None,
               precision: str | None = None) -> VideoResult:
    """Invert ``frames`` (``uint8 [T, H, W, 3]`` or a ``[T, 3, R, R]`` tensor in ``[-1, 1]``), smooth the latents
    over ``sigma`` frames, optionally tune the generator on the clip, and render them with ``direction`` (a
    :class:`~stylekit.edit.Direction`, optional) applied at ``strength`` on ``layers`` (default: the direction's).

    Args:
        encoder: a one-pass encoder (registered name or file); None inverts by optimisation warm-started from
            the previous frame (:data:`stylekit.video.presets.VIDEO_OPTIMIZE`), the route for generators
            without an encoder (StyleGAN3).
        align: real faces: find the face in every uint8 frame (``landmarks``: None = dlib, a callable or per-frame
            arrays; see :mod:`stylekit.video.align`), crop FFHQ's square smoothed over ``align_sigma`` frames,
            and paste the edited crops back with a ``feather``-soft mask (``result.full_frames``).
        pti_steps: > 0 tunes one copy of the generator on the clip (PTI, the smoothed codes as pivots),
            fitting each frame that many times (:data:`stylekit.video.presets.VIDEO_PTI`); the edits are rendered
            with it.
        perceptual: the perceptual loss of optimisation and PTI (:func:`stylekit.invert.losses.build_perceptual`).

    ``progress(done, total, what)`` is called per unit of work; ``should_stop()`` (optional) is asked between
    units, and when it returns True the work stops after at least one batch of frames: the frames finished so
    far are rendered and returned with ``complete=False`` (a stop during PTI keeps the tuning steps done, and the
    render then keeps its first batch).
    """
    from ..edit.direction import Direction, edit
    from ..invert.result import psnr
    from .inversion import encode_frames, optimize_frames, pti_total_steps, tune_on_clip

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if direction is not None and not isinstance(direction, Direction):
        raise InvalidArgumentError("direction must be a stylekit.edit.Direction (load_direction, find_boundary, "
                                   f"...), got {type(direction).__name__}.")
    strength = float(strength)
    if not np.isfinite(strength):
        raise InvalidArgumentError(f"strength must be a finite number, got {strength!r}.")
    if isinstance(pti_steps, bool) or not isinstance(pti_steps, int) or not 0 <= pti_steps <= 1000:
        raise InvalidArgumentError(f"pti_steps must be an integer in 0..1000 (fits of each frame), got {pti_steps!r}.")
    start = time.perf_counter()
    device = torch.device(device) if device is not None else G.w_avg.device
    stop = should_stop or (lambda: False)
    track, full = None, None
    if align:
        from .align import check_frames, crop_faces, track_faces

        full = check_frames(frames)
        t = full.shape[0]
        report = _stages(progress, t, align=True, pti=pti_total_steps(t, pti_steps) if pti_steps else 0)
        track = track_faces(full, landmarks=landmarks, sigma=align_sigma, should_stop=stop,
                            progress=report("align"))
        source = crop_faces(full[:len(track.found)], track.quads, G.img_resolution).to(device)
    else:
        source = (frames.detach().float() if isinstance(frames, torch.Tensor)
                  else frames_to_tensor(frames, G.img_resolution)).to(device)
        t = source.shape[0]
        report = _stages(progress, t, align=False, pti=pti_total_steps(t, pti_steps) if pti_steps else 0)
    if source.ndim != 4 or source.shape[1] != 3 or source.shape[-1] != G.img_resolution:
        raise ImageInputError(f"frame tensors must be [T, 3, {G.img_resolution}, {G.img_resolution}] in [-1, 1], "
                              f"got {list(source.shape)}.")
    if encoder is None:
        codes = optimize_frames(G, source, stop=stop, report=report("invert"), perceptual=perceptual)
    else:
        codes = encode_frames(G, source, encoder=encoder, batch_size=batch_size, stop=stop, report=report("invert"),
                              device=device, precision=precision)
    done = codes.shape[0]
    smoothed = smooth_latents(codes, sigma)
    renderer, pti_info = G, {}
    if pti_steps:
        renderer, pti_info = tune_on_clip(G, source[:done], smoothed, steps_per_frame=pti_steps, stop=stop,
                                          report=report("pti"), perceptual=perceptual)
    plain = Latent("w+", smoothed)
    moved = plain if direction is None or strength == 0 else edit(plain, direction, strength, layers=layers, G=G)
    recon, edited = _render(renderer, plain, moved, done, batch_size, stop, report("render"))
    n = recon.shape[0]
    pasted = None
    if align:
        from .paste import paste_clip

        pasted = paste_clip(full[:n], edited, track.quads[:n], feather=feather)
        report("paste")(n, n, "pasting back")
    return VideoResult(
        source=source[:n].cpu(), reconstruction=recon, edited=edited,
        latents=Latent("w+", smoothed[:n], generator=renderer if pti_steps else None),
        psnr=torch.tensor([psnr(x, y) for x, y in zip(recon, source[:n])]), complete=n == t,
        full_frames=pasted, track=track,
        meta={"frames": t, "frames_done": n, "sigma": sigma, "strength": strength,
              "inversion": "optimize" if encoder is None else str(encoder), "encoder": str(encoder),
              "direction": getattr(direction, "name", None), "align": bool(align), "pti_steps_per_frame": pti_steps,
              **pti_info, **({"frames_without_face": track.missing} if track is not None else {}),
              "seconds": time.perf_counter() - start})


def _render(G, latents: Latent, moved: Latent, done: int, batch_size: int, stop, report):
    """``(reconstruction, edited)`` ``[n, 3, R, R]`` on the CPU; the first batch always, then until ``stop()``."""
    recon, edited = [], []
    with torch.no_grad():
        for i in range(0, done, batch_size):
            if i > 0 and stop():
                break
            recon.append(G.synthesis(latents.ws(G)[i:i + batch_size], noise_mode="const").float().cpu())
            edited.append(recon[-1] if moved is latents
                          else G.synthesis(moved.ws(G)[i:i + batch_size], noise_mode="const").float().cpu())
            report(min(i + batch_size, done), done, "rendering frames")
    return torch.cat(recon), torch.cat(edited)


def _stages(progress, t: int, *, align: bool, pti: int):
    """``report(stage)`` -> a ``(done, total, what)`` callback mapping that stage's progress onto one bar over the
    stages (align and paste: ``t`` units each when aligning; invert and render: ``t``; pti: its steps)."""
    sizes = {"align": t if align else 0, "invert": t, "pti": pti, "render": t, "paste": t if align else 0}
    offsets, acc = {}, 0
    for name, size in sizes.items():
        offsets[name], acc = acc, acc + size
    total = acc

    def report(stage):
        def callback(done, stage_total, what=""):
            units = sizes[stage] * done / max(stage_total, 1)
            progress(min(total, int(round(offsets[stage] + units))), total, what)
        return callback

    return report
