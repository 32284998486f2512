"""Learned encoders: pSp / e4e (and ReStyle's 6-channel variant), sized by a config.

The architecture is pSp's ``GradualStyleEncoder`` / e4e's ``Encoder4Editing`` (Richardson et al.
2021; Tov et al. 2021), which share every parameter and differ only in how the heads are used::

    x [N, C_in, S, S] in [-1, 1]
      stem: conv3x3 (no bias) -> BatchNorm -> PReLU                         (input_layer)
      body: 4 stages of IR(-SE) bottleneck units, the first of each stage with stride 2
            c1 = end of stage 2 (S/4), c2 = end of stage 3 (S/8), c3 = end of stage 4 (S/16)
      feature pyramid: p2 = up(c3) + lateral_mid(c2), p1 = up(p2) + lateral_fine(c1)
      heads (map2style): stride-2 conv3x3 + LeakyReLU, log2(spatial) times, down to 1x1, then an
            equalised linear layer -> one w_dim vector; heads [0, coarse) read c3, [coarse, middle)
            read p2, [middle, num_ws) read p1.
    pSp ('psp'):  code_i = head_i(features)                                   [N, num_ws, w_dim]
    e4e ('e4e'):  code_i = head_0(c3) + (head_i(features) if i <= stage else 0)  (one base w + offsets)

The predicted codes are offsets from ``latent_avg`` (``start_from_latent_avg``): ``W+ = codes +
latent_avg``. ``progressive_stage`` (e4e) limits how many offsets are active, for progressive
training; it defaults to all of them.

Official checkpoints (``torch.save({'state_dict': {'encoder.*', 'decoder.*'}, 'latent_avg',
'opts'})``) are read with ``torch.load(weights_only=True)`` and their key names mapped by
:func:`official_to_stylekit_key`::

    input_layer.0 / .1 / .2                       -> stem.conv / stem.bn / stem.act
    body.{k}.shortcut_layer.0 / .1                -> body.{k}.shortcut.conv / .bn
    body.{k}.res_layer.0 / 1 / 2 / 3 / 4          -> body.{k}.bn_in / conv1 / act / conv2 / bn_out
    body.{k}.res_layer.5.fc1 / .fc2               -> body.{k}.se.fc1 / .fc2            (ir_se only)
    styles.{i}.convs.{2j}                         -> heads.{i}.convs.{j}
    styles.{i}.linear                             -> heads.{i}.linear
    latlayer1 / latlayer2                         -> lateral_mid / lateral_fine

The decoder (``decoder.*``, rosinality's StyleGAN2) goes through
:func:`stylekit.checkpoints.rosinality.convert_rosinality_state`.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import CheckpointError, InvalidArgumentError

# ----------------------------------------------------------------------------------------------
# Configs

#: The official pSp / e4e encoder (IR-SE-50 backbone, 256x256 input, 18 x 512 W+ for 1024x1024 FFHQ).
FFHQ_CONFIG = {
    "mode": "e4e", "in_channels": 3, "input_size": 256, "stem_channels": 64,
    "stages": [[64, 3], [128, 4], [256, 14], [512, 3]], "se": True, "se_reduction": 16,
    "num_ws": 18, "w_dim": 512, "head_channels": 512, "coarse_ind": 3, "middle_ind": 7,
}

#: The small encoder shipped for the toyfaces generator (64x64, 10 x 128 W+).
TOYFACES_CONFIG = {
    "mode": "e4e", "in_channels": 3, "input_size": 64, "stem_channels": 16,
    "stages": [[32, 1], [64, 2], [96, 2], [128, 2]], "se": True, "se_reduction": 8,
    "num_ws": 10, "w_dim": 128, "head_channels": 64, "coarse_ind": 4, "middle_ind": 8,
}

_CONFIG_KEYS = set(FFHQ_CONFIG)


def normalize_config(config: dict) -> dict:
    """Validate an encoder config (see :data:`FFHQ_CONFIG`) and return a complete, JSON-able copy."""
    if not isinstance(config, dict):
        raise InvalidArgumentError("an encoder config must be a dict like stylekit.invert.encoder.FFHQ_CONFIG.")
    unknown = set(config) - _CONFIG_KEYS
    if unknown:
        raise InvalidArgumentError(f"unknown encoder config keys {sorted(unknown)}; known: {sorted(_CONFIG_KEYS)}.")
    cfg = {**FFHQ_CONFIG, **config}
    cfg["stages"] = [[int(d), int(u)] for d, u in cfg["stages"]]
    if len(cfg["stages"]) != 4 or any(d < 1 or u < 1 for d, u in cfg["stages"]):
        raise InvalidArgumentError("encoder 'stages' must be 4 [depth, units] pairs with positive numbers.")
    if cfg["mode"] not in ("e4e", "psp"):
        raise InvalidArgumentError(f"encoder mode must be 'e4e' or 'psp', not {cfg['mode']!r}.")
    size = int(cfg["input_size"])
    if size < 16 or size & (size - 1):
        raise InvalidArgumentError(f"encoder input_size must be a power of two >= 16, got {size}.")
    if not 0 < cfg["coarse_ind"] <= cfg["middle_ind"] <= cfg["num_ws"]:
        raise InvalidArgumentError("encoder needs 0 < coarse_ind <= middle_ind <= num_ws.")
    for key in ("in_channels", "input_size", "stem_channels", "se_reduction", "num_ws", "w_dim", "head_channels",
                "coarse_ind", "middle_ind"):
        cfg[key] = int(cfg[key])
    cfg["se"] = bool(cfg["se"])
    return cfg


# ----------------------------------------------------------------------------------------------
# Layers


class EqualLinear(torch.nn.Module):
    """rosinality's ``EqualLinear`` (lr_mul 1, no activation): ``x @ (weight / sqrt(in)).T + bias``."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(out_features, in_features))
        self.bias = torch.nn.Parameter(torch.zeros(out_features))
        self.scale = 1.0 / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


