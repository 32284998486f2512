"""Video files in and out with PyAV (FFmpeg's libraries): mp4, webm, mov, mkv, avi and animated gif.

Frames are ``uint8 [T, H, W, 3]`` numpy arrays (RGB). Reading refuses, with a message saying what to do,
a missing or unreadable file, a file without a video stream, a clip longer than ``max_frames`` or wider
or taller than ``max_side`` pixels, and a file above :data:`MAX_BYTES`. Writing picks the codec from the
suffix (H.264 for ``.mp4``/``.mov``/``.mkv``, VP9 for ``.webm``, GIF for ``.gif``) and pads odd sides by
one pixel where the codec needs even ones (4:2:0 chroma).
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import ImageInputError, InvalidArgumentError

MAX_FRAMES = 300  # frames a clip may have (10 s at 30 fps): the pipeline inverts every one
MAX_SIDE = 2048  # pixels on the longer side
MAX_BYTES = 512 * 1024 * 1024  # file size
_CODECS = {".mp4": ("libx264", "yuv420p"), ".mov": ("libx264", "yuv420p"), ".mkv": ("libx264", "yuv420p"),
           ".webm": ("libvpx-vp9", "yuv420p"), ".gif": ("gif", "rgb8")}


def _av():
    try:
        import av
    except ImportError:  # pragma: no cover - av is a requirement
        raise ImageInputError("reading and writing video needs PyAV: pip install av") from None
    return av


def read_video(path, *, max_frames: int = MAX_FRAMES, max_side: int = MAX_SIDE) -> tuple[np.ndarray, float]:
    """``(frames uint8 [T, H, W, 3], frames per second)`` of the first video stream of ``path``."""
    av = _av()
    path = Path(os.fspath(path))
    if not path.is_file():
        raise ImageInputError(f"{path}: no such video file.")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise ImageInputError(f"{path}: {size / 2**20:.0f} MB is more than the {MAX_BYTES // 2**20} MB a clip may "
                              "have; trim or shrink it first (e.g. ffmpeg -t 10 -vf scale=512:-2).")
    try:
        container = av.open(str(path), mode="r")
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise ImageInputError(f"{path}: not a readable video ({type(exc).__name__}: {exc}); use an mp4, webm, mov "
                              "or gif file.") from None
    with container:
        if not container.streams.video:
            raise ImageInputError(f"{path}: the file has no video stream (an audio file?); give a video clip.")
        stream = container.streams.video[0]
        w, h = stream.codec_context.width, stream.codec_context.height
        if max(w, h) > max_side:
            raise ImageInputError(f"{path}: {w}x{h} pixels is larger than {max_side} on a side; shrink it first "
                                  f"(e.g. ffmpeg -vf scale={max_side}:-2).")
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        frames = []
        try:
            for frame in container.decode(stream):
                if len(frames) == max_frames:
                    raise ImageInputError(f"{path}: the clip has more than {max_frames} frames; trim it (e.g. "
                                          f"ffmpeg -t {max_frames / float(rate):.0f}) or lower its frame rate.")
                frames.append(frame.to_ndarray(format="rgb24"))
        except av.error.FFmpegError as exc:
            raise ImageInputError(f"{path}: the video stream is damaged after {len(frames)} frames "
                                  f"({exc}); re-encode it.") from None
    if not frames:
        raise ImageInputError(f"{path}: the video stream holds no frames.")
    return np.stack(frames), float(rate)


def write_video(path, frames, fps: float = 25.0) -> Path:
    """Write ``frames`` (uint8 ``[T, H, W, 3]``) to ``path``; the codec follows the suffix (see the module)."""
    av = _av()
    path = Path(os.fspath(path))
    suffix = path.suffix.lower()
    if suffix not in _CODECS:
        raise InvalidArgumentError(f"cannot write {suffix or 'a file without a suffix'!r} video; use one of "
                                   f"{', '.join(sorted(_CODECS))}.")
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or frames.shape[0] == 0:
        raise InvalidArgumentError(f"frames must be uint8 [T, H, W, 3] with T >= 1, got {frames.dtype} "
                                   f"{list(frames.shape)}.")
    if not (0 < float(fps) <= 240):
        raise InvalidArgumentError(f"fps must be in (0, 240], got {fps!r}.")
    codec, pix_fmt = _CODECS[suffix]
    if pix_fmt == "yuv420p" and (frames.shape[1] % 2 or frames.shape[2] % 2):  # 4:2:0 needs even sides
        frames = np.pad(frames, ((0, 0), (0, frames.shape[1] % 2), (0, frames.shape[2] % 2), (0, 0)), mode="edge")
    rate = Fraction(float(fps)).limit_denominator(1001)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = pix_fmt
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
