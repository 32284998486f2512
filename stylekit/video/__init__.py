"""Video: invert, edit and re-render a clip frame by frame, consistently over time.

- :mod:`~stylekit.video.io`        read and write video files with PyAV (limits, clear errors)
- :mod:`~stylekit.video.pipeline`  per-frame inversion, temporal smoothing of the latents, one edit for the clip
- :mod:`~stylekit.video.inversion` the codes: encoder in batches, or optimisation warm-started frame to frame; PTI
- :mod:`~stylekit.video.align`     real faces: landmarks per frame, FFHQ crop squares smoothed over time, the crops
- :mod:`~stylekit.video.paste`     the edited crops warped back into the full frames through a soft mask
- :mod:`~stylekit.video.presets`   the tuned settings (optimisation, PTI over a clip, alignment)

Example::

    from stylekit.video import read_video, edit_video, write_video
    frames, fps = read_video("clip.mp4")                       # uint8 [T, H, W, 3]
    result = edit_video(G, frames, direction=d, strength=2.0)  # VideoResult
    write_video("edited.mp4", result.edited_uint8(), fps)
    # real faces: align=True (dlib landmarks, or landmarks=...), pasted back into the full frames;
    # pti_steps=10 tunes one generator copy on the clip; encoder=None inverts by optimisation (StyleGAN3)
"""

from stylekit.lazy import lazy_exports

_LAZY = {
    "read_video": "io", "write_video": "io", "MAX_FRAMES": "io", "MAX_SIDE": "io", "MAX_BYTES": "io",
    "edit_video": "pipeline", "VideoResult": "pipeline", "frames_to_tensor": "pipeline",
    "smooth_latents": "pipeline", "flicker": "pipeline",
    "track_faces": "align", "crop_faces": "align", "FaceTrack": "align", "paste_back": "paste", "paste_clip": "paste",
    "encode_frames": "inversion", "optimize_frames": "inversion", "tune_on_clip": "inversion",
    "VIDEO_OPTIMIZE": "presets", "VIDEO_PTI": "presets", "ALIGN": "presets",
}
_SUBMODULES = ("io", "pipeline", "align", "paste", "inversion", "presets")
__all__ = sorted(_LAZY)
__getattr__ = lazy_exports(__name__, _LAZY, _SUBMODULES)
