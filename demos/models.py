"""The gallery's generators: the model picker, loading without blocking other users, and its info line.

Loading rules (issue 22, item 4):

- a loaded generator is shared by every session (at most :data:`MAX_MODELS` kept, least recently
  used dropped); a lookup of a loaded model never waits for another model's load;
- each model name has its own lock, so two sessions asking for the same Hub model download it once,
  and a session asking for ``toyfaces`` never waits for someone's Hub download;
- a failed load is remembered for :data:`FAILURE_TTL_S` seconds: the next session asking for it gets
  the same readable error at once instead of a second round of Hub retries;
- before touching the Hub, :func:`hub_offline` checks in about two seconds whether the Hub answers
  an HTTP request at all (or whether ``STYLEKIT_OFFLINE`` / ``HF_HUB_OFFLINE`` is set); when it does not, the
  load runs with ``local_files_only=True``, so an unreachable Hub fails at once instead of retrying.

Models load on the gallery's one device (:func:`demos.device.device`) and compute in precision ``auto``
(the first load logs and shows which precision that picked). The first model shown is
``STYLEKIT_DEFAULT_MODEL`` (:func:`default_model`; ``toyfaces`` when unset), checked at startup by
:func:`check_startup`. A Hub download reports its bytes to the ``progress`` callback given to :func:`load`.

The picker (:func:`pick_model`) reverts to the last model that loaded when a pick fails, and says why
in the info line.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict

import gradio as gr

from stylekit import hub, registry, settings
from stylekit.errors import InvalidArgumentError, StylekitError

from . import device as gallery_device

DEFAULT_MODEL = "toyfaces"  # the offline model shipped inside the package (always there)
MAX_MODELS = 4
FAILURE_TTL_S = 30.0
PROBE_TIMEOUT_S = 2.0  # how long the Hub may take to answer the probe
PROBE_TTL_S = 60.0  # how long a probe's answer is reused
log = logging.getLogger("stylekit.gallery")

_MODELS: OrderedDict = OrderedDict()  # (name, device) -> Generator, most recently used last
_FAILURES: dict = {}  # (name, device) -> (monotonic time, message)
_NAME_LOCKS: dict = {}  # (name, device) -> Lock held while that model loads
_LOCK = threading.Lock()  # guards the three dicts above; never held during a load
_PROBE: dict = {}  # "at" -> monotonic time, "offline" -> bool


class ModelPicker(gr.Dropdown):
    """The model dropdown; in the API it is a plain string (``/models`` lists the registered names),
    so the 23-name list is not repeated in every endpoint's signature."""

    def get_block_name(self) -> str:
        return "dropdown"

    def api_info(self) -> dict:
        return {"type": "string", "description": "a registered generator name (see /models), a file path, or an "
                                                 "hf://owner/repo/file address"}


def default_model() -> str:
    """The model the gallery opens with: ``STYLEKIT_DEFAULT_MODEL``, else ``toyfaces``."""
    return settings.default_model()


def check_startup() -> tuple[str, str]:
    """``(device, default model)``, checked before the gallery starts: raises the stylekit error of a bad
    ``STYLEKIT_DEVICE``, ``STYLEKIT_PRECISION`` or ``STYLEKIT_HUB_TIMEOUT``, or of a ``STYLEKIT_DEFAULT_MODEL`` that is neither a
    registered generator, an existing file nor an ``hf://owner/repo/file`` address."""
    from pathlib import Path

    where = gallery_device.device()
    settings.hub_timeout()
    settings.precision()
    name = default_model()
    if name.startswith("hf://"):
        hub.parse_hf_uri(name)
    elif not Path(name).expanduser().is_file():
        try:
            registry.resolve(name, "generator")
        except StylekitError as exc:
            raise InvalidArgumentError(f"STYLEKIT_DEFAULT_MODEL={name!r} is not a model the gallery can open: {exc} "
                                       "Set it to a registered generator name (python -m stylekit models), a file "
                                       "path or an hf://owner/repo/file address, or unset it for toyfaces.") from None
    return where, name


def model_choices() -> list[str]:
    """Registered generator names for the picker (the default model first, then the offline toyfaces)."""
    names = [a.name for a in registry.list_artifacts("generator")]
    first = list(dict.fromkeys([default_model(), DEFAULT_MODEL]))
    return first + [n for n in names if n not in first]


