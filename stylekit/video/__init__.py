"""Video: invert, edit and re-render a clip frame by frame, consistently over time.

- :mod:`~stylekit.video.io`        read and write video files with PyAV (limits, clear errors)
- :mod:`~stylekit.video.pipeline`  per-frame inversion, temporal smoothing of the latents, one edit for the clip

Example::

    from stylekit.video import read_video, edit_video, write_video
    frames, fps = read_video("clip.mp4")                       # uint8 [T, H, W, 3]
    result = edit_video(G, frames, direction=d, strength=2.0)  # VideoResult
    write_video("edited.mp4", result.edited_uint8(), fps)
"""

from stylekit.lazy import lazy_exports

_LAZY = {
    "read_video": "io", "write_video": "io", "MAX_FRAMES": "io", "MAX_SIDE": "io", "MAX_BYTES": "io",
    "edit_video": "pipeline", "VideoResult": "pipeline", "frames_to_tensor": "pipeline",
    "smooth_latents": "pipeline", "flicker": "pipeline",
}
_SUBMODULES = ("io", "pipeline")
__all__ = sorted(_LAZY)
__getattr__ = lazy_exports(__name__, _LAZY, _SUBMODULES)
