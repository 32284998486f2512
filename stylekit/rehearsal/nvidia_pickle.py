"""Writing NVIDIA network pickles the way the official training loop writes them, from stylekit networks.

An official snapshot (``network-snapshot-*.pkl``, the published ``stylegan2-ffhq-1024x1024.pkl``...) is
``pickle.dump({'training_set_kwargs', 'G', 'D', 'G_ema', 'augment_pipe'})`` where every network was
made persistent by ``torch_utils.persistence``: it pickles as the call
``torch_utils.persistence._reconstruct_persistent_obj(meta)`` with
``meta = {'type': 'class', 'version': 6, 'module_src': <source>, 'class_name': ..., 'state': __dict__}``.
The state is the module's ``__dict__``: torch's bookkeeping (``training``, ``_parameters``,
``_buffers``, ``_non_persistent_buffers_set``, the hook dicts, ``_modules``), the attributes the
constructor set, and ``_init_args`` / ``_init_kwargs``. Tensors pickle the way torch pickles them for
plain ``pickle`` (``torch._utils._rebuild_parameter`` / ``_rebuild_tensor_v2`` around
``torch.storage._load_from_bytes``). The nested kwargs dicts of ``train.py`` are ``dnnlib.EasyDict``.

:func:`write_nvidia_pickle` produces that from a stylekit generator (whose modules carry NVIDIA's
names, attributes and tensor names): class names, constructor arguments and attributes are NVIDIA's
(checked against the fixtures made with NVIDIA's code, ``tests/fixtures/nvidia``); ``module_src`` is a
one-line comment, as in those fixtures (a real file carries the class source there, which no stylekit
reader ever looks at). Nothing here is needed to *read* pickles: it makes rehearsal files.
"""

from __future__ import annotations

import collections
import math
import pickle
from typing import Any, BinaryIO

import numpy as np
import torch

MODULE_SRC = "# module source omitted: written by stylekit.rehearsal (random weights, not a trained model)\n"
PERSISTENCE_VERSION = 6

_HOOK_DICTS = ("_backward_pre_hooks", "_backward_hooks", "_forward_hooks", "_forward_hooks_with_kwargs",
               "_forward_hooks_always_called", "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs",
               "_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks",
               "_load_state_dict_post_hooks")

# NVIDIA's attributes of each class (in the order its constructor sets them), as the fixtures hold them.
_ATTRS = {
    ("stylegan2", "Generator"): ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "num_ws"),
    ("stylegan2", "SynthesisNetwork"): ("w_dim", "img_resolution", "img_resolution_log2", "img_channels",
                                        "num_fp16_res", "block_resolutions", "num_ws"),
    ("stylegan2", "SynthesisBlock"): ("in_channels", "w_dim", "resolution", "img_channels", "is_last", "architecture",
                                      "use_fp16", "channels_last", "fused_modconv_default", "num_conv", "num_torgb"),
    ("stylegan2", "SynthesisLayer"): ("in_channels", "out_channels", "w_dim", "resolution", "up", "use_noise",
                                      "activation", "conv_clamp", "padding", "act_gain"),
    ("stylegan2", "ToRGBLayer"): ("in_channels", "out_channels", "w_dim", "conv_clamp", "weight_gain"),
    ("stylegan2", "MappingNetwork"): ("z_dim", "c_dim", "w_dim", "num_ws", "num_layers", "w_avg_beta"),
    ("stylegan3", "Generator"): ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "num_ws"),
    ("stylegan3", "SynthesisNetwork"): ("w_dim", "num_ws", "img_resolution", "img_channels", "num_layers",
                                        "num_critical", "margin_size", "output_scale", "num_fp16_res", "layer_names"),
    ("stylegan3", "SynthesisInput"): ("w_dim", "channels", "size", "sampling_rate", "bandwidth"),
    ("stylegan3", "SynthesisLayer"): (
        "w_dim", "is_torgb", "is_critically_sampled", "use_fp16", "in_channels", "out_channels", "in_size",
        "out_size", "in_sampling_rate", "out_sampling_rate", "tmp_sampling_rate", "in_cutoff", "out_cutoff",
        "in_half_width", "out_half_width", "conv_kernel", "conv_clamp", "magnitude_ema_beta", "up_factor", "up_taps",
        "down_factor", "down_taps", "down_radial", "padding"),
    ("stylegan3", "MappingNetwork"): ("z_dim", "c_dim", "w_dim", "num_ws", "num_layers", "w_avg_beta", "embed"),
}
_FC_ATTRS = ("in_features", "out_features", "activation", "weight_gain", "bias_gain")
_NP_FLOATS = {"sampling_rate", "bandwidth", "in_cutoff", "out_cutoff", "in_half_width", "out_half_width",
              "weight_gain", "act_gain"}
