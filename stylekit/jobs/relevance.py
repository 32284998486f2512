"""A global-directions relevance table with its images split over ranks, from resumable partial sums.

::

    python -m stylekit relevance --model toyfaces --n-images 100
    torchrun --nproc_per_node 4 -m stylekit relevance --model toyfaces --n-images 100 --out table.safetensors

The table is a normalised mean over ``n_images`` random codes of per-image relevance vectors
(:mod:`stylekit.text.relevance`), so it splits by image: the images are cut into chunks of
``chunk_images``; chunk ``c`` belongs to rank ``c % world_size``, which writes its sums to
``OUT.parts/images_<start>-<stop>.safetensors`` atomically (:func:`stylekit.text.relevance.relevance_part`).
A rerun skips the chunks on disk. When every chunk is there, rank 0 (or any rank without a process
group) adds them up into the table (:func:`stylekit.text.relevance.relevance_from_parts`) and writes
``OUT``; ``OUT.parts/manifest.json`` records each rank's run (:mod:`.manifest`). The table equals
the one-process :func:`~stylekit.text.compute_relevance` up to float summation order, whatever the
number of ranks.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from ..errors import InvalidArgumentError, StylekitError
from .manifest import PartWriter, merge, read_parts
from .progress_bar import progress_bar
from .shard import Shard, barrier, current_shard

__all__ = ["relevance_sharded"]

PART_FORMAT = "stylekit-relevance-part"


def _part_path(parts: Path, start: int, stop: int) -> Path:
    return parts / f"images_{start:06d}-{stop:06d}.safetensors"


def _read_part(path: Path, job: dict):
    """The stored :class:`RelevancePart` (without stats), None when missing or torn; an error for another job's."""
    from ..checkpoints.tagged import read_tagged
    from ..text.relevance import RelevancePart

    if not path.is_file():
        return None
    try:
        meta, tensors = read_tagged(path, fmt=PART_FORMAT, kind="relevance part")
    except StylekitError:
        return None
    if json.loads(meta.get("job", "{}")) != job:
        raise InvalidArgumentError(f"{path} holds sums of another relevance job; delete {path.parent} or write the "
                                   "table to another file.")
    captured = meta.get("captured_sum", "")
    return RelevancePart(tensors["sums"], json.loads(meta["image_ids"]), float(captured) if captured else None,
                         json.loads(meta.get("extra", "{}")), float(meta.get("seconds", 0.0)))


def relevance_sharded(model, clip="toyfaces", out=None, *, pretrained=None, method="lowrank", n_images: int = 100,
                      seed: int = 0, psi: float = 1.0, batch_size: int = 16, chunk_images: int | None = None,
                      device="cpu", shard: Shard | None = None, show_progress: bool = True) -> dict:
    """Compute this rank's share of a relevance table and, when all shares are on disk, the table.

    Args:
        model: a generator or a name / file for :func:`load_generator`.
        clip, pretrained: a loaded CLIP or a name (and open_clip tag) for :func:`stylekit.clip_backend.load_clip`.
        out: the table file (default: the cache that :func:`stylekit.text.relevance_for` reads).
        method, n_images, seed, psi, batch_size: as :func:`stylekit.text.compute_relevance`.
        chunk_images: images per partial file (default ``batch_size``).

    Returns: this run's summary (``rank``, ``world_size``, ``processed`` / ``skipped`` chunks, ``seconds``,
    ``manifest``, ``table``: the path written, or None while other ranks' chunks are missing).
    """
    from ..checkpoints.load import load_generator
    from ..checkpoints.tagged import write_tagged
    from ..clip_backend import load_clip
    from ..text import cache_path, save_relevance
    from ..text.relevance import method_options, relevance_from_parts, relevance_part

    opts = method_options(method)
    shard = shard or current_shard()
    device = shard.device(device)
    G = load_generator(model, device=device) if isinstance(model, (str, Path)) else model
    clip_model = load_clip(clip, pretrained, device=device) if isinstance(clip, str) else clip
    out = Path(out) if out is not None else cache_path(G, clip_model)
    chunk = chunk_images or batch_size
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1 or not isinstance(n_images, int) \
            or isinstance(n_images, bool) or n_images < 1:
        raise InvalidArgumentError(f"n_images and chunk_images must be positive integers, got {n_images!r} and "
                                   f"{chunk!r}.")
    parts_dir = out.with_name(out.name + ".parts")
    from ..text.keys import clip_key, generator_fingerprint

    job = {"generator": generator_fingerprint(G), "clip": clip_key(clip_model), "method": opts.name, **asdict(opts),
           "n_images": n_images, "seed": seed, "psi": psi, "chunk_images": chunk}
    chunks = [(a, min(n_images, a + chunk)) for a in range(0, n_images, chunk)]
    names = [_part_path(parts_dir, a, b).stem for a, b in chunks]
    writer = PartWriter(parts_dir, shard.rank, shard.world_size)
    known, _, _ = read_parts(parts_dir)
    mine = shard.take(chunks)
    bar = progress_bar(sum(b - a for a, b in mine), "relevance", enabled=show_progress and shard.is_main)
    stats = None
    for a, b in mine:
        path = _part_path(parts_dir, a, b)
        record = {"name": path.stem, "start": a, "stop": b, "rank": shard.rank}
        if _read_part(path, job) is not None:
            if path.stem not in known:
                writer.item(record, recovered=True)
            writer.skipped()
        else:
            part = relevance_part(G, clip_model, range(a, b), method=opts, n_images=n_images, seed=seed, psi=psi,
                                  stats=stats, batch_size=batch_size)
            stats = part.stats
            meta = {"format": PART_FORMAT, "job": json.dumps(job), "image_ids": json.dumps(part.image_ids),
                    "extra": json.dumps(part.extra), "seconds": str(part.seconds),
                    "captured_sum": "" if part.captured_sum is None else repr(part.captured_sum)}
            write_tagged(path, {"sums": part.sums.float().contiguous()}, meta)
            writer.item({**record, "seconds": part.seconds})
        bar.update(b - a)
    bar.close()
    run = writer.finish(images=sum(b - a for a, b in mine))
    waited = barrier()
    summary = {k: run[k] for k in ("rank", "world_size", "processed", "skipped", "seconds")}
    summary.update(manifest=None, table=None, parts=str(parts_dir))
    if shard.is_main or not waited:
        summary["manifest"] = merge(parts_dir, names, {"command": "relevance", **job})
        if summary["manifest"]["complete"]:
            parts = [_read_part(_part_path(parts_dir, a, b), job) for a, b in chunks]
            if any(p is None for p in parts):
                raise InvalidArgumentError(f"a part in {parts_dir} vanished while merging; run the command again.")
            table = relevance_from_parts(G, clip_model, parts, method=opts, n_images=n_images, seed=seed, psi=psi,
                                         stats=stats)
            summary["table"] = str(save_relevance(table, out))
            summary["seconds_total"] = table.meta["seconds"]
            summary["meta"] = table.meta
    return summary

