"""Measure what each gallery tab's default action shows a student (issue 22, item 1).

Run from the repository root: ``python -m demos.defaults_check [--seeds 1000-1015] [--sweep] [--json out.json]``.

Every default action is run through the tab's own callback (so what is measured is what the tab
does), on the default model ``toyfaces``, once per development seed (the session latent set to
that seed at psi 0.7; the tabs' start, ``demos.common.DEFAULT_SEED``, is reported on its own as ``start``).
Each result row is read back from the picture the student sees (the 256 px display, sampled back to 64 px) and measured:

- ``change``: mean absolute pixel change (0-255) of the result against its input;
- the attribute predictor's reading of the intended attribute before and after;
- ``typicality``: how far the result's predictor features lie from those of ordinary samples, as a
  Mahalanobis distance divided by the 99th percentile of ordinary samples' own distances (above 1:
  less typical than 99% of generated faces; a destroyed face scores far above).

``--sweep`` also runs the sweeps that chose the values in the presets (SeFa strength, the StyleSpace
channel, the analogy strength, the mapper's steps). The development seeds are not the ones the
benchmarks report on (bench editing and bench text draw their own codes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
FLOOR = 2.0  # the mean absolute pixel change (0-255) a default action must exceed to count as visible
TYPICAL = 1.5  # the largest typicality a default result may have (1 = the 99th percentile of samples)
MODEL = "toyfaces"


def _predictor():
    from demos.edit import predictor

    return predictor()


def _panels(image, n: int) -> torch.Tensor:
    """A PIL row of ``n`` panels from the gallery -> ``[n, 3, 64, 64]`` in [-1, 1] (the 64 px images shown 4x)."""
    x = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1
    width = (x.shape[-1] - 2) // n
    cells = [x[:, 2:2 + width - 2, 2 + i * width:2 + i * width + width - 2] for i in range(n)]
    return torch.stack([c[:, ::4, ::4] for c in cells])


class Judge:
    """The attribute predictor plus the typicality of its features over ordinary samples."""

    def __init__(self, G, n: int = 512, seed: int = 50_000):
        from stylekit.latent import Latent

        self.predictor = _predictor()
        feats = []
        with torch.no_grad():
            for i in range(0, n, 64):
                lat = Latent.sample(G, 64, seed=seed + i, psi=0.7)
                feats.append(self.predictor.features(lat.render(G)))
        f = torch.cat(feats).double()
        half = f.shape[0] // 2
        self.mean = f[:half].mean(0)
        cov = torch.cov((f[:half] - self.mean).T)
        self.precision = torch.linalg.inv(cov + 1e-3 * torch.eye(cov.shape[0], dtype=cov.dtype) * cov.diag().mean())
        self.p99 = float(torch.quantile(self._distance(f[half:]), 0.99))

    def _distance(self, f: torch.Tensor) -> torch.Tensor:
        d = f.double() - self.mean
        return torch.sqrt(torch.einsum("ni,ij,nj->n", d, self.precision, d))

    def read(self, images: torch.Tensor) -> dict:
        """name -> ``[N]`` readings in attribute units, plus ``typicality`` ``[N]``."""
        with torch.no_grad():
            values = {k: v.float() for k, v in self.predictor.predict(images).items()}
            values["typicality"] = self._distance(self.predictor.features(images)) / self.p99
        return values

    def span(self, attribute: str) -> float:
        """The attribute's range (high - low), to compare changes of attributes in different units."""
        j = list(self.predictor.attribute_names).index(attribute)
        return float(self.predictor.high[j] - self.predictor.low[j])


def _seed_latent(G, seed: int):
    from stylekit.latent import Latent

    return Latent.from_seed(G, seed, psi=0.7)


def _measure(judge: Judge, before: torch.Tensor, after: torch.Tensor, attribute: str | None) -> dict:
    b, a = judge.read(before), judge.read(after)
    out = {"change": float(((after - before).abs() * 127.5).mean()), "typicality": float(a["typicality"].max())}
    if attribute is not None:
        out.update(before=float(b[attribute].mean()), after=float(a[attribute].mean()))
    deltas = {k: float((a[k] - b[k]).mean()) for k in b if k != "typicality"}
    top = max(deltas, key=lambda k: abs(deltas[k]) / judge.span(k))
    out.update(largest=top, largest_delta=deltas[top])
    return out


