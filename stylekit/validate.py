"""Argument checks shared by every technique: iteration counts and non-negative numbers.

Each raises :class:`~stylekit.errors.InvalidArgumentError` with a sentence saying what to pass.
"""

from __future__ import annotations

import math

from .errors import InvalidArgumentError

#: The most iterations any stylekit loop accepts (results stop improving long before).
MAX_STEPS = 20_000


def check_steps(steps, name: str = "steps", *, allow_zero: bool = False) -> int:
    """Validate an iteration count: an integer in ``[1, 20000]`` (``[0, 20000]`` with ``allow_zero``)."""
    low = 0 if allow_zero else 1
    if isinstance(steps, bool) or not isinstance(steps, (int, float)) or (isinstance(steps, float) and
                                                                         (not math.isfinite(steps) or steps != int(steps))):
        raise InvalidArgumentError(f"{name} must be a whole number between {low} and {MAX_STEPS}, not {steps!r}.")
    steps = int(steps)
    if steps < low:
        raise InvalidArgumentError(f"{name} must be at least {low} (got {steps}); a few hundred steps is typical.")
    if steps > MAX_STEPS:
        raise InvalidArgumentError(f"{name}={steps} is more than the {MAX_STEPS} stylekit allows; results stop improving "
                                   "long before that, so use a few hundred to a few thousand steps.")
    return steps


def check_positive(value, name: str, *, allow_zero: bool = True) -> float:
    """A finite float >= 0 (> 0 unless ``allow_zero``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be a number, not {value!r}.") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise InvalidArgumentError(f"{name} must be a finite number {'>=' if allow_zero else '>'} 0, got {value!r}.")
    return v
