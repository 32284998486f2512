"""One progress-callback type for every long loop (training, inversion, relevance computation).

A callback is any callable ``callback(step: int, total: int, message: str = "", **metrics)``; it
may raise :class:`Cancelled` to stop the loop cleanly. The CLI shows progress with tqdm, the
gallery with ``gr.Progress``.
"""

from __future__ import annotations

from typing import Callable, Protocol

from .errors import StylekitError


class Cancelled(StylekitError):
    """Raised (by a progress callback) to stop a long operation; partial results are discarded."""


class ProgressCallback(Protocol):
    def __call__(self, step: int, total: int, message: str = "", **metrics: float) -> None: ...


def no_progress(step: int, total: int, message: str = "", **metrics: float) -> None:
    """The default callback: does nothing."""


def tqdm_progress(desc: str = "") -> Callable[..., None]:
    """A callback that drives a tqdm bar (created lazily on the first call)."""
    state: dict = {}

    def callback(step: int, total: int, message: str = "", **metrics: float) -> None:
        from tqdm import tqdm

        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(total=total, desc=desc, leave=True)
        bar.n = step
        if metrics:
            bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items()}, refresh=False)
        if message:
            bar.set_description(f"{desc} {message}".strip(), refresh=False)
        bar.refresh()
        if step >= total:
            bar.close()

    return callback
