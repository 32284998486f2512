"""The held-out judge: a network that no training, selection or tuning in stylekit ever touches.

Benchmarks judge edits, inversions and generators with it instead of the attribute predictor (which
is a training loss of the generator, InterFaceGAN's labeller and the encoders' perceptual loss).
It reads the 15 toyfaces attributes and a face score, and rejects flat colours, noise, heavy blur,
scrambled patches and faces with parts cut out. An import-linter contract lets only the benchmarks
(``stylekit.bench``, ``stylekit.cli``) import it.

- :mod:`.network`: :class:`Judge`, :func:`new_judge`, :data:`FACE_THRESHOLD`.
- :mod:`.load`: :func:`load_judge` (the registered ``"toyfaces"`` judge), :func:`save_judge`.
- :mod:`.negatives`: the images it must reject. :mod:`.data` / :mod:`.train`: its training
  (``python -m stylekit.judge --out runs/judge``).
"""

from __future__ import annotations

from stylekit.lazy import lazy_exports

_LAZY = {
    "Judge": "network",
    "new_judge": "network",
    "FACE_THRESHOLD": "network",
    "load_judge": "load",
    "save_judge": "load",
    "judge_metrics": "load",
}

__all__ = sorted(_LAZY)

__getattr__ = lazy_exports(__name__, _LAZY)
