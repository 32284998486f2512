"""Helpers shared by the tabs: the model picker, cached generators and fits, the session latent,
image display, per-session cancellation, and error conversion.

Every tab's ``build(ui)`` receives a :class:`SharedUI`: the model picker, the session's current
latent (``gr.State`` holding a :class:`stylekit.latent.Latent` or None) and the header widgets
that show it. A tab keeps its own last result in its own ``gr.State``; its "Use this result"
button copies that into the session latent (see :func:`use_result`), so an inversion made in one
tab can be edited in the next. ``gr.State`` is per browser session (and per ``gradio_client``
session), so two users never see each other's latent.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

import gradio as gr

from stylekit.errors import InvalidArgumentError, StylekitError

from . import models
from .device import FIT_S, OPTIMISE_S, RENDER_S, gpu_task  # noqa: F401  (the tabs import them from here)
from .models import DEFAULT_MODEL, model_choices  # noqa: F401  (the tabs import them from here)

#: every tab's start while no latent is chosen: the first seed whose toyface the attribute predictor reads as
#: neutral (eyes open, no glasses, beard or red hair, mouth closed, |smile| < 0.1), so that the default edits'
#: glasses, smile or red hair appear on it instead of being there already (seed 0 smiles with closed eyes)
DEFAULT_SEED = 11
DEFAULT_PSI = 0.7
DISPLAY_SIZE = 256  # small generators are shown enlarged (nearest neighbour) so pixels stay honest
#: pictures of larger generators (1024 px) are shown shrunk to this side (antialiased); the tabs that render
#: batches offer the full-size pictures as a download (demos.outputs)
DISPLAY_MAX = 512
_LOCK = threading.Lock()
_FIT_LOCK = threading.Lock()
log = logging.getLogger("stylekit.gallery")


def get_generator(name: str, device: str | None = None):
    """Load (once) and return the generator called ``name`` (a registered name, a file path or an
    ``hf://`` address; see :mod:`demos.models`) on ``device`` (default: the gallery's one device,
    :func:`demos.device.device`); stylekit errors become one-line ``gr.Error`` toasts."""
    try:
        return models.load(name, device)
    except StylekitError as exc:
        raise user_error(exc, "loading a model") from None


def cached_fit(key: tuple, compute):
    """Return ``compute()`` for ``key``, computing it once per process (per-model fits: PCA,
    boundaries, style statistics, parts). Fits are deterministic, so every session may share them.
    A second caller of the same key waits for the first one's result; other keys never wait."""
    with _FIT_LOCK:
        if key in _FITS:
            return _FITS[key]
        key_lock = _FIT_LOCKS.setdefault(key, threading.Lock())
    with key_lock:
        with _FIT_LOCK:
            if key in _FITS:
                return _FITS[key]
        value = compute()
        with _FIT_LOCK:
            return _FITS.setdefault(key, value)


def is_cached(key: tuple) -> bool:
    """True when :func:`cached_fit` already holds ``key`` (a callback may then skip its progress note)."""
    with _FIT_LOCK:
        return key in _FITS


_FITS: dict = {}
_FIT_LOCKS: dict = {}


def user_error(exc, where: str) -> gr.Error:
    """A ``gr.Error`` toast for an error the user caused, logged as one line (no traceback: the message
    says what to do). Unexpected errors are not passed here; Gradio prints their full traceback.
    A ``gr.Error`` made here already (``print_exception`` off) is returned unchanged, so it is logged once."""
    if isinstance(exc, gr.Error) and not exc.print_exception:
        return exc
    message = str(exc.message if isinstance(exc, gr.Error) else exc)
    log.warning("user error in %s: %s", where, message.replace("\n", " "))
    return gr.Error(message, print_exception=False)


def quiet_input_checks() -> None:
    """Make Gradio's own input checks (a slider value outside its range, a choice not in the list) log one
    line, as the gallery's user errors do, instead of a full traceback: ``gr.Error`` is Gradio's class for
    messages meant for the user, so every one made with the default ``print_exception`` is logged as a
    line here and not printed again. Other exceptions keep their traceback. Idempotent; called by
    ``app.build_app``; it changes ``gr.Error`` for the whole process."""
    init = gr.Error.__init__
    if getattr(init, "stylekit_quiet", False):
        return

    @functools.wraps(init)
    def quiet(self, message: str = "Error raised.", *args, print_exception: bool = True, **kwargs):
        if print_exception:
            log.warning("user error (input check): %s", str(message).replace("\n", " "))
        init(self, message, *args, print_exception=False, **kwargs)

    quiet.stylekit_quiet = True
    gr.Error.__init__ = quiet