_NP_ARRAYS = {"size", "in_size", "out_size"}

# ----------------------------------------------------------------------------------------------
# Official constructor kwargs (what train.py passes to Generator)


def official_kwargs(kind: str, resolution: int = 1024, *, batch_size: int = 32) -> dict:
    """The ``G_kwargs`` of the official ``train.py`` for ``kind`` in ``'stylegan2'`` (config-f),
    ``'stylegan3-t'``, ``'stylegan3-r'``, plus ``c_dim=0``, ``img_resolution``, ``img_channels=3``.

    StyleGAN2 (stylegan3 repo, ``--cfg=stylegan2``): cbase 32768, cmax 512, 8 mapping layers,
    ``num_fp16_res=4``, ``conv_clamp=256``, ``fused_modconv_default='inference_only'``. StyleGAN3-T:
    cbase 32768, cmax 512, 2 mapping layers, ``magnitude_ema_beta = 0.5 ** (batch / 20000)``; -R doubles
    cbase and cmax and adds ``conv_kernel=1``, ``use_radial_filters=True``.
    """
    kwargs: dict = {"z_dim": 512, "w_dim": 512, "mapping_kwargs": EasyDict(num_layers=8 if kind == "stylegan2" else 2)}
    if kind == "stylegan2":
        kwargs.update(channel_base=32768, channel_max=512, num_fp16_res=4, conv_clamp=256,
                      fused_modconv_default="inference_only")
    elif kind in ("stylegan3-t", "stylegan3-r"):
        r = kind == "stylegan3-r"
        kwargs.update(channel_base=65536 if r else 32768, channel_max=1024 if r else 512, num_fp16_res=4,
                      conv_clamp=256, magnitude_ema_beta=0.5 ** (batch_size / (20 * 1e3)))
        if r:
            kwargs.update(conv_kernel=1, use_radial_filters=True)
    else:
        raise ValueError(f"unknown NVIDIA generator kind {kind!r}")
    kwargs.update(c_dim=0, img_resolution=int(resolution), img_channels=3)
    return kwargs


class EasyDict(dict):
    """Pickles as ``dnnlib.util.EasyDict`` (the dict subclass NVIDIA's configs are)."""


# ----------------------------------------------------------------------------------------------
# Records


