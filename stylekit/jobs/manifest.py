"""The record of a batch job in its output folder: per-rank parts, the merged manifest and the report.

Each rank appends one JSON line per finished item to ``OUT/manifest.rank<k>.jsonl`` (flushed and
synced, so a crash loses at most the item in progress; a torn last line is ignored when read), one
line per item it could not use (``"kind": "failed"`` with the reason), and one ``"kind": "run"``
line when it ends (items processed, skipped and failed, wall seconds). :func:`merge` reads every
part and writes, atomically:

- ``OUT/manifest.json``: the job's settings, every finished item (sorted by name), ``count``,
  ``missing`` (items no rank has finished yet), ``complete``, the latest launch's ``runs`` (one record
  per rank) and ``seconds`` (the slowest rank's wall time in that launch) with ``processed`` (items
  computed, not skipped, in that launch);
- ``OUT/report.json``: the items that were skipped and why (unreadable, not an image, too large,
  no face found), and the missing ones.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

__all__ = ["PartWriter", "part_path", "read_parts", "merge", "write_json", "MANIFEST", "REPORT"]

MANIFEST = "manifest.json"
REPORT = "report.json"


def part_path(out, rank: int) -> Path:
    return Path(out) / f"manifest.rank{int(rank)}.jsonl"


def write_json(path, obj) -> Path:
    """Write ``obj`` as indented JSON atomically (a ``.tmp`` beside it, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
    return path


class PartWriter:
    """Appends this rank's records to ``OUT/manifest.rank<k>.jsonl``; counts what it wrote."""

    def __init__(self, out, rank: int, world_size: int):
        self.path = part_path(out, rank)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rank, self.world_size = int(rank), int(world_size)
        self.started = time.time()
        self.t0 = time.perf_counter()
        self.counts = {"processed": 0, "skipped": 0, "failed": 0}

    def _append(self, record: dict) -> None:
        line = json.dumps(record, sort_keys=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def item(self, record: dict, *, recovered: bool = False) -> None:
        """One finished item (``recovered``: its outputs were already on disk, the line was lost)."""
        self._append({"kind": "item", **record})
        if not recovered:
            self.counts["processed"] += 1

    def skipped(self) -> None:
        self.counts["skipped"] += 1

    def failed(self, name: str, source: str, reason: str) -> None:
        self._append({"kind": "failed", "name": name, "source": source, "reason": reason, "rank": self.rank})
        self.counts["failed"] += 1

    def finish(self, **extra) -> dict:
        """Append and return this run's ``"run"`` record (counts, wall seconds since the writer was made)."""
        record = {"kind": "run", "rank": self.rank, "world_size": self.world_size, **self.counts,
                  "seconds": time.perf_counter() - self.t0, "started": self.started, "finished": time.time(), **extra}
        self._append(record)
        return record


def read_parts(out) -> tuple[dict[str, dict], dict[str, dict], dict[int, dict]]:
    """``(items, failures, runs)`` from every ``manifest.rank*.jsonl`` in ``out``.

    ``items`` and ``failures`` map an item's name to its latest record (an item finished after a failure
    is no longer a failure); ``runs`` maps each rank to its latest run record. Unreadable lines (a line
    torn by a crash) are skipped.
    """
    items: dict[str, dict] = {}
    failures: dict[str, dict] = {}
    runs: dict[int, dict] = {}
    for path in sorted(Path(out).glob("manifest.rank*.jsonl")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(rec, dict):
                continue
            kind = rec.get("kind")
            if kind == "item" and "name" in rec:
                items[rec["name"]] = rec
                failures.pop(rec["name"], None)
            elif kind == "failed" and "name" in rec:
                failures[rec["name"]] = rec
                items.pop(rec["name"], None)
            elif kind == "run" and "rank" in rec:
                runs[int(rec["rank"])] = rec
    return items, failures, runs


def merge(out, expected: list[str], job: dict) -> dict:
    """Write ``OUT/manifest.json`` and ``OUT/report.json`` from the parts on disk; returns the manifest.

    ``expected``: every item's name in the job (what is neither finished nor failed is ``missing``).
    """
    items, failures, runs = read_parts(out)
    wanted = set(expected)
    done = [items[n] for n in sorted(items) if n in wanted]
    failed = [failures[n] for n in sorted(failures) if n in wanted]
    missing = sorted(wanted - set(items) - set(failures))
    latest = [runs[r] for r in sorted(runs)]
    if latest:  # the last launch's ranks (an earlier launch with more processes may have left other ranks' runs)
        world = max(latest, key=lambda r: r.get("finished", 0)).get("world_size", 1)
        latest = [r for r in latest if r.get("world_size", 1) == world]
    manifest = {"job": job, "count": len(done), "failed": len(failed), "missing": len(missing),
                "complete": not missing, "seconds": max((r["seconds"] for r in latest), default=0.0),
                "processed": sum(r.get("processed", 0) for r in latest), "runs": latest, "items": done}
    report = {"failed": [{k: r[k] for k in ("name", "source", "reason")} for r in failed], "missing": missing}
    write_json(Path(out) / MANIFEST, manifest)
    write_json(Path(out) / REPORT, report)
    return manifest
