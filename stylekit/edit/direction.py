"""``Direction``: one linear edit in W / W+, whatever method found it, and the one ``edit`` that applies it.

InterFaceGAN boundaries, GANSpace components, SeFa eigenvectors, StyleGAN3 rotation directions and
the ``.pt``/``.npy`` direction files published with e4e, PTI and InterFaceGAN are all a vector
(or one vector per W+ row) plus the rows they act on, so they share this type and this edit::

    w' = w + strength * scale * vector          on the chosen W+ rows, unchanged elsewhere

``scale`` converts the user's strength into W distance: 1 for unit-norm boundaries (strength is
then the distance moved in W), the component's standard deviation for GANSpace (strength in
sigmas).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import CheckpointError, InvalidArgumentError
from ..latent import Latent, as_latent  # noqa: F401  (as_latent is re-exported for the editing modules)
from .layers import check_strength, resolve_layers

__all__ = ["Direction", "as_latent", "edit", "signed_distance", "save_direction", "load_direction"]


@dataclass(eq=False)
class Direction:
    """A linear edit direction in W or W+.

    Attributes:
        vector: ``[w_dim]`` (the same vector added to every chosen W+ row) or ``[num_ws, w_dim]``
            (one vector per row). Fitted directions are unit-norm (per row when per-layer).
        layers: the W+ rows the edit applies to by default (None = all rows); ``edit(...,
            layers=...)`` overrides it.
        name: what it changes (``'glasses'``, ``'PC3'``, ``'rotation'``...).
        method: who found it (``'interfacegan'``, ``'ganspace'``, ``'sefa'``, ``'sg3-rotation'``, ``'file'``...).
        scale: W distance per unit of strength (1 = strength is a distance in W).
        offset: for a classifier boundary, the signed distance of ``w`` is ``w . vector + offset``
            (a float, or ``[num_ws]`` for per-layer boundaries); None for other directions.
        meta: free-form numbers about the fit (accuracy, sample counts, eigenvalues, seconds...).
    """

    vector: torch.Tensor
    layers: tuple[int, ...] | None = None
    name: str = ""
    method: str = ""
    scale: float = 1.0
    offset: float | torch.Tensor | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.vector, torch.Tensor) or self.vector.ndim not in (1, 2):
            raise InvalidArgumentError(f"a direction vector must be [w_dim] or [num_ws, w_dim], got "
                                       f"{tuple(self.vector.shape) if isinstance(self.vector, torch.Tensor) else type(self.vector).__name__}.")
        if not torch.isfinite(self.vector).all():
            raise InvalidArgumentError(f"direction {self.name or ''!r} contains NaN or infinite values; refit it.")
        if self.layers is not None:
            self.layers = tuple(int(i) for i in self.layers)
        self.scale = float(check_strength(self.scale, name="direction scale"))

    @property
    def w_dim(self) -> int:
        return self.vector.shape[-1]

    @property
    def per_layer(self) -> bool:
        """True when the vector holds one row per W+ layer."""
        return self.vector.ndim == 2

    def unit(self) -> "Direction":
        """A copy with the vector (each row, if per layer) scaled to unit norm and ``scale`` = 1."""
        v = self.vector / self.vector.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return Direction(v, self.layers, self.name, self.method, 1.0, None, dict(self.meta))

    def check_compatible(self, G) -> None:
        """Raise InvalidArgumentError when this direction does not fit ``G``'s W+ shape."""
        shape = tuple(self.vector.shape)
        if self.w_dim != G.w_dim or (self.per_layer and shape[0] != G.num_ws):
            want = f"[{G.w_dim}] or [{G.num_ws}, {G.w_dim}]"
            raise InvalidArgumentError(f"direction {self.name!r} has shape {list(shape)} but this generator needs {want} "
                                       f"({G.num_ws} W+ layers of {G.w_dim}); it was made for another model.")
        if self.layers is not None and self.layers and max(self.layers) >= G.num_ws:
            raise InvalidArgumentError(f"direction {self.name!r} acts on W+ layers up to {max(self.layers)} but this "
                                       f"generator has {G.num_ws} (0-{G.num_ws - 1}); pass layers=... to edit().")

    def to(self, device) -> "Direction":
        off = self.offset.to(device) if isinstance(self.offset, torch.Tensor) else self.offset
        return Direction(self.vector.to(device), self.layers, self.name, self.method, self.scale, off, dict(self.meta))


def _wplus(latent, G) -> Latent:
    lat = as_latent(latent, G)
    if lat.space == "s":
        raise InvalidArgumentError("this edit works in W/W+, but the latent is in StyleSpace S; apply it to the W/W+ "
                                   "code before converting to S, or use stylekit.edit.stylespace for S edits.")
    if lat.space == "z":
        if G is None and lat.generator is None:
            raise InvalidArgumentError("a Z latent must be mapped to W first; pass G or call lat.to_w(G).")
        lat = lat.to_w(G)
    return lat


