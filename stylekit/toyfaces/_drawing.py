"""The renderer's drawing steps: the scene a batch of attributes sets up, and one function per layer.

:func:`scene` turns the attribute tensors into everything the layers share (the pixel grid, the head
frame, the light, colours, and the head and hair outlines). :data:`LAYERS` then composites, back to
front, each ``step(img, scene) -> img`` on an image ``[n, 3, S, S]`` in ``[0, 1]``. The order of the
layers, and of the operations inside each, is the picture: change either and every shipped model
trained on these renders sees a different world (``tests/test_toyfaces_identity.py`` guards it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ._shapes import (blend, circle, const, cover, ellipse, hsv_to_rgb, intersect, parabola_band, ramp, segment,
                      soft, union)

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
_WHITE = (1.0, 1.0, 1.0)
_SIDES = (-1.0, 1.0)


@dataclass
class Scene:
    """What every layer of one batch shares. Maps ``[n, S, S]``, scalars ``[n, 1, 1]``, colours ``[n, 3, 1, 1]``."""

    n: int
    size: int
    pw: float                 # one pixel in frame units
    lw: float                 # stroke half-width (at least ~1 pixel)
    gx: torch.Tensor          # [1, 1, S] image x of the pixel centres
    gy: torch.Tensor          # [1, S, 1] image y
    lx: torch.Tensor          # toward the light, image frame
    ly: torch.Tensor
    px: torch.Tensor          # image frame shifted to the face centre (body: not rolled)
    py: torch.Tensor
    x: torch.Tensor           # head frame: shifted and rolled
    y: torch.Tensor
    hlx: torch.Tensor         # the light in the head frame
    hly: torch.Tensor
    yaw: torch.Tensor         # radians
    sy: torch.Tensor          # sin(yaw)
    t_yaw: torch.Tensor       # yaw / 30 degrees
    smile: torch.Tensor
    mouth_open: torch.Tensor
    eyes_open: torch.Tensor
    glasses: torch.Tensor
    beard: torch.Tensor
    hair_len: torch.Tensor
    skin: torch.Tensor        # colours
    hair: torch.Tensor
    bg: torch.Tensor
    fx: torch.Tensor          # face: x following the turn, jaw narrowing, signed distance
    jaw: torch.Tensor
    d_face: torch.Tensor
    hx: torch.Tensor          # hair: x of the hair (far side shows), cap ellipse and the box below it
    cap_rx: torch.Tensor
    cap_ry: torch.Tensor
    cap_cy: float
    half_w: torch.Tensor
    box_mid: torch.Tensor
    box_h: torch.Tensor
    d_hair_back: torch.Tensor
    mouth_x: torch.Tensor     # x of the mouth and of the eyes' centre line, moved by the turn
    eye_shift: torch.Tensor

    def shade(self, nx, ny, base, strength=1.0):
        """Cel-ish shading of a roughly spherical part: nx, ny in [-1, 1] across the part."""
        nz = torch.sqrt(torch.clamp(1.0 - nx * nx - ny * ny, 0.0, 1.0))
        lam = 0.8 * (nx * self.hlx + ny * self.hly) + 0.6 * nz
        band = torch.sigmoid((lam - 0.3) * 12.0)
        s = 0.62 + 0.20 * lam + 0.22 * band
        return base * (1.0 + strength * (s.unsqueeze(1) - 1.0))

    def squash(self, side: float) -> torch.Tensor:
        """Horizontal scale of the eye (or lens) on ``side``: the far one narrows as the head turns."""
        return 1.0 - 0.32 * side * self.t_yaw * (self.t_yaw * side > 0).to(torch.float32)


def scene(a: dict[str, torch.Tensor], n: int, size: int, device) -> Scene:
    """Attributes ``name -> [n]`` -> the :class:`Scene` of an ``size`` x ``size`` batch."""
    f32 = torch.float32
    pw = 2.0 / size
    coords = (torch.arange(size, device=device, dtype=f32) + 0.5) * pw - 1.0
    gy, gx = coords.view(1, size, 1), coords.view(1, 1, size)

    def per(name):  # [n, 1, 1]
        return a[name].view(n, 1, 1)

    roll = per("rotation") * (math.pi / 180.0)
    yaw = per("yaw") * (math.pi / 180.0)
    sy, t_yaw = torch.sin(yaw), per("yaw") / 30.0
    light = per("light_direction") * (math.pi / 180.0)
    lx, ly = torch.sin(light), -torch.cos(light)
    cx = per("position_x") * 2.0
    cy = per("position_y") * 2.0 + _FACE_CY
    hair_len = per("hair_length")

    red = a["red_hair"].view(n, 1, 1, 1)
    hair = ramp(a["hair_color"], _HAIR_STOPS) * (1 - red) + ramp(a["hair_color"], _RED_STOPS) * red

    # head frame: shift to the face centre, undo the roll (positive = counter-clockwise)
    px, py = gx - cx, gy - cy
    cr, sr = torch.cos(roll), torch.sin(roll)
    x = cr * px - sr * py
    y = sr * px + cr * py

    fx = x - 0.03 * t_yaw                          # the jaw follows the turn a little
    jaw = 1.0 - 0.16 * torch.clamp(y / _FACE_RY, 0.0, 1.0) ** 2   # narrower toward the chin
    return Scene(
        n=n, size=size, pw=pw, lw=max(_LINE, 0.6 * pw), gx=gx, gy=gy, lx=lx, ly=ly, px=px, py=py, x=x, y=y,
        hlx=cr * lx - sr * ly, hly=sr * lx + cr * ly, yaw=yaw, sy=sy, t_yaw=t_yaw,
        smile=per("smile"), mouth_open=per("mouth_open"), eyes_open=per("eyes_open"), glasses=per("glasses"),
        beard=per("beard"), hair_len=hair_len, skin=ramp(a["skin_tone"], _SKIN_STOPS), hair=hair,
        bg=hsv_to_rgb(a["background_hue"] * 0.8, 0.42, 0.90),
        fx=fx, jaw=jaw, d_face=ellipse(fx / jaw, y, _FACE_RX, _FACE_RY),
        mouth_x=x - _Z_MOUTH * sy, eye_shift=_Z_EYE * sy,
        **_hair_outline(x, y, t_yaw, hair_len),
    )


def _hair_outline(x, y, t_yaw, hair_len) -> dict:
    """The hair behind the head: a cap ellipse over a rounded box whose bottom follows the length."""
    hx = x + 0.06 * t_yaw                          # the back of the hair shows on the far side
    hair_bottom = 0.05 + 0.85 * hair_len
    cap_rx, cap_ry, cap_cy = 0.445 + 0.04 * hair_len, 0.555 + 0.03 * hair_len, -0.035
    d_cap = ellipse(hx, y - cap_cy, cap_rx, cap_ry)
    half_w = 0.43 + 0.09 * hair_len
    box_mid = (cap_cy + hair_bottom) * 0.5
    box_h = (hair_bottom - cap_cy) * 0.5
    qx, qy = hx.abs() - (half_w - 0.12), (y - box_mid).abs() - (box_h - 0.12)
    d_box = torch.sqrt(torch.clamp(qx, min=0) ** 2 + torch.clamp(qy, min=0) ** 2 + 1e-12) \
        + torch.clamp(torch.maximum(qx, qy), max=0) - 0.12
    return dict(hx=hx, cap_rx=cap_rx, cap_ry=cap_ry, cap_cy=cap_cy, half_w=half_w, box_mid=box_mid, box_h=box_h,
                d_hair_back=union(d_cap, d_box))


# ----------------------------------------------------------------------------------------------
# The layers, back to front: background(s) starts the image, then each of LAYERS draws over it.


def background(s: Scene) -> torch.Tensor:
    """Hue with a light gradient, and the cast shadow of head and hair. Returns ``[n, 3, S, S]``."""
    img = s.bg * (1.0 + 0.22 * (s.gx * s.lx + s.gy * s.ly)).unsqueeze(1)
    img = img.expand(s.n, 3, s.size, s.size).contiguous()
    off = 0.17
    sx_, sy_ = s.x + off * s.hlx, s.y + off * s.hly        # silhouette moved away from the light
    d_sil = union(ellipse(sx_, sy_ - s.cap_cy, s.cap_rx, s.cap_ry), ellipse(sx_, sy_, _FACE_RX, _FACE_RY))
    return blend(img, 0.34 * soft(d_sil, 0.12), const((0.05, 0.05, 0.12), img))


def body(img: torch.Tensor, s: Scene) -> torch.Tensor:
    """Neck and shirt (not rolled with the head: they live in the shifted frame)."""
    pw, lw, px, py = s.pw, s.lw, s.px, s.py
    neck_y = (py - 0.70).abs() - 0.40
    img = blend(img, cover(intersect(px.abs() - 0.15, neck_y), pw), const(_INK, img))
    img = blend(img, cover(intersect(px.abs() - 0.15 + lw, neck_y), pw), s.skin * 0.80)
    d_shirt = ellipse(px, py - 1.28, 0.86, 0.50)
    img = blend(img, cover(d_shirt, pw), const(_INK, img))
    shirt = s.shade(px / 0.86, (py - 1.28) / 0.5, const(_SHIRT, img), 0.6)
    return blend(img, cover(d_shirt + s.lw, pw), shirt)


def back_hair(img: torch.Tensor, s: Scene) -> torch.Tensor:
    """The hair behind the head, outlined."""
    hn_x, hn_y = s.hx / s.half_w, (s.y - s.box_mid) / (s.box_h + 0.3)
    hair_shaded = s.shade(hn_x, hn_y, s.hair, 0.8)
    img = blend(img, cover(s.d_hair_back, s.pw), const(_INK, img))
    return blend(img, cover(s.d_hair_back + s.lw, s.pw), hair_shaded)


def ears(img: torch.Tensor, s: Scene) -> torch.Tensor:
    """Both ears: the one away from the turn shows more, the other tucks behind the face."""
    for side in _SIDES:
        ex = side * (_FACE_RX + 0.005) - 0.045 * s.t_yaw
        d_ear = ellipse(s.x - ex, s.y - 0.02, 0.075, 0.105)
        img = blend(img, cover(d_ear, s.pw), const(_INK, img))
        img = blend(img, cover(d_ear + s.lw, s.pw), s.skin * 0.95)
        d_in = ellipse(s.x - ex - side * 0.012, s.y - 0.02, 0.03, 0.055)
        img = blend(img, 0.5 * cover(d_in, s.pw), s.skin * 0.7)
    return img


def face(img: torch.Tensor, s: Scene) -> torch.Tensor:
    """The face, cel-shaded, and the cheeks' blush (stronger when smiling)."""
    img = blend(img, cover(s.d_face, s.pw), const(_INK, img))
    face_col = s.shade(s.fx / _FACE_RX, (s.y + 0.05) / _FACE_RY, s.skin)
    img = blend(img, cover(s.d_face + s.lw, s.pw), face_col)
    inside_face = cover(s.d_face + s.lw, s.pw)
    blush_a = (0.12 + 0.18 * torch.clamp(s.smile, 0.0, 1.0)) * inside_face
    for side in _SIDES:
        bx = side * 0.255 + _Z_EYE * s.sy * (1.0 - 0.3 * side * s.t_yaw)
        d_b = ellipse(s.x - bx, s.y - 0.13, 0.075, 0.05)
        img = blend(img, blush_a * soft(d_b, 0.06), const(_BLUSH, img))
    return img


