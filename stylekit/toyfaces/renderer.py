"""A vectorised torch renderer of cartoon faces whose every pixel follows from known attributes.

Each face is built from signed-distance shapes (negative inside) turned into anti-aliased coverage
and composited in layers, back to front:

    background (hue + light gradient) and the head's cast shadow
    neck and shirt
    hair behind the head (its length sets how far it falls)
    ears, face (cel-shaded from the light direction), cheeks
    beard and moustache
    nose, mouth (curvature from smile; dark opening with teeth when open)
    eyes (white, iris, pupil, lid line; a lash arc when closed), brows
    glasses (tinted lenses, frames, bridge, temples)
    fringe and side locks

Geometry lives in a *head frame*: image coordinates span ``[-1, 1]`` (x right, y down); the head
frame is the image frame shifted by ``position_x/y`` and rolled by ``rotation`` around the face
centre. ``yaw`` is a pseudo-3D turn: features sitting in front of the head shift sideways in
proportion to their depth, the far eye narrows, one ear hides and the hair shows on the other side.

Everything is computed for the whole batch at once with broadcasting (``[n, H, W]`` maps), so 64
faces at 64x64 take a few tens of milliseconds on one CPU core. The renderer is differentiable in
the continuous attributes (binaries fade layers in), and the per-image ``seed`` only adds uniform
pixel noise of at most 1.5/255 (in ``[0, 1]`` units): an image is determined by its attributes.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import torch
from PIL import Image

from stylekit.errors import InvalidArgumentError

from .attributes import ATTRIBUTE_NAMES, default_attributes, validate_attributes

__all__ = ["render", "render_batch", "NOISE_AMPLITUDE"]

#: Peak amplitude of the seeded pixel noise, in [0, 1] colour units (about 1.5/255).
NOISE_AMPLITUDE = 1.5 / 255.0

_MIN_SIZE, _MAX_SIZE = 8, 2048

# Layout of the head frame (units: half the image size).
_FACE_CY = 0.02          # face centre, relative to the head position
_FACE_RX, _FACE_RY = 0.40, 0.50
_EYE_X, _EYE_Y = 0.165, -0.04
_BROW_Y = -0.165
_NOSE_Y = 0.11
_MOUTH_Y, _MOUTH_W = 0.275, 0.155
_LINE = 0.022            # outline half-width of the cartoon strokes

# Depth of each feature in front of the head's vertical axis (sets how far yaw moves it).
_Z_EYE, _Z_BROW, _Z_NOSE, _Z_MOUTH = 0.30, 0.30, 0.46, 0.34

_SKIN_STOPS = ((0.0, (1.00, 0.88, 0.79)), (0.35, (0.93, 0.73, 0.58)), (0.7, (0.70, 0.47, 0.31)),
               (1.0, (0.38, 0.24, 0.16)))
_HAIR_STOPS = ((0.0, (0.09, 0.08, 0.08)), (0.3, (0.28, 0.17, 0.10)), (0.55, (0.55, 0.37, 0.20)),
               (0.8, (0.87, 0.72, 0.40)), (1.0, (0.97, 0.93, 0.78)))
_RED_STOPS = ((0.0, (0.45, 0.11, 0.06)), (0.5, (0.80, 0.28, 0.09)), (1.0, (0.99, 0.56, 0.26)))
_SHIRT = (0.30, 0.33, 0.42)
_INK = (0.13, 0.09, 0.09)
_FRAME = (0.08, 0.08, 0.10)
_LENS = (0.80, 0.90, 1.00)
_IRIS = (0.30, 0.19, 0.11)
_MOUTH_IN = (0.30, 0.05, 0.08)
_LIP = (0.62, 0.22, 0.22)
_TONGUE = (0.85, 0.38, 0.42)
_BLUSH = (0.95, 0.45, 0.45)


# ----------------------------------------------------------------------------------------------
# Small helpers: colour ramps, coverage, signed distances. Maps are [n, H, W]; per-face scalars
# are [n, 1, 1]; colours are [n, 3, 1, 1] (or [1, 3, 1, 1] constants).


def _ramp(t: torch.Tensor, stops) -> torch.Tensor:
    """Piecewise-linear colour ramp. t: [n] in [0, 1] -> [n, 3, 1, 1]."""
    pos = torch.tensor([s[0] for s in stops], dtype=t.dtype, device=t.device)
    cols = torch.tensor([s[1] for s in stops], dtype=t.dtype, device=t.device)
    t = t.clamp(0.0, 1.0)
    idx = torch.searchsorted(pos[1:-1].contiguous(), t.contiguous(), right=True)
    t0, t1 = pos[idx], pos[idx + 1]
    w = ((t - t0) / (t1 - t0)).unsqueeze(1)
    col = cols[idx] * (1.0 - w) + cols[idx + 1] * w
    return col[:, :, None, None]


def _const(rgb, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(rgb, dtype=like.dtype, device=like.device).view(1, 3, 1, 1)


def _hsv_to_rgb(h: torch.Tensor, s: float, v: float) -> torch.Tensor:
    """h: [n] hue in turns -> [n, 3, 1, 1] RGB (smooth, differentiable in h)."""
    k = torch.tensor([5.0, 3.0, 1.0], dtype=h.dtype, device=h.device)
    kk = torch.remainder(k[None, :] + h[:, None] * 6.0, 6.0)
    f = v - v * s * torch.clamp(torch.minimum(kk, 4.0 - kk), 0.0, 1.0)
    return f[:, :, None, None]


def _cover(d: torch.Tensor, pw: float) -> torch.Tensor:
    """Anti-aliased coverage of the region d < 0 (one pixel of width pw ramps 0 -> 1)."""
    return torch.clamp(0.5 - d / pw, 0.0, 1.0)


def _soft(d: torch.Tensor, width: float) -> torch.Tensor:
    """A wide, smooth edge (shadows, blush): 1 deep inside, 0 outside, smoothstep over width."""
    t = torch.clamp(0.5 - d / width, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _blend(img: torch.Tensor, alpha: torch.Tensor, color: torch.Tensor) -> torch.Tensor:
    """Composite color (shape [n|1, 3, 1|H, 1|W]) over img [n, 3, H, W] with alpha [n, H, W]."""
    return torch.lerp(img, color.expand_as(img), alpha.unsqueeze(1))


def _ellipse(x, y, rx, ry):
    """Approximate signed distance to an axis-aligned ellipse centred at the origin."""
    k0 = torch.sqrt((x / rx) ** 2 + (y / ry) ** 2 + 1e-12)
    k1 = torch.sqrt((x / rx ** 2) ** 2 + (y / ry ** 2) ** 2 + 1e-12)
    return k0 * (k0 - 1.0) / k1


def _circle(x, y, r):
    return torch.sqrt(x * x + y * y + 1e-12) - r


def _segment(x, y, ax, ay, bx, by, r):
    """Capsule of radius r around the segment (ax, ay)-(bx, by)."""
    px, py = x - ax, y - ay
    dx, dy = bx - ax, by - ay
    h = torch.clamp((px * dx + py * dy) / (dx * dx + dy * dy + 1e-12), 0.0, 1.0)
    return torch.sqrt((px - dx * h) ** 2 + (py - dy * h) ** 2 + 1e-12) - r


def _parabola_band(x, y, half_w, sag, r):
    """Stroke of radius r along y = sag * (1 - (x/half_w)^2) for |x| <= half_w (ends rounded)."""
    xc = torch.clamp(x / half_w, -1.0, 1.0)
    fy = sag * (1.0 - xc * xc)
    slope = -2.0 * sag * xc / half_w
    dy = (y - fy) / torch.sqrt(1.0 + slope * slope)
    dx = x - xc * half_w
    return torch.sqrt(dx * dx + dy * dy + 1e-12) - r


def _union(a, b):
    return torch.minimum(a, b)


def _intersect(a, b):
    return torch.maximum(a, b)


# ----------------------------------------------------------------------------------------------
# Attribute handling.


def _prepare(attributes: Mapping[str, object], device) -> tuple[dict[str, torch.Tensor], int]:
    """Validate, fill defaults, and return float32 tensors [n] on ``device`` plus n."""
    validate_attributes(attributes)  # names, finiteness, ranges, equal lengths
    n = None
    for value in attributes.values():
        if isinstance(value, torch.Tensor):
            if value.ndim == 1:
                n = value.shape[0]
        elif np.ndim(value) == 1:
            n = len(value)
    scalar_input = n is None
    n = 1 if scalar_input else n
    defaults = default_attributes()
    out: dict[str, torch.Tensor] = {}
    for name in ATTRIBUTE_NAMES:
        value = attributes.get(name, defaults[name])
        if isinstance(value, torch.Tensor):
            t = value.to(device=device, dtype=torch.float32)
        else:
            t = torch.as_tensor(np.asarray(value, dtype=np.float32), device=device)
        out[name] = t.reshape(-1).expand(n) if t.ndim == 0 else t
    return out, n


def _check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not (
            _MIN_SIZE <= size <= _MAX_SIZE):
        raise InvalidArgumentError(
            f"Render size must be an integer between {_MIN_SIZE} and {_MAX_SIZE} pixels, got {size!r}."
        )
    return int(size)


# ----------------------------------------------------------------------------------------------
# The renderer.


def render_batch(attributes: Mapping[str, object], size: int = 64,
                 seeds: Sequence[int] | np.ndarray | torch.Tensor | None = None,
                 device: str | torch.device = "cpu") -> torch.Tensor:
    """Render a batch of toyfaces.

    Args:
        attributes: attribute name -> array or tensor ``[n]`` (or a float, shared by all faces) in
            attribute units (see :data:`stylekit.toyfaces.ATTRIBUTES`). Missing attributes take
            the neutral values of :func:`default_attributes`. Binary attributes may be fractions
            in ``[0, 1]``: the feature fades in. Gradients flow to tensor inputs.
        size: output height and width in pixels (8..2048). Geometry is resolution independent.
        seeds: ``n`` integers seeding the tiny per-image pixel noise; ``None`` uses seed 0 for
            every face (what :func:`render` does by default).
        device: torch device to render on.

    Returns:
        float32 tensor ``[n, 3, size, size]`` in ``[-1, 1]``.

    Raises:
        InvalidArgumentError: unknown attribute (the message lists the valid names), value out of
            range or NaN, mismatched lengths, bad size or seed count.
    """
    size = _check_size(size)
    device = torch.device(device)
    a, n = _prepare(attributes, device)
    if seeds is None:
        seed_list = [0] * n
    else:
        seed_list = [int(s) for s in (seeds.tolist() if hasattr(seeds, "tolist") else seeds)]
        if len(seed_list) != n:
            raise InvalidArgumentError(
                f"render_batch got {len(seed_list)} seeds for {n} faces; give one seed per face."
            )
    if n == 0:
        return torch.zeros(0, 3, size, size, device=device)

    img = _draw(a, n, size, device)

    noise = torch.empty(n, 3, size, size)
    for i, s in enumerate(seed_list):
        g = torch.Generator().manual_seed(s)
        noise[i].uniform_(-NOISE_AMPLITUDE, NOISE_AMPLITUDE, generator=g)
    img = img + noise.to(device)
    return (img.clamp(0.0, 1.0) * 2.0 - 1.0).contiguous()


def render(attributes: Mapping[str, float], size: int = 64, seed: int = 0) -> Image.Image:
    """Render one toyface as an RGB PIL image of ``size`` x ``size`` (deterministic).

    ``attributes`` maps names to floats (missing ones take neutral defaults). The result is
    ``render_batch`` on one item, quantised to uint8: ``(x + 1) * 127.5`` rounded.
    """
    for name, value in attributes.items() if isinstance(attributes, Mapping) else ():
        if np.ndim(value) != 0:
            raise InvalidArgumentError(
                f"render() draws one face, so attribute {name!r} must be a single number; "
                f"use render_batch for arrays."
            )
    x = render_batch(attributes, size=size, seeds=[seed], device="cpu")[0]
    arr = ((x + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(np.ascontiguousarray(arr), mode="RGB")


def _draw(a: dict[str, torch.Tensor], n: int, size: int, device) -> torch.Tensor:
    """Compose the layers. Returns [n, 3, size, size] in [0, 1] (before noise)."""
    f32 = torch.float32
    pw = 2.0 / size  # one pixel in frame units
    lw = max(_LINE, 0.6 * pw)  # strokes stay at least ~1 pixel wide at tiny sizes
    coords = (torch.arange(size, device=device, dtype=f32) + 0.5) * pw - 1.0
    gy, gx = coords.view(1, size, 1), coords.view(1, 1, size)

    def per(name):  # [n, 1, 1]
        return a[name].view(n, 1, 1)

    # --- attributes -> scene parameters
    roll = per("rotation") * (math.pi / 180.0)
    yaw = per("yaw") * (math.pi / 180.0)
    sy, t_yaw = torch.sin(yaw), per("yaw") / 30.0
    light = per("light_direction") * (math.pi / 180.0)
    lx, ly = torch.sin(light), -torch.cos(light)          # toward the light, image frame
    cx = per("position_x") * 2.0
    cy = per("position_y") * 2.0 + _FACE_CY
    smile = per("smile")
    mouth_open = per("mouth_open")
    eyes_open = per("eyes_open")
    glasses = per("glasses")
    beard = per("beard")
    hair_len = per("hair_length")

    skin = _ramp(a["skin_tone"], _SKIN_STOPS)
    red = a["red_hair"].view(n, 1, 1, 1)
    hair = _ramp(a["hair_color"], _HAIR_STOPS) * (1 - red) + _ramp(a["hair_color"], _RED_STOPS) * red
    bg = _hsv_to_rgb(a["background_hue"] * 0.8, 0.42, 0.90)

    # --- head frame: shift to the face centre, undo the roll (positive = counter-clockwise).
    px, py = gx - cx, gy - cy
    cr, sr = torch.cos(roll), torch.sin(roll)
    x = cr * px - sr * py
    y = sr * px + cr * py
    # light direction expressed in the head frame (for shading head parts)
    hlx = cr * lx - sr * ly
    hly = sr * lx + cr * ly

    def shade(nx, ny, base, strength=1.0):
        """Cel-ish shading of a roughly spherical part: nx, ny in [-1, 1] across the part."""
        nz = torch.sqrt(torch.clamp(1.0 - nx * nx - ny * ny, 0.0, 1.0))
        lam = 0.8 * (nx * hlx + ny * hly) + 0.6 * nz
        band = torch.sigmoid((lam - 0.3) * 12.0)
        s = 0.62 + 0.20 * lam + 0.22 * band
        return base * (1.0 + strength * (s.unsqueeze(1) - 1.0))

    # --- shapes in the head frame
    face_sx = 0.03 * t_yaw                         # the jaw follows the turn a little
    fx = x - face_sx
    jaw = 1.0 - 0.16 * torch.clamp(y / _FACE_RY, 0.0, 1.0) ** 2   # narrower toward the chin
    d_face = _ellipse(fx / jaw, y, _FACE_RX, _FACE_RY)

    hx = x + 0.06 * t_yaw                          # the back of the hair shows on the far side
    hair_bottom = 0.05 + 0.85 * hair_len
    cap_rx, cap_ry, cap_cy = 0.445 + 0.04 * hair_len, 0.555 + 0.03 * hair_len, -0.035
    d_cap = _ellipse(hx, y - cap_cy, cap_rx, cap_ry)
    half_w = 0.43 + 0.09 * hair_len
    box_mid = (cap_cy + hair_bottom) * 0.5
    box_h = (hair_bottom - cap_cy) * 0.5
    qx, qy = hx.abs() - (half_w - 0.12), (y - box_mid).abs() - (box_h - 0.12)
    d_box = torch.sqrt(torch.clamp(qx, min=0) ** 2 + torch.clamp(qy, min=0) ** 2 + 1e-12) \
        + torch.clamp(torch.maximum(qx, qy), max=0) - 0.12
    d_hair_back = _union(d_cap, d_box)

    # --- 1. background: hue, light gradient, cast shadow of head + hair
    img = bg * (1.0 + 0.22 * (gx * lx + gy * ly)).unsqueeze(1)
    img = img.expand(n, 3, size, size).contiguous()
    off = 0.17
    sx_, sy_ = x + off * hlx, y + off * hly        # silhouette moved away from the light
    d_sil = _union(_ellipse(sx_, sy_ - cap_cy, cap_rx, cap_ry),
                   _ellipse(sx_, sy_, _FACE_RX, _FACE_RY))
    img = _blend(img, 0.34 * _soft(d_sil, 0.12), _const((0.05, 0.05, 0.12), img))

    # --- 2. body: neck and shirt (not rolled with the head: they live in the shifted frame)
    neck_y = (py - 0.70).abs() - 0.40
    img = _blend(img, _cover(_intersect(px.abs() - 0.15, neck_y), pw), _const(_INK, img))
    img = _blend(img, _cover(_intersect(px.abs() - 0.15 + lw, neck_y), pw), skin * 0.80)
    d_shirt = _ellipse(px, py - 1.28, 0.86, 0.50)
    img = _blend(img, _cover(d_shirt, pw), _const(_INK, img))
    shirt = shade(px / 0.86, (py - 1.28) / 0.5, _const(_SHIRT, img), 0.6)
    img = _blend(img, _cover(d_shirt + lw, pw), shirt)

    # --- 3. hair behind the head
    hn_x, hn_y = hx / half_w, (y - box_mid) / (box_h + 0.3)
    hair_shaded = shade(hn_x, hn_y, hair, 0.8)
    img = _blend(img, _cover(d_hair_back, pw), _const(_INK, img))
    img = _blend(img, _cover(d_hair_back + lw, pw), hair_shaded)

    # --- 4. ears: the ear away from the turn shows more, the other tucks behind the face
    for side in (-1.0, 1.0):
        ex = side * (_FACE_RX + 0.005) - 0.045 * t_yaw
        d_ear = _ellipse(x - ex, y - 0.02, 0.075, 0.105)
        img = _blend(img, _cover(d_ear, pw), _const(_INK, img))
        img = _blend(img, _cover(d_ear + lw, pw), skin * 0.95)
        d_in = _ellipse(x - ex - side * 0.012, y - 0.02, 0.03, 0.055)
        img = _blend(img, 0.5 * _cover(d_in, pw), skin * 0.7)

    # --- 5. face, cel-shaded
    img = _blend(img, _cover(d_face, pw), _const(_INK, img))
    face_col = shade(fx / _FACE_RX, (y + 0.05) / _FACE_RY, skin)
    img = _blend(img, _cover(d_face + lw, pw), face_col)
    inside_face = _cover(d_face + lw, pw)

    # cheeks blush (stronger when smiling)
    blush_a = (0.12 + 0.18 * torch.clamp(smile, 0.0, 1.0)) * inside_face
    for side in (-1.0, 1.0):
        bx = side * 0.255 + _Z_EYE * sy * (1.0 - 0.3 * side * t_yaw)
        d_b = _ellipse(x - bx, y - 0.13, 0.075, 0.05)
        img = _blend(img, blush_a * _soft(d_b, 0.06), _const(_BLUSH, img))

    # --- 6. beard and moustache (in the hair colour, darker)
    mouth_x = x - _Z_MOUTH * sy
    beard_line = 0.09 + 0.10 * (fx / _FACE_RX) ** 2 - 0.06 * (fx / _FACE_RX).abs()
    d_beard_area = _intersect(_ellipse(fx / jaw, y - 0.02, _FACE_RX + 0.025, _FACE_RY + 0.04),
                              beard_line - y)
    d_mous = _ellipse(mouth_x, y - (_MOUTH_Y - 0.06), _MOUTH_W + 0.03, 0.045)
    d_beard = _union(d_beard_area, d_mous)
    beard_col = shade(fx / _FACE_RX, (y + 0.05) / _FACE_RY, hair * 0.85, 0.8)
    img = _blend(img, beard * _cover(d_beard, pw), _const(_INK, img))
    img = _blend(img, beard * _cover(d_beard + lw * 0.8, pw), beard_col)

    # --- 7. nose
    nose_x = x - _Z_NOSE * sy
    d_nose = _ellipse(nose_x, y - _NOSE_Y, 0.045, 0.035)
    img = _blend(img, 0.55 * _cover(d_nose, pw), skin * 0.72)
    d_nose_hi = _circle(nose_x + 0.012 - 0.012 * hlx, y - _NOSE_Y + 0.012, 0.014)
    img = _blend(img, 0.45 * _cover(d_nose_hi, pw), _const((1.0, 1.0, 1.0), img))

    # --- 8. mouth: curvature from smile, opening from mouth_open
    mw = _MOUTH_W * (1.0 - 0.12 * t_yaw.abs())
    sag = 0.085 * smile                       # positive sag: the centre dips, corners are up
    my = y - _MOUTH_Y - 0.5 * sag             # keep the mouth centred as it bends
    open_h = 0.10 * mouth_open
    upper = -open_h * 0.35                   # lip offsets at the centre (lens opening)
    lower = open_h * 1.0
    u = torch.clamp(mouth_x / mw, -1.0, 1.0)
    curve = sag * (1.0 - u * u)
    prof = 1.0 - u * u
    y_up = curve + upper * prof
    y_lo = curve + lower * prof
    d_open = _intersect(_intersect(y_up - my, my - y_lo), mouth_x.abs() - mw)
    d_lips = _parabola_band(mouth_x, my, mw * 1.02, sag, lw * 1.9)
    img = _blend(img, _cover(d_lips, pw), skin * 0.45 + _const(_LIP, img) * 0.45)
    d_closed = _parabola_band(mouth_x, my, mw, sag, lw * 1.0)
    has_open = (mouth_open > 0.02).to(f32)
    img = _blend(img, _cover(d_closed, pw), _const(_INK, img))
    d_open_outline = d_open - lw * 0.9
    img = _blend(img, has_open * _cover(d_open_outline, pw), _const(_LIP, img) * 0.7)
    img = _blend(img, has_open * _cover(d_open, pw), _const(_MOUTH_IN, img))
    teeth = _intersect(d_open, (my - (y_up + 0.036 * mouth_open * prof)))
    img = _blend(img, has_open * _cover(teeth, pw), _const((0.97, 0.96, 0.93), img))
    tongue = _intersect(d_open, _ellipse(mouth_x, my - y_lo, mw * 0.45, 0.032 * mouth_open + 1e-3))
    img = _blend(img, has_open * _cover(tongue, pw), _const(_TONGUE, img))

    # --- 9. eyes and brows
    eye_shift = _Z_EYE * sy
    for side in (-1.0, 1.0):
        squash = 1.0 - 0.32 * side * t_yaw * (t_yaw * side > 0).to(f32)  # far eye narrows
        ex = x - (side * _EYE_X * torch.cos(yaw) + eye_shift)
        ey = y - _EYE_Y
        rx, ry = 0.078 * squash, 0.064
        d_white = _ellipse(ex, ey, rx, ry)
        # open: white, iris, pupil, highlight, upper lid line
        img = _blend(img, eyes_open * _cover(d_white, pw), _const(_INK, img))
        img = _blend(img, eyes_open * _cover(d_white + lw * 0.7, pw), _const((0.98, 0.98, 0.98), img))
        ix = ex - 0.02 * t_yaw
        d_iris = _intersect(_ellipse(ix, ey, 0.046 * squash, 0.048), d_white + lw * 0.7)
        img = _blend(img, eyes_open * _cover(d_iris, pw), _const(_IRIS, img))
        d_pupil = _ellipse(ix, ey, 0.024 * squash, 0.026)
        img = _blend(img, eyes_open * _cover(d_pupil, pw), _const((0.03, 0.03, 0.03), img))
        d_hi = _circle(ix + 0.013, ey + 0.016, 0.011)
        img = _blend(img, eyes_open * 0.9 * _cover(d_hi, pw), _const((1.0, 1.0, 1.0), img))
        d_lid = _parabola_band(ex, ey + ry * 0.55, rx * 1.08, -ry * 0.55, lw * 0.9)
        img = _blend(img, eyes_open * _cover(d_lid, pw), _const(_INK, img))
        # closed: a downward lash arc
        d_arc = _parabola_band(ex, ey - 0.005, rx * 1.05, 0.035, lw * 1.05)
        img = _blend(img, (1.0 - eyes_open) * _cover(d_arc, pw), _const(_INK, img))
        for k in (-0.5, 0.0, 0.5):
            lx0 = rx * k
            ly0 = 0.035 * (1.0 - k * k) - 0.005
            d_lash = _segment(ex, ey, lx0, ly0, lx0 * 1.25, ly0 + 0.03, lw * 0.55)
            img = _blend(img, (1.0 - eyes_open) * _cover(d_lash, pw), _const(_INK, img))
        # brow
        bx = x - (side * _EYE_X * torch.cos(yaw) + _Z_BROW * sy)
        d_brow = _parabola_band(bx, y - _BROW_Y, 0.075 * squash, -0.022, 0.019)
        img = _blend(img, _cover(d_brow, pw), hair * 0.65)

    # --- 10. glasses
    lens_r = 0.112
    centres = []
    for side in (-1.0, 1.0):
        squash = 1.0 - 0.32 * side * t_yaw * (t_yaw * side > 0).to(f32)
        gcx = side * _EYE_X * torch.cos(yaw) + eye_shift
        centres.append(gcx)
        gxl, gyl = (x - gcx) / squash, y - _EYE_Y
        d_lens = _circle(gxl, gyl, lens_r)
        img = _blend(img, glasses * 0.30 * _cover(d_lens, pw), _const(_LENS, img))
        d_ring = d_lens.abs() - 0.020
        img = _blend(img, glasses * _cover(d_ring * squash, pw), _const(_FRAME, img))
        # temple towards the ear
        tx0 = gcx + side * lens_r * squash
        tx1 = side * (_FACE_RX + 0.03) - 0.045 * t_yaw
        d_temple = _segment(x, y, tx0, _EYE_Y - 0.03, tx1, _EYE_Y - 0.015, 0.016)
        d_temple = _intersect(d_temple, -d_lens)
        img = _blend(img, glasses * _cover(d_temple, pw), _const(_FRAME, img))
    bl = centres[0] + lens_r * (1.0 - 0.32 * (-t_yaw).clamp(min=0))
    br = centres[1] - lens_r * (1.0 - 0.32 * t_yaw.clamp(min=0))
    d_bridge = _parabola_band(x - (bl + br) * 0.5, y - (_EYE_Y - 0.02), (br - bl).abs() * 0.5 + 1e-3,
                              -0.02, 0.016)
    img = _blend(img, glasses * _cover(d_bridge, pw), _const(_FRAME, img))

    # --- 11. fringe and side locks
    fringe_y = -0.31 + 0.08 * hair_len + 0.04 * torch.abs(torch.sin((hx + 0.02) * 11.0)) \
        - 0.10 * (hx / cap_rx) ** 2
    d_fringe = _intersect(_ellipse(hx, y - cap_cy, cap_rx, cap_ry), y - fringe_y)
    lock_bottom = -0.15 + 0.75 * hair_len
    d_lock = None
    for side in (-1.0, 1.0):
        # the lock on the far side of a turned head moves out, clear of the eye
        inner = 0.335 + 0.04 * (1.0 - hair_len) + 0.10 * torch.clamp(side * t_yaw, min=0.0)
        d_side = _intersect(inner - side * x, y - lock_bottom)
        d_lock = d_side if d_lock is None else _union(d_lock, d_side)
    d_lock = _intersect(d_lock, _ellipse(hx, y - box_mid, half_w, box_h + 0.2))
    lock_a = torch.clamp((hair_len - 0.15) / 0.2, 0.0, 1.0)
    d_front = _union(d_fringe, d_lock + 0.5 * (1.0 - lock_a))
    img = _blend(img, _cover(d_front, pw), _const(_INK, img))
    img = _blend(img, _cover(d_front + lw, pw), shade(hx / cap_rx, (y - cap_cy) / cap_ry, hair, 0.8))
    # a parting highlight strand
    d_strand = _parabola_band(hx + 0.12, y + 0.40, 0.16, 0.06, 0.012)
    img = _blend(img, 0.25 * _cover(d_strand, pw), _const((1.0, 1.0, 1.0), img))

    return img
