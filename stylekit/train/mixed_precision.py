"""The compute precision of a training run (``--precision fp32|bf16|fp16|auto``).

Every trainer runs its networks' forward passes inside :meth:`MixedPrecision.autocast` and computes
its losses in float32 (network outputs are cast with ``.float()`` before any loss term):

- ``'fp32'``: nothing changes (no autocast, no layout change): exactly the float32 training.
- ``'bf16'``: ``torch.autocast(dtype=bfloat16)``; on CPU also channels-last activations and weights
  (:meth:`MixedPrecision.channels_last`, :meth:`MixedPrecision.images`), where oneDNN's bfloat16
  convolutions are fastest. bfloat16 has float32's range, so no loss scaling is needed.
- ``'fp16'``: ``torch.autocast(dtype=float16)`` with a ``torch.amp.GradScaler`` (float16's range is
  small: the loss is scaled before the backward pass and the gradients unscaled before the step,
  skipping steps whose gradients overflowed). Meant for CUDA.
- ``'auto'``: what :func:`stylekit.networks.precision.choose_precision` picks for the device
  (bfloat16 on CPUs with AMX / AVX-512-BF16, float16 on CUDA, float32 elsewhere).

Weights, optimiser states and checkpoints stay float32 in every precision. StyleGAN generators
have their own reduced-precision synthesis path (``G.synthesis(..., precision=...)``);
:attr:`MixedPrecision.synthesis` is what to pass there (None in float32: the generator's own).
"""

from __future__ import annotations

import contextlib

import torch

from ..networks.cpu_memory import keep_freed_memory
from ..networks.precision import dtype_of, has_bf16_units, host_cpu_flags, resolve_precision

__all__ = ["MixedPrecision"]


class MixedPrecision:
    """Autocast, memory layout and gradient scaling of one run, for ``precision`` on ``device``.

    Attributes: ``precision`` (``'fp32'``, ``'bf16'`` or ``'fp16'``, ``'auto'`` resolved),
    ``device_type``, ``enabled`` (not float32), ``scaler`` (a GradScaler for float16, else None),
    ``emulated`` (bfloat16 asked for on a CPU without bfloat16 units: it runs, many times slower than
    float32, and :meth:`describe` says so). ``cpu_flags`` defaults to this machine's.
    """

    def __init__(self, precision: str = "fp32", device="cpu", *, cpu_flags=None):
        self.device_type = torch.device(device).type
        self.precision = resolve_precision(precision, device)
        keep_freed_memory(device)
        self.emulated = (self.precision == "bf16" and self.device_type == "cpu"
                         and not has_bf16_units(host_cpu_flags() if cpu_flags is None else cpu_flags))
        self.enabled = self.precision != "fp32"
        self.dtype = dtype_of(self.precision)
        self.scaler = torch.amp.GradScaler(self.device_type) if self.precision == "fp16" else None
        self._channels_last = self.enabled and self.device_type == "cpu"
        #: set by a multi-process run (:class:`~stylekit.train.distributed.Distributed`): averages an
        #: optimiser's gradients over the ranks before they are unscaled, clipped or stepped
        self.distributed = None

    def __repr__(self) -> str:
        return f"MixedPrecision({self.precision!r}, device_type={self.device_type!r})"

    def describe(self) -> str:
        """One line for the run's log: what the precision does on this device."""
        if not self.enabled:
            return "precision fp32"
        parts = [f"autocast {self.precision}"]
        if self._channels_last:
            parts.append("channels-last")
        if self.scaler is not None:
            parts.append("gradient scaling")
        line = f"precision {self.precision} ({', '.join(parts)}; weights and losses float32)"
        if self.emulated:
            line += ("; WARNING: this CPU has no bfloat16 units (no amx_bf16 / avx512_bf16), so bfloat16 is emulated "
                     "and runs many times slower than float32: use --precision auto (float32 here)")
        return line

    @property
    def synthesis(self) -> str | None:
        """The ``precision=`` to pass to ``G.synthesis`` while training: None in float32 (the
        generator's own setting, as before), else this run's precision."""
        return self.precision if self.enabled else None

    def autocast(self):
        """The context the forward passes run in (a no-op in float32)."""
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def channels_last(self, module: torch.nn.Module) -> torch.nn.Module:
        """``module`` with channels-last 4-D weights when this run uses that layout (in place; returns it)."""
        if self._channels_last and module is not None:
            module.to(memory_format=torch.channels_last)
        return module

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """A 4-D batch ``[N, C, H, W]`` in the run's layout (channels-last on CPU in bf16 / fp16)."""
        if self._channels_last and x.ndim == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    # -- the optimiser step

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        """``loss.backward()``, scaled first when gradients are scaled (float16)."""
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward(**kwargs)

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Unscale ``optimizer``'s gradients before clipping them (a no-op without gradient scaling).

        On several processes the gradients are averaged over the ranks first, so clipping sees the
        global gradient."""
        if self.distributed is not None:
            self.distributed.sync_gradients(optimizer)
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """``optimizer.step()``; with gradient scaling, skipped when a gradient overflowed, and the scale updated.

        On several processes the gradients are averaged over the ranks first (so every rank sees
        the same overflow and skips the same steps)."""
        if self.distributed is not None:
            self.distributed.sync_gradients(optimizer)
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)
            self.scaler.update()
        if self.distributed is not None:
            self.distributed.step_done(optimizer)  # also when float16's step was skipped

    # -- checkpoints

    def state_dict(self) -> dict | None:
        """The gradient scaler's state (None without one)."""
        return self.scaler.state_dict() if self.scaler is not None else None

    def load_state_dict(self, state: dict | None) -> None:
        """Restore :meth:`state_dict` (ignored without a scaler or a state)."""
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
