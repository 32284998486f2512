"""StyleFlow (Abdal et al., ACM TOG 2021): attribute-conditioned edits with a conditional continuous normalizing flow.

An :class:`~stylekit.networks.flow.AttributeFlow` maps a W code and its attributes to Gaussian noise ``eps``.
An edit maps the code to ``eps`` with its *source* attributes, changes the asked attributes, and maps ``eps``
back with the new ones (the paper's reconstruct-then-edit); attributes not asked keep their values, so a
sequence of edits changes one thing at a time, as the paper shows. W+ codes (inversions of images) are mapped
row by row with the same attributes; ``layers`` limits the edit to some rows.

- :func:`styleflow_edit`: ``(G, flow, latent, {"smile": 0.8}, source=... | predictor=...)`` -> the edited W+
  :class:`~stylekit.latent.Latent`. The source attributes are given (a full set, each in its own unit) or read
  from the latent's render by an attribute predictor (binary readings snapped to 0 / 1, the values the flow was
  trained on); benchmarks read them with the predictor too, never the judge.
- :func:`styleflow_sequence`: several edits one after another, each keeping the values set before it; returns
  the code after every step.
- :func:`read_attributes`: what a predictor reads of the flow's attributes.
- :func:`save_flow` / :func:`load_flow`: safetensors with the config, the generator's name and its
  :func:`~stylekit.networks.fingerprint.generator_fingerprint`; a flow is refused for any other generator with a
  message naming both. Registered flows are kind ``"styleflow"`` (``load_flow("toyfaces")``; a generator's
  ``companions["styleflow"]`` names its own). ``python -m stylekit.train styleflow`` trains one for any generator
  with any labeller (the toyfaces ground truth, an attribute predictor, or a Python scorer such as CLIP zero-shot).

Where the round trip ``w -> eps -> w`` is not exact (rows far from what the flow was trained on, such as some
inversions), its error is added back: the edit is ``w + T_a'^-1(eps) - T_a^-1(eps)``, so asking the source
attributes returns the code unchanged.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from ..errors import CheckpointError, InvalidArgumentError, ModelNotFoundError
from ..latent import Latent, as_latent
from ..networks.fingerprint import generator_fingerprint
from ..networks.flow import AttributeFlow

__all__ = ["FORMAT", "FORMAT_VERSION", "NO_FLOW_NOTE", "AttributeFlow", "attribute_units", "read_attributes",
           "styleflow_edit", "styleflow_sequence", "save_flow", "load_flow", "check_flow_for", "resolve_flow_path"]

#: The ``format`` tag of flow files.
FORMAT = "stylekit.styleflow"
FORMAT_VERSION = "1"
#: What a model without a flow is told (the gallery shows it; errors end with it).
NO_FLOW_NOTE = ("StyleFlow needs a flow trained for the generator on labelled codes: python -m stylekit.train "
                "styleflow --generator NAME --labeller predictor:NAME (or a Python labeller such as CLIP zero-shot "
                "scores, stylekit.train.styleflow.train_styleflow). Only the toyfaces world ships one.")
_RANGE_TOL = 1e-6


def _values(name: str, value, n: int) -> np.ndarray:
    """``value`` (a number, or ``[N]`` numbers) as float64 ``[n]``."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"attribute {name!r} must be a number (or one number per code), got "
                                   f"{type(value).__name__}.") from None
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise InvalidArgumentError(f"attribute {name!r} must be one number or {n} numbers (one per code), got shape "
                                   f"{arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise InvalidArgumentError(f"attribute {name!r} must be finite, got {value!r}.")
    return arr


def _unknown(flow: AttributeFlow, names) -> InvalidArgumentError:
    return InvalidArgumentError(f"unknown attribute(s) {', '.join(repr(n) for n in names)} for this flow; it is "
                                f"conditioned on: {', '.join(flow.attribute_names)}.")


def attribute_units(flow: AttributeFlow, values: Mapping[str, object], n: int, *, what: str = "attribute"
                    ) -> dict[str, np.ndarray]:
    """Check attribute values (each in its own unit) and turn them into unit scale: dict name -> float64 ``[n]``.

    Raises InvalidArgumentError for an unknown name (the message lists the flow's attributes), a value outside its
    range (the message gives the range) or not a finite number."""
    if not isinstance(values, Mapping):
        raise InvalidArgumentError(f"pass the {what} values as a dict name -> value, got {type(values).__name__}.")
    unknown = [k for k in values if k not in flow.attribute_names]
    if unknown:
        raise _unknown(flow, unknown)
    out = {}
    for param in flow.attributes:
        if param.name not in values:
            continue
        arr = _values(param.name, values[param.name], n)
        if arr.min() < param.low - _RANGE_TOL or arr.max() > param.high + _RANGE_TOL:
            bad = arr[(arr < param.low - _RANGE_TOL) | (arr > param.high + _RANGE_TOL)][0]
            hint = " (0 = no, 1 = yes)" if param.kind == "binary" else ""
            raise InvalidArgumentError(f"attribute {param.name!r} must be within [{param.low:g}, {param.high:g}]"
                                       f"{hint}, got {bad:g}.")
        out[param.name] = np.clip(param.to_unit(arr), 0.0, 1.0)
    return out


def check_flow_for(flow: AttributeFlow, G, *, generator_name: str | None = None) -> None:
    """Raise CheckpointError unless ``flow`` was trained for ``G`` (the same W width and, when the flow came from a
    file, the same :func:`generator_fingerprint`). ``generator_name`` names ``G`` in the message."""
    given = f"the generator {generator_name!r}" if generator_name else "the given generator"
    trained = getattr(flow, "generator_name", None) or "another generator"
    if G.w_dim != flow.w_dim:
        raise CheckpointError(f"this StyleFlow flow was trained for generator {trained!r} (W width {flow.w_dim}), not "
                              f"for {given} (W width {G.w_dim}); train one for it with python -m stylekit.train "
                              "styleflow.")
    fingerprint = getattr(flow, "fingerprint", None)
    if fingerprint:
        got = generator_fingerprint(G)
        if got != fingerprint:
            raise CheckpointError(f"this StyleFlow flow was trained for generator {trained!r} (fingerprint "
                                  f"{fingerprint[:12]}...), not for {given} (fingerprint {got[:12]}...); a flow only "
                                  "works with the generator whose W it learned. Train one for it with python -m "
                                  "stylekit.train styleflow.")


@torch.no_grad()
def read_attributes(G, flow: AttributeFlow, latent, predictor, *, snap_binary: bool = True,
                    batch_size: int = 32) -> dict[str, np.ndarray]:
    """What ``predictor`` (an :class:`~stylekit.networks.predictor.AttributePredictor` with a head per flow
    attribute) reads of ``latent``'s renders: dict name -> float64 ``[N]`` in each attribute's unit, clipped to its
    range; binary attributes snapped to 0 / 1 (``snap_binary``) or as probabilities."""
    missing = [n for n in flow.attribute_names if n not in predictor.attribute_names]
    if missing:
        raise InvalidArgumentError(f"this predictor has no head for the flow's attributes {missing}; it reads: "
                                   f"{', '.join(predictor.attribute_names)}. Give the source attributes instead.")
    lat = as_latent(latent, G)
    cols = [predictor.attribute_names.index(n) for n in flow.attribute_names]
    unit = []
    for i in range(0, lat.batch_size, batch_size):
        img = lat.select(slice(i, i + batch_size)).render(G, noise_mode="const")
        unit.append(predictor.predict_unit(img)[:, cols].double().cpu().numpy())
    unit = np.clip(np.concatenate(unit), 0.0, 1.0)
    out = {}
    for j, p in enumerate(flow.attributes):
        u = unit[:, j]
        if snap_binary and p.kind == "binary":
            u = (u > 0.5).astype(np.float64)
        out[p.name] = p.from_unit(u)
    return out


def _source_units(G, flow, lat: Latent, source, predictor) -> np.ndarray:
    """The source attributes ``[N, A]`` in unit scale, given or read."""
    n = lat.batch_size
    if source is None:
        if predictor is None:
            raise InvalidArgumentError("StyleFlow needs the code's source attributes: pass source={name: value, ...} "
                                       "(every attribute of the flow) or predictor=... to read them from the render.")
        source = read_attributes(G, flow, lat, predictor)
    units = attribute_units(flow, source, n, what="source attribute")
    missing = [p for p in flow.attribute_names if p not in units]
    if missing:
        raise InvalidArgumentError(f"source attributes missing: {', '.join(missing)}; StyleFlow maps a code with all "
                                   f"its attributes ({', '.join(flow.attribute_names)}); pass predictor=... to read "
                                   "them.")
    return np.stack([units[p] for p in flow.attribute_names], axis=1)


def _check_changes(flow, changes, n: int) -> dict[str, np.ndarray]:
    if not isinstance(changes, Mapping) or not changes:
        raise InvalidArgumentError(f"ask for at least one attribute value, e.g. {{'{flow.attribute_names[0]}': ...}}; "
                                   f"this flow is conditioned on: {', '.join(flow.attribute_names)}.")
    return attribute_units(flow, changes, n)


@torch.no_grad()
def _map_rows(flow: AttributeFlow, ws: torch.Tensor, rows: Sequence[int], source: np.ndarray,
              steps: Sequence[np.ndarray]) -> list[torch.Tensor]:
    """W+ codes ``ws [N, L, D]`` after each attribute set in ``steps`` (``[N, A]`` unit scale each), rows ``rows``
    edited, the others kept. Equal rows are mapped once."""
    param = flow.w_mean
    n, L, D = ws.shape
    same = bool(torch.all(ws == ws[:, :1]))
    picked = [0] if same else list(rows)
    w = ws[:, picked].reshape(-1, D).to(param.device, param.dtype)
    per_row = len(picked)

    def cond(units):
        return torch.from_numpy(np.repeat(units, per_row, axis=0)).to(param.device, param.dtype)

    a0 = cond(source)
    eps = flow.to_noise(w, a0)
    residual = w - flow.from_noise(eps, a0)  # the round trip's error, added back
    outs = []
    for units in steps:
        edited = (flow.from_noise(eps, cond(units)) + residual).to(ws.device, ws.dtype).reshape(n, per_row, D)
        out = ws.clone()
        out[:, list(rows)] = edited[:, :1].expand(-1, len(rows), -1) if same else edited
        outs.append(out)
    return outs


def styleflow_sequence(G, flow: AttributeFlow, latent, edits: Sequence[Mapping[str, object]], *,
                       source: Mapping[str, object] | None = None, predictor=None, layers=None,
                       generator_name: str | None = None, check: bool = True) -> list[Latent]:
    """Apply edits one after another: step ``k`` sets the attributes ``edits[k]`` names and keeps every value set
    or read before it. Returns the W+ :class:`Latent` after each step (noise maps and a tuned generator carried by
    ``latent`` are kept).

    Args:
        G: the generator the flow was trained for (maps Z codes, renders for the predictor, checks the flow).
        flow: an :class:`AttributeFlow` (e.g. ``load_flow("toyfaces", G=G)``).
        latent: ``N`` codes: a Z / W / W+ :class:`Latent` or a W+ tensor ``[N, num_ws, w_dim]``.
        edits: one dict per step, attribute name -> value in its own unit (a number, or ``[N]`` numbers).
        source: the codes' attributes (every attribute of the flow, each in its unit), or None to read them with
            ``predictor`` (binary readings snapped to 0 / 1).
        layers: the W+ rows to edit (:func:`stylekit.edit.layers.resolve_layers`: ``'all'``, ``'coarse'``,
            ``'4-7'``, indices ...); the others stay. Default: every row.
        generator_name: names ``G`` in a refusal. check: check the flow against ``G``.

    Raises:
        InvalidArgumentError: unknown attributes, values out of range, no source, an S latent, no edit.
        CheckpointError: the flow was trained for another generator.
    """
    from .layers import resolve_layers

    if not isinstance(flow, AttributeFlow):
        raise InvalidArgumentError(f"pass an AttributeFlow (e.g. stylekit.edit.styleflow.load_flow('toyfaces')), got "
                                   f"{type(flow).__name__}.")
    if check:
        check_flow_for(flow, G, generator_name=generator_name)
    if isinstance(edits, Mapping) or not isinstance(edits, Sequence) or not edits:
        raise InvalidArgumentError("pass the edits as a list of dicts, one per step, e.g. [{'smile': 0.8}, "
                                   "{'yaw': 10.0}].")
    lat = as_latent(latent, G).to_wplus(G)
    n = lat.batch_size
    rows = resolve_layers(G, layers, num_ws=lat.tensor.shape[1])
    units = _source_units(G, flow, lat, source, predictor)
    index = {name: j for j, name in enumerate(flow.attribute_names)}
    steps = []
    current = units.copy()
    for changes in edits:
        for name, u in _check_changes(flow, changes, n).items():
            current[:, index[name]] = u
        steps.append(current.copy())
    outs = _map_rows(flow, lat.tensor, rows, units, steps)
    return [lat.replace(space="w+", tensor=out) for out in outs]


def styleflow_edit(G, flow: AttributeFlow, latent, changes: Mapping[str, object], *,
                   source: Mapping[str, object] | None = None, predictor=None, layers=None,
                   generator_name: str | None = None, check: bool = True) -> Latent:
    """Set the attributes ``changes`` names (each in its own unit, e.g. ``{"smile": 0.8, "glasses": 1}``) and keep
    the others: returns the edited W+ :class:`Latent`. See :func:`styleflow_sequence` for the arguments."""
    return styleflow_sequence(G, flow, latent, [changes], source=source, predictor=predictor, layers=layers,
                              generator_name=generator_name, check=check)[0]


# ----------------------------------------------------------------------------------------------
# Files


def save_flow(flow: AttributeFlow, path: str | os.PathLike, *, generator: str, fingerprint: str,
              labeller: str = "", metrics: dict | None = None, command: str = "") -> Path:
    """Write ``flow`` (float32) as safetensors with its config, the generator's name and fingerprint
    (:func:`generator_fingerprint`), the labeller that gave its attributes, and optional metrics and training
    command in the metadata."""
    if not isinstance(generator, str) or not generator or not isinstance(fingerprint, str) or not fingerprint:
        raise InvalidArgumentError("save_flow needs the generator's name and its fingerprint "
                                   "(stylekit.networks.fingerprint.generator_fingerprint(G)).")
    from ..checkpoints.tagged import write_tagged

    state = {k: v.detach().to("cpu", torch.float32) for k, v in flow.state_dict().items()}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": json.dumps(flow.config),
            "generator": generator, "fingerprint": fingerprint, "labeller": labeller,
            "metrics": json.dumps(metrics or {}), "command": command}
    return write_tagged(path, state, meta)


