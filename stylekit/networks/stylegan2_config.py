"""StyleGAN2's constructor kwargs: validation and normalisation of NVIDIA's ``Generator`` config.

:func:`normalize_config` turns the official kwargs (flat, or nested under ``synthesis_kwargs`` as in
stylegan2-ada-pytorch) into one complete, JSON-able dict; :func:`channel_table` gives the channels
per block resolution.
"""

from __future__ import annotations

import math

from ..errors import InvalidArgumentError

_MAPPING_KEYS = ("num_layers", "embed_features", "layer_features", "lr_multiplier", "w_avg_beta")


def _as_int(key: str, value, minimum: int = 0) -> int:
    """``value`` as an int >= ``minimum``; ``InvalidArgumentError`` naming the config ``key`` otherwise."""
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"StyleGAN2 config {key!r} must be an integer, got {value!r}.") from None
    if out != value or out < minimum:
        raise InvalidArgumentError(f"StyleGAN2 config {key!r} must be an integer >= {minimum}, got {value!r}.")
    return out


def _flat_config(config) -> dict:
    """The official kwargs with a nested ``synthesis_kwargs`` dict merged in (top-level keys win)."""
    if not isinstance(config, dict):
        raise InvalidArgumentError(f"a StyleGAN2 config must be a dict of the official Generator kwargs, not "
                                   f"{type(config).__name__}.")
    flat = {k: v for k, v in config.items() if k != "synthesis_kwargs"}
    nested = config.get("synthesis_kwargs")
    if isinstance(nested, dict):
        flat = {**nested, **flat}
    for key in ("z_dim", "w_dim", "img_resolution"):
        if key not in flat:
            raise InvalidArgumentError(f"the StyleGAN2 config lacks {key!r}; pass the official Generator kwargs "
                                       "(z_dim, c_dim, w_dim, img_resolution, ...).")
    return flat


def _mapping_config(mapping_kwargs) -> dict:
    """The mapping network's kwargs that change its maths (``_MAPPING_KEYS``), typed."""
    mapping_kwargs = dict(mapping_kwargs or {})
    activation = mapping_kwargs.pop("activation", "lrelu")
    if activation != "lrelu":
        raise InvalidArgumentError(f"mapping activation {activation!r} is not supported (only 'lrelu').")
    mapping = {}
    for key in _MAPPING_KEYS:
        value = mapping_kwargs.get(key)
        if value is None:
            continue
        if key in ("lr_multiplier", "w_avg_beta"):
            mapping[key] = float(value)
        else:
            mapping[key] = _as_int(f"mapping_kwargs.{key}", value, 0)
    return mapping


def _resample_taps(taps) -> list:
    """``resample_filter`` as a list of numbers (ints where integral), non-empty with a non-zero sum."""
    try:
        taps = [float(t) for t in taps]
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"resample_filter must be a list of 1-D filter taps, got {taps!r}.") from None
    if not taps or sum(taps) == 0:
        raise InvalidArgumentError(f"resample_filter {taps!r} must be non-empty with a non-zero sum.")
    return [int(t) if t == int(t) else t for t in taps]


def _channel_overrides(channels) -> dict[str, int]:
    """stylekit's ``channels`` override ``{resolution: channels}`` with string keys (JSON-able)."""
    if not isinstance(channels, dict):
        raise InvalidArgumentError("config 'channels' must map resolution -> channels, e.g. {'4': 512, '8': 512}.")
    table = {}
    for key, value in channels.items():
        r = _as_int("channels key", int(key) if isinstance(key, str) and key.isdigit() else key, 4)
        table[str(r)] = _as_int(f"channels[{r}]", value, 1)
    return table


def normalize_config(config: dict) -> dict:
    """Validate the official ``Generator`` kwargs and return a complete, JSON-able copy.

    Accepts both the flat form of ``networks_stylegan2.py`` (synthesis kwargs next to ``z_dim``)
    and the nested ``synthesis_kwargs={...}`` of stylegan2-ada-pytorch ``networks.py``. Keys that
    do not change the network's maths (``num_fp16_res``, ``fp16_channels_last``,
    ``fused_modconv_default``, ``epochs``, ...) are dropped.
    """
    flat = _flat_config(config)
    out: dict = {
        "z_dim": _as_int("z_dim", flat["z_dim"]),
        "c_dim": _as_int("c_dim", flat.get("c_dim", 0)),
        "w_dim": _as_int("w_dim", flat["w_dim"], 1),
        "img_resolution": _as_int("img_resolution", flat["img_resolution"], 4),
        "img_channels": _as_int("img_channels", flat.get("img_channels", 3), 1),
    }
    res = out["img_resolution"]
    if res & (res - 1):
        raise InvalidArgumentError(f"img_resolution must be a power of two >= 4, got {res}.")
    out["mapping_kwargs"] = _mapping_config(flat.get("mapping_kwargs"))
    out["channel_base"] = _as_int("channel_base", flat.get("channel_base", 32768), 1)
    out["channel_max"] = _as_int("channel_max", flat.get("channel_max", 512), 1)
    out["num_fp16_res"] = _as_int("num_fp16_res", flat.get("num_fp16_res", 0) or 0)
    clamp = flat.get("conv_clamp", None)
    out["conv_clamp"] = None if clamp is None else float(clamp)
    arch = flat.get("architecture", "skip")
    if arch == "resnet":
        raise InvalidArgumentError("StyleGAN2 architecture 'resnet' is not supported by stylekit's generator "
                                   "(only 'skip', used by all official StyleGAN2 models, and 'orig').")
    if arch not in ("skip", "orig"):
        raise InvalidArgumentError(f"unknown StyleGAN2 architecture {arch!r}; use 'skip' or 'orig'.")
    out["architecture"] = arch
    out["resample_filter"] = _resample_taps(flat.get("resample_filter", [1, 3, 3, 1]))
    out["use_noise"] = bool(flat.get("use_noise", True))
    for key, allowed in (("kernel_size", 3), ("activation", "lrelu")):
        if key in flat and flat[key] != allowed:
            raise InvalidArgumentError(f"StyleGAN2 {key}={flat[key]!r} is not supported (only {allowed!r}).")
    if flat.get("channels") is not None:
        out["channels"] = _channel_overrides(flat["channels"])
    return out


def channel_table(config: dict) -> dict[int, int]:
    """Channels per block resolution ``{4: C4, 8: C8, ..., R: CR}`` of a normalised config."""
    resolutions = [2 ** i for i in range(2, int(math.log2(config["img_resolution"])) + 1)]
    table = {r: min(config["channel_base"] // r, config["channel_max"]) for r in resolutions}
    for key, value in (config.get("channels") or {}).items():
        if int(key) in table:
            table[int(key)] = int(value)
    return table
