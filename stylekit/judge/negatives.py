"""Images the judge must reject as faces: the degenerate outputs a broken edit or inversion produces.

Every function maps a torch generator (and, where it destroys a face, a batch of face images) to a
batch ``[n, 3, S, S]`` in ``[-1, 1]``. :data:`KINDS` names them; :func:`negatives` draws a mix.

- ``flat``: one colour per image (grey and black included), sometimes with a faint linear ramp;
- ``noise``: white, uniform or smooth (low-frequency) colour noise;
- ``blur``: a face blurred with a Gaussian of sigma 2.5-6 px at 64 px (no part readable);
- ``scramble``: a face cut into a 2x2 to 8x8 grid of patches, shuffled;
- ``cutout``: a face with a box of 25-50% of its width in the middle filled with one colour
  (eyes, nose or mouth gone);
- ``drowned``: a face mixed with 55-90% noise.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["KINDS", "flat", "noise", "blur", "scramble", "cutout", "drowned", "negatives"]

KINDS = ("flat", "noise", "blur", "scramble", "cutout", "drowned")


def _rand(gen: torch.Generator, *shape) -> torch.Tensor:
    return torch.rand(*shape, generator=gen)


def flat(n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` single-colour images; a quarter grey/black/white, a third with a faint ramp."""
    colour = _rand(gen, n, 3, 1, 1) * 2 - 1
    grey = _rand(gen, n) < 0.25
    level = (torch.randint(0, 3, (n,), generator=gen).float() - 1).view(n, 1, 1, 1)  # -1, 0, 1
    colour = torch.where(grey.view(n, 1, 1, 1), level.expand(n, 3, 1, 1), colour)
    t = torch.linspace(-1, 1, size)
    ramp = (_rand(gen, n, 1, 1, 1) - 0.5) * 0.4 * t.view(1, 1, 1, size)
    ramp = torch.where(_rand(gen, n).view(n, 1, 1, 1) < 0.33, ramp, torch.zeros_like(ramp))
    return (colour + ramp).expand(n, 3, size, size).clamp(-1, 1).contiguous()


def noise(n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """White Gaussian, uniform or smooth colour noise."""
    kind = torch.randint(0, 3, (n,), generator=gen).view(n, 1, 1, 1)
    gauss = torch.randn(n, 3, size, size, generator=gen) * (0.2 + 0.8 * _rand(gen, n, 1, 1, 1))
    uniform = _rand(gen, n, 3, size, size) * 2 - 1
    low = int(torch.randint(3, 17, (1,), generator=gen))
    smooth = F.interpolate(torch.randn(n, 3, low, low, generator=gen) * 0.6, size=(size, size),
                           mode="bicubic", align_corners=False)
    return torch.where(kind == 0, gauss, torch.where(kind == 1, uniform, smooth)).clamp(-1, 1)


def blur(faces: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """``faces [n, 3, S, S]`` blurred with sigma 2.5-6 px (at 64 px; scaled with S)."""
    n, _, s, _ = faces.shape
    out = []
    for i in range(n):
        sigma = float(2.5 + 3.5 * _rand(gen, 1)) * s / 64.0
        r = int(3 * sigma) + 1
        t = torch.arange(-r, r + 1, dtype=faces.dtype)
        k = torch.exp(-0.5 * (t / sigma) ** 2)
        k = (k / k.sum()).to(faces.device)
        x = F.pad(faces[i:i + 1], (r, r, r, r), mode="replicate")
        x = F.conv2d(x, k.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
        out.append(F.conv2d(x, k.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3))
    return torch.cat(out)


def scramble(faces: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """``faces`` cut into a ``g x g`` grid (g in 2, 4, 8) of patches and shuffled (never left in place)."""
    n, c, s, _ = faces.shape
    out = []
    for i in range(n):
        g = (2, 4, 8)[int(torch.randint(0, 3, (1,), generator=gen))]
        p = s // g
        x = faces[i, :, :p * g, :p * g].reshape(c, g, p, g, p).permute(1, 3, 0, 2, 4).reshape(g * g, c, p, p)
        perm = torch.randperm(g * g, generator=gen)
        if bool((perm == torch.arange(g * g)).all()):
            perm = perm.roll(1)
        x = x[perm].reshape(g, g, c, p, p).permute(2, 0, 3, 1, 4).reshape(c, g * p, g * p)
        if g * p != s:
            x = F.interpolate(x[None], size=(s, s), mode="nearest")[0]
        out.append(x)
    return torch.stack(out)


def cutout(faces: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """``faces`` with a central box (25-50% of the side, centre within the middle 30%) filled with one colour:
    the image's mean colour, the colour at the box centre, or a random one."""
    n, _, s, _ = faces.shape
    out = faces.clone()
    for i in range(n):
        h = int(s * (0.25 + 0.25 * float(_rand(gen, 1))))
        w = int(s * (0.25 + 0.25 * float(_rand(gen, 1))))
        cy = int(s * (0.35 + 0.3 * float(_rand(gen, 1))))
        cx = int(s * (0.35 + 0.3 * float(_rand(gen, 1))))
        y0, x0 = max(0, cy - h // 2), max(0, cx - w // 2)
        choice = int(torch.randint(0, 3, (1,), generator=gen))
        if choice == 0:
            colour = faces[i].mean(dim=(1, 2))
        elif choice == 1:
            colour = faces[i, :, min(cy, s - 1), min(cx, s - 1)]
        else:
            colour = _rand(gen, 3).to(faces.device) * 2 - 1
        out[i, :, y0:y0 + h, x0:x0 + w] = colour.view(3, 1, 1)
    return out


def drowned(faces: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """``faces`` mixed with 55-90% noise."""
    n, _, s, _ = faces.shape
    a = (0.55 + 0.35 * _rand(gen, n, 1, 1, 1)).to(faces.device)
    return ((1 - a) * faces + a * noise(n, s, gen).to(faces.device)).clamp(-1, 1)


def negatives(faces: torch.Tensor, gen: torch.Generator, kinds: tuple[str, ...] = KINDS) -> torch.Tensor:
    """One negative per face in ``faces [n, 3, S, S]``, the kinds drawn evenly: ``[n, 3, S, S]``."""
    n, _, s, _ = faces.shape
    which = torch.randint(0, len(kinds), (n,), generator=gen)
    out = torch.empty_like(faces)
    for k, kind in enumerate(kinds):
        idx = (which == k).nonzero().flatten()
        if idx.numel() == 0:
            continue
        m = idx.numel()
        if kind == "flat":
            x = flat(m, s, gen)
        elif kind == "noise":
            x = noise(m, s, gen)
        else:
            x = {"blur": blur, "scramble": scramble, "cutout": cutout, "drowned": drowned}[kind](faces[idx], gen)
        out[idx] = x.to(out.device, out.dtype)
    return out
