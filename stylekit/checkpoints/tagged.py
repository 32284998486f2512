"""The one safetensors reader: every stylekit file (generators, encoders, predictors, CLIP weights,
relevance tables, mappers, directions) is read through :func:`read_tagged`; :func:`write_tagged`
writes such a file atomically.

Stylekit's own side files carry a ``format`` tag in the metadata. :func:`read_tagged` opens a file,
checks the tag when one is asked for, and returns ``(metadata, tensors)``, raising
:class:`~stylekit.errors.CheckpointError` with a sentence saying what to do when the file is
missing, unreadable or of another kind. Nothing in the file is executed.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import CheckpointError


def read_tagged(path: str | os.PathLike, *, fmt: str | None, kind: str, missing: str = "no such file.",
                unreadable_advice: str = "", device: str = "cpu") -> tuple[dict[str, str], dict]:
    """Read a safetensors file; when ``fmt`` is given, its metadata ``format`` must equal it.

    Args:
        fmt: the required ``format`` tag, or None to accept any file (metadata may then be empty).
        kind: what the file is, for the wrong-format message (``"relevance"`` -> "is not a
            stylekit relevance file").
        missing: the message tail when the file does not exist ("no such ... file; make one with ...").
        unreadable_advice: appended to the message for a corrupt file (e.g. ``"; delete it and recompute"``).
        device: where the tensors are placed.

    Returns: ``(metadata dict, tensors dict name -> CPU tensor)``.
    """
    from safetensors import safe_open

    path = Path(os.fspath(path))
    if not path.is_file():
        raise CheckpointError(f"{path}: {missing}")
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types for corrupt files
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc}){unreadable_advice}.") from None
    if fmt is not None and meta.get("format") != fmt:
        raise CheckpointError(f"{path} is not a stylekit {kind} file (format {meta.get('format')!r}).")
    return meta, tensors


def write_tagged(path: str | os.PathLike, tensors: dict, metadata: dict[str, str]) -> Path:
    """Write ``tensors`` (name -> tensor, made contiguous) and string ``metadata`` as safetensors at ``path``,
    atomically (a ``.tmp`` file beside it, then renamed); parent folders are made. Returns the path."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return path