def atomic_image_cache() -> None:
    """Write Gradio's cached result images atomically. Gradio names a result image by the hash of its bytes
    and rewrites that file on every call; when two sessions produce the same picture at once (the same
    defaults), one rewrite truncated the file while the other session's download was reading it (the soak
    logged 'Too little data for declared Content-Length'). Here a picture is written to a temporary name
    and renamed into place, and not rewritten when the complete file is already there. Idempotent; called
    by ``app.build_app``; it changes ``gradio.processing_utils.save_pil_to_cache`` for the whole process."""
    import os
    from pathlib import Path

    from gradio import processing_utils as pu

    if getattr(pu.save_pil_to_cache, "stylekit_atomic", False):
        return

    def save_pil_to_cache(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:
        data = pu.encode_pil_to_bytes(img, format)
        folder = Path(cache_dir) / pu.hash_bytes(data)
        folder.mkdir(exist_ok=True, parents=True)
        path = (folder / f"{name}.{format}").resolve()
        if not path.is_file() or path.stat().st_size != len(data):
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return str(path)

    save_pil_to_cache.stylekit_atomic = True
    pu.save_pil_to_cache = save_pil_to_cache


def user_errors(fn):
    """Decorator: turn stylekit's errors (and ``gr.Error``) raised by a callback into readable ``gr.Error``
    toasts, each logged as one line.

    Generator callbacks (which stream intermediate outputs) stay generators, so Gradio still streams them.
    """
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def streaming(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except (StylekitError, gr.Error) as exc:
                raise user_error(exc, fn.__name__) from None

        return streaming

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (StylekitError, gr.Error) as exc:
            raise user_error(exc, fn.__name__) from None

    return wrapper


LESSONS = "docs/lessons"  # the teaching notebooks in the repository (jupytext percent format)


def teaching_note(short: str, more: str = "", *, lesson: str | None = None, measured: str | None = None) -> gr.Markdown:
    """Two or three lines on top of a tab; a closed *More* below holds the rest: ``more``, the figure the
    measurements found (``measured``) and the lesson notebook to read next (``lesson``, a file name in
    ``docs/lessons``). Returns the short note."""
    note = gr.Markdown(short, elem_classes=["teaching-note"])
    parts = [more.strip()] if more.strip() else []
    if measured:
        parts.append(f"**Measured:** {measured}")
    if lesson:
        parts.append(f"**Lesson:** `{LESSONS}/{lesson}` in the stylekit repository, a notebook that runs offline "
                     f"in about a minute (`jupytext --to notebook {LESSONS}/{lesson}`).")
    if parts:
        with gr.Accordion("More", open=False, elem_classes=["teaching-more"]):
            gr.Markdown("\n\n".join(parts))
    return note


# ----------------------------------------------------------------------------------------------
# checks of widget values (the API accepts anything, so every callback validates its inputs)


def number(value, name: str, lo: float, hi: float) -> float:
    """``value`` as a float in ``[lo, hi]``, else InvalidArgumentError naming the knob and its range."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be a number between {lo:g} and {hi:g}, got {value!r}.") from None
    if not math.isfinite(x) or not lo <= x <= hi:
        raise InvalidArgumentError(f"{name} must be between {lo:g} and {hi:g}, got {value!r}.")
    return x


def integer(value, name: str, lo: int, hi: int) -> int:
    """``value`` as an int in ``[lo, hi]`` (whole floats such as 3.0 are accepted)."""
    x = number(value, name, lo, hi)
    if x != int(x):
        raise InvalidArgumentError(f"{name} must be a whole number between {lo} and {hi}, got {value!r}.")
    return int(x)


def choice(value, name: str, options) -> str:
    if value not in options:
        raise InvalidArgumentError(f"{name} must be one of {', '.join(map(str, options))}, got {value!r}.")
    return value


def seed_list(text, name: str = "seeds", *, max_count: int = 8) -> list[int]:
    """Seeds from ``'0-3'``, ``'1,5,9'`` or a number (at most ``max_count``)."""
    from stylekit.cli import parse_seeds

    text = "" if text is None else str(text).strip()
    if not text.strip(", "):
        raise InvalidArgumentError(f"no {name} given; write e.g. 0-3 or 1,5,9.")
    seeds = parse_seeds(text)
    if len(seeds) > max_count:
        raise InvalidArgumentError(f"at most {max_count} {name} at a time, got {len(seeds)}.")
    return seeds


def one_seed(value, name: str = "seed") -> int:
    return integer(value, name, 0, 2 ** 32 - 1)


# ----------------------------------------------------------------------------------------------
# the session latent


#: seconds a session's state (its current latent, each tab's last result) is kept after it was last set;
#: then Gradio deletes it, so a classroom's memory comes back once sessions end (``python app.py --state-ttl``)
STATE_TTL_S = 7200.0


def session_state() -> gr.State:
    """A per-session ``gr.State`` (empty at first) that expires :data:`STATE_TTL_S` seconds after it was last set."""
    return gr.State(None, time_to_live=STATE_TTL_S)


@dataclass
class SharedUI:
    """What every tab may read or update: the model picker, the session latent and its display."""

    model: gr.Dropdown
    latent: gr.State
    current_image: gr.Image
    current_info: gr.Markdown
    #: the model that loaded last (hidden); tabs whose controls depend on the model listen to its
    #: ``change``, which fires only when a pick succeeded (a failed pick reverts the picker instead)
    loaded: gr.Textbox | None = None

    @property
    def use_outputs(self) -> list:
        """Outputs of a "Use this result" button: the latent state, its picture and its description."""
        return [self.latent, self.current_image, self.current_info]


def default_latent(G):
    from stylekit.latent import Latent

    return Latent.from_seed(G, DEFAULT_SEED, psi=DEFAULT_PSI)


def current_latent(G, latent):
    """The session latent (kept on the CPU) on ``G``'s device, or the default (:data:`DEFAULT_SEED`, psi 0.7) when
    none was chosen yet; checked against ``G``. A PTI result (:class:`demos.pti_state.TunedLatent`) comes back with its
    tuned generator rebuilt from ``G`` and its delta."""
    from .pti_state import resolve

    if latent is None:
        return default_latent(G)
    latent = resolve(G, latent)  # a PTI result is kept as code + fp16 delta; its tuned generator is rebuilt here
    latent.check_compatible(latent.generator if latent.generator is not None else G)
    return latent if latent.device == G.device else latent.to(G.device)


def describe(latent, source: str) -> str:
    tuned = " with a PTI-tuned generator" if getattr(latent, "generator", None) is not None else ""
    return f"**Current latent:** {latent.describe()}{tuned} - from {source}."


EMPTY_INFO = (f"**Current latent:** none yet; tabs start from seed {DEFAULT_SEED} (psi {DEFAULT_PSI}). Press a "
              "tab's *Use this result* button to carry its result to the other tabs.")


@gpu_task(RENDER_S)
def use_result(model: str, result, source: str):
    """Make a tab's last result the session latent. Returns ``(latent, image, description)``."""
    if result is None:
        raise InvalidArgumentError(f"nothing to use yet: run the {source} tab's main action first.")
    G = get_generator(model)
    latent = current_latent(G, result)
    return latent, render_pil(G, latent), describe(latent, source)


# ----------------------------------------------------------------------------------------------
# images


def shrink(images, size: int):
    """``[N, 3, R, R]`` -> ``[N, 3, size, size]``: enlarged with nearest neighbour when ``R < size``, reduced with
    an antialiased (area-like) filter when ``R > size``."""
    import torch

    r = images.shape[-1]
    if r == size:
        return images
    if r < size:
        return torch.nn.functional.interpolate(images.float(), size=size, mode="nearest")
    return torch.nn.functional.interpolate(images.float(), size=size, mode="bilinear", antialias=True,
                                           align_corners=False)


def enlarge(images, size: int = DISPLAY_SIZE):
    """``[N, 3, R, R]`` -> the same, enlarged to ``size`` with nearest neighbour when ``R < size``, or shrunk to
    :data:`DISPLAY_MAX` when ``R`` is larger than that (a 1024 px picture is shown at 512)."""
    r = images.shape[-1]
    if r < size:
        return shrink(images, size)
    if r > DISPLAY_MAX:
        return shrink(images.detach().float().cpu(), DISPLAY_MAX)
    return images


def to_pil(images, size: int = DISPLAY_SIZE):
    """``[1, 3, R, R]`` in ``[-1, 1]`` -> one PIL image (enlarged for display)."""
    from stylekit.images import tensor_to_pil

    return tensor_to_pil(enlarge(images[:1], size))


def to_pils(images, size: int = DISPLAY_SIZE) -> list:
    from stylekit.images import tensor_to_pil

    out = tensor_to_pil(enlarge(images, size))
    return out if isinstance(out, list) else [out]


def row(*images, size: int = DISPLAY_SIZE):
    """Several ``[1, 3, R, R]`` images side by side as one PIL image."""
    import torch

    from stylekit.images import make_grid, tensor_to_pil

    batch = torch.cat([enlarge(x[:1].detach().float().cpu(), size) for x in images])
    return tensor_to_pil(make_grid(batch, ncols=len(images)))


def render(G, latent, **kwargs):
    """``[N, 3, R, R]`` images of a latent (no gradients)."""
    import torch

    with torch.no_grad():
        return latent.render(G, **kwargs)


def render_pil(G, latent):
    return to_pil(render(G, latent))


class PhotoInput(gr.Image):
    """A ``gr.Image`` (``type='filepath'``) that hands the uploaded file to stylekit unopened.

    ``stylekit.images`` is the one place that decodes pictures (EXIF orientation, odd modes, the size
    guard), so a corrupt, truncated or huge upload gets stylekit's readable message instead of a
    generic preprocessing failure inside Gradio. The browser side is the ordinary image widget.
    """

    def get_block_name(self) -> str:
        return "image"  # render with gr.Image's front-end component

    def preprocess(self, payload):
        return None if payload is None else payload.path


def image_path(value, name: str = "image") -> str:
    """A file path from an image widget's value (``type='filepath'``); readable error when empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidArgumentError(f"no {name} given: upload one, take one with the webcam, or click an example.")
    return value


# ----------------------------------------------------------------------------------------------
# long operations: progress and cancellation per browser session


_CANCEL: OrderedDict[str, threading.Event] = OrderedDict()  # session -> stop flag, most recent last
MAX_CANCEL_FLAGS = 1024  # sessions come and go; the flags of the least recent ones are dropped


def session_key(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "no-session"


def cancel_flag(request: gr.Request | None) -> threading.Event:
    """This session's stop flag (cleared when a long operation starts)."""
    key = session_key(request)
    with _LOCK:
        flag = _CANCEL.setdefault(key, threading.Event())
        _CANCEL.move_to_end(key)
        while len(_CANCEL) > MAX_CANCEL_FLAGS:
            _CANCEL.popitem(last=False)
        return flag


def start_cancellable(request: gr.Request | None) -> threading.Event:
    """This session's stop flag, cleared: call it when a long operation starts (Stop sets the flag)."""
    flag = cancel_flag(request)
    flag.clear()
    return flag


def request_stop(request: gr.Request | None = None) -> str:
    """Ask this session's running optimisation to stop after its current step."""
    cancel_flag(request).set()
    return "Stopping after the current step..."


def cancellable(flag: threading.Event, what: str, report):
    """A stylekit progress callback that raises ``Cancelled`` once ``flag`` is set and otherwise calls
    ``report(step, total, desc, loss, message)`` (``desc``: a progress line; ``loss``: the step's loss
    or None; ``message``: the stage the operation reported)."""
    from stylekit.progress import Cancelled

    def callback(step: int, total: int, message: str = "", **metrics) -> None:
        if flag.is_set():
            raise Cancelled(f"{what} stopped at step {step} of {total}; nothing was changed. Run it again to restart.")
        loss = metrics.get("loss")
        desc = f"{what}: {message} step {step}/{total}" + (f", loss {loss:.4f}" if loss is not None else "")
        report(step, total, desc, loss, message)

    return callback


def download_progress(progress: gr.Progress, what: str = ""):
    """A Hub download callback (``stylekit.hub.report_downloads``) that drives ``gr.Progress`` in megabytes."""
    def report(done: int, total: int, message: str = "") -> None:
        mb = f"{done / 1e6:.0f} of {total / 1e6:.0f} MB" if total else f"{done / 1e6:.0f} MB"
        progress((done, max(total, done, 1)), desc=f"{what + ': ' if what else ''}{message} ({mb})")

    return report


def progress_callback(progress: gr.Progress, flag: threading.Event, what: str):
    """A stylekit progress callback that drives ``gr.Progress`` and stops when ``flag`` is set."""
    return cancellable(flag, what, lambda step, total, desc, loss, message: progress((step, total), desc=desc))
