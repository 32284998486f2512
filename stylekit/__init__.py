"""stylekit: StyleGAN inversion and editing toolkit.

Public entry points are imported lazily so that ``import stylekit`` does no work (no torch import,
no model loading, no downloads).
"""

from __future__ import annotations

from .lazy import lazy_exports

__version__ = "0.1.0"

_LAZY = {
    "load_generator": "stylekit.checkpoints.load",
    "save_generator": "stylekit.checkpoints.canonical",
    "Generator": "stylekit.networks.base",
    "StylekitError": "stylekit.errors",
    "CheckpointError": "stylekit.errors",
    "UnsafeCheckpointError": "stylekit.errors",
    "ModelNotFoundError": "stylekit.errors",
    "OfflineError": "stylekit.errors",
    "ImageInputError": "stylekit.errors",
    "InvalidArgumentError": "stylekit.errors",
}

__all__ = sorted(_LAZY) + ["__version__"]


#: subpackages reachable as ``stylekit.<name>`` after a plain ``import stylekit`` (imported on first use)
_SUBPACKAGES = ("edit", "invert")


__getattr__ = lazy_exports(__name__, _LAZY, _SUBPACKAGES)  # e.g. stylekit.invert.invert(G, image, method=...)
