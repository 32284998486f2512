"""InterFaceGAN's sample-and-label step over many codes, sharded and resumable, and fitting from its file.

::

    python -m stylekit label --model toyfaces --scorer predictor --n 500000 labels.safetensors
    python -m stylekit fit-boundary labels.safetensors --attribute smile smile.safetensors

Code ``j`` (``0 <= j < n``) is the W code of seed ``seed + j`` (drawn as NVIDIA's ``gen_images.py``
draws a seed, so ``python -m stylekit generate --seeds`` shows the same image), truncated by ``psi``.
The codes are cut into chunks of ``chunk_size``; chunk ``c`` belongs to rank ``c % world_size``,
which renders and scores it and writes ``OUT.parts/chunk_XXXXX.safetensors`` (``w [m, w_dim]``,
``scores [m, A]``, ``seeds [m]``) atomically. A rerun skips the chunks already on disk. When every
chunk is there, rank 0 (or any rank without a process group) writes ``OUT``: ``w [n, w_dim]``,
``scores [n, A]``, ``seeds [n]`` and in the metadata the score ``columns``, the scorer, the model,
``n`` and ``seconds``; ``OUT.parts/manifest.json`` records each rank's run (:mod:`.manifest`).

Scorers: ``'predictor'`` (every attribute of the attribute predictor ``predictor``; binary ones as
probabilities, continuous ones in attribute units), ``'predictor:smile,glasses'`` (those columns), or
``'clip:POSITIVE|NEUTRAL'`` (CLIP zero-shot: the probability that POSITIVE rather than NEUTRAL
describes the image; one column named POSITIVE).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import InvalidArgumentError, StylekitError
from .manifest import PartWriter, merge, read_parts
from .progress_bar import progress_bar
from .shard import Shard, barrier, current_shard

__all__ = ["label_samples", "load_labels", "fit_from_labels", "LabelFile", "parse_scorer", "FORMAT"]

FORMAT = "stylekit-labels"
CHUNK_FORMAT = "stylekit-label-chunk"


@dataclass
class LabelFile:
    """A labels file: ``w [n, w_dim]``, ``scores [n, A]`` (one column per name in ``columns``), ``seeds [n]``."""

    w: torch.Tensor
    scores: torch.Tensor
    seeds: torch.Tensor
    columns: list[str]
    meta: dict

    def column(self, name: str) -> torch.Tensor:
        """The scores ``[n]`` of one column."""
        if name not in self.columns:
            raise InvalidArgumentError(f"the labels file has no column {name!r}; it has: {', '.join(self.columns)}.")
        return self.scores[:, self.columns.index(name)]


def parse_scorer(spec: str, *, predictor="toyfaces", clip="toyfaces", device="cpu"):
    """``(score_fn, columns, description)``: ``score_fn(images [B, 3, R, R]) -> [B, len(columns)]``."""
    if not isinstance(spec, str) or not spec.strip():
        raise InvalidArgumentError("the scorer must be 'predictor', 'predictor:ATTR,ATTR' or 'clip:POSITIVE|NEUTRAL'.")
    kind, _, arg = spec.strip().partition(":")
    if kind == "predictor":
        from ..checkpoints.predictor import load_predictor

        net = predictor if isinstance(predictor, torch.nn.Module) else load_predictor(predictor, device=device)
        names = list(net.attribute_names)
        columns = [a.strip() for a in arg.split(",") if a.strip()] if arg else names
        unknown = [c for c in columns if c not in names]
        if unknown:
            raise InvalidArgumentError(f"unknown attribute {unknown[0]!r} for this predictor; valid names are: "
                                       f"{', '.join(names)}.")

        def score(images):
            out = net.predict(images)
            return torch.stack([out[c] for c in columns], dim=1)

        return score, columns, f"predictor:{','.join(columns)}" if arg else "predictor"
    if kind == "clip":
        from ..edit.interfacegan import clip_scorer

        positive, sep, neutral = arg.partition("|")
        if not sep or not positive.strip() or not neutral.strip():
            raise InvalidArgumentError(f"a CLIP scorer is 'clip:POSITIVE|NEUTRAL', e.g. 'clip:a smiling face|a face'; "
                                       f"got {spec!r}.")
        loaded = None if isinstance(clip, (str, Path)) else clip
        fn = clip_scorer(positive.strip(), neutral.strip(), clip=loaded, model=str(clip) if loaded is None else "",
                         device=device)
        return (lambda images: fn(images).unsqueeze(1)), [positive.strip()], f"clip:{positive.strip()}|{neutral.strip()}"
    raise InvalidArgumentError(f"unknown scorer {spec!r}; use 'predictor', 'predictor:ATTR,ATTR' or "
                               "'clip:POSITIVE|NEUTRAL'.")


def _name(thing) -> str:
    return str(thing) if isinstance(thing, (str, Path)) else type(thing).__name__


def _check_int(value, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidArgumentError(f"{name} must be an integer >= {low}, got {value!r}.")
    return value


def _chunk_path(parts: Path, c: int) -> Path:
    return parts / f"chunk_{c:05d}.safetensors"


def _read_chunk(path: Path, job: dict, start: int, stop: int):
    """The chunk's tensors when it is readable and belongs to this job, None when missing or torn;
    InvalidArgumentError when it belongs to another job."""
    from ..checkpoints.tagged import read_tagged

    if not path.is_file():
        return None
    try:
        meta, tensors = read_tagged(path, fmt=CHUNK_FORMAT, kind="label chunk")
    except StylekitError:
        return None
    if json.loads(meta.get("job", "{}")) != job:
        raise InvalidArgumentError(f"{path} holds codes of another labelling job ({meta.get('job')}); delete "
                                   f"{path.parent} or write to another output file.")
    if (int(meta.get("start", -1)), int(meta.get("stop", -1))) != (start, stop):
        return None
    return tensors


@torch.no_grad()
def _label_chunk(G, score, seeds: list[int], psi: float, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(w [m, w_dim], scores [m, A])`` for the codes of ``seeds``."""
    from ..latent import Latent

    ws, scores = [], []
    for i in range(0, len(seeds), batch_size):
        lat = Latent.from_seed(G, seeds[i:i + batch_size], psi=psi)
        images = lat.render(G, noise_mode="const")
        s = score(images).detach().float().cpu()
        if not torch.isfinite(s).all():
            raise InvalidArgumentError("the scorer returned NaN or infinite scores; check it on a few images.")
        ws.append(lat.tensor[:, 0].detach().float().cpu())
        scores.append(s)
    return torch.cat(ws), torch.cat(scores)


