"""Retrieve in Style on toyfaces: does part retrieval find faces that share the part, and only the part?

``python -m stylekit.bench retrieval --json out.json [--quick]``. Everything is scored against the ground
truth of the toyfaces latents (:func:`stylekit.toyfaces.latents.z_to_attributes`: the attributes each ``z``
is drawn with); no network that was trained for anything reads the faces.

**Faces.** ``--queries`` query faces and ``--database`` database faces, all from **report seeds**
(:func:`stylekit.bench.stats.report_seeds` from ``7,000,000 + REPORT_OFFSET`` = 7,500,000: queries first, then
the database; the range is in the JSON as ``report_seed_start`` / ``report_seed_count``), without truncation
(``psi = 1``: truncation would pull the rendered attributes away from the ones ``z`` is labelled with).

**Parts.** The generator's parts are found as the gallery finds them (:func:`stylekit.edit.local.find_parts`,
``--n-parts`` clusters of 64 random samples; 12 by default, where the eyes get a cluster of their own; the
gallery's 8 give hair, skin and background only). Which clusters make up a part is read from the renderer on
development seeds :data:`NAMING_SEEDS`: a part's *region* is where the render changes when the part's own
attributes go between two extremes (:data:`REGIONS`), and a cluster belongs to the part whose region holds at
least :data:`MIN_SHARE` of its pixels. A part no cluster belongs to is reported as missing
(``clusters_<part> = 0``) and not scored.

**Ground truth per part** (:data:`PART_ATTRIBUTES`): the attributes the renderer draws inside the part and
nowhere else, so that sharing the part means sharing them:

- ``hair``: ``hair_color``, ``red_hair``, ``hair_length`` (the colour, its red variant and the length of the
  hair mass);
- ``eyes``: ``eyes_open``, ``glasses`` (lids and frames both sit over the eyes);
- ``mouth``: ``mouth_open``, ``smile``;
- ``skin``: ``skin_tone``;
- ``background``: ``background_hue``.

Pose, position and light (``yaw``, ``rotation``, ``position_x/y``, ``light_direction``) move or shade every
part at once, and ``beard`` spans skin and mouth, so they belong to no part and are scored nowhere. Two faces
*agree* on a binary attribute when it is equal, on a continuous one when the values differ by at most
:data:`TOLERANCE` of its range; they *share a part* when they agree on every attribute of it.

**Metrics** (per part ``p``; ``k = --k``):

- ``p_at_k_part_<p>``: precision@k of part retrieval (:func:`stylekit.edit.retrieval.retrieve`, cosine distance
  of the part descriptors): the fraction of the top-k database faces sharing the query's part, per query, mean
  over queries with a 95% bootstrap interval over queries (``_lo`` / ``_hi`` / ``_n``; the k faces of one
  query are not independent, so there is no Wilson interval over query x k outcomes);
- ``p_at_k_whole_<p>``: the same with whole-face retrieval in W+ (one ranking for every part);
- ``p_at_k_gain_<p>``: the paired per-query difference part - whole, with its bootstrap interval;
- ``p_at_1_part_<p>`` / ``p_at_1_whole_<p>``: precision@1 (one outcome per query: Wilson intervals);
- ``chance_<p>``: the share of all query-database pairs sharing the part (what random retrieval scores);
- ``other_agree_part_<p>`` / ``other_agree_whole_<p>`` / ``other_chance_<p>``: the mean agreement, over the
  top-k and over the attributes of the *other* parts, that is how much the retrieval also matches the rest
  of the face; part retrieval should stay nearer chance there than whole-face retrieval;
- ``transfer_locality_<p>``: for ``--transfer`` queries, the part of the closest other face is transferred
  (:func:`~stylekit.edit.retrieval.retrieve_and_transfer`) and the mean absolute pixel change inside the
  query's part mask is divided by the change outside it (above 1: the change is where the part is);
- means over the scored parts (``p_at_k_part_mean``, ``p_at_k_whole_mean``, ``chance_mean``...), and times:
  ``find_parts_s``, ``descriptor_ms_per_face``, ``retrieve_ms_per_query``, ``seconds``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from .stats import mean_metrics, rate_metrics, report_seeds

#: Report seeds of this benchmark start at ``REPORT_SEED_START + REPORT_OFFSET`` = 7,500,000 (editing 0 on,
#: text 100,000, inversion 200,000, claims 300,000, toyfaces 400,000).
REPORT_OFFSET = 500_000
#: The attributes each part carries (see the module docstring for why).
PART_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "hair": ("hair_color", "red_hair", "hair_length"),
    "eyes": ("eyes_open", "glasses"),
    "mouth": ("mouth_open", "smile"),
    "skin": ("skin_tone",),
    "background": ("background_hue",),
}
#: A part's region: where the render changes when these attributes go from the first value to the second.
REGIONS: dict[str, tuple[tuple[str, float, float], ...]] = {
    "hair": (("hair_color", 0.0, 1.0),),
    "eyes": (("eyes_open", 0.0, 1.0), ("glasses", 0.0, 1.0)),
    "mouth": (("mouth_open", 0.0, 1.0), ("smile", -1.0, 1.0)),
    "skin": (("skin_tone", 0.0, 1.0),),
    "background": (("background_hue", 0.0, 0.5),),
}
#: Continuous attributes agree when they differ by at most this fraction of their range.
TOLERANCE = 0.2
#: A cluster belongs to a part when at least this share of its pixels lies in the part's region.
MIN_SHARE = 0.5
#: Development seeds on which clusters are matched to parts (no report seed is looked at for that).
NAMING_SEEDS = range(1000, 1016)
#: Pixels whose render changes by more than this (in [-1, 1] units, any channel) are in the region.
REGION_THRESHOLD = 0.2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="toyfaces", help="generator (default: the shipped toyfaces)")
    parser.add_argument("--queries", type=int, default=None, help="query faces (default 1000; --quick 60)")
    parser.add_argument("--database", type=int, default=None, help="database faces (default 5000; --quick 300)")
    parser.add_argument("--k", type=int, default=5, help="faces retrieved per query (default 5)")
    parser.add_argument("--n-parts", type=int, default=12,
                        help="clusters of part finding (default 12: the eyes get a cluster; the gallery uses 8)")
    parser.add_argument("--transfer", type=int, default=None,
                        help="queries whose part is transferred for the locality figure (default 32; --quick 8)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--quick", action="store_true", help="small sets, for a smoke run")


def region_masks(z: torch.Tensor, size: int) -> dict[str, torch.Tensor]:
    """Part name -> ``[N, size, size]`` bool: where the render of ``z [N, z_dim]``'s attributes changes when the
    part's attributes (:data:`REGIONS`) go between their two values (glasses off elsewhere, so they do not
    cover the eyes' lids; skin excludes the eyes and mouth, whose lids and lips take the skin tone)."""
    from ..toyfaces.latents import z_to_attributes
    from ..toyfaces.renderer import render_batch

    attrs = z_to_attributes(z)
    masks = {}
    for name, changes in REGIONS.items():
        mask = torch.zeros(z.shape[0], size, size, dtype=torch.bool)
        for attribute, low, high in changes:
            extra = {} if attribute == "glasses" else {"glasses": 0.0}
            a = dict(attrs, **extra, **{attribute: low})
            b = dict(attrs, **extra, **{attribute: high})
            mask |= (render_batch(a, size=size) - render_batch(b, size=size)).abs().amax(1) > REGION_THRESHOLD
        masks[name] = mask
    masks["skin"] &= ~(masks["eyes"] | masks["mouth"])
    return masks


