"""stylekit's one family of exceptions.

Every error a user can cause (a bad file, a bad image, an unknown model name, a prompt that is too
long, being offline without a cached file) raises a subclass of :class:`StylekitError` whose message
is a sentence saying what went wrong and what to do. The gallery turns these into ``gr.Error``.
"""

from __future__ import annotations


class StylekitError(Exception):
    """Base class of every error stylekit raises on purpose."""


class CheckpointError(StylekitError):
    """A checkpoint file could not be read: missing, truncated, wrong format, unsafe, or unknown shapes."""


class UnsafeCheckpointError(CheckpointError):
    """A pickle asked for a global that stylekit refuses to import (nothing from it was executed)."""


class ModelNotFoundError(StylekitError):
    """A model name is not in the registry and is not a readable path."""


class OfflineError(StylekitError):
    """Weights are needed from the Hugging Face Hub but the Hub cannot be reached and no cached copy exists."""


class ImageInputError(StylekitError):
    """An image could not be used: unreadable, corrupt, too large, or of a size/mode that cannot be handled."""


class InvalidArgumentError(StylekitError, ValueError):
    """An argument is out of range or inconsistent (layer ranges, latent shapes, NaN strengths, steps...)."""
