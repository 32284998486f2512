"""Video alignment of real faces: crop squares smoothed over time, missing faces, crops and the paste-back."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from stylekit.errors import ImageInputError, InvalidArgumentError
from stylekit.invert.align import align_from_landmarks, ffhq_quad
from stylekit.video.align import crop_faces, fill_missing, track_faces
from stylekit.video.paste import crop_coordinates, feather_mask, paste_back, paste_clip

from test_invert_align import _face


def _landmarks(centre, angle_deg=0.0, eye_dist=16.0, eye_mouth=14.0):
    return _face(width=8, height=8, centre=centre, angle_deg=angle_deg, eye_dist=eye_dist, eye_mouth=eye_mouth)[1]


def _smooth_face(**kw):
    """A blurred synthetic face frame (uint8 [H, W, 3]; blurred so that resampling twice stays close) and its
    landmarks."""
    img, lm = _face(**kw)
    arr = gaussian_filter(np.asarray(img).astype(np.float64), [1.5, 1.5, 0])
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8), lm


def test_smoothing_steadies_jittering_crop_squares():
    rng = np.random.default_rng(0)
    t = 24
    true = [_landmarks((60.0 + 2.0 * i, 50.0 + 0.5 * i), angle_deg=0.5 * i) for i in range(t)]
    noisy = [lm + rng.normal(0, 1.5, size=lm.shape) for lm in true]
    raw = track_faces(np.zeros((t, 120, 160, 3), np.uint8), landmarks=noisy, sigma=0.0)
    smooth = track_faces(np.zeros((t, 120, 160, 3), np.uint8), landmarks=noisy, sigma=2.0)
    assert raw.found.all() and smooth.missing == []
    np.testing.assert_allclose(raw.quads, raw.raw)  # sigma 0: each frame's own quad

    def jitter(q):  # second differences: 0 for a square moving at constant speed
        return float(np.abs(q[2:] - 2 * q[1:-1] + q[:-2]).mean())

    assert jitter(smooth.quads) < 0.3 * jitter(raw.quads)
    truth = np.stack([ffhq_quad(lm) for lm in true])
    assert np.abs(smooth.quads - truth).mean() < 0.6 * np.abs(raw.quads - truth).mean()


def test_frames_without_a_face_take_the_interpolated_square():
    t = 8
    lms = [_landmarks((50.0 + 4 * i, 60.0)) for i in range(t)]
    given = [None if i in (0, 3, 4, 7) else lm for i, lm in enumerate(lms)]
    track = track_faces(np.zeros((t, 100, 120, 3), np.uint8), landmarks=given, sigma=0.0)
    assert track.missing == [0, 3, 4, 7] and np.isnan(track.raw[3]).all()
    truth = np.stack([ffhq_quad(lm) for lm in lms])
    np.testing.assert_allclose(track.quads[1:7], truth[1:7], atol=1e-9)  # linear motion: interpolation is exact
    np.testing.assert_allclose(track.quads[0], truth[1])  # held at the clip's ends
    np.testing.assert_allclose(track.quads[7], truth[6])

    def detector(frame):  # a callable detector: frame 2 has no face (None), frame 5 raises like dlib does
        i = int(frame[0, 0, 0])
        if i == 2:
            return None
        if i == 5:
            raise ImageInputError("no face was found in the image")
        return lms[i]

    frames = np.zeros((t, 100, 120, 3), np.uint8)
    frames[:, 0, 0, 0] = np.arange(t)
    by_call = track_faces(frames, landmarks=detector, sigma=0.0)
    assert by_call.missing == [2, 5]
    np.testing.assert_allclose(by_call.quads, truth, atol=1e-9)
    nan_rows = np.stack(lms)
    nan_rows[6] = np.nan  # an array [T, 68, 2] marks a missing face with NaN
    assert track_faces(frames, landmarks=nan_rows, sigma=0.0).missing == [6]


def test_a_clip_without_any_face_is_refused():
    frames = np.full((4, 60, 80, 3), 128, np.uint8)
    with pytest.raises(ImageInputError, match="no face was found in any frame"):
        track_faces(frames, landmarks=[None] * 4)
    with pytest.raises(ImageInputError, match="no face was found in any frame"):
        track_faces(frames)  # dlib's detector finds nothing in grey frames
    with pytest.raises(ImageInputError, match="no face was found in any frame"):
        fill_missing(np.zeros((3, 4, 2)), np.zeros(3, bool))
    with pytest.raises(InvalidArgumentError, match="one entry per frame"):
        track_faces(frames, landmarks=[None] * 3)
    with pytest.raises(ImageInputError, match="uint8"):
        track_faces(frames.astype(np.float32), landmarks=[None] * 4)


def test_the_crop_follows_ffhq_and_paste_back_restores_the_frame():
    frame, lm = _smooth_face(width=200, height=160, centre=(100.0, 80.0), angle_deg=20, eye_dist=16, eye_mouth=14)
    quad = ffhq_quad(lm)
    crop = crop_faces(frame[None], quad[None], 64)
    assert crop.shape == (1, 3, 64, 64)
    ffhq = np.asarray(align_from_landmarks(frame, lm, 64)).astype(np.float64)
    assert np.abs(ffhq - ((crop[0].permute(1, 2, 0) + 1) * 127.5).numpy()).mean() < 3.0  # same square, same turn

    back = paste_back(frame, crop[0], quad)
    mask = feather_mask(crop_coordinates(quad, (0, 0, 200, 160))).numpy()
    diff = np.abs(back.astype(int) - frame.astype(int))
    assert (mask == 0).sum() > 0 and diff[mask == 0].max() == 0  # outside the quad: bit for bit
    assert diff[mask > 0.99].mean() < 1.5  # inside: the frame again, up to two bilinear resamplings
    edited = paste_back(frame, -crop[0], quad)  # an 'edit' that changes every pixel of the crop
    change = np.abs(edited.astype(int) - frame.astype(int)).sum(axis=2)
    assert change[mask > 0.99].min() > 0 and change[mask == 0].max() == 0
    soft = (mask > 0.05) & (mask < 0.95)  # the seam is soft: a band of partial blending
    assert soft.sum() > 100 and 0 < change[soft].mean() < change[mask > 0.99].mean()


def test_large_faces_are_averaged_down_and_small_ones_pasted_after_a_shrink():
    frame, lm = _smooth_face(width=400, height=300, centre=(200.0, 150.0), eye_dist=60, eye_mouth=50)
    quad = ffhq_quad(lm)  # side 240 px -> 64: sampled at 4 x 64 and averaged down
    crop = crop_faces(frame[None], quad[None], 64)
    ffhq = np.asarray(align_from_landmarks(frame, lm, 64)).astype(np.float64)
    assert np.abs(ffhq - ((crop[0].permute(1, 2, 0) + 1) * 127.5).numpy()).mean() < 2.0
    back = paste_clip(frame[None], crop, quad[None])[0]
    mask = feather_mask(crop_coordinates(quad, (0, 0, 400, 300))).numpy()
    assert np.abs(back.astype(int) - frame.astype(int))[mask > 0.99].mean() < 4.0  # 64 px carry less detail
    small, lm_small = _smooth_face(width=60, height=50, centre=(30.0, 25.0), eye_dist=5, eye_mouth=5)
    q_small = ffhq_quad(lm_small)  # side 20 px < 64 / 1.5: the crop is shrunk before warping
    c_small = crop_faces(small[None], q_small[None], 64)
    out = paste_back(small, c_small[0], q_small)
    m_small = feather_mask(crop_coordinates(q_small, (0, 0, 60, 50))).numpy()
    assert np.abs(out.astype(int) - small.astype(int))[m_small > 0.99].mean() < 6.0
    with pytest.raises(InvalidArgumentError, match="feather"):
        paste_back(frame, crop[0], quad, feather=0.8)
    with pytest.raises(InvalidArgumentError, match="quads must be finite"):
        crop_faces(frame[None], np.full((1, 4, 2), np.nan), 64)


def _toyfaces_in_a_frame(clip, box=(48, 24), size=(120, 160)):
    """Toyfaces frames ``[T, 3, 64, 64]`` drawn into a noisy background at ``box`` (x0, y0), and landmarks whose
    FFHQ square is exactly that 64 x 64 box (so the aligned crops are the toyfaces frames)."""
    from stylekit.images import to_uint8

    rng = np.random.default_rng(1)
    t = clip.shape[0]
    frames = rng.integers(0, 255, size=(t, *size, 3), dtype=np.uint8)
    x0, y0 = box
    frames[:, y0:y0 + 64, x0:x0 + 64] = to_uint8(clip)
    eye_mouth = 14.0  # |x| = 2 * 16 (eyes) beats 1.8 * 14: side 64; centre = eyes + 0.1 * eye_to_mouth
    lm = _landmarks((x0 + 31.5, y0 + 31.5 - 0.1 * eye_mouth), eye_dist=16.0, eye_mouth=eye_mouth)
    np.testing.assert_allclose(ffhq_quad(lm)[0], (x0 - 0.5, y0 - 0.5), atol=1e-9)
    return frames, [lm] * t


def test_edit_video_aligns_edits_and_pastes_back():
    import stylekit
    from stylekit.edit import Direction
    from stylekit.toyfaces.clips import make_clip
    from stylekit.video import edit_video

    G = stylekit.load_generator("toyfaces")
    clip, _ = make_clip("smile", frames=4, seed=5)
    frames, lms = _toyfaces_in_a_frame(clip)
    clip = torch.from_numpy(frames[:, 24:24 + 64, 48:48 + 64]).permute(0, 3, 1, 2).float() / 127.5 - 1  # as stored
    lms[2] = None  # a frame where the detector missed the face
    d = Direction(torch.nn.functional.normalize(torch.randn(G.w_dim, generator=torch.Generator().manual_seed(1)),
                                                dim=0), name="random")
    result = edit_video(G, frames, align=True, landmarks=lms, direction=d, strength=3.0, batch_size=4)
    plain = edit_video(G, clip, direction=d, strength=3.0, batch_size=4)
    assert result.complete and result.meta["frames_without_face"] == [2] and result.track.missing == [2]
    torch.testing.assert_close(result.source, clip, atol=1e-5, rtol=0)  # the aligned crops are the toyfaces frames
    torch.testing.assert_close(result.psnr, plain.psnr, atol=1e-3, rtol=0)
    full = result.edited_uint8()
    assert full.shape == frames.shape and full is result.full_frames
    outside = np.ones(frames.shape[1:3], bool)
    outside[24:24 + 64, 48:48 + 64] = False
    assert np.array_equal(full[:, outside], frames[:, outside])  # the background is untouched
    inner = (slice(None), slice(24 + 12, 24 + 52), slice(48 + 12, 48 + 52))
    from stylekit.images import to_uint8

    assert np.abs(full[inner].astype(int) - to_uint8(plain.edited)[:, 12:52, 12:52].astype(int)).mean() < 1.0
    with pytest.raises(ImageInputError, match="uint8"):
        edit_video(G, clip, align=True, landmarks=lms)


def test_a_stop_while_finding_faces_keeps_the_frames_reached():
    import stylekit
    from stylekit.toyfaces.clips import make_clip
    from stylekit.video import edit_video

    G = stylekit.load_generator("toyfaces")
    clip, _ = make_clip("turn", frames=6, seed=6)
    frames, lms = _toyfaces_in_a_frame(clip)
    seen = []

    def detector(frame):
        seen.append(1)
        return lms[0]

    result = edit_video(G, frames, align=True, landmarks=detector, batch_size=4, should_stop=lambda: len(seen) >= 3)
    assert len(seen) == 3 and len(result.track.found) == 3  # detection stopped after the third frame
    assert not result.complete and result.frames_done == 3 and result.full_frames.shape == (3, *frames.shape[1:])
