"""Rig control in the manner of StyleRig (Tewari et al. 2020): set named rig values of a face, get the edited latent.

A rig network (:class:`~stylekit.networks.rig.RigNet`) maps a W+ code and *asked* rig values (head yaw, roll,
smile, mouth and eyes open ...) to a delta added to every W+ row. It is trained for one generator, self-supervised
through an attribute predictor that reads the rig values back from the rendered edit
(``python -m stylekit.train rig``): reconstruction (asking the current values changes nothing), editing (the
edited face reads the asked values) and consistency (values not asked, and every other attribute, stay).

- :func:`apply_rig`: ``(G, rignet, latent, {name: value})`` -> the edited :class:`~stylekit.latent.Latent` (W+);
  values are in each rig value's own unit and range (``rignet.rig``), names not given stay as they are.
- :func:`read_rig`: what a predictor reads of the rig values of a latent's render (the gallery's sliders start
  there; the benchmarks read with the held-out judge instead).
- :func:`save_rig` / :func:`load_rig`: safetensors with the rig table, the generator's name and its
  :func:`~stylekit.networks.fingerprint.generator_fingerprint` in the metadata; a rig network is refused for
  any other generator, with a message naming both. Registered rig networks are kind ``"rig"``
  (``load_rig("toyfaces")``; a generator's ``companions["rig"]`` names its own).

**Real faces.** StyleRig's rig is a 3D morphable face model (3DMM: pose, expression, illumination) fitted to each
rendered image by a differentiable face reconstruction network; the training signal is the 3DMM fit of the
edited image. Nothing of that exists here: no 3DMM, no fitting network, no rig for FFHQ or any other
real-face generator. Those models have no registered rig, and :func:`load_rig` / the gallery say so. The toyfaces
world needs none: its renderer's parameters are a perfect rig and its attribute predictor reads them back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from ..errors import CheckpointError, InvalidArgumentError, ModelNotFoundError
from ..latent import Latent, as_latent
from ..networks.fingerprint import generator_fingerprint
from ..networks.rig import RigNet, RigParam

__all__ = ["FORMAT", "FORMAT_VERSION", "REAL_FACES_NOTE", "RigNet", "RigParam", "rig_inputs", "apply_rig",
           "read_rig", "save_rig", "load_rig", "check_rig_for", "resolve_rig_path"]

#: The ``format`` tag of rig files.
FORMAT = "stylekit.rig"
FORMAT_VERSION = "1"
#: What a model without a rig network is told (the gallery shows it; errors end with it).
REAL_FACES_NOTE = ("Rig control needs a rig network trained for the generator. StyleRig drives real faces with a 3D "
                   "morphable face model (3DMM) fitted to every rendered image; stylekit has no 3DMM fit, so rig "
                   "control for real faces (FFHQ and the other published models) is not available. The toyfaces "
                   "world has one: its renderer's parameters are the rig.")
_RANGE_TOL = 1e-6


def _values(name: str, value, n: int) -> np.ndarray:
    """``value`` (a number, or ``[N]`` numbers) as float64 ``[n]``."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"rig value {name!r} must be a number (or one number per code), got "
                                   f"{type(value).__name__}.") from None
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise InvalidArgumentError(f"rig value {name!r} must be one number or {n} numbers (one per code), got shape "
                                   f"{arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise InvalidArgumentError(f"rig value {name!r} must be finite, got {value!r}.")
    return arr


def rig_inputs(rignet: RigNet, targets: Mapping[str, object], n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Check asked values and turn them into the network's inputs.

    Args:
        targets: rig name -> value in its unit (a number for every code, or ``[n]`` numbers); names not given
            are not asked (they stay as they are).
        n: the number of codes.

    Returns: ``(unit [n, P], mask [n, P])`` float32: asked values in unit scale, 1 where asked.

    Raises:
        InvalidArgumentError: no value asked, an unknown name (the message lists the rig), a value outside its
            range (the message gives the range) or not a finite number.
    """
    if not isinstance(targets, Mapping) or not targets:
        raise InvalidArgumentError(f"ask for at least one rig value, e.g. {{'{rignet.rig_names[0]}': ...}}; this rig "
                                   f"has: {', '.join(rignet.rig_names)}.")
    unit = torch.zeros(n, len(rignet.rig))
    mask = torch.zeros(n, len(rignet.rig))
    index = {p.name: j for j, p in enumerate(rignet.rig)}
    for name, value in targets.items():
        if name not in index:
            raise InvalidArgumentError(f"unknown rig value {name!r}; this rig network controls: "
                                       f"{', '.join(rignet.rig_names)}.")
        param = rignet.rig[index[name]]
        arr = _values(name, value, n)
        if arr.min() < param.low - _RANGE_TOL or arr.max() > param.high + _RANGE_TOL:
            bad = arr[(arr < param.low - _RANGE_TOL) | (arr > param.high + _RANGE_TOL)][0]
            hint = " (0 = no, 1 = yes; fractions in between)" if param.kind == "binary" else ""
            raise InvalidArgumentError(f"rig value {name!r} must be within [{param.low:g}, {param.high:g}]{hint}, "
                                       f"got {bad:g}.")
        unit[:, index[name]] = torch.from_numpy(np.clip(param.to_unit(arr), 0.0, 1.0)).float()
        mask[:, index[name]] = 1.0
    return unit, mask


def check_rig_for(rignet: RigNet, G, *, generator_name: str | None = None) -> None:
    """Raise CheckpointError unless ``rignet`` was trained for ``G`` (same sizes and, when the network came from
    a file, the same :func:`generator_fingerprint`). ``generator_name`` names ``G`` in the message."""
    given = f"the generator {generator_name!r}" if generator_name else "the given generator"
    trained = getattr(rignet, "generator_name", None) or "another generator"
    if G.w_dim != rignet.w_dim or G.num_ws != rignet.num_ws:
        raise CheckpointError(f"this rig network was trained for generator {trained!r} (W+ {rignet.num_ws} x "
                              f"{rignet.w_dim}), not for {given} (W+ {G.num_ws} x {G.w_dim}); train one for it with "
                              "python -m stylekit.train rig.")
    fingerprint = getattr(rignet, "fingerprint", None)
    if fingerprint:
        got = generator_fingerprint(G)
        if got != fingerprint:
            raise CheckpointError(f"this rig network was trained for generator {trained!r} (fingerprint "
                                  f"{fingerprint[:12]}...), not for {given} (fingerprint {got[:12]}...); a rig "
                                  "network only works with the generator it was trained for. Train one for it with "
                                  "python -m stylekit.train rig.")


def apply_rig(G, rignet: RigNet, latent, targets: Mapping[str, object], *, generator_name: str | None = None,
              check: bool = True) -> Latent:
    """Set rig values of ``latent``: returns the edited code as a W+ :class:`Latent` (noise maps and a tuned
    generator carried by ``latent`` are kept).

    Args:
        G: the generator ``rignet`` was trained for (used to map Z codes and to check the network).
        rignet: a :class:`RigNet` (e.g. ``load_rig("toyfaces")``).
        latent: ``N`` codes: a Z / W / W+ :class:`Latent` or a W+ tensor ``[N, num_ws, w_dim]``.
        targets: rig name -> asked value in its own unit (``{'yaw': 20.0, 'smile': -0.5}``; a number for every
            code or ``[N]`` numbers); values not named stay as they are.
        generator_name: names ``G`` in a refusal.
        check: check the network against ``G`` (sizes and fingerprint; off only where a caller already did).

    Raises:
        InvalidArgumentError: unknown rig names, values out of range, an S latent.
        CheckpointError: ``rignet`` was trained for another generator.
    """
    if not isinstance(rignet, RigNet):
        raise InvalidArgumentError(f"pass a RigNet (e.g. stylekit.edit.rig.load_rig('toyfaces')), got "
                                   f"{type(rignet).__name__}.")
    if check:
        check_rig_for(rignet, G, generator_name=generator_name)
    lat = as_latent(latent, G).to_wplus(G)
    ws = lat.tensor
    unit, mask = rig_inputs(rignet, targets, ws.shape[0])
    param = next(rignet.parameters())
    with torch.no_grad():
        delta = rignet(ws.to(param.device, param.dtype), unit.to(param.device), mask.to(param.device))
    return lat.replace(space="w+", tensor=ws + delta.to(ws.device, ws.dtype))


@torch.no_grad()
def read_rig(G, rignet: RigNet, latent, predictor, *, batch_size: int = 32) -> dict[str, np.ndarray]:
    """What ``predictor`` (an :class:`~stylekit.networks.predictor.AttributePredictor` with a head per rig value)
    reads of the rig values of ``latent``'s renders: dict name -> float64 ``[N]`` in each value's unit (binary
    values as probabilities)."""
    missing = [n for n in rignet.rig_names if n not in predictor.attribute_names]
    if missing:
        raise InvalidArgumentError(f"this predictor has no head for the rig values {missing}; it reads: "
                                   f"{', '.join(predictor.attribute_names)}.")
    lat = as_latent(latent, G)
    out: dict[str, list] = {n: [] for n in rignet.rig_names}
    for i in range(0, lat.batch_size, batch_size):
        read = predictor.predict(lat.select(slice(i, i + batch_size)).render(G, noise_mode="const"))
        for n in rignet.rig_names:
            out[n].append(read[n].double().cpu().numpy())
    return {n: np.concatenate(v) for n, v in out.items()}


# ----------------------------------------------------------------------------------------------
# Files


def save_rig(rignet: RigNet, path: str | os.PathLike, *, generator: str, fingerprint: str,
             metrics: dict | None = None, command: str = "") -> Path:
    """Write ``rignet`` (float32) as safetensors with its config, the generator's name and fingerprint
    (:func:`generator_fingerprint`), and optional metrics and training command in the metadata."""
    if not isinstance(generator, str) or not generator or not isinstance(fingerprint, str) or not fingerprint:
        raise InvalidArgumentError("save_rig needs the generator's name and its fingerprint "
                                   "(stylekit.networks.fingerprint.generator_fingerprint(G)).")
    from ..checkpoints.tagged import write_tagged

    state = {k: v.detach().to("cpu", torch.float32) for k, v in rignet.state_dict().items()}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": json.dumps(rignet.config),
            "generator": generator, "fingerprint": fingerprint, "metrics": json.dumps(metrics or {}),
            "command": command}
    return write_tagged(path, state, meta)


def resolve_rig_path(spec: str | os.PathLike) -> Path:
    """A rig file from a registered rig name (``"toyfaces"``) or a path.

    Raises ModelNotFoundError for a name that is not registered (with :data:`REAL_FACES_NOTE`)."""
    from .. import registry

    path = Path(os.fspath(spec)).expanduser()
    if path.is_file() or path.suffix == ".safetensors":
        return path
    try:
        return registry.artifact_path(str(spec), "rig")
    except ModelNotFoundError as exc:
        raise ModelNotFoundError(f"{exc} {REAL_FACES_NOTE}") from None


def load_rig(spec: str | os.PathLike = "toyfaces", *, G=None, generator_name: str | None = None,
             device: str | torch.device = "cpu") -> RigNet:
    """Load a rig network: a registered name or a file. With ``G``, refuse it unless it was trained for ``G``
    (CheckpointError naming the rig's generator and ``generator_name``).

    The network comes back in eval mode, parameters frozen, with ``generator_name``, ``fingerprint`` and
    ``meta`` (the file's metrics and command) set.

    Raises:
        ModelNotFoundError: an unknown name. CheckpointError: a missing, corrupt or foreign file, or another
        generator's rig network.
    """
    from ..checkpoints.tagged import read_tagged

    path = resolve_rig_path(spec)
    meta, state = read_tagged(path, fmt=FORMAT, kind="rig network",
                              missing="no such rig network file; pass a registered name such as 'toyfaces' or "
                                      "train one with python -m stylekit.train rig.",
                              unreadable_advice="; retrain it with python -m stylekit.train rig")
    try:
        config = json.loads(meta.get("config", ""))
        rignet = RigNet(config["w_dim"], config["num_ws"], config["rig"], hidden=config["hidden"],
                        latent_dim=config["latent_dim"])
        rignet.load_state_dict({k: v.float() for k, v in state.items()})
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: the rig network does not match its config ({exc}).") from None
    rignet.generator_name = meta.get("generator", "")
    rignet.fingerprint = meta.get("fingerprint", "")
    rignet.meta = {"metrics": json.loads(meta.get("metrics") or "{}"), "command": meta.get("command", "")}
    rignet = rignet.requires_grad_(False).eval().to(device)
    if G is not None:
        check_rig_for(rignet, G, generator_name=generator_name)
    return rignet
