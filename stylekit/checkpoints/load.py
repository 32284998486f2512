"""``load_generator``: one entry point for every checkpoint format and every registered name.

Format detection looks at the file's bytes, not only its suffix:

- safetensors (8-byte header length + JSON)  -> canonical format (``canonical.read_canonical``)
- a pickle whose globals are NVIDIA's persistence records -> ``nvidia_pickle`` (restricted, nothing runs)
- a ``torch.save`` zip/legacy archive          -> rosinality / e4e / pSp state dicts (``weights_only=True``)
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from .. import hub, registry
from ..errors import CheckpointError
from .build import build_generator, load_state_checked  # noqa: F401  (build_generator is part of this module's API)

_NVIDIA_POSITIONAL = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")


def _finish(G, device, precision=None):
    """Eval mode, no gradients, on ``device``, with the compute ``precision`` (None: float32)."""
    from ..networks.cpu_memory import keep_freed_memory
    from ..networks.precision import resolve_precision

    G = G.eval().requires_grad_(False).to(device)
    G.precision = resolve_precision(precision or "fp32", device)
    keep_freed_memory(device)
    return G


def generator_from_nvidia_record(record, *, source: str):
    """Build a Generator from an NVIDIA pickle's ``G_ema`` record (a ``PersistentObject``)."""
    from .nvidia_pickle import PersistentObject

    if not isinstance(record, PersistentObject) or record.class_name != "Generator":
        raise CheckpointError(f"{source}: expected an NVIDIA 'Generator' network, found {getattr(record, 'class_name', type(record).__name__)!r}.")
    config = dict(zip(_NVIDIA_POSITIONAL, record.init_args))
    config.update(record.init_kwargs)
    config = _plain(config)
    synthesis = record.children.get("synthesis")
    if synthesis is None:
        raise CheckpointError(f"{source}: the Generator record has no synthesis network.")
    arch = "stylegan3" if "input" in synthesis.children else "stylegan2"
    G = build_generator(arch, config, source=source)
    load_state_checked(G, record.tensors(), source=source)
    return G


def _plain(value):
    """Turn EasyDicts, numpy scalars and tuples from a pickle into JSON-able Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def sniff_format(path: Path) -> str:
    """Return 'safetensors', 'nvidia-pkl' or 'torch' from the first bytes of ``path``."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the file ({exc.strerror or exc}).") from exc
    if not head:
        raise CheckpointError(f"{path}: the file is empty; download it again.")
    if head[:2] == b"PK":
        return "torch"
    if len(head) >= 9 and head[8:9] == b"{":
        (header_len,) = struct.unpack("<Q", head[:8])
        if 0 < header_len < 100_000_000:
            return "safetensors"
    if head[:1] == b"\x80":
        # torch's legacy (non-zip) format starts with a pickled magic number (a long int).
        if head[2:3] == b"\x8a":
            return "torch"
        return "nvidia-pkl"
    raise CheckpointError(f"{path}: not a checkpoint stylekit can read (expected safetensors, an NVIDIA .pkl, or a "
                          "torch .pt file).")


def load_generator_file(path: str | os.PathLike, *, device="cpu", format: str | None = None,
                        precision: str | None = None):
    """Read a generator from a local file of any supported format (``precision`` as in :func:`load_generator`)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file.")
    fmt = format or sniff_format(path)
    source = str(path)
    if fmt == "safetensors":
        from .canonical import read_canonical

        arch, config, state, _meta = read_canonical(path)
        G = build_generator(arch, config, source=source)
        load_state_checked(G, state, source=source)
    elif fmt == "nvidia-pkl":
        from .nvidia_pickle import read_nvidia_pickle

        data = read_nvidia_pickle(path)
        record = data.get("G_ema") or data.get("G")
        if record is None:
            raise CheckpointError(f"{source}: the pickle has no 'G_ema' or 'G' network (keys: {sorted(data)}).")
        G = generator_from_nvidia_record(record, source=source)
    elif fmt in ("torch", "rosinality-pt"):
        from .rosinality import load_rosinality_generator

        G = load_rosinality_generator(path, device="cpu")
    else:
        raise CheckpointError(f"{source}: unknown checkpoint format {fmt!r}.")
    return _finish(G, device, precision)


def load_generator(spec, *, device="cpu", cache_dir=None, local_files_only: bool | None = None,
                   precision: str | None = None):
    """Load a generator from a path, a registered name, or an ``hf://owner/repo/file`` address.

    Args:
        spec: ``"toyfaces"``, ``"ffhq-1024"``, ``"path/to/network.pkl"``, ``"hf://owner/repo/G.pkl"``,
            or an already-built Generator (returned moved to ``device``).
        device: where the weights go (``"cpu"``, ``"cuda"``, a ``torch.device``).
        cache_dir, local_files_only: passed to the Hugging Face download (see ``stylekit.hub.fetch``).
        precision: compute precision of the synthesis network: ``'fp32'``, ``'bf16'``, ``'fp16'`` or
            ``'auto'`` (bfloat16 on a CPU with AMX / AVX-512-BF16, float16 on CUDA, else float32; see
            :mod:`stylekit.networks.precision`). None: float32 for a file, unchanged for a Generator
            passed in. Weights stay float32 in memory and on disk; ``G.precision`` says what was picked.

    Returns: a ``stylekit.networks.base.Generator`` in eval mode with ``requires_grad=False``.
    """
    from ..networks.base import Generator

    if isinstance(spec, Generator):
        spec = spec.to(device)
        if precision is not None:
            from ..networks.precision import resolve_precision

            spec.precision = resolve_precision(precision, device)
        return spec
    spec_str = os.fspath(spec)
    if spec_str.startswith("hf://"):
        hub_file = hub.parse_hf_uri(spec_str)
        path = hub.fetch(hub_file, cache_dir=cache_dir, local_files_only=local_files_only)
        return load_generator_file(path, device=device, precision=precision)
    if Path(spec_str).expanduser().is_file():
        return load_generator_file(Path(spec_str).expanduser(), device=device, precision=precision)
    entry = registry.resolve(spec_str, "generator")
    path = registry.artifact_path(entry, cache_dir=cache_dir, local_files_only=local_files_only)
    fmt = {"nvidia-pkl": "nvidia-pkl", "safetensors": "safetensors", "rosinality-pt": "torch"}.get(entry.format)
    return load_generator_file(path, device=device, format=fmt, precision=precision)
