"""Apply one direction at one or several strengths to saved latents, sharded over ranks and resumable.

::

    edit_latents("toyfaces", "out/", "edited/", direction="smile.safetensors", strengths=[-2, 2])
    python -m stylekit edit out/ edited/ --model toyfaces --direction smile.safetensors --strength -2,2

The source is a folder that :func:`~stylekit.jobs.inversion.invert_folder` wrote (its ``latents/``),
a folder of latent files, or one latent file (:mod:`.files`); items are its files in sorted order, or
the rows of a single file holding several codes (``<stem>_00000``, ...). Item ``i`` belongs to rank
``i % world_size``. The direction is a direction file (``.npy`` / ``.pt`` / ``.safetensors``, e.g. a
boundary from ``python -m stylekit fit-boundary``) or a registered ``directions`` artifact, applied with
:func:`stylekit.edit.edit` (``w + strength * direction``, on ``layers`` when given). For each
strength ``s`` the rank writes ``OUT/latents/<name>_s<s>.safetensors`` and ``OUT/images/<name>_s<s>.png``
(rendered with the PTI-tuned generator when the source folder has ``deltas/<name>.safetensors``), and
a manifest line per item (:mod:`.manifest`); a rerun skips items whose outputs are all readable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from ..errors import InvalidArgumentError, StylekitError
from .files import latent_readable, load_delta_file, load_latent_file, png_readable, save_latent_file, save_png
from .manifest import PartWriter, merge, read_parts
from .progress_bar import progress_bar
from .shard import Shard, barrier, current_shard

__all__ = ["edit_latents", "resolve_direction", "latent_items", "strength_tag"]


def strength_tag(strength: float) -> str:
    """``2.0 -> '+2'``, ``-1.5 -> '-1.5'``: the strength as it appears in file names."""
    return f"{float(strength):+g}"


def resolve_direction(spec, G=None):
    """A :class:`~stylekit.edit.direction.Direction`: a Direction, a direction file, or a registered
    ``directions`` artifact's name."""
    from ..edit.direction import Direction, load_direction

    if isinstance(spec, Direction):
        return spec
    path = Path(str(spec)).expanduser()
    if path.is_file():
        return load_direction(path, G=G)
    from .. import registry

    try:
        artifact = registry.resolve(str(spec), "directions")
    except StylekitError as exc:
        raise InvalidArgumentError(f"{spec}: neither a direction file (.npy, .pt, .safetensors) nor a registered "
                                   f"direction ({exc}).") from None
    return load_direction(registry.artifact_path(artifact), G=G, name=artifact.name)


def latent_items(source) -> list[tuple[str, Path, int | None]]:
    """``[(name, file, row)]``: a folder's latent files (``row`` None: the whole file) or one file's rows."""
    src = Path(source)
    if src.is_dir():
        folder = src / "latents" if (src / "latents").is_dir() else src
        files = sorted(p for p in folder.glob("*.safetensors") if not p.name.startswith("."))
        if not files:
            raise InvalidArgumentError(f"{src}: no latent files (*.safetensors) in it; pass the output folder of "
                                       "python -m stylekit invert or a latent file.")
        return [(p.stem, p, None) for p in files]
    if src.is_file():
        latent, _ = load_latent_file(src)
        if latent.batch_size == 1:
            return [(src.stem, src, None)]
        return [(f"{src.stem}_{i:05d}", src, i) for i in range(latent.batch_size)]
    raise InvalidArgumentError(f"{src}: no such folder or latent file.")


def _outputs(out: Path, name: str, strengths: Sequence[float]) -> list[tuple[float, Path, Path]]:
    return [(s, out / "latents" / f"{name}_s{strength_tag(s)}.safetensors",
             out / "images" / f"{name}_s{strength_tag(s)}.png") for s in strengths]


def _renderer(G, file: Path, name: str):
    """The PTI-tuned generator when the source folder holds this item's weight delta, else ``G``."""
    delta = file.parent.parent / "deltas" / f"{name}.safetensors"
    if file.parent.name == "latents" and delta.is_file():
        from ..invert.pti import apply_delta

        return apply_delta(G, load_delta_file(delta))
    return G


def edit_latents(model, source, out_dir, *, direction, strengths: Sequence[float] = (1.0,), layers=None,
                 device="cpu", shard: Shard | None = None, show_progress: bool = True) -> dict:
    """Edit every latent of ``source`` into ``out_dir`` (see the module docstring); returns this run's summary
    (``rank``, ``world_size``, ``processed``, ``skipped``, ``failed``, ``seconds``, ``manifest``)."""
    from ..checkpoints.load import load_generator
    from ..edit.direction import edit
    from ..edit.layers import check_strength

    strengths = [check_strength(s, name="strength") for s in (strengths if isinstance(strengths, (list, tuple))
                                                                else [strengths])]
    if not strengths:
        raise InvalidArgumentError("give at least one strength, e.g. --strength 2 or --strength -2,2.")
    shard = shard or current_shard()
    device = shard.device(device)
    G = load_generator(model, device=device) if isinstance(model, (str, Path)) else model
    dire = resolve_direction(direction, G)
    items = latent_items(source)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    job = {"command": "edit", "source": str(Path(source).resolve()), "direction": str(direction) if not hasattr(
        direction, "vector") else dire.name, "strengths": strengths, "layers": layers}
    writer = PartWriter(out, shard.rank, shard.world_size)
    known, _, _ = read_parts(out)
    mine = shard.take(items)
    bar = progress_bar(len(mine), "edit", enabled=show_progress and shard.is_main)
    for name, file, row in mine:
        outputs = _outputs(out, name, strengths)
        metas = [latent_readable(lp) for _, lp, _ in outputs]
        if all(m is not None for m in metas) and all(png_readable(ip) for _, _, ip in outputs):
            if name not in known:
                writer.item(metas[0].get("record") or {"name": name}, recovered=True)
            writer.skipped()
            bar.update(1)
            continue
        try:
            latent, _ = load_latent_file(file)
        except StylekitError as exc:
            writer.failed(name, file.name, str(exc))
            bar.update(1)
            continue
        if row is not None:
            latent = latent.select([row])
        net = _renderer(G, file, name)
        record = {"name": name, "source": file.name, "row": row, "direction": dire.name, "rank": shard.rank,
                  "outputs": [{"strength": s, "latent": f"latents/{lp.name}", "image": f"images/{ip.name}"}
                              for s, lp, ip in outputs]}
        for s, lp, ip in outputs:
            edited = edit(latent.to(G.w_avg.device), dire, s, layers=layers, G=G)
            with torch.no_grad():
                image = edited.replace(generator=None).render(net)
            save_png(ip, image)
            save_latent_file(lp, edited.replace(generator=None), record=record)
        writer.item(record)
        bar.update(1)
    bar.close()
    run = writer.finish(items=len(mine))
    waited = barrier()
    summary = {k: run[k] for k in ("rank", "world_size", "processed", "skipped", "failed", "seconds")}
    summary["manifest"] = merge(out, [n for n, _, _ in items], job) if (shard.is_main or not waited) else None
    return summary
