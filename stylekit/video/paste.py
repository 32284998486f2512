"""Paste edited face crops back into the full frames, leaving everything outside the crop square untouched.

A crop was read from the square ``quad`` (TL, BL, BR, TR) of its frame (:mod:`stylekit.video.align`). Each frame
pixel ``p`` inside the quad's bounding box finds its crop coordinates by inverting that map::

    p + 0.5 - (TL + 0.5) = u (TR - TL) + v (BL - TL)      solve the 2 x 2 system for (u, v)
    mask(u, v)  = smoothstep(clip(min(u, 1 - u, v, 1 - v) / feather, 0, 1))
    out(p)      = frame(p) (1 - mask) + crop(u, v) mask

so the mask is 0 on and outside the quad's edges (those pixels are copied bit for bit) and rises to 1 within
``feather`` (a fraction of the side) inside them: a soft seam instead of a visible square. The crop is read
bilinearly (after an antialiased shrink when the face is smaller in the frame than the crop).

Shapes: frames ``uint8 [T, H, W, 3]``; crops ``[T, 3, R, R]`` in ``[-1, 1]``; quads ``[T, 4, 2]``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InvalidArgumentError

DEFAULT_FEATHER = 0.12  # the mask's soft edge, as a fraction of the crop's side


def crop_coordinates(quad: np.ndarray, box: tuple[int, int, int, int]) -> torch.Tensor:
    """``(u, v)`` crop coordinates ``float64 [h, w, 2]`` of the frame pixels in ``box`` (x0, y0, x1, y1; end
    exclusive); ``u, v`` in ``[0, 1]`` inside the quad."""
    q = np.asarray(quad, dtype=np.float64)
    basis = np.stack([q[3] - q[0], q[1] - q[0]], axis=1)  # columns: the u and v edges
    if abs(np.linalg.det(basis)) < 1e-9:
        raise InvalidArgumentError("a crop square has no area; check the landmarks.")
    inv = torch.from_numpy(np.linalg.inv(basis))
    x0, y0, x1, y1 = box
    ys, xs = torch.meshgrid(torch.arange(y0, y1, dtype=torch.float64), torch.arange(x0, x1, dtype=torch.float64),
                            indexing="ij")
    rel = torch.stack([xs - q[0, 0], ys - q[0, 1]], dim=-1)  # [h, w, 2]
    return rel @ inv.T


def feather_mask(uv: torch.Tensor, feather: float = DEFAULT_FEATHER) -> torch.Tensor:
    """The soft paste mask ``[h, w]`` in ``[0, 1]`` at crop coordinates ``uv [h, w, 2]`` (0 outside the quad)."""
    edge = torch.minimum(torch.minimum(uv[..., 0], 1 - uv[..., 0]), torch.minimum(uv[..., 1], 1 - uv[..., 1]))
    m = (edge / feather).clamp(0, 1) if feather > 0 else (edge > 0).double()
    return m * m * (3 - 2 * m)


def paste_back(frame, crop: torch.Tensor, quad, *, feather: float = DEFAULT_FEATHER) -> np.ndarray:
    """One frame: ``frame uint8 [H, W, 3]`` with ``crop [3, R, R]`` (in ``[-1, 1]``) warped into ``quad`` through
    the soft mask; pixels where the mask is 0 are returned unchanged. Returns a new uint8 ``[H, W, 3]``."""
    if not (0 <= feather <= 0.5):
        raise InvalidArgumentError(f"feather must be in [0, 0.5] (a fraction of the crop's side), got {feather!r}.")
    frame = np.asarray(frame)
    out = frame.copy()
    h, w = frame.shape[:2]
    q = np.asarray(quad, dtype=np.float64)
    box = (max(0, int(np.floor(q[:, 0].min()))), max(0, int(np.floor(q[:, 1].min()))),
           min(w, int(np.ceil(q[:, 0].max())) + 1), min(h, int(np.ceil(q[:, 1].max())) + 1))
    if box[2] <= box[0] or box[3] <= box[1]:
        return out  # the square lies outside the frame
    uv = crop_coordinates(q, box)
    mask = feather_mask(uv, feather)
    if not bool((mask > 0).any()):
        return out
    img = crop.detach().float().cpu()[None]
    side = float(np.hypot(*(q[3] - q[0])))
    if side < img.shape[-1] / 1.5:  # the face is smaller in the frame than the crop: shrink it first
        n = max(2, int(round(side)))
        img = F.interpolate(img, size=(n, n), mode="bilinear", align_corners=False, antialias=True)
    grid = (uv * 2 - 1)[None].float()
    warped = F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
    warped = ((warped.clamp(-1, 1) + 1) * 127.5).permute(1, 2, 0).double()  # [h, w, 3] on 0..255
    region = torch.from_numpy(frame[box[1]:box[3], box[0]:box[2]].astype(np.float64))
    m = mask[..., None]
    blended = region * (1 - m) + warped * m
    keep = (mask > 0).numpy()
    patch = out[box[1]:box[3], box[0]:box[2]]
    patch[keep] = np.clip(np.rint(blended.numpy()[keep]), 0, 255).astype(np.uint8)
    return out


def paste_clip(frames, crops: torch.Tensor, quads, *, feather: float = DEFAULT_FEATHER) -> np.ndarray:
    """:func:`paste_back` for every frame: ``uint8 [T, H, W, 3]`` (``T`` = the number of crops, the first frames)."""
    frames = np.asarray(frames)
    quads = np.asarray(quads, dtype=np.float64)
    n = crops.shape[0]
    if n > frames.shape[0] or quads.shape[0] < n:
        raise InvalidArgumentError(f"{n} crops for {frames.shape[0]} frames and {quads.shape[0]} quads.")
    if n == 0:
        return frames[:0].copy()
    return np.stack([paste_back(frames[i], crops[i], quads[i], feather=feather) for i in range(n)])


__all__ = ["paste_back", "paste_clip", "feather_mask", "crop_coordinates", "DEFAULT_FEATHER"]
