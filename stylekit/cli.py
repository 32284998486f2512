"""Command line: ``python -m stylekit {convert,info,generate,relevance,models,invert,edit,label,fit-boundary,rehearsal} ...``.

Parsing lives here; every command calls a plain library function. The batch commands (``invert``,
``edit``, ``label``, ``relevance``) call :mod:`stylekit.jobs`: launched with several processes
(``torchrun --nproc_per_node N -m stylekit ...``) each process does its share, plainly they do all.
Each subcommand is one ``_add_<name>(sub)`` function listed in :data:`COMMANDS`; a new one is a new
function and a new entry.
"""

from __future__ import annotations

import argparse
import json
import sys

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
    from .networks.cpu_memory import allocator

    G = load_generator(args.file, precision=args.precision)
    if args.json:
        print(json.dumps({"arch": G.arch, "config": G.config, "precision": G.precision, "cpu_malloc": allocator(),
                          "num_ws": G.num_ws,
                          "img_resolution": G.img_resolution,
                          "z_dim": G.z_dim, "w_dim": G.w_dim, "c_dim": G.c_dim,
                          "style_layers": [[s.name, s.ws_index, s.channels, s.kind] for s in G.style_layers]}, indent=2))
    else:
        print(G.describe())
        print(f"CPU memory: {allocator()} (STYLEKIT_CPU_MALLOC; see stylekit.networks.cpu_memory)")
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


def _in_shard(job):
    """Run ``job(shard)`` on this process's shard, inside a gloo group when torchrun launched several processes."""
    from .jobs.shard import current_shard, join_group, leave_group

    shard = current_shard()
    joined = join_group(shard)
    try:
        return job(shard)
    finally:
        leave_group(joined)


def _report(summary: dict, what: str, out) -> None:
    """One line per rank on stderr; the merged manifest's counts on stdout (rank 0 / a plain run)."""
    print(f"rank {summary['rank']}/{summary['world_size']}: {summary['processed']} {what} done, "
          f"{summary['skipped']} already there, {summary.get('failed', 0)} unusable, {summary['seconds']:.2f} s",
          file=sys.stderr, flush=True)
    m = summary.get("manifest")
    if m is not None:
        tail = "" if m["complete"] else f"; {m['missing']} not done yet (run the command again, or wait for the ranks)"
        print(f"wrote {out}: {m['count']} {what} done, {m['failed']} listed in the report, {m['seconds']:.2f} s{tail}")


def _cmd_relevance(args) -> int:
    from .jobs.relevance import relevance_sharded
    from .text.relevance import LowRankOptions

    method = LowRankOptions(rank=args.rank) if args.method == "lowrank" else args.method
    summary = _in_shard(lambda shard: relevance_sharded(
        args.model, args.clip, args.out, pretrained=args.pretrained, method=method, n_images=args.n_images,
        seed=args.seed, batch_size=args.batch_size, chunk_images=args.chunk_images, device=args.device, shard=shard))
    _report(summary, "image chunks", f"{summary['parts']}/manifest.json")
    if summary["table"] is not None:
        meta = summary["meta"]
        extra = f", captured energy {meta['captured_energy']:.3f}" if meta.get("captured_energy") is not None else ""
        print(f"wrote {summary['table']} ({args.n_images} codes, {meta['seconds']:.1f} s of work{extra})")
    return 0


def _cmd_invert(args) -> int:
    from .jobs.inversion import invert_folder

    options = {}
    if args.steps is not None:
        options["steps"] = args.steps
    if args.encoder is not None:
        options["encoder"] = args.encoder
    if args.method in ("optimize", "pti"):
        options["seed"] = args.seed
    summary = _in_shard(lambda shard: invert_folder(
        args.model, args.input, args.output, method=args.method, space=args.space, batch_size=args.batch_size,
        align=args.align, device=args.device, shard=shard, **options))
    _report(summary, "images", f"{args.output}/manifest.json")
    return 0


def _cmd_edit(args) -> int:
    from .jobs.editing import edit_latents

    summary = _in_shard(lambda shard: edit_latents(
        args.model, args.latents, args.output, direction=args.direction,
        strengths=list(args.strength), layers=args.layers, device=args.device, shard=shard))
    _report(summary, "latents", f"{args.output}/manifest.json")
    return 0


