"""One progress-callback type for every long loop (training, inversion, relevance computation).

A callback is any callable ``callback(step: int, total: int, message: str = "", **metrics)``
(:class:`ProgressCallback`); it may raise :class:`Cancelled` to stop the loop cleanly. The CLI
prints progress lines from its own callback; the gallery drives ``gr.Progress``.
"""

from __future__ import annotations

from typing import Protocol

from .errors import StylekitError


class Cancelled(StylekitError):
    """Raised (by a progress callback) to stop a long operation; partial results are discarded."""


class ProgressCallback(Protocol):
    def __call__(self, step: int, total: int, message: str = "", **metrics: float) -> None: ...


def no_progress(step: int, total: int, message: str = "", **metrics: float) -> None:
    """The default callback: does nothing."""
