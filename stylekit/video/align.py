"""Real faces in a clip: landmarks per frame, the FFHQ crop square steadied over time, and the crops.

Per frame ``t`` the 68 landmarks give FFHQ's oriented crop square (:func:`stylekit.invert.align.ffhq_quad`,
corners TL, BL, BR, TR in pixel coordinates)::

    q_t   = ffhq_quad(landmarks_t)                                  [4, 2]   (missing where no face is found)
    q_t   = linear interpolation in time between the nearest frames with a face (held at the clip's ends)
    q~_t  = sum_s g_sigma(t - s) q_s / sum_s g_sigma                 Gaussian over the corners, as the latents
    crop_t(u, v) = frame_t(TL + u (TR - TL) + v (BL - TL))          u, v in [0, 1], sampled at R x R

Landmark detectors jitter by a pixel or two from frame to frame; an unsmoothed crop turns that jitter into a
shaking face the generator then has to follow, so the quads are smoothed before cropping. The crop is a
similarity transform (the quad is a square), kept as the quad itself: :mod:`stylekit.video.paste` inverts it.
Cropping samples at up to 4x the output size and averages down (FFHQ renders at 4x and shrinks too), so large
faces do not alias.

Landmarks come from ``landmarks=``: None (dlib, :func:`stylekit.invert.align.detect_landmarks`), a callable
``frame uint8 [H, W, 3] -> [68, 2]`` (None or an :class:`~stylekit.errors.ImageInputError` = no face), or an
array ``[T, 68, 2]`` / a sequence of ``[68, 2]`` or None per frame (NaN rows = no face).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ImageInputError, InvalidArgumentError
from ..progress import no_progress

MAX_SUPERSAMPLE = 4  # crops are sampled at up to this many times their size, then averaged down


@dataclass
class FaceTrack:
    """The crop squares of a clip.

    quads: ``float64 [T, 4, 2]`` the smoothed corners (TL, BL, BR, TR; x, y pixels) the crops use;
    raw: ``[T, 4, 2]`` each frame's own quad (NaN where no face was found); found: ``bool [T]``;
    frame_size: ``(H, W)``.
    """

    quads: np.ndarray
    raw: np.ndarray
    found: np.ndarray
    frame_size: tuple[int, int]

    @property
    def missing(self) -> list[int]:
        """Indices of the frames where no face was found (their quads are interpolated)."""
        return [int(i) for i in np.flatnonzero(~self.found)]


def check_frames(frames) -> np.ndarray:
    """``frames`` as a uint8 ``[T, H, W, 3]`` numpy array, or :class:`ImageInputError`."""
    arr = frames.cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8 or arr.shape[0] == 0:
        raise ImageInputError(f"aligning faces needs the frames as uint8 [T, H, W, 3], got {arr.dtype} "
                              f"{list(arr.shape)}.")
    return arr


def frame_landmarks(frames, landmarks=None, *, should_stop=None, progress=no_progress) -> list[np.ndarray | None]:
    """Per frame, ``[68, 2]`` landmarks or None (no face); see the module for what ``landmarks`` may be.

    ``should_stop()`` is asked between frames (detection is the slow part): after a stop the list covers only the
    frames reached (at least the first).
    """
    arr = check_frames(frames)
    t = arr.shape[0]
    if landmarks is not None and not callable(landmarks):
        given = list(landmarks) if not isinstance(landmarks, np.ndarray) else list(landmarks.astype(np.float64))
        if len(given) != t:
            raise InvalidArgumentError(f"landmarks must give one entry per frame ({t}), got {len(given)}.")
        out = []
        for i, lm in enumerate(given):
            if lm is None or not np.isfinite(np.asarray(lm, dtype=np.float64)).all():
                out.append(None)
                continue
            lm = np.asarray(lm, dtype=np.float64)
            if lm.shape != (68, 2):
                raise InvalidArgumentError(f"landmarks of frame {i} must be [68, 2], got {list(lm.shape)}.")
            out.append(lm)
        return out
    if landmarks is None:
        from ..invert.align import detect_landmarks as landmarks
    stop = should_stop or (lambda: False)
    out = []
    for i in range(t):
        if i > 0 and stop():
            break
        try:
            lm = landmarks(arr[i])
        except ImageInputError:  # "no face was found"
            lm = None
        out.append(None if lm is None else np.asarray(lm, dtype=np.float64))
        progress(i + 1, t, "finding faces")
    return out


def fill_missing(quads: np.ndarray, found: np.ndarray) -> np.ndarray:
    """``quads [T, 4, 2]`` with the frames where ``found`` is False replaced by a linear interpolation in time of
    the nearest frames with a face (the first / last face held before / after it). Raises when none has one."""
    found = np.asarray(found, dtype=bool)
    if not found.any():
        raise ImageInputError("no face was found in any frame of the clip; use a clip with one clearly visible, "
                              "roughly frontal face, or edit it without face alignment.")
    t = np.arange(len(found))
    flat = quads.reshape(len(found), -1)
    out = np.stack([np.interp(t, t[found], flat[found, k]) for k in range(flat.shape[1])], axis=1)
    return out.reshape(quads.shape)


def smooth_quads(quads: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing over time of the corners ``[T, 4, 2]`` (the latents' smoothing,
    :func:`stylekit.video.pipeline.smooth_latents`); ``sigma`` in frames, 0 = none."""
    from .pipeline import smooth_latents

    return smooth_latents(torch.from_numpy(np.asarray(quads, dtype=np.float64)), sigma).numpy()


