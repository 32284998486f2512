"""StyleCLIP latent mapper: a small network, trained per prompt, that edits any code instantly.

Layout (StyleCLIP Sec. 5): the W+ rows are split into three groups that control coarse, medium and
fine detail, and each group has its own mapper, an MLP applied to each of its rows::

    coarse = rows [0, 4)   medium = rows [4, 8)   fine = rows [8, num_ws)     (StyleGAN2 1024: 4 / 4 / 10;
                                                                               a 64-px toyfaces G: 4 / 4 / 2)
    M_g(w) = Linear(LReLU(... Linear(PixelNorm(w))))      ``depth`` layers of w_dim -> w_dim
    w_hat  = w + step * M(w)                              (step = 0.1 as StyleCLIP)

Sizes come from the generator (``num_ws``, ``w_dim``); groups can be switched off (``groups=``), as
StyleCLIP's ``--no_coarse_mapper`` etc. Training (:func:`train_mapper`) samples fresh W codes every
step and minimises ``(1 - cos(CLIP(G(w_hat)), t)) + l2_weight * mean((w_hat - w)^2)`` (+ an optional
perceptual term between ``G(w_hat)`` and ``G(w)``, StyleCLIP's identity loss). The last layer starts
small (outputs of RMS 0.1), so an untrained mapper is close to the identity edit. The training
settings come from a named preset (:data:`stylekit.text.presets.MAPPER`, default ``"toyfaces"``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from ..checkpoints.tagged import read_tagged
from ..edit.layers import check_strength
from ..errors import CheckpointError, InvalidArgumentError
from ..latent import Latent, as_latent
from ..progress import no_progress
from ..validate import check_positive, check_steps
from .keys import generator_fingerprint
from .presets import DEFAULT_PRESET, FROM_PRESET, MapperPreset, resolve_preset
from .prompts import resolve_clip, text_target

__all__ = ["GROUPS", "mapper_groups", "LatentMapper", "train_mapper", "apply_mapper", "save_mapper", "load_mapper"]

GROUPS = ("coarse", "medium", "fine")
_SPLITS = (0, 4, 8)
_FORMAT = "stylekit-latent-mapper"


def mapper_groups(num_ws: int) -> dict[str, tuple[int, ...]]:
    """The W+ rows of each group for a generator with ``num_ws`` rows (empty groups are left out)."""
    bounds = list(_SPLITS) + [num_ws]
    out = {}
    for name, lo, hi in zip(GROUPS, bounds[:-1], bounds[1:]):
        rows = tuple(range(min(lo, num_ws), min(hi, num_ws))) if name != "fine" else tuple(range(min(lo, num_ws), num_ws))
        if rows:
            out[name] = rows
    return out


class _PixelNorm(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=-1, keepdim=True) + 1e-8)


def _mlp(w_dim: int, depth: int, out_scale: float = 0.1) -> torch.nn.Sequential:
    """PixelNorm + ``depth`` linear layers; hidden layers keep unit RMS (He init for leaky ReLU), the last
    one starts with outputs of RMS ``out_scale`` (so ``w_hat`` starts within ``step * out_scale`` of ``w``)."""
    layers: list[torch.nn.Module] = [_PixelNorm()]
    for i in range(depth):
        lin = torch.nn.Linear(w_dim, w_dim)
        with torch.no_grad():
            last = i == depth - 1
            torch.nn.init.kaiming_normal_(lin.weight, a=0.0 if last else 0.2, nonlinearity="leaky_relu")
            if last:
                lin.weight.mul_(out_scale / 2 ** 0.5)
            lin.bias.zero_()
        layers.append(lin)
        if i < depth - 1:
            layers.append(torch.nn.LeakyReLU(0.2))
    return torch.nn.Sequential(*layers)


class LatentMapper(torch.nn.Module):
    """Coarse/medium/fine mapper for W+ codes ``[N, num_ws, w_dim]``.

    Args:
        num_ws, w_dim: the generator's W+ shape.
        depth: linear layers per group mapper (StyleCLIP: 4).
        groups: the groups that are active (others leave their rows unchanged).
        step: ``w_hat = w + step * M(w)`` (StyleCLIP: 0.1).
    """

    def __init__(self, num_ws: int, w_dim: int, *, depth: int = 4, groups: Sequence[str] = GROUPS, step: float = 0.1):
        super().__init__()
        for name, value in (("num_ws", num_ws), ("w_dim", w_dim), ("depth", depth)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(f"{name} must be a positive integer, got {value!r}.")
        groups = tuple(groups)
        bad = [g for g in groups if g not in GROUPS]
        if bad or not groups:
            raise InvalidArgumentError(f"groups must be a non-empty subset of {GROUPS}, got {list(groups)}.")
        self.num_ws, self.w_dim, self.depth, self.step = num_ws, w_dim, depth, float(step)
        layout = mapper_groups(num_ws)
        self.rows = {g: layout[g] for g in GROUPS if g in groups and g in layout}
        if not self.rows:
            raise InvalidArgumentError(f"a generator with {num_ws} W+ rows has none in groups {list(groups)}; "
                                       f"its groups are {layout}.")
        self.mappers = torch.nn.ModuleDict({g: _mlp(w_dim, depth) for g in self.rows})

    @property
    def config(self) -> dict:
        return {"num_ws": self.num_ws, "w_dim": self.w_dim, "depth": self.depth, "groups": list(self.rows),
                "step": self.step}

    def offsets(self, ws: torch.Tensor) -> torch.Tensor:
        """``M(w)``: ``[N, num_ws, w_dim]``, zero on the rows of inactive groups."""
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise InvalidArgumentError(f"this mapper edits W+ codes [N, {self.num_ws}, {self.w_dim}], got "
                                       f"{list(ws.shape)}; it was trained for another generator.")
        parts = torch.zeros_like(ws)
        for g, rows in self.rows.items():
            idx = list(rows)
            parts[:, idx] = self.mappers[g](ws[:, idx])
        return parts

    def forward(self, ws: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        """``w + strength * step * M(w)``."""
        return ws + strength * self.step * self.offsets(ws)


def train_mapper(G, prompt, *, clip="toyfaces", preset=DEFAULT_PRESET, steps: int = FROM_PRESET,
                 batch_size: int = FROM_PRESET, lr: float = FROM_PRESET, l2_weight: float = FROM_PRESET,
                 perceptual_weight: float = 0.0, extractor=None, psi: float = 1.0,
                 groups: Sequence[str] = GROUPS, depth: int = 4, seed: int = 0, templates: Sequence[str] | None = None,
                 noise_mode: str = "const", progress=no_progress) -> tuple[LatentMapper, dict[str, list[float]]]:
    """Train a :class:`LatentMapper` that moves any code toward ``prompt``.

    Args:
        G: the generator (frozen; only the mapper learns).
        prompt: target text (or embedding ``[D]``).
        clip: a ClipModel or a CLIP name.
        preset: a name in :data:`~stylekit.text.presets.MAPPER` (``"toyfaces"``: 150 steps of 8 codes)
            or a :class:`MapperPreset`; it supplies ``steps``, ``batch_size``, ``lr`` and ``l2_weight``
            unless they are given.
        steps, batch_size, lr: the Adam loop (fresh random W codes, ``psi`` truncation, every step).
        l2_weight: weight of ``mean((w_hat - w)^2)`` (StyleCLIP: 0.8).
        perceptual_weight, extractor: optional ``extractor.distance(G(w_hat), G(w))`` term.
        groups, depth: the mapper layout (see :class:`LatentMapper`).
        progress: ``callback(step, total, message, **metrics)``; may raise ``Cancelled``.

    Returns: ``(mapper, history)`` with per-step ``'loss'``, ``'clip'``, ``'l2'`` lists; the mapper's
    ``meta`` dict records the prompt, CLIP and generator fingerprint.
    """
    settings = resolve_preset(MapperPreset, preset, steps=steps, batch_size=batch_size, lr=lr, l2_weight=l2_weight)
    steps = check_steps(settings.steps)
    lr = check_positive(settings.lr, "lr", allow_zero=False)
    l2_weight = check_positive(settings.l2_weight, "l2_weight")
    batch_size = settings.batch_size
    perceptual_weight = check_positive(perceptual_weight, "perceptual_weight")
    if perceptual_weight > 0 and extractor is None:
        raise InvalidArgumentError("perceptual_weight > 0 needs an extractor (see stylekit.invert.losses).")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be a positive integer, got {batch_size!r}.")
    clip = resolve_clip(clip, device=G.device)
    target = text_target(clip, prompt, templates)
    torch.manual_seed(seed)
    mapper = LatentMapper(G.num_ws, G.w_dim, depth=depth, groups=groups).to(G.device)
    opt = torch.optim.Adam(mapper.parameters(), lr=lr)
    history: dict[str, list[float]] = {"loss": [], "clip": [], "l2": []}
    for step in range(steps):
        ws = Latent.sample(G, batch_size, seed=seed * 100003 + step, psi=psi).ws(G)
        with torch.enable_grad():
            w_hat = mapper(ws)
            img = G.synthesis(w_hat, noise_mode=noise_mode)
            clip_loss = (1.0 - clip.encode_image(img) @ target).mean()
            l2 = F.mse_loss(w_hat, ws)
            loss = clip_loss + l2_weight * l2
            if perceptual_weight > 0:
                with torch.no_grad():
                    ref = G.synthesis(ws, noise_mode=noise_mode)
                loss = loss + perceptual_weight * extractor.distance(img, ref).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
        opt.step()
        history["loss"].append(float(loss.detach()))
        history["clip"].append(float(clip_loss.detach()))
        history["l2"].append(float(l2.detach()))
        progress(step + 1, steps, "mapper", loss=history["loss"][-1], clip=history["clip"][-1])
    mapper.eval().requires_grad_(False)
    mapper.meta = {"prompt": prompt if isinstance(prompt, str) else "", "clip_name": str(clip.name),
                   "fingerprint": generator_fingerprint(G), "steps": steps}
    return mapper, history


def apply_mapper(mapper: LatentMapper, latent, *, G=None, strength: float = 1.0) -> Latent:
    """Edit codes with a trained mapper: a ``'w+'`` Latent ``w + strength * step * M(w)`` (noise/generator kept).

    ``latent`` may be z (needs ``G``), w or w+; S codes cannot be mapped.
    """
    if not isinstance(mapper, LatentMapper):
        raise InvalidArgumentError(f"mapper must be a LatentMapper (train_mapper / load_mapper), got {type(mapper).__name__}.")
    strength = check_strength(strength)
    lat = as_latent(latent, G)
    if lat.space == "s":
        raise InvalidArgumentError("a latent mapper edits W/W+ codes, but this latent is in StyleSpace S; pass the W/W+ "
                                   "code it came from.")
    lat = lat.to_wplus(G)
    param = next(mapper.parameters())
    with torch.no_grad():
        ws = mapper(lat.tensor.to(param), strength)
    return lat.replace(space="w+", tensor=ws.to(lat.tensor))


def save_mapper(mapper: LatentMapper, path) -> Path:
    """Write a mapper as safetensors (weights; layout and provenance in the metadata)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().float().contiguous() for k, v in mapper.state_dict().items()}
    meta = {"format": _FORMAT, "config": json.dumps(mapper.config),
            "meta": json.dumps(getattr(mapper, "meta", {}), default=str)}
    save_file(state, str(path), metadata=meta)
    return path