class SqueezeExcite(torch.nn.Module):
    """Channel attention: ``x * sigmoid(fc2(relu(fc1(mean_hw(x)))))`` with bias-free 1x1 convs."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = torch.nn.Conv2d(channels, hidden, 1, bias=False)
        self.fc2 = torch.nn.Conv2d(hidden, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=[2, 3], keepdim=True)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))


class _ConvBN(torch.nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.conv = torch.nn.Conv2d(in_ch, out_ch, 1, stride, bias=False)
        self.bn = torch.nn.BatchNorm2d(out_ch)

    def forward(self, x):
        return self.bn(self.conv(x))


class BottleneckIR(torch.nn.Module):
    """ArcFace's IR unit (pSp ``bottleneck_IR[_SE]``): ``shortcut(x) + BN(conv(PReLU(conv(BN(x)))))[*SE]``.

    The second 3x3 conv carries the stride; the shortcut is a strided 1x1 conv + BN when the width
    changes, else plain subsampling (the official ``MaxPool2d(1, stride)``).
    """

    def __init__(self, in_ch: int, depth: int, stride: int, *, se: bool, se_reduction: int):
        super().__init__()
        self.stride = stride
        self.shortcut = _ConvBN(in_ch, depth, stride) if in_ch != depth else None
        self.bn_in = torch.nn.BatchNorm2d(in_ch)
        self.conv1 = torch.nn.Conv2d(in_ch, depth, 3, 1, 1, bias=False)
        self.act = torch.nn.PReLU(depth)
        self.conv2 = torch.nn.Conv2d(depth, depth, 3, stride, 1, bias=False)
        self.bn_out = torch.nn.BatchNorm2d(depth)
        self.se = SqueezeExcite(depth, se_reduction) if se else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        short = self.shortcut(x) if self.shortcut is not None else x[:, :, ::self.stride, ::self.stride]
        r = self.bn_out(self.conv2(self.act(self.conv1(self.bn_in(x)))))
        if self.se is not None:
            r = self.se(r)
        return r + short


class GradualStyleBlock(torch.nn.Module):
    """map2style head: ``log2(spatial)`` stride-2 conv3x3 + LeakyReLU(0.01) to 1x1, then EqualLinear."""

    def __init__(self, in_ch: int, channels: int, out_dim: int, spatial: int):
        super().__init__()
        num = max(1, int(round(math.log2(spatial))))
        self.convs = torch.nn.ModuleList(
            [torch.nn.Conv2d(in_ch if i == 0 else channels, channels, 3, 2, 1) for i in range(num)])
        self.linear = EqualLinear(channels, out_dim)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.01)
        return self.linear(x.reshape(x.shape[0], self.channels))


class StyleEncoder(torch.nn.Module):
    """pSp / e4e encoder: image ``[N, in_channels, S, S]`` in ``[-1, 1]`` -> codes ``[N, num_ws, w_dim]``.

    The codes are offsets from ``latent_avg`` (see :class:`LatentEncoder`). ``config``: see
    :data:`FFHQ_CONFIG`. Inputs of another size are resized to ``input_size`` (bilinear).
    """

    def __init__(self, config: dict):
        super().__init__()
        cfg = normalize_config(config)
        self.config = cfg
        stem = cfg["stem_channels"]
        self.stem = torch.nn.Sequential()
        self.stem.add_module("conv", torch.nn.Conv2d(cfg["in_channels"], stem, 3, 1, 1, bias=False))
        self.stem.add_module("bn", torch.nn.BatchNorm2d(stem))
        self.stem.add_module("act", torch.nn.PReLU(stem))
        units = []
        in_ch = stem
        self.taps: list[int] = []
        for depth, count in cfg["stages"]:
            for j in range(count):
                units.append(BottleneckIR(in_ch, depth, 2 if j == 0 else 1, se=cfg["se"],
                                          se_reduction=cfg["se_reduction"]))
                in_ch = depth
            self.taps.append(len(units) - 1)
        self.body = torch.nn.ModuleList(units)
        d2, d3, d4 = (d for d, _ in cfg["stages"][1:])
        self.lateral_mid = torch.nn.Conv2d(d3, d4, 1)
        self.lateral_fine = torch.nn.Conv2d(d2, d4, 1)
        c3_size = cfg["input_size"] // 16
        self.heads = torch.nn.ModuleList()
        for i in range(cfg["num_ws"]):
            spatial = c3_size if i < cfg["coarse_ind"] else (c3_size * 2 if i < cfg["middle_ind"] else c3_size * 4)
            self.heads.append(GradualStyleBlock(d4, cfg["head_channels"], cfg["w_dim"], spatial))
        self.progressive_stage = cfg["num_ws"] - 1  # e4e: how many offsets are active (all by default)

    @property
    def num_ws(self) -> int:
        return self.config["num_ws"]

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Backbone: ``(c1, c2, c3)`` at ``S/4``, ``S/8``, ``S/16``."""
        size = self.config["input_size"]
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > size)
        x = self.stem(x)
        taps = {}
        for k, unit in enumerate(self.body):
            x = unit(x)
            if k in self.taps[1:]:
                taps[k] = x
        return taps[self.taps[1]], taps[self.taps[2]], taps[self.taps[3]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, in_channels, H, W]`` in ``[-1, 1]`` -> codes ``[N, num_ws, w_dim]`` (offsets from latent_avg)."""
        cfg = self.config
        if x.ndim != 4 or x.shape[1] != cfg["in_channels"]:
            raise InvalidArgumentError(f"the encoder takes [N, {cfg['in_channels']}, H, W] images, got {tuple(x.shape)}.")
        c1, c2, c3 = self.features(x)
        p2 = p1 = None

        def pyramid(i):
            nonlocal p2, p1
            if i < cfg["coarse_ind"]:
                return c3
            if p2 is None:
                p2 = F.interpolate(c3, size=c2.shape[-2:], mode="bilinear", align_corners=True) + self.lateral_mid(c2)
            if i < cfg["middle_ind"]:
                return p2
            if p1 is None:
                p1 = F.interpolate(p2, size=c1.shape[-2:], mode="bilinear", align_corners=True) + self.lateral_fine(c1)
            return p1

        if cfg["mode"] == "psp":
            return torch.stack([head(pyramid(i)) for i, head in enumerate(self.heads)], dim=1)
        base = self.heads[0](c3)
        rows = [base]
        for i in range(1, cfg["num_ws"]):
            if i <= self.progressive_stage:
                rows.append(base + self.heads[i](pyramid(i)))
            else:
                rows.append(base)
        return torch.stack(rows, dim=1)


def delta_regularization(codes: torch.Tensor, stage: int | None = None) -> torch.Tensor:
    """e4e's delta regulariser: mean over active layers i >= 1 of the batch-mean L2 norm of ``code_i - code_0``.

    ``codes`` ``[N, num_ws, w_dim]``; ``stage`` = number of active offsets (default all). Returns a scalar.
    """
    n_active = codes.shape[1] - 1 if stage is None else min(stage, codes.shape[1] - 1)
    if n_active <= 0:
        return codes.new_zeros([])
    deltas = codes[:, 1:n_active + 1] - codes[:, :1]
    return deltas.norm(dim=2).mean()


class LatentEncoder(torch.nn.Module):
    """An encoder plus the ``latent_avg`` its codes are relative to: image -> W+ ``[N, num_ws, w_dim]``."""

    def __init__(self, config: dict, latent_avg: torch.Tensor | None = None, *, info: dict | None = None):
        super().__init__()
        self.encoder = StyleEncoder(config)
        cfg = self.encoder.config
        avg = torch.zeros(cfg["w_dim"]) if latent_avg is None else _latent_avg_vector(latent_avg, cfg["w_dim"])
        self.register_buffer("latent_avg", avg)
        self.info = dict(info or {})

    @property
    def config(self) -> dict:
        return self.encoder.config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, in_channels, H, W]`` in ``[-1, 1]`` -> W+ ``[N, num_ws, w_dim]`` (codes + latent_avg)."""
        return self.encoder(x) + self.latent_avg.reshape(1, 1, -1)

    def check_generator(self, G) -> None:
        """Raise :class:`InvalidArgumentError` unless ``G`` has this encoder's ``num_ws`` and ``w_dim``."""
        cfg = self.config
        if G.num_ws != cfg["num_ws"] or G.w_dim != cfg["w_dim"]:
            raise InvalidArgumentError(f"this encoder predicts {cfg['num_ws']} x {cfg['w_dim']} W+ codes but the generator "
                                       f"takes {G.num_ws} x {G.w_dim}; use the encoder trained for this generator.")