class _Global:
    """A reference to ``module.name`` written as a pickle global (the target need not be importable here)."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name


_RECONSTRUCT = _Global("torch_utils.persistence", "_reconstruct_persistent_obj")
_EASYDICT = _Global("dnnlib.util", "EasyDict")


class PersistentRecord:
    """One network as ``torch_utils.persistence`` pickles it: ``_reconstruct_persistent_obj(meta)``."""

    def __init__(self, class_name: str, state: dict):
        self.meta = {"type": "class", "version": PERSISTENCE_VERSION, "module_src": MODULE_SRC,
                     "class_name": class_name, "state": state}


def _nvidia_class(module: torch.nn.Module) -> str:
    from ..networks.base import Generator

    return "Generator" if isinstance(module, Generator) else type(module).__name__


def _value(name: str, value):
    if name in _NP_FLOATS and isinstance(value, (int, float)) and not isinstance(value, bool):
        return np.float64(value)
    if name in _NP_ARRAYS and isinstance(value, (list, tuple)):
        return np.asarray(value, dtype=np.int64)
    return value


def _attributes(arch: str, cls: str, module, config: dict, path: str, parent: str = "") -> dict:
    names = _FC_ATTRS if cls == "FullyConnectedLayer" else _ATTRS[(arch, cls)]
    log2 = int(math.log2(config["img_resolution"]))
    n_fp16 = int(config.get("num_fp16_res", 4 if arch == "stylegan3" else 0))
    out = {}
    for name in names:
        if name == "img_resolution_log2":
            value = log2
        elif name == "num_fp16_res":
            value = n_fp16
        elif name == "use_fp16" and arch == "stylegan2":
            value = bool(module.resolution >= max(2 ** (log2 + 1 - n_fp16), 8))
        elif name == "use_fp16":
            value = np.bool_(module.in_sampling_rate * 2 ** n_fp16 > config["img_resolution"])
        elif name == "channels_last":
            value = False
        elif name == "fused_modconv_default":
            value = config.get("fused_modconv_default", True)
        elif name == "activation" and cls == "SynthesisLayer":
            value = "lrelu"
        elif name == "embed":
            value = getattr(module, "embed", None)
        elif name == "conv_clamp":
            value = config.get("conv_clamp", 256)  # the default of every NVIDIA layer that has one
        elif name == "bias_gain":  # the lr_multiplier as passed (an int 1 unless given)
            value = dict(config.get("mapping_kwargs") or {}).get("lr_multiplier", 0.01) if parent == "mapping" else 1
        elif name == "in_channels" and cls == "SynthesisBlock":
            value = int(module.in_channels)
        else:
            if not hasattr(module, name):
                raise RuntimeError(f"{path}: stylekit's {type(module).__name__} lacks NVIDIA's attribute {name!r}")
            value = getattr(module, name)
        out[name] = _value(name, value)
    return out


def _init_arguments(arch: str, cls: str, module, config: dict, parent_name: str) -> tuple[tuple, dict]:
    """``(_init_args, _init_kwargs)`` of one network as NVIDIA's code constructs it (see the fixtures)."""
    top = {k: v for k, v in config.items()}
    synth = {k: v for k, v in config.items() if k not in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels",
                                                            "mapping_kwargs")}
    if cls == "Generator":
        return (), top
    if cls == "MappingNetwork":
        return (), {"z_dim": config["z_dim"], "c_dim": config["c_dim"], "w_dim": config["w_dim"],
                    "num_ws": int(module.num_ws), **dict(config.get("mapping_kwargs") or {})}
    if cls == "FullyConnectedLayer":
        args = (int(module.in_features), int(module.out_features))
        if parent_name == "input":
            return args, {"weight_init": 0, "bias_init": [1, 0, 0, 0]}
        if parent_name == "mapping":
            lr = dict(config.get("mapping_kwargs") or {}).get("lr_multiplier", 0.01)
            return args, {"activation": "lrelu", "lr_multiplier": lr}
        return args, {"bias_init": 1}
    if cls == "SynthesisNetwork":
        return (), {"w_dim": config["w_dim"], "img_resolution": config["img_resolution"],
                    "img_channels": config["img_channels"], **synth}
    if arch == "stylegan2":
        block = {k: v for k, v in synth.items() if k not in ("channel_base", "channel_max", "num_fp16_res")}
        if cls == "SynthesisBlock":
            use_fp16 = _attributes(arch, cls, module, config, "")["use_fp16"]
            return (int(module.in_channels), int(module.out_channels)), {
                "w_dim": config["w_dim"], "resolution": int(module.resolution), "img_channels": config["img_channels"],
                "is_last": bool(module.is_last), "use_fp16": use_fp16, **block}
        conv_clamp = {"conv_clamp": config["conv_clamp"]} if "conv_clamp" in config else {}
        if cls == "SynthesisLayer":
            up = {"up": 2, "resample_filter": [1, 3, 3, 1]} if module.up == 2 else {}
            return (int(module.in_channels), int(module.out_channels)), {
                "w_dim": config["w_dim"], "resolution": int(module.resolution), **up, **conv_clamp,
                "channels_last": False}
        if cls == "ToRGBLayer":
            return (int(module.in_channels), int(module.out_channels)), {
                "w_dim": config["w_dim"], **conv_clamp, "channels_last": False}
    else:
        if cls == "SynthesisInput":
            return (), {"w_dim": config["w_dim"], "channels": int(module.channels), "size": int(module.size[0]),
                        "sampling_rate": np.float64(module.sampling_rate), "bandwidth": np.float64(module.bandwidth)}
        if cls == "SynthesisLayer":
            layer = {k: v for k, v in synth.items() if k not in ("channel_base", "channel_max", "num_fp16_res")}
            attrs = _attributes(arch, cls, module, config, "")
            kwargs = {"w_dim": config["w_dim"], "is_torgb": bool(module.is_torgb),
                      "is_critically_sampled": bool(module.is_critically_sampled), "use_fp16": attrs["use_fp16"],
                      "in_channels": int(module.in_channels), "out_channels": int(module.out_channels),
                      "in_size": int(module.in_size[0]), "out_size": int(module.out_size[0]),
                      "in_sampling_rate": int(module.in_sampling_rate),
                      "out_sampling_rate": int(module.out_sampling_rate)}
            for name in ("in_cutoff", "out_cutoff", "in_half_width", "out_half_width"):
                kwargs[name] = np.float64(getattr(module, name))
            return (), {**kwargs, **layer}
    raise RuntimeError(f"no NVIDIA constructor known for {arch} {cls}")


