"""A small CNN that reads toyfaces attributes back from images.

It is stylekit's offline judge: edits of toyfaces GAN samples are scored by what this network sees
(did "add glasses" add glasses? did the smile change and nothing else?), and its penultimate
features give an offline perceptual feature space (for Fréchet distances between sets of images
and for feature-matching losses).

Architecture (input resized to 64x64):

    conv5x5/2  3 -> 24   (32x32)   BN SiLU
    conv3x3    24 -> 32            BN SiLU
    conv3x3/2  32 -> 48  (16x16)   BN SiLU
    conv3x3    48 -> 48            BN SiLU
    conv3x3/2  48 -> 64  (8x8)     BN SiLU
    conv3x3    64 -> 64            BN SiLU
    conv3x3/2  64 -> 64  (4x4)     BN SiLU
    flatten 1024 -> linear 128 SiLU        <- features(), [N, 128]
    linear 128 -> A                        <- forward(), [N, A] in ATTRIBUTES order

The flatten (not a global pool) keeps where things are, which position, rotation and yaw need.
``forward`` returns raw outputs: logits for binary attributes and unit-scale regressions (0..1 over
the attribute's range) for continuous ones; ``predict`` turns them into probabilities and
attribute units. About 0.28 M parameters, stored as float16 safetensors (~0.6 MB) with the config
in the metadata.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from stylekit.errors import CheckpointError, ImageInputError

from .attributes import ATTRIBUTES, ATTRIBUTE_NAMES

__all__ = ["AttributePredictor", "load_predictor", "save_predictor", "default_weights_path",
           "INPUT_SIZE"]

#: Images are resized to this resolution before the network sees them.
INPUT_SIZE = 64
_FORMAT = "stylekit.toyfaces.predictor"
_FORMAT_VERSION = "1"


def default_weights_path() -> Path:
    """Where the shipped predictor weights live inside the package."""
    return Path(__file__).resolve().parent / "weights" / "predictor.safetensors"


def _conv(cin: int, cout: int, k: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.SiLU(),
    )


class AttributePredictor(nn.Module):
    """Predict every toyfaces attribute from an image.

    Args:
        channels: widths of the seven conv layers (see the module docstring for the layout).
        feature_dim: width of the penultimate (feature) layer.
        attribute_names: output order; must be the current :data:`ATTRIBUTE_NAMES`.
    """

    def __init__(self, channels: tuple[int, ...] = (24, 32, 48, 48, 64, 64, 64),
                 feature_dim: int = 128,
                 attribute_names: tuple[str, ...] = ATTRIBUTE_NAMES):
        super().__init__()
        if tuple(attribute_names) != tuple(ATTRIBUTE_NAMES):
            raise CheckpointError(
                "This attribute predictor was built for a different attribute list "
                f"({', '.join(attribute_names)}); retrain it with "
                "`python -m stylekit.toyfaces.train_predictor`."
            )
        if len(channels) != 7:
            raise CheckpointError(f"AttributePredictor needs 7 channel widths, got {len(channels)}.")
        self.config = {"channels": list(channels), "feature_dim": int(feature_dim),
                       "attribute_names": list(attribute_names), "input_size": INPUT_SIZE}
        c = channels
        self.trunk = nn.Sequential(
            _conv(3, c[0], 5, 2),
            _conv(c[0], c[1], 3, 1),
            _conv(c[1], c[2], 3, 2),
            _conv(c[2], c[3], 3, 1),
            _conv(c[3], c[4], 3, 2),
            _conv(c[4], c[5], 3, 1),
            _conv(c[5], c[6], 3, 2),
        )
        spatial = INPUT_SIZE // 16
        self.fc = nn.Linear(c[6] * spatial * spatial, feature_dim)
        self.head = nn.Linear(feature_dim, len(ATTRIBUTES))
        self.register_buffer("binary_mask", torch.tensor(
            [a.kind == "binary" for a in ATTRIBUTES], dtype=torch.bool), persistent=False)
        self.register_buffer("low", torch.tensor([a.low for a in ATTRIBUTES]), persistent=False)
        self.register_buffer("high", torch.tensor([a.high for a in ATTRIBUTES]), persistent=False)

    # -- input handling
    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ImageInputError(
                f"The attribute predictor needs an image tensor [N, 3, H, W] in [-1, 1], got {shape}."
            )
        if images.shape[-2] < 8 or images.shape[-1] < 8:
            raise ImageInputError(
                f"Images of {images.shape[-2]}x{images.shape[-1]} are too small for the attribute "
                "predictor; give at least 8x8 pixels."
            )
        param = self.fc.weight
        x = images.to(device=param.device, dtype=param.dtype)
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                              align_corners=False, antialias=True)
        return x

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate features. images: [N, 3, H, W] in [-1, 1] -> [N, feature_dim]."""
        x = self.trunk(self._prepare(images))
        return F.silu(self.fc(x.flatten(1)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Raw outputs [N, A] in ATTRIBUTES order: binary logits, continuous unit-scale values."""
        return self.head(self.features(images))

    def outputs_to_attributes(self, raw: torch.Tensor) -> dict[str, torch.Tensor]:
        """Turn raw [N, A] outputs into a dict name -> [N]: binary probabilities in [0, 1],
        continuous values in attribute units (clamped to their range)."""
        unit = torch.where(self.binary_mask, torch.sigmoid(raw), raw.clamp(0.0, 1.0))
        values = torch.where(self.binary_mask, unit, self.low + unit * (self.high - self.low))
        return {name: values[:, j] for j, name in enumerate(ATTRIBUTE_NAMES)}

    def predict(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """images: [N, 3, H, W] in [-1, 1] (any size; resized to 64) -> dict name -> [N]:
        binary attributes as probabilities in [0, 1], continuous ones in attribute units."""
        return self.outputs_to_attributes(self(images))

    def predict_unit(self, images: torch.Tensor) -> torch.Tensor:
        """Like :meth:`predict` but as one [N, A] tensor in unit scale (binaries as probabilities),
        comparable with :func:`stylekit.toyfaces.attributes_to_unit`."""
        raw = self(images)
        return torch.where(self.binary_mask, torch.sigmoid(raw), raw.clamp(0.0, 1.0))


def save_predictor(model: AttributePredictor, path: str | Path, *,
                   metrics: dict | None = None, half: bool = True) -> Path:
    """Write weights (float16 by default) and config (+ optional metrics) to a safetensors file."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.detach().to("cpu", torch.float16) if half and v.is_floating_point()
                 else v.detach().cpu()).contiguous()
             for k, v in model.state_dict().items()}
    meta = {"format": _FORMAT, "format_version": _FORMAT_VERSION,
            "config": json.dumps(model.config)}
    if metrics is not None:
        meta["metrics"] = json.dumps(metrics)
    save_file(state, str(path), metadata=meta)
    return path


