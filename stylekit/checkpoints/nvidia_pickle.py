"""Read official NVIDIA StyleGAN2-ADA / StyleGAN3 pickles without executing anything from them.

The official training loop pickles whole ``torch.nn.Module`` objects through
``torch_utils.persistence``: every network is stored as a call
``torch_utils.persistence._reconstruct_persistent_obj(meta)`` where ``meta`` holds the class name,
the class's Python *source code* (``module_src``) and the object's ``__dict__`` (parameters,
buffers, submodules and the constructor arguments ``_init_kwargs``). Unpickling such a file with
``pickle.load`` imports ``dnnlib`` / ``torch_utils`` and executes that embedded source.

:class:`RestrictedUnpickler` resolves only an explicit allow-list of globals. The persistence
call is replaced by a function that returns a plain :class:`PersistentObject` record; the
embedded source is dropped unread. Any other global (``os.system``, ``builtins.eval``, ...) stops
loading with :class:`~stylekit.errors.UnsafeCheckpointError`.
"""

from __future__ import annotations

import builtins
import collections
import io
import pickle
from dataclasses import dataclass, field
from typing import Any

from ..errors import CheckpointError, UnsafeCheckpointError


@dataclass
class PersistentObject:
    """What a pickled NVIDIA network becomes: its class name and its ``__dict__`` (never its code)."""

    class_name: str
    state: dict = field(default_factory=dict)

    @property
    def init_kwargs(self) -> dict:
        return dict(self.state.get("_init_kwargs") or {})

    @property
    def init_args(self) -> tuple:
        return tuple(self.state.get("_init_args") or ())

    @property
    def children(self) -> dict[str, "PersistentObject | None"]:
        return dict(self.state.get("_modules") or {})

    def tensors(self, prefix: str = "") -> dict[str, Any]:
        """All parameters and buffers of this module tree as ``{dotted.name: tensor}``."""
        out: dict[str, Any] = {}
        for group in ("_parameters", "_buffers"):
            for name, value in (self.state.get(group) or {}).items():
                if value is not None:
                    out[prefix + name] = value.detach() if hasattr(value, "detach") else value
        for name, child in self.children.items():
            if isinstance(child, PersistentObject):
                out.update(child.tensors(prefix + name + "."))
            elif child is not None:
                raise CheckpointError(f"submodule {prefix + name!r} is not a persistent network object")
        return out


class _AttrDict(dict):
    """Stands in for ``dnnlib.EasyDict`` (a dict whose keys are also attributes)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc

    def __setstate__(self, state):
        if isinstance(state, dict):
            self.update(state)


def _reconstruct_persistent_obj(meta: dict) -> PersistentObject:
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise UnsafeCheckpointError("unsupported torch_utils.persistence record (only 'class' records can be read)")
    state = meta.get("state") or {}
    if not isinstance(state, dict):
        raise CheckpointError("persistent object state is not a dict")
    # meta['module_src'] (Python source) is deliberately never looked at.
    return PersistentObject(class_name=str(meta.get("class_name")), state=state)


def _load_storage_from_bytes(data: bytes):
    import torch

    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def _allowed_globals() -> dict[tuple[str, str], Any]:
    import numpy as np
    import torch
    import torch._utils as tu

    allowed: dict[tuple[str, str], Any] = {
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
        ("dnnlib.util", "EasyDict"): _AttrDict,
        ("dnnlib", "EasyDict"): _AttrDict,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): tu._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor"): tu._rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): tu._rebuild_parameter,
        ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
        ("torch", "Size"): torch.Size,
        ("torch", "device"): torch.device,
        ("numpy", "dtype"): np.dtype,
        ("numpy", "ndarray"): np.ndarray,
    }
    if hasattr(tu, "_rebuild_parameter_with_state"):
        allowed[("torch._utils", "_rebuild_parameter_with_state")] = tu._rebuild_parameter_with_state
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "_reconstruct")] = _numpy_reconstruct
        allowed[(mod, "scalar")] = _numpy_scalar
    for name in ("set", "frozenset", "slice", "range", "complex", "bytearray", "tuple", "list", "dict"):
        allowed[("builtins", name)] = getattr(builtins, name)
    for name in ("float32", "float16", "float64", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool"):
        allowed[("torch", name)] = getattr(torch, name)
    return allowed


def _numpy_reconstruct(subtype, shape, dtype_code):
    import numpy as np

    if subtype is not np.ndarray:
        raise UnsafeCheckpointError("pickle asks numpy to build an ndarray subclass; refused")
    return np.ndarray.__new__(np.ndarray, shape, dtype_code)


def _numpy_scalar(dtype, data=None):
    import numpy as np

    if dtype.hasobject:
        raise UnsafeCheckpointError("pickle holds a numpy object scalar; refused")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only allow-listed globals and never imports a module itself."""

    def __init__(self, file, *, source_name: str = "<pickle>"):
        super().__init__(file)
        self._allowed = _allowed_globals()
        self._source_name = source_name

    def find_class(self, module: str, name: str):
        key = (module, name)
        if key in self._allowed:
            return self._allowed[key]
        raise UnsafeCheckpointError(
            f"{self._source_name}: the pickle asks for the global {module}.{name}, which stylekit does not "
            "allow (only NVIDIA network records, tensors and plain containers are read; nothing from the "
            "file was executed). If this is a genuine checkpoint, convert it with the official code in an "
            "isolated environment and save a state dict or safetensors file instead.")

    def persistent_load(self, pid):
        raise UnsafeCheckpointError(f"{self._source_name}: persistent ids are not part of NVIDIA pickles; refused")


def read_nvidia_pickle(path_or_bytes, *, source_name: str | None = None) -> dict:
    """Unpickle an NVIDIA snapshot into plain records.

    Returns the top-level dict (``{'G_ema': PersistentObject, 'G': ..., 'D': ..., ...}``) with every
    network replaced by a :class:`PersistentObject`. Raises ``CheckpointError`` for truncated or
    non-pickle files and ``UnsafeCheckpointError`` for disallowed globals.
    """
    if isinstance(path_or_bytes, (bytes, bytearray)):
        data = bytes(path_or_bytes)
        source_name = source_name or "<bytes>"
    else:
        source_name = source_name or str(path_or_bytes)
        try:
            with open(path_or_bytes, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise CheckpointError(f"{source_name}: cannot read the file ({exc.strerror or exc}).") from exc
    if not data:
        raise CheckpointError(f"{source_name}: the file is empty; download it again.")
    if data[:1] != b"\x80":
        raise CheckpointError(f"{source_name}: not a pickle file (it does not start with a pickle protocol header).")
    try:
        result = RestrictedUnpickler(io.BytesIO(data), source_name=source_name).load()
    except UnsafeCheckpointError:
        raise
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            RuntimeError, MemoryError) as exc:
        raise CheckpointError(
            f"{source_name}: the pickle is truncated or corrupt ({type(exc).__name__}: {exc}); download it again.") from exc
    if not isinstance(result, dict):
        raise CheckpointError(f"{source_name}: expected a dict of networks (G_ema, G, D, ...), found {type(result).__name__}.")
    return result
