"""Train (or evaluate) the toyfaces CLIP from the command line.

    python -m stylekit.toyfaces.train_clip --out stylekit/toyfaces/weights/clip.safetensors
    python -m stylekit.toyfaces.train_clip --evaluate stylekit/toyfaces/weights/clip.safetensors

Training writes a checkpoint next to ``--out`` every few steps and resumes from it when run again
with the same settings (``--no-resume`` starts over). The logic lives in
:mod:`stylekit.toyfaces.clip_model`; this module only parses arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import fields


def _parser() -> argparse.ArgumentParser:
    from .clip_model import TrainConfig

    p = argparse.ArgumentParser(prog="python -m stylekit.toyfaces.train_clip", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="stylekit/toyfaces/weights/clip.safetensors", help="weights file to write")
    p.add_argument("--checkpoint", default=None, help="training state file (default: OUT.ckpt.pt)")
    p.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--evaluate", metavar="WEIGHTS", default=None,
                   help="only evaluate these weights (held-out zero-shot accuracy) and print JSON")
    p.add_argument("--per-class", type=int, default=200, help="held-out faces per class for --evaluate")
    p.add_argument("--eval-seed", type=int, default=1234, help="seed of the held-out set for --evaluate")
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        if f.name == "templates":
            continue
        value = getattr(defaults, f.name)
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            p.add_argument(flag, type=lambda s: s.lower() in ("1", "true", "yes", "on"), default=value,
                           help=f"(default {value})")
        else:
            p.add_argument(flag, type=type(value), default=value, help=f"(default {value})")
    return p


def evaluate(weights: str, per_class: int, seed: int) -> dict:
    """Zero-shot accuracies of a weights file, loaded through stylekit.clip_backend.load_clip."""
    from stylekit.clip_backend import load_clip

    from .attributes import BINARY_ATTRIBUTES
    from .clip_model import zero_shot_accuracy

    clip = load_clip("toyfaces", pretrained=weights)
    result = {}
    names = list(BINARY_ATTRIBUTES) + ["smile"]
    for prompts in ("neutral", "negated"):
        result[prompts] = zero_shot_accuracy(clip, per_class=per_class, seed=seed, prompts=prompts, attributes=names)
    result["neutral_augmented"] = zero_shot_accuracy(clip, per_class=per_class, seed=seed, augment_strength=1.0)
    return result


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from stylekit.errors import StylekitError

    try:
        if args.evaluate:
            t0 = time.time()
            result = evaluate(args.evaluate, args.per_class, args.eval_seed)
            result["seconds"] = round(time.time() - t0, 1)
            print(json.dumps(result, indent=2))
            return 0
        from .clip_model import TrainConfig, train_clip

        cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig) if f.name != "templates"})

        def log(line: str) -> None:
            print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)

        log("command: python -m stylekit.toyfaces.train_clip " + " ".join(sys.argv[1:] if argv is None else argv))
        summary = train_clip(args.out, cfg, checkpoint=args.checkpoint, resume=not args.no_resume, log=log)
        print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=2))
        return 0
    except StylekitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