def list_models() -> str:
    """Returns the registered generator names, one per line (what the ``model`` argument accepts, besides a
    file path or an hf:// address)."""
    return "\n".join(model_choices())


def _probe(url: str, box: dict) -> None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=PROBE_TIMEOUT_S):
            box["ok"] = True
    except urllib.error.HTTPError:
        box["ok"] = True  # it answered (an error status still means the Hub is there)
    except (OSError, ValueError):
        box["ok"] = False


def hub_offline() -> bool:
    """True when downloads must not be tried: offline mode is set, or the Hub did not answer an HTTP
    request within about :data:`PROBE_TIMEOUT_S` seconds (the answer is reused for a minute). Without
    this, a Hub that is unreachable or hangs costs every load the client's retries (half a minute or more)."""
    if settings.offline():
        return True
    now = time.monotonic()
    with _LOCK:
        if "at" in _PROBE and now - _PROBE["at"] < PROBE_TTL_S:
            return _PROBE["offline"]
    from huggingface_hub import constants

    box: dict = {}
    # a thread, because name resolution has no timeout of its own
    probe = threading.Thread(target=_probe, args=(constants.ENDPOINT, box), daemon=True)
    probe.start()
    probe.join(PROBE_TIMEOUT_S + 0.5)
    offline = not box.get("ok", False)
    with _LOCK:
        _PROBE.update(at=time.monotonic(), offline=offline)
    if offline:
        log.info("the Hub (%s) does not answer; loading from local files only", constants.ENDPOINT)
    return offline


def _needs_hub(name: str) -> bool:
    if name.startswith("hf://"):
        return True
    try:
        return not registry.resolve(name, "generator").shipped
    except StylekitError:
        return False  # a path, or an unknown name (which fails with its own message)


def _load(name: str, device: str):
    import stylekit

    local_only = True if _needs_hub(name) and hub_offline() else None
    return stylekit.load_generator(name, device=device, precision=settings.precision(), local_files_only=local_only)


def load(name: str, device: str | None = None, progress=None):
    """The generator called ``name`` on ``device`` (default: the gallery's, :func:`demos.device.device`), loaded
    once (see the module's rules). ``progress(done_bytes, total_bytes, message)`` hears a Hub download made by
    this call. Raises the stylekit error of a failed load (or the remembered one, for :data:`FAILURE_TTL_S` s)."""
    if device is None:
        device = gallery_device.device()
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgumentError("Pick a model first (toyfaces works offline).")
    key = (name.strip(), device)
    with _LOCK:
        if key in _MODELS:
            _MODELS.move_to_end(key)
            return _MODELS[key]
        name_lock = _NAME_LOCKS.setdefault(key, threading.Lock())
    with name_lock:
        with _LOCK:
            if key in _MODELS:
                return _MODELS[key]
            failed = _FAILURES.get(key)
            if failed is not None and time.monotonic() - failed[0] < FAILURE_TTL_S:
                raise type(failed[2])(failed[1])
        t0 = time.perf_counter()
        try:
            with hub.report_downloads(progress):  # a Hub download made by this load reports to progress
                G = _load(key[0], device)
        except StylekitError as exc:
            with _LOCK:
                _FAILURES[key] = (time.monotonic(), str(exc), exc)
            raise
        log.info("loaded %s on %s in %.1f s (compute precision %s)", key[0], device, time.perf_counter() - t0,
                 getattr(G, "precision", "fp32"))
        with _LOCK:
            _FAILURES.pop(key, None)
            _MODELS[key] = G
            while len(_MODELS) > MAX_MODELS:
                _MODELS.popitem(last=False)
    return G


def describe_model(model: str, G) -> str:
    """Architecture, size, W+ rows, mapping depth, style layers and compute precision; for a registered name,
    a second line with the registry's description (what the file is, where it comes from)."""
    from stylekit.edit import describe_layers

    arch = getattr(G, "arch", type(G).__name__)
    mapping = getattr(getattr(G, "mapping", None), "num_layers", None)
    depth = f", a {mapping}-layer mapping MLP" if mapping else ""
    line = (f"**{model}**: {arch}, {G.img_resolution}x{G.img_resolution}, {G.num_ws} W+ rows of {G.w_dim}{depth} "
            f"({describe_layers(G)}); computes in {getattr(G, 'precision', 'fp32')}.")
    try:
        description = registry.resolve(model).description
    except StylekitError:  # a file path or a Hub repo id: nothing registered to add
        return line
    return f"{line}\n\n*{description}*"
