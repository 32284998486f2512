"""A tqdm bar on the main rank, nothing elsewhere (tqdm comes with huggingface_hub)."""

from __future__ import annotations

import sys

__all__ = ["progress_bar"]


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, description: str, *, enabled: bool = True):
    """A ``tqdm`` bar over ``total`` items written to stderr, or an object with the same ``update`` /
    ``close`` that shows nothing when ``enabled`` is false."""
    if not enabled:
        return _Silent()
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="item", file=sys.stderr, dynamic_ncols=True, leave=True)
