"""Freed CPU memory is kept for reuse once a network is on the CPU (stylekit.networks.cpu_memory).

The effect is observed where it happens: the minor page faults of allocating and touching a 64 MB tensor a
second time, in a fresh process (the malloc settings are process-wide and applied once).
"""

import json
import os
import platform
import subprocess
import sys

import pytest

from stylekit import settings
from stylekit.errors import InvalidArgumentError

_PROBE = r"""
import json, resource, sys
import torch
from stylekit.networks.cpu_memory import allocator

def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

if sys.argv[1] == "load":
    from stylekit import load_generator
    load_generator("toyfaces", device="cpu")  # what every user goes through

def layer():  # three 64 MB activations, as a 1024-pixel layer makes them (above glibc's largest mmap threshold)
    x = torch.ones(1, 16, 1024, 1024)
    y = torch.nn.functional.conv2d(x, torch.ones(16, 16, 3, 3), padding=1)
    return float((torch.relu(y) + x)[0, 0, 0, 0])

for _ in range(2):  # warm-up calls
    layer()
f0 = faults()
for _ in range(3):
    layer()
print(json.dumps({"allocator": allocator(), "faults": faults() - f0}))
"""


def _probe(mode: str, **env) -> dict:
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, timeout=300,
                         env={**os.environ, **env}, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_loading_a_network_on_the_cpu_keeps_freed_memory_for_the_next_call():
    per_map = 64 * 1024 * 1024 // 4096  # pages of one 64 MB map
    plain = _probe("none")  # nothing loaded: the system's malloc gives the maps back and faults them in again
    assert plain["allocator"] == "system" and plain["faults"] > 3 * 3 * per_map  # 3 calls, >= 3 fresh maps each
    kept = _probe("load")
    assert kept["allocator"] == "kept" and kept["faults"] < 3 * per_map  # under one fresh map a call (mostly 0)
    system = _probe("load", STYLEKIT_CPU_MALLOC="system")  # the opt-out leaves malloc alone
    assert system["allocator"] == "system" and system["faults"] > 3 * 3 * per_map


def test_the_malloc_setting_is_checked(monkeypatch):
    monkeypatch.delenv("STYLEKIT_CPU_MALLOC", raising=False)
    assert settings.cpu_malloc() == "keep"
    monkeypatch.setenv("STYLEKIT_CPU_MALLOC", " System ")
    assert settings.cpu_malloc() == "system"
    monkeypatch.setenv("STYLEKIT_CPU_MALLOC", "jemalloc")
    with pytest.raises(InvalidArgumentError, match="keep .*or system"):
        settings.cpu_malloc()


def test_bench_generator_takes_the_malloc_choice():
    from stylekit.bench.__main__ import build_parser

    defaults = build_parser("generator").parse_args([])
    assert defaults.malloc == "keep" and defaults.reference_malloc == "system"
    assert build_parser("generator").parse_args(["--malloc", "system"]).malloc == "system"
    with pytest.raises(SystemExit):
        build_parser("generator").parse_args(["--malloc", "tcmalloc"])
