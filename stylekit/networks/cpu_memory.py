"""Keeping freed CPU memory for reuse, so that big activations stop page-faulting in on every call.

glibc's ``malloc`` serves every block at or above its mmap threshold (32 MB at most) with a fresh
``mmap`` and gives it back to the kernel on ``free``. A StyleGAN2 at 1024 allocates dozens of such
blocks per image (one ``[1, 32, 1024, 1024]`` bfloat16 map is 64 MB), so every call touches
thousands of brand-new pages, and each first touch is a page fault that zeroes 4 KB: on a 2-core
CPU that costs about a quarter of a bfloat16 synthesis. :func:`keep_freed_memory` asks glibc, once per
process, to keep freed memory for the next call instead:

- ``M_MMAP_MAX = 0``: big blocks come from the heap, where freed memory is reused;
- ``M_TRIM_THRESHOLD`` = 2 GiB (mallopt's largest, a C ``int``): the top of the heap is handed back only
  beyond that;
- ``M_ARENA_MAX = 1``: every thread allocates from that one heap (a thread's own arena is at most
  64 MB, so it would ``mmap`` the big blocks anyway; the gallery computes in worker threads).

The price is that the process keeps its peak memory after a big call (resident size stays at the
high-water mark; the peak itself barely moves). ``STYLEKIT_CPU_MALLOC=system`` leaves ``malloc``
alone. Nothing happens off Linux/glibc, or before a network is placed on the CPU.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

from .. import settings

# mallopt parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_KEEP = ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1), (_M_ARENA_MAX, 1))

_LOCK = threading.Lock()
_STATE: dict = {}  # "applied" -> bool, once decided


def _glibc():
    """glibc's ``mallopt`` as a ctypes function, or None off glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()  # only glibc has it
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt


def keep_freed_memory(device="cpu") -> bool:
    """Ask glibc's malloc to keep freed memory for reuse (see the module docstring); once per process.

    Called by the loaders when they place a network on the CPU (``device`` of type ``'cpu'``; any
    other device does nothing). Returns whether the process runs with it (False with
    ``STYLEKIT_CPU_MALLOC=system``, off glibc, or when glibc refused a setting).
    """
    import torch

    if torch.device(device if device is not None else "cpu").type != "cpu":
        return bool(_STATE.get("applied"))
    with _LOCK:
        if "applied" not in _STATE:
            mallopt = _glibc() if settings.cpu_malloc() == "keep" else None
            _STATE["applied"] = mallopt is not None and all(mallopt(param, value) == 1 for param, value in _KEEP)
        return _STATE["applied"]


def allocator() -> str:
    """``'kept'`` once :func:`keep_freed_memory` has applied, else ``'system'`` (for reports)."""
    return "kept" if _STATE.get("applied") else "system"
