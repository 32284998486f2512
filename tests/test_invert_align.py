"""FFHQ-style alignment: the crop geometry from landmarks, rotation invariance, padding, no-face errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, ImageDraw

from stylekit.errors import ImageInputError, InvalidArgumentError
from stylekit.invert.align import align_face, align_from_landmarks, ffhq_quad, landmark_model_path


def _face(width=400, height=300, centre=(200.0, 150.0), angle_deg=0.0, eye_dist=60.0, eye_mouth=50.0):
    """A synthetic 'face' (red left eye, blue right eye, green mouth) and its 68 landmarks."""
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])

    def place(p):
        return np.asarray(centre) + rot @ np.asarray(p, dtype=np.float64)

    eye_l, eye_r = place((-eye_dist / 2, 0)), place((eye_dist / 2, 0))
    mouth_l, mouth_r = place((-20, eye_mouth)), place((20, eye_mouth))
    lm = np.tile(place((0, eye_mouth / 2)), (68, 1))
    for i in range(6):  # six points around each eye
        off = rot @ np.array([4 * math.cos(i * math.pi / 3), 4 * math.sin(i * math.pi / 3)])
        lm[36 + i] = eye_l + off
        lm[42 + i] = eye_r + off
    lm[36:42] += eye_l - lm[36:42].mean(axis=0)  # exact eye centres
    lm[42:48] += eye_r - lm[42:48].mean(axis=0)
    lm[48], lm[54] = mouth_l, mouth_r
    img = Image.new("RGB", (width, height), (200, 180, 160))
    draw = ImageDraw.Draw(img)
    for (x, y), colour in ((eye_l, (255, 0, 0)), (eye_r, (0, 0, 255)), ((mouth_l + mouth_r) / 2, (0, 160, 0))):
        draw.ellipse([x - 5, y - 5, x + 5, y + 5], fill=colour)
    return img, lm


def _centroid(arr, colour):
    dist = np.abs(arr.astype(np.float64) - np.array(colour)).sum(axis=2)
    ys, xs = np.nonzero(dist < 120)
    return xs.mean(), ys.mean()


def test_quad_geometry_follows_the_ffhq_recipe():
    _, lm = _face(eye_dist=60, eye_mouth=50)
    quad = ffhq_quad(lm)
    side = np.hypot(*(quad[3] - quad[0]))
    assert side == pytest.approx(4 * 60)  # 2 |x|, |x| = 2 |eye_to_eye| (it beats 1.8 |eye_to_mouth|)
    assert np.hypot(*(quad[1] - quad[0])) == pytest.approx(side)  # a square
    centre = quad.mean(axis=0)
    assert centre == pytest.approx(np.array([200.0, 150.0 + 0.1 * 50]))


def test_aligned_eyes_land_where_ffhq_puts_them():
    img, lm = _face()
    out = np.asarray(align_from_landmarks(img, lm, 128))
    assert out.shape == (128, 128, 3)
    (lx, ly), (rx, ry) = _centroid(out, (255, 0, 0)), _centroid(out, (0, 0, 255))
    assert lx / 128 == pytest.approx(0.375, abs=0.02) and rx / 128 == pytest.approx(0.625, abs=0.02)
    assert ly == pytest.approx(ry, abs=1.0)
    assert ly / 128 == pytest.approx(0.5 - 0.1 * 50 / 240, abs=0.02)


def test_alignment_undoes_rotation():
    upright, lm0 = _face()
    tilted, lm1 = _face(angle_deg=30)
    a = np.asarray(align_from_landmarks(upright, lm0, 96)).astype(np.float64)
    b = np.asarray(align_from_landmarks(tilted, lm1, 96)).astype(np.float64)
    for colour in ((255, 0, 0), (0, 0, 255), (0, 160, 0)):
        assert np.allclose(_centroid(a, colour), _centroid(b, colour), atol=1.5)


def test_face_near_the_border_is_padded():
    img, lm = _face(width=160, height=140, centre=(60.0, 50.0))
    out = align_from_landmarks(img, lm, 64)
    assert out.size == (64, 64)
    arr = np.asarray(out).astype(np.float64)
    assert np.allclose(_centroid(arr, (255, 0, 0)), (0.375 * 64, _centroid(arr, (0, 0, 255))[1]), atol=2.0)


def test_bad_arguments():
    img, lm = _face()
    with pytest.raises(InvalidArgumentError):
        ffhq_quad(lm[:5])
    with pytest.raises(InvalidArgumentError):
        align_from_landmarks(img, lm, 0)
    with pytest.raises(ImageInputError):
        ffhq_quad(np.zeros((68, 2)))


def test_no_face_found_raises_when_dlib_is_installed():
    pytest.importorskip("dlib", reason="dlib (pip install 'stylekit[align]') is not installed")
    if landmark_model_path() is None:
        pytest.skip("face-recognition-models (dlib's landmark model) is not installed")
    blank = Image.new("RGB", (200, 200), (128, 128, 128))
    with pytest.raises(ImageInputError, match="no face"):
        align_face(blank, 64)
