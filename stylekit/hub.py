"""Fetching weights from the Hugging Face Hub (the only code in stylekit that touches the network).

Everything goes through ``huggingface_hub.hf_hub_download`` and its cache, so a file downloaded
once is reused offline. Two ways to work with no network at all:

- a filled Hub cache (``HF_HOME`` / ``HF_HUB_CACHE``, or ``cache_dir=``), e.g. copied from a
  connected machine after ``hf download REPO FILE``;
- a local mirror folder laid out as ``<mirror>/<owner>/<repo>/<filename>``, named by the
  environment variable ``STYLEKIT_HUB_MIRROR`` (useful in classrooms: one USB stick).

Set ``STYLEKIT_OFFLINE=1`` (or ``HF_HUB_OFFLINE=1``) to never attempt a download.

Requests wait at most ``STYLEKIT_HUB_TIMEOUT`` seconds (default 10) for an answer. A file that is not
cached is first looked up with one metadata request of our own, not retried: a Hub that is down or
hangs fails at once with :class:`OfflineError` instead of huggingface_hub's second, minute-long try.
Every download is logged (``stylekit.hub``: ``downloading owner/repo/file (N MB)``) and reported to a
progress callback: ``fetch(progress=...)`` or, for code that fetches deep inside other calls,
``with report_downloads(callback): ...`` (the gallery drives its progress bar this way).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from . import settings
from .errors import ModelNotFoundError, OfflineError

log = logging.getLogger("stylekit.hub")
#: the progress callback of downloads started in this context (see :func:`report_downloads`)
_REPORT: contextvars.ContextVar = contextvars.ContextVar("stylekit_hub_report", default=None)
_TIMEOUT_SET: dict = {}  # "value" -> the download timeout this module last gave huggingface_hub


@dataclass(frozen=True)
class HubFile:
    """A file in a Hub model repository."""

    repo_id: str
    filename: str
    revision: str = "main"

    @property
    def url(self) -> str:
        return f"https://huggingface.co/{self.repo_id}/blob/{self.revision}/{self.filename}"


def parse_hf_uri(uri: str) -> HubFile:
    """``hf://owner/repo/path/to/file[@revision]`` -> :class:`HubFile` (stylekit's one Hub address scheme)."""
    if not uri.startswith("hf://"):
        raise ModelNotFoundError(f"{uri!r} is not an hf:// address (expected hf://owner/repo/path/to/file).")
    rest = uri[len("hf://"):]
    revision = "main"
    if "@" in rest:
        rest, revision = rest.rsplit("@", 1)
    parts = [p for p in rest.split("/") if p]
    if len(parts) < 3:
        raise ModelNotFoundError(
            f"{uri!r} needs an owner, a repository and a file: hf://owner/repo/path/to/file[@revision].")
    return HubFile(repo_id="/".join(parts[:2]), filename="/".join(parts[2:]), revision=revision or "main")


def _mirror_path(hub_file: HubFile) -> Path | None:
    mirror = settings.hub_mirror()
    if mirror is None:
        return None
    candidate = mirror / hub_file.repo_id / hub_file.filename
    return candidate if candidate.is_file() else None


def how_to_supply(hub_file: HubFile) -> str:
    return (f"On a connected machine run `hf download {hub_file.repo_id} {hub_file.filename} --revision "
            f"{hub_file.revision}` (or download {hub_file.url}) and then either copy the Hub cache here, put the "
            f"file at $STYLEKIT_HUB_MIRROR/{hub_file.repo_id}/{hub_file.filename}, or pass the file's path instead "
            "of the model name.")


@contextlib.contextmanager
def report_downloads(callback):
    """Within the ``with`` block (this thread / context only), downloads made by :func:`fetch` report to
    ``callback(done_bytes, total_bytes, message)`` (a :class:`stylekit.progress.ProgressCallback`; it may
    raise ``Cancelled`` to stop the download). ``callback=None`` reports nothing."""
    token = _REPORT.set(callback)
    try:
        yield
    finally:
        _REPORT.reset(token)


def _megabytes(size: int | None) -> str:
    return "size unknown" if not size else f"{size / 1e6:.1f} MB"