def _cmd_label(args) -> int:
    from .jobs.label import label_samples

    summary = _in_shard(lambda shard: label_samples(
        args.model, args.output, scorer=args.scorer, n=args.n, seed=args.seed, psi=args.psi,
        chunk_size=args.chunk_size, batch_size=args.batch_size, predictor=args.predictor, clip=args.clip,
        device=args.device, shard=shard))
    _report(summary, "chunks", f"{args.output}.parts/manifest.json")
    if summary["labels"] is not None:
        print(f"wrote {summary['labels']} ({args.n} codes)")
    return 0


def _cmd_fit_boundary(args) -> int:
    from .edit.interfacegan import save_boundary
    from .jobs.label import fit_from_labels

    boundary = fit_from_labels(args.labels, args.attribute, keep_fraction=args.keep_fraction,
                               threshold=args.threshold, method=args.method,
                               validation_fraction=args.validation_fraction)
    out = save_boundary(boundary, args.output)
    val = f", validation accuracy {boundary.meta['val_accuracy']:.3f}" if "val_accuracy" in boundary.meta else ""
    print(f"wrote {out} (boundary {boundary.name!r} from {boundary.meta['n_sampled']} codes, "
          f"train accuracy {boundary.meta['train_accuracy']:.3f}{val})")
    return 0


def _cmd_rehearsal(args) -> int:
    from .rehearsal.__main__ import main as rehearsal_main

    return rehearsal_main(args.rest)


def _cmd_video(args) -> int:
    from .checkpoints.load import load_generator
    from .jobs.editing import resolve_direction
    from .video import edit_video, flicker, read_video, write_video

    G = load_generator(args.model, device=args.device)
    frames, fps = read_video(args.input)
    direction = resolve_direction(args.direction, G) if args.direction else None
    if direction is None and args.strength != 0:
        raise InvalidArgumentError("--strength needs --direction (a direction file or a registered name).")

    def progress(done, total, what):
        print(f"\r{what}: {done}/{total}", end="", file=sys.stderr, flush=True)

    landmarks = None
    if args.landmarks:
        import numpy as np

        if not args.align:
            raise InvalidArgumentError("--landmarks needs --align (they place the face crops).")
        try:
            landmarks = np.load(args.landmarks, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InvalidArgumentError(f"--landmarks {args.landmarks}: not a readable .npy array ({exc}); save a "
                                       "float array [frames, 68, 2] with numpy.save (NaN rows: no face).") from None
    encoder = None if args.encoder.lower() in ("none", "optimize") else args.encoder
    result = edit_video(G, frames, encoder=encoder, direction=direction, strength=args.strength,
                        layers=args.layers, sigma=args.sigma, align=args.align, landmarks=landmarks,
                        align_sigma=args.align_sigma, pti_steps=args.pti_steps, progress=progress, device=args.device)
    print(file=sys.stderr)
    write_video(args.output, result.edited_uint8(), fps)
    summary = {"frames": result.frames_done, "fps": fps, "psnr_mean_db": float(result.psnr.mean()),
               "flicker_source": flicker(result.source), "flicker_reconstruction": flicker(result.reconstruction),
               "flicker_edited": flicker(result.edited), "inversion": result.meta["inversion"],
               "pti_steps": result.meta.get("pti_steps", 0), "seconds": result.meta["seconds"],
               "output": str(args.output)}
    if args.align:
        summary["frames_without_face"] = result.meta["frames_without_face"]
    print(json.dumps(summary, indent=1))
    return 0


def _add_video(sub) -> None:
    from .video.presets import ALIGN, VIDEO_PTI

    p = sub.add_parser("video", help="invert a clip frame by frame, smooth the latents over time, apply one edit to "
                                     "every frame and write the result (mp4 / webm / gif)")
    p.add_argument("input", help="a video file (mp4, webm, mov, gif; at most 300 frames and 2048 px)")
    p.add_argument("output", help="the edited clip; the codec follows the suffix (.mp4, .webm, .gif, ...)")
    p.add_argument("--model", default="toyfaces", help="registered name, checkpoint path or hf:// address")
    p.add_argument("--encoder", default="e4e-toyfaces",
                   help="a one-pass encoder for the model (registered name or file), or 'none': invert by "
                        "optimisation warm-started frame to frame (models without an encoder, e.g. StyleGAN3)")
    p.add_argument("--direction", default=None,
                   help="a direction file (.npy / .pt / .safetensors, e.g. from fit-boundary) or a registered name; "
                        "without it the clip is reconstructed")
    p.add_argument("--strength", type=float, default=0.0, help="how far along the direction (default 0)")
    p.add_argument("--layers", default=None, help="W+ rows: 'all', 'coarse', 'middle+fine', '4-7' (default: all)")
    p.add_argument("--sigma", type=float, default=1.0, help="Gaussian smoothing of the latents, in frames (0: none)")
    p.add_argument("--align", action="store_true",
                   help="real faces: find the face in every frame (dlib, pip install 'stylekit[align]'), crop FFHQ's "
                        "square smoothed over time, and paste the edited face back into the full frames")
    p.add_argument("--landmarks", default=None,
                   help="with --align: a .npy float array [frames, 68, 2] from your own detector (NaN rows: no face) "
                        "instead of dlib")
    p.add_argument("--align-sigma", type=float, default=ALIGN.sigma,
                   help=f"smoothing of the face squares, in frames (default {ALIGN.sigma:g})")
    p.add_argument("--pti-steps", type=int, default=0,
                   help="PTI over the clip: tune one generator copy on every frame, fitting each this many times "
                        f"(0: off; {VIDEO_PTI.steps_per_frame} is the tuned preset)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_cmd_video)


def _add_rehearsal(sub) -> None:
    p = sub.add_parser("rehearsal", add_help=False,
                       help="build the full-size random-weight rehearsal world in DIR (python -m stylekit rehearsal "
                            "--help for its options)")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_cmd_rehearsal)


def _add_convert(sub) -> None:
    p = sub.add_parser("convert", help="convert any supported checkpoint to canonical safetensors")
    p.add_argument("input", help="a .pkl / .pt / .safetensors file, a registered name or hf://owner/repo/file")
    p.add_argument("output", help="the .safetensors file to write")
    p.set_defaults(func=_cmd_convert)


def _add_info(sub) -> None:
    p = sub.add_parser("info", help="print a checkpoint's architecture")
    p.add_argument("file", help="a checkpoint file, a registered name or hf://owner/repo/file")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="compute precision to report (default auto: what this machine would use)")
    p.set_defaults(func=_cmd_info)


