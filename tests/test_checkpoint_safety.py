"""Checkpoints are data, never code: malicious, corrupt, truncated and wrong-format files."""

from __future__ import annotations

import io
import os
import pickle
import sys
import types

import numpy as np
import pytest
import torch

import stylekit
from stylekit.checkpoints.nvidia_pickle import PersistentObject, _AttrDict, read_nvidia_pickle
from stylekit.errors import CheckpointError, UnsafeCheckpointError

from conftest import tolerance_ok


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_calling_os_system_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _Evil(marker)}, protocol=4))
    with pytest.raises(UnsafeCheckpointError) as info:
        stylekit.load_generator(path)
    assert "os.system" in str(info.value) or "posix.system" in str(info.value)
    assert str(path) in str(info.value)
    assert not marker.exists()


def test_pickle_with_builtins_eval_is_refused(tmp_path):
    class EvalReduce:
        def __reduce__(self):
            return (eval, ("__import__('os').getcwd()",))

    path = tmp_path / "eval.pkl"
    path.write_bytes(pickle.dumps(EvalReduce(), protocol=2))
    with pytest.raises(UnsafeCheckpointError, match="builtins.eval"):
        read_nvidia_pickle(path)


@pytest.mark.parametrize("content, reason", [
    (b"", "empty"),
    (b"hello, I am a text file\n", "not a checkpoint"),
    (bytes(range(256)) * 4, "not a checkpoint"),
])
def test_garbage_files_fail_with_named_file(tmp_path, content, reason):
    path = tmp_path / "model.pkl"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        stylekit.load_generator(path)
    assert str(path) in str(info.value)
    assert reason in str(info.value)


def test_truncated_nvidia_pickle(tmp_path, fixtures_dir):
    data = (fixtures_dir / "nvidia" / "sg2_small.pkl").read_bytes()
    path = tmp_path / "truncated.pkl"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        stylekit.load_generator(path)


def test_missing_file_and_unknown_name():
    with pytest.raises(stylekit.ModelNotFoundError) as info:
        stylekit.load_generator("no-such-model-anywhere")
    assert "toyfaces" in str(info.value)  # lists the registered names


# --- an NVIDIA pickle whose embedded source was replaced by malicious code ------------------------

def _fake_official_modules(monkeypatch, calls):
    """Stand-ins for torch_utils.persistence / dnnlib so that the test can *write* official-style pickles."""
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # what the official loader would do: exec(meta['module_src'])
        calls.append(meta)
        exec(meta["module_src"], {})

    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    torch_utils = types.ModuleType("torch_utils")
    torch_utils.persistence = persistence
    dnnlib_util = types.ModuleType("dnnlib.util")

    class EasyDict(dict):
        pass

    EasyDict.__module__ = "dnnlib.util"
    EasyDict.__qualname__ = "EasyDict"
    dnnlib_util.EasyDict = EasyDict
    dnnlib = types.ModuleType("dnnlib")
    dnnlib.util = dnnlib_util
    for name, mod in [("torch_utils", torch_utils), ("torch_utils.persistence", persistence),
                      ("dnnlib", dnnlib), ("dnnlib.util", dnnlib_util)]:
        monkeypatch.setitem(sys.modules, name, mod)
    return persistence, EasyDict


def _repickle_with_source(records: dict, module_src: str, persistence, EasyDict) -> bytes:
    """Write PersistentObject records back as official persistence records carrying ``module_src``."""

    class Writer(pickle.Pickler):
        def reducer_override(self, obj):
            if isinstance(obj, PersistentObject):
                meta = dict(type="class", version=6, module_src=module_src, class_name=obj.class_name,
                            state=obj.state)
                return (persistence._reconstruct_persistent_obj, (meta,))
            if isinstance(obj, _AttrDict):
                return (EasyDict, (), None, None, iter(obj.items()))
            return NotImplemented

    buf = io.BytesIO()
    Writer(buf, protocol=4).dump(records)
    return buf.getvalue()


def test_malicious_embedded_source_is_ignored_and_weights_load(tmp_path, fixtures_dir, monkeypatch):
    marker = tmp_path / "source-ran"
    records = read_nvidia_pickle(fixtures_dir / "nvidia" / "sg2_small.pkl")
    calls = []
    persistence, EasyDict = _fake_official_modules(monkeypatch, calls)
    evil_src = f"import os\nos.system('touch {marker}')\n"
    data = _repickle_with_source(records, evil_src, persistence, EasyDict)

    # Sanity check that the file really is malicious: an official-style loader runs the embedded source.
    pickle.loads(data)
    assert marker.exists() and calls
    marker.unlink()

    path = tmp_path / "network-snapshot-evil.pkl"
    path.write_bytes(data)
    G = stylekit.load_generator(path)
    assert not marker.exists()
    ref = np.load(fixtures_dir / "nvidia" / "sg2_small_ref.npz")
    with torch.no_grad():
        img = G.synthesis(G.mapping(torch.from_numpy(ref["z"]), None), noise_mode="const")
    ok, err, bound = tolerance_ok(img.numpy(), ref["img"])
    assert ok, (err, bound)
