"""Command line: ``python -m stylekit.train {gan,supervised,fd} ...``.

Examples::

    python -m stylekit.train supervised --resolution 64 --batch 32 --kimg 100 --out runs/sup
    python -m stylekit.train gan --data toyfaces --resolution 64 --batch 32 --kimg 20 --out runs/ft \\
        --init runs/sup/generator.safetensors
    python -m stylekit.train gan --data path/to/images --resolution 64 --kimg 500 --out runs/mine
    python -m stylekit.train fd runs/sup/generator.safetensors --n 1000
"""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import StylekitError


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


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="run folder (checkpoints, samples, log, final generator)")
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--kimg", type=float, required=True, help="total training length in thousands of images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", default=None, help="checkpoint file or run folder to continue from")
    p.add_argument("--init", default=None, help="start G from this canonical generator .safetensors")
    p.add_argument("--z-dim", type=int, default=64)
    p.add_argument("--w-dim", type=int, default=64)
    p.add_argument("--map-layers", type=int, default=4)
    p.add_argument("--channel-base", type=int, default=4096)
    p.add_argument("--channel-max", type=int, default=128)
    p.add_argument("--g-channels", type=parse_channels, default=None, help="explicit G channels, e.g. 4:128,8:128,...")
    p.add_argument("--ema-kimg", type=float, default=1.0, help="half-life of the generator EMA")
    p.add_argument("--snapshot-kimg", type=float, default=4.0)
    p.add_argument("--log-kimg", type=float, default=0.5)
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--device", default="cpu")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stylekit.train", description="Train StyleGAN2 generators.")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("gan", help="adversarial training (StyleGAN2: logistic loss, R1, EMA, style mixing)")
    _add_common(g)
    g.add_argument("--data", default="toyfaces", help="'toyfaces' or a folder of images (any size)")
    g.add_argument("--mirror", action="store_true", help="x-flip augmentation (image folders)")
    g.add_argument("--glr", type=float, default=0.002)
    g.add_argument("--dlr", type=float, default=0.002)
    g.add_argument("--gamma", type=float, default=0.1, help="R1 weight")
    g.add_argument("--r1-interval", type=int, default=16)
    g.add_argument("--pl-weight", type=float, default=0.0, help="path-length regularisation weight (0 = off)")
    g.add_argument("--style-mixing", type=float, default=0.9)
    g.add_argument("--ema-rampup", type=float, default=None)
    g.add_argument("--d-channel-base", type=int, default=4096)
    g.add_argument("--d-channel-max", type=int, default=128)
    g.add_argument("--d-channels", type=parse_channels, default=None)

    s = sub.add_parser("supervised", help="toyfaces pretraining: regress G(z) onto renders of z's attributes")
    _add_common(s)
    s.add_argument("--lr", type=float, default=0.005)
    s.add_argument("--mapping-lr-scale", type=float, default=100.0, help="mapping network lr = lr * this")
    s.add_argument("--lr-rampdown-kimg", type=float, default=0.0)
    s.add_argument("--l1", type=float, default=1.0)
    s.add_argument("--multiscale", type=float, default=1.0)
    s.add_argument("--percep", type=float, default=0.1, help="weight of the predictor-feature term (0 = off)")
    s.add_argument("--adv", type=float, default=0.0, help="weight of an adversarial term (0 = off)")
    s.add_argument("--adv-start-kimg", type=float, default=0.0)
    s.add_argument("--gamma", type=float, default=0.1)
    s.add_argument("--noise-mode", default="random", choices=["random", "const", "none"])

    f = sub.add_parser("fd", help="toyfaces Fréchet distance of a generator (samples vs renders, and the floor)")
    f.add_argument("generator", help="generator file or registered name")
    f.add_argument("--n", type=int, default=1000)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--truncation", type=float, default=1.0)
    f.add_argument("--threads", type=int, default=2)

    args = parser.parse_args(argv)
    try:
        return _run(args)
    except StylekitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args) -> int:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.command == "fd":
        from ..checkpoints.load import load_generator
        from .metrics import toyfaces_fd

        G = load_generator(args.generator)
        result = toyfaces_fd(G, n=args.n, seed=args.seed, truncation_psi=args.truncation)
        result["ratio"] = result["fd_samples"] / max(result["fd_floor"], 1e-12)
        print(json.dumps(result, indent=2))
        return 0

    common = dict(out=args.out, resolution=args.resolution, batch=args.batch, kimg=args.kimg, seed=args.seed,
                  z_dim=args.z_dim, w_dim=args.w_dim, map_layers=args.map_layers, channel_base=args.channel_base,
                  channel_max=args.channel_max, g_channels=args.g_channels, init=args.init, ema_kimg=args.ema_kimg,
                  snapshot_kimg=args.snapshot_kimg, log_kimg=args.log_kimg, threads=args.threads, device=args.device)
    if args.command == "gan":
        from .loop import GanConfig, train_gan

        cfg = GanConfig(data=args.data, mirror=args.mirror, g_lr=args.glr, d_lr=args.dlr, r1_gamma=args.gamma,
                        r1_interval=args.r1_interval, pl_weight=args.pl_weight, style_mixing_prob=args.style_mixing,
                        ema_rampup=args.ema_rampup, d_channel_base=args.d_channel_base,
                        d_channel_max=args.d_channel_max, d_channels=args.d_channels, **common)
        result = train_gan(cfg, resume=args.resume)
    else:
        from .supervised import SupervisedConfig, train_supervised

        cfg = SupervisedConfig(lr=args.lr, mapping_lr_scale=args.mapping_lr_scale, lr_rampdown_kimg=args.lr_rampdown_kimg, l1_weight=args.l1,
                               multiscale_weight=args.multiscale, percep_weight=args.percep, adv_weight=args.adv,
                               adv_start_kimg=args.adv_start_kimg, r1_gamma=args.gamma, noise_mode=args.noise_mode,
                               **common)
        result = train_supervised(cfg, resume=args.resume)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
