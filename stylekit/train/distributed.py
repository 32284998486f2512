"""Training on several processes (``torchrun``, ``accelerate launch``): one process group, averaged gradients.

The same command line runs on one process or many::

    python -m stylekit.train supervised --out runs/sup --kimg 100 --batch 32
    torchrun --nproc_per_node 4 -m stylekit.train supervised --out runs/sup --kimg 100 --batch 32

**When.** A process started by ``torchrun`` (or ``accelerate launch``, which starts its workers
through torchrun) joins a process group when the launch has more than one process: ``gloo`` on
CPU, ``nccl`` on CUDA (each process then trains on ``cuda:LOCAL_RANK``). torch reads the launcher's
variables (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``); a plain process is rank 0 of
a world of 1 and nothing here does anything.

**The batch is global.** ``--batch`` is the number of images per optimiser step over all processes;
each rank works on its own ``batch / world`` rows of it (every ``world``-th row,
:meth:`Distributed.shard`), so the learning rate, the schedule in images, the EMA half-life and the
checkpoint's counters mean the same thing on any number of processes. ``--batch`` must split
evenly over the processes.

**Timing.** The generator trainers' log lines (``log.txt``, one every ``--log-kimg``) end with
``sec/step``, the wall time per optimiser step since the previous line, whatever the number of
processes.

**Gradients.** Instead of wrapping networks in DistributedDataParallel (which a GAN's alternating
G / D steps, R1 and path-length penalties with ``create_graph`` and frozen parameters make awkward),
every optimiser a trainer hands to :meth:`Distributed.attach` averages its parameters' gradients
over the ranks just before each ``step()`` (a step pre-hook; one coalesced all-reduce per
optimiser step; :class:`~stylekit.train.mixed_precision.MixedPrecision` does it before float16's
overflow check, so every rank skips the same steps). The losses are means over
each rank's rows, so the average is the gradient of the mean over the global batch: a step on W
ranks of ``b`` rows equals a step on one rank of ``W * b`` rows when the rows are the same.
Floating-point buffers (``w_avg``, BatchNorm running statistics) are averaged after every step, so
the ranks never drift apart; BatchNorm still normalises with each rank's own batch statistics
(no SyncBatchNorm: it needs CUDA), so networks with BatchNorm match the single-process run only
approximately. Parameters and buffers are broadcast from rank 0 when attached.

**Random streams.** The run's shared streams (``Run.rng``, ``Run.gen``) are seeded identically on
every rank and are used to draw what defines the global batch (latents, attributes, which rows of a
pool); each rank keeps its own rows, so the ranks' streams stay identical and rank 0's checkpoint
holds *the* state. Draws that only concern a rank's own rows (noise inputs, per-row augmentation)
use ``Run.local_gen`` and torch's global generator, which on ranks >= 1 are reseeded from
``(seed, rank, step)`` when the networks are attached; rank 0 keeps the single-process streams.

**Checkpoints** are written by rank 0 alone and hold the global step and images shown, the
networks, EMA, optimiser states and rank 0's random states: they resume on any number of processes
(a run of 2 continues on 1 and back).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import InvalidArgumentError

__all__ = ["Distributed", "connect", "rank_seed"]


def _dist():
    return torch.distributed


@dataclass
class Distributed:
    """This process's place among the training processes (rank 0 of 1 when run plainly).

    Attributes: ``rank``, ``world`` (number of processes), ``local_rank`` (the process's index on
    its machine; its CUDA device), ``owns_group`` (this object created the process group and
    :meth:`close` destroys it).
    """

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False
    _nets: list = field(default_factory=list, repr=False)
    _pending: set = field(default_factory=set, repr=False)

    @property
    def is_main(self) -> bool:
        """True on rank 0: the process that writes checkpoints, logs and trained files."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    # -- sharding

    def rows(self, n: int) -> slice:
        """This rank's rows of a global batch of ``n``: every ``world``-th row from row ``rank`` (strided, so
        each rank gets its share of a batch made of parts, e.g. fresh renders then pool entries)."""
        return slice(self.rank, n, self.world) if self.world > 1 else slice(0, n)

    def shard(self, x: torch.Tensor) -> torch.Tensor:
        """This rank's rows of ``x [N, ...]`` (``x`` itself on one process)."""
        return x if self.world == 1 else x[self.rows(x.shape[0])]

    def local_batch(self, batch: int) -> int:
        """The rows each rank trains on per step; raises InvalidArgumentError when ``batch`` does not split evenly."""
        if batch % self.world:
            raise InvalidArgumentError(
                f"--batch {batch} is the global batch and must split evenly over the {self.world} processes; "
                f"pass a multiple of {self.world} (e.g. --batch {max(1, batch // self.world) * self.world}).")
        return batch // self.world

    # -- collectives

    def average_(self, tensors) -> None:
        """Average floating-point ``tensors`` over the ranks, in place (one all-reduce per dtype and device)."""
        if self.world == 1:
            return
        groups: dict = {}
        for t in tensors:
            if t is not None and t.is_floating_point():
                groups.setdefault((t.dtype, t.device), []).append(t)
        for group in groups.values():
            flat = torch.cat([t.detach().reshape(-1) for t in group])
            _dist().all_reduce(flat)
            flat /= self.world
            offset = 0
            for t in group:
                t.detach().copy_(flat[offset:offset + t.numel()].view_as(t))
                offset += t.numel()

    def average(self, value: torch.Tensor) -> torch.Tensor:
        """A copy of ``value`` averaged over the ranks (``value`` itself on one process)."""
        if self.world == 1:
            return value
        out = value.detach().clone()
        self.average_([out])
        return out

    def sync_gradients(self, optimizer: torch.optim.Optimizer) -> None:
        """Average the gradients of ``optimizer``'s parameters over the ranks (once per step).

        A parameter without a gradient here but with one on another rank counts as zeros here, so
        every rank steps the same parameters; one without a gradient on every rank keeps none.
        """
        if self.world == 1 or id(optimizer) in self._pending:
            return
        self._pending.add(id(optimizer))
        params = [p for group in optimizer.param_groups for p in group["params"]]
        if not params:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        has = torch.tensor([float(p.grad is not None) for p in params], device=params[0].device)
        self.average_(grads + [has])  # the flags travel with the gradients: one all-reduce
        for p, g, flag in zip(params, grads, has.tolist()):
            p.grad = g if flag > 0 else None

    def step_done(self, optimizer: torch.optim.Optimizer) -> None:
        """After ``optimizer``'s step (or a skipped one): average the attached networks' floating buffers."""
        if id(optimizer) not in self._pending:
            return
        self._pending.discard(id(optimizer))
        self.average_([b for net in self._nets for b in net.buffers()])

    def attach(self, nets, optims) -> None:
        """Make the training processes act as one: broadcast ``nets``' parameters and buffers from rank 0,
        average ``optims``' gradients before each step and the nets' floating buffers after it.

        ``nets`` / ``optims``: iterables of modules / optimisers (None entries are skipped).
        """
        if self.world == 1:
            return
        for net in nets:
            if net is None or any(net is seen for seen in self._nets):
                continue
            self._nets.append(net)
            with torch.no_grad():
                for t in list(net.parameters()) + list(net.buffers()):
                    _dist().broadcast(t.data, src=0)
        for opt in optims:
            if opt is None or getattr(opt, "_stylekit_synced", False):
                continue
            opt._stylekit_synced = True
            opt.register_step_pre_hook(lambda o, args, kwargs: self.sync_gradients(o))
            opt.register_step_post_hook(lambda o, args, kwargs: self.step_done(o))

    def barrier(self) -> None:
        if self.world > 1:
            _dist().barrier()

    def close(self) -> None:
        """Destroy the process group if this object created it, after every rank got here (tearing gloo down
        while a peer still uses it aborts that peer: 'terminate called without an active exception')."""
        if self.owns_group and _dist().is_initialized():
            try:
                _dist().barrier()
            except RuntimeError:  # a peer already failed; the launcher reports that one
                pass
            _dist().destroy_process_group()
        self.owns_group = False