def _add_generate(sub) -> None:
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


def _add_relevance(sub) -> None:
    p = sub.add_parser("relevance", help="compute a global-directions relevance table (StyleCLIP preprocessing); "
                                         "split over ranks by image under torchrun, resumable")
    p.add_argument("--model", default="toyfaces", help="registered name, checkpoint path or hf:// address")
    p.add_argument("--clip", default="toyfaces", help="CLIP name: 'toyfaces', an open_clip architecture or hf-hub:...")
    p.add_argument("--pretrained", default=None, help="open_clip pretrained tag or weights path")
    p.add_argument("--method", default="lowrank", choices=["lowrank", "jacobian", "difference", "reference"])
    p.add_argument("--n-images", type=int, default=100, help="random codes averaged over (StyleCLIP: 100)")
    p.add_argument("--rank", type=int, default=32, help="probes per code (lowrank)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--chunk-images", type=int, default=None,
                   help="images per resumable partial file in OUT.parts/ (default: the batch size)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None, help="file to write (default: the cache that relevance_for reads)")
    p.set_defaults(func=_cmd_relevance)


def _add_models(sub) -> None:
    p = sub.add_parser("models", help="list the artifact registry by kind (generators, encoders, CLIPs, ...)")
    p.add_argument("--kind", choices=KINDS, default=None, help="list only this kind")
    p.add_argument("--settings", action="store_true", help="also list the environment variables stylekit reads")
    p.set_defaults(func=_cmd_models)


def _add_invert(sub) -> None:
    from .invert import METHODS

    p = sub.add_parser("invert", help="invert every image of a folder (latents, reconstructions, manifest); "
                                      "sharded under torchrun, resumable")
    p.add_argument("input", help="folder of images (every file is tried; unusable ones go to OUT/report.json)")
    p.add_argument("output", help="output folder: latents/, images/, manifest.json, report.json")
    p.add_argument("--model", default="toyfaces", help="registered name, checkpoint path or hf:// address")
    p.add_argument("--method", default="encoder", choices=list(METHODS))
    p.add_argument("--space", default="w+", choices=["w", "w+"], help="latent space (optimize, PTI's pivot)")
    p.add_argument("--steps", type=int, default=None, help="method steps (default: the method's preset)")
    p.add_argument("--encoder", default=None, help="encoder name or file (encoder, restyle; PTI's encoder pivot)")
    p.add_argument("--batch-size", type=int, default=8, help="images inverted together")
    p.add_argument("--align", action="store_true", help="FFHQ-align faces first (needs dlib); faceless images "
                                                        "go to the report")
    p.add_argument("--seed", type=int, default=0, help="seed of optimize / PTI")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_cmd_invert)