def beard(img: torch.Tensor, s: Scene) -> torch.Tensor:
    """Beard and moustache, in the hair colour, darker; faded in by the ``beard`` attribute."""
    fx, y = s.fx, s.y
    beard_line = 0.09 + 0.10 * (fx / _FACE_RX) ** 2 - 0.06 * (fx / _FACE_RX).abs()
    d_beard_area = intersect(ellipse(fx / s.jaw, y - 0.02, _FACE_RX + 0.025, _FACE_RY + 0.04), beard_line - y)
    d_mous = ellipse(s.mouth_x, y - (_MOUTH_Y - 0.06), _MOUTH_W + 0.03, 0.045)
    d_beard = union(d_beard_area, d_mous)
    beard_col = s.shade(fx / _FACE_RX, (y + 0.05) / _FACE_RY, s.hair * 0.85, 0.8)
    img = blend(img, s.beard * cover(d_beard, s.pw), const(_INK, img))
    return blend(img, s.beard * cover(d_beard + s.lw * 0.8, s.pw), beard_col)


def nose(img: torch.Tensor, s: Scene) -> torch.Tensor:
    """A shaded nose with a highlight on the lit side."""
    nose_x = s.x - _Z_NOSE * s.sy
    d_nose = ellipse(nose_x, s.y - _NOSE_Y, 0.045, 0.035)
    img = blend(img, 0.55 * cover(d_nose, s.pw), s.skin * 0.72)
    d_nose_hi = circle(nose_x + 0.012 - 0.012 * s.hlx, s.y - _NOSE_Y + 0.012, 0.014)
    return blend(img, 0.45 * cover(d_nose_hi, s.pw), const(_WHITE, img))


