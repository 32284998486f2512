"""Writing files into a Hugging Face Hub cache folder, laid out exactly as ``huggingface_hub`` lays it out.

``hf_hub_download`` keeps a repository ``owner/name`` of type model under
``<cache>/models--owner--name/``::

    blobs/<sha256 of the content>                 the bytes (LFS files are named by their sha256)
    snapshots/<commit>/<path in the repo>         a relative symlink to ../../blobs/<sha256>
    refs/main                                     the commit hash that ``main`` points to

With ``HF_HUB_CACHE=<cache>`` and ``local_files_only=True`` (or ``HF_HUB_OFFLINE=1``), the download
resolves ``refs/main`` to the commit and returns ``snapshots/<commit>/<path>``. A rehearsal repository's
commit is a fixed, made-up hash (:func:`rehearsal_commit`), so rebuilding gives the same paths.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import BinaryIO, Callable


def repo_folder(cache: Path, repo_id: str, repo_type: str = "model") -> Path:
    """``<cache>/models--owner--name`` (huggingface_hub's folder name for a repository)."""
    return Path(cache) / f"{repo_type}s--{repo_id.replace('/', '--')}"


def rehearsal_commit(repo_id: str) -> str:
    """A fixed 40-hex commit hash for a rehearsal repository (never a real Hub commit)."""
    return hashlib.sha1(f"stylekit-rehearsal:{repo_id}".encode()).hexdigest()


class _HashingWriter:
    """A binary file that hashes (sha256) and counts what is written to it."""

    def __init__(self, fh: BinaryIO):
        self._fh = fh
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        self._fh.write(data)
        self.sha256.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self._fh.flush()


def snapshot_path(cache: Path, repo_id: str, filename: str) -> Path:
    """Where ``hf_hub_download`` returns ``filename`` of the rehearsal repository ``repo_id``."""
    return repo_folder(cache, repo_id) / "snapshots" / rehearsal_commit(repo_id) / filename


def write_hub_file(cache: Path, repo_id: str, filename: str, produce: Callable[[BinaryIO], None]) -> tuple[Path, int, str]:
    """Write one repository file: ``produce(fh)`` writes its bytes; returns ``(snapshot path, size, sha256)``.

    The bytes go to ``blobs/<sha256>`` (written to a temporary name first, then renamed), the snapshot
    entry is a relative symlink to the blob, and ``refs/main`` names the commit.
    """
    folder = repo_folder(cache, repo_id)
    blobs = folder / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    tmp = blobs / f".incomplete-{os.getpid()}-{abs(hash(filename))}"
    try:
        with open(tmp, "wb") as fh:
            writer = _HashingWriter(fh)
            produce(writer)
        digest = writer.sha256.hexdigest()
        blob = blobs / digest
        os.replace(tmp, blob)
    finally:
        if tmp.exists():
            tmp.unlink()
    commit = rehearsal_commit(repo_id)
    link = folder / "snapshots" / commit / filename
    link.parent.mkdir(parents=True, exist_ok=True)
    old_blob = Path(os.path.realpath(link)) if link.is_symlink() else None
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(os.path.relpath(blob, link.parent))
    if old_blob is not None and old_blob != blob and old_blob.parent == blobs and old_blob.exists():
        if not any(Path(os.path.realpath(p)) == old_blob for p in (folder / "snapshots").rglob("*") if p.is_symlink()):
            old_blob.unlink()  # a replaced file's blob that no snapshot uses any more
    (folder / "refs").mkdir(exist_ok=True)
    (folder / "refs" / "main").write_text(commit)
    return link, writer.size, digest
