"""Where a CPU training step's time goes: ``--profile-steps N`` of the generator trainers.

After :data:`WARMUP_STEPS` steps of the process (the first steps allocate memory, and a compiled
synthesis compiles there), ``N`` steps run under ``torch.profiler``. ``profile.json`` in the run
folder then holds, per step, in milliseconds:

- ``self_ms``: each PyTorch operator's own CPU time (``aten::mkldnn_convolution``, ``aten::mul`` ...),
  the time spent in the operator itself, not in the operators it calls;
- ``scopes_ms``: the whole time of the labelled parts of a step (:data:`SCOPES`: ``render_targets``, the
  supervised targets' drawing; ``data``, the GAN's real images), operators inside them included;
- ``wall_ms``: the wall time of a profiled step (the profiler's own overhead included).

:func:`time_shares` sums a profile into convolutions and matrix products, the labelled scopes and
everything else, which is how ``python -m stylekit.bench training --profile-steps`` compares the
precisions part by part.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ..errors import InvalidArgumentError

__all__ = ["StepProfile", "time_shares", "WARMUP_STEPS", "SCOPES", "CONV_OPS"]

#: steps of the process that run before the profiled ones
WARMUP_STEPS = 3

#: labelled parts of a step (``torch.profiler.record_function`` names), reported whole: the supervised
#: trainer's drawing of its targets, the GAN trainer's real images (renders or a folder's files)
SCOPES = ("render_targets", "data")

#: the operators that do the convolutions and matrix products (forward and backward); their self time
#: is the "convolutions" share. ``aten::_convolution`` holds the transposed convolutions' own work.
CONV_OPS = frozenset({"aten::mkldnn_convolution", "aten::convolution_backward", "aten::_convolution",
                      "aten::mkldnn_convolution_backward", "aten::slow_conv_transpose2d",
                      "aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm", "aten::_mkldnn_linear",
                      "mkldnn::_convolution_pointwise", "mkldnn::_linear_pointwise"})


class StepProfile:
    """Profiles steps ``WARMUP_STEPS .. WARMUP_STEPS + steps - 1`` of a loop and writes ``profile.json``.

    Call :meth:`before` and :meth:`after` around every step with the loop's 0-based step index of this
    process; :meth:`after` returns the written summary once the last profiled step is done, else None.
    """

    def __init__(self, steps: int, out: Path | None, device, *, log=None, warmup: int = WARMUP_STEPS):
        if steps < 0:
            raise InvalidArgumentError(f"--profile-steps must be >= 0, not {steps}")
        if steps and torch.device(device).type != "cpu":
            raise InvalidArgumentError(
                "--profile-steps profiles CPU training (operator CPU time); on a GPU use torch.profiler "
                "with CUDA activity, or Nsight Systems.")
        self.steps, self.out, self.log, self.warmup = steps, out, log, warmup
        self._prof = None
        self._t0 = 0.0
        self.summary: dict | None = None

    def before(self, index: int) -> None:
        if self.steps and index == self.warmup:
            self._prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
            self._prof.__enter__()
            self._t0 = time.perf_counter()

    def after(self, index: int) -> dict | None:
        if self._prof is None or index != self.warmup + self.steps - 1:
            return None
        return self._summarize(self.steps)

    def finish(self, steps_done: int) -> dict | None:
        """At the end of the loop (``steps_done`` steps of this process): summarizes the profiled steps of
        a run that ended while profiling; logs it when the run ended before the first profiled step."""
        if self._prof is not None:
            return self._summarize(steps_done - self.warmup)
        if self.steps and self.summary is None and self.log is not None:
            self.log(f"profile: nothing profiled (the run ended after {steps_done} steps; profiling starts after "
                     f"{self.warmup})")
        return None

    def _summarize(self, n: int) -> dict:
        wall = time.perf_counter() - self._t0
        self._prof.__exit__(None, None, None)
        events = self._prof.key_averages()
        self._prof = None
        self_ms = {e.key: e.self_cpu_time_total / 1000 / n for e in events if e.self_cpu_time_total > 0}
        scopes = {e.key: e.cpu_time_total / 1000 / n for e in events if e.key in SCOPES}
        self.summary = {"steps": n, "after_steps": self.warmup, "wall_ms": wall * 1000 / n,
                        "self_ms": dict(sorted(self_ms.items(), key=lambda kv: -kv[1])), "scopes_ms": scopes,
                        "shares_ms": time_shares(self_ms, scopes)}
        if self.out is not None:
            (Path(self.out) / "profile.json").write_text(json.dumps(self.summary, indent=1))
        if self.log is not None:
            shares = self.summary["shares_ms"]
            self.log(f"profile of {n} steps (after {self.warmup}): {self.summary['wall_ms']:.1f} ms a step; "
                     + ", ".join(f"{k} {v:.1f} ms" for k, v in shares.items()) + "; profile.json")
        return self.summary


def time_shares(self_ms: dict[str, float], scopes_ms: dict[str, float]) -> dict[str, float]:
    """A profile's milliseconds a step in three parts: ``convolutions`` (the self time of :data:`CONV_OPS`),
    each labelled scope of ``scopes_ms`` (whole; none of them holds a convolution), and ``other`` (the
    rest of the operators' self time: elementwise work, reductions, copies, the optimiser)."""
    conv = sum(ms for name, ms in self_ms.items() if name in CONV_OPS)
    total = sum(self_ms.values())  # a scope's own (Python) time is in its self time and in its whole time
    scoped = sum(scopes_ms.values())
    return {"convolutions": conv, **scopes_ms, "other": max(total - conv - scoped, 0.0)}