def edit(latent, direction: Direction, strength, *, layers=None, G=None) -> Latent:
    """Move a code along ``direction``: ``w + strength * direction.scale * vector`` on the chosen rows.

    Args:
        latent: a :class:`Latent` in z (mapped with ``G``), w or w+ space, ``N`` codes.
        direction: a :class:`Direction` (``[w_dim]`` or ``[num_ws, w_dim]``).
        strength: a finite number, or an ``[N]`` tensor (one per code). Negative moves the other way.
        layers: W+ rows to change (see :func:`~stylekit.edit.layers.resolve_layers`); defaults to
            ``direction.layers``, i.e. all rows for most directions. Presets need ``G``.
        G: the generator (optional unless Z must be mapped or a preset named); used to check shapes.

    Returns: a new Latent: ``'w'`` when a W code moved on every row along one vector, else ``'w+'``.
    Noise maps and a tuned generator carried by ``latent`` are kept.
    """
    if not isinstance(direction, Direction):
        raise InvalidArgumentError(f"direction must be a stylekit.edit.Direction, got {type(direction).__name__}; "
                                   "load a file with load_direction(path) or fit one.")
    lat = _wplus(latent, G)
    ws = lat.tensor
    n, num_ws, w_dim = ws.shape
    if G is not None:
        direction.check_compatible(lat.generator if lat.generator is not None else G)
    if direction.w_dim != w_dim or (direction.per_layer and direction.vector.shape[0] != num_ws):
        raise InvalidArgumentError(f"direction {direction.name!r} has shape {list(direction.vector.shape)} but the latent "
                                   f"has {num_ws} W+ layers of {w_dim}; they come from different models.")
    rows = resolve_layers(G, layers if layers is not None else direction.layers, num_ws=num_ws)
    s = check_strength(strength, batch=n)
    s = (s.to(ws) if isinstance(s, torch.Tensor) else torch.tensor(s, dtype=ws.dtype, device=ws.device))
    s = s.reshape(-1, 1, 1) * direction.scale
    vec = direction.vector.to(device=ws.device, dtype=ws.dtype)
    delta = vec.expand(num_ws, w_dim) if vec.ndim == 1 else vec
    mask = torch.zeros(num_ws, 1, dtype=ws.dtype, device=ws.device)
    mask[list(rows)] = 1
    new = ws + s * (delta * mask).unsqueeze(0)
    keep_w = lat.space == "w" and not direction.per_layer and len(rows) == num_ws
    return lat.replace(space="w" if keep_w else "w+", tensor=new)


def signed_distance(latent, boundary: Direction, *, G=None) -> torch.Tensor:
    """Signed distance of each code to a classifier boundary: ``w . n + offset``.

    Returns ``[N]``; for a per-layer boundary, or a W+ code, the mean over ``boundary.layers``
    (all rows by default) of the per-row distances.
    """
    if boundary.offset is None:
        raise InvalidArgumentError(f"direction {boundary.name!r} is not a classifier boundary (it has no offset); "
                                   "only fitted InterFaceGAN boundaries have a signed distance.")
    ws = _wplus(latent, G).tensor
    rows = list(resolve_layers(G, boundary.layers, num_ws=ws.shape[1]))
    unit = boundary.unit().vector.to(ws)
    # the offset was stored for the vector as fitted; rescale it with the vector's norm
    norm = boundary.vector.norm(dim=-1).to(ws)
    offset = torch.as_tensor(boundary.offset, dtype=ws.dtype, device=ws.device) / norm
    if unit.ndim == 1:
        d = ws @ unit + offset  # [N, num_ws]
    else:
        d = (ws * unit.unsqueeze(0)).sum(-1) + offset.reshape(1, -1)
    return d[:, rows].mean(dim=1)


# ----------------------------------------------------------------------------------------------
# Files


def save_direction(direction: Direction, path) -> Path:
    """Write a direction: ``.npy`` (InterFaceGAN's layout: the vector as ``[1, w_dim]`` or ``[num_ws,
    w_dim]`` float32; nothing else is kept), ``.pt`` (a dict of tensors and strings, readable with
    ``torch.load(weights_only=True)``) or ``.safetensors`` (tensors + JSON metadata). Returns the path."""
    path = Path(path)
    suffix = path.suffix.lower()
    vec = direction.vector.detach().cpu().to(torch.float32)
    info = {"name": direction.name, "method": direction.method, "scale": direction.scale,
            "layers": None if direction.layers is None else list(direction.layers), "meta": _jsonable(direction.meta)}
    offset = direction.offset
    if suffix == ".npy":
        np.save(path, (vec.unsqueeze(0) if vec.ndim == 1 else vec).numpy())
    elif suffix in (".pt", ".pth"):
        blob = {"vector": vec, "info": json.dumps(info)}
        if offset is not None:
            blob["offset"] = torch.as_tensor(offset, dtype=torch.float32).detach().cpu()
        torch.save(blob, path)
    elif suffix == ".safetensors":
        from safetensors.torch import save_file

        tensors = {"vector": vec.contiguous()}
        if offset is not None:
            tensors["offset"] = torch.as_tensor(offset, dtype=torch.float32).detach().cpu().reshape(-1).contiguous()
        save_file(tensors, str(path), metadata={"stylekit_direction": json.dumps(info)})
    else:
        raise InvalidArgumentError(f"cannot save a direction as {suffix or 'a file without extension'!r}; use .npy, .pt "
                                   "or .safetensors.")
    return path


