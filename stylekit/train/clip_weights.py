"""Reading and writing toyfaces CLIP weights for training: save a trained model, start from a file.

The file is safetensors with open_clip's own key names (so ``open_clip.create_model("toyfaces-clip",
pretrained=path)`` loads it) and the architecture in the metadata.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F

from ..checkpoints.tagged import read_tagged
from ..errors import InvalidArgumentError
from ..toyfaces.clip_model import MODEL_CONFIG, OPEN_CLIP_NAME

__all__ = ["save_clip_weights", "load_init_weights"]


def save_clip_weights(model: torch.nn.Module, path: str | os.PathLike, *, metadata: dict | None = None,
                      dtype: torch.dtype = torch.float16) -> Path:
    """Write the model's state dict as safetensors (floats as ``dtype``) with the config in the metadata.

    The keys are open_clip's, so ``open_clip.create_model("toyfaces-clip", pretrained=path)`` loads it.
    """
    from safetensors.torch import save_file

    state = {k: (v.detach().to(dtype) if v.is_floating_point() else v.detach()).contiguous().cpu()
             for k, v in model.state_dict().items()}
    meta = {"format": "stylekit-toyfaces-clip", "open_clip_name": OPEN_CLIP_NAME,
            "open_clip_config": json.dumps(MODEL_CONFIG)}
    for k, v in (metadata or {}).items():
        meta[k] = v if isinstance(v, str) else json.dumps(v)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


def _resized_grid(other: torch.Tensor, size: int) -> torch.Tensor:
    """An attention-pool positional embedding ``[1 + g*g, C]`` with its grid resized bicubically to
    ``[1 + size*size, C]`` (the class row kept)."""
    g_src = round((other.shape[0] - 1) ** 0.5)
    grid = other[1:].reshape(1, g_src, g_src, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(size, size), mode="bicubic", align_corners=False)
    return torch.cat([other[:1], grid.permute(0, 2, 3, 1).reshape(size * size, -1)])


def load_init_weights(model: torch.nn.Module, path: str | os.PathLike) -> list[str]:
    """Copy a toyfaces CLIP weights file into ``model`` (to fine-tune it, e.g. at a new input size).

    Every tensor must match by name and shape except the image tower's attention-pool positional
    embedding ``[1 + g*g, C]``, whose ``g x g`` grid is resized bicubically to the model's grid (the
    ResNet tower's grid is ``image_size / 32``). Returns the names of the resized tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidArgumentError(f"init weights {path} not found: give the path of a clip.safetensors file.")
    _, src = read_tagged(path, fmt=None, kind="toyfaces CLIP")
    dst = model.state_dict()
    missing = sorted(set(dst) - set(src))
    if missing:
        raise InvalidArgumentError(f"{path} is not a toyfaces CLIP weights file (missing {missing[:3]}...).")
    resized = []
    with torch.no_grad():
        for name, value in dst.items():
            other = src[name].to(value.dtype)
            if other.shape == value.shape:
                value.copy_(other)
            elif name.endswith("attnpool.positional_embedding") and other.shape[1] == value.shape[1]:
                value.copy_(_resized_grid(other, round((value.shape[0] - 1) ** 0.5)))
                resized.append(name)
            else:
                raise InvalidArgumentError(f"{path}: tensor {name} has shape {tuple(other.shape)}, the model "
                                           f"needs {tuple(value.shape)}; only the positional grid can be resized.")
    return resized
