"""Fetching weights from the Hugging Face Hub (the only code in stylekit that touches the network).

Everything goes through ``huggingface_hub.hf_hub_download`` and its cache, so a file downloaded
once is reused offline. Two ways to work with no network at all:

- a filled Hub cache (``HF_HOME`` / ``HF_HUB_CACHE``, or ``cache_dir=``), e.g. copied from a
  connected machine after ``hf download REPO FILE``;
- a local mirror folder laid out as ``<mirror>/<owner>/<repo>/<filename>``, named by the
  environment variable ``STYLEKIT_HUB_MIRROR`` (useful in classrooms: one USB stick).

Set ``STYLEKIT_OFFLINE=1`` (or ``HF_HUB_OFFLINE=1``) to never attempt a download.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import settings
from .errors import ModelNotFoundError, OfflineError


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


def fetch(hub_file: HubFile, *, cache_dir: str | os.PathLike | None = None,
          local_files_only: bool | None = None) -> Path:
    """Return a local path for ``hub_file``: mirror, then Hub cache, then download (unless offline).

    Raises :class:`OfflineError` when the file is needed but neither cached nor reachable, and
    :class:`ModelNotFoundError` when the Hub says the repository, revision or file does not exist.
    """
    mirrored = _mirror_path(hub_file)
    if mirrored is not None:
        return mirrored

    from huggingface_hub import hf_hub_download
    from huggingface_hub import errors as hf_errors

    if local_files_only is None:
        local_files_only = settings.offline()
    try:
        path = hf_hub_download(repo_id=hub_file.repo_id, filename=hub_file.filename, revision=hub_file.revision,
                               cache_dir=None if cache_dir is None else str(cache_dir),
                               local_files_only=local_files_only)
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
