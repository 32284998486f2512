"""Files a batch job writes per item: latents as safetensors, images as PNG, each written atomically.

A latent file (``format`` ``stylekit-latent``) holds ``latent`` (``[N, num_ws, w_dim]`` for W / W+,
``[N, z_dim]`` for Z, or ``s.<i>`` ``[N, C_i]`` per style layer for S), optional ``noise.<i>`` maps
``[N or 1, 1, H, W]``, and metadata: ``space`` and ``record`` (the item's manifest line as JSON, so
a lost manifest line can be rebuilt from the file). A PTI item's tuned generator is stored beside it
as a weight delta (``deltas/<name>.safetensors``, float16 ``tuned - original`` per changed tensor).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..errors import CheckpointError, StylekitError
from ..latent import Latent

__all__ = ["save_latent_file", "load_latent_file", "save_png", "png_readable", "latent_readable", "FORMAT",
           "save_delta_file", "load_delta_file", "delta_readable"]

FORMAT = "stylekit-latent"
DELTA_FORMAT = "stylekit-pti-delta"


def save_latent_file(path, latent: Latent, *, record: dict | None = None, metadata: dict | None = None) -> Path:
    """Write ``latent`` (any space, with its noise maps) atomically; ``record`` is kept as JSON metadata."""
    from ..checkpoints.tagged import write_tagged

    if latent.space == "s":
        tensors = {f"s.{i}": t.detach().float().cpu() for i, t in enumerate(latent.tensor)}
    else:
        tensors = {"latent": latent.tensor.detach().float().cpu()}
    for i, n in enumerate(latent.noise or []):
        tensors[f"noise.{i}"] = n.detach().float().cpu()
    meta = {"format": FORMAT, "space": latent.space, **{k: str(v) for k, v in (metadata or {}).items()}}
    if record is not None:
        meta["record"] = json.dumps(record)
    return write_tagged(path, tensors, meta)


def load_latent_file(path) -> tuple[Latent, dict]:
    """``(Latent, metadata)`` from a file :func:`save_latent_file` wrote (``metadata['record']`` decoded)."""
    from ..checkpoints.tagged import read_tagged

    meta, tensors = read_tagged(path, fmt=FORMAT, kind="latent", missing="no such latent file.",
                                unreadable_advice="; delete it and run the job again")
    space = meta.get("space", "w+")
    if space == "s":
        keys = sorted((k for k in tensors if k.startswith("s.")), key=lambda k: int(k.split(".")[1]))
        value = [tensors[k] for k in keys]
    elif "latent" in tensors:
        value = tensors["latent"]
    else:
        raise CheckpointError(f"{path}: a latent file without a 'latent' tensor.")
    noise_keys = sorted((k for k in tensors if k.startswith("noise.")), key=lambda k: int(k.split(".")[1]))
    noise = [tensors[k] for k in noise_keys] or None
    out = dict(meta)
    if "record" in out:
        try:
            out["record"] = json.loads(out["record"])
        except json.JSONDecodeError:
            out.pop("record")
    return Latent(space, value, noise=noise), out


def latent_readable(path) -> dict | None:
    """The metadata of a readable latent file, else None (missing, torn or of another format)."""
    if not Path(path).is_file():
        return None
    try:
        return load_latent_file(path)[1]
    except StylekitError:
        return None


def save_png(path, image: torch.Tensor) -> Path:
    """Write ``image [1, 3, H, W]`` in ``[-1, 1]`` as PNG atomically."""
    from ..images import tensor_to_pil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tensor_to_pil(image[:1]).save(tmp, format="PNG")
    os.replace(tmp, path)
    return path


def png_readable(path) -> bool:
    """True when ``path`` is a complete, decodable image."""
    if not Path(path).is_file():
        return False
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
        return True
    except (OSError, SyntaxError, ValueError):
        return False


def save_delta_file(path, delta: dict[str, torch.Tensor]) -> Path:
    """Write a PTI weight delta (``{name: tuned - original}``) atomically."""
    from ..checkpoints.tagged import write_tagged

    return write_tagged(path, {k: v.detach().cpu() for k, v in delta.items()}, {"format": DELTA_FORMAT})


def load_delta_file(path) -> dict[str, torch.Tensor]:
    from ..checkpoints.tagged import read_tagged

    return read_tagged(path, fmt=DELTA_FORMAT, kind="PTI weight delta", missing="no such delta file.")[1]


def delta_readable(path) -> bool:
    """True when ``path`` is a readable PTI weight delta."""
    if not Path(path).is_file():
        return False
    try:
        load_delta_file(path)
        return True
    except StylekitError:
        return False