def label_samples(model, out, *, scorer: str = "predictor", n: int = 4000, seed: int = 0, psi: float = 1.0,
                  chunk_size: int = 1000, batch_size: int = 64, predictor="toyfaces", clip="toyfaces", device="cpu",
                  shard: Shard | None = None, show_progress: bool = True) -> dict:
    """Sample ``n`` codes, score their images, write the labels file ``out`` (see the module docstring).

    Returns this run's summary: ``rank``, ``world_size``, ``processed`` / ``skipped`` chunks, ``seconds``,
    ``codes`` (scored in this run), ``manifest`` (the merged one when this process merged) and ``labels``
    (the path of ``out`` when it was written, else None: chunks of other ranks are still missing).
    """
    from ..checkpoints.load import load_generator
    from ..checkpoints.tagged import write_tagged

    n, chunk_size, batch_size = (_check_int(n, "n", 1), _check_int(chunk_size, "chunk_size", 1),
                                 _check_int(batch_size, "batch_size", 1))
    if not (0 <= int(seed) and int(seed) + n <= 2 ** 32):
        raise InvalidArgumentError("seed .. seed + n - 1 must lie in [0, 2**32).")
    shard = shard or current_shard()
    device = shard.device(device)
    G = load_generator(model, device=device) if isinstance(model, (str, Path)) else model
    score, columns, description = parse_scorer(scorer, predictor=predictor, clip=clip, device=device)
    out = Path(out)
    parts = out.with_name(out.name + ".parts")
    parts.mkdir(parents=True, exist_ok=True)
    scorer_model = _name(predictor if description.startswith("predictor") else clip)
    job = {"model": _name(model), "scorer": description, "scorer_model": scorer_model, "columns": columns,
           "seed": int(seed), "psi": float(psi), "chunk_size": chunk_size}
    chunks = [(c, c * chunk_size, min(n, (c + 1) * chunk_size)) for c in range((n + chunk_size - 1) // chunk_size)]
    names = [_chunk_path(parts, c).stem for c, _, _ in chunks]
    writer = PartWriter(parts, shard.rank, shard.world_size)
    known, _, _ = read_parts(parts)
    mine = shard.take(chunks)
    bar = progress_bar(sum(b - a for _, a, b in mine), "label", enabled=show_progress and shard.is_main)
    codes = 0
    for c, start, stop in mine:
        path = _chunk_path(parts, c)
        record = {"name": path.stem, "start": start, "stop": stop, "codes": stop - start, "rank": shard.rank}
        if _read_chunk(path, job, start, stop) is not None:
            if path.stem not in known:
                writer.item(record, recovered=True)
            writer.skipped()
        else:
            t0 = time.perf_counter()
            w, s = _label_chunk(G, score, list(range(int(seed) + start, int(seed) + stop)), psi, batch_size)
            seeds = torch.arange(int(seed) + start, int(seed) + stop, dtype=torch.int64)
            write_tagged(path, {"w": w, "scores": s, "seeds": seeds},
                         {"format": CHUNK_FORMAT, "job": json.dumps(job), "start": str(start), "stop": str(stop)})
            writer.item({**record, "seconds": time.perf_counter() - t0})
            codes += stop - start
        bar.update(stop - start)
    bar.close()
    run = writer.finish(codes=codes)
    waited = barrier()
    summary = {k: run[k] for k in ("rank", "world_size", "processed", "skipped", "seconds")}
    summary.update(codes=codes, manifest=None, labels=None)
    if shard.is_main or not waited:
        summary["manifest"] = merge(parts, names, {"command": "label", "n": n, **job})
        if summary["manifest"]["complete"]:
            summary["labels"] = str(_assemble(out, parts, chunks, job, n, summary["manifest"]))
    return summary


def _assemble(out: Path, parts: Path, chunks, job: dict, n: int, manifest: dict) -> Path:
    from ..checkpoints.tagged import write_tagged

    w, s, seeds = [], [], []
    for c, start, stop in chunks:
        tensors = _read_chunk(_chunk_path(parts, c), job, start, stop)
        if tensors is None:
            raise InvalidArgumentError(f"chunk {c} of {out} vanished while merging; run the command again.")
        w.append(tensors["w"])
        s.append(tensors["scores"])
        seeds.append(tensors["seeds"])
    meta = {"format": FORMAT, "columns": json.dumps(job["columns"]), "scorer": job["scorer"], "model": job["model"],
            "n": str(n), "seed": str(job["seed"]), "psi": str(job["psi"]), "seconds": str(manifest["seconds"]),
            "world_size": str(manifest["runs"][0]["world_size"] if manifest["runs"] else 1)}
    return write_tagged(out, {"w": torch.cat(w), "scores": torch.cat(s), "seeds": torch.cat(seeds)}, meta)


def load_labels(path) -> LabelFile:
    """Read a labels file :func:`label_samples` wrote."""
    from ..checkpoints.tagged import read_tagged

    meta, tensors = read_tagged(path, fmt=FORMAT, kind="labels",
                                missing="no such labels file; make one with python -m stylekit label.")
    return LabelFile(tensors["w"].float(), tensors["scores"].float(), tensors["seeds"], json.loads(meta["columns"]),
                     meta)


def fit_from_labels(labels, attribute: str | None = None, *, keep_fraction: float | None = None,
                    threshold: float | None = None, method: str | None = None, regularization: float | None = None,
                    validation_fraction: float = 0.0, seed: int = 0):
    """An InterFaceGAN boundary (a :class:`~stylekit.edit.direction.Direction` in W) from a labels file.

    As :func:`stylekit.edit.interfacegan.sample_and_label`: the top and the bottom ``keep_fraction`` of
    the codes by ``attribute``'s score are the positives and negatives (or every code, split at
    ``threshold``), then :func:`~stylekit.edit.interfacegan.fit_boundary`. Defaults: the preset
    :data:`stylekit.edit.presets.INTERFACEGAN`. ``attribute`` may be omitted when the file has one column.
    """
    from ..edit.interfacegan import fit_boundary
    from ..edit.presets import INTERFACEGAN

    data = labels if isinstance(labels, LabelFile) else load_labels(labels)
    if attribute is None:
        if len(data.columns) != 1:
            raise InvalidArgumentError(f"the labels file has {len(data.columns)} columns; name one with attribute= "
                                       f"({', '.join(data.columns)}).")
        attribute = data.columns[0]
    scores = data.column(attribute)
    n = scores.shape[0]
    keep_fraction = INTERFACEGAN.keep_fraction if keep_fraction is None else keep_fraction
    if threshold is not None:
        keep = torch.arange(n)
        labels01 = (scores > float(threshold)).to(torch.float32)
    else:
        if not (isinstance(keep_fraction, (int, float)) and 0 < keep_fraction <= 0.5):
            raise InvalidArgumentError(f"keep_fraction must be in (0, 0.5], got {keep_fraction!r}.")
        k = min(max(1, int(round(n * float(keep_fraction)))), n // 2)
        order = torch.argsort(scores, descending=True, stable=True)
        keep = torch.cat([order[:k], order[n - k:]])
        labels01 = torch.cat([torch.ones(k), torch.zeros(k)])
    boundary = fit_boundary(data.w[keep], labels01, per_layer=False, method=method or INTERFACEGAN.method,
                            regularization=INTERFACEGAN.regularization if regularization is None else regularization,
                            validation_fraction=validation_fraction, seed=seed, name=attribute)
    boundary.meta.update({"n_sampled": int(n), "scorer": data.meta.get("scorer", ""),
                          "labels_model": data.meta.get("model", "")})
    return boundary
