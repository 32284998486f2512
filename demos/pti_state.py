"""PTI results in the gallery's session state: a small fp16 weight delta per result, never a whole generator.

A PTI inversion tunes a copy of the generator (30 M parameters for FFHQ 1024: 0.12 GB in float32, more on
the GPU). Keeping that copy in a browser session's ``gr.State`` for hours made memory grow with every
session. Here a session keeps a :class:`TunedLatent`: the pivot code (``[1, num_ws, w_dim]``) and a
:class:`TunedWeights`, the result's ``{parameter: tuned - base}`` delta in float16 on the CPU (about 56 MB
for FFHQ 1024's synthesis network). The tuned generator is rebuilt from the base generator and the delta
when a tab uses the latent (:func:`resolve`, called by :func:`demos.common.current_latent`), and at most
:data:`MAX_TUNED` rebuilt generators are kept for the whole server.

Bounds (per server process):

- at most :data:`MAX_DELTAS` deltas are held; a newer PTI result drops the least recently used one;
- a delta unused for :data:`DELTA_TTL_S` seconds is dropped;
- a dropped delta's tensors are freed at once (every session state that refers to it shares one
  :class:`TunedWeights`); using its latent then says plainly that the PTI result expired.

:func:`strip` turns a latent that carries a rebuilt tuned generator back into a :class:`TunedLatent`; the
gallery's ``gpu_task`` results pass through it (:func:`demos.device.to_cpu`), so an edit of a PTI result
lands in the session state as a code + delta reference too.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass

from stylekit.errors import InvalidArgumentError
from stylekit.latent import Latent

MAX_DELTAS = 4
DELTA_TTL_S = 1800.0
MAX_TUNED = 2
TUNED_ATTR = "stylekit_tuned_weights"  # set on a rebuilt generator: the TunedWeights it was built from

_LOCK = threading.Lock()
_DELTAS: OrderedDict = OrderedDict()  # key -> TunedWeights, least recently used first
_TUNED: OrderedDict = OrderedDict()  # (key, id(G), device) -> rebuilt generator


def fingerprint(G) -> tuple:
    """A cheap identity of a base generator (sizes and its ``w_avg``): a delta only fits the generator it came from."""
    w = G.w_avg.detach().double()
    return (int(G.img_resolution), int(G.num_ws), int(G.w_dim), round(float(w.sum()), 3), round(float(w.abs().sum()), 3))


class TunedWeights:
    """One PTI result's weight delta ``{name: [..] float16 CPU tensor}`` (shared, never copied).

    ``model`` names the base generator; ``dropped`` says why the tensors were freed (None while held).
    Copying returns the same object; unpickling (a ZeroGPU worker's result) registers it in this process.
    """

    def __init__(self, delta: dict, model: str, base: tuple, key: str | None = None):
        import torch

        self.key = key or uuid.uuid4().hex
        self.model = model
        self.base = base
        self.tensors = {k: v.detach().to("cpu", torch.float16) for k, v in delta.items()}
        self.nbytes = int(sum(t.numel() * t.element_size() for t in self.tensors.values()))
        self.dropped: str | None = None
        self.used = time.monotonic()
        _register(self)

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("used", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.used = time.monotonic()
        if self.dropped is None:
            _register(self)


def _drop(weights: TunedWeights, reason: str) -> None:
    weights.tensors = {}
    weights.dropped = reason
    for key in [k for k in _TUNED if k[0] == weights.key]:
        del _TUNED[key]


def _purge(now: float) -> None:
    for key, weights in list(_DELTAS.items()):
        if now - weights.used > DELTA_TTL_S:
            del _DELTAS[key]
            _drop(weights, f"it was not used for {DELTA_TTL_S / 60:.0f} minutes")
    while len(_DELTAS) > MAX_DELTAS:
        _, weights = _DELTAS.popitem(last=False)
        _drop(weights, f"this server keeps the {MAX_DELTAS} most recently used PTI results")


def _register(weights: TunedWeights) -> None:
    with _LOCK:
        weights.used = time.monotonic()
        _DELTAS[weights.key] = weights
        _DELTAS.move_to_end(weights.key)
        _purge(weights.used)


def held() -> list[TunedWeights]:
    """The deltas this process holds now (least recently used first); expired ones are dropped first."""
    with _LOCK:
        _purge(time.monotonic())
        return list(_DELTAS.values())


@dataclass(eq=False)
class TunedLatent(Latent):
    """A PTI result as session state: the pivot code plus a :class:`TunedWeights` (``generator`` stays None)."""

    weights: TunedWeights | None = None

    def describe(self) -> str:
        held_mb = self.weights.nbytes / 1e6 if self.weights is not None else 0.0
        return f"{super().describe()} with a PTI-tuned generator (float16 delta, {held_mb:.0f} MB)"


def keep(model: str, G, result) -> TunedLatent:
    """The session-state form of a PTI :class:`~stylekit.invert.result.InversionResult` tuned from ``G``."""
    weights = TunedWeights(result.generator_delta, model, fingerprint(G))
    lat = result.latent
    return TunedLatent(lat.space, lat.tensor.detach().cpu(), noise=None if lat.noise is None else
                       [m.detach().cpu() for m in lat.noise], generator=None, weights=weights)


def resolve(G, latent):
    """``latent`` ready to render on base generator ``G``: a :class:`TunedLatent` becomes a :class:`Latent` whose
    ``generator`` is ``G`` + the delta (rebuilt, or one of the :data:`MAX_TUNED` kept); anything else is returned
    unchanged. InvalidArgumentError when the delta was dropped or belongs to another model."""
    if not isinstance(latent, TunedLatent):
        return latent
    weights = latent.weights
    if weights is None or weights.dropped is not None:
        why = weights.dropped if weights is not None else "it holds no weights"
        raise InvalidArgumentError(f"this PTI result's tuned generator is no longer kept ({why}); PTI results are "
                                   f"kept {DELTA_TTL_S / 60:.0f} minutes after their last use, at most {MAX_DELTAS} "
                                   "on this server. Invert the photo again, or use another result.")
    if weights.base != fingerprint(G):
        raise InvalidArgumentError(f"this PTI result was tuned from {weights.model!r}, not the model picked now; "
                                   f"pick {weights.model!r} again or invert the photo with this model.")
    from stylekit.invert.pti import apply_delta

    key = (weights.key, id(G), str(G.w_avg.device))
    with _LOCK:
        weights.used = time.monotonic()
        if weights.key in _DELTAS:
            _DELTAS.move_to_end(weights.key)
        tuned = _TUNED.get(key)
        if tuned is not None:
            _TUNED.move_to_end(key)
    if tuned is None:
        tuned = apply_delta(G, weights.tensors)
        setattr(tuned, TUNED_ATTR, weights)
        with _LOCK:
            if weights.dropped is None:
                _TUNED[key] = tuned
                while len(_TUNED) > MAX_TUNED:
                    _TUNED.popitem(last=False)
    return Latent(latent.space, latent.tensor, noise=latent.noise, generator=tuned)


def strip(latent):
    """A :class:`Latent` carrying a generator rebuilt by :func:`resolve` -> the :class:`TunedLatent` form (code +
    the shared delta, on the CPU); any other value is returned unchanged."""
    if not isinstance(latent, Latent) or isinstance(latent, TunedLatent) or latent.generator is None:
        return latent
    weights = getattr(latent.generator, TUNED_ATTR, None)
    if weights is None:
        return latent
    cpu = latent.replace(generator=None).to("cpu")
    return TunedLatent(cpu.space, cpu.tensor, noise=cpu.noise, generator=None, weights=weights)
