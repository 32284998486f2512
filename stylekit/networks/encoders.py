"""Encoder networks: pSp / e4e (and ReStyle's 6-channel variant), sized by a config.

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

``arch='backbone'`` (ReStyle's BackboneEncoder family) drops the pyramid: every head reads c3; ``body='resnet'``
swaps the IR(-SE) body for ResNet-34 BasicBlocks after a 7x7 stride-2 stem (see
:mod:`stylekit.networks.restyle_backbones`).

The encoders are loaded, saved and run by :mod:`stylekit.invert.encoder`; they are trained by
``stylekit.train``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import CheckpointError, InvalidArgumentError
from .precision import dtype_of
from .restyle_backbones import BasicBlock, face_pool, resnet_stem


# ----------------------------------------------------------------------------------------------
# Configs

#: The official pSp / e4e encoder (IR-SE-50 backbone, 256x256 input, 18 x 512 W+ for 1024x1024 FFHQ).
FFHQ_CONFIG = {
    "mode": "e4e", "in_channels": 3, "input_size": 256, "stem_channels": 64,
    "stages": [[64, 3], [128, 4], [256, 14], [512, 3]], "se": True, "se_reduction": 16,
    "num_ws": 18, "w_dim": 512, "head_channels": 512, "coarse_ind": 3, "middle_ind": 7,
    "arch": "fpn", "body": "ir",
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
        raise InvalidArgumentError("an encoder config must be a dict like stylekit.networks.encoders.FFHQ_CONFIG.")
    unknown = set(config) - _CONFIG_KEYS
    if unknown:
        raise InvalidArgumentError(f"unknown encoder config keys {sorted(unknown)}; known: {sorted(_CONFIG_KEYS)}.")
    cfg = {**FFHQ_CONFIG, **config}
    cfg["stages"] = [[int(d), int(u)] for d, u in cfg["stages"]]
    if len(cfg["stages"]) != 4 or any(d < 1 or u < 1 for d, u in cfg["stages"]):
        raise InvalidArgumentError("encoder 'stages' must be 4 [depth, units] pairs with positive numbers.")
    if cfg["mode"] not in ("e4e", "psp"):
        raise InvalidArgumentError(f"encoder mode must be 'e4e' or 'psp', not {cfg['mode']!r}.")
    if cfg["arch"] not in ("fpn", "backbone"):
        raise InvalidArgumentError(f"encoder arch must be 'fpn' (pSp / e4e) or 'backbone' (ReStyle), "
                                   f"not {cfg['arch']!r}.")
    if cfg["body"] not in ("ir", "resnet"):
        raise InvalidArgumentError(f"encoder body must be 'ir' (IR-SE) or 'resnet' (ResNet-34 blocks), "
                                   f"not {cfg['body']!r}.")
    if cfg["arch"] == "backbone":  # every head reads the final map
        cfg["coarse_ind"] = cfg["middle_ind"] = cfg["num_ws"]
    if cfg["body"] == "resnet":
        cfg["se"] = False
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
        """``[N, in_ch, s, s]`` -> ``[N, out_dim]``."""
        for conv in self.convs:
            if x.shape[-2:] == (1, 1) and _reduced_precision(x):
                # oneDNN's bfloat16 / float16 backward of a stride-2 3x3 convolution on a 1x1 input
                # leaves the weight gradient of the border taps uninitialised (garbage, sometimes NaN;
                # torch 2.14 on CPU). On a 1x1 input only the centre tap meets data, so the layer is
                # exactly a matrix product with it (the border taps' gradient is then a true 0).
                y = F.linear(x.flatten(1), conv.weight[:, :, 1, 1], conv.bias)[:, :, None, None]
            else:
                y = conv(x)
            x = F.leaky_relu(y, 0.01)
        return self.linear(x.reshape(x.shape[0], self.channels))


def _reduced_precision(x: torch.Tensor) -> bool:
    """True when ``x`` is bfloat16 / float16 or autocast is on for its device."""
    return x.dtype in (torch.bfloat16, torch.float16) or torch.is_autocast_enabled(x.device.type)


class StyleEncoder(torch.nn.Module):
    """pSp / e4e encoder: image ``[N, in_channels, S, S]`` in ``[-1, 1]`` -> codes ``[N, num_ws, w_dim]``.

    The codes are offsets from ``latent_avg`` (see :class:`LatentEncoder`). ``config``: see
    :data:`FFHQ_CONFIG` (and :mod:`~stylekit.networks.restyle_backbones` for ReStyle's). Inputs of another
    size are resized to ``input_size`` (bilinear; ``arch='backbone'``: area-pooled like ReStyle's face pool).
    """

    def __init__(self, config: dict):
        super().__init__()
        cfg = normalize_config(config)
        self.config = cfg
        stem = cfg["stem_channels"]
        if cfg["body"] == "resnet":
            self.stem = resnet_stem(cfg["in_channels"], stem)
        else:
            self.stem = torch.nn.Sequential()
            self.stem.add_module("conv", torch.nn.Conv2d(cfg["in_channels"], stem, 3, 1, 1, bias=False))
            self.stem.add_module("bn", torch.nn.BatchNorm2d(stem))
            self.stem.add_module("act", torch.nn.PReLU(stem))
        units = []
        in_ch = stem
        self.taps: list[int] = []
        for s, (depth, count) in enumerate(cfg["stages"]):
            for j in range(count):
                if cfg["body"] == "resnet":  # the stem already halved; ResNet's layer1 keeps the size
                    units.append(BasicBlock(in_ch, depth, 2 if j == 0 and s > 0 else 1))
                else:
                    units.append(BottleneckIR(in_ch, depth, 2 if j == 0 else 1, se=cfg["se"],
                                              se_reduction=cfg["se_reduction"]))
                in_ch = depth
            self.taps.append(len(units) - 1)
        self.body = torch.nn.ModuleList(units)
        d2, d3, d4 = (d for d, _ in cfg["stages"][1:])
        if cfg["arch"] == "fpn":
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
        if self.config["arch"] == "backbone":
            x = face_pool(x, size)  # ReStyle's AdaptiveAvgPool2d(256) on the reconstruction
        elif x.shape[-1] != size or x.shape[-2] != size:
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
    """An encoder plus the ``latent_avg`` its codes are relative to: image -> W+ ``[N, num_ws, w_dim]``.

    ``precision`` (``'fp32'`` by default, ``'bf16'`` or ``'fp16'``) is the dtype the encoder computes
    in; the weights stay float32 and the codes come back float32 whatever it is (see :meth:`codes`).
    """

    def __init__(self, config: dict, latent_avg: torch.Tensor | None = None, *, info: dict | None = None):
        super().__init__()
        self.encoder = StyleEncoder(config)
        cfg = self.encoder.config
        avg = torch.zeros(cfg["w_dim"]) if latent_avg is None else _latent_avg_vector(latent_avg, cfg["w_dim"])
        self.register_buffer("latent_avg", avg)
        self.info = dict(info or {})
        self._precision = "fp32"
        self._low_weights: tuple | None = None  # (key, {name: cast weight}) for inference, see _inference_weights

    @property
    def config(self) -> dict:
        return self.encoder.config

    @property
    def precision(self) -> str:
        """Compute precision: ``'fp32'``, ``'bf16'`` or ``'fp16'`` (set it, or pass ``precision=`` to
        :func:`stylekit.invert.encoder.load_encoder`; ``'auto'`` is resolved there)."""
        return self._precision

    @precision.setter
    def precision(self, value: str) -> None:
        dtype_of(value)  # InvalidArgumentError for anything but fp32 / bf16 / fp16
        self._precision = value
        self._low_weights = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, in_channels, H, W]`` in ``[-1, 1]`` -> W+ ``[N, num_ws, w_dim]`` float32 (codes + latent_avg)."""
        return self.codes(x) + self.latent_avg.reshape(1, 1, -1)

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, in_channels, H, W]`` -> codes ``[N, num_ws, w_dim]`` float32 (offsets from latent_avg), in
        :attr:`precision`.

        ``'fp32'`` is ``self.encoder(x)``. Otherwise the encoder runs under ``torch.autocast`` (on CPU
        with channels-last activations and weights, several times faster on CPUs with bfloat16 units);
        in inference (eval mode, no gradient) the cast weights are made once and kept until a weight
        changes, so they cost memory (half the float32 weights for bfloat16 / float16).
        """
        if self._precision == "fp32":
            return self.encoder(x)
        device_type = x.device.type
        channels_last = device_type == "cpu" and x.ndim == 4
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type, dtype=dtype_of(self._precision)):
            if self.training or torch.is_grad_enabled():
                out = self.encoder(x)
            else:
                weights = self._inference_weights(channels_last)
                out = torch.func.functional_call(self.encoder, weights, (x,), strict=False)
        return out.float()

    def _inference_weights(self, channels_last: bool) -> dict[str, torch.Tensor]:
        """The conv and linear weights cast to :attr:`precision` (4-D ones channels-last on CPU), cached
        while every parameter keeps its storage and version; biases, norms and PReLU slopes stay float32."""
        params = list(self.encoder.named_parameters())
        key = (self._precision, channels_last, tuple((p.data_ptr(), p._version) for _, p in params))
        if self._low_weights is None or self._low_weights[0] != key:
            dtype = dtype_of(self._precision)
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            cast = {name: p.detach().to(dtype=dtype, memory_format=fmt if p.ndim == 4 else torch.preserve_format)
                    for name, p in params if p.ndim in (2, 4)}
            self._low_weights = (key, cast)
        return self._low_weights[1]

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
