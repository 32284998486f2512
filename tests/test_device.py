"""Where things run: ``STYLEKIT_DEVICE`` (stylekit.settings.device), the gallery's one device, the ZeroGPU
decorator (demos.device.gpu_task) and the gallery's first model (``STYLEKIT_DEFAULT_MODEL``)."""

from __future__ import annotations

import inspect
import sys
import types
from collections import OrderedDict

import pytest
import torch

from stylekit import settings
from stylekit.errors import InvalidArgumentError


@pytest.fixture
def gpu_present(monkeypatch):
    """Make PyTorch report two GPUs (nothing is moved to them in the tests that use this)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


# ----------------------------------------------------------------------------------------------
# STYLEKIT_DEVICE


def test_device_default_follows_what_pytorch_sees(monkeypatch):
    monkeypatch.delenv("STYLEKIT_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert settings.device() == expected
    for value in ("auto", " AUTO ", ""):
        monkeypatch.setenv("STYLEKIT_DEVICE", value)
        assert settings.device() == expected


def test_device_picks_cuda_when_there_is_a_gpu(monkeypatch, gpu_present):
    monkeypatch.delenv("STYLEKIT_DEVICE", raising=False)
    assert settings.device() == "cuda"
    for value, expected in (("cpu", "cpu"), ("cuda", "cuda"), ("cuda:1", "cuda:1"), ("CUDA:0", "cuda:0")):
        monkeypatch.setenv("STYLEKIT_DEVICE", value)
        assert settings.device() == expected


def test_device_cpu_needs_no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("STYLEKIT_DEVICE", "cpu")
    assert settings.device() == "cpu"
    monkeypatch.setenv("STYLEKIT_DEVICE", "auto")
    assert settings.device() == "cpu"


@pytest.mark.parametrize("value", ["gpu", "cuda:", "cuda:x", "cuda:-1", "tpu", "cpu:0", "mps-ish"])
def test_bad_device_values_say_what_to_set(monkeypatch, gpu_present, value):
    monkeypatch.setenv("STYLEKIT_DEVICE", value)
    with pytest.raises(InvalidArgumentError, match="STYLEKIT_DEVICE") as info:
        settings.device()
    assert "auto, cpu, cuda or cuda:N" in str(info.value)


def test_cuda_without_a_gpu_or_past_the_last_one_is_an_error(monkeypatch, gpu_present):
    monkeypatch.setenv("STYLEKIT_DEVICE", "cuda:2")  # two GPUs: 0 and 1
    with pytest.raises(InvalidArgumentError, match="sees 2 GPU"):
        settings.device()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("STYLEKIT_DEVICE", "cuda")
    with pytest.raises(InvalidArgumentError, match="sees none"):
        settings.device()


# ----------------------------------------------------------------------------------------------
# the gallery's one device


def test_the_gallery_loads_models_on_the_device_settings_pick(monkeypatch, gpu_present):
    """No tab names a device: get_generator asks demos.device, which asks STYLEKIT_DEVICE / PyTorch."""
    from demos import common, models

    loads = []
    monkeypatch.setattr(models, "_MODELS", OrderedDict())
    monkeypatch.setattr(models, "_FAILURES", {})
    monkeypatch.setattr(models, "_load", lambda name, device, progress=None: loads.append((name, device)) or object())
    monkeypatch.delenv("STYLEKIT_DEVICE", raising=False)
    common.get_generator("toyfaces")
    monkeypatch.setenv("STYLEKIT_DEVICE", "cpu")
    common.get_generator("toyfaces")
    assert loads == [("toyfaces", "cuda"), ("toyfaces", "cpu")]


def test_no_tab_hard_codes_the_cpu():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "demos"
    for path in sorted(root.glob("*.py")):
        if path.name.startswith(("bench_", "defaults_")):
            continue  # measurement scripts: they pin their own device on purpose
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "on purpose" not in line:  # a CPU-side helper says why
                assert 'device="cpu"' not in line and "device='cpu'" not in line, f"{path.name}:{number}"


# ----------------------------------------------------------------------------------------------
# gpu_task: the ZeroGPU decorator


#: every callback that runs the networks (module, function); each must carry gpu_task
GPU_CALLBACKS = [
    ("generate", "generate"), ("generate", "use_first_seed"), ("mixing", "style_mix"), ("invert", "invert"),
    ("edit", "edit_interfacegan"), ("edit", "edit_ganspace"), ("edit", "edit_sefa"),
    ("stylespace", "stylespace_edit"), ("stylespace", "stylespace_find"),
    ("local", "local_parts"), ("local", "local_transfer"), ("local", "local_canvas"), ("local", "local_crossover"),
    ("morph", "morph"), ("morph", "analogy"), ("text", "text_edit"), ("sg3", "sg3_pose"), ("common", "use_result"),
]


@pytest.mark.parametrize("module, name", GPU_CALLBACKS, ids=lambda x: x)
def test_every_gpu_heavy_callback_is_a_gpu_task(module, name):
    import importlib

    fn = getattr(importlib.import_module(f"demos.{module}"), name)
    assert getattr(fn, "gpu_seconds", 0) > 0, f"demos.{module}.{name} is not decorated with gpu_task"
    # gradio reads the signature (gr.Progress, gr.Request); the decorator must keep it
    assert "model" in inspect.signature(fn).parameters


def test_decorated_callbacks_run_on_cpu_and_return_what_the_undecorated_ones_do():
    import numpy as np

    from demos import generate

    decorated, plain = generate.generate, generate.generate.__wrapped__
    a = decorated("toyfaces", "0-1", 0.7, "const")[0]  # (grid, zip of the full-size samples)
    b = plain("toyfaces", "0-1", 0.7, "const")[0]
    assert np.array_equal(np.asarray(a), np.asarray(b))
    latent, image, text = generate.use_first_seed("toyfaces", "3", 0.5)
    latent2, image2, text2 = generate.use_first_seed.__wrapped__("toyfaces", "3", 0.5)
    assert latent.device.type == "cpu" and torch.equal(latent.tensor, latent2.tensor.cpu())
    assert np.array_equal(np.asarray(image), np.asarray(image2)) and text == text2


def test_a_streaming_callback_stays_a_generator():
    from demos.device import gpu_task

    def stream(n):
        for i in range(n):
            yield torch.full((1,), float(i)), "step"

    decorated = gpu_task(30)(stream)
    assert inspect.isgeneratorfunction(decorated)
    assert [(float(t), s) for t, s in decorated(3)] == [(0.0, "step"), (1.0, "step"), (2.0, "step")]


def test_to_cpu_walks_results_and_keeps_other_values():
    from demos.device import to_cpu
    from stylekit.latent import Latent

    t = torch.ones(2)
    latent = Latent("w+", torch.zeros(1, 3, 4))
    out = to_cpu((t, [latent, "text", None], {"k": t}))
    assert isinstance(out, tuple) and out[0] is t and out[1][0] is latent and out[1][1:] == ["text", None]
    assert out[2]["k"] is t


@pytest.fixture
def fake_spaces(monkeypatch):
    """A stand-in ``spaces`` package that records ``spaces.GPU(duration=...)`` and marks what it wraps."""
    calls = []

    def GPU(task=None, *, duration=None, size=None):
        def wrap(fn):
            def on_gpu(*args, **kwargs):
                calls.append(("call", fn.__name__))
                return fn(*args, **kwargs)

            on_gpu.__dict__.update(fn.__dict__)
            on_gpu.__wrapped__ = fn
            return on_gpu

        calls.append(("GPU", duration))
        return wrap(task) if callable(task) else wrap

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=GPU))
    return calls


def test_on_zero_gpu_the_decorator_asks_spaces_for_a_gpu_with_the_duration(monkeypatch, fake_spaces):
    from demos.device import gpu_task

    monkeypatch.setenv("SPACES_ZERO_GPU", "true")

    def heavy(x):
        return torch.tensor([x]) * 2, "done"

    decorated = gpu_task(45)(heavy)
    assert fake_spaces == [("GPU", 45)]
    result = decorated(3)
    assert fake_spaces[-1] == ("call", "heavy")
    assert torch.equal(result[0], torch.tensor([6])) and result[1] == "done"
    assert decorated.gpu_seconds == 45


def test_elsewhere_the_decorator_leaves_spaces_alone(monkeypatch, fake_spaces):
    from demos.device import gpu_task

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    decorated = gpu_task(45)(lambda: 1)
    assert decorated() == 1 and fake_spaces == []
    monkeypatch.setenv("SPACES_ZERO_GPU", "false")
    assert gpu_task(45)(lambda: 2)() == 2 and fake_spaces == []


def test_zero_gpu_without_the_spaces_package_runs_plainly_and_says_so(monkeypatch, caplog):
    import logging

    from demos.device import gpu_task

    monkeypatch.setenv("SPACES_ZERO_GPU", "1")
    monkeypatch.setitem(sys.modules, "spaces", None)  # import spaces -> ImportError
    with caplog.at_level(logging.WARNING, logger="stylekit.gallery"):
        decorated = gpu_task(10)(lambda: "ran")
    assert decorated() == "ran"
    assert "spaces package is not installed" in caplog.text


def test_the_gallery_computes_in_the_precision_setting(monkeypatch):
    from demos import models

    seen = []
    monkeypatch.setattr("stylekit.load_generator", lambda name, **kw: seen.append(kw["precision"]) or object())
    monkeypatch.delenv("STYLEKIT_PRECISION", raising=False)
    models._load("toyfaces", "cpu")
    monkeypatch.setenv("STYLEKIT_PRECISION", " FP32 ")
    models._load("toyfaces", "cpu")
    assert seen == ["auto", "fp32"] and settings.precision() == "fp32"
    monkeypatch.setenv("STYLEKIT_PRECISION", "half")
    with pytest.raises(InvalidArgumentError, match="STYLEKIT_PRECISION='half'.*auto"):
        settings.precision()


# ----------------------------------------------------------------------------------------------
# STYLEKIT_DEFAULT_MODEL


def test_default_model_setting(monkeypatch):
    monkeypatch.delenv("STYLEKIT_DEFAULT_MODEL", raising=False)
    assert settings.default_model() == "toyfaces"
    monkeypatch.setenv("STYLEKIT_DEFAULT_MODEL", " ffhq-256 ")
    assert settings.default_model() == "ffhq-256"


def test_the_picker_opens_on_the_default_model(monkeypatch):
    from demos import models

    monkeypatch.setenv("STYLEKIT_DEFAULT_MODEL", "ffhq-256")
    choices = models.model_choices()
    assert choices[:2] == ["ffhq-256", "toyfaces"] and len(choices) == len(set(choices))
    assert models.check_startup()[1] == "ffhq-256"  # registered: checked without loading it
    monkeypatch.delenv("STYLEKIT_DEFAULT_MODEL")
    assert models.model_choices()[0] == "toyfaces"


def test_default_model_forms_and_a_bad_name(monkeypatch, tmp_path):
    from demos import models

    monkeypatch.setenv("STYLEKIT_DEVICE", "cpu")
    file = tmp_path / "g.pkl"
    file.write_bytes(b"x")
    for ok in (str(file), "hf://owner/repo/G.pkl", "toyfaces"):
        monkeypatch.setenv("STYLEKIT_DEFAULT_MODEL", ok)
        assert models.check_startup() == ("cpu", ok)
    monkeypatch.setenv("STYLEKIT_DEFAULT_MODEL", "ffhq-9000")
    with pytest.raises(InvalidArgumentError, match="STYLEKIT_DEFAULT_MODEL='ffhq-9000'"):
        models.check_startup()


def test_the_gallery_refuses_to_start_with_a_bad_setting(monkeypatch, capsys):
    import app

    monkeypatch.setattr(app, "build_app", lambda: pytest.fail("the gallery was built despite a bad setting"))
    monkeypatch.setenv("STYLEKIT_HUB_TIMEOUT", "5")  # main() sets this default; the test puts the environment back
    monkeypatch.setenv("STYLEKIT_DEFAULT_MODEL", "no-such-model")
    with pytest.raises(SystemExit) as info:
        app.main([])
    assert info.value.code == 2 and "STYLEKIT_DEFAULT_MODEL='no-such-model'" in capsys.readouterr().err
    monkeypatch.delenv("STYLEKIT_DEFAULT_MODEL")
    monkeypatch.setenv("STYLEKIT_DEVICE", "quantum")
    with pytest.raises(SystemExit):
        app.main([])
    assert "STYLEKIT_DEVICE='quantum'" in capsys.readouterr().err
    monkeypatch.delenv("STYLEKIT_DEVICE")
    monkeypatch.setenv("STYLEKIT_PRECISION", "fp8")
    with pytest.raises(SystemExit):
        app.main([])
    assert "STYLEKIT_PRECISION='fp8'" in capsys.readouterr().err
    monkeypatch.delenv("STYLEKIT_PRECISION")
    monkeypatch.setenv("STYLEKIT_HUB_TIMEOUT", "never")
    with pytest.raises(SystemExit):
        app.main([])
    assert "STYLEKIT_HUB_TIMEOUT='never'" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# the Space folder


def test_the_space_installs_alignment_and_zero_gpu_support(tmp_path):
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("assemble", root / "hf_space" / "assemble.py")
    assemble = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(assemble)
    names = assemble.requirement_names(root / "hf_space" / "requirements.txt")
    assert {"dlib-bin", "face-recognition-models", "spaces", "torch", "gradio"} <= names
    pinned = [line for line in (root / "hf_space" / "requirements.txt").read_text().splitlines()
              if line.split("==")[0] in ("dlib-bin", "face-recognition-models", "spaces")]
    assert len(pinned) == 3 and all("==" in line for line in pinned), pinned
    # the deploy check names a dropped package
    bad = tmp_path / "requirements.txt"
    bad.write_text("torch==2.14.1\ngradio==6.31.0\nface_recognition_models\n")
    assert assemble.requirement_names(bad) == {"torch", "gradio", "face-recognition-models"}
    (tmp_path / "README.md").write_text((root / "hf_space" / "README.md").read_text())
    problems = assemble.validate(tmp_path)
    assert any("does not install dlib-bin, spaces" in p for p in problems), problems
