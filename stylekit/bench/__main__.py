"""``python -m stylekit.bench <name> --json out.json [options]``: run one benchmark, write flat JSON."""

from __future__ import annotations

import argparse
import importlib
import math
import sys
from pathlib import Path

from . import BENCHMARKS, write_metrics

#: Benchmarks that left this package -> the command that runs them now.
MOVED = {"app": "python -m demos.bench_app --json out.json (from the repository root: it launches the gallery's app.py; "
               "add --world rehearsal for ffhq-1024 on the full-size rehearsal world, with the server's peak RSS)"}


def build_parser(name: str) -> argparse.ArgumentParser:
    """The parser of benchmark ``name`` (only that benchmark's module is imported)."""
    module = importlib.import_module(BENCHMARKS[name])
    parser = argparse.ArgumentParser(prog=f"python -m stylekit.bench {name}", description=module.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write the metrics to this JSON file")
    module.add_arguments(parser)
    parser.set_defaults(_module=module)
    return parser


def flatten_metrics(metrics: dict) -> dict[str, float]:
    """Check that ``metrics`` is flat ``str -> number`` (bools become 0/1, NaN/inf are refused)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if not isinstance(key, str):
            raise TypeError(f"metric names must be strings, got {key!r}")
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise TypeError(f"metric {key!r} must be a finite number, got {value!r}")
        out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    names = ", ".join(sorted(BENCHMARKS))
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: python -m stylekit.bench NAME [--json PATH] [options]\n\nbenchmarks: {names}\n"
              "Run 'python -m stylekit.bench NAME --help' for a benchmark's options.")
        return 0 if argv else 2
    if argv[0] in MOVED:
        print(f"the {argv[0]!r} benchmark moved out of the package; run: {MOVED[argv[0]]}", file=sys.stderr)
        return 2
    if argv[0] not in BENCHMARKS:
        print(f"unknown benchmark {argv[0]!r}; choose one of: {names}", file=sys.stderr)
        return 2
    args = build_parser(argv[0]).parse_args(argv[1:])
    write_metrics(flatten_metrics(args._module.run(args)), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
