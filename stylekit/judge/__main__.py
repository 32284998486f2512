"""``python -m stylekit.judge --out runs/judge [--steps N] [--batch B] [--pool P] [--precision bf16] [--threads T] [--export P]``."""

from __future__ import annotations

import argparse
import shlex
import sys


def main(argv: list[str] | None = None) -> int:
    from ..errors import StylekitError
    from .train import JudgeConfig, train_judge

    argv = list(sys.argv[1:] if argv is None else argv)
    defaults = JudgeConfig()
    p = argparse.ArgumentParser(prog="python -m stylekit.judge", description="Train the held-out toyfaces judge.")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--steps", type=int, default=defaults.steps)
    p.add_argument("--batch", type=int, default=defaults.batch)
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--generator", default=defaults.generator)
    p.add_argument("--precision", default="fp32", help="fp32, bf16, fp16 or auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--eval-samples", type=int, default=defaults.eval_samples)
    p.add_argument("--pool", type=int, default=defaults.pool, help="clean faces kept for reuse")
    p.add_argument("--export", default=None, help="also copy judge.safetensors (and its card) here")
    p.add_argument("--overwrite-shipped", action="store_true", help="allow --export into the shipped weights folder")
    p.add_argument("--no-resume", action="store_true", help="start afresh even if the run folder has a checkpoint")
    a = p.parse_args(argv)
    cfg = JudgeConfig(out=a.out, steps=a.steps, batch=a.batch, lr=a.lr, seed=a.seed, generator=a.generator,
                      precision=a.precision, threads=a.threads, eval_samples=a.eval_samples, pool=a.pool, export=a.export,
                      overwrite_shipped=a.overwrite_shipped, resume=None if a.no_resume else "auto",
                      command="python -m stylekit.judge " + shlex.join(argv))
    try:
        train_judge(cfg)
    except StylekitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