def _add_edit(sub) -> None:
    p = sub.add_parser("edit", help="apply a direction at one or more strengths to saved latents; sharded, resumable")
    p.add_argument("latents", help="an invert output folder, a folder of latent files, or one latent file")
    p.add_argument("output", help="output folder: latents/, images/, manifest.json")
    p.add_argument("--model", default="toyfaces", help="registered name, checkpoint path or hf:// address")
    p.add_argument("--direction", required=True,
                   help="a direction file (.npy / .pt / .safetensors, e.g. from fit-boundary) or a registered name")
    p.add_argument("--strength", type=float, nargs="+", default=[1.0], help="one or more strengths, e.g. 2 or -3 -1.5 1.5 3")
    p.add_argument("--layers", default=None, help="W+ rows: 'all', 'coarse', 'middle+fine', '4-7' (default: all)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_cmd_edit)


def _add_label(sub) -> None:
    p = sub.add_parser("label", help="InterFaceGAN's sample-and-label step: score N seeded codes into a labels file; "
                                     "sharded in resumable chunks")
    p.add_argument("output", help="labels file to write (.safetensors); chunks go to OUTPUT.parts/")
    p.add_argument("--model", default="toyfaces", help="registered name, checkpoint path or hf:// address")
    p.add_argument("--scorer", default="predictor",
                   help="'predictor' (every attribute), 'predictor:smile,glasses', or 'clip:POSITIVE|NEUTRAL'")
    p.add_argument("--samples", "--n", dest="n", type=int, default=4000,
                   help="codes to sample (code j is seed SEED + j); under torchrun write --samples, since torchrun "
                        "reads --n as an abbreviation of its own options")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--psi", type=float, default=1.0, help="truncation psi of the samples (1 = none)")
    p.add_argument("--chunk-size", type=int, default=1000, help="codes per resumable chunk file")
    p.add_argument("--batch-size", type=int, default=64, help="images rendered and scored at once")
    p.add_argument("--predictor", default="toyfaces", help="attribute predictor name or file")
    p.add_argument("--clip", default="toyfaces", help="CLIP name for clip: scorers")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_cmd_label)


def _add_fit_boundary(sub) -> None:
    p = sub.add_parser("fit-boundary", help="fit an InterFaceGAN boundary from a labels file")
    p.add_argument("labels", help="a labels file from python -m stylekit label")
    p.add_argument("output", help="boundary file: .safetensors / .pt (keep the offset) or .npy (InterFaceGAN's layout)")
    p.add_argument("--attribute", default=None, help="score column (needed when the file has several)")
    p.add_argument("--keep-fraction", type=float, default=None, help="top / bottom fraction kept (default: preset)")
    p.add_argument("--threshold", type=float, default=None, help="instead, label every code score > threshold")
    p.add_argument("--method", default=None, choices=["svm", "logistic"], help="default: the preset's")
    p.add_argument("--validation-fraction", type=float, default=0.0)
    p.set_defaults(func=_cmd_fit_boundary)


#: every subcommand's parser builder, in the order ``--help`` lists them
COMMANDS = [_add_convert, _add_info, _add_generate, _add_relevance, _add_models, _add_invert, _add_edit, _add_label,
            _add_fit_boundary, _add_video, _add_rehearsal]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stylekit", description="StyleGAN inversion and editing toolkit.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["rehearsal"]:  # its own parser reads every option (argparse's REMAINDER drops a leading --help)
        return _cmd_rehearsal(argparse.Namespace(rest=argv[1:]))
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except StylekitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
