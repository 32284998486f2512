"""The one place stylekit reads the environment.

Every variable is read when it is needed (never at import time), so a test or a notebook can set it
and the next call sees it. Each is documented in the README's "Settings" table; :data:`VARIABLES`
holds the same text for ``python -m stylekit models --settings``.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import InvalidArgumentError

#: name -> what it does (the README's table says the same).
VARIABLES: dict[str, str] = {
    "STYLEKIT_OFFLINE": "1 = never download; a file that is not cached raises OfflineError with how to supply it "
                        "(HF_HUB_OFFLINE=1 does the same).",
    "STYLEKIT_HUB_MIRROR": "a folder laid out as <folder>/<owner>/<repo>/<file>, looked at before the Hub cache "
                           "(a classroom USB stick).",
    "STYLEKIT_CACHE": "where stylekit keeps what it computes (relevance tables, ...); default ~/.cache/stylekit.",
    "STYLEKIT_VGG16": "a local torchvision VGG16 weights file for the LPIPS-VGG perceptual loss, instead of the "
                      "registry's Hub file.",
    "STYLEKIT_DLIB_LANDMARKS": "a local dlib 68-point landmark model for face alignment, instead of the one from the "
                               "face-recognition-models package.",
    "STYLEKIT_DEVICE": "where the networks run: auto (default: cuda when PyTorch sees a GPU, else cpu), cpu, cuda or "
                       "cuda:N.",
    "STYLEKIT_PRECISION": "what the gallery computes in: auto (default: bf16 on CPUs with AMX or AVX-512-BF16, fp16 "
                          "on CUDA, else fp32), fp32, bf16 or fp16.",
    "STYLEKIT_CPU_MALLOC": "keep (default: on Linux/glibc, freed CPU memory is kept for reuse once a network is on the "
                           "CPU, so big activations do not page-fault in on every call) or system (leave malloc "
                           "alone; the process then gives memory back after each big call).",
    "STYLEKIT_HUB_TIMEOUT": "seconds a Hub request may wait for an answer before it fails (default 10; the gallery "
                            "uses 5 unless this is set).",
    "STYLEKIT_DEFAULT_MODEL": "the model the gallery opens with (default toyfaces): a registered generator name, a "
                              "file path or an hf:// address.",
}

_TRUE = ("1", "true", "yes", "on")


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def _path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else None


def offline() -> bool:
    """True when stylekit must not download (``STYLEKIT_OFFLINE`` or Hugging Face's ``HF_HUB_OFFLINE``)."""
    return _flag("STYLEKIT_OFFLINE") or _flag("HF_HUB_OFFLINE")


def hub_mirror() -> Path | None:
    """The local Hub mirror folder (``STYLEKIT_HUB_MIRROR``), or None."""
    return _path("STYLEKIT_HUB_MIRROR")


def cache_dir() -> Path:
    """Where computed artifacts are cached (``STYLEKIT_CACHE``, default ``~/.cache/stylekit``); not created here."""
    return _path("STYLEKIT_CACHE") or Path.home() / ".cache" / "stylekit"


def vgg16_override() -> Path | None:
    """A local VGG16 weights file for LPIPS (``STYLEKIT_VGG16``), or None."""
    return _path("STYLEKIT_VGG16")


def dlib_landmarks_override() -> Path | None:
    """A local dlib landmark model (``STYLEKIT_DLIB_LANDMARKS``), or None."""
    return _path("STYLEKIT_DLIB_LANDMARKS")



DEFAULT_HUB_TIMEOUT_S = 10.0  # huggingface_hub's own default for its metadata and download requests


def device() -> str:
    """Where the networks run (``STYLEKIT_DEVICE``): ``'cpu'``, ``'cuda'`` or ``'cuda:N'``.

    Unset, empty or ``'auto'``: ``'cuda'`` when ``torch.cuda.is_available()``, else ``'cpu'``. Raises
    :class:`InvalidArgumentError` for any other value, and for a CUDA device PyTorch does not see.
    """
    value = os.environ.get("STYLEKIT_DEVICE", "").strip().lower()
    if value == "cpu":
        return "cpu"
    import torch

    if value in ("", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    index = value[len("cuda:"):] if value.startswith("cuda:") else None
    if value != "cuda" and not (index is not None and index.isdigit()):
        raise InvalidArgumentError(f"STYLEKIT_DEVICE={value!r} is not a device stylekit runs on; use auto, cpu, cuda "
                                   "or cuda:N (N = the GPU's index), or unset it.")
    if not torch.cuda.is_available():
        raise InvalidArgumentError(f"STYLEKIT_DEVICE={value!r} asks for a GPU but PyTorch sees none (a CPU-only "
                                   "build, or no driver); set it to auto or cpu, or unset it.")
    if index is not None and int(index) >= torch.cuda.device_count():
        raise InvalidArgumentError(f"STYLEKIT_DEVICE={value!r}: PyTorch sees {torch.cuda.device_count()} GPU(s), "
                                   "numbered from 0; pick one of them or use cuda.")
    return value


PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def precision() -> str:
    """The compute precision the gallery loads its networks in (``STYLEKIT_PRECISION``): ``'auto'`` (unset or empty),
    ``'fp32'``, ``'bf16'`` or ``'fp16'`` (see :func:`stylekit.networks.precision.resolve_precision`). Raises
    :class:`InvalidArgumentError` for any other value."""
    value = os.environ.get("STYLEKIT_PRECISION", "").strip().lower() or "auto"
    if value not in PRECISIONS:
        raise InvalidArgumentError(f"STYLEKIT_PRECISION={value!r} is not a precision stylekit computes in; use "
                                   f"{', '.join(PRECISIONS)}, or unset it (auto).")
    return value


CPU_MALLOC = ("keep", "system")


def cpu_malloc() -> str:
    """``STYLEKIT_CPU_MALLOC``: ``'keep'`` (unset or empty) or ``'system'`` (see
    :mod:`stylekit.networks.cpu_memory`). Raises :class:`InvalidArgumentError` for any other value."""
    value = os.environ.get("STYLEKIT_CPU_MALLOC", "").strip().lower() or "keep"
    if value not in CPU_MALLOC:
        raise InvalidArgumentError(f"STYLEKIT_CPU_MALLOC={value!r} is not a choice; use keep (the default) or system.")
    return value


def hub_timeout() -> float:
    """Seconds a Hub request may wait for an answer (``STYLEKIT_HUB_TIMEOUT``, default
    :data:`DEFAULT_HUB_TIMEOUT_S`); raises :class:`InvalidArgumentError` unless it is a positive number."""
    value = os.environ.get("STYLEKIT_HUB_TIMEOUT", "").strip()
    if not value:
        return DEFAULT_HUB_TIMEOUT_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):  # also refuses nan
        raise InvalidArgumentError(f"STYLEKIT_HUB_TIMEOUT={value!r} must be a positive number of seconds, e.g. 10.")
    return seconds


def default_model() -> str:
    """The gallery's first model (``STYLEKIT_DEFAULT_MODEL``, default ``'toyfaces'``); checked where it is used."""
    return os.environ.get("STYLEKIT_DEFAULT_MODEL", "").strip() or "toyfaces"


def zero_gpu_space() -> bool:
    """True on a Hugging Face ZeroGPU Space (the platform sets ``SPACES_ZERO_GPU``; the ``spaces`` package reads
    the same variable). Not a stylekit setting, so not in :data:`VARIABLES`."""
    return os.environ.get("SPACES_ZERO_GPU", "").strip().lower() in ("1", "t", "true")