def _latent_avg_vector(latent_avg, w_dim: int) -> torch.Tensor:
    t = torch.as_tensor(latent_avg).detach().float()
    if t.ndim == 2:
        t = t[0]
    elif t.ndim == 3:
        t = t[0, 0]
    if t.ndim != 1 or t.shape[0] != w_dim:
        raise CheckpointError(f"latent_avg has shape {tuple(torch.as_tensor(latent_avg).shape)}; expected [{w_dim}] "
                              f"or [num_ws, {w_dim}].")
    return t.clone()


# ----------------------------------------------------------------------------------------------
# Saving and loading (stylekit format: safetensors; official pSp / e4e: torch.save dict)


def save_encoder(enc: LatentEncoder, path, *, metadata: dict | None = None, half: bool = False) -> Path:
    """Write ``enc`` as safetensors with its config in the metadata (``half`` stores float16 weights)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {}
    for k, v in enc.state_dict().items():
        v = v.detach().cpu().contiguous()
        if half and v.is_floating_point() and not k.endswith(("running_mean", "running_var")):
            v = v.half()
        state[k] = v
    meta = {"format": "stylekit-encoder", "config": json.dumps(enc.config), "info": json.dumps(enc.info)}
    meta.update({k: str(v) for k, v in (metadata or {}).items()})
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


def load_encoder(spec, *, device="cpu") -> LatentEncoder:
    """Load an encoder: a registered name (``'e4e-toyfaces'``), a stylekit ``.safetensors`` file, or an
    official pSp / e4e ``.pt`` checkpoint. Returns a :class:`LatentEncoder` in eval mode, no grad.

    A generator stored in an official checkpoint (``decoder.*``) is not loaded here; see
    :func:`load_official_checkpoint`.
    """
    if isinstance(spec, LatentEncoder):
        return spec.to(device)
    path = _resolve_encoder_path(spec)
    with open(path, "rb") as fh:
        head = fh.read(16)
    if len(head) >= 9 and head[8:9] == b"{":
        enc = _load_safetensors_encoder(path)
    else:
        enc, _ = load_official_checkpoint(path, with_decoder=False)
    return enc.eval().requires_grad_(False).to(device)


def _resolve_encoder_path(spec) -> Path:
    from ..errors import ModelNotFoundError

    spec_str = os.fspath(spec)
    p = Path(spec_str)
    if p.is_file():
        return p
    from .. import registry

    try:
        entry = registry.resolve(spec_str)
    except ModelNotFoundError:
        raise ModelNotFoundError(f"{spec_str!r} is neither an encoder file nor a registered encoder name; registered "
                                 f"encoders: {[e.name for e in registry.list_models('encoder')]}.") from None
    if entry.kind != "encoder":
        raise ModelNotFoundError(f"{spec_str!r} is a {entry.kind}, not an encoder.")
    if entry.package_file is not None:
        path = registry.package_path(entry.package_file)
        if not path.is_file():
            raise ModelNotFoundError(f"the encoder {spec_str!r} is registered but its file {path} is not installed "
                                     "(it has not been trained yet, or the package was installed without it).")
        return path
    from .. import hub

    return Path(hub.fetch(entry.hub))


def _load_safetensors_encoder(path: Path) -> LatentEncoder:
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc}).") from exc
    if meta.get("format") != "stylekit-encoder" or "config" not in meta:
        raise CheckpointError(f"{path}: a safetensors file without stylekit encoder metadata (format/config); "
                              "generators load with stylekit.load_generator instead.")
    try:
        config = json.loads(meta["config"])
        info = json.loads(meta.get("info", "{}"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: the encoder config in the metadata is not valid JSON ({exc}).") from exc
    enc = LatentEncoder(config, info=info)
    _load_checked(enc, {k: v.float() if v.is_floating_point() else v for k, v in state.items()}, source=str(path))
    return enc


def _load_checked(module: torch.nn.Module, state: dict, *, source: str) -> None:
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise CheckpointError(f"{source}: encoder tensors do not match the architecture (missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]}).")
    for k, v in state.items():
        if tuple(v.shape) != tuple(expected[k].shape):
            raise CheckpointError(f"{source}: tensor {k!r} has shape {tuple(v.shape)}, expected {tuple(expected[k].shape)}.")
    module.load_state_dict(state, strict=True)


_RES_LAYER = {"0": "bn_in", "1": "conv1", "2": "act", "3": "conv2", "4": "bn_out", "5": "se"}


def official_to_stylekit_key(key: str) -> str:
    """Map one official pSp / e4e encoder key (without ``encoder.``) to stylekit's name (see module docstring)."""
    m = re.fullmatch(r"input_layer\.(\d)\.(.+)", key)
    if m:
        return f"stem.{('conv', 'bn', 'act')[int(m.group(1))]}.{m.group(2)}"
    m = re.fullmatch(r"body\.(\d+)\.shortcut_layer\.(\d)\.(.+)", key)
    if m:
        return f"body.{m.group(1)}.shortcut.{('conv', 'bn')[int(m.group(2))]}.{m.group(3)}"
    m = re.fullmatch(r"body\.(\d+)\.res_layer\.(\d)\.(.+)", key)
    if m and m.group(2) in _RES_LAYER:
        return f"body.{m.group(1)}.{_RES_LAYER[m.group(2)]}.{m.group(3)}"
    m = re.fullmatch(r"styles\.(\d+)\.convs\.(\d+)\.(weight|bias)", key)
    if m and int(m.group(2)) % 2 == 0:
        return f"heads.{m.group(1)}.convs.{int(m.group(2)) // 2}.{m.group(3)}"
    m = re.fullmatch(r"styles\.(\d+)\.linear\.(weight|bias)", key)
    if m:
        return f"heads.{m.group(1)}.linear.{m.group(2)}"
    m = re.fullmatch(r"latlayer([12])\.(weight|bias)", key)
    if m:
        return f"{'lateral_mid' if m.group(1) == '1' else 'lateral_fine'}.{m.group(2)}"
    raise CheckpointError(f"unexpected encoder tensor {key!r}: not part of the pSp / e4e GradualStyleEncoder "
                          "architecture (ReStyle's ResNet-34 backbone encoders are not supported).")