def mouth(img: torch.Tensor, s: Scene) -> torch.Tensor:
    """Lips curved by ``smile``; when ``mouth_open``, a dark opening with teeth and tongue."""
    pw, lw, mouth_x, mouth_open = s.pw, s.lw, s.mouth_x, s.mouth_open
    mw = _MOUTH_W * (1.0 - 0.12 * s.t_yaw.abs())
    sag = 0.085 * s.smile                     # positive sag: the centre dips, corners are up
    my = s.y - _MOUTH_Y - 0.5 * sag           # keep the mouth centred as it bends
    open_h = 0.10 * mouth_open
    upper = -open_h * 0.35                   # lip offsets at the centre (lens opening)
    lower = open_h * 1.0
    u = torch.clamp(mouth_x / mw, -1.0, 1.0)
    curve = sag * (1.0 - u * u)
    prof = 1.0 - u * u
    y_up = curve + upper * prof
    y_lo = curve + lower * prof
    d_open = intersect(intersect(y_up - my, my - y_lo), mouth_x.abs() - mw)
    d_lips = parabola_band(mouth_x, my, mw * 1.02, sag, lw * 1.9)
    img = blend(img, cover(d_lips, pw), s.skin * 0.45 + const(_LIP, img) * 0.45)
    d_closed = parabola_band(mouth_x, my, mw, sag, lw * 1.0)
    has_open = (mouth_open > 0.02).to(torch.float32)
    img = blend(img, cover(d_closed, pw), const(_INK, img))
    d_open_outline = d_open - lw * 0.9
    img = blend(img, has_open * cover(d_open_outline, pw), const(_LIP, img) * 0.7)
    img = blend(img, has_open * cover(d_open, pw), const(_MOUTH_IN, img))
    teeth = intersect(d_open, (my - (y_up + 0.036 * mouth_open * prof)))
    img = blend(img, has_open * cover(teeth, pw), const((0.97, 0.96, 0.93), img))
    tongue = intersect(d_open, ellipse(mouth_x, my - y_lo, mw * 0.45, 0.032 * mouth_open + 1e-3))
    return blend(img, has_open * cover(tongue, pw), const(_TONGUE, img))


