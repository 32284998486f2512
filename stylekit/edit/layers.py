"""Which W+ rows and style layers an edit touches: presets, resolutions and argument checks.

StyleGAN's synthesis network reads one W vector per layer (``num_ws`` of them). Early layers work
at low resolution and decide pose and face shape, middle layers features such as hair style and
eyes, late layers colour and fine texture (Karras et al. 2019, "style mixing"). The presets

- ``'coarse'``: layers whose resolution is 4-8 px,
- ``'middle'``: 16-32 px,
- ``'fine'``:   64 px and up,

are computed here from the synthesis network's own structure, never hard-coded for 18 layers, so
they are right for a 16 px toy model, a 1024 px FFHQ model and a StyleGAN3 alike.

The *resolution of a style layer* is read from the layer module: the block resolution of a
StyleGAN2 layer (``b32.conv0`` -> 32), and for StyleGAN3 layers twice their cutoff frequency (the
finest detail they carry, in pixels: a layer band-limited to 8 cycles per image acts like a 16 px
layer). A W+ row feeding several layers (in StyleGAN2 a ToRGB shares its row with the next block's
first convolution) belongs to the lowest of their resolutions; that reproduces the usual FFHQ split
0-3 / 4-7 / 8-17.
"""

from __future__ import annotations

import math
import re
from typing import Iterable

import numpy as np
import torch

from ..errors import InvalidArgumentError

PRESETS = ("coarse", "middle", "fine")

__all__ = ["PRESETS", "style_layer_resolutions", "ws_resolutions", "layer_presets", "resolve_layers",
           "resolve_style_layer", "check_strength", "describe_layers", "layers_for_direction"]


def _module(G, name: str):
    try:
        return G.synthesis.get_submodule(name)
    except AttributeError:
        return None


def _layer_resolution(G, name: str, ws_index: int) -> float | None:
    module = _module(G, name)
    if module is not None:
        for attr, factor in (("out_cutoff", 2.0), ("bandwidth", 2.0), ("resolution", 1.0)):
            value = getattr(module, attr, None)
            if value is not None:
                try:
                    value = float(value)
                except (TypeError, ValueError):
                    continue
                if value > 0:
                    return value * factor
    match = re.match(r"b(\d+)\.", name)
    if match:
        return float(match.group(1))
    return None


def style_layer_resolutions(G) -> list[float]:
    """The resolution (pixels) at which each entry of ``G.style_layers`` works (see module docstring)."""
    out = []
    n = max(G.num_ws - 1, 1)
    for sl in G.style_layers:
        res = _layer_resolution(G, sl.name, sl.ws_index)
        if res is None:  # unknown architecture: spread 4 px .. R geometrically over the W+ rows
            res = 4.0 * (G.img_resolution / 4.0) ** (sl.ws_index / n)
        out.append(res)
    return out


def ws_resolutions(G) -> list[float]:
    """Resolution per W+ row ``[num_ws]``: the lowest resolution among the style layers it feeds."""
    res: list[float | None] = [None] * G.num_ws
    for sl, r in zip(G.style_layers, style_layer_resolutions(G)):
        if 0 <= sl.ws_index < G.num_ws:
            res[sl.ws_index] = r if res[sl.ws_index] is None else min(res[sl.ws_index], r)
    # a row no style layer reads (none in NVIDIA's networks) takes its predecessor's resolution
    last = 4.0
    for i, r in enumerate(res):
        if r is None:
            res[i] = last
        last = res[i]
    return res  # type: ignore[return-value]


def layer_presets(G) -> dict[str, tuple[int, ...]]:
    """``{'coarse': (...), 'middle': (...), 'fine': (...)}``: W+ row indices per preset.

    The three together cover every row exactly once; a small generator may have an empty preset
    (a 16 px model has no 'fine' layers).
    """
    groups: dict[str, list[int]] = {p: [] for p in PRESETS}
    for i, r in enumerate(ws_resolutions(G)):
        octave = round(math.log2(max(r, 1.0)))
        groups["coarse" if octave <= 3 else "middle" if octave <= 5 else "fine"].append(i)
    return {k: tuple(v) for k, v in groups.items()}


def _span(idx: tuple[int, ...]) -> str:
    if not idx:
        return "none"
    if list(idx) == list(range(idx[0], idx[-1] + 1)):
        return f"{idx[0]}-{idx[-1]}" if len(idx) > 1 else str(idx[0])
    return ",".join(map(str, idx))


def describe_layers(G) -> str:
    """One line naming the presets and their rows, e.g. ``"coarse 0-3, middle 4-7, fine 8-17"``."""
    return ", ".join(f"{k} {_span(v)}" for k, v in layer_presets(G).items())