def track_faces(frames, *, landmarks=None, sigma: float = 2.0, should_stop=None,
                progress=no_progress) -> FaceTrack:
    """Find the face of every frame and steady its crop square: a :class:`FaceTrack`.

    Frames without a face take the quad interpolated from their neighbours; a clip with no face at all raises
    :class:`ImageInputError`. ``sigma``: Gaussian smoothing of the corners over time, in frames. After a stop
    the track covers the first frames only.
    """
    from ..invert.align import ffhq_quad

    arr = check_frames(frames)
    per_frame = frame_landmarks(arr, landmarks, should_stop=should_stop, progress=progress)
    raw = np.full((len(per_frame), 4, 2), np.nan)  # fewer than T frames after a stop
    for i, lm in enumerate(per_frame):
        if lm is not None:
            try:
                raw[i] = ffhq_quad(lm)
            except ImageInputError:  # degenerate landmarks: as good as no face
                pass
    found = np.isfinite(raw).all(axis=(1, 2))
    quads = smooth_quads(fill_missing(np.where(found[:, None, None], raw, 0.0), found), sigma)
    return FaceTrack(quads=quads, raw=raw, found=found, frame_size=(int(arr.shape[1]), int(arr.shape[2])))


def quad_grid(quad: np.ndarray, size: int, frame_size: tuple[int, int]) -> torch.Tensor:
    """``grid_sample`` grid ``[1, size, size, 2]`` that reads the square ``quad`` of an ``H x W`` frame.

    Crop pixel ``(i, j)`` (column, row) has its centre at ``u = (i + 0.5) / size``, ``v = (j + 0.5) / size`` and
    reads frame point ``TL + u (TR - TL) + v (BL - TL)``; landmark coordinates put pixel centres on integers,
    so ``+0.5`` moves them to grid_sample's continuous frame (``align_corners=False``).
    """
    h, w = frame_size
    q = torch.as_tensor(np.asarray(quad, dtype=np.float64))
    u = (torch.arange(size, dtype=torch.float64) + 0.5) / size
    uu, vv = u[None, :, None], u[:, None, None]  # [1, S, 1] columns, [S, 1, 1] rows
    pts = q[0] + uu * (q[3] - q[0]) + vv * (q[1] - q[0]) + 0.5  # [S, S, 2] continuous x, y
    norm = torch.stack([pts[..., 0] / w * 2 - 1, pts[..., 1] / h * 2 - 1], dim=-1)
    return norm[None].float()


def crop_faces(frames, quads: np.ndarray, size: int) -> torch.Tensor:
    """Crop each frame by its quad: ``uint8 [T, H, W, 3]`` -> ``float32 [T, 3, size, size]`` in ``[-1, 1]``.

    Sampled bilinearly at ``k = ceil(side / size)`` (at most 4) times the size and averaged down; points outside
    the frame take the nearest border pixel (FFHQ pads by reflection and blur; the paste-back never shows them).
    """
    arr = check_frames(frames)
    quads = np.asarray(quads, dtype=np.float64)
    if quads.shape != (arr.shape[0], 4, 2) or not np.isfinite(quads).all():
        raise InvalidArgumentError(f"quads must be finite [T, 4, 2] with T = {arr.shape[0]}, got {list(quads.shape)}.")
    out = []
    for frame, quad in zip(arr, quads):
        side = float(np.hypot(*(quad[3] - quad[0])))
        k = int(min(MAX_SUPERSAMPLE, max(1, np.ceil(side / size - 1e-3))))  # rounding noise is not a larger face
        x = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 127.5 - 1.0
        grid = quad_grid(quad, size * k, arr.shape[1:3])
        crop = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        out.append(F.avg_pool2d(crop, k) if k > 1 else crop)
    return torch.cat(out).clamp(-1, 1)


__all__ = ["FaceTrack", "track_faces", "frame_landmarks", "fill_missing", "smooth_quads", "quad_grid", "crop_faces",
           "check_frames"]