def rank_seed(seed: int, rank: int, step: int) -> int:
    """The seed of rank ``rank``'s own random streams when a run (re)starts at ``step``."""
    return int(np.random.SeedSequence([int(seed), int(rank), int(step)]).generate_state(1)[0])


def connect(device: str | torch.device = "cpu") -> tuple[Distributed, torch.device]:
    """Join the launcher's process group (when launched with more than one process) and pick the device.

    Returns ``(Distributed, device)``; the device is ``device`` itself, except that ``cuda`` becomes
    ``cuda:LOCAL_RANK`` under a multi-process launch. A process group that already exists (made by
    the caller) is used and left alone on :meth:`Distributed.close`.
    """
    dist = _dist()
    device = torch.device(device)
    if not dist.is_available():
        return Distributed(), device
    owns = False
    if not dist.is_initialized():
        if not dist.is_torchelastic_launched():
            return Distributed(), device
        backend = "nccl" if device.type == "cuda" else "gloo"
        local_rank = dist.get_node_local_rank(fallback_rank=0)
        if device.type == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend, init_method="env://")
        owns = True
        if dist.get_world_size() == 1:  # torchrun --nproc_per_node 1: nothing to share
            dist.destroy_process_group()
            return Distributed(), device
    world, rank = dist.get_world_size(), dist.get_rank()
    local_rank = dist.get_node_local_rank(fallback_rank=rank)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return Distributed(rank=rank, world=world, local_rank=local_rank, owns_group=owns), device
