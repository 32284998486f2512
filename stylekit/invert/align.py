"""FFHQ-style face alignment of real photos (the recipe NVIDIA used to build FFHQ).

From the 68 iBUG landmarks of a face (eye corners 36-47, outer mouth 48-59)::

    eye_left, eye_right = mean(lm[36:42]), mean(lm[42:48])
    eye_avg = (eye_left + eye_right) / 2,   eye_to_eye = eye_right - eye_left
    mouth_avg = (lm[48] + lm[54]) / 2,      eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - rot90(eye_to_mouth);  x *= max(2 |eye_to_eye|, 1.8 |eye_to_mouth|) / |x|
    y = rot90(x);  c = eye_avg + 0.1 eye_to_mouth
    quad = [c - x - y, c - x + y, c + x + y, c + x - y]        (top-left, bottom-left, bottom-right, top-right)

then: shrink the photo when the quad is much larger than the output, crop around the quad with a
10 % border, pad by reflection where the quad leaves the photo (blurring and fading the padding
towards the median colour, as FFHQ does), and map the quad onto the output square (bilinear quad
transform at 4x the output size, then a Lanczos resize).

Landmarks come from dlib's frontal face detector and 68-point shape predictor, from the optional
packages ``dlib-bin`` and ``face-recognition-models`` (``pip install 'stylekit[align]'``); pass
``landmarks=`` to use your own detector.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import registry, settings
from ..errors import ImageInputError, InvalidArgumentError, ModelNotFoundError, StylekitError

LANDMARK_MODEL = "shape_predictor_68_face_landmarks.dat"


def ffhq_quad(landmarks) -> np.ndarray:
    """The oriented crop square of the FFHQ recipe: ``[4, 2]`` corners (TL, BL, BR, TR) in pixel coordinates."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2) or not np.isfinite(lm).all():
        raise InvalidArgumentError(f"landmarks must be a finite [68, 2] array (iBUG 68-point layout), got shape {lm.shape}.")
    eye_left = lm[36:42].mean(axis=0)
    eye_right = lm[42:48].mean(axis=0)
    eye_avg = (eye_left + eye_right) * 0.5
    eye_to_eye = eye_right - eye_left
    mouth_avg = (lm[48] + lm[54]) * 0.5
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    norm = np.hypot(*x)
    if norm < 1e-6:
        raise ImageInputError("the face landmarks are degenerate (eyes and mouth coincide); use another photo.")
    x = x / norm * max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def align_from_landmarks(image, landmarks, size: int = 1024, *, enable_padding: bool = True):
    """Crop and rotate ``image`` (anything :func:`stylekit.images.open_image` takes) FFHQ-style -> RGB PIL ``size x size``."""
    from PIL import Image
    from scipy.ndimage import gaussian_filter

    from ..images import open_image

    size = _check_size(size)
    img = open_image(image)
    quad = ffhq_quad(landmarks)
    qsize = np.hypot(*(quad[3] - quad[0]))  # side length = 2 |x|

    shrink = int(np.floor(qsize / size * 0.5))
    if shrink > 1:
        rsize = (max(1, int(np.rint(img.width / shrink))), max(1, int(np.rint(img.height / shrink))))
        img = img.resize(rsize, Image.LANCZOS)
        quad = quad / shrink
        qsize = qsize / shrink

    border = max(int(np.rint(qsize * 0.1)), 3)
    crop = (int(np.floor(quad[:, 0].min())), int(np.floor(quad[:, 1].min())),
            int(np.ceil(quad[:, 0].max())), int(np.ceil(quad[:, 1].max())))
    crop = (max(crop[0] - border, 0), max(crop[1] - border, 0),
            min(crop[2] + border, img.width), min(crop[3] + border, img.height))
    if crop[2] <= crop[0] or crop[3] <= crop[1]:
        raise ImageInputError("the face lies outside the image; check the landmarks.")
    if crop[2] - crop[0] < img.width or crop[3] - crop[1] < img.height:
        img = img.crop(crop)
        quad = quad - np.array(crop[0:2], dtype=np.float64)

    pad = (int(np.floor(quad[:, 0].min())), int(np.floor(quad[:, 1].min())),
           int(np.ceil(quad[:, 0].max())), int(np.ceil(quad[:, 1].max())))
    pad = (max(-pad[0] + border, 0), max(-pad[1] + border, 0),
           max(pad[2] - img.width + border, 0), max(pad[3] - img.height + border, 0))
    if enable_padding and max(pad) > border - 4:
        pad = np.maximum(pad, int(np.rint(qsize * 0.3)))
        arr = np.asarray(img, dtype=np.float32)
        arr = np.pad(arr, ((pad[1], pad[3]), (pad[0], pad[2]), (0, 0)), mode="reflect")
        h, w, _ = arr.shape
        yy, xx, _ = np.ogrid[:h, :w, :1]
        with np.errstate(divide="ignore", invalid="ignore"):
            mask = np.maximum(1.0 - np.minimum(np.float32(xx) / max(pad[0], 1), np.float32(w - 1 - xx) / max(pad[2], 1)),
                              1.0 - np.minimum(np.float32(yy) / max(pad[1], 1), np.float32(h - 1 - yy) / max(pad[3], 1)))
        blur = qsize * 0.02
        arr += (gaussian_filter(arr, [blur, blur, 0]) - arr) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
        arr += (np.median(arr, axis=(0, 1)) - arr) * np.clip(mask, 0.0, 1.0)
        img = Image.fromarray(np.uint8(np.clip(np.rint(arr), 0, 255)), "RGB")
        quad = quad + np.array(pad[:2], dtype=np.float64)

    transform_size = 4 * size
    img = img.transform((transform_size, transform_size), Image.QUAD, tuple((quad + 0.5).flatten()), Image.BILINEAR)
    return img.resize((size, size), Image.LANCZOS)


