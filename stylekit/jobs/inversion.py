"""Invert every image of a folder, sharded over ranks and resumable.

::

    invert_folder("toyfaces", "photos/", "out/", method="encoder")
    torchrun --nproc_per_node 4 -m stylekit invert photos/ out/ --model toyfaces --method encoder

Items are the folder's files in sorted order (hidden files excluded); file ``i`` belongs to rank
``i % world_size`` (:mod:`.shard`). For each image the rank writes ``OUT/latents/<name>.safetensors``
(the inverted code, a :class:`~stylekit.latent.Latent`, see :mod:`.files`), ``OUT/images/<name>.png``
(the reconstruction) and, for PTI, ``OUT/deltas/<name>.safetensors`` (the tuned generator as a
weight delta), then a line in its manifest part (:mod:`.manifest`). ``<name>`` is the file's stem
(``stem_ext`` when two files share a stem). A rerun skips items whose outputs are on disk and
readable. Files that cannot be used (unreadable, not an image, too large, no face found with
``align=True``) are listed in ``OUT/report.json`` with the reason; nothing else is lost. Images are
inverted ``batch_size`` at a time through :func:`stylekit.invert.invert`'s batch form.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ImageInputError, InvalidArgumentError
from .files import delta_readable, latent_readable, png_readable, save_delta_file, save_latent_file, save_png
from .manifest import PartWriter, merge, read_parts
from .progress_bar import progress_bar
from .shard import Shard, barrier, current_shard

__all__ = ["invert_folder", "list_items"]


def list_items(in_dir) -> list[tuple[str, Path]]:
    """``[(name, path)]`` for every regular, non-hidden file of ``in_dir``, sorted by file name."""
    folder = Path(in_dir)
    if not folder.is_dir():
        raise InvalidArgumentError(f"{folder}: no such folder; pass the folder that holds the images.")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    stems: dict[str, int] = {}
    for p in files:
        stems[p.stem] = stems.get(p.stem, 0) + 1
    return [(p.stem if stems[p.stem] == 1 else f"{p.stem}_{p.suffix.lstrip('.')}", p) for p in files]


def _outputs(out: Path, name: str, method: str) -> dict[str, Path]:
    paths = {"latent": out / "latents" / f"{name}.safetensors", "image": out / "images" / f"{name}.png"}
    if method == "pti":
        paths["delta"] = out / "deltas" / f"{name}.safetensors"
    return paths


def _done(paths: dict[str, Path]) -> dict | None:
    """The stored record when every output of an item is readable, else None."""
    meta = latent_readable(paths["latent"])
    if meta is None or not png_readable(paths["image"]):
        return None
    if "delta" in paths and not delta_readable(paths["delta"]):
        return None
    return meta.get("record") or {}


def _load(G, path: Path, align: bool):
    """The image as ``[1, 3, R, R]`` in ``[-1, 1]`` (FFHQ-aligned first when ``align``); ImageInputError if unusable."""
    from ..images import image_to_tensor, open_image

    img = open_image(path)
    if align:
        from ..invert.align import align_face

        img = align_face(img, size=G.img_resolution)
    return image_to_tensor(img, size=G.img_resolution, device=G.w_avg.device)


def invert_folder(model, in_dir, out_dir, *, method: str = "encoder", space: str = "w+", batch_size: int = 8,
                  align: bool = False, device="cpu", shard: Shard | None = None, show_progress: bool = True,
                  **options) -> dict:
    """Invert every image of ``in_dir`` into ``out_dir`` (see the module docstring); returns this run's summary.

    Args:
        model: a generator, or a registered name / file / hf:// address for :func:`load_generator`.
        method, space, options: as :func:`stylekit.invert.invert` (e.g. ``steps=``, ``encoder=``).
        batch_size: images inverted together (the encoders and optimisation take a batch).
        align: FFHQ-align each image first (needs dlib, see :func:`stylekit.invert.align_face`); an
            image where no face is found goes to the report.
        shard: this process's share (default: the launcher's ``RANK`` / ``WORLD_SIZE``).
        show_progress: a tqdm bar on rank 0.

    Returns: ``{"rank", "world_size", "processed", "skipped", "failed", "seconds", "manifest"}`` where
    ``manifest`` is the merged manifest when this process merged (rank 0 of a process group, or any
    rank without one), else None.
    """
    from ..checkpoints.load import load_generator
    from ..invert import METHODS, invert

    if method not in METHODS:
        raise InvalidArgumentError(f"method must be one of {METHODS}, not {method!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be a positive integer, got {batch_size!r}.")
    shard = shard or current_shard()
    device = shard.device(device)
    items = list_items(in_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    G = load_generator(model, device=device) if isinstance(model, (str, Path)) else model
    job = {"command": "invert", "input": str(Path(in_dir).resolve()), "model": str(model) if isinstance(model, (str, Path))
           else getattr(G, "arch", "generator"), "method": method, "space": space, "align": bool(align),
           "batch_size": batch_size, "options": {k: v for k, v in options.items() if isinstance(v, (int, float, str))}}
    writer = PartWriter(out, shard.rank, shard.world_size)
    known, _, _ = read_parts(out)
    mine = shard.take(items)
    pending: list[tuple[str, Path, object]] = []
    bar = progress_bar(len(mine), "invert", enabled=show_progress and shard.is_main)

    def flush():
        if not pending:
            return
        images = [x for _, _, x in pending]
        results = invert(G, images, method=method, space=space, **options)
        for (name, path, _), res in zip(pending, results):
            _write(out, name, path, res, method, writer, shard)
        bar.update(len(pending))
        pending.clear()

    for name, path in mine:
        paths = _outputs(out, name, method)
        record = _done(paths)
        if record is not None:
            if name not in known:
                writer.item(record or {"name": name, "source": path.name}, recovered=True)
            writer.skipped()
            bar.update(1)
            continue
        try:
            pending.append((name, path, _load(G, path, align)))
        except ImageInputError as exc:
            writer.failed(name, path.name, str(exc))
            bar.update(1)
            continue
        if len(pending) >= batch_size:
            flush()
    flush()
    bar.close()
    run = writer.finish(items=len(mine))
    return _finish(out, [n for n, _ in items], job, shard, run)


def _write(out: Path, name: str, path: Path, res, method: str, writer: PartWriter, shard: Shard) -> None:
    paths = _outputs(out, name, method)
    record = {"name": name, "source": path.name, "latent": f"latents/{name}.safetensors",
              "image": f"images/{name}.png", "method": method, "space": res.space, "psnr": res.psnr(),
              "mse": res.mse(), "seconds": res.seconds, "perceptual": res.perceptual, "rank": shard.rank}
    if method == "pti":
        record["delta"] = f"deltas/{name}.safetensors"
        save_delta_file(paths["delta"], res.generator_delta or {})
    save_png(paths["image"], res.image)
    save_latent_file(paths["latent"], res.latent.replace(generator=None), record=record)
    writer.item(record)


def _finish(out: Path, names: list[str], job: dict, shard: Shard, run: dict) -> dict:
    """Wait for the other ranks when a group exists, then merge on rank 0 (any rank without a group)."""
    waited = barrier()
    manifest = merge(out, names, job) if (shard.is_main or not waited) else None
    summary = {k: run[k] for k in ("rank", "world_size", "processed", "skipped", "failed", "seconds")}
    summary["manifest"] = manifest
    return summary
