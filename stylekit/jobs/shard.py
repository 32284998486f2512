"""Which share of a job this process does: ``rank`` of ``world_size``, from the launcher.

``torchrun`` / ``accelerate launch`` set ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` in each
process's environment (the launcher's variables, read here as torch itself reads them; stylekit's
own settings are in :mod:`stylekit.settings`); ``LOCAL_RANK`` picks the GPU of a bare ``--device
cuda`` (:meth:`Shard.device`). A plain process is rank 0 of a world of 1. Sharding needs no process
group: item ``i`` of a sorted list belongs to rank ``i % world_size`` and each rank writes its own
files. When a launcher also set ``MASTER_ADDR`` / ``MASTER_PORT``, :func:`join_group` joins a
``gloo`` group so that rank 0 can wait for the others (:func:`barrier`) before merging.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence, TypeVar

from ..errors import InvalidArgumentError

__all__ = ["Shard", "current_shard", "join_group", "leave_group", "barrier", "group_active"]

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    """This process's share: ``rank`` in ``0 .. world_size - 1``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.rank, bool) or isinstance(self.world_size, bool) or self.world_size < 1 \
                or not 0 <= self.rank < self.world_size:
            raise InvalidArgumentError(f"rank {self.rank!r} of world size {self.world_size!r} is not a valid shard; "
                                       "ranks run from 0 to WORLD_SIZE - 1.")

    @property
    def is_main(self) -> bool:
        """Rank 0: shows progress and merges the ranks' parts."""
        return self.rank == 0

    def take(self, items: Sequence[T]) -> list[T]:
        """The items of this rank: ``items[rank::world_size]`` (item ``i`` goes to rank ``i % world_size``)."""
        return list(items[self.rank::self.world_size])

    def owns(self, index: int) -> bool:
        return index % self.world_size == self.rank

    def device(self, device) -> str:
        """``device`` for this process: a bare ``'cuda'`` becomes ``'cuda:<local rank>'`` when several processes
        run (one GPU each, as torchrun numbers them); anything else is kept."""
        if str(device) != "cuda" or self.world_size == 1:
            return str(device)
        import torch

        count = max(1, torch.cuda.device_count()) if torch.cuda.is_available() else 1
        local = self.rank if self.local_rank is None else self.local_rank
        return f"cuda:{local % count}"


def current_shard(rank: int | None = None, world_size: int | None = None) -> Shard:
    """The shard given, else the launcher's (``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK``), else ``Shard(0, 1)``."""
    if rank is not None or world_size is not None:
        return Shard(int(rank or 0), int(world_size or 1))
    try:
        world = int(os.environ.get("WORLD_SIZE", "").strip() or 1)
        r = int(os.environ.get("RANK", "").strip() or 0)
        local = os.environ.get("LOCAL_RANK", "").strip()
        local_rank = int(local) if local else None
    except ValueError:
        raise InvalidArgumentError(f"RANK={os.environ.get('RANK')!r} / WORLD_SIZE={os.environ.get('WORLD_SIZE')!r} "
                                   f"/ LOCAL_RANK={os.environ.get('LOCAL_RANK')!r} are not integers; launch with "
                                   "torchrun or set them to numbers.") from None
    return Shard(r, world, local_rank)


def group_active() -> bool:
    """True when a torch.distributed process group exists in this process."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def join_group(shard: Shard) -> bool:
    """Join a ``gloo`` process group when launched by torchrun with several processes; True if joined here.

    Only used to wait for the other ranks; the work itself needs no communication.
    """
    if shard.world_size == 1 or group_active():
        return False
    if not (os.environ.get("MASTER_ADDR") and os.environ.get("MASTER_PORT")):
        return False
    import torch.distributed as dist

    dist.init_process_group("gloo", rank=shard.rank, world_size=shard.world_size)
    return True


def leave_group(joined: bool) -> None:
    """Destroy the group :func:`join_group` made (nothing when it made none)."""
    if joined and group_active():
        import torch.distributed as dist

        dist.destroy_process_group()


def barrier() -> bool:
    """Wait for every rank when a process group exists; returns whether it waited."""
    if not group_active():
        return False
    import torch.distributed as dist

    dist.barrier()
    return True