def _jsonable(meta: dict) -> dict:
    out = {}
    for k, v in meta.items():
        if isinstance(v, torch.Tensor):
            v = v.tolist()
        elif isinstance(v, np.ndarray):
            v = v.tolist()
        try:
            json.dumps(v)
        except TypeError:
            v = repr(v)
        out[str(k)] = v
    return out


def _from_array(arr: torch.Tensor, source: str) -> torch.Tensor:
    t = arr.detach().to(torch.float32).cpu()
    while t.ndim > 2 and t.shape[0] == 1:
        t = t[0]
    if t.ndim == 2 and t.shape[0] == 1:
        t = t[0]
    if t.ndim not in (1, 2) or t.numel() == 0:
        raise CheckpointError(f"{source}: a direction must be [w_dim], [1, w_dim] or [num_ws, w_dim], got "
                              f"{list(arr.shape)}.")
    if t.ndim == 2 and bool(torch.all(t == t[:1])):
        t = t[0]  # identical rows: a W direction stored per layer
    return t


def load_direction(path, *, G=None, name: str | None = None) -> Direction:
    """Read a direction file.

    Understands stylekit's own ``.pt``/``.safetensors``/``.npy``, InterFaceGAN's ``boundary.npy``
    (``[1, 512]``), and the ``.pt`` files e4e / PTI publish (plain tensors ``[1, 512]``, ``[512]`` or
    ``[18, 512]`` saved with ``torch.save``). ``.pt`` files are read with ``weights_only=True``: no
    code in them runs. A published vector keeps its stored length (``scale`` 1), so strengths mean
    what they mean in those projects (``w + factor * direction``).

    Args:
        path: the file.
        G: optional generator; the direction's shape is checked against it.
        name: a name for the direction (default: the file's stem).
    """
    path = Path(os.fspath(path))
    source = str(path)
    if not path.is_file():
        raise CheckpointError(f"{source}: no such direction file.")
    suffix = path.suffix.lower()
    info: dict = {}
    offset = None
    if suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise CheckpointError(f"{source}: not a readable numeric .npy array ({exc}).") from None
        if not np.issubdtype(arr.dtype, np.number):
            raise CheckpointError(f"{source}: holds {arr.dtype} values, not numbers.")
        vec = _from_array(torch.from_numpy(np.asarray(arr, dtype=np.float32)), source)
    elif suffix in (".pt", ".pth"):
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch raises many types for unreadable/unsafe pickles
            raise CheckpointError(f"{source}: cannot read it as a tensor file with torch.load(weights_only=True) "
                                  f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). Direction "
                                  "files must hold plain tensors.") from None
        if isinstance(blob, torch.Tensor):
            vec = _from_array(blob, source)
        elif isinstance(blob, dict) and isinstance(blob.get("vector"), torch.Tensor):
            vec = _from_array(blob["vector"], source) if blob["vector"].ndim != 2 else blob["vector"].float()
            info = json.loads(blob.get("info", "{}")) if isinstance(blob.get("info"), str) else {}
            offset = blob.get("offset")
        else:
            keys = sorted(blob) if isinstance(blob, dict) else type(blob).__name__
            raise CheckpointError(f"{source}: expected a tensor (or stylekit's dict with 'vector'), found {keys}. "
                                  "For GANSpace component files use stylekit.edit.ganspace.load_components.")
    elif suffix == ".safetensors":
        from ..checkpoints.tagged import read_tagged

        meta, tensors = read_tagged(path, fmt=None, kind="direction", missing="no such direction file.")
        keys = list(tensors)
        if "vector" in tensors:
            vec = tensors["vector"].float()
            vec = _from_array(vec, source) if vec.ndim != 2 else vec
        elif len(tensors) == 1:
            vec = _from_array(next(iter(tensors.values())), source)
        else:
            raise CheckpointError(f"{source}: expected a tensor named 'vector', found {keys}.")
        offset = tensors.get("offset")
        if meta.get("stylekit_direction"):
            info = json.loads(meta["stylekit_direction"])
    else:
        raise CheckpointError(f"{source}: unknown direction file type {suffix!r}; use .npy, .pt or .safetensors.")
    if isinstance(offset, torch.Tensor):
        offset = offset.float()
        offset = float(offset.reshape(-1)[0]) if offset.numel() == 1 else offset.reshape(-1)
    meta = dict(info.get("meta") or {})
    meta.setdefault("source", source)
    meta.setdefault("norm", float(vec.norm()) if vec.ndim == 1 else vec.norm(dim=-1).tolist())
    direction = Direction(vec, info.get("layers"), name or info.get("name") or path.stem,
                          info.get("method") or "file", float(info.get("scale", 1.0)), offset, meta)
    if G is not None:
        direction.check_compatible(G)
    return direction