def _progress_class(label: str, total: int | None, callback):
    """A huggingface_hub progress bar class that also calls ``callback(done, total, message)``."""
    from huggingface_hub.utils import tqdm as hf_tqdm

    class Reporting(hf_tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.stylekit_done = int(kwargs.get("initial") or 0)
            self.stylekit_total = int(kwargs.get("total") or total or 0)

        def update(self, n=1):
            shown = super().update(n)  # a disabled bar counts nothing, so count here
            self.stylekit_done += int(n or 0)
            callback(self.stylekit_done, max(self.stylekit_total, self.stylekit_done), f"downloading {label}")
            return shown

    return Reporting


def _apply_timeout(seconds: float) -> None:
    """huggingface_hub reads its download (socket read) timeout from a module constant at call time; set it
    to ours unless someone else (``HF_HUB_DOWNLOAD_TIMEOUT``) already changed it from the default."""
    from huggingface_hub import constants

    current = constants.HF_HUB_DOWNLOAD_TIMEOUT
    if current in (constants.DEFAULT_DOWNLOAD_TIMEOUT, _TIMEOUT_SET.get("value")):
        constants.HF_HUB_DOWNLOAD_TIMEOUT = seconds
        _TIMEOUT_SET["value"] = seconds


def _remote_size(hub_file: HubFile, timeout: float) -> int | None:
    """One metadata request (no retry) for a file about to be downloaded; its size in bytes, or None.
    Raises huggingface_hub's errors, or a network error, when the Hub does not answer as it should."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    url = hf_hub_url(hub_file.repo_id, hub_file.filename, revision=hub_file.revision)
    return get_hf_file_metadata(url, timeout=timeout).size


def fetch(hub_file: HubFile, *, cache_dir: str | os.PathLike | None = None,
          local_files_only: bool | None = None, progress=None) -> Path:
    """Return a local path for ``hub_file``: mirror, then Hub cache, then download (unless offline).

    ``progress``: a callback ``(done_bytes, total_bytes, message)`` for a download (default: the one
    set by :func:`report_downloads`, if any). A download is also logged on ``stylekit.hub``.

    Raises :class:`OfflineError` when the file is needed but neither cached nor reachable (the Hub did
    not answer within ``STYLEKIT_HUB_TIMEOUT`` seconds, or offline mode is on), and
    :class:`ModelNotFoundError` when the Hub says the repository, revision or file does not exist.
    Both messages name the file and how to supply it.
    """
    mirrored = _mirror_path(hub_file)
    if mirrored is not None:
        return mirrored

    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub import errors as hf_errors

    if local_files_only is None:
        local_files_only = settings.offline()
    timeout = settings.hub_timeout()
    label = f"{hub_file.repo_id}/{hub_file.filename}"
    callback = progress if progress is not None else _REPORT.get()
    cache = None if cache_dir is None else str(cache_dir)
    try:
        tqdm_class, started = None, None
        cached = try_to_load_from_cache(hub_file.repo_id, hub_file.filename, cache_dir=cache,
                                        revision=hub_file.revision)
        if not local_files_only and not isinstance(cached, str):
            try:
                size = _remote_size(hub_file, timeout)
            except (hf_errors.HfHubHTTPError, hf_errors.EntryNotFoundError):  # the Hub answered: handled below
                raise
            except Exception as exc:  # noqa: BLE001 - httpx / socket errors: the Hub did not answer
                raise OfflineError(
                    f"{label} (revision {hub_file.revision}) is not in the local Hugging Face cache and the Hub "
                    f"did not answer within {timeout:g} s ({type(exc).__name__}: {exc}). Try again later "
                    "(STYLEKIT_HUB_TIMEOUT sets the wait), or: " + how_to_supply(hub_file)) from exc
            log.info("downloading %s (%s) from the Hugging Face Hub", label, _megabytes(size))
            started = time.perf_counter()
            if callback is not None:
                callback(0, size or 0, f"downloading {label}")
                tqdm_class = _progress_class(label, size, callback)
        _apply_timeout(timeout)
        path = hf_hub_download(repo_id=hub_file.repo_id, filename=hub_file.filename, revision=hub_file.revision,
                               cache_dir=cache, local_files_only=local_files_only, etag_timeout=timeout,
                               tqdm_class=tqdm_class)
        if started is not None:
            log.info("downloaded %s in %.1f s", label, time.perf_counter() - started)
        return Path(path)
    except (hf_errors.LocalEntryNotFoundError, hf_errors.OfflineModeIsEnabled) as exc:
        raise OfflineError(
            f"{hub_file.repo_id}/{hub_file.filename} (revision {hub_file.revision}) is not in the local Hugging Face "
            f"cache and cannot be downloaded now{' (offline mode is on)' if local_files_only else ''}. "
            + how_to_supply(hub_file)) from exc
    except (hf_errors.RepositoryNotFoundError, hf_errors.RevisionNotFoundError, hf_errors.EntryNotFoundError) as exc:
        raise ModelNotFoundError(
            f"The Hugging Face Hub has no {hub_file.filename} at revision {hub_file.revision} in {hub_file.repo_id} "
            f"({type(exc).__name__}). Check the name, or pass a local file path.") from exc
    except (OSError, hf_errors.HfHubHTTPError) as exc:
        raise OfflineError(
            f"Could not download {hub_file.repo_id}/{hub_file.filename}: {exc}. " + how_to_supply(hub_file)) from exc
