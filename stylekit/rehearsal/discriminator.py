"""The ``D`` of an NVIDIA snapshot: StyleGAN2's residual discriminator as persistence records, random weights.

stylekit never runs a discriminator (readers take ``G_ema``), so there is no stylekit module to take
the record from: the records are built from the structure of ``training/networks_stylegan2.py``'s
``Discriminator`` (used by the official ``train.py`` for StyleGAN2 and StyleGAN3 alike), which we read
for facts: blocks ``b{R}`` ... ``b8`` (``DiscriminatorBlock``: ``fromrgb`` in the first block, ``conv0``,
``conv1`` with down-sampling, ``skip``; every ``Conv2dLayer`` holds ``weight``, ``bias`` (not ``skip``) and
the ``resample_filter`` buffer), then the epilogue ``b4`` (``mbstd``, ``conv``, ``fc``, ``out``). Unlike the
generator's records, these were not compared with a file NVIDIA's code wrote (the fixtures hold no D):
what is certain is the tensor names and shapes, hence the file's size.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .nvidia_pickle import EasyDict, PersistentRecord, make_record

_FILTER = [1, 3, 3, 1]


def discriminator_kwargs(resolution: int = 1024) -> dict:
    """``D_kwargs`` of the official ``train.py`` (cbase 32768, cmax 512, mbstd group 4, 4 fp16 resolutions,
    clamp 256, Freeze-D off) plus ``c_dim``, ``img_resolution``, ``img_channels``, in train.py's key order."""
    return {"block_kwargs": EasyDict(freeze_layers=0), "mapping_kwargs": EasyDict(),
            "epilogue_kwargs": EasyDict(mbstd_group_size=4), "channel_base": 32768, "channel_max": 512,
            "num_fp16_res": 4, "conv_clamp": 256, "c_dim": 0, "img_resolution": int(resolution), "img_channels": 3}


def _filter() -> torch.Tensor:
    f = torch.tensor(_FILTER, dtype=torch.float32)
    return torch.outer(f, f) / f.sum() ** 2


def _conv(g, cin: int, cout: int, kernel: int, *, activation: str = "lrelu", down: int = 1, bias: bool = True,
          conv_clamp=None, kwargs: dict) -> PersistentRecord:
    params = {"weight": torch.randn([cout, cin, kernel, kernel], generator=g),
              "bias": torch.zeros([cout]) if bias else None}
    attrs = {"in_channels": cin, "out_channels": cout, "activation": activation, "up": 1, "down": down,
             "conv_clamp": conv_clamp, "padding": kernel // 2, "weight_gain": np.float64(1 / np.sqrt(cin * kernel ** 2)),
             "act_gain": np.float64(np.sqrt(2)) if activation == "lrelu" else 1}
    return make_record("Conv2dLayer", parameters=params, buffers={"resample_filter": _filter()}, modules={},
                       attributes=attrs, args=(cin, cout), kwargs=kwargs)


def _fc(g, cin: int, cout: int, *, activation: str = "linear", kwargs: dict) -> PersistentRecord:
    attrs = {"in_features": cin, "out_features": cout, "activation": activation,
             "weight_gain": np.float64(1 / np.sqrt(cin)), "bias_gain": 1}
    return make_record("FullyConnectedLayer", parameters={"weight": torch.randn([cout, cin], generator=g),
                                                          "bias": torch.zeros([cout])},
                       buffers={}, modules={}, attributes=attrs, args=(cin, cout), kwargs=kwargs)


