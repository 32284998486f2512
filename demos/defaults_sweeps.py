"""The sweeps behind the gallery's measured defaults (``python -m demos.defaults_check --sweep``).

Each sweep edits the development seeds in a batch with the library calls the tab makes and reports,
per candidate value: the mean absolute pixel change (0-255), the predictor's change of the intended
attribute (or the largest change of any attribute), and the largest typicality (see
:class:`demos.defaults_check.Judge`; above about 1.5 the face no longer looks like a generated one).
"""

from __future__ import annotations

import json
import time

import torch

from stylekit.latent import Latent


def _batch(G, seeds) -> Latent:
    return Latent.cat([Latent.from_seed(G, s, psi=0.7) for s in seeds])


def _row(judge, before, after, attribute=None) -> dict:
    b, a = judge.read(before), judge.read(after)
    deltas = {k: float((a[k] - b[k]).mean()) / judge.span(k) for k in b if k != "typicality"}  # unit scale
    top = attribute or max(deltas, key=lambda k: abs(deltas[k]))
    second = max((k for k in deltas if k != top), key=lambda k: abs(deltas[k]))
    change = ((after - before).abs() * 127.5).mean(dim=(1, 2, 3))
    return {"change": float(change.mean()), "change_min": float(change.min()), "attribute": top,
            "delta": deltas[top], "before": float(b[top].mean()), "after": float(a[top].mean()),
            "second": second, "second_delta": deltas[second], "typicality_max": float(a["typicality"].max()),
            "typicality_median": float(a["typicality"].median())}


def _render(G, latent):
    with torch.no_grad():
        return latent.render(G)


def sefa_sweep(G, judge, seeds) -> list[dict]:
    from stylekit.edit import edit
    from stylekit.edit.sefa import sefa, sefa_direction

    base = _batch(G, seeds)
    before = _render(G, base)
    rows = []
    for layers in ("all", "middle", "fine"):
        factors = sefa(G, layers=layers, k=3)
        for index in range(3):
            for strength in (0.5, 1.0, 1.5, 2.0, 3.0, 5.0):
                after = _render(G, edit(base, sefa_direction(factors, index), strength, G=G))
                rows.append({"layers": layers, "direction": index, "strength": strength,
                             **_row(judge, before, after)})
    return rows


def stylespace_sweep(G, judge, seeds, stats) -> list[dict]:
    from demos.edit import _attributes
    from stylekit.edit import interfacegan
    from stylekit.edit.stylespace import channels_from_gradients, edit_channel

    base = _batch(G, seeds)
    before = _render(G, base)
    rows = []
    for attribute in _attributes():
        scorer = interfacegan.predictor_scorer(attribute, predictor=judge.predictor)
        for cs in channels_from_gradients(G, scorer, base, top_k=3, stats=stats):
            for amount in (3.0, 5.0, 8.0, 10.0):
                signed = amount if cs.score > 0 else -amount
                after = _render(G, edit_channel(G, base, cs.layer_index, cs.channel, signed, stats=stats))
                rows.append({"layer": cs.layer, "channel": cs.channel, "amount": signed, "gradient_score": cs.score,
                             **_row(judge, before, after, attribute)})
    return rows


def analogy_sweep(G, judge, seeds) -> list[dict]:
    from demos.morph import example_pair
    from stylekit.edit import analogy, layer_presets

    a, b = example_pair("toyfaces", G)
    rows = []
    base = _batch(G, seeds)
    before = _render(G, base)
    for layers in ("all", "coarse", "middle"):
        layer_rows = None if layers == "all" else layer_presets(G)[layers]
        for strength in (1.0, 1.5, 2.0, 3.0):
            outs = [analogy(G, base.select(i), a, b, strength=strength, layers=layer_rows)
                    for i in range(base.batch_size)]
            after = _render(G, Latent.cat(outs))
            rows.append({"layers": layers, "strength": strength, **_row(judge, before, after, "smile")})
    return rows


def mapper_sweep(G, judge, seeds, prompt="a face with glasses", attribute="glasses") -> list[dict]:
    from stylekit.text import apply_mapper, train_mapper

    base = _batch(G, seeds)
    before = _render(G, base)
    rows = []
    for steps in (30, 60, 100, 150):
        t0 = time.perf_counter()
        mapper, _ = train_mapper(G, prompt, clip="toyfaces", preset="toyfaces", steps=steps)
        seconds = time.perf_counter() - t0
        after = _render(G, apply_mapper(mapper, base, G=G))
        rows.append({"steps": steps, "train_seconds": seconds, **_row(judge, before, after, attribute)})
    return rows


def run_all(G, judge, seeds, which=("sefa", "stylespace", "analogy", "mapper")) -> dict:
    from demos.stylespace import stats

    out = {}
    for name in which:
        t0 = time.perf_counter()
        if name == "sefa":
            rows = sefa_sweep(G, judge, seeds)
        elif name == "stylespace":
            rows = stylespace_sweep(G, judge, seeds, stats("toyfaces", G))
        elif name == "analogy":
            rows = analogy_sweep(G, judge, seeds)
        else:
            rows = mapper_sweep(G, judge, seeds)
        out[name] = rows
        print(f"## {name} ({time.perf_counter() - t0:.0f} s)", flush=True)
        for r in rows:
            print(json.dumps(r, default=lambda x: round(float(x), 3)), flush=True)
    return out