def part_clusters(G, parts, seeds=NAMING_SEEDS) -> dict[str, dict]:
    """Part name -> ``{'clusters': tuple, 'purity': share of those clusters' pixels inside the region}`` (an
    empty tuple when no cluster belongs to the part; see :data:`MIN_SHARE`)."""
    from ..edit.local import part_masks
    from ..latent import Latent

    seeds = list(seeds)
    z = Latent.seed_z(G, seeds, device="cpu")
    regions = region_masks(z, G.img_resolution)
    labels = part_masks(G, parts, Latent.from_seed(G, seeds, psi=1.0), size=G.img_resolution).cpu()
    owner: dict[int, str] = {}
    for k in range(parts.n_parts):
        cluster = labels == k
        n = int(cluster.sum())
        if n == 0:
            continue
        shares = {name: int((cluster & mask).sum()) / n for name, mask in regions.items()}
        best = max(shares, key=shares.get)
        if shares[best] >= MIN_SHARE:
            owner[k] = best
    out = {}
    for name, mask in regions.items():
        clusters = tuple(k for k, o in owner.items() if o == name)
        inside = torch.zeros_like(mask)
        for k in clusters:
            inside |= labels == k
        purity = float((inside & mask).sum()) / max(int(inside.sum()), 1)
        out[name] = {"clusters": clusters, "purity": purity}
    return out


