"""The renderer's primitives: colour ramps, anti-aliased coverage, compositing, signed distances.

Maps are ``[n, H, W]``; per-face scalars are ``[n, 1, 1]``; colours are ``[n, 3, 1, 1]`` (or
``[1, 3, 1, 1]`` constants). A signed distance is negative inside its shape, in frame units (the
image spans ``[-1, 1]``).
"""

from __future__ import annotations

import torch


def ramp(t: torch.Tensor, stops) -> torch.Tensor:
    """Piecewise-linear colour ramp. t: [n] in [0, 1] -> [n, 3, 1, 1]."""
    pos = torch.tensor([s[0] for s in stops], dtype=t.dtype, device=t.device)
    cols = torch.tensor([s[1] for s in stops], dtype=t.dtype, device=t.device)
    t = t.clamp(0.0, 1.0)
    idx = torch.searchsorted(pos[1:-1].contiguous(), t.contiguous(), right=True)
    t0, t1 = pos[idx], pos[idx + 1]
    w = ((t - t0) / (t1 - t0)).unsqueeze(1)
    col = cols[idx] * (1.0 - w) + cols[idx + 1] * w
    return col[:, :, None, None]


def const(rgb, like: torch.Tensor) -> torch.Tensor:
    """A constant colour ``(r, g, b)`` as ``[1, 3, 1, 1]`` with ``like``'s dtype and device."""
    return torch.tensor(rgb, dtype=like.dtype, device=like.device).view(1, 3, 1, 1)


def hsv_to_rgb(h: torch.Tensor, s: float, v: float) -> torch.Tensor:
    """h: [n] hue in turns -> [n, 3, 1, 1] RGB (smooth, differentiable in h)."""
    k = torch.tensor([5.0, 3.0, 1.0], dtype=h.dtype, device=h.device)
    kk = torch.remainder(k[None, :] + h[:, None] * 6.0, 6.0)
    f = v - v * s * torch.clamp(torch.minimum(kk, 4.0 - kk), 0.0, 1.0)
    return f[:, :, None, None]


def cover(d: torch.Tensor, pw: float) -> torch.Tensor:
    """Anti-aliased coverage of the region d < 0 (one pixel of width pw ramps 0 -> 1)."""
    return torch.clamp(0.5 - d / pw, 0.0, 1.0)


def soft(d: torch.Tensor, width: float) -> torch.Tensor:
    """A wide, smooth edge (shadows, blush): 1 deep inside, 0 outside, smoothstep over width."""
    t = torch.clamp(0.5 - d / width, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def blend(img: torch.Tensor, alpha: torch.Tensor, color: torch.Tensor) -> torch.Tensor:
    """Composite color (shape [n|1, 3, 1|H, 1|W]) over img [n, 3, H, W] with alpha [n, H, W]."""
    return torch.lerp(img, color.expand_as(img), alpha.unsqueeze(1))


def ellipse(x, y, rx, ry):
    """Approximate signed distance to an axis-aligned ellipse centred at the origin."""
    k0 = torch.sqrt((x / rx) ** 2 + (y / ry) ** 2 + 1e-12)
    k1 = torch.sqrt((x / rx ** 2) ** 2 + (y / ry ** 2) ** 2 + 1e-12)
    return k0 * (k0 - 1.0) / k1


def circle(x, y, r):
    """Signed distance to the circle of radius r centred at the origin."""
    return torch.sqrt(x * x + y * y + 1e-12) - r


def segment(x, y, ax, ay, bx, by, r):
    """Capsule of radius r around the segment (ax, ay)-(bx, by)."""
    px, py = x - ax, y - ay
    dx, dy = bx - ax, by - ay
    h = torch.clamp((px * dx + py * dy) / (dx * dx + dy * dy + 1e-12), 0.0, 1.0)
    return torch.sqrt((px - dx * h) ** 2 + (py - dy * h) ** 2 + 1e-12) - r


def parabola_band(x, y, half_w, sag, r):
    """Stroke of radius r along y = sag * (1 - (x/half_w)^2) for |x| <= half_w (ends rounded)."""
    xc = torch.clamp(x / half_w, -1.0, 1.0)
    fy = sag * (1.0 - xc * xc)
    slope = -2.0 * sag * xc / half_w
    dy = (y - fy) / torch.sqrt(1.0 + slope * slope)
    dx = x - xc * half_w
    return torch.sqrt(dx * dx + dy * dy + 1e-12) - r


def union(a, b):
    """The union of two shapes (minimum of their signed distances)."""
    return torch.minimum(a, b)


def intersect(a, b):
    """The intersection of two shapes (maximum of their signed distances)."""
    return torch.maximum(a, b)