def discriminator_record(kwargs: dict | None = None, *, seed: int = 0) -> PersistentRecord:
    """The ``Discriminator`` record for ``kwargs`` (default :func:`discriminator_kwargs`), weights drawn from
    ``torch.Generator().manual_seed(seed)`` (standard normal weights, zero biases)."""
    kwargs = dict(kwargs or discriminator_kwargs())
    g = torch.Generator().manual_seed(int(seed))
    res, img_ch, clamp = kwargs["img_resolution"], kwargs["img_channels"], kwargs["conv_clamp"]
    log2 = int(math.log2(res))
    blocks = [2 ** i for i in range(log2, 2, -1)]
    channels = {r: min(kwargs["channel_base"] // r, kwargs["channel_max"]) for r in blocks + [4]}
    fp16_resolution = max(2 ** (log2 + 1 - kwargs["num_fp16_res"]), 8)
    common = {"img_channels": img_ch, "architecture": "resnet", "conv_clamp": clamp}
    modules: dict = {}
    layer_idx = 0
    for r in blocks:
        cin, tmp, cout = (channels[r] if r < res else 0), channels[r], channels[r // 2]
        use_fp16 = r >= fp16_resolution
        layer = {"trainable": True}
        children = {}
        if cin == 0:
            children["fromrgb"] = _conv(g, img_ch, tmp, 1, conv_clamp=clamp, kwargs={
                "kernel_size": 1, "activation": "lrelu", **layer, "conv_clamp": clamp, "channels_last": False})
        children["conv0"] = _conv(g, tmp, tmp, 3, conv_clamp=clamp, kwargs={
            "kernel_size": 3, "activation": "lrelu", **layer, "conv_clamp": clamp, "channels_last": False})
        children["conv1"] = _conv(g, tmp, cout, 3, down=2, conv_clamp=clamp, kwargs={
            "kernel_size": 3, "activation": "lrelu", "down": 2, **layer, "resample_filter": list(_FILTER),
            "conv_clamp": clamp, "channels_last": False})
        children["skip"] = _conv(g, tmp, cout, 1, activation="linear", down=2, bias=False, kwargs={
            "kernel_size": 1, "bias": False, "down": 2, **layer, "resample_filter": list(_FILTER),
            "channels_last": False})
        attrs = {"in_channels": cin, "resolution": r, "img_channels": img_ch, "first_layer_idx": layer_idx,
                 "architecture": "resnet", "use_fp16": use_fp16, "channels_last": False, "num_layers": len(children)}
        modules[f"b{r}"] = make_record(
            "DiscriminatorBlock", parameters={}, buffers={"resample_filter": _filter()}, modules=children,
            attributes=attrs, args=(cin, tmp, cout),
            kwargs={"resolution": r, "first_layer_idx": layer_idx, "use_fp16": use_fp16,
                    **dict(kwargs["block_kwargs"]), **common})
        layer_idx += len(children)
    c4 = channels[4]
    group = dict(kwargs["epilogue_kwargs"]).get("mbstd_group_size", 4)
    mbstd = make_record("MinibatchStdLayer", parameters={}, buffers={}, modules={},
                        attributes={"group_size": group, "num_channels": 1}, args=(),
                        kwargs={"group_size": group, "num_channels": 1})
    epilogue = {"mbstd": mbstd,
                "conv": _conv(g, c4 + 1, c4, 3, conv_clamp=clamp, kwargs={"kernel_size": 3, "activation": "lrelu",
                                                                           "conv_clamp": clamp}),
                "fc": _fc(g, c4 * 16, c4, activation="lrelu", kwargs={"activation": "lrelu"}),
                "out": _fc(g, c4, 1, kwargs={})}
    modules["b4"] = make_record(
        "DiscriminatorEpilogue", parameters={}, buffers={}, modules=epilogue,
        attributes={"in_channels": c4, "cmap_dim": 0, "resolution": 4, "img_channels": img_ch, "architecture": "resnet"},
        args=(c4,), kwargs={"cmap_dim": 0, "resolution": 4, **dict(kwargs["epilogue_kwargs"]), **common})
    attrs = {"c_dim": kwargs["c_dim"], "img_resolution": res, "img_resolution_log2": log2, "img_channels": img_ch,
             "block_resolutions": blocks}
    return make_record("Discriminator", parameters={}, buffers={}, modules=modules, attributes=attrs, args=(),
                       kwargs=kwargs)