def resolve_layers(G, layers, *, num_ws: int | None = None) -> tuple[int, ...]:
    """W+ row indices from a user's choice.

    Args:
        G: the generator (needed for presets; may be None when ``num_ws`` is given and no preset is used).
        layers: None or ``'all'`` (every row); ``'coarse'``/``'middle'``/``'fine'`` or a ``'+'``-joined
            mix (``'coarse+middle'``); a range string ``'4-7'``; an int; a ``range``/``slice``; or an
            iterable of ints.
        num_ws: the number of rows (defaults to ``G.num_ws``).

    Returns: sorted unique indices in ``[0, num_ws)``.
    """
    n = num_ws if num_ws is not None else G.num_ws
    valid = (f"pass indices in 0-{n - 1}, a range like '4-7', 'all', or a preset"
             + (f" ({describe_layers(G)})" if G is not None else " ('coarse', 'middle', 'fine')"))
    if layers is None:
        return tuple(range(n))
    if isinstance(layers, str):
        key = layers.strip().lower()
        if key == "all":
            return tuple(range(n))
        m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", key)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if lo > hi:
                raise InvalidArgumentError(f"layer range {layers!r} runs backwards; write it low-high, e.g. '4-7'.")
            return resolve_layers(G, range(lo, hi + 1), num_ws=n)
        if re.fullmatch(r"\d+", key):
            return resolve_layers(G, int(key), num_ws=n)
        parts = [p.strip() for p in key.split("+")]
        if all(p in PRESETS for p in parts):
            if G is None:
                raise InvalidArgumentError(f"the preset {layers!r} needs the generator; pass G.")
            presets = layer_presets(G)
            out = sorted({i for p in parts for i in presets[p]})
            if not out:
                raise InvalidArgumentError(f"this {G.img_resolution} px generator has no {layers!r} layers "
                                           f"({describe_layers(G)}); choose another preset or explicit indices.")
            return tuple(out)
        raise InvalidArgumentError(f"unknown layer choice {layers!r}; {valid}.")
    if isinstance(layers, slice):
        return resolve_layers(G, range(n)[layers], num_ws=n)
    if isinstance(layers, torch.Tensor):
        layers = layers.flatten().tolist()
    if isinstance(layers, (int, np.integer)) and not isinstance(layers, bool):
        layers = [int(layers)]
    if not isinstance(layers, Iterable):
        raise InvalidArgumentError(f"layers must be indices, a range, 'all' or a preset, not {type(layers).__name__}; "
                                   f"{valid}.")
    out = set()
    for i in layers:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise InvalidArgumentError(f"layer index {i!r} is not an integer; {valid}.")
        if not 0 <= int(i) < n:
            raise InvalidArgumentError(f"layer {int(i)} is outside this generator's W+ layers 0-{n - 1}; {valid}.")
        out.add(int(i))
    if not out:
        raise InvalidArgumentError(f"the layer choice is empty; {valid}.")
    return tuple(sorted(out))


def layers_for_direction(G, layers) -> tuple[int, ...] | None:
    """Rows to store on a Direction: None stays None; with ``G`` anything :func:`resolve_layers`
    accepts; without ``G`` only explicit indices (a preset name needs the generator)."""
    if layers is None:
        return None
    if G is not None:
        return resolve_layers(G, layers)
    if isinstance(layers, (str, slice)):
        raise InvalidArgumentError(f"the layer choice {layers!r} needs the generator; pass G=... as well.")
    if isinstance(layers, (int, np.integer)) and not isinstance(layers, bool):
        layers = [layers]
    out = []
    for i in layers:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or i < 0:
            raise InvalidArgumentError(f"layer index {i!r} is not a non-negative integer.")
        out.append(int(i))
    if not out:
        raise InvalidArgumentError("the layer choice is empty.")
    return tuple(sorted(set(out)))


def resolve_style_layer(G, layer) -> int:
    """Index into ``G.style_layers`` from an index or a name (``'b16.conv0'``); errors list the names."""
    names = [sl.name for sl in G.style_layers]
    if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
        if not 0 <= int(layer) < len(names):
            raise InvalidArgumentError(f"style layer {int(layer)} does not exist; this generator has style layers "
                                       f"0-{len(names) - 1} ({', '.join(names)}).")
        return int(layer)
    if isinstance(layer, str) and layer in names:
        return names.index(layer)
    raise InvalidArgumentError(f"unknown style layer {layer!r}; pass an index 0-{len(names) - 1} or one of: "
                               f"{', '.join(names)}.")


def check_strength(value, *, name: str = "strength", batch: int | None = None):
    """A finite float (or a finite ``[N]`` tensor, one value per code) from ``value``.

    Raises InvalidArgumentError for NaN/inf, booleans, strings and wrong-length tensors.
    """
    if isinstance(value, torch.Tensor) and value.ndim == 1 and value.numel() > 1:
        if not torch.isfinite(value).all():
            raise InvalidArgumentError(f"{name} contains NaN or infinite values; pass finite numbers such as 2.0 or -2.0.")
        if batch is not None and value.numel() not in (1, batch):
            raise InvalidArgumentError(f"{name} has {value.numel()} values but there are {batch} codes; pass one "
                                       "number or one per code.")
        return value.to(torch.float32)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidArgumentError(f"{name} must be a number such as 2.0 or -2.0, got {value!r}.")
    value = float(value)
    if not math.isfinite(value):
        raise InvalidArgumentError(f"{name} must be a finite number, got {value}; pass e.g. 2.0 or -2.0.")
    return value