def actions(G) -> dict:
    """name -> (callback(latent) -> (before [1,3,64,64], after), intended attribute or None)."""
    from demos import edit, local, morph, stylespace, text
    from stylekit.edit.presets import ANALOGY, PART_TRANSFER, SEFA, STYLESPACE
    from stylekit.text.presets import GLOBAL_DIRECTIONS, MAPPER

    directions = GLOBAL_DIRECTIONS["toyfaces"]

    def two(fn, *args, n=2, first=0, last=-1):
        def run(latent):
            image = fn(MODEL, *args, latent)[0]
            p = _panels(image, n)
            return p[first:first + 1], p[last:][:1] if last != -1 else p[-1:]
        return run

    stylespace_layer = STYLESPACE.layer
    return {
        "interfacegan glasses +3": (two(edit.edit_interfacegan, "glasses", 3.0, "all"), "glasses"),
        "ganspace PC0 +3": (two(edit.edit_ganspace, 0, 3.0, "all"), None),
        f"sefa direction 0 {SEFA.strength:+g}": (two(edit.edit_sefa, 0, SEFA.strength, SEFA.layers), None),
        f"stylespace {stylespace_layer} #{STYLESPACE.channel} {STYLESPACE.amount:+g}":
            (two(stylespace.stylespace_edit, stylespace_layer, STYLESPACE.channel, STYLESPACE.amount,
                 STYLESPACE.attribute), STYLESPACE.attribute),
        f"local part transfer ({PART_TRANSFER.part} of seed {PART_TRANSFER.reference_seed})":
            (two(local.local_transfer, PART_TRANSFER.reference_seed, local.DEFAULT_PART, PART_TRANSFER.strength,
                 n=3, last=2), "red_hair"),
        "analogy neutral -> smiling": (two(morph.analogy, morph.PAIRS[0], 3, 4, ANALOGY.strength, ANALOGY.layers,
                                           n=4, first=2, last=3), "smile"),
        "text global 'a face with glasses'": (two(text.text_edit, "a face with glasses", "a face", "global",
                                                  directions.alpha, 60, 0.0, directions.top_k, True), "glasses"),
        f"text mapper 'a face with glasses' {MAPPER['toyfaces'].steps} steps":
            (two(text.text_edit, "a face with glasses", "a face", "mapper", text.MAPPER_UNIT,
                 MAPPER["toyfaces"].steps, 0.0, 40, True), "glasses"),
    }


def run_actions(G, judge: Judge, seeds: list[int], names=None) -> dict:
    from demos.common import DEFAULT_SEED as start

    results = {}
    for name, (fn, attribute) in actions(G).items():
        if names and not any(n in name for n in names):
            continue
        rows = []
        t0 = time.perf_counter()
        for seed in [start] + seeds:
            before, after = fn(_seed_latent(G, seed))
            rows.append(_measure(judge, before, after, attribute))
        dev = rows[1:]
        summary = {"start": rows[0], "seconds": time.perf_counter() - t0,
                   "change_median": float(np.median([r["change"] for r in dev])),
                   "change_min": float(min(r["change"] for r in dev)),
                   "typicality_max": float(max(r["typicality"] for r in dev)),
                   "visible_fraction": float(np.mean([r["change"] > FLOOR for r in dev]))}
        if attribute:
            summary.update(before=float(np.mean([r["before"] for r in dev])),
                           after=float(np.mean([r["after"] for r in dev])))
        results[name] = summary
        print(json.dumps({name: summary}, default=float), flush=True)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demos.defaults_check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="1000-1015", help="development seeds (default 1000-1015)")
    parser.add_argument("--only", nargs="*", help="only the actions whose name contains one of these words")
    parser.add_argument("--sweep", action="store_true", help="also run the sweeps behind the presets")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from stylekit.cli import parse_seeds

    from demos.common import get_generator

    G = get_generator(MODEL)
    judge = Judge(G)
    seeds = parse_seeds(args.seeds)
    out = {"seeds": args.seeds, "floor": FLOOR, "actions": run_actions(G, judge, seeds, args.only)}
    if args.sweep:
        from demos import defaults_sweeps

        out["sweeps"] = defaults_sweeps.run_all(G, judge, seeds)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