def load_mapper(path, *, G=None, device="cpu") -> LatentMapper:
    """Read a mapper written by :func:`save_mapper`.

    Raises:
        CheckpointError: missing/unreadable file, not a mapper file, weights that do not fit the
            layout, or (when ``G`` is given) a mapper trained for another generator.
    """
    path = Path(os.fspath(path))
    meta, state = read_tagged(
        path, fmt=_FORMAT, kind="latent mapper",
        missing="no such mapper file; train one with stylekit.text.train_mapper(G, prompt).")
    try:
        cfg = json.loads(meta["config"])
        mapper = LatentMapper(int(cfg["num_ws"]), int(cfg["w_dim"]), depth=int(cfg["depth"]), groups=cfg["groups"],
                              step=float(cfg["step"]))
        mapper.load_state_dict(state)
    except (KeyError, ValueError, RuntimeError, InvalidArgumentError) as exc:
        raise CheckpointError(f"{path}: the mapper weights do not match their layout ({exc}).") from None
    mapper.meta = json.loads(meta.get("meta", "{}"))
    if G is not None:
        if (mapper.num_ws, mapper.w_dim) != (G.num_ws, G.w_dim):
            raise CheckpointError(f"{path}: this mapper edits W+ of {mapper.num_ws}x{mapper.w_dim} but the generator has "
                                  f"{G.num_ws}x{G.w_dim}; it was trained for another model.")
        fp = mapper.meta.get("fingerprint")
        if fp and fp != generator_fingerprint(G):
            raise CheckpointError(f"{path}: this mapper was trained for another generator (fingerprint {fp[:12]}...); "
                                  "train one for this generator with stylekit.text.train_mapper(G, prompt).")
    return mapper.eval().requires_grad_(False).to(device)
