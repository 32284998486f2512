"""``python -m stylekit.rehearsal DIR [--parts a,b] [--verify]``: build the rehearsal world, print its env."""

from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str] | None = None) -> int:
    from .world import PARTS, build_world, check_world, world_env, world_size

    parser = argparse.ArgumentParser(prog="python -m stylekit.rehearsal",
                                     description="Write random-weight, full-size stand-ins of the real model files "
                                                 "(a Hugging Face Hub cache and a torch hub cache) into DIR.")
    parser.add_argument("directory", metavar="DIR")
    parser.add_argument("--parts", default=None,
                        help="comma-separated parts (default: all): " + ", ".join(PARTS))
    parser.add_argument("--verify", action="store_true", help="re-hash existing files instead of trusting their size")
    parser.add_argument("--check", action="store_true", help="only report missing or damaged files (exit 1 if any)")
    args = parser.parse_args(argv)
    parts = None if args.parts is None else [p.strip() for p in args.parts.split(",") if p.strip()]
    if args.check:
        problems = check_world(args.directory, parts=parts, verify=args.verify)
        for rel, problem in problems.items():
            print(f"{rel}: {problem}")
        return 1 if problems else 0
    start = time.perf_counter()
    build_world(args.directory, parts=parts, verify=args.verify, log=lambda line: print(line, flush=True))
    print(f"# {world_size(args.directory) / 1e9:.2f} GB in the world; built in {time.perf_counter() - start:.0f} s")
    print("# point stylekit at it (offline):")
    for key, value in world_env(args.directory).items():
        print(f"export {key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
