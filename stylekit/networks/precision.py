"""Compute precision of the networks: ``'fp32'``, ``'bf16'`` or ``'fp16'``, and what ``'auto'`` picks.

Weights always stay float32 (in memory and on disk); the precision says in which dtype a network's
heavy work (convolutions, matrix products, the elementwise passes over activations) runs. The
sensitive sums stay float32 whatever the precision (demodulation coefficients, styles, the
StyleGAN2 skip image), and every generator returns float32 images.

``'auto'`` picks, in :func:`choose_precision`:

- ``'bf16'`` on a CPU with AMX (``amx_bf16``) or AVX-512-BF16 (``avx512_bf16``): there bfloat16
  convolutions run several times faster than float32 ones;
- ``'fp16'`` on CUDA;
- ``'fp32'`` everywhere else (a CPU without bfloat16 units emulates it, slower than float32).
"""

from __future__ import annotations

import functools
import shutil
from typing import Iterable

import torch

from ..errors import InvalidArgumentError

PRECISIONS = ("fp32", "bf16", "fp16")
CHOICES = ("auto",) + PRECISIONS
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

#: /proc/cpuinfo flags that mean the CPU computes bfloat16 products natively.
BF16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


def has_bf16_units(cpu_flags: Iterable[str]) -> bool:
    """Whether a CPU with these feature flags computes bfloat16 products natively (any of :data:`BF16_CPU_FLAGS`)."""
    return bool(BF16_CPU_FLAGS & {str(f).lower() for f in cpu_flags})


def choose_precision(device_type: str, cpu_flags: Iterable[str]) -> str:
    """What ``'auto'`` means on a ``device_type`` (``'cpu'``, ``'cuda'``, ``'mps'`` ...) with these CPU flags.

    A pure function (no hardware is queried): ``'bf16'`` for a CPU with any of
    :data:`BF16_CPU_FLAGS`, ``'fp16'`` for CUDA, ``'fp32'`` otherwise.
    """
    if device_type == "cuda":
        return "fp16"
    if device_type == "cpu" and has_bf16_units(cpu_flags):
        return "bf16"
    return "fp32"


def has_cxx_compiler() -> bool:
    """Whether a C++ compiler that ``torch.compile``'s CPU backend (inductor) can use is on the PATH
    (``g++``, ``c++`` or ``clang++``): what the ``--compile`` and ``compiled=`` options need on a CPU."""
    return any(shutil.which(name) for name in ("g++", "c++", "clang++"))


@functools.lru_cache(maxsize=1)
def host_cpu_flags() -> frozenset[str]:
    """This machine's CPU feature flags: ``/proc/cpuinfo``'s ``flags`` line (Linux), else the
    bfloat16 flags implied by torch's CPU capability (``AVX512_BF16`` / ``AMX_BF16``); may be empty."""
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags.update(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    if not flags:
        capability = str(getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")()).lower()
        flags.update(flag for flag in BF16_CPU_FLAGS if flag in capability)
    return frozenset(flags)


def resolve_precision(precision: str | None, device=None) -> str:
    """``precision`` as one of :data:`PRECISIONS`; ``'auto'`` (or None) is decided for ``device``.

    Raises ``InvalidArgumentError`` for an unknown name.
    """
    device_type = torch.device(device if device is not None else "cpu").type
    if precision is None or precision == "auto":
        return choose_precision(device_type, host_cpu_flags() if device_type == "cpu" else ())
    if precision not in PRECISIONS:
        raise InvalidArgumentError(f"precision must be one of {', '.join(CHOICES)}, not {precision!r}.")
    return precision


def dtype_of(precision: str) -> torch.dtype:
    """The torch dtype of a precision name (``'bf16'`` -> ``torch.bfloat16``)."""
    if precision not in DTYPES:
        raise InvalidArgumentError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}.")
    return DTYPES[precision]
