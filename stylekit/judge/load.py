"""Judge files: safetensors with ``format`` = ``stylekit.judge``, the config (widths, attribute table) and the
held-out metrics in the metadata; registered as the artifact ``toyfaces`` of kind ``judge``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..checkpoints.tagged import read_tagged, write_tagged
from ..errors import CheckpointError
from .network import FORMAT, FORMAT_VERSION, Judge

__all__ = ["load_judge", "save_judge", "judge_metrics", "judge_path"]


def judge_path(spec: str | os.PathLike = "toyfaces") -> Path:
    """A judge file from a registered judge name (``"toyfaces"``) or a path."""
    from .. import registry

    path = Path(os.fspath(spec)).expanduser()
    if path.is_file() or path.suffix == ".safetensors":
        return path
    return registry.artifact_path(str(spec), "judge")


def save_judge(model: Judge, path: str | os.PathLike, *, metrics: dict | None = None) -> Path:
    """Write float16 weights, the config and ``metrics`` (JSON) to ``path`` atomically."""
    state = {k: v.detach().to("cpu", torch.float16) for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": json.dumps(model.config)}
    if metrics is not None:
        meta["metrics"] = json.dumps(metrics)
    return write_tagged(path, state, meta)


def _read(path: Path) -> tuple[dict, dict]:
    return read_tagged(path, fmt=FORMAT, kind="judge",
                       missing="no such judge file; the toyfaces judge ships in stylekit/toyfaces/weights/judge.safetensors "
                               "(retrain it with python -m stylekit.judge --out runs/judge).",
                       unreadable_advice="; retrain it with python -m stylekit.judge")


def load_judge(spec: str | os.PathLike = "toyfaces", *, device: str | torch.device = "cpu") -> Judge:
    """Load the held-out judge (float32, eval mode, parameters frozen; gradients still reach inputs).

    Raises:
        ModelNotFoundError: an unknown name. CheckpointError: a missing, corrupt or foreign file.
    """
    path = judge_path(spec)
    meta, state = _read(path)
    config = json.loads(meta.get("config", "{}"))
    try:
        model = Judge(config["attributes"], widths=config["widths"], feature_dim=config["feature_dim"],
                      input_size=config["input_size"])
        model.load_state_dict({k: v.float() for k, v in state.items()})
    except (KeyError, RuntimeError, TypeError) as exc:
        raise CheckpointError(f"The judge file {path} does not match its config: {exc}") from exc
    return model.requires_grad_(False).eval().to(device)


def judge_metrics(spec: str | os.PathLike = "toyfaces") -> dict:
    """The held-out metrics stored in a judge file (``{}`` if none)."""
    meta, _ = _read(judge_path(spec))
    return json.loads(meta.get("metrics", "{}"))
