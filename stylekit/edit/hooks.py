"""Recording intermediate activations of a generator with forward hooks (nothing is monkey-patched).

    with record_activations(G.synthesis, ["b32.conv1"]) as acts:
        G.synthesis(ws)
    feats = acts["b32.conv1"]          # [N, C, 32, 32], the layer's output

``which='input'`` records the first positional input of each module instead (the activations a
style layer modulates). The hooks are removed when the block ends, even on errors.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import torch

from ..errors import InvalidArgumentError

__all__ = ["record_activations", "style_layer_names", "Activations"]


class Activations:
    """What :func:`record_activations` recorded: ``acts[name]`` is a tensor (several forward passes
    are concatenated along the batch dimension); ``name in acts`` and ``acts.clear()`` work too."""

    def __init__(self):
        self._store: dict[str, list[torch.Tensor]] = {}

    def _add(self, name: str, value: torch.Tensor) -> None:
        self._store.setdefault(name, []).append(value)

    def __getitem__(self, name: str) -> torch.Tensor:
        parts = self._store.get(name)
        if not parts:
            raise KeyError(f"layer {name!r} recorded nothing; run a forward pass inside the with-block.")
        if len(parts) > 1:
            self._store[name] = parts = [torch.cat(parts)]
        return parts[0]

    def __contains__(self, name: str) -> bool:
        return bool(self._store.get(name))

    def keys(self):
        return [k for k, v in self._store.items() if v]

    def clear(self) -> None:
        """Forget everything recorded so far (the hooks stay active)."""
        self._store.clear()


def style_layer_names(G) -> list[str]:
    """Names (relative to ``G.synthesis``) of the modules that own a style, in synthesis order."""
    return [sl.name for sl in G.style_layers]


@contextmanager
def record_activations(root: torch.nn.Module, names: Sequence[str], *, which: str = "output",
                       detach: bool = True) -> Iterator[Activations]:
    """Record what the submodules ``names`` of ``root`` output (or receive) during the forward passes
    run inside the ``with`` block.

    Args:
        root: the module the names are relative to (usually ``G.synthesis``).
        names: dotted submodule names (``'b32.conv1'``, ``'L5_84_512'``...).
        which: ``'output'`` (the module's return value) or ``'input'`` (its first positional argument).
        detach: store detached tensors (default) or keep the graph for gradients.

    Yields: an :class:`Activations` mapping ``name -> tensor``; a name seen in several forward passes
    holds their concatenation along the batch dimension.
    """
    if which not in ("output", "input"):
        raise InvalidArgumentError(f"which must be 'output' or 'input', not {which!r}.")
    acts = Activations()
    handles = []
    try:
        for name in names:
            try:
                module = root.get_submodule(name)
            except AttributeError:
                options = [n for n, _ in root.named_children()]
                raise InvalidArgumentError(f"no layer {name!r} in this network; its top-level layers are: "
                                           f"{', '.join(options)} (nested ones are written like 'b32.conv1').") from None

            def hook(_module, args, output, _name=name):
                value = output if which == "output" else (args[0] if args else None)
                if isinstance(value, torch.Tensor):
                    acts._add(_name, value.detach() if detach else value)

            handles.append(module.register_forward_hook(hook))
        yield acts
    finally:
        for h in handles:
            h.remove()