def resolve_flow_path(spec: str | os.PathLike) -> Path:
    """A flow file from a registered name (``"toyfaces"``) or a path.

    Raises ModelNotFoundError for a name that is not registered (with :data:`NO_FLOW_NOTE`)."""
    from .. import registry

    path = Path(os.fspath(spec)).expanduser()
    if path.is_file() or path.suffix == ".safetensors":
        return path
    try:
        return registry.artifact_path(str(spec), "styleflow")
    except ModelNotFoundError as exc:
        raise ModelNotFoundError(f"{exc} {NO_FLOW_NOTE}") from None


def load_flow(spec: str | os.PathLike = "toyfaces", *, G=None, generator_name: str | None = None,
              device: str | torch.device = "cpu") -> AttributeFlow:
    """Load a StyleFlow flow: a registered name or a file. With ``G``, refuse it unless it was trained for ``G``
    (CheckpointError naming the flow's generator and ``generator_name``).

    The flow comes back in eval mode, parameters frozen, with ``generator_name``, ``fingerprint`` and ``meta``
    (labeller, metrics and command) set.

    Raises:
        ModelNotFoundError: an unknown name. CheckpointError: a missing, corrupt or foreign file, or another
        generator's flow.
    """
    from ..checkpoints.tagged import read_tagged

    path = resolve_flow_path(spec)
    meta, state = read_tagged(path, fmt=FORMAT, kind="StyleFlow flow",
                              missing="no such StyleFlow flow file; pass a registered name such as 'toyfaces' or "
                                      "train one with python -m stylekit.train styleflow.",
                              unreadable_advice="; retrain it with python -m stylekit.train styleflow")
    try:
        config = json.loads(meta.get("config", ""))
        flow = AttributeFlow(config["w_dim"], config["attributes"], hidden=config["hidden"], freqs=config["freqs"],
                             atol=config["atol"], rtol=config["rtol"])
        flow.load_state_dict({k: v.float() for k, v in state.items()})
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: the StyleFlow flow does not match its config ({exc}).") from None
    flow.generator_name = meta.get("generator", "")
    flow.fingerprint = meta.get("fingerprint", "")
    flow.meta = {"labeller": meta.get("labeller", ""), "metrics": json.loads(meta.get("metrics") or "{}"),
                 "command": meta.get("command", "")}
    flow = flow.requires_grad_(False).eval().to(device)
    if G is not None:
        check_flow_for(flow, G, generator_name=generator_name)
    return flow
