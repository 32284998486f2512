"""The one place stylekit reads the environment.

Every variable is read when it is needed (never at import time), so a test or a notebook can set it
and the next call sees it. Each is documented in the README's "Settings" table; :data:`VARIABLES`
holds the same text for ``python -m stylekit models --settings``.
"""

from __future__ import annotations

import os
from pathlib import Path

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