def network_record(module: torch.nn.Module, config: dict, *, arch: str, name: str = "",
                   parent_name: str = "", clone: bool = False) -> PersistentRecord:
    """The persistence record of ``module`` (a stylekit generator or one of its submodules).

    ``config`` is the official Generator kwargs the network was built from. ``clone`` copies every
    tensor (so that G and G_ema pickle as separate tensors, as in a real snapshot).
    """
    cls = _nvidia_class(module)
    persistent_skip = module._non_persistent_buffers_set

    def tensor(t, parameter: bool):
        if t is None:
            return None
        t = t.detach().cpu()
        return t.clone() if clone else t

    children = {k: None if child is None else network_record(child, config, arch=arch, name=k, parent_name=name,
                                                             clone=clone)
                for k, child in module._modules.items()}
    args, kwargs = _init_arguments(arch, cls, module, config, parent_name)
    return make_record(cls, parameters={k: tensor(v, True) for k, v in module._parameters.items()},
                       buffers={k: tensor(v, False) for k, v in module._buffers.items() if k not in persistent_skip},
                       modules=children, attributes=_attributes(arch, cls, module, config, name or cls, parent_name),
                       args=args, kwargs=kwargs)


def make_record(class_name: str, *, parameters: dict, buffers: dict, modules: dict, attributes: dict, args: tuple,
                kwargs: dict) -> PersistentRecord:
    """A persistence record with the ``__dict__`` of a ``torch.nn.Module`` in eval mode without gradients:
    torch's bookkeeping in its order, then ``attributes``, then ``_init_args`` / ``_init_kwargs``.
    ``parameters`` become ``torch.nn.Parameter(requires_grad=False)`` (None stays None)."""
    state: dict[str, Any] = {"training": False}
    state["_parameters"] = {k: None if v is None else torch.nn.Parameter(v, requires_grad=False)
                            for k, v in parameters.items()}
    state["_buffers"] = dict(buffers)
    state["_non_persistent_buffers_set"] = set()
    for hook in _HOOK_DICTS[:2]:
        state[hook] = collections.OrderedDict()
    state["_is_full_backward_hook"] = None
    for hook in _HOOK_DICTS[2:]:
        state[hook] = collections.OrderedDict()
    state["_modules"] = dict(modules)
    state.update(attributes)
    state["_init_args"] = tuple(args)
    state["_init_kwargs"] = kwargs
    return PersistentRecord(class_name, state)


# ----------------------------------------------------------------------------------------------
# The pickler


class _NvidiaPickler(pickle._Pickler):  # the pure-Python pickler: its dispatch table can be extended
    dispatch = dict(pickle._Pickler.dispatch)

    def _save_global_ref(self, obj: _Global) -> None:
        self.save(obj.module)
        self.save(obj.name)
        self.write(pickle.STACK_GLOBAL)
        self.memoize(obj)

    def _save_record(self, obj: PersistentRecord) -> None:
        self.save(_RECONSTRUCT)
        self.save((obj.meta,))
        self.write(pickle.REDUCE)
        self.memoize(obj)

    def _save_easydict(self, obj: EasyDict) -> None:
        self.save(_EASYDICT)
        self.save(())
        self.write(pickle.NEWOBJ)
        self.memoize(obj)
        self._batch_setitems(iter(obj.items()))

    dispatch[_Global] = _save_global_ref
    dispatch[PersistentRecord] = _save_record
    dispatch[EasyDict] = _save_easydict


def dump_snapshot(snapshot: dict, fh: BinaryIO) -> None:
    """``pickle.dump`` of a snapshot dict holding :class:`PersistentRecord` networks (protocol 4, as NVIDIA's)."""
    _NvidiaPickler(fh, protocol=4).dump(snapshot)


def write_nvidia_pickle(G, config: dict, fh: BinaryIO, *, with_g: bool = True,
                        D: PersistentRecord | None = None) -> None:
    """Write ``G`` (a stylekit StyleGAN2/3 generator built from the official ``config``) as an NVIDIA
    snapshot: ``{'training_set_kwargs': None, 'G': ..., 'D': D, 'G_ema': ..., 'augment_pipe': None}``.

    ``G`` is stored twice (as ``G`` with copied tensors and as ``G_ema``) when ``with_g``, like a real
    snapshot (whose G and G_ema differ; a rehearsal file does not need them to). ``D``: a discriminator
    record (:func:`stylekit.rehearsal.discriminator.discriminator_record`) or None.
    """
    arch = G.arch
    g_ema = network_record(G, config, arch=arch)
    g = network_record(G, config, arch=arch, clone=True) if with_g else None
    dump_snapshot({"training_set_kwargs": None, "G": g, "D": D, "G_ema": g_ema, "augment_pipe": None}, fh)