def eyes(img: torch.Tensor, s: Scene) -> torch.Tensor:
    """Each eye (open, or closed to a lash arc as ``eyes_open`` falls) and its brow."""
    for side in _SIDES:
        squash = s.squash(side)
        ex = s.x - (side * _EYE_X * torch.cos(s.yaw) + s.eye_shift)
        ey = s.y - _EYE_Y
        img = _open_eye(img, s, ex, ey, squash)
        img = _closed_eye(img, s, ex, ey, 0.078 * squash)
        bx = s.x - (side * _EYE_X * torch.cos(s.yaw) + _Z_BROW * s.sy)
        d_brow = parabola_band(bx, s.y - _BROW_Y, 0.075 * squash, -0.022, 0.019)
        img = blend(img, cover(d_brow, s.pw), s.hair * 0.65)
    return img


def _open_eye(img, s: Scene, ex, ey, squash):
    """White, iris, pupil, highlight and upper lid line, faded in by ``eyes_open``."""
    pw, lw, eyes_open = s.pw, s.lw, s.eyes_open
    rx, ry = 0.078 * squash, 0.064
    d_white = ellipse(ex, ey, rx, ry)
    img = blend(img, eyes_open * cover(d_white, pw), const(_INK, img))
    img = blend(img, eyes_open * cover(d_white + lw * 0.7, pw), const((0.98, 0.98, 0.98), img))
    ix = ex - 0.02 * s.t_yaw
    d_iris = intersect(ellipse(ix, ey, 0.046 * squash, 0.048), d_white + lw * 0.7)
    img = blend(img, eyes_open * cover(d_iris, pw), const(_IRIS, img))
    d_pupil = ellipse(ix, ey, 0.024 * squash, 0.026)
    img = blend(img, eyes_open * cover(d_pupil, pw), const((0.03, 0.03, 0.03), img))
    d_hi = circle(ix + 0.013, ey + 0.016, 0.011)
    img = blend(img, eyes_open * 0.9 * cover(d_hi, pw), const(_WHITE, img))
    d_lid = parabola_band(ex, ey + ry * 0.55, rx * 1.08, -ry * 0.55, lw * 0.9)
    return blend(img, eyes_open * cover(d_lid, pw), const(_INK, img))


