"""Refit the toyfaces world around a new generator: one resumable command (issue 17, deliverable 4).

The toyfaces generator is the root of the offline world. The e4e, ReStyle and pSp encoders, the rig
network, the StyleFlow flow and the relevance table are trained or computed for it (and all but the
encoders refuse any other generator by its weights' fingerprint); the CLIP is fine-tuned on its samples
as well as on renders. Shipping a new generator therefore means refitting each of them, in order::

    python -m stylekit.train world --generator runs/sharp-n/generator.safetensors --out runs/world-sharp \\
        --overwrite-shipped

installs the generator in the weights folder (the package's ``stylekit/toyfaces/weights`` unless
``--weights DIR``), then runs the stages of :data:`REFIT` one after another, each a training command of
this package (fine-tuned from the file it replaces where that pays, as the model cards describe), and
copies each result into the weights folder as soon as it is done, so that later stages build on it (the
ReStyle encoder bootstraps from the new e4e encoder; the relevance table uses the new CLIP).

The run folder holds ``world.json``: the new generator's digest, and per finished stage its command line,
seconds and the trainer's own summary (the numbers for the model cards, which are written by hand). A rerun
skips the finished stages and resumes the interrupted one from its run folder's checkpoint; a different
generator is refused there. ``--scale`` multiplies every stage's length (a quick rehearsal of the whole
chain), ``--stages`` runs some, ``--dry-run`` prints the commands; ``--device`` and ``--precision`` go to
every stage. The benchmarks that compare the old world with the new one are run apart
(:data:`BENCH_COMMANDS`), before the install and after the refit.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import InvalidArgumentError

__all__ = ["Stage", "REFIT", "BENCH_COMMANDS", "WorldConfig", "plan", "refit_world"]

#: The encoders' image-loss settings (``encoder.md`` stage 2): half renders, half samples, pixel MSE, 0.8 x the
#: toyfaces predictor's perceptual distance, the latent term on samples.
_IMAGE_LOSSES = ("--batch", "8", "--data", "mix", "--pixel-weight", "1", "--perceptual-weight", "0.8",
                 "--latent-weight", "1")


@dataclass(frozen=True)
class Stage:
    """One refit: a training command whose result replaces one file of the weights folder.

    ``args`` may hold ``{generator}`` (the new generator), ``{old}`` (the file this stage replaces, before it
    does), ``{e4e}`` (the e4e encoder) and ``{clip}`` (the CLIP weights); ``steps`` is the length at
    ``--scale 1`` (for ``relevance``, the number of codes averaged over).
    """

    name: str
    trainer: str      # a ``python -m stylekit.train`` command, or 'relevance'
    file: str         # the file of the weights folder it writes
    steps: int
    args: tuple[str, ...] = ()
    output: str = ""  # what the trainer writes in its run folder (default: ``file``)
    why: str = ""


#: The refit, in order (a stage may use what the ones before it installed).
REFIT: tuple[Stage, ...] = (
    Stage("e4e", "encoder", "encoder.safetensors", 1100,
          ("--generator", "{generator}", "--init", "{old}", *_IMAGE_LOSSES), output="encoder.safetensors",
          why="encoder.md step 5: the shipped e4e fine-tuned against the new generator"),
    Stage("restyle", "encoder", "restyle_encoder.safetensors", 600,
          ("--restyle", "--generator", "{generator}", "--bootstrap", "{e4e}", "--init", "{old}", "--lr", "1e-4",
           *_IMAGE_LOSSES), output="encoder.safetensors",
          why="encoder.md step 6: bootstrapped from the new e4e encoder"),
    Stage("psp", "encoder", "psp_encoder.safetensors", 1100,
          ("--generator", "{generator}", "--init", "{old}", "--delta-weight", "0", *_IMAGE_LOSSES),
          output="encoder.safetensors",
          why="psp_encoder.md: e4e's refit without the delta term, the same number of steps as e4e's"),
    Stage("rig", "rig", "rig.safetensors", 1500, ("--generator", "{generator}", "--w-keep", "5"),
          why="rig.md: retrained from scratch (it is small), through the attribute predictor"),
    Stage("styleflow", "styleflow", "styleflow.safetensors", 20000, ("--generator", "{generator}",),
          why="styleflow.md: retrained from scratch on the new generator's labelled codes"),
    Stage("clip", "clip", "clip.safetensors", 1200,
          ("--init", "{old}", "--generator", "{generator}", "--generator-fraction", "0.5", "--smile-negative",
           "true", "--smile-weight", "2", "--lr", "3e-4", "--warmup", "20", "--seed", "4"),
          why="clip.md stage 5 from the shipped CLIP: half the fresh images are the new generator's samples"),
    Stage("relevance", "relevance", "relevance.safetensors", 128,
          why="relevance.md: 128 codes, low rank 32, with the new generator and the new CLIP"),
)

#: The benchmarks to run on the old world (before the install) and the new one (after the refit).
BENCH_COMMANDS = (
    "python -m stylekit.bench toyfaces", "python -m stylekit.bench inversion", "python -m stylekit.bench editing",
    "python -m stylekit.bench text", "python -m stylekit.bench claims", "python -m stylekit.bench rig",
    "python -m stylekit.bench styleflow", "python -m stylekit.bench equivariance",
    "python -m demos.bench_app",  # the gallery's latency, from the repository root
)


@dataclass
class WorldConfig:
    """Settings of a refit (see the module docstring)."""

    generator: str                    # the new generator's file
    out: str                          # run folder (one sub-folder per stage, and world.json)
    weights: str | None = None        # the weights folder to refit (None: the package's shipped weights)
    stages: tuple[str, ...] = ()      # stages to run (empty: all of REFIT, in order)
    scale: float = 1.0                # every stage's length is multiplied by this (at least 2 steps)
    threads: int = 1                  # torch threads of every stage
    device: str = "cpu"               # where every stage computes ('cpu', 'cuda', ...)
    precision: str = "fp32"           # the trainers' compute precision (weights are written float32 whatever it is)
    overwrite_shipped: bool = False   # needed to refit the package's own weights

    def weights_dir(self, *, writing: bool = True) -> Path:
        """The weights folder (refused when it is the package's and ``overwrite_shipped`` is off, if ``writing``)."""
        from .skeleton import check_writable, shipped_weights_dir

        folder = Path(self.weights) if self.weights else shipped_weights_dir()
        if not writing:
            return folder
        return check_writable(folder, overwrite_shipped=self.overwrite_shipped, what="--weights")

    def selected(self) -> list[Stage]:
        names = [s.name for s in REFIT]
        unknown = [s for s in self.stages if s not in names]
        if unknown:
            raise InvalidArgumentError(f"unknown stage(s) {', '.join(unknown)}; the stages are {', '.join(names)}.")
        if not self.scale > 0:
            raise InvalidArgumentError(f"--scale must be positive, not {self.scale}.")
        return [s for s in REFIT if not self.stages or s.name in self.stages]


def _shipped_names(weights: Path) -> dict[str, str]:
    """How the stages name the world's files: registered names when the weights folder is the package's
    (so that the files record ``toyfaces`` / ``e4e-toyfaces``), file paths otherwise."""
    from .skeleton import shipped_weights_dir

    if weights.resolve() == shipped_weights_dir():
        return {"generator": "toyfaces", "e4e": "e4e-toyfaces"}
    return {"generator": str(weights / "generator.safetensors"), "e4e": str(weights / "encoder.safetensors")}


def plan(cfg: WorldConfig) -> list[tuple[Stage, list[str]]]:
    """Each selected stage with its command line (``python -m stylekit.train`` arguments; for ``relevance``
    the arguments of ``python -m stylekit relevance``), in order."""
    weights = cfg.weights_dir(writing=False)
    names = _shipped_names(weights)
    out = []
    for stage in cfg.selected():
        steps = max(2, round(stage.steps * cfg.scale))
        values = {**names, "old": str(weights / stage.file), "clip": str(weights / "clip.safetensors")}
        args = [a.format(**values) for a in stage.args]
        run = str(Path(cfg.out) / stage.name)
        if stage.trainer == "relevance":
            argv = ["--model", names["generator"], "--clip", "toyfaces", "--pretrained", values["clip"],
                    "--n-images", str(steps), "--rank", "32", "--seed", "0", "--device", cfg.device,
                    "--out", str(Path(run) / stage.file)]
        else:
            argv = [stage.trainer, "--out", run, "--steps", str(steps), "--threads", str(cfg.threads),
                    "--device", cfg.device, "--precision", cfg.precision, *args]
        out.append((stage, argv))
    return out


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_compatible(new: Path, old: Path) -> None:
    """The new generator must keep the world's latents: same architecture, resolution, z/w sizes and W+ rows."""
    from ..checkpoints.load import load_generator_file

    a, b = load_generator_file(new), load_generator_file(old)
    keys = ("arch", "img_resolution", "z_dim", "w_dim", "num_ws")
    diff = [k for k in keys if getattr(a, k, None) != getattr(b, k, None)]
    if diff:
        detail = ", ".join(f"{k} {getattr(a, k, None)} (now {getattr(b, k, None)})" for k in diff)
        raise InvalidArgumentError(
            f"{new} cannot replace {old}: {detail}. A toyfaces generator must keep the world's labelled latents and "
            "size, so that every technique and shipped file keeps working.")


def _relevance(argv: list[str], threads: int) -> dict:
    """Compute and write the relevance table that ``argv`` (from :func:`plan`) describes."""
    import torch

    from ..checkpoints.load import load_generator
    from ..clip_backend import load_clip
    from ..text import save_relevance
    from ..text.relevance import LowRankOptions, compute_relevance

    opts = dict(zip(argv[::2], argv[1::2]))
    torch.set_num_threads(threads)
    G = load_generator(opts["--model"], device=opts["--device"])
    clip = load_clip("toyfaces", opts["--pretrained"], device=opts["--device"])
    table = compute_relevance(G, clip, method=LowRankOptions(rank=int(opts["--rank"])),
                              n_images=int(opts["--n-images"]), seed=int(opts["--seed"]))
    path = save_relevance(table, opts["--out"])
    return {"table": str(path), "seconds": round(table.meta["seconds"], 1),
            "captured_energy": table.meta.get("captured_energy")}


def _run_stage(stage: Stage, argv: list[str], threads: int) -> dict:
    if stage.trainer == "relevance":
        return _relevance(argv, threads)
    from .cli import _run_trainer, build_parser, config_from_args

    args = build_parser().parse_args(argv)
    return _run_trainer(stage.trainer, config_from_args(args, argv))


def refit_world(cfg: WorldConfig, *, log: Callable[[str], None] | None = print,
                run_stage: Callable[[Stage, list[str], int], dict] = _run_stage) -> dict:
    """Install ``cfg.generator`` and refit the selected stages (see the module docstring).

    Returns the state written to ``out/world.json``: ``generator`` (the new file's sha256), ``weights`` and
    ``stages`` (per finished stage: ``command``, ``seconds``, ``result``, ``installed``).
    """
    log = log or (lambda line: None)
    weights = cfg.weights_dir()
    new = Path(cfg.generator)
    if not new.is_file():
        raise InvalidArgumentError(f"--generator {new}: no such file; pass the generator.safetensors of a run.")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / "world.json"
    digest = _digest(new)
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    if state and state.get("generator") != digest:
        raise InvalidArgumentError(f"{state_path} is the refit of another generator; pass another --out.")
    state.setdefault("generator", digest)
    state.setdefault("generator_file", str(new))
    state["weights"] = str(weights)
    stages = state.setdefault("stages", {})
    steps = plan(cfg)

    def save() -> None:
        tmp = state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(state_path)

    target = weights / "generator.safetensors"
    if not target.is_file() or _digest(target) != digest:
        if target.is_file():
            _check_compatible(new, target)
        shutil.copyfile(new, target)
        log(f"world: installed {new} as {target}")
    save()
    for stage, argv in steps:
        if stage.name in stages:
            log(f"world: {stage.name} done before ({stages[stage.name]['installed']}), skipped")
            continue
        prefix = "python -m stylekit relevance " if stage.trainer == "relevance" else "python -m stylekit.train "
        command = prefix + " ".join(argv)
        log(f"world: {stage.name}: {command}")
        t0 = time.time()
        result = run_stage(stage, argv, cfg.threads)
        seconds = time.time() - t0
        made = Path(argv[argv.index("--out") + 1])
        made = made if stage.trainer == "relevance" else made / (stage.output or stage.file)
        if not made.is_file():
            raise InvalidArgumentError(f"stage {stage.name} finished without writing {made}.")
        shutil.copyfile(made, weights / stage.file)
        stages[stage.name] = {"command": command, "seconds": round(seconds, 1), "result": result,
                              "installed": str(weights / stage.file)}
        save()
        log(f"world: {stage.name} installed {weights / stage.file} ({seconds:.0f} s)")
    return state
