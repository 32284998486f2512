"""``load_generator``: one entry point for every checkpoint format and every registered name.

Format detection looks at the file's bytes, not only its suffix:

- safetensors (8-byte header length + JSON)  -> canonical format (``canonical.read_canonical``)
- a pickle whose globals are NVIDIA's persistence records -> ``nvidia_pickle`` (restricted, nothing runs)
- a ``torch.save`` zip/legacy archive          -> rosinality / e4e / pSp state dicts (``weights_only=True``)
"""

from __future__ import annotations

import importlib
import os
import struct
from pathlib import Path

from ..errors import CheckpointError, StylekitError
from .. import hub, registry

# arch name -> (module, class) of the Generator subclass implementing it
ARCHITECTURES = {
    "stylegan2": ("stylekit.networks.stylegan2", "StyleGAN2Generator"),
    "stylegan3": ("stylekit.networks.stylegan3", "StyleGAN3Generator"),
}

_NVIDIA_POSITIONAL = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")


def build_generator(arch: str, config: dict, *, source: str = "<config>"):
    """Construct an (untrained) generator of architecture ``arch`` from its constructor ``config``."""
    if arch not in ARCHITECTURES:
        raise CheckpointError(f"{source}: unknown architecture {arch!r}; stylekit knows {sorted(ARCHITECTURES)}.")
    module_name, class_name = ARCHITECTURES[arch]
    cls = getattr(importlib.import_module(module_name), class_name)
    try:
        return cls(dict(config))
    except StylekitError:
        raise
    except (TypeError, ValueError, KeyError, AssertionError, RuntimeError) as exc:
        raise CheckpointError(f"{source}: cannot build a {arch} generator from its config ({exc}).") from exc


def load_state_checked(G, state: dict, *, source: str) -> None:
    """Load ``state`` into ``G`` requiring every name and shape to fit; says which tensor did not."""
    expected = G.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        raise CheckpointError(f"{source}: tensor {unexpected[0]!r} (shape {tuple(state[unexpected[0]].shape)}) does "
                              f"not fit the {G.arch} architecture read from the file"
                              + (f" ({len(unexpected)} such tensors)" if len(unexpected) > 1 else "") + ".")
    if missing:
        raise CheckpointError(f"{source}: the checkpoint lacks tensor {missing[0]!r} (expected shape "
                              f"{tuple(expected[missing[0]].shape)}) that the {G.arch} architecture needs"
                              + (f" ({len(missing)} missing)" if len(missing) > 1 else "") + ".")
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise CheckpointError(f"{source}: tensor {key!r} has shape {tuple(value.shape)}, but the architecture "
                                  f"read from the file expects {tuple(expected[key].shape)}.")
    G.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=True)


def _finish(G, device):
    return G.eval().requires_grad_(False).to(device)


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


def load_generator_file(path: str | os.PathLike, *, device="cpu", format: str | None = None):
    """Read a generator from a local file of any supported format."""
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
    return _finish(G, device)


def load_generator(spec, *, device="cpu", cache_dir=None, local_files_only: bool | None = None):
    """Load a generator from a path, a registered name, or an ``hf://owner/repo/file`` address.

    Args:
        spec: ``"toyfaces"``, ``"ffhq-1024"``, ``"path/to/network.pkl"``, ``"hf://owner/repo/G.pkl"``,
            or an already-built Generator (returned moved to ``device``).
        device: where the weights go (``"cpu"``, ``"cuda"``, a ``torch.device``).
        cache_dir, local_files_only: passed to the Hugging Face download (see ``stylekit.hub.fetch``).

    Returns: a ``stylekit.networks.base.Generator`` in eval mode with ``requires_grad=False``.
    """
    from ..networks.base import Generator

    if isinstance(spec, Generator):
        return spec.to(device)
    spec_str = os.fspath(spec)
    if spec_str.startswith("hf://"):
        hub_file = hub.parse_hf_uri(spec_str)
        path = hub.fetch(hub_file, cache_dir=cache_dir, local_files_only=local_files_only)
        return load_generator_file(path, device=device)
    if Path(spec_str).expanduser().is_file():
        return load_generator_file(Path(spec_str).expanduser(), device=device)
    entry = registry.resolve(spec_str, "generator")
    path = registry.artifact_path(entry, cache_dir=cache_dir, local_files_only=local_files_only)
    fmt = {"nvidia-pkl": "nvidia-pkl", "safetensors": "safetensors", "rosinality-pt": "torch"}.get(entry.format)
    return load_generator_file(path, device=device, format=fmt)
