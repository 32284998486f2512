"""Command line: ``python -m stylekit {convert,info,generate,relevance,models} ...``.

Parsing lives here; every command calls a plain library function.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from .errors import InvalidArgumentError, StylekitError
from .registry import KINDS


def parse_seeds(text: str) -> list[int]:
    """``"0-3,10,12-13"`` -> ``[0, 1, 2, 3, 10, 12, 13]``."""
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                lo, hi = part.split("-", 1)
                lo_i, hi_i = int(lo), int(hi)
                if hi_i < lo_i:
                    raise InvalidArgumentError(f"seed range {part!r} runs backwards; write it low-high.")
                seeds.extend(range(lo_i, hi_i + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise InvalidArgumentError(f"cannot read seeds {text!r}: use numbers and ranges like 0-7,10.") from None
    if not seeds:
        raise InvalidArgumentError("no seeds given: use e.g. --seeds 0-7.")
    if any(s < 0 or s >= 2**32 for s in seeds):
        raise InvalidArgumentError("seeds must be between 0 and 2**32 - 1.")
    return seeds


def generate_grid(model, seeds, *, psi: float = 1.0, noise_mode: str = "const", device="cpu", ncols=None,
                  class_idx: int | None = None):
    """Generate one image per seed and tile them; returns ``(grid_tensor [3, H', W'], images [N, 3, R, R])``."""
    import torch

    from .checkpoints.load import load_generator
    from .images import make_grid
    from .latent import Latent

    G = load_generator(model, device=device)
    z = Latent.seed_z(G, seeds, device=device)
    c = None
    if G.c_dim > 0:
        if class_idx is None or not 0 <= class_idx < G.c_dim:
            raise InvalidArgumentError(f"this generator is conditional: pass --class between 0 and {G.c_dim - 1}.")
        c = torch.zeros([len(seeds), G.c_dim], device=device)
        c[:, class_idx] = 1
    images = []
    with torch.no_grad():
        for i in range(0, len(seeds), 8):
            ws = G.mapping(z[i:i + 8], None if c is None else c[i:i + 8], truncation_psi=psi)
            images.append(G.synthesis(ws, noise_mode=noise_mode).cpu())
    images = torch.cat(images)
    return make_grid(images, ncols=ncols), images


def _cmd_convert(args) -> int:
    from .checkpoints.canonical import save_generator
    from .checkpoints.load import load_generator

    G = load_generator(args.input)
    out = save_generator(G, args.output, extra_metadata={"converted_from": str(args.input)})
    print(f"wrote {out} ({G.arch}, {G.img_resolution}x{G.img_resolution}, {sum(p.numel() for p in G.parameters()):,} parameters)")
    return 0


def _cmd_info(args) -> int:
    from .checkpoints.load import load_generator

    G = load_generator(args.file, precision=args.precision)
    if args.json:
        print(json.dumps({"arch": G.arch, "config": G.config, "precision": G.precision, "num_ws": G.num_ws,
                          "img_resolution": G.img_resolution,
                          "z_dim": G.z_dim, "w_dim": G.w_dim, "c_dim": G.c_dim,
                          "style_layers": [[s.name, s.ws_index, s.channels, s.kind] for s in G.style_layers]}, indent=2))
    else:
        print(G.describe())
    return 0


def _cmd_generate(args) -> int:
    from .images import tensor_to_pil

    if not 0.0 <= args.psi <= 2.0:
        raise InvalidArgumentError(f"--psi {args.psi} is out of range; use a value between 0 and 2 (1 = no truncation).")
    grid, _ = generate_grid(args.model, parse_seeds(args.seeds), psi=args.psi, noise_mode=args.noise_mode,
                            device=args.device, ncols=args.cols, class_idx=args.class_idx)
    tensor_to_pil(grid).save(args.out)
    print(f"wrote {args.out}")
    return 0


def _cmd_models(args) -> int:
    from .registry import KINDS, list_artifacts
    from .settings import VARIABLES

    kinds = [args.kind] if args.kind else KINDS
    for kind in kinds:
        artifacts = list_artifacts(kind)
        if not artifacts:
            continue
        print(f"{kind}s:")
        for a in artifacts:
            flag = "verified" if a.verified else "UNVERIFIED"
            print(f"  {a.name:<20} {a.format:<22} {flag:<10} {a.source}")
            extra = f"  (with: {', '.join(f'{r} {n}' for r, n in a.companions.items())})" if a.companions else ""
            print(f"  {'':<20} {a.description}; licence: {a.licence}{extra}")
    if args.settings:
        print("settings (environment variables):")
        for name, text in VARIABLES.items():
            print(f"  {name:<24} {text}")
    return 0


def _cmd_relevance(args) -> int:
    from .checkpoints.load import load_generator
    from .clip_backend import load_clip
    from .text import LowRankOptions, cache_path, compute_relevance, save_relevance

    G = load_generator(args.model, device=args.device)
    clip = load_clip(args.clip, args.pretrained, device=args.device)
    last = [0.0]

    def progress(step, total, message, **_):
        now = time.perf_counter()
        if now - last[0] > 5 or step == total:
            last[0] = now
            print(f"{message}: {step}/{total}", file=sys.stderr, flush=True)

    method = LowRankOptions(rank=args.rank) if args.method == "lowrank" else args.method
    table = compute_relevance(G, clip, method=method, n_images=args.n_images, seed=args.seed,
                              batch_size=args.batch_size, progress=progress)
    out = save_relevance(table, args.out or cache_path(G, clip))
    extra = f", captured energy {table.meta['captured_energy']:.3f}" if "captured_energy" in table.meta else ""
    print(f"wrote {out} ({table.num_channels} channels x {table.embed_dim} CLIP dimensions, {args.n_images} codes, "
          f"{table.meta['seconds']:.1f} s{extra})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stylekit", description="StyleGAN inversion and editing toolkit.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("convert", help="convert any supported checkpoint to canonical safetensors")
    p.add_argument("input", help="a .pkl / .pt / .safetensors file, a registered name or hf://owner/repo/file")
    p.add_argument("output", help="the .safetensors file to write")
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser("info", help="print a checkpoint's architecture")
    p.add_argument("file", help="a checkpoint file, a registered name or hf://owner/repo/file")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="compute precision to report (default auto: what this machine would use)")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("generate", help="write a grid of generated images")
    p.add_argument("--model", default="toyfaces", help="registered name, checkpoint path or hf:// address")
    p.add_argument("--seeds", default="0-7", help="e.g. 0-7 or 1,5,9")
    p.add_argument("--psi", type=float, default=1.0, help="truncation psi (1 = none)")
    p.add_argument("--noise-mode", default="const", choices=["const", "random", "none"])
    p.add_argument("--class", dest="class_idx", type=int, default=None, help="class index for conditional models")
    p.add_argument("--cols", type=int, default=None, help="grid columns")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="grid.png", help="output PNG")
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser("relevance", help="compute a global-directions relevance table (StyleCLIP preprocessing)")
    p.add_argument("--model", default="toyfaces", help="registered name, checkpoint path or hf:// address")
    p.add_argument("--clip", default="toyfaces", help="CLIP name: 'toyfaces', an open_clip architecture or hf-hub:...")
    p.add_argument("--pretrained", default=None, help="open_clip pretrained tag or weights path")
    p.add_argument("--method", default="lowrank", choices=["lowrank", "jacobian", "difference", "reference"])
    p.add_argument("--n-images", type=int, default=100, help="random codes averaged over (StyleCLIP: 100)")
    p.add_argument("--rank", type=int, default=32, help="probes per code (lowrank)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None, help="file to write (default: the cache that relevance_for reads)")
    p.set_defaults(func=_cmd_relevance)

    p = sub.add_parser("models", help="list the artifact registry by kind (generators, encoders, CLIPs, ...)")
    p.add_argument("--kind", choices=KINDS, default=None, help="list only this kind")
    p.add_argument("--settings", action="store_true", help="also list the environment variables stylekit reads")
    p.set_defaults(func=_cmd_models)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except StylekitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
