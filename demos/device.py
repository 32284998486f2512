"""Where the gallery computes: the one device every tab uses, and ZeroGPU's GPU slots for heavy callbacks.

- :func:`device` is the gallery's device, ``stylekit.settings.device()``: ``STYLEKIT_DEVICE``, or CUDA when
  PyTorch sees a GPU, else the CPU. Generators, predictors, CLIP models and fits live there; every tab asks
  :func:`demos.common.get_generator`, which loads on this device, and takes its tensors from the generator.
- :func:`gpu_task` decorates the callbacks that run the networks. Their results come back on the CPU (the
  session latent and each tab's last result are kept per browser session for hours, so they must not hold
  GPU memory; images are shown from the CPU anyway). On a ZeroGPU Space (``SPACES_ZERO_GPU``, with the
  ``spaces`` package installed) the callback is also wrapped in ``spaces.GPU(duration=...)``, which lends it
  a GPU for that long; elsewhere that wrapping is left out and the callback runs as written.

On ZeroGPU a decorated callback runs in a worker process that ``spaces`` forks: what it returns is pickled
back (hence CPU results), and the Stop buttons cannot reach it (they set a flag in the main process), so
there an optimisation always runs its steps to the end. Models loaded at startup (the default model, by the
tabs' ``build``) are moved to the GPU by ``spaces``; a model or a fit first made inside a worker stays in that
worker, which ``spaces`` reuses while it is idle.
"""

from __future__ import annotations

import functools
import inspect
import logging

from stylekit import settings

#: seconds of GPU a ZeroGPU Space reserves for a callback (``spaces.GPU(duration=...)``): rendering a few
#: images, a first-use fit (PCA, a boundary, style statistics, parts, a channel search), an optimisation
RENDER_S = 20
FIT_S = 60
OPTIMISE_S = 120
log = logging.getLogger("stylekit.gallery")


def device() -> str:
    """The gallery's device (``'cpu'``, ``'cuda'`` or ``'cuda:N'``; see :func:`stylekit.settings.device`)."""
    return settings.device()


def to_cpu(value):
    """``value`` with every tensor and :class:`~stylekit.latent.Latent` in it (also inside tuples, lists and
    dicts) moved to the CPU; anything else unchanged. Already-CPU tensors are returned as they are. A latent
    carrying a tuned generator rebuilt by :func:`demos.pti_state.resolve` comes back as its code + fp16 delta."""
    import torch

    from stylekit.latent import Latent

    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, Latent):
        from .pti_state import strip

        value = strip(value)  # a PTI-tuned generator goes back to the state as its fp16 delta, not as weights
        return value if value.device.type == "cpu" and value.generator is None else value.to("cpu")
    if isinstance(value, tuple):
        return tuple(to_cpu(v) for v in value)
    if isinstance(value, list):
        return [to_cpu(v) for v in value]
    if isinstance(value, dict):
        return {k: to_cpu(v) for k, v in value.items()}
    return value


def _cpu_results(fn):
    """``fn`` whose results (each streamed one, for a generator function) come back through :func:`to_cpu`."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def streaming(*args, **kwargs):
            for item in fn(*args, **kwargs):
                yield to_cpu(item)

        return streaming

    @functools.wraps(fn)
    def plain(*args, **kwargs):
        return to_cpu(fn(*args, **kwargs))

    return plain


def gpu_task(duration: int):
    """Decorator for a callback that runs the networks: results to the CPU and, on a ZeroGPU Space,
    ``spaces.GPU(duration=duration)`` (``duration``: the seconds of GPU to reserve per call). Put it above
    ``@user_errors``, so stylekit's errors become ``gr.Error`` inside the GPU worker (which ZeroGPU passes on
    to the browser; other exceptions arrive as a bare 'ZeroGPU worker error')."""
    def decorate(fn):
        wrapped = _cpu_results(fn)
        wrapped.gpu_seconds = int(duration)  # what the tests (and a reader) check; spaces' wrapper keeps it
        if not settings.zero_gpu_space():
            return wrapped
        try:
            import spaces
        except ImportError:
            log.warning("SPACES_ZERO_GPU is set but the spaces package is not installed; %s runs without "
                        "asking ZeroGPU for a GPU (add spaces to requirements.txt)", fn.__name__)
            return wrapped
        return spaces.GPU(duration=duration)(wrapped)

    return decorate
