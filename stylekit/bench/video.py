"""Video editing on toyfaces clips: reconstruction, flicker and per-frame edit success (``python -m stylekit.bench
video``).

Each clip (:func:`stylekit.toyfaces.clips.make_clip`: a head turn, a smile, a blink) is one face drawn from a
report seed (:func:`stylekit.bench.stats.report_seeds` from ``7,000,000 + REPORT_OFFSET`` = 7,700,000), run
through :func:`stylekit.video.edit_video` with the shipped e4e encoder, with and without temporal smoothing
(``sigma`` 0 and the pipeline's default), and edited with an InterFaceGAN boundary (default: glasses, fitted
with the toyfaces predictor on development seeds; glasses are added where the face has none and removed where
it has them, at strength 1: tuned on development clips (head turns of seeds 5000-5003, 8 frames, sigma 1), where
0.75 / 1 / 1.5 / 2 gave judge success 0.88 / 0.88 / 0.69 / 0.28 and 1 crossed on every frame; the Edit tab's
default 3 broke the inverted faces).

Metrics (intervals: bootstrap over clips for means, Wilson over frames for rates):

- ``<kind>_psnr_sigma<s>``: reconstruction PSNR (dB) against the source frames;
- ``<kind>_flicker_excess_sigma<s>``: the reconstruction's flicker minus the source's (mean absolute
  frame-to-frame change, 0..255; 0 = as steady as the source), and the same for the edited clip;
- ``<kind>_edit_success_sigma<s>``: frames whose edit succeeds by the held-out judge's rule
  (:mod:`stylekit.bench.judging`: the target crosses, still a face, the other attributes kept), the edited frame
  against the unedited reconstruction; ``<kind>_edit_all_frames_sigma<s>``: clips where every frame succeeds.
- ``<kind>_sigma<s>_pti_*``: the same measures with PTI over the clip (one generator copy tuned on every frame,
  ``--pti-steps`` fits a frame, default :data:`stylekit.video.presets.VIDEO_PTI`) at the default smoothing, and
  the paired per-clip differences against the same clips without PTI: ``..._pti_psnr_gain`` (dB) and
  ``..._pti_flicker_change`` (the reconstruction's flicker, of 255).

The judge never trained or tuned anything here; the smoothing default (1 frame) was picked by looking at
development seed 5's head turn.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from .stats import mean_metrics, rate_metrics, report_seeds

REPORT_OFFSET = 700_000
KINDS = ("turn", "smile", "blink")
SIGMAS = (0.0, 1.0)
DEV_FIT_SEED = 2000  # development seed of the boundary's sampled codes


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clips", type=int, default=8, help="clips per kind (default 8)")
    p.add_argument("--frames", type=int, default=16, help="frames per clip (default 16)")
    p.add_argument("--attribute", default="glasses", help="the binary attribute the edit adds or removes")
    p.add_argument("--strength", type=float, default=1.0, help="W distance along the boundary (default 1)")
    p.add_argument("--n-fit", type=int, default=None, help="codes sampled for the boundary (default: the preset)")
    p.add_argument("--judge", default="toyfaces", help="held-out judge (name or file; default: the shipped one)")
    p.add_argument("--pti-steps", type=int, default=None,
                   help="PTI fits per frame of the PTI row (default: the VIDEO_PTI preset; 0: no PTI row)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="2 clips of 8 frames per kind, a 1,000-code boundary")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(args) -> dict[str, float]:
    import stylekit
    from stylekit.edit.interfacegan import find_boundary, predictor_scorer
    from stylekit.edit.presets import INTERFACEGAN
    from stylekit.judge.load import load_judge
    from stylekit.toyfaces.clips import make_clip
    from stylekit.video import edit_video, flicker
    from stylekit.video.pipeline import DEFAULT_SIGMA
    from stylekit.video.presets import VIDEO_PTI

    from .judging import edit_outcomes

    torch.set_num_threads(args.threads)
    clips, frames = (2, 8) if args.quick else (args.clips, args.frames)
    n_fit = args.n_fit or (1000 if args.quick else INTERFACEGAN.n)
    t0 = time.perf_counter()
    G = stylekit.load_generator("toyfaces")
    judge = load_judge(args.judge)
    boundary = find_boundary(G, predictor_scorer(args.attribute), n=n_fit, seed=DEV_FIT_SEED, name=args.attribute)
    _log(f"boundary for {args.attribute}: {time.perf_counter() - t0:.1f} s")
    out: dict[str, float] = {"clips_per_kind": float(clips), "frames_per_clip": float(frames),
                             "strength": args.strength, "n_fit": float(n_fit),
                             "report_seed_first": float(report_seeds(1, REPORT_OFFSET).start)}
    pti_steps = VIDEO_PTI.steps_per_frame if args.pti_steps is None else args.pti_steps
    out["pti_steps_per_frame"] = float(pti_steps)
    rows = [(sigma, 0) for sigma in SIGMAS] + ([(DEFAULT_SIGMA, pti_steps)] if pti_steps else [])
    seeds = report_seeds(len(KINDS) * clips, REPORT_OFFSET)
    for k, kind in enumerate(KINDS):
        plain = {}  # sigma -> per-clip (psnr, flicker excess) without PTI, for the paired differences
        for sigma, steps in rows:
            tag = f"{kind}_sigma{sigma:g}" + ("_pti" if steps else "")
            psnr, excess, excess_edit, success, every = [], [], [], [], []
            for seed in seeds[k * clips:(k + 1) * clips]:
                source, attrs = make_clip(kind, frames=frames, seed=seed)
                sign = 1.0 if attrs[args.attribute][0] < 0.5 else -1.0
                result = edit_video(G, source, direction=boundary, strength=sign * args.strength, sigma=sigma,
                                    pti_steps=steps)
                psnr.append(float(result.psnr.mean()))
                excess.append(flicker(result.reconstruction) - flicker(source))
                excess_edit.append(flicker(result.edited) - flicker(source))
                ok = edit_outcomes(judge, result.reconstruction, result.edited, args.attribute, sign)["success"]
                success.append(ok)
                every.append(bool(ok.all()))
            out.update(mean_metrics(f"{tag}_psnr", psnr))
            out.update(mean_metrics(f"{tag}_flicker_excess", excess))
            out.update(mean_metrics(f"{tag}_flicker_excess_edited", excess_edit))
            out.update(rate_metrics(f"{tag}_edit_success", np.concatenate(success)))
            out.update(rate_metrics(f"{tag}_edit_all_frames", every))
            line = (f"{tag}: PSNR {np.mean(psnr):.2f} dB, flicker excess {np.mean(excess):+.2f} (edited "
                    f"{np.mean(excess_edit):+.2f}), edit success {np.concatenate(success).mean():.2f}")
            if steps:
                base_psnr, base_excess = plain[sigma]
                out.update(mean_metrics(f"{tag}_psnr_gain", np.subtract(psnr, base_psnr)))
                out.update(mean_metrics(f"{tag}_flicker_change", np.subtract(excess, base_excess)))
                line += f"; PTI gain {np.mean(np.subtract(psnr, base_psnr)):+.2f} dB"
            else:
                plain[sigma] = (psnr, excess)
            _log(line)
    out["seconds"] = time.perf_counter() - t0
    return out


def main(argv=None) -> int:
    """Standalone entry point (``python -m stylekit.bench.video``); same as ``python -m stylekit.bench video``."""
    from .__main__ import main as dispatch

    return dispatch(["video", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
