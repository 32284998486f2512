"""Tests of the toyfaces attribute predictor and its training script."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stylekit.errors import CheckpointError, ImageInputError, InvalidArgumentError
from stylekit.toyfaces.attributes import (
    ATTRIBUTE_NAMES,
    ATTRIBUTES,
    BINARY_ATTRIBUTES,
    CONTINUOUS_ATTRIBUTES,
    attribute_spec,
    attributes_to_unit,
    sample_attributes,
)
from stylekit.checkpoints.predictor import load_predictor, predictor_metrics, resolve_predictor_path, save_predictor
from stylekit.toyfaces.predictor import new_predictor
from stylekit.toyfaces.renderer import render_batch
from stylekit.train.cli import main
from stylekit.train.predictor_data import degrade, make_batch


@pytest.fixture(scope="module")
def predictor():
    return load_predictor()


@pytest.fixture(scope="module")
def fresh_batch():
    attrs = sample_attributes(64, seed=2024)
    images = render_batch(attrs, size=64, seeds=np.arange(64) + 99)
    return attrs, images


def test_shipped_weights_are_small_and_documented():
    path = resolve_predictor_path("toyfaces")
    assert path.is_file(), "the predictor weights must ship inside the package"
    assert path.stat().st_size < 2_000_000
    card = path.with_name("predictor.md")
    text = card.read_text()
    assert "python -m stylekit.train predictor" in text
    for name in ATTRIBUTE_NAMES:
        assert f"| {name} |" in text
    metrics = predictor_metrics()
    for name in BINARY_ATTRIBUTES:
        assert metrics["clean"]["accuracy"][name] >= 0.95
    for name in CONTINUOUS_ATTRIBUTES:
        assert metrics["clean"]["r2"][name] >= 0.9


def test_outputs_and_shapes(predictor, fresh_batch):
    _, images = fresh_batch
    x = images[:5]
    raw = predictor(x)
    assert raw.shape == (5, len(ATTRIBUTES))
    feats = predictor.features(x)
    assert feats.shape == (5, predictor.config["feature_dim"]) and torch.isfinite(feats).all()
    out = predictor.predict(x)
    assert list(out) == list(ATTRIBUTE_NAMES)
    for name, value in out.items():
        assert value.shape == (5,)
        spec = attribute_spec(name)
        assert float(value.min()) >= spec.low and float(value.max()) <= spec.high
    unit = predictor.predict_unit(x)
    # the unit view is the same reading as predict's, column by column in ATTRIBUTES order
    as_unit = attributes_to_unit({name: value.numpy() for name, value in out.items()})
    assert unit.shape == (5, len(ATTRIBUTES)) and np.allclose(unit.numpy(), as_unit, atol=1e-6)
    # any input size works (resized to 64 inside); a 128 render reads like the 64 one
    big = render_batch({k: v[:5] for k, v in fresh_batch[0].items()}, size=128)
    out_big = predictor.predict(big)
    for name in BINARY_ATTRIBUTES:
        assert torch.equal(out_big[name] > 0.5, out[name] > 0.5)


def test_accurate_on_fresh_renders(predictor, fresh_batch):
    attrs, images = fresh_batch
    out = predictor.predict(images)
    for name in BINARY_ATTRIBUTES:
        acc = float(((out[name] > 0.5).numpy() == (attrs[name] > 0.5)).mean())
        assert acc >= 0.9, f"{name}: accuracy {acc:.3f} on 64 fresh renders"
    for name in CONTINUOUS_ATTRIBUTES:
        truth = attrs[name]
        pred = out[name].numpy()
        r2 = 1.0 - ((pred - truth) ** 2).sum() / ((truth - truth.mean()) ** 2).sum()
        assert r2 >= 0.8, f"{name}: R2 {r2:.3f} on 64 fresh renders"


def test_sees_a_single_edit(predictor):
    """Switching one attribute flips that prediction and leaves the others."""
    base = {k: np.full(2, v[0], np.float32) for k, v in sample_attributes(1, seed=5).items()}
    base["glasses"] = np.array([0.0, 1.0], np.float32)
    base["eyes_open"] = np.array([1.0, 1.0], np.float32)
    out = predictor.predict(render_batch(base))
    assert float(out["glasses"][0]) < 0.5 < float(out["glasses"][1])
    for name in BINARY_ATTRIBUTES:
        if name != "glasses":
            assert bool(out[name][0] > 0.5) == bool(out[name][1] > 0.5)


def test_robust_to_degradation(predictor, fresh_batch):
    attrs, images = fresh_batch
    degraded = degrade(images, torch.Generator().manual_seed(0), p=1.0)
    out = predictor.predict(degraded)
    for name in BINARY_ATTRIBUTES:
        acc = float(((out[name] > 0.5).numpy() == (attrs[name] > 0.5)).mean())
        assert acc >= 0.85, f"{name}: accuracy {acc:.3f} on degraded renders"


def test_gradients_reach_the_image(predictor, fresh_batch):
    x = fresh_batch[1][:2].clone().requires_grad_(True)
    predictor.predict(x)["smile"].sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert all(not p.requires_grad for p in predictor.parameters())


def test_errors(tmp_path, predictor):
    with pytest.raises(CheckpointError, match="no such"):
        load_predictor(tmp_path / "nope.safetensors")
    bogus = tmp_path / "bogus.safetensors"
    bogus.write_bytes(b"not a safetensors file at all")
    with pytest.raises(CheckpointError):
        load_predictor(bogus)
    from safetensors.torch import save_file
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other), metadata={"format": "something-else"})
    with pytest.raises(CheckpointError, match="not a stylekit attribute predictor"):
        load_predictor(other)
    with pytest.raises(ImageInputError):
        predictor.predict(torch.zeros(2, 1, 64, 64))
    with pytest.raises(ImageInputError):
        predictor.predict(torch.zeros(3, 64, 64))


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = new_predictor(channels=(8, 8, 8, 8, 8, 8, 8), feature_dim=16).eval()
    path = save_predictor(model, tmp_path / "p.safetensors", metrics={"note": 1})
    loaded = load_predictor(path)
    assert loaded.config == model.config
    assert predictor_metrics(path) == {"note": 1}
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    torch.testing.assert_close(loaded(x), model(x), atol=2e-2, rtol=2e-2)


def test_degrade_and_make_batch():
    x = render_batch(sample_attributes(6, seed=1), size=64)
    g = torch.Generator().manual_seed(3)
    assert torch.equal(degrade(x, g, p=0.0), x)
    y = degrade(x, g, p=1.0)
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1
    assert float((y - x).abs().mean()) > 1e-3
    images, targets = make_batch(8, np.random.default_rng(0), torch.Generator().manual_seed(0))
    assert images.shape == (8, 3, 64, 64) and targets.shape == (8, len(ATTRIBUTES))
    assert targets.min() >= 0 and targets.max() <= 1


def test_training_script_runs_saves_and_resumes(tmp_path, capsys):
    run = tmp_path / "run"
    out = run / "predictor.safetensors"
    args = ["--batch", "8", "--eval-samples", "16", "--pool", "16", "--log-every", "1", "--snapshot-every", "1",
            "--out", str(run)]
    assert main(["predictor", "--steps", "2"] + args) == 0
    log = capsys.readouterr().out
    assert "step 2/2" in log and "accuracy" in log
    assert out.is_file() and (run / "checkpoint-latest.pt").is_file()
    card = out.with_name("predictor.md").read_text()
    assert "--steps 2" in card and "| glasses | binary | accuracy |" in card
    metrics = predictor_metrics(out)
    assert set(metrics["clean"]["accuracy"]) == set(BINARY_ATTRIBUTES)
    assert set(metrics["clean"]["r2"]) == set(CONTINUOUS_ATTRIBUTES)
    load_predictor(out)  # a file the loader accepts
    assert main(["predictor", "--steps", "3"] + args + ["--resume"]) == 0
    assert "resumed from" in capsys.readouterr().out
    from stylekit.train.predictor import PredictorConfig, train_predictor

    with pytest.raises(InvalidArgumentError):
        train_predictor(PredictorConfig(steps=1, resume="latest", out=str(tmp_path / "fresh")))
    assert main(["predictor", "--steps", "1", "--resume", "--out", str(tmp_path / "fresh2")]) == 2
