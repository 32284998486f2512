"""``--compile``: a training run's generator synthesis through ``torch.compile`` (inductor).

The eager synthesis runs each elementwise step (style modulation, demodulation scaling, noise, leaky
ReLU and their gradients) as its own pass over the activations; at toyfaces size (64x64, batch 16)
those passes, not the convolutions, are most of a bfloat16 step (PyTorch's eager bfloat16
elementwise kernels also run at about half float32's rate per element on AVX-512 CPUs). Inductor
fuses them into generated C++ loops that compute in float32 and round once.

Measured on the toyfaces supervised recipe (``python -m stylekit.bench training``; the README has the
table): the first step compiles the forward and backward graphs (tens of seconds; inductor keeps
them in its on-disk cache for the next run of the same shapes), after which the step is faster. The
mathematics is the eager synthesis', so a compiled run and an eager one train the same network
(their random noise streams differ). ``stylekit.networks.stylegan2`` traces as one graph (no
breaks); a generator that breaks the graph still runs, in pieces.

The same flag draws the toyfaces targets (the supervised trainer) and real images (the GAN trainer on
``toyfaces``) through the compiled renderer (``render_batch(..., compiled=True)``): its ~1,900 small
elementwise operations a batch become a few fused loops, about 4x faster. It compiles on the first step,
with dynamic shapes, so the discriminator step's other batch size reuses it.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..errors import InvalidArgumentError
from ..networks.precision import has_cxx_compiler

__all__ = ["synthesis_callable", "has_cxx_compiler"]


def synthesis_callable(G: torch.nn.Module, *, enabled: bool, device) -> Callable:
    """``G.synthesis``, or (``enabled``) its ``torch.compile``-d form with static shapes.

    Raises :class:`~stylekit.errors.InvalidArgumentError` when compiling on a CPU without a C++
    compiler (inductor's CPU backend generates C++), saying what to do instead.
    """
    if not enabled:
        return G.synthesis
    if torch.device(device).type == "cpu" and not has_cxx_compiler():
        raise InvalidArgumentError("--compile on CPU needs a C++ compiler (g++ or clang++) for torch.compile's "
                                   "inductor backend; install one (apt-get install g++) or train without --compile.")
    return torch.compile(G.synthesis, dynamic=False)