def agreement(attrs_a: dict[str, np.ndarray], attrs_b: dict[str, np.ndarray], name: str) -> np.ndarray:
    """``[A, B]`` bool: does face ``i`` of ``attrs_a`` agree with face ``j`` of ``attrs_b`` on attribute ``name``."""
    from ..toyfaces.attributes import attribute_spec

    spec = attribute_spec(name)
    a, b = np.asarray(attrs_a[name], np.float64), np.asarray(attrs_b[name], np.float64)
    if spec.kind == "binary":
        return (a[:, None] >= 0.5) == (b[None, :] >= 0.5)
    return np.abs(a[:, None] - b[None, :]) <= TOLERANCE * (spec.high - spec.low) + 1e-9


def _gathered(table: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """``table [Q, N]`` at ``indices [Q, k]`` -> ``[Q, k]``."""
    return np.take_along_axis(table, indices, axis=1)


def score(own: np.ndarray, others: list[np.ndarray], indices: np.ndarray) -> dict[str, np.ndarray]:
    """Per-query figures of one ranking: ``p_at_k`` (share of the top-k sharing the part), ``p_at_1`` (0/1) and
    ``other`` (mean agreement over the top-k and the other parts' attributes), each ``[Q]``."""
    hits = _gathered(own, indices)
    other = np.mean([_gathered(o, indices).mean(1) for o in others], axis=0) if others else np.zeros(len(indices))
    return {"p_at_k": hits.mean(1), "p_at_1": hits[:, 0].astype(np.float64), "other": other}


def transfer_locality(G, parts, queries, database, clusters, n: int) -> np.ndarray:
    """For the first ``n`` queries: mean |pixel change| inside the query's part mask over the change outside it,
    after :func:`~stylekit.edit.retrieval.retrieve_and_transfer` of the part from the closest other face."""
    from ..edit.local import part_masks
    from ..edit.retrieval import retrieve_and_transfer

    target = queries.select(list(range(n)))
    with torch.no_grad():
        edited, _ = retrieve_and_transfer(G, target, database, parts, list(clusters))
        before, after = target.render(G).float().cpu(), edited.render(G).float().cpu()
    labels = part_masks(G, parts, target, size=G.img_resolution).cpu()
    inside = torch.zeros_like(labels, dtype=torch.bool)
    for k in clusters:
        inside |= labels == k
    change = (after - before).abs().mean(1)  # [n, R, R]
    ratios = []
    for i in range(n):
        m = inside[i]
        if m.all() or not m.any():
            continue
        ratios.append(float(change[i][m].mean() / change[i][~m].mean().clamp_min(1e-8)))
    return np.asarray(ratios)


def run(args) -> dict[str, float]:
    from ..checkpoints.load import load_generator
    from ..edit.local import find_parts
    from ..edit.presets import PART_RETRIEVAL
    from ..edit.retrieval import cosine_distances, part_descriptors, whole_descriptors
    from ..latent import Latent
    from ..toyfaces.latents import z_to_attributes

    if args.threads:
        torch.set_num_threads(args.threads)
    quick = bool(args.quick)
    n_q = args.queries or (60 if quick else 1000)
    n_db = args.database or (300 if quick else 5000)
    n_transfer = args.transfer if args.transfer is not None else (8 if quick else 32)
    k = int(args.k)
    t0 = time.perf_counter()
    G = load_generator(args.model)
    q_seeds, db_seeds = report_seeds(n_q, REPORT_OFFSET), report_seeds(n_db, REPORT_OFFSET + n_q)
    metrics: dict[str, float] = {"report_seed_start": q_seeds.start, "report_seed_count": n_q + n_db,
                                 "queries": n_q, "database": n_db, "k": k, "quick": quick, "tolerance": TOLERANCE,
                                 "n_parts": args.n_parts, "sharpness": PART_RETRIEVAL.sharpness, "naming_seed_start": NAMING_SEEDS.start,
                                 "naming_seed_count": len(NAMING_SEEDS)}
    queries = Latent.from_seed(G, list(q_seeds), psi=1.0, space="w+")
    database = Latent.from_seed(G, list(db_seeds), psi=1.0, space="w+")
    attrs_q = z_to_attributes(Latent.seed_z(G, list(q_seeds), device="cpu"))
    attrs_db = z_to_attributes(Latent.seed_z(G, list(db_seeds), device="cpu"))

    t = time.perf_counter()
    parts = find_parts(G, n_parts=args.n_parts)
    metrics["find_parts_s"] = time.perf_counter() - t
    owners = part_clusters(G, parts)

    t = time.perf_counter()
    whole = cosine_distances(whole_descriptors(G, queries), whole_descriptors(G, database)).cpu()
    whole_rank = torch.topk(whole, k, dim=1, largest=False).indices.numpy()
    metrics["retrieve_whole_ms_per_query"] = 1000 * (time.perf_counter() - t) / n_q

    agree = {name: agreement(attrs_q, attrs_db, name) for names in PART_ATTRIBUTES.values() for name in names}
    scored, times = [], []
    summary: dict[str, list[float]] = {}
    for part, names in PART_ATTRIBUTES.items():
        clusters = owners[part]["clusters"]
        metrics[f"clusters_{part}"] = len(clusters)
        metrics[f"purity_{part}"] = owners[part]["purity"]
        if not clusters:
            continue
        scored.append(part)
        own = np.logical_and.reduce([agree[n] for n in names])
        others = [agree[n] for p, ns in PART_ATTRIBUTES.items() if p != part for n in ns]
        t = time.perf_counter()
        dq = part_descriptors(G, parts, queries, list(clusters))
        dd = part_descriptors(G, parts, database, list(clusters))
        t_desc = time.perf_counter() - t
        dist = cosine_distances(dq, dd).cpu()
        rank = torch.topk(dist, k, dim=1, largest=False).indices.numpy()
        times.append((t_desc, time.perf_counter() - t))
        by_part, by_whole = score(own, others, rank), score(own, others, whole_rank)
        metrics.update(mean_metrics(f"p_at_k_part_{part}", by_part["p_at_k"]))
        metrics.update(mean_metrics(f"p_at_k_whole_{part}", by_whole["p_at_k"]))
        metrics.update(mean_metrics(f"p_at_k_gain_{part}", by_part["p_at_k"] - by_whole["p_at_k"]))
        metrics.update(rate_metrics(f"p_at_1_part_{part}", by_part["p_at_1"]))
        metrics.update(rate_metrics(f"p_at_1_whole_{part}", by_whole["p_at_1"]))
        metrics[f"chance_{part}"] = float(own.mean())
        metrics.update(mean_metrics(f"other_agree_part_{part}", by_part["other"]))
        metrics.update(mean_metrics(f"other_agree_whole_{part}", by_whole["other"]))
        metrics[f"other_chance_{part}"] = float(np.mean([o.mean() for o in others]))
        if n_transfer > 0:
            ratios = transfer_locality(G, parts, queries, database, clusters, min(n_transfer, n_q))
            if ratios.size:
                metrics.update(mean_metrics(f"transfer_locality_{part}", ratios))
        for key, value in (("p_at_k_part", metrics[f"p_at_k_part_{part}"]),
                           ("p_at_k_whole", metrics[f"p_at_k_whole_{part}"]), ("chance", metrics[f"chance_{part}"]),
                           ("other_agree_part", metrics[f"other_agree_part_{part}"]),
                           ("other_agree_whole", metrics[f"other_agree_whole_{part}"]),
                           ("other_chance", metrics[f"other_chance_{part}"])):
            summary.setdefault(key, []).append(value)
    metrics["parts_scored"] = len(scored)
    for key, values in summary.items():
        metrics[f"{key}_mean"] = float(np.mean(values))
    if times:
        metrics["descriptor_ms_per_face"] = 1000 * float(np.mean([a for a, _ in times])) / (n_q + n_db)
        metrics["retrieve_ms_per_query"] = 1000 * float(np.mean([b for _, b in times])) / n_q
    metrics["seconds"] = time.perf_counter() - t0
    return metrics
