"""Command line: ``python -m stylekit.train {gan,supervised,encoder,clip,predictor,rig,styleflow,fd,clip-eval,world} ...``.

Every trainer takes the same common options (``--out`` (required), ``--batch``, ``--lr``, ``--seed``,
``--device``, ``--precision fp32|bf16|fp16|auto``, ``--threads``, ``--resume [CHECKPOINT]`` / ``--no-resume``, ``--export PATH``,
``--overwrite-shipped``), the options of its length unit (``--steps --warmup --decay --lr-floor
--log-every --snapshot-every``, or ``--kimg --log-kimg --snapshot-kimg`` and the generator's
architecture) and its own. No run writes into the package's shipped weights
(``stylekit/toyfaces/weights/``) unless ``--overwrite-shipped`` is given.

Examples::

    python -m stylekit.train supervised --resolution 64 --batch 32 --kimg 100 --out runs/sup
    python -m stylekit.train gan --data toyfaces --resolution 64 --batch 32 --kimg 20 --out runs/ft \\
        --init runs/sup/generator.safetensors
    python -m stylekit.train gan --data path/to/images --resolution 64 --kimg 500 --out runs/mine
    python -m stylekit.train encoder --generator toyfaces --out runs/e4e --steps 20000 --batch 16
    python -m stylekit.train clip --out runs/clip --steps 600
    python -m stylekit.train predictor --out runs/predictor --steps 3000
    python -m stylekit.train rig --out runs/rig --steps 1500 --w-keep 5 --threads 1
    python -m stylekit.train styleflow --out runs/styleflow --steps 20000 --threads 1
    python -m stylekit.train fd runs/sup/generator.safetensors --n 1000
    python -m stylekit.train clip-eval runs/clip/clip.safetensors
    python -m stylekit.train world --generator runs/sup/generator.safetensors --out runs/world --overwrite-shipped
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys

from ..errors import StylekitError

__all__ = ["TRAINERS", "build_parser", "config_from_args", "main", "parse_channels"]

#: The training subcommands.
TRAINERS = ("gan", "supervised", "encoder", "clip", "predictor", "rig", "styleflow")

#: Command-line defaults that differ from the config classes' (kept from the earlier commands).
_CLI_DEFAULTS = {"gan": {"threads": 2}, "supervised": {"threads": 2, "z_dim": 64, "w_dim": 64}}


def parse_channels(text: str | None) -> dict | None:
    """``"4:128,8:128,16:64"`` -> ``{"4": 128, "8": 128, "16": 64}``."""
    if not text:
        return None
    out = {}
    try:
        for item in text.split(","):
            res, ch = item.split(":")
            out[str(int(res))] = int(ch)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"channels must look like '4:128,8:128,16:64', not {text!r}") from exc
    return out


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")


def _fraction_or_none(text: str) -> float | None:
    return None if text.strip().lower() == "none" else float(text)


def _config_class(kind: str):
    if kind == "gan":
        from .gan import GanConfig as cls
    elif kind == "supervised":
        from .supervised import SupervisedConfig as cls
    elif kind == "encoder":
        from .encoder import EncoderConfig as cls
    elif kind == "clip":
        from .clip import ClipConfig as cls
    elif kind == "rig":
        from .rig import RigConfig as cls
    elif kind == "styleflow":
        from .styleflow import StyleFlowConfig as cls
    else:
        from .predictor import PredictorConfig as cls
    return cls


# ------------------------------------------------------------------------------------------------
# Options


def _add_common(p: argparse.ArgumentParser, d) -> None:
    """The options every trainer takes (defaults from its config ``d``)."""
    p.add_argument("--out", required=True, help="run folder (config, log, checkpoint-latest.pt, the trained file)")
    p.add_argument("--batch", type=int, default=d.batch, help="images per optimiser step")
    p.add_argument("--lr", type=float, default=d.lr, help="base (peak) learning rate")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device)
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16", "auto"), default=d.precision,
                   help="compute precision: autocast (+ channels-last on CPU; float16 with gradient scaling), "
                        "losses and weights float32; auto = bf16 on CPUs with AMX / AVX-512-BF16, fp16 on CUDA")
    p.add_argument("--threads", type=int, default=d.threads, help="torch.set_num_threads for the run")
    p.add_argument("--resume", nargs="?", const="latest", default=d.resume, metavar="CHECKPOINT",
                   help="continue from the run folder's checkpoint, or from this checkpoint file / run folder "
                        f"(default: {d.resume or 'start afresh'})")
    p.add_argument("--no-resume", dest="resume", action="store_const", const=None,
                   help="start afresh even if the run folder holds a checkpoint")
    p.add_argument("--export", default=None, help="also copy the trained file here")
    p.add_argument("--overwrite-shipped", action="store_true",
                   help="allow --out / --export inside the package's shipped weights (stylekit/toyfaces/weights)")


def _add_steps(p: argparse.ArgumentParser, d) -> None:
    """The options of a run counted in optimiser steps."""
    p.add_argument("--steps", type=int, default=d.steps, help="optimiser steps")
    p.add_argument("--warmup", type=int, default=d.warmup, help="linear warm-up steps")
    p.add_argument("--decay", type=_fraction_or_none, default=d.decay,
                   help="cosine decay over the last fraction of the run ('none': every step after the warm-up)")
    p.add_argument("--lr-floor", type=float, default=d.lr_floor, help="the cosine ends at lr * this")
    p.add_argument("--log-every", type=int, default=d.log_every)
    p.add_argument("--snapshot-every", type=int, default=d.snapshot_every, help="checkpoint every this many steps")


def _add_kimg(p: argparse.ArgumentParser, d) -> None:
    """The options of a generator run counted in thousands of images."""
    p.add_argument("--kimg", type=float, required=True, help="total training length in thousands of images")
    p.add_argument("--snapshot-kimg", type=float, default=d.snapshot_kimg)
    p.add_argument("--log-kimg", type=float, default=d.log_kimg)
    p.add_argument("--profile-steps", type=int, default=d.profile_steps,
                   help="run this many steps (after 3 warm-up steps) under the profiler and write where their "
                        "time went to profile.json in the run folder (CPU runs)")
    p.add_argument("--resolution", type=int, default=d.resolution)
    p.add_argument("--init", default=None, help="start G from this canonical generator .safetensors")
    for name in ("z_dim", "w_dim", "map_layers", "channel_base", "channel_max"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name))
    p.add_argument("--g-channels", type=parse_channels, default=None,
                   help="explicit StyleGAN2 channels, e.g. 4:128,8:128,...; with --init: widen that generator to them")
    p.add_argument("--arch", choices=("stylegan2", "stylegan3-t", "stylegan3-r"), default=d.arch,
                   help="generator architecture (StyleGAN3: the supervised trainer only)")
    p.add_argument("--sg3-layers", type=int, default=d.sg3_layers, help="StyleGAN3 synthesis layers")
    p.add_argument("--ema-kimg", type=float, default=d.ema_kimg, help="half-life of the generator EMA")
    p.add_argument("--compile", action="store_true",
                   help="run G's synthesis, and the toyfaces renderer's drawing of targets and real images, "
                        "through torch.compile (fused elementwise work: faster steps after a first step that "
                        "compiles; needs a C++ compiler on CPU)")


def _add_gan(p: argparse.ArgumentParser, d) -> None:
    p.add_argument("--data", default=d.data, help="'toyfaces' or a folder of images (any size)")
    p.add_argument("--mirror", action="store_true", help="x-flip augmentation (image folders)")
    p.add_argument("--dlr", dest="d_lr", type=float, default=d.d_lr, help="discriminator learning rate")
    p.add_argument("--gamma", dest="r1_gamma", type=float, default=d.r1_gamma, help="R1 weight")
    p.add_argument("--r1-interval", type=int, default=d.r1_interval)
    p.add_argument("--pl-weight", type=float, default=d.pl_weight, help="path-length regularisation weight (0 = off)")
    p.add_argument("--style-mixing", dest="style_mixing_prob", type=float, default=d.style_mixing_prob)
    p.add_argument("--ema-rampup", type=float, default=d.ema_rampup)
    p.add_argument("--d-channel-base", type=int, default=d.d_channel_base)
    p.add_argument("--d-channel-max", type=int, default=d.d_channel_max)
    p.add_argument("--d-channels", type=parse_channels, default=None)


def _add_supervised(p: argparse.ArgumentParser, d) -> None:
    p.add_argument("--mapping-lr-scale", type=float, default=d.mapping_lr_scale, help="mapping network lr = lr * this")
    p.add_argument("--lr-rampdown-kimg", type=float, default=d.lr_rampdown_kimg,
                   help="cosine-decay the lr to 10%% over the last this many kimg")
    p.add_argument("--l1", dest="l1_weight", type=float, default=d.l1_weight)
    p.add_argument("--multiscale", dest="multiscale_weight", type=float, default=d.multiscale_weight)
    p.add_argument("--percep", dest="percep_weight", type=float, default=d.percep_weight,
                   help="weight of the predictor-feature term (0 = off)")
    p.add_argument("--grad", dest="grad_weight", type=float, default=d.grad_weight,
                   help="weight of the gradient-domain L1 (finite differences; sharp edges; 0 = off)")
    p.add_argument("--lap", dest="lap_weight", type=float, default=d.lap_weight,
                   help="weight of the Laplacian L1 (second differences; one-pixel lines; 0 = off)")
    p.add_argument("--face", dest="face_weight", type=float, default=d.face_weight,
                   help="weight of an extra L1 over the toyfaces face box (0 = off)")
    p.add_argument("--adv", dest="adv_weight", type=float, default=d.adv_weight,
                   help="weight of an adversarial term (0 = off)")
    p.add_argument("--adv-start-kimg", type=float, default=d.adv_start_kimg)
    p.add_argument("--gamma", dest="r1_gamma", type=float, default=d.r1_gamma)
    p.add_argument("--noise-mode", default=d.noise_mode, choices=["random", "const", "none"])


def _add_encoder(p: argparse.ArgumentParser, d) -> None:
    p.add_argument("--generator", default=d.generator, help="registered name or checkpoint path (default: toyfaces)")
    p.add_argument("--init", default=None, help="start from this encoder's weights (file or registered name)")
    p.add_argument("--preset", choices=("toyfaces", "ffhq"), default="toyfaces", help="encoder size")
    for name in ("restyle_iterations", "progressive_start", "progressive_every", "eval_images"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name))
    for name in ("pixel_weight", "perceptual_weight", "delta_weight", "w_disc_weight", "latent_weight"):
        p.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(d, name))
    p.add_argument("--data", choices=("renders", "samples", "mix"), default=d.data)
    p.add_argument("--perceptual", default=d.perceptual)
    p.add_argument("--restyle", action="store_true", help="train a ReStyle encoder (6 input channels)")
    p.add_argument("--bootstrap", default="", help="ReStyle: start the steps from this encoder's inversion "
                                                   "(registered name or file, e.g. e4e-toyfaces)")
    p.add_argument("--full-precision", action="store_true", help="export float32 weights (default float16)")


def _add_own_fields(p: argparse.ArgumentParser, d, base, skip=()) -> None:
    """One option per field the config adds to ``base`` (booleans take true/false)."""
    own = {f.name for f in dataclasses.fields(base)}
    for f in dataclasses.fields(d):
        if f.name in own or f.name in skip:
            continue
        value = getattr(d, f.name)
        kind = _bool if isinstance(value, bool) else (type(value) if value is not None else int)
        p.add_argument("--" + f.name.replace("_", "-"), type=kind, default=value, help=f"(default {value})")


def build_parser() -> argparse.ArgumentParser:
    from .skeleton import StepsConfig

    parser = argparse.ArgumentParser(prog="python -m stylekit.train", description="Train stylekit's networks.")
    sub = parser.add_subparsers(dest="command", required=True)
    helps = {"gan": "adversarial training (StyleGAN2: logistic loss, R1, EMA, style mixing)",
             "supervised": "toyfaces pretraining: regress G(z) onto renders of z's attributes",
             "encoder": "an e4e (or ReStyle) encoder for a StyleGAN generator",
             "clip": "the toyfaces CLIP (contrastive, with hard-negative captions)",
             "predictor": "the toyfaces attribute predictor (renders made on the fly)",
             "rig": "a rig network (StyleRig-style rig control) for the toyfaces generator, through the predictor",
             "styleflow": "a StyleFlow flow (conditional CNF between W and a Gaussian) on labelled codes"}
    for kind in TRAINERS:
        d = _config_class(kind)(**_CLI_DEFAULTS.get(kind, {}))
        p = sub.add_parser(kind, help=helps[kind])
        _add_common(p, d)
        if kind in ("gan", "supervised"):
            _add_kimg(p, d)
            (_add_gan if kind == "gan" else _add_supervised)(p, d)
            continue
        _add_steps(p, d)
        if kind == "encoder":
            _add_encoder(p, d)
        else:
            _add_own_fields(p, d, StepsConfig, skip=("templates", "command"))

    f = sub.add_parser("fd", help="toyfaces Fréchet distance of a generator (samples vs renders, and the floor)")
    f.add_argument("generator", help="generator file or registered name")
    f.add_argument("--n", type=int, default=1000)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--truncation", type=float, default=1.0)
    f.add_argument("--threads", type=int, default=2)

    e = sub.add_parser("clip-eval", help="held-out zero-shot accuracy of toyfaces CLIP weights (JSON)")
    e.add_argument("weights", help="a clip.safetensors file")
    e.add_argument("--per-class", type=int, default=200, help="held-out faces per class")
    e.add_argument("--seed", type=int, default=1234, help="seed of the held-out set")
    e.add_argument("--threads", type=int, default=1)

    from .world import REFIT

    w = sub.add_parser("world", help="install a new toyfaces generator and refit every shipped file that depends on "
                                     "it (stylekit.train.world)")
    w.add_argument("--generator", required=True, help="the new generator's file")
    w.add_argument("--out", required=True, help="run folder (a sub-folder per stage, and world.json)")
    w.add_argument("--weights", default=None, help="weights folder to refit (default: the package's own, which "
                                                   "needs --overwrite-shipped)")
    w.add_argument("--stages", default="", help="comma-separated stages to run (default: all, in order: "
                                                + ", ".join(s.name for s in REFIT) + ")")
    w.add_argument("--scale", type=float, default=1.0, help="multiply every stage's length (a quick rehearsal)")
    w.add_argument("--threads", type=int, default=1)
    w.add_argument("--device", default="cpu", help="where every stage computes (e.g. cuda)")
    w.add_argument("--precision", choices=("fp32", "bf16", "fp16", "auto"), default="fp32",
                   help="the trainers' compute precision (files are written float32)")
    w.add_argument("--overwrite-shipped", action="store_true")
    w.add_argument("--dry-run", action="store_true", help="print the stages' commands and stop")
    return parser


def config_from_args(args: argparse.Namespace, argv: list[str] | None = None):
    """The trainer config that parsed arguments describe (``argv`` is recorded where a trainer keeps it)."""
    cls = _config_class(args.command)
    values = dict(vars(args))
    values.pop("command")
    if args.command == "encoder":
        from ..networks.encoders import FFHQ_CONFIG, TOYFACES_CONFIG

        values["encoder_config"] = dict(FFHQ_CONFIG if args.preset == "ffhq" else TOYFACES_CONFIG)
        values["half_export"] = not args.full_precision
    if args.command in ("predictor", "rig", "styleflow") and argv is not None:
        values["command"] = "python -m stylekit.train " + " ".join(shlex.quote(a) for a in argv)
    return cls.from_dict(values)


# ------------------------------------------------------------------------------------------------
# Running


def _print_json(value) -> None:
    print(json.dumps(value, indent=2))


def _train(args, argv: list[str]) -> int:
    """Run one trainer. Under ``torchrun`` / ``accelerate launch`` the process group is joined here,
    kept for the whole run and left at the end; only rank 0 prints the result."""
    from .distributed import connect

    cfg = config_from_args(args, argv)
    dist, _ = connect(cfg.device)
    try:
        result = _run_trainer(args.command, cfg, main=dist.is_main)
    finally:
        dist.close()
    if dist.is_main:
        print(json.dumps(result, indent=1 if args.command == "predictor" else 2))
    return 0


def _run_trainer(command: str, cfg, *, main: bool = True) -> dict:
    """Train with ``cfg``; returns what the command prints (on rank 0, ``main``; other ranks write no files)."""
    log = lambda line: print(line, flush=True)  # noqa: E731
    if command == "gan":
        from .gan import train_gan

        return train_gan(cfg, log=log)
    if command == "supervised":
        from .supervised import train_supervised

        return train_supervised(cfg, log=log)
    if command == "encoder":
        from .encoder import train_encoder

        from safetensors import safe_open

        train_encoder(cfg, log=log)
        path = f"{cfg.out}/encoder.safetensors"
        if not main:  # only rank 0 writes the file
            return {"encoder": path, "out": cfg.out}
        with safe_open(path, "pt") as f:  # the last held-out evaluation, recorded in the file
            meta = f.metadata() or {}
        return {"encoder": path, "out": cfg.out, "eval_psnr": float(meta.get("eval_psnr", "nan"))}
    if command == "clip":
        from .clip import train_clip

        return {k: v for k, v in train_clip(cfg, log=log).items() if k != "history"}
    if command == "rig":
        from .rig import train_rig

        return train_rig(cfg, log=log)
    if command == "styleflow":
        from .styleflow import train_styleflow

        return train_styleflow(cfg, log=log)
    from .predictor import train_predictor

    metrics = train_predictor(cfg, log=log)
    return {"clean": metrics["clean"]["accuracy"] | metrics["clean"]["r2"]} if metrics else {}


def _evaluate(args) -> int:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.command == "fd":
        from ..checkpoints.load import load_generator
        from .metrics import toyfaces_fd

        result = toyfaces_fd(load_generator(args.generator), n=args.n, seed=args.seed, truncation_psi=args.truncation)
        result["ratio"] = result["fd_samples"] / max(result["fd_floor"], 1e-12)
    else:
        import time

        from .clip import evaluate_clip

        t0 = time.time()
        result = evaluate_clip(args.weights, per_class=args.per_class, seed=args.seed)
        result["seconds"] = round(time.time() - t0, 1)
    _print_json(result)
    return 0


def _world(args) -> int:
    from .world import WorldConfig, plan, refit_world

    cfg = WorldConfig(generator=args.generator, out=args.out, weights=args.weights,
                      stages=tuple(s for s in args.stages.split(",") if s), scale=args.scale, threads=args.threads,
                      device=args.device, precision=args.precision, overwrite_shipped=args.overwrite_shipped)
    if args.dry_run:
        for stage, argv in plan(cfg):
            prefix = "python -m stylekit relevance" if stage.trainer == "relevance" else "python -m stylekit.train"
            print(f"# {stage.name}: {stage.why}\n{prefix} {shlex.join(argv)}")
        return 0
    _print_json(refit_world(cfg, log=lambda line: print(line, flush=True)))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        if args.command == "world":
            return _world(args)
        return _train(args, argv) if args.command in TRAINERS else _evaluate(args)
    except StylekitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
