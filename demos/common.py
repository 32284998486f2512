"""Helpers shared by the tabs: the model picker, cached generators, and error conversion."""

from __future__ import annotations

import functools
import threading

import gradio as gr

from stylekit import registry
from stylekit.errors import StylekitError

DEFAULT_MODEL = "toyfaces"
_LOCK = threading.Lock()


def model_choices() -> list[str]:
    """Registered generator names for the picker (the offline default first)."""
    names = [e.name for e in registry.list_models("generator")]
    return [DEFAULT_MODEL] + [n for n in names if n != DEFAULT_MODEL]


@functools.lru_cache(maxsize=4)
def _load(name: str, device: str):
    import stylekit

    return stylekit.load_generator(name, device=device)


def get_generator(name: str, device: str = "cpu"):
    """Load (once) and return the generator called ``name``; stylekit errors become ``gr.Error``."""
    with _LOCK:
        try:
            return _load(name or DEFAULT_MODEL, device)
        except StylekitError as exc:
            raise gr.Error(str(exc)) from exc


def user_errors(fn):
    """Decorator: turn stylekit's errors raised by a callback into readable ``gr.Error`` toasts."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except StylekitError as exc:
            raise gr.Error(str(exc)) from exc

    return wrapper


def teaching_note(markdown: str) -> gr.Markdown:
    """A short explanation shown at the top of a tab."""
    return gr.Markdown(markdown, elem_classes=["teaching-note"])
