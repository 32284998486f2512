"""The skeleton every stylekit trainer is built on.

Each trainer (:mod:`~stylekit.train.gan`, :mod:`~stylekit.train.supervised`,
:mod:`~stylekit.train.encoder`, :mod:`~stylekit.train.clip`, :mod:`~stylekit.train.predictor`)
extends one configuration shape and runs inside one :class:`Run`:

- :class:`TrainConfig`: the fields every run has (run folder, batch, learning rate, seed, device,
  compute precision, threads, resume, export); :class:`StepsConfig` adds a length in optimiser steps with a warm-up /
  cosine-decay schedule, :class:`KimgConfig` a length in thousands of images shown (the StyleGAN
  convention). Configs are JSON-able and stored in every checkpoint.
- :func:`cosine_lr`: the one learning-rate schedule (linear warm-up, constant, half-cosine decay to a
  floor), parameterised so that each trainer keeps its own curve.
- :func:`ema_update` / :func:`ema_beta`: the exponential moving average of network weights;
  :class:`Smoothed`: the moving average of a logged number.
- :class:`Run`: the run folder (refusing the package's shipped weights unless asked), the log,
  seeded random streams, and checkpoints: one file format for every trainer
  (``checkpoint-latest.pt``, written atomically by rank 0, holding networks, optimisers, counters,
  the random-generator states and the config; read with ``torch.load(weights_only=True)``).
- Progress goes to a :class:`stylekit.progress.ProgressCallback`.
- Several processes (``torchrun``, ``accelerate launch``): ``run.dist``, a
  :class:`~stylekit.train.distributed.Distributed`; ``--batch`` is the global batch, each rank trains
  on ``run.shard(rows)`` of it, :meth:`Run.distribute` averages gradients over the ranks, and only
  rank 0 writes the log, checkpoints and trained files (see :mod:`stylekit.train.distributed`).
- ``precision`` (``--precision fp32|bf16|fp16|auto``): ``run.amp``, a
  :class:`~stylekit.train.mixed_precision.MixedPrecision` (autocast, channels-last on CPU, gradient
  scaling for float16; losses stay float32); ``'fp32'``, the default, changes nothing.

A resumed run restores the numpy, torch-generator and global torch random states as well as the
step counters, so it continues the stream an uninterrupted run would have drawn (trainers that keep
an in-memory pool of recent renders refill it on resume, so theirs differs from there on).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import torch

from ..errors import CheckpointError, InvalidArgumentError
from ..progress import ProgressCallback, no_progress
from .distributed import connect, rank_seed
from .mixed_precision import MixedPrecision

__all__ = ["TrainConfig", "StepsConfig", "KimgConfig", "cosine_lr", "ema_beta", "ema_update", "Smoothed", "is_due", "Every",
           "Run", "load_checkpoint", "shipped_weights_dir", "check_writable", "CHECKPOINT_NAME"]

#: The checkpoint every trainer keeps up to date in its run folder.
CHECKPOINT_NAME = "checkpoint-latest.pt"
_CHECKPOINT_FORMAT = "stylekit-train-checkpoint"


# ------------------------------------------------------------------------------------------------
# Configuration


@dataclass
class TrainConfig:
    """The settings every trainer shares (each trainer's config extends this; JSON-able)."""

    out: str = ""                     # run folder: config.json, log.txt, checkpoint-latest.pt, the trained file
    batch: int = 32                   # images per optimiser step
    lr: float = 1e-3                  # base (peak) learning rate
    seed: int = 0                     # seeds initialisation and every random stream of the run
    device: str = "cpu"
    precision: str = "fp32"           # compute precision: fp32, bf16, fp16 or auto (see train.mixed_precision)
    threads: int | None = None        # torch.set_num_threads during the run (None: leave as is)
    resume: str | None = None         # None: start afresh; "auto": continue from the run folder's checkpoint
                                      # if there is one; "latest": it must be there; or a checkpoint file / folder
    export: str | None = None         # also copy the trained file here
    overwrite_shipped: bool = False   # allow writing into the package's shipped weights folder

    #: The trainer's name (the checkpoint's ``kind``, the CLI subcommand).
    kind: ClassVar[str] = "train"
    #: Fields that say where and how a run executes, not what it learns: a resumed run takes them
    #: from the new settings and they never make two configs "different".
    RUN_FIELDS: ClassVar[tuple[str, ...]] = ("out", "device", "precision", "threads", "resume", "export",
                                             "overwrite_shipped")

    def to_dict(self) -> dict:
        """The settings as a JSON-able dict (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Rebuild a config from :meth:`to_dict` output (unknown keys are ignored, lists become tuples
        where the field's default is a tuple)."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        kwargs = {}
        for name, value in values.items():
            field = known.get(name)
            if field is None:
                continue
            default = field.default if field.default is not dataclasses.MISSING else None
            if isinstance(default, tuple) and isinstance(value, list):
                value = tuple(value)
            kwargs[name] = value
        return cls(**kwargs)

    def learned_settings(self) -> dict:
        """:meth:`to_dict` without :attr:`RUN_FIELDS`: what two runs must share to be the same run."""
        return {k: v for k, v in self.to_dict().items() if k not in self.RUN_FIELDS}

    def resumed_from(self, saved: dict) -> "TrainConfig":
        """The config a resumed run uses, given the checkpoint's saved settings.

        By default the new settings win (the checkpoint only supplies the state); trainers whose
        architecture lives in the config override this to keep the saved settings.
        """
        return self

    def validate(self) -> None:
        """Check the shared fields; raise InvalidArgumentError with what to pass instead."""
        if not str(self.out or "").strip():
            raise InvalidArgumentError("a run needs an output folder: pass --out runs/<name> (out=...).")
        if isinstance(self.batch, bool) or not isinstance(self.batch, int) or self.batch < 1:
            raise InvalidArgumentError(f"--batch must be a whole number >= 1, not {self.batch!r}.")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr >= 0):
            raise InvalidArgumentError(f"--lr must be a finite number >= 0, not {self.lr!r}.")
        if self.threads is not None and self.threads < 0:
            raise InvalidArgumentError(f"--threads must be >= 0, not {self.threads}.")
        from ..networks.precision import resolve_precision

        resolve_precision(self.precision, self.device)  # an unknown name raises InvalidArgumentError
        check_writable(self.out, overwrite_shipped=self.overwrite_shipped)
        if self.export:
            check_writable(self.export, overwrite_shipped=self.overwrite_shipped, what="--export")


@dataclass
class StepsConfig(TrainConfig):
    """A run measured in optimiser steps, with a warm-up / cosine learning-rate schedule."""

    steps: int = 1000                 # optimiser steps
    warmup: int = 0                   # linear warm-up steps
    decay: float | None = None        # None: cosine over every step after the warm-up; f in (0, 1]: constant,
                                      # then cosine over the last fraction f of the run (0: constant lr)
    lr_floor: float = 0.0             # the cosine ends at lr * lr_floor
    log_every: int = 50               # log line every this many steps (0: only at the end)
    snapshot_every: int = 500         # checkpoint every this many steps (0: only at the end)

    def lr_at(self, step: int) -> float:
        """The learning rate of optimiser step ``step`` (0-based)."""
        if self.decay is None or step < self.warmup:
            return cosine_lr(self.lr, step, self.steps, warmup=self.warmup, floor=self.lr_floor)
        return cosine_lr(self.lr, step / max(1, self.steps), 1.0, decay=self.decay, floor=self.lr_floor)

    def validate(self) -> None:
        super().validate()
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise InvalidArgumentError(f"--steps must be a whole number >= 1, not {self.steps!r}.")
        if self.warmup < 0 or self.log_every < 0 or self.snapshot_every < 0:
            raise InvalidArgumentError("--warmup, --log-every and --snapshot-every must be >= 0.")
        if self.decay is not None and not 0.0 <= self.decay <= 1.0:
            raise InvalidArgumentError(f"--decay must be a fraction of the run in [0, 1], not {self.decay}.")
        if not 0.0 <= self.lr_floor <= 1.0:
            raise InvalidArgumentError(f"--lr-floor must be in [0, 1], not {self.lr_floor}.")


@dataclass
class KimgConfig(TrainConfig):
    """A run measured in thousands of images shown (the StyleGAN convention)."""

    kimg: float = 100.0               # total length in thousands of images
    snapshot_kimg: float = 4.0        # checkpoint (and sample grid) every this many kimg
    log_kimg: float = 0.5             # log line every this many kimg
    profile_steps: int = 0            # profile this many steps (CPU) into profile.json (stylekit.train.profiling)

    RUN_FIELDS: ClassVar[tuple[str, ...]] = TrainConfig.RUN_FIELDS + ("kimg", "snapshot_kimg", "log_kimg",
                                                                      "profile_steps")

    def validate(self) -> None:
        super().validate()
        if not self.kimg > 0:
            raise InvalidArgumentError(f"--kimg must be positive, not {self.kimg}")
        if self.profile_steps < 0:
            raise InvalidArgumentError(f"--profile-steps must be >= 0, not {self.profile_steps}")


# ------------------------------------------------------------------------------------------------
# Schedule and moving averages


def cosine_lr(base: float, pos: float, total: float, *, warmup: float = 0, decay: float | None = None,
              floor: float = 0.0) -> float:
    """The learning rate at ``pos`` of a run of length ``total``: warm-up, constant, then a half cosine.

    ``pos`` and ``total`` are in any one unit (optimiser steps, images shown, or a fraction of the
    run with ``total = 1``). During the first ``warmup`` steps the rate ramps linearly,
    ``base * (pos + 1) / warmup`` (``pos`` counts steps there). With ``decay=None`` the cosine then
    spans every remaining step; otherwise the rate stays at ``base`` until the last ``decay`` units
    and follows the cosine over them (``decay <= 0``: constant). The cosine goes from ``base`` to
    ``base * floor`` and stays there.
    """
    if pos < warmup:
        return base * (pos + 1) / warmup
    if decay is None:
        t = (pos - warmup) / max(1, total - warmup)
    elif decay <= 0:
        return base
    else:
        start = total - decay
        if pos < start:
            return base
        t = (pos - start) / decay
    t = min(t, 1.0)
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


def ema_beta(batch: int, half_life_images: float) -> float:
    """The EMA coefficient that halves the old weights' share every ``half_life_images`` images."""
    return 0.5 ** (batch / max(half_life_images, 1e-8))


@torch.no_grad()
def ema_update(target: torch.nn.Module, source: torch.nn.Module, beta: float) -> None:
    """``p_target <- lerp(p_source, p_target, beta)`` for parameters; buffers copied from ``source``."""
    for p_ema, p in zip(target.parameters(), source.parameters()):
        p_ema.copy_(p.detach().lerp(p_ema, beta))
    for b_ema, b in zip(target.buffers(), source.buffers()):
        b_ema.copy_(b)


class Smoothed:
    """An exponential moving average of a logged number (``None`` until the first value)."""

    def __init__(self, weight: float = 0.05):
        self.weight = weight
        self.value: float | None = None

    def update(self, value: float) -> float:
        keep = 1 - self.weight
        self.value = value if self.value is None else keep * self.value + self.weight * value
        return self.value


def is_due(done: int, every: int, total: int) -> bool:
    """True at every multiple of ``every`` steps (never when ``every <= 0``) and at the last step ``total``."""
    return done == total or (every > 0 and done % every == 0)


class Every:
    """Fires when a growing counter (images shown, steps) passes each multiple of ``every`` (never if <= 0)."""

    def __init__(self, every: float, start: int = 0):
        self.every = int(every)
        self.next = (start // self.every + 1) * self.every if self.every > 0 else None

    def due(self, counter: int) -> bool:
        if self.next is None or counter < self.next:
            return False
        while self.next <= counter:
            self.next += self.every
        return True


# ------------------------------------------------------------------------------------------------
# Where runs may write


def shipped_weights_dir() -> Path:
    """The folder of the weights shipped inside the package (``stylekit/toyfaces/weights``)."""
    return Path(__file__).resolve().parents[1] / "toyfaces" / "weights"


def check_writable(path: str | os.PathLike, *, overwrite_shipped: bool = False, what: str = "--out") -> Path:
    """``path``, unless it is inside the package's shipped weights folder and ``overwrite_shipped`` is off."""
    resolved = Path(path).expanduser().resolve()
    shipped = shipped_weights_dir()
    if not overwrite_shipped and (resolved == shipped or shipped in resolved.parents):
        raise InvalidArgumentError(
            f"{what} {path} is inside the package's shipped weights ({shipped}); write the run elsewhere "
            "(e.g. --out runs/<name>) and compare before replacing anything, or pass --overwrite-shipped "
            "(overwrite_shipped=True) to replace a shipped file on purpose.")
    return Path(path)


# ------------------------------------------------------------------------------------------------
# Checkpoints


def load_checkpoint(path: str | os.PathLike, *, kind: str) -> dict:
    """Read a training checkpoint (a file, or a run folder holding ``checkpoint-latest.pt``).

    Loaded with ``weights_only=True``: nothing in the file is executed. Raises CheckpointError for
    a missing or unreadable file, or one written by another trainer.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise CheckpointError(f"{path}: no such training checkpoint; pass a checkpoint-*.pt file or its run folder.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises several types for corrupt or foreign files
        raise CheckpointError(f"{path}: not a readable training checkpoint ({exc}).") from exc
    found = state.get("kind") if isinstance(state, dict) else type(state).__name__
    if found != kind:
        raise CheckpointError(f"{path}: not a {kind!r} training checkpoint (found {found!r}); "
                              f"resume a {kind} run from its own run folder.")
    return state


def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class Run:
    """One training run: its folder, log, seeded random streams, checkpoints and progress callback.

    Creating it validates the config (which refuses the package's shipped weights folder unless
    ``cfg.overwrite_shipped``), makes the run folder, seeds torch's global generator with ``cfg.seed`` and creates
    ``rng`` (numpy, ``seed``) and ``gen`` (a torch CPU generator, ``seed + torch_offset``; both the
    same on every rank: they draw the global batch), ``local_gen`` (draws that concern only this
    rank's rows: ``gen`` itself on one process, a generator of its own per rank on several), and
    ``amp`` (:class:`~stylekit.train.mixed_precision.MixedPrecision` for ``cfg.precision``). Use it as
    a context manager: the thread count is restored on exit (and a process group it joined is left).

    Under a multi-process launch it joins the process group (``dist``: rank, world size), trains on
    ``cuda:LOCAL_RANK`` for ``--device cuda``, and checks that ``cfg.batch`` (the global batch)
    splits over the processes; trainers take their rows with :meth:`shard` and hand their networks
    and optimisers to :meth:`distribute`. Only rank 0 writes files and log lines.

    Args:
        cfg: the run's settings.
        log: where log lines go besides ``out/log.txt`` (default ``print``; None: the file only).
        progress: ``callback(step, total, message, **metrics)``.
        torch_offset: ``gen`` is seeded with ``cfg.seed + torch_offset``.
    """

    def __init__(self, cfg: TrainConfig, *, log: Callable[[str], None] | None = print,
                 progress: ProgressCallback = no_progress, torch_offset: int = 1):
        cfg.validate()
        self.cfg = cfg
        self.kind = cfg.kind
        self.dist, self.device = connect(cfg.device)
        try:
            self.local_batch = self.dist.local_batch(cfg.batch)
        except InvalidArgumentError:
            self.dist.close()
            raise
        self.out = Path(cfg.out)
        if self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        self.dist.barrier()
        self._sink = log
        self.progress = progress or no_progress
        self._threads = torch.get_num_threads()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.amp = MixedPrecision(cfg.precision, self.device)
        if self.dist.active:
            self.amp.distributed = self.dist
            self.log(f"{self.dist.world} processes ({'nccl' if self.device.type == 'cuda' else 'gloo'}), "
                     f"batch {cfg.batch} = {self.dist.world} x {self.local_batch}")
        if cfg.precision != "fp32":
            self.log(self.amp.describe())
        torch.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.gen = torch.Generator().manual_seed(cfg.seed + torch_offset)
        self.local_gen = self.gen
        self.step = 0
        self.cur_nimg = 0
        self.resume_path: Path | None = None

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc) -> None:
        torch.set_num_threads(self._threads)
        self.dist.close()

    # -- several processes

    @property
    def is_main(self) -> bool:
        """True on rank 0 (always on one process): the process that writes files and log lines."""
        return self.dist.is_main

    def shard(self, x: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a global-batch tensor ``x [cfg.batch, ...]`` (``x`` itself on one process)."""
        return self.dist.shard(x)

    def distribute(self, nets: dict[str, torch.nn.Module], optims: dict[str, torch.optim.Optimizer]) -> None:
        """Make the ranks train as one (after building, initialising or restoring the networks).

        Broadcasts ``nets`` from rank 0, averages ``optims``' gradients over the ranks before every
        step and the nets' floating buffers after it; on ranks >= 1 reseeds the rank's own streams
        (``local_gen`` and torch's global generator) from ``(seed, rank, step)``. Nothing on one process.
        """
        if not self.dist.active:
            return
        self.dist.attach(nets.values(), optims.values())
        if self.dist.rank > 0:
            seed = rank_seed(self.cfg.seed, self.dist.rank, self.step)
            torch.manual_seed(seed)
            self.local_gen = torch.Generator().manual_seed(seed + 1)
        else:
            self.local_gen = torch.Generator().manual_seed(rank_seed(self.cfg.seed, 0, self.step) + 1)

    # -- log and files

    def log(self, line: str) -> None:
        """Append ``line`` to ``out/log.txt`` and pass it to the run's log callable."""
        if not self.is_main:
            return
        with open(self.out / "log.txt", "a") as fh:
            fh.write(line + "\n")
        if self._sink is not None:
            self._sink(line)

    def write_config(self, extra: dict | None = None) -> None:
        """Write ``out/config.json`` (the settings, plus ``extra``)."""
        if self.is_main:
            (self.out / "config.json").write_text(json.dumps({**self.cfg.to_dict(), **(extra or {})}, indent=2))

    def export(self, path: str | os.PathLike, companions: tuple[str | os.PathLike, ...] = ()) -> Path | None:
        """Copy the trained file (and companion files, renamed after the export's stem) to ``cfg.export``."""
        if not self.cfg.export or not self.is_main:
            return None
        dest = check_writable(self.cfg.export, overwrite_shipped=self.cfg.overwrite_shipped, what="--export")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
        for extra in companions:
            shutil.copyfile(extra, dest.with_name(dest.stem + Path(extra).suffix))
        return dest

    # -- checkpoints

    def resume_state(self) -> dict | None:
        """The checkpoint to continue from under ``cfg.resume`` (see :class:`TrainConfig`), or None.

        The file it came from is kept in :attr:`resume_path`.
        """
        resume = self.cfg.resume
        latest = self.out / CHECKPOINT_NAME
        if resume in (None, "", "none") or (resume == "auto" and not latest.is_file()):
            return None
        if resume in ("auto", "latest"):
            if not latest.is_file():
                raise InvalidArgumentError(f"resume was asked but {latest} does not exist; "
                                           "start the run without --resume first.")
            path = latest
        else:
            path = Path(resume) / CHECKPOINT_NAME if Path(resume).is_dir() else Path(resume)
        state = load_checkpoint(path, kind=self.kind)
        self.resume_path = path
        return state

    def resume_or_start(self, nets: dict[str, torch.nn.Module], optims: dict[str, torch.optim.Optimizer]) -> bool:
        """Continue from the checkpoint ``cfg.resume`` names (:meth:`resume_state`, :meth:`restore` of ``nets`` and
        ``optims``, a log line) or, on a fresh run, write ``config.json``. Returns True when it resumed."""
        state = self.resume_state()
        if state is None:
            self.write_config()
            return False
        self.restore(state, nets, optims)
        self.log(f"resumed from {self.resume_path} at step {self.step}")
        return True

    def saved_config(self, state: dict) -> dict:
        """The settings a checkpoint was written with."""
        return json.loads(state["config"])

    def restore(self, state: dict, nets: dict[str, torch.nn.Module], optims: dict[str, torch.optim.Optimizer]) -> dict:
        """Load networks, optimisers, counters and random states from a checkpoint; returns its ``extra`` dict.

        Networks or optimisers the checkpoint does not hold are left as they are.
        """
        for name, net in nets.items():
            if net is not None and name in state["nets"]:
                net.load_state_dict(state["nets"][name])
        for name, opt in optims.items():
            if opt is not None and name in state["optims"]:
                opt.load_state_dict(state["optims"][name])
        self.step = int(state.get("step", 0))
        self.cur_nimg = int(state.get("cur_nimg", 0))
        if state.get("numpy_rng"):
            self.rng.bit_generator.state = json.loads(state["numpy_rng"])
        self.gen.set_state(state["torch_rng"])
        if state.get("torch_global_rng") is not None:
            torch.set_rng_state(state["torch_global_rng"])
        self.amp.load_state_dict(state.get("grad_scaler"))
        return dict(state.get("extra") or {})

    def end_step(self, cfg: "StepsConfig", step: int, what: str, loss: float, opt: torch.optim.Optimizer, *,
                 start: int, t0: float, nets: dict[str, torch.nn.Module],
                 optims: dict[str, torch.optim.Optimizer]) -> int:
        """The bookkeeping after optimiser step ``step`` (0-based) of a run in steps; returns the steps done.

        Sets ``step`` and ``cur_nimg`` (``done * cfg.batch``), reports progress (``what``, smoothed
        ``loss``), writes the log line every ``cfg.log_every`` steps (``loss`` averaged over the ranks;
        rate since ``start`` at time ``t0``, ``time.time()``) and a checkpoint every
        ``cfg.snapshot_every`` steps before the last.
        """
        import time

        done = self.step = step + 1
        self.cur_nimg = done * cfg.batch
        self.progress(done, cfg.steps, what, loss=loss)
        if is_due(done, cfg.log_every, cfg.steps):
            if self.dist.active:
                loss = float(self.dist.average(torch.tensor([loss], dtype=torch.float64, device=self.device)))
            rate = (done - start) / (time.time() - t0)
            eta = (cfg.steps - done) / max(rate, 1e-9)
            self.log(f"step {done}/{cfg.steps}  loss {loss:.4f}  lr {opt.param_groups[0]['lr']:.2e}  "
                     f"{rate:.2f} it/s  eta {eta / 60:.1f} min")
        if cfg.snapshot_every > 0 and done % cfg.snapshot_every == 0 and done < cfg.steps:
            self.checkpoint(nets=nets, optims=optims)
        return done

    def checkpoint(self, *, nets: dict[str, torch.nn.Module], optims: dict[str, torch.optim.Optimizer],
                   extra: dict | None = None, keep: str | None = None) -> Path:
        """Write ``out/checkpoint-latest.pt`` atomically (rank 0 only); with ``keep`` also ``checkpoint-<keep>.pt``.

        Returns the file written (``checkpoint-<keep>.pt`` when ``keep`` is given).

        Holds the kind, the config, ``step`` and ``cur_nimg``, every network's and optimiser's state,
        the numpy / torch-generator / global torch random states and ``extra`` (numbers, strings,
        lists and tensors only).
        """
        path = self.out / CHECKPOINT_NAME
        if not self.is_main:
            return path
        state = {
            "format": _CHECKPOINT_FORMAT, "kind": self.kind, "config": json.dumps(self.cfg.to_dict()),
            "step": int(self.step), "cur_nimg": int(self.cur_nimg),
            "nets": {name: net.state_dict() for name, net in nets.items() if net is not None},
            "optims": {name: opt.state_dict() for name, opt in optims.items() if opt is not None},
            "numpy_rng": json.dumps(self.rng.bit_generator.state), "torch_rng": self.gen.get_state(),
            "torch_global_rng": torch.get_rng_state(), "extra": extra or {},
        }
        if self.amp.scaler is not None:
            state["grad_scaler"] = self.amp.state_dict()
        if keep is not None:
            kept = self.out / f"checkpoint-{keep}.pt"
            _atomic_save(state, kept)
            tmp = path.with_name(path.name + ".tmp")
            shutil.copyfile(kept, tmp)
            os.replace(tmp, path)
            return kept
        _atomic_save(state, path)
        return path
