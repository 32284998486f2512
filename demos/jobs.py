"""The gallery's background jobs: long per-model fits that run in a worker thread, never inside a callback.

A fit that takes minutes or more on a real model (a global-directions relevance table, an InterFaceGAN
boundary from CLIP zero-shot labels, a text mapper) is a :class:`Job`:

- :func:`start` runs ``compute(report)`` in one worker thread per *key* (the fit's identity, e.g.
  ``(model, "relevance", clip)``); a second :func:`start` of the same key, from any session, returns the
  job already queued, running or done instead of computing it twice. A failed job may be started again.
- Jobs that compute run one at a time (:data:`MAX_RUNNING`), so two of them never add up past the memory
  each was sized for; the others wait as ``queued``.
- ``compute`` reports ``report(done, total, message)``; a callback reads :meth:`Job.describe`, which says
  e.g. ``"computing the relevance table: 40% (3 of 8 images; started by another session)"``. Callbacks
  never wait for a job: they say where it stands and return.
- a callback on a small model (at most :data:`FOLLOW_MAX_PX` pixels a side, e.g. toyfaces, whose fits take
  seconds) may start the job and :func:`follow` it with its progress bar until it is done; on larger models it
  returns at once with the job's line.
- ``compute`` keeps its result on disk under :func:`cache_dir` (``$STYLEKIT_CACHE/gallery``) or in the
  library's own cache, so a restarted server finds it; the resumable ones (relevance, labels) skip the
  parts already on disk when started again.

Sizing to memory (:func:`batch_for`): a job's budget is :func:`job_budget` bytes, the smaller of
:data:`JOB_MEMORY_GB` and a :data:`JOB_SHARE` of the memory available now (``MemAvailable`` of
``/proc/meminfo`` on the CPU, ``torch.cuda.mem_get_info`` on a GPU). Each job knows what one item of its
batch costs at 1024 x 1024 (measured on the CPU with the full-size FFHQ generator and CLIP ViT-B-32, see
:data:`COST_GB_1024`); costs scale with the generator's pixel count, and the batch is
``floor((budget - fixed) / per_item)`` clamped to ``[1, cap]``. Images are rendered at the generator's own
resolution (the fine layers' channels only exist there; CLIP resizes to its 224 px input anyway), so the
batch (images per pass, cotangents per backward) is what memory decides. With ``JOB_MEMORY_GB = 3`` a
relevance job on FFHQ-1024 runs one image per pass with 8 cotangents per backward, where the library's
defaults (16 images, 32 cotangents) passed 23 GB. Interactive calls that batch gradients (StyleSpace's Find
channels) take :func:`call_budget` instead, :data:`CALL_MEMORY_GB`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from stylekit.errors import StylekitError

log = logging.getLogger("stylekit.gallery")

#: at most this many jobs compute at once (others wait, queued)
MAX_RUNNING = 1
#: a job's memory budget in GB at most (the whole server stays under 12 GB with ffhq-1024, e4e and ViT-B-32
#: loaded, two sessions editing and one job computing)
JOB_MEMORY_GB = 3.0
#: and at most this share of the memory available when the job starts
JOB_SHARE = 0.5
#: what one interactive call may take for its batch (GB): two sessions' calls and one job stay within the bar
CALL_MEMORY_GB = 1.5
#: measured extra peak memory (GB) per batch item at 1024 x 1024 on the CPU (ffhq-1024 + ViT-B-32, fp32):
#: ``"grad_image"`` one image rendered and embedded with its graph kept (relevance, mapper, channel gradients);
#: ``"cotangent"`` each extra cotangent of a batched vector-Jacobian product (relevance 'lowrank');
#: ``"render"`` one image rendered and embedded without gradients (labelling)
COST_GB_1024 = {"grad_image": 1.3, "cotangent": 0.19, "render": 0.25}
#: models up to this size (pixels a side) have their background fits followed inside the call that needs them
FOLLOW_MAX_PX = 128


def cache_dir() -> Path:
    """Where the gallery keeps its fits on disk: ``stylekit.settings.cache_dir() / "gallery"``."""
    from stylekit import settings

    return settings.cache_dir() / "gallery"


def available_bytes(device: str = "cpu") -> int:
    """Memory available now on ``device``: free GPU memory for CUDA, else ``MemAvailable`` of /proc/meminfo
    (the physical pages when that file is missing)."""
    import os

    if str(device).startswith("cuda"):
        import torch

        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def job_budget(device: str = "cpu") -> int:
    """A job's memory budget in bytes: ``min(JOB_MEMORY_GB, JOB_SHARE * available_bytes(device))``."""
    return int(min(JOB_MEMORY_GB * 1e9, JOB_SHARE * available_bytes(device)))


def call_budget(device: str = "cpu") -> int:
    """An interactive call's memory budget in bytes: ``min(CALL_MEMORY_GB, JOB_SHARE * available_bytes(device))``
    (at 1024 px: one image with gradients per pass)."""
    return int(min(CALL_MEMORY_GB * 1e9, JOB_SHARE * available_bytes(device)))


def item_bytes(kind: str, resolution: int) -> int:
    """What one batch item of ``kind`` (a key of :data:`COST_GB_1024`) costs at ``resolution`` pixels a side."""
    return max(1, int(COST_GB_1024[kind] * 1e9 * (int(resolution) / 1024) ** 2))


