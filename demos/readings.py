"""What the captions report: which W+ rows / style layers an edit touched (by name and count, read
from the model) and the attribute predictor's readings before and after (when the model has one)."""

from __future__ import annotations

import torch

from .common import cached_fit
from .device import device


def predictor_for(model: str):
    """The attribute predictor that goes with ``model`` (its registry companion), loaded once; None when
    the model has none (then captions carry no attribute readings)."""
    from stylekit import registry

    name = registry.companion(model, "predictor") if isinstance(model, str) else None
    if name is None:
        return None

    def load():
        from stylekit.checkpoints.predictor import load_predictor

        return load_predictor(name, device=device())

    return cached_fit(("predictor", name), load)


def read(predictor, images: torch.Tensor) -> dict[str, float]:
    """``images [1, 3, R, R]`` in [-1, 1] -> attribute name -> the predictor's reading (attribute units)."""
    with torch.no_grad():
        return {k: float(v[0]) for k, v in predictor.predict(images.float()).items()}


def _span(predictor, name: str) -> float:
    j = list(predictor.attribute_names).index(name)
    return float(predictor.high[j] - predictor.low[j]) or 1.0


def change_line(model: str, before: torch.Tensor, after: torch.Tensor, attribute: str | None = None) -> str:
    """``'predicted glasses 0.25 -> 0.91'`` for ``attribute``, or for the attribute that changed most
    (relative to its range) when ``attribute`` is None; ``''`` when the model has no predictor."""
    predictor = predictor_for(model)
    if predictor is None:
        return ""
    b, a = read(predictor, before), read(predictor, after)
    if attribute is None or attribute not in b:
        attribute = max(b, key=lambda k: abs(a[k] - b[k]) / _span(predictor, k))
        label = "largest predicted change"
    else:
        label = "predicted"
    return f"{label}: **{attribute} {b[attribute]:.2f} -> {a[attribute]:.2f}**"


def _ranges(rows) -> str:
    rows = sorted(set(int(r) for r in rows))
    parts, start = [], rows[0]
    for prev, cur in zip(rows, rows[1:] + [None]):
        if cur != prev + 1:
            parts.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = cur
    return ", ".join(parts)


def describe_rows(G, rows=None, *, kinds=None) -> str:
    """``'all 10 W+ rows (14 style layers, b4.conv1 ... b64.torgb)'`` or ``'W+ rows 0-3 of 10 (5 style layers,
    b4.conv1 ... b16.conv0)'``; ``kinds`` keeps only those style layers (e.g. ``('conv',)``)."""
    all_rows = rows is None or set(int(r) for r in rows) == set(range(G.num_ws))
    rows = range(G.num_ws) if rows is None else rows
    chosen = {int(r) for r in rows}
    layers = [sl.name for sl in G.style_layers if sl.ws_index in chosen and (kinds is None or sl.kind in kinds)]
    what = f"{len(layers)} {'convolution ' if kinds == ('conv',) else ''}style layers"
    names = f"{layers[0]} ... {layers[-1]}" if len(layers) > 1 else (layers[0] if layers else "none")
    where = f"all {G.num_ws} W+ rows" if all_rows else f"W+ rows {_ranges(chosen)} of {G.num_ws}"
    return f"{where} ({what}: {names})"


def describe_group(G, group: str, rows=None, *, kinds=None) -> str:
    """``'the coarse layers, W+ rows 0-3 of 10 (5 style layers: b4.conv1 ... b16.conv0)'`` (``'all layers, ...'``)."""
    name = "all layers" if group == "all" else f"the {group} layers"
    return f"{name}, {describe_rows(G, rows, kinds=kinds)}"
