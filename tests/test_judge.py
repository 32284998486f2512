"""The held-out judge: its network, the negatives it must reject, its file, its training, and its isolation."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from stylekit.errors import CheckpointError, ImageInputError
from stylekit.judge import FACE_THRESHOLD, load_judge, new_judge, save_judge
from stylekit.judge.negatives import KINDS, blur, cutout, flat, negatives, noise, scramble
from stylekit.toyfaces.attributes import ATTRIBUTE_NAMES, BINARY_ATTRIBUTES, CONTINUOUS_ATTRIBUTES, sample_attributes
from stylekit.toyfaces.renderer import render_batch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def judge():
    return load_judge()


@pytest.fixture(scope="module")
def faces():
    attrs = sample_attributes(96, seed=31337)  # a seed neither the judge's training nor its card's evaluation uses
    return attrs, render_batch(attrs, size=64, seeds=np.arange(96) + 5)


def test_network_outputs_and_shapes():
    j = new_judge(seed=1).eval()
    x = torch.rand(5, 3, 48, 48) * 2 - 1
    read = j.read(x)
    assert set(read) == set(ATTRIBUTE_NAMES) | {"face"}
    assert all(v.shape == (5,) for v in read.values())
    unit, face = j.read_unit(x)
    assert unit.shape == (5, len(ATTRIBUTE_NAMES)) and face.shape == (5,)
    assert j.features(x).shape == (5, 256)
    # the same seed gives the same weights; another seed other weights
    assert torch.equal(new_judge(seed=1).stem.weight, j.stem.weight)
    assert not torch.equal(new_judge(seed=2).stem.weight, j.stem.weight)
    with pytest.raises(ImageInputError, match=r"\[N, 3, H, W\]"):
        j.read(torch.zeros(3, 64, 64))
    with pytest.raises(ImageInputError, match="too small"):
        j.read(torch.zeros(1, 3, 4, 4))


def test_negatives_destroy_the_face(faces):
    _, x = faces
    x = x[:12]
    gen = torch.Generator().manual_seed(0)
    f = flat(6, 64, gen)
    assert f.shape == (6, 3, 64, 64) and float(f.amax() - f.amin()) <= 2.0
    assert float((f - f.mean(dim=(2, 3), keepdim=True)).abs().amax()) <= 0.21  # one colour (+ a faint ramp)
    n = noise(6, 64, gen)
    assert n.shape == (6, 3, 64, 64) and float(n.abs().amax()) <= 1.0
    b = blur(x, gen)
    hf = lambda im: (im[..., 1:, :] - im[..., :-1, :]).abs().mean()  # noqa: E731
    assert float(hf(b)) < 0.35 * float(hf(x))
    s = scramble(x, gen)
    assert torch.allclose(s.mean(dim=(2, 3)), x.mean(dim=(2, 3)), atol=0.05)  # same pixels ...
    assert bool(((s - x).abs().flatten(1).amax(1) > 0.1).all())              # ... moved in every image
    c = cutout(x, gen)
    changed = (c - x).abs().sum(1) > 1e-6
    centre = changed[:, 16:48, 16:48].float().mean(dim=(1, 2))
    assert bool((centre > 0.1).all()) and float(changed[:, :4, :].float().mean()) == 0.0
    mixed = negatives(x, gen)
    assert mixed.shape == x.shape and float(mixed.abs().amax()) <= 1.0
    with pytest.raises(KeyError):
        negatives(x, gen, kinds=("no-such-kind",))


def test_shipped_judge_reads_fresh_renders(judge, faces):
    attrs, x = faces
    with torch.no_grad():
        read = judge.read(x)
    assert float((read["face"] >= FACE_THRESHOLD).float().mean()) >= 0.95
    for name in BINARY_ATTRIBUTES:
        acc = float(((read[name] >= 0.5).numpy() == (attrs[name] >= 0.5)).mean())
        assert acc >= 0.85, f"judge accuracy on {name}: {acc:.3f}"
    for name in CONTINUOUS_ATTRIBUTES:
        corr = np.corrcoef(read[name].numpy(), attrs[name])[0, 1]
        assert corr >= 0.8, f"judge correlation on {name}: {corr:.3f}"


def test_shipped_judge_rejects_degenerate_images(judge, faces):
    """Grey, black, white and noise are not faces, nor is any negative kind (most of the time)."""
    _, x = faces
    degenerate = torch.cat([torch.zeros(1, 3, 64, 64), -torch.ones(1, 3, 64, 64), torch.ones(1, 3, 64, 64),
                            torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(3)).clamp(-1, 1)])
    with torch.no_grad():
        assert bool((judge.face_score(degenerate) < FACE_THRESHOLD).all())
        gen = torch.Generator().manual_seed(11)
        for kind in KINDS:
            rejected = float((judge.face_score(negatives(x[:48], gen, kinds=(kind,))) < FACE_THRESHOLD).float().mean())
            assert rejected >= 0.8, f"the judge accepts {kind} negatives as faces ({1 - rejected:.2f})"


def test_judge_file_round_trip_and_bad_files(tmp_path):
    j = new_judge(seed=4).eval()
    path = save_judge(j, tmp_path / "j.safetensors", metrics={"n": 3})
    back = load_judge(path)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    assert torch.allclose(back(x), j.half().float()(x), atol=1e-4)
    from stylekit.judge import judge_metrics

    assert judge_metrics(path) == {"n": 3}
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        load_judge(bad)
    with pytest.raises(CheckpointError, match="no such judge file"):
        load_judge(tmp_path / "missing.safetensors")
    from stylekit.checkpoints.predictor import save_predictor
    from stylekit.toyfaces.predictor import new_predictor

    foreign = save_predictor(new_predictor(), tmp_path / "pred.safetensors")
    with pytest.raises(CheckpointError):
        load_judge(foreign)


def test_judge_is_registered_with_a_card():
    from stylekit import registry

    path = registry.artifact_path("toyfaces", "judge")
    assert path.name == "judge.safetensors" and path.with_suffix(".md").is_file()
    card = path.with_suffix(".md").read_text()
    assert "Held out" in card and "negative kind" in card


def test_only_the_benchmarks_may_import_the_judge():
    """The import-linter contract names every floor below the benchmarks and the gallery as forbidden importers."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert "demos" in config["root_packages"]
    contracts = [c for c in config["contracts"] if c.get("forbidden_modules") == ["stylekit.judge"]]
    assert len(contracts) == 1
    sources = set(contracts[0]["source_modules"])
    for needed in ("stylekit.train", "stylekit.toyfaces", "stylekit.text", "stylekit.invert", "stylekit.edit",
                   "stylekit.checkpoints", "stylekit.networks", "demos"):
        assert needed in sources
    layers = next(c for c in config["contracts"] if c["type"] == "layers")["layers"]
    # the judge sits under the consumers (CLI, benches, batch jobs, rehearsal), above everything it judges
    assert layers.index("stylekit.judge") == layers.index("stylekit.jobs | stylekit.rehearsal") + 1
    assert layers.index("stylekit.jobs | stylekit.rehearsal") == layers.index("stylekit.cli | stylekit.bench") + 1


def test_training_command_writes_a_loadable_judge(tmp_path):
    from stylekit.judge.__main__ import main

    out = tmp_path / "run"
    assert main(["--out", str(out), "--steps", "2", "--batch", "8", "--eval-samples", "6", "--pool", "64", "--no-resume"]) == 0
    j = load_judge(out / "judge.safetensors")
    assert j.read(torch.zeros(1, 3, 64, 64))["face"].shape == (1,)
    card = (out / "judge.md").read_text()
    assert "--steps 2" in card and "| flat |" in card
    assert (out / "checkpoint-latest.pt").is_file()
