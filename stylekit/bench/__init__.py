"""Benchmarks: ``python -m stylekit.bench <name> --json out.json [options]``.

Each sub-benchmark is a module with two functions:

- ``add_arguments(parser)``: its own command-line options (on an ``argparse`` sub-parser);
- ``run(args) -> dict[str, float]``: do the measurements and return ONE flat mapping
  ``metric name -> number`` (booleans are written as 0/1).

The dispatcher (``__main__.py``) writes that mapping as a JSON object and prints it. Register a
new benchmark by adding one line to :data:`BENCHMARKS`. Benchmarks measure; tests never time
anything. Nothing here runs at import time.
"""

from __future__ import annotations

import resource
import sys
import time
from typing import Callable

# name -> module implementing add_arguments(parser) and run(args)
BENCHMARKS: dict[str, str] = {
    "claims": "stylekit.bench.claims",
    "generator": "stylekit.bench.generator",
    "editing": "stylekit.bench.editing",
    "equivariance": "stylekit.bench.equivariance",
    "inversion": "stylekit.bench.inversion",
    "rig": "stylekit.bench.rig",
    "retrieval": "stylekit.bench.retrieval",
    "scale": "stylekit.bench.scale",
    "styleflow": "stylekit.bench.styleflow",
    "text": "stylekit.bench.text",
    "toyfaces": "stylekit.bench.toyfaces",
    "training": "stylekit.bench.training",
    "video": "stylekit.bench.video",
}


def write_metrics(metrics: dict, json_path=None) -> str:
    """Print ``metrics`` as sorted, indented JSON and write it to ``json_path`` too (folders made); returns the text."""
    import json
    from pathlib import Path

    text = json.dumps(metrics, indent=2, sort_keys=True)
    if json_path is not None:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(text + "\n")
    print(text)
    return text


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (``getrusage``; Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 if sys.platform != "darwin" else peak / (1024.0 * 1024.0)


def time_calls(fn: Callable[[], object], *, repeats: int = 2, budget_s: float = 60.0) -> dict[str, float]:
    """Time ``fn()``: one first call, then up to ``repeats`` more if the first was cheap enough.

    The first call includes one-time costs (kernel selection, allocator growth). When it took
    less than ``budget_s / (repeats + 1)`` seconds it is discarded as a warm-up and the best of
    ``repeats`` further calls is reported; otherwise the first call is the measurement.

    Returns ``{'wall_s', 'cpu_s', 'runs'}``: wall-clock and process CPU seconds (all threads) of
    the reported call, and how many calls were timed after the warm-up (0 = first call only).
    """
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    best = (time.perf_counter() - t0, time.process_time() - c0)
    runs = 0
    if repeats > 0 and best[0] * (repeats + 1) <= budget_s:
        best = None
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            sample = (time.perf_counter() - t0, time.process_time() - c0)
            if best is None or sample[0] < best[0]:
                best = sample
            runs += 1
    return {"wall_s": best[0], "cpu_s": best[1], "runs": float(runs)}