def _check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or not 8 <= size <= 4096:
        raise InvalidArgumentError(f"size must be an integer between 8 and 4096 pixels, not {size!r}.")
    return size


def landmark_model_path() -> Path | None:
    """dlib's 68-point model: ``$STYLEKIT_DLIB_LANDMARKS``, else the registered ``dlib-68`` landmarks
    artifact (shipped by the ``face-recognition-models`` package); None when neither is installed."""
    override = settings.dlib_landmarks_override()
    if override is not None and override.is_file():
        return override
    try:
        return registry.artifact_path("dlib-68", "landmarks")
    except StylekitError:
        return None


_DLIB: dict = {}


def _dlib_models():
    if "detector" not in _DLIB:
        try:
            import dlib
        except ImportError:
            raise ModelNotFoundError("face alignment needs dlib: pip install 'stylekit[align]' (dlib-bin and "
                                     "face-recognition-models), or pass landmarks= from your own detector.") from None
        path = landmark_model_path()
        if path is None:
            raise ModelNotFoundError(f"dlib's {LANDMARK_MODEL} was not found: pip install face-recognition-models, or "
                                     "set STYLEKIT_DLIB_LANDMARKS to the file's path.")
        _DLIB["detector"] = dlib.get_frontal_face_detector()
        _DLIB["predictor"] = dlib.shape_predictor(str(path))
    return _DLIB["detector"], _DLIB["predictor"]


def detect_landmarks(image) -> np.ndarray:
    """68 landmarks ``[68, 2]`` (x, y pixels) of the largest face dlib finds; :class:`ImageInputError` if none."""
    from ..images import open_image

    detector, predictor = _dlib_models()
    arr = np.asarray(open_image(image), dtype=np.uint8)
    faces = detector(arr, 1)
    if len(faces) == 0:
        raise ImageInputError("no face was found in the image; use a photo with one clearly visible, roughly "
                              "frontal face (or pass landmarks= yourself).")
    face = max(faces, key=lambda r: r.width() * r.height())
    shape = predictor(arr, face)
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


def align_face(image, size: int = 1024, *, landmarks=None, enable_padding: bool = True):
    """Detect the largest face and align it FFHQ-style -> RGB PIL image ``size x size``.

    ``landmarks`` ``[68, 2]`` skips detection. Raises :class:`ImageInputError` when no face is found
    and :class:`ModelNotFoundError` when dlib or its landmark model is not installed.
    """
    _check_size(size)
    if landmarks is None:
        landmarks = detect_landmarks(image)
    return align_from_landmarks(image, landmarks, size, enable_padding=enable_padding)