def batch_for(kind: str, resolution: int, *, cap: int, budget: int | None = None, fixed: int = 0,
              device: str = "cpu") -> int:
    """Items of ``kind`` per batch: ``floor((budget - fixed) / item_bytes)`` clamped to ``[1, cap]``
    (``budget``: :func:`job_budget` of ``device`` when None; ``fixed``: bytes the job needs besides its batch)."""
    budget = job_budget(device) if budget is None else int(budget)
    return int(max(1, min(int(cap), (budget - int(fixed)) // item_bytes(kind, resolution))))


@dataclass
class Job:
    """One background fit. ``state``: queued, running, done or failed; ``result``: what ``compute`` returned."""

    key: tuple
    label: str
    session: str
    state: str = "queued"
    done: float = 0.0
    total: float = 1.0
    message: str = ""
    error: str = ""
    result: Any = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    event: threading.Event = field(default_factory=threading.Event, repr=False)

    def report(self, done, total, message: str = "", **_metrics) -> None:
        """The progress callback handed to ``compute`` (stylekit's ``(step, total, message)`` form)."""
        self.done, self.total, self.message = float(done), float(max(total, 1)), str(message or "")

    @property
    def percent(self) -> int:
        return int(100 * min(1.0, self.done / self.total)) if self.total else 0

    def describe(self, session: str | None = None) -> str:
        """One line for the user: what the job does and where it stands."""
        who = "" if session is None or session == self.session else "; started by another session"
        if self.state == "queued":
            return f"{self.label}: queued behind another computation{who}."
        if self.state == "running":
            detail = f" ({self.message})" if self.message else ""
            return f"computing {self.label}: {self.percent}%{detail}{who}."
        if self.state == "failed":
            return f"{self.label} failed: {self.error} Start it again to retry."
        seconds = (self.finished or time.monotonic()) - self.started
        return f"{self.label}: done in {seconds:.0f} s{who}."


_JOBS: dict[tuple, Job] = {}
_LOCK = threading.Lock()  # guards _JOBS; never held while computing
_RUNNING = threading.Semaphore(MAX_RUNNING)


class reporting_every:
    """``with reporting_every(tick, seconds=1.0, name=...):`` calls ``tick()`` now and every ``seconds`` on a
    daemon thread while the block runs (a library call that writes its progress to disk, read back by ``tick``),
    and stops it when the block ends, however it ends."""

    def __init__(self, tick: Callable[[], None], seconds: float = 1.0, name: str = "stylekit-job-progress"):
        self._tick, self._seconds, self._stop = tick, seconds, threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def _loop(self) -> None:
        while True:
            self._tick()
            if self._stop.wait(self._seconds):
                return

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def get(key: tuple) -> Job | None:
    """The job of ``key`` (queued, running, done or failed), or None when none was started."""
    with _LOCK:
        return _JOBS.get(key)


def start(key: tuple, label: str, compute: Callable[[Callable], Any], *, session: str = "") -> Job:
    """Start ``compute(report)`` for ``key`` in a worker thread unless a job of ``key`` is already queued,
    running or done (that job is returned; nothing is computed twice). Returns at once."""
    with _LOCK:
        job = _JOBS.get(key)
        if job is not None and job.state != "failed":
            return job
        job = _JOBS[key] = Job(key, label, session)
    threading.Thread(target=_run, args=(job, compute), name=f"stylekit-job-{label}", daemon=True).start()
    return job


def _run(job: Job, compute) -> None:
    with _RUNNING:
        job.state = "running"
        job.started = time.monotonic()
        t0 = time.perf_counter()
        try:
            job.result = compute(job.report)
        except StylekitError as exc:
            job.error, job.state = str(exc), "failed"
            log.warning("background job %s failed: %s", job.label, exc)
        except Exception as exc:  # noqa: BLE001 - a worker thread must record every failure for the user
            job.error, job.state = f"{type(exc).__name__}: {exc}.", "failed"
            log.exception("background job %s failed", job.label)
        else:
            job.done, job.state = job.total, "done"
            log.info("background job %s done in %.1f s", job.label, time.perf_counter() - t0)
        finally:
            job.finished = time.monotonic()
            job.event.set()


def wait(key: tuple, timeout: float | None = None) -> Job | None:
    """Block until the job of ``key`` has finished (or ``timeout`` seconds passed); for scripts and tests,
    never for a callback. Returns the job (None when none was started)."""
    job = get(key)
    if job is not None:
        job.event.wait(timeout)
    return job


def forget(key: tuple) -> None:
    """Drop the record of a finished job (its result on disk stays); a running job is kept."""
    with _LOCK:
        job = _JOBS.get(key)
        if job is not None and job.state in ("done", "failed"):
            del _JOBS[key]


def follows_in_call(G) -> bool:
    """True when a callback may wait for ``G``'s background fits (see :data:`FOLLOW_MAX_PX`)."""
    return int(G.img_resolution) <= FOLLOW_MAX_PX


def follow(job: Job, progress=None, session: str | None = None, stop: threading.Event | None = None) -> Job:
    """Wait for ``job`` in a callback, driving ``progress((done, total), desc=...)`` (a ``gr.Progress``) with its
    line; returns early when ``stop`` is set (the job goes on). A failed job raises ``gr.Error`` with its line."""
    import gradio as gr

    while not job.event.wait(0.5):
        if progress is not None:
            progress((job.done, job.total), desc=job.describe(session))
        if stop is not None and stop.is_set():
            return job
    if job.state == "failed":
        raise gr.Error(job.describe(session), print_exception=False)
    return job