def infer_official_config(enc_state: dict, opts: dict | None = None, *, source: str = "<checkpoint>") -> dict:
    """Read an encoder config from official tensor shapes (``input_layer.0.weight``, ``body.*``, ``styles.*``)."""
    opts = opts or {}
    try:
        stem_w = enc_state["input_layer.0.weight"]
    except KeyError:
        raise CheckpointError(f"{source}: no 'encoder.input_layer.0.weight': not a pSp / e4e encoder checkpoint.") from None
    depths = []
    k = 0
    while f"body.{k}.res_layer.1.weight" in enc_state:
        depths.append(int(enc_state[f"body.{k}.res_layer.1.weight"].shape[0]))
        k += 1
    stages: list[list[int]] = []
    prev = None
    for d in depths:
        if d != prev or not stages:
            stages.append([d, 1])
        else:
            stages[-1][1] += 1
        prev = d
    if len(stages) != 4:
        raise CheckpointError(f"{source}: the encoder body has {len(stages)} width changes; expected the 4 stages "
                              "of an IR(-SE) 50/100/152 backbone.")
    num_ws = 0
    while f"styles.{num_ws}.linear.weight" in enc_state:
        num_ws += 1
    if num_ws == 0:
        raise CheckpointError(f"{source}: no 'styles.*' heads in the encoder.")
    n_convs = [sum(1 for key in enc_state if re.fullmatch(rf"styles\.{i}\.convs\.\d+\.weight", key))
               for i in range(num_ws)]
    c3_size = 2 ** n_convs[0]
    coarse = sum(1 for n in n_convs if n == n_convs[0])
    middle = coarse + sum(1 for n in n_convs if n == n_convs[0] + 1)
    lin = enc_state["styles.0.linear.weight"]
    head_ch = int(enc_state["styles.0.convs.0.weight"].shape[0])
    encoder_type = str(opts.get("encoder_type", "Encoder4Editing"))
    mode = "psp" if encoder_type == "GradualStyleEncoder" else "e4e"
    if encoder_type not in ("GradualStyleEncoder", "Encoder4Editing"):
        raise CheckpointError(f"{source}: encoder_type {encoder_type!r} is not supported (only pSp's "
                              "GradualStyleEncoder and e4e's Encoder4Editing).")
    se = "body.0.res_layer.5.fc1.weight" in enc_state
    reduction = 16
    if se:
        fc1 = enc_state["body.0.res_layer.5.fc1.weight"]
        reduction = max(1, int(fc1.shape[1]) // max(1, int(fc1.shape[0])))
    return normalize_config({
        "mode": mode, "in_channels": int(stem_w.shape[1]), "input_size": c3_size * 16,
        "stem_channels": int(stem_w.shape[0]), "stages": stages, "se": se, "se_reduction": reduction,
        "num_ws": num_ws, "w_dim": int(lin.shape[0]), "head_channels": head_ch,
        "coarse_ind": coarse, "middle_ind": middle,
    })


def load_official_checkpoint(path, *, with_decoder: bool = True):
    """Read an official pSp / e4e checkpoint: ``(LatentEncoder, Generator or None)``.

    The file is a ``torch.save`` dict with ``state_dict`` (``encoder.*`` and ``decoder.*``),
    ``latent_avg`` and ``opts``; it is read with ``torch.load(weights_only=True)``. When
    ``opts['start_from_latent_avg']`` is false, codes are used as they are (latent_avg = 0).
    """
    from ..checkpoints.rosinality import read_torch_checkpoint

    source = str(path)
    ckpt = read_torch_checkpoint(path)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or not isinstance(ckpt["state_dict"], dict):
        raise CheckpointError(f"{source}: not a pSp / e4e checkpoint (expected a dict with 'state_dict').")
    state = ckpt["state_dict"]
    opts = ckpt.get("opts") or {}
    if not isinstance(opts, dict):
        opts = vars(opts) if hasattr(opts, "__dict__") else {}
    enc_state = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
    if not enc_state:
        raise CheckpointError(f"{source}: the checkpoint holds no 'encoder.*' tensors.")
    config = infer_official_config(enc_state, opts, source=source)
    latent_avg = ckpt.get("latent_avg")
    use_avg = bool(opts.get("start_from_latent_avg", True))
    info = {"source": "official pSp/e4e checkpoint", "encoder_type": str(opts.get("encoder_type", "Encoder4Editing")),
            "file": os.path.basename(source)}
    enc = LatentEncoder(config, latent_avg if (use_avg and latent_avg is not None) else None, info=info)
    mapped = {}
    for key, value in enc_state.items():
        if key.endswith("num_batches_tracked"):
            continue
        mapped["encoder." + official_to_stylekit_key(key)] = value.float() if value.is_floating_point() else value
    mapped["latent_avg"] = enc.latent_avg
    for key, value in enc.state_dict().items():  # BN counters are not needed for inference
        if key.endswith("num_batches_tracked"):
            mapped[key] = value
    _load_checked(enc, mapped, source=source)
    G = None
    dec_state = {k[len("decoder."):]: v for k, v in state.items() if k.startswith("decoder.")}
    if with_decoder and dec_state:
        from ..checkpoints.load import build_generator, load_state_checked
        from ..checkpoints.rosinality import convert_rosinality_state

        g_config, g_state = convert_rosinality_state(dec_state, latent_avg, source=source)
        G = build_generator("stylegan2", g_config, source=source)
        load_state_checked(G, g_state, source=source)
        G = G.eval().requires_grad_(False)
    return enc.eval().requires_grad_(False), G


# ----------------------------------------------------------------------------------------------
# Inversion with an encoder


def encode(G, image, *, encoder="e4e-toyfaces", progress=None, device=None):
    """One encoder pass: ``image`` -> W+; returns an :class:`~stylekit.invert.result.InversionResult`
    whose ``latent`` is a ``'w+'`` Latent ``[1, num_ws, w_dim]``.

    Args:
        G: the generator the encoder was trained for (``num_ws`` and ``w_dim`` must match).
        image: anything :func:`stylekit.images.image_to_tensor` accepts, or a tensor in ``[-1, 1]``.
        encoder: a :class:`LatentEncoder`, a registered name or a file path (see :func:`load_encoder`).
        progress: called once at the end (the pass is a single step).
    """
    from ._inputs import progress_or_default, target_tensor
    from .result import InversionResult, inversion_latent

    start = time.perf_counter()
    device = torch.device(device) if device is not None else G.w_avg.device
    enc = load_encoder(encoder, device=device)
    enc.check_generator(G)
    if enc.config["in_channels"] != 3:
        raise InvalidArgumentError("this encoder takes 6 channels (a ReStyle encoder); use method='restyle'.")
    target = target_tensor(G, image, device=device)
    with torch.no_grad():
        latent = enc(target)
        img = G.synthesis(latent, noise_mode="const")
    progress_or_default(progress)(1, 1, "encoder")
    mse = float((img - target).square().mean())
    return InversionResult(latent=inversion_latent(latent, "w+"), image=img, target=target, method="encoder",
                           loss_history=[{"step": 0, "stage": "encoder", "loss": mse, "mse": mse}], perceptual="none",
                           seconds=time.perf_counter() - start, extra={"encoder": enc.info})
