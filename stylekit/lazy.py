"""Lazy package exports: a package's names are imported on first use, so ``import stylekit`` does no work.

Each package writes a table (name -> module) and takes its ``__getattr__`` from :func:`lazy_exports`.
A lazily exported name never equals a submodule's name (``tests/test_public_api.py`` checks), so an
attribute means the same thing before and after ``import stylekit.<package>.<module>``.
"""

from __future__ import annotations

import importlib
import sys
from typing import Callable, Iterable, Mapping


def lazy_exports(package: str, names: Mapping[str, str], submodules: Iterable[str] = ()) -> Callable[[str], object]:
    """A module-level ``__getattr__`` for ``package``.

    Args:
        package: the package's ``__name__``.
        names: exported name -> the module that defines it, absolute (``"stylekit.networks.base"``) or
            relative to the package (``"renderer"``).
        submodules: submodule names reachable as attributes before they are imported.
    """
    submodules = frozenset(submodules)

    def __getattr__(name: str):
        if name in submodules:
            value = importlib.import_module(f"{package}.{name}")
        elif name in names:
            target = names[name]
            module = target if target.startswith("stylekit.") or target == "stylekit" else f"{package}.{target}"
            value = getattr(importlib.import_module(module), name)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
