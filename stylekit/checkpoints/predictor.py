"""Attribute predictor files: load by registered name or path, save, read their stored metrics.

A predictor file is safetensors with ``format`` = :data:`~stylekit.networks.predictor.FORMAT` and a
``config`` holding the layer widths and the attribute table, so loading needs no world's code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..networks.predictor import FORMAT, FORMAT_VERSION, AttributePredictor
from .tagged import read_tagged, write_tagged

__all__ = ["load_predictor", "save_predictor", "predictor_metrics", "resolve_predictor_path"]


def save_predictor(model: AttributePredictor, path: str | os.PathLike, *, metrics: dict | None = None,
                   half: bool = True) -> Path:
    """Write weights (float16 by default) and the config with the attribute table (+ metrics) as safetensors."""
    state = {k: v.detach().to("cpu", torch.float16) if half and v.is_floating_point() else v.detach().cpu()
             for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": json.dumps(model.config)}
    if metrics is not None:
        meta["metrics"] = json.dumps(metrics)
    return write_tagged(path, state, meta)


def read_predictor_file(path: str | os.PathLike) -> tuple[dict, dict]:
    """``(metadata, tensors)`` of a predictor file, its format checked."""
    return read_tagged(path, fmt=FORMAT, kind="attribute predictor",
                       missing="no such attribute predictor file; pass a registered name such as 'toyfaces'.",
                       unreadable_advice="; re-download or retrain it")


def predictor_from_file(path: str | os.PathLike) -> AttributePredictor:
    """Build an :class:`AttributePredictor` from its file (float32, eval mode, parameters frozen)."""
    meta, state = read_predictor_file(path)
    config = json.loads(meta.get("config", "{}"))
    if "attributes" not in config:
        raise CheckpointError(f"{path}: this predictor file predates the attribute table in its metadata; "
                              "re-save it with stylekit.networks.predictor.save_predictor.")
    model = AttributePredictor(config["attributes"], channels=config["channels"], feature_dim=config["feature_dim"],
                               input_size=config.get("input_size", 64))
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except RuntimeError as exc:
        raise CheckpointError(f"The attribute predictor file {path} does not match its config: {exc}") from exc
    return model.requires_grad_(False).eval()


def resolve_predictor_path(spec: str | os.PathLike = "toyfaces") -> Path:
    """A predictor file path from a registered predictor name (``"toyfaces"``) or a path."""
    from .. import registry

    path = Path(os.fspath(spec)).expanduser()
    if path.is_file() or path.suffix == ".safetensors":
        return path
    return registry.artifact_path(str(spec), "predictor")


def load_predictor(spec: str | os.PathLike = "toyfaces", *, device: str | torch.device = "cpu") -> AttributePredictor:
    """Load an attribute predictor: a registered name (default the shipped toyfaces one) or a file path.

    Returns the model in eval mode, float32, parameters frozen (gradients still flow to inputs).

    Raises:
        ModelNotFoundError: an unknown name. CheckpointError: a missing, corrupt or foreign file.
    """
    return predictor_from_file(resolve_predictor_path(spec)).to(device)


def predictor_metrics(spec: str | os.PathLike = "toyfaces") -> dict:
    """The evaluation metrics stored in a predictor file's metadata (``{}`` if none)."""
    meta, _ = read_predictor_file(resolve_predictor_path(spec))
    return json.loads(meta.get("metrics", "{}"))
