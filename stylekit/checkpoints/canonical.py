"""stylekit's canonical checkpoint format: safetensors with the architecture in the metadata.

A file holds the generator's ``state_dict()`` (NVIDIA parameter names) and the metadata
``{"stylekit_format": "1", "arch": "stylegan2" | "stylegan3", "config": <JSON constructor kwargs>}``
plus optional free-form entries (``source``, ``model_card`` ...). Loading it executes nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import CheckpointError

FORMAT_VERSION = "1"


def save_generator(G, path: str | os.PathLike, *, extra_metadata: dict[str, str] | None = None) -> Path:
    """Write generator ``G`` to ``path`` (``.safetensors``) in the canonical format; returns the path."""
    from safetensors.torch import save_file

    path = Path(path)
    metadata = {"stylekit_format": FORMAT_VERSION, "arch": G.arch, "config": json.dumps(G.config, sort_keys=True)}
    for key, value in (extra_metadata or {}).items():
        metadata[str(key)] = str(value)
    state = {name: tensor.detach().to("cpu").contiguous() for name, tensor in G.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata=metadata)
    return path


def read_canonical(path: str | os.PathLike) -> tuple[str, dict, dict, dict]:
    """Read a canonical file: returns ``(arch, config, state_dict, metadata)`` (tensors on CPU)."""
    from .tagged import read_tagged

    metadata, state = read_tagged(path, fmt=None, kind="generator", unreadable_advice="; download or convert it again")
    if "arch" not in metadata or "config" not in metadata:
        raise CheckpointError(
            f"{path}: this safetensors file has no stylekit architecture metadata ('arch' and 'config'); "
            "convert the original checkpoint with `python -m stylekit convert IN OUT.safetensors`.")
    try:
        config = json.loads(metadata["config"])
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: the 'config' metadata is not valid JSON ({exc}).") from exc
    return metadata["arch"], config, state, metadata