def load_predictor(device: str | torch.device = "cpu", *, path: str | Path | None = None
                   ) -> AttributePredictor:
    """Load the attribute predictor (the shipped weights unless ``path`` is given).

    Returns the model in eval mode, float32, parameters frozen (gradients still flow to inputs).

    Raises:
        CheckpointError: the file is missing or is not a toyfaces predictor file.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path) if path is not None else default_weights_path()
    if not path.is_file():
        raise CheckpointError(
            f"The toyfaces attribute predictor weights are missing ({path}). Reinstall stylekit "
            "or train them with `python -m stylekit.toyfaces.train_predictor`."
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises several types for corrupt files
        raise CheckpointError(f"Could not read the attribute predictor file {path}: {exc}. "
                              "Re-download or retrain it.") from exc
    if meta.get("format") != _FORMAT:
        raise CheckpointError(
            f"{path} is not a toyfaces attribute predictor file (format {meta.get('format')!r})."
        )
    config = json.loads(meta["config"])
    model = AttributePredictor(channels=tuple(config["channels"]),
                               feature_dim=config["feature_dim"],
                               attribute_names=tuple(config["attribute_names"]))
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"The attribute predictor file {path} does not match its config: "
                              f"{exc}") from exc
    model.requires_grad_(False)
    return model.eval().to(device)


def predictor_metrics(path: str | Path | None = None) -> dict:
    """The evaluation metrics stored in a predictor file's metadata ({} if none)."""
    from safetensors import safe_open

    path = Path(path) if path is not None else default_weights_path()
    if not path.is_file():
        raise CheckpointError(f"The toyfaces attribute predictor weights are missing ({path}).")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    return json.loads(meta.get("metrics", "{}"))