def _closed_eye(img, s: Scene, ex, ey, rx):
    """A downward lash arc with three lashes, faded in as ``eyes_open`` falls."""
    pw, lw, closed = s.pw, s.lw, 1.0 - s.eyes_open
    d_arc = parabola_band(ex, ey - 0.005, rx * 1.05, 0.035, lw * 1.05)
    img = blend(img, closed * cover(d_arc, pw), const(_INK, img))
    for k in (-0.5, 0.0, 0.5):
        lx0 = rx * k
        ly0 = 0.035 * (1.0 - k * k) - 0.005
        d_lash = segment(ex, ey, lx0, ly0, lx0 * 1.25, ly0 + 0.03, lw * 0.55)
        img = blend(img, closed * cover(d_lash, pw), const(_INK, img))
    return img


def glasses(img: torch.Tensor, s: Scene) -> torch.Tensor:
    """Tinted lenses, frames, temples toward the ears and the bridge; faded in by ``glasses``."""
    x, y, pw, t_yaw, on = s.x, s.y, s.pw, s.t_yaw, s.glasses
    lens_r = 0.112
    centres = []
    for side in _SIDES:
        squash = s.squash(side)
        gcx = side * _EYE_X * torch.cos(s.yaw) + s.eye_shift
        centres.append(gcx)
        gxl, gyl = (x - gcx) / squash, y - _EYE_Y
        d_lens = circle(gxl, gyl, lens_r)
        img = blend(img, on * 0.30 * cover(d_lens, pw), const(_LENS, img))
        d_ring = d_lens.abs() - 0.020
        img = blend(img, on * cover(d_ring * squash, pw), const(_FRAME, img))
        tx0 = gcx + side * lens_r * squash
        tx1 = side * (_FACE_RX + 0.03) - 0.045 * t_yaw
        d_temple = segment(x, y, tx0, _EYE_Y - 0.03, tx1, _EYE_Y - 0.015, 0.016)
        d_temple = intersect(d_temple, -d_lens)
        img = blend(img, on * cover(d_temple, pw), const(_FRAME, img))
    bl = centres[0] + lens_r * (1.0 - 0.32 * (-t_yaw).clamp(min=0))
    br = centres[1] - lens_r * (1.0 - 0.32 * t_yaw.clamp(min=0))
    d_bridge = parabola_band(x - (bl + br) * 0.5, y - (_EYE_Y - 0.02), (br - bl).abs() * 0.5 + 1e-3, -0.02, 0.016)
    return blend(img, on * cover(d_bridge, pw), const(_FRAME, img))


def front_hair(img: torch.Tensor, s: Scene) -> torch.Tensor:
    """The fringe, the side locks (from ``hair_length`` 0.15 up) and a parting highlight strand."""
    x, y, hx, hair_len = s.x, s.y, s.hx, s.hair_len
    fringe_y = -0.31 + 0.08 * hair_len + 0.04 * torch.abs(torch.sin((hx + 0.02) * 11.0)) \
        - 0.10 * (hx / s.cap_rx) ** 2
    d_fringe = intersect(ellipse(hx, y - s.cap_cy, s.cap_rx, s.cap_ry), y - fringe_y)
    lock_bottom = -0.15 + 0.75 * hair_len
    d_lock = None
    for side in _SIDES:
        # the lock on the far side of a turned head moves out, clear of the eye
        inner = 0.335 + 0.04 * (1.0 - hair_len) + 0.10 * torch.clamp(side * s.t_yaw, min=0.0)
        d_side = intersect(inner - side * x, y - lock_bottom)
        d_lock = d_side if d_lock is None else union(d_lock, d_side)
    d_lock = intersect(d_lock, ellipse(hx, y - s.box_mid, s.half_w, s.box_h + 0.2))
    lock_a = torch.clamp((hair_len - 0.15) / 0.2, 0.0, 1.0)
    d_front = union(d_fringe, d_lock + 0.5 * (1.0 - lock_a))
    img = blend(img, cover(d_front, s.pw), const(_INK, img))
    img = blend(img, cover(d_front + s.lw, s.pw), s.shade(hx / s.cap_rx, (y - s.cap_cy) / s.cap_ry, s.hair, 0.8))
    d_strand = parabola_band(hx + 0.12, y + 0.40, 0.16, 0.06, 0.012)
    return blend(img, 0.25 * cover(d_strand, s.pw), const(_WHITE, img))


#: The layers drawn over :func:`background`, back to front.
LAYERS = (body, back_hair, ears, face, beard, nose, mouth, eyes, glasses, front_hair)
