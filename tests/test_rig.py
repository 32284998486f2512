"""Rig control (stylekit.edit.rig, networks.rig, train.rig): shapes, the shipped toyfaces rig network's
reconstruction and edits on fresh seeds, files and refusals, bad inputs, and a training smoke run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stylekit.edit.rig import apply_rig, load_rig, read_rig, save_rig
from stylekit.errors import CheckpointError, InvalidArgumentError, ModelNotFoundError
from stylekit.latent import Latent
from stylekit.networks.fingerprint import generator_fingerprint
from stylekit.networks.rig import RigNet, RigParam

from conftest import tiny_stylegan2

#: Fresh codes for the behaviour tests: seeds no training, tuning or benchmark uses (the trainer scores on
#: development seeds 60,000.., bench rig reports on 7,600,000..).
FRESH_SEEDS = list(range(8_800_000, 8_800_024))
#: Reconstruction bounds (asking the current readings back): the shipped network measured 0.061 std of W and a
#: mean reading change of 0.014 on the development seeds 60,000-60,199 (weights/rig.md); the bounds leave room for
#: 24 other codes. (An untrained network would pass them with 0; the edit test below fails it.)
RECON_W_BOUND = 0.12
RECON_READ_BOUND = 0.04

PARAMS = [RigParam("yaw", "continuous", -30.0, 30.0), RigParam("smile", "continuous", -1.0, 1.0),
          RigParam("eyes_open", "binary", 0.0, 1.0)]


@pytest.fixture(scope="module")
def toy():
    import stylekit
    from stylekit.checkpoints.predictor import load_predictor

    torch.set_num_threads(1)
    G = stylekit.load_generator("toyfaces")
    return G, load_rig("toyfaces", G=G, generator_name="toyfaces"), load_predictor("toyfaces")


def test_rignet_shapes_and_an_untrained_network_changes_nothing():
    net = RigNet(16, 5, PARAMS, hidden=8, latent_dim=4)
    ws = torch.randn(3, 5, 16)
    targets, mask = torch.rand(3, 3), torch.tensor([[1.0, 0, 0], [0, 1, 1], [1, 1, 1]])
    delta = net(ws, targets, mask)
    assert delta.shape == (3, 5, 16)
    assert torch.count_nonzero(delta) == 0  # the last layer starts at zero
    torch.nn.init.normal_(net.dec2_weight)
    delta = net(ws, targets, mask)
    assert delta.abs().sum() > 0
    # the asked-mask matters: the same targets unasked give another delta
    assert not torch.allclose(delta[:1], net(ws[:1], targets[:1], torch.zeros(1, 3)))
    with pytest.raises(CheckpointError):
        RigNet(16, 5, [RigParam("yaw", "angle", -1, 1)])
    with pytest.raises(CheckpointError):
        RigNet(16, 5, [PARAMS[0], PARAMS[0]])


def test_the_shipped_rig_reconstructs_when_asked_the_current_values(toy):
    G, rignet, predictor = toy
    lat = Latent.from_seed(G, FRESH_SEEDS, psi=1.0)
    current = read_rig(G, rignet, lat, predictor)
    assert set(current) == set(rignet.rig_names) and all(v.shape == (len(FRESH_SEEDS),) for v in current.values())
    out = apply_rig(G, rignet, lat, current)
    assert out.space == "w+" and out.tensor.shape == lat.tensor.shape
    w_change = float(((out.tensor - lat.tensor).abs() / rignet.w_std).mean())
    assert w_change < RECON_W_BOUND, f"asking the current values moved W by {w_change:.3f} std"
    with torch.no_grad():
        before = predictor.predict_unit(G.synthesis(lat.tensor, noise_mode="const"))
        after = predictor.predict_unit(G.synthesis(out.tensor, noise_mode="const"))
    read_change = float((after - before).abs().mean())
    assert read_change < RECON_READ_BOUND, f"asking the current values changed the readings by {read_change:.3f}"


@pytest.mark.parametrize("name", ["yaw", "rotation", "smile", "mouth_open", "eyes_open"])
def test_asking_a_change_moves_the_reading_the_asked_way_on_fresh_seeds(toy, name):
    G, rignet, predictor = toy
    param = rignet.rig[rignet.rig_names.index(name)]
    lat = Latent.from_seed(G, FRESH_SEEDS, psi=1.0)
    now = param.to_unit(read_rig(G, rignet, lat, predictor)[name])
    # ask 0.4 of the range the way there is room (binary: switch)
    if param.kind == "binary":
        target = (now < 0.5).astype(np.float64)
    else:
        target = np.where(now < 0.5, now + 0.4, now - 0.4)
    out = apply_rig(G, rignet, lat, {name: param.from_unit(target)})
    after = param.to_unit(read_rig(G, rignet, out, predictor)[name])
    asked_way = np.sign(target - now) * (after - now)
    assert np.mean(asked_way > 0.1) >= 0.8, f"{name}: moved the asked way by > 0.1 in {np.mean(asked_way > 0.1):.2f}"
    assert np.mean(np.abs(after - target)) < 0.25, f"{name}: mean error {np.mean(np.abs(after - target)):.3f}"


def test_file_round_trip_and_refusal_for_another_generator(tmp_path):
    G, other = tiny_stylegan2(seed=0), tiny_stylegan2(seed=1)
    net = RigNet(G.w_dim, G.num_ws, PARAMS, hidden=8, latent_dim=4, w_mean=torch.randn(G.w_dim), w_std=0.7)
    torch.nn.init.normal_(net.dec2_weight, std=0.01)
    path = save_rig(net, tmp_path / "rig.safetensors", generator="tiny-a", fingerprint=generator_fingerprint(G),
                    metrics={"error_yaw": 0.1}, command="python -m stylekit.train rig")
    loaded = load_rig(path, G=G, generator_name="tiny-a")
    assert loaded.rig == tuple(PARAMS) and loaded.generator_name == "tiny-a"
    assert loaded.meta["metrics"] == {"error_yaw": 0.1}
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    lat = Latent.from_seed(G, [1, 2])
    assert torch.allclose(apply_rig(G, net, lat, {"yaw": 10.0}).tensor, apply_rig(G, loaded, lat, {"yaw": 10.0}).tensor)
    with pytest.raises(CheckpointError) as exc:
        load_rig(path, G=other, generator_name="tiny-b")
    assert "'tiny-a'" in str(exc.value) and "'tiny-b'" in str(exc.value)
    with pytest.raises(CheckpointError, match="tiny-a"):
        apply_rig(other, loaded, Latent.from_seed(other, 1), {"yaw": 0.0})
    with pytest.raises(CheckpointError, match="W\\+"):  # other sizes
        apply_rig(tiny_stylegan2(seed=0, w_dim=8), loaded, torch.zeros(1, G.num_ws, 8), {"yaw": 0.0})
    (tmp_path / "broken.safetensors").write_bytes(b"not a file")
    with pytest.raises(CheckpointError):
        load_rig(tmp_path / "broken.safetensors")
    with pytest.raises(ModelNotFoundError, match="3DMM"):
        load_rig("ffhq-1024")


def test_bad_inputs_raise_clear_errors():
    G = tiny_stylegan2(seed=0)
    net = RigNet(G.w_dim, G.num_ws, PARAMS, hidden=8, latent_dim=4)
    lat = Latent.from_seed(G, [1, 2])
    with pytest.raises(InvalidArgumentError, match="unknown rig value 'pitch'.*yaw, smile, eyes_open"):
        apply_rig(G, net, lat, {"pitch": 1.0})
    with pytest.raises(InvalidArgumentError, match=r"\[-30, 30\]"):
        apply_rig(G, net, lat, {"yaw": 45.0})
    with pytest.raises(InvalidArgumentError, match=r"\[0, 1\]"):
        apply_rig(G, net, lat, {"eyes_open": -0.5})
    with pytest.raises(InvalidArgumentError, match="at least one"):
        apply_rig(G, net, lat, {})
    with pytest.raises(InvalidArgumentError, match="finite"):
        apply_rig(G, net, lat, {"smile": float("nan")})
    with pytest.raises(InvalidArgumentError, match="one number or 2"):
        apply_rig(G, net, lat, {"smile": [0.1, 0.2, 0.3]})
    with pytest.raises(InvalidArgumentError, match="number"):
        apply_rig(G, net, lat, {"smile": "big"})
    with pytest.raises(InvalidArgumentError):
        apply_rig(G, net, lat.to_styles(G), {"smile": 0.5})
    with pytest.raises(InvalidArgumentError, match="RigNet"):
        apply_rig(G, "toyfaces", lat, {"smile": 0.5})
    out = apply_rig(G, net, lat, {"smile": [0.1, -0.2]})  # one value per code is fine
    assert out.tensor.shape == lat.tensor.shape


def test_training_reduces_the_loss_and_resumes(tmp_path, toy):
    from stylekit.train.rig import RigConfig, _build, rig_losses, train_rig

    cfg = RigConfig(out=str(tmp_path / "unused"), batch=6, threads=1)
    G, predictor, net, index = _build(cfg, "cpu")  # G and the predictor frozen, as in training
    ws = Latent.from_seed(G, list(range(70_000, 70_006))).tensor
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)

    def loss():
        return rig_losses(net, G, predictor, ws, cfg, torch.Generator().manual_seed(0), index)

    first = float(loss()["total"].detach())
    for _ in range(12):
        total = loss()["total"]
        opt.zero_grad()
        total.backward()
        opt.step()
    last = float(loss()["total"].detach())
    assert last < 0.8 * first, f"12 steps on one batch took the loss from {first:.4f} to {last:.4f} only"

    run = tmp_path / "run"
    small = dict(out=str(run), batch=4, steps=2, warmup=0, eval_codes=4, threads=1, log_every=1, snapshot_every=1)
    train_rig(RigConfig(**small), log=None)
    metrics = train_rig(RigConfig(**{**small, "steps": 3, "resume": "latest"}), log=None)
    assert "resumed from" in (run / "log.txt").read_text()
    assert torch.load(run / "checkpoint-latest.pt", weights_only=True)["step"] == 3
    assert {"recon_change", "error_yaw", "keep_eyes_open"} <= set(metrics)
    loaded = load_rig(run / "rig.safetensors", G=G, generator_name="toyfaces")
    assert loaded.rig_names == ("yaw", "rotation", "smile", "mouth_open", "eyes_open")
    card = (run / "rig.md").read_text()
    assert card.startswith("# ") and "rig.safetensors" in card


def test_gallery_rig_section_asks_the_moved_values_and_says_when_a_model_has_none(toy):
    from demos import rig

    *updates, text = rig.rig_read("toyfaces", None)
    assert len(updates) == len(rig.SLIDERS) and "Rig values read from the current latent" in text
    read = {name: u["value"] for (name, _, _), u in zip(rig.SLIDERS, updates)}
    assert -30 <= read["yaw"] <= 30
    # asking the current readings back asks nothing
    image, info, out = rig.rig_apply("toyfaces", *read.values(), None)
    assert "Nothing asked" in info
    yaw = 20.0 if read["yaw"] < 5 else -20.0
    image, info, out = rig.rig_apply("toyfaces", yaw, read["rotation"], read["smile"], read["mouth_open"],
                                     read["eyes_open"], None)
    assert f"yaw asked {yaw:.2f}, read" in info and "Not asked: rotation" in info
    assert image.size[0] > 1.8 * image.size[1] and out.space == "w+"  # before | after
    assert rig.rig_for("ffhq-1024", None) is None  # no registered rig: nothing is loaded
    assert "3DMM" in rig._not_available("ffhq-1024") and "not available" in rig._not_available("ffhq-1024")


def test_bench_rig_reports_on_its_report_seeds_with_ordered_intervals(toy):
    import argparse

    from stylekit.bench import rig as bench_rig

    parser = argparse.ArgumentParser()
    bench_rig.add_arguments(parser)
    args = parser.parse_args(["--quick", "--n-test", "6", "--n-fit", "200", "--bisection-steps", "3", "--threads", "1"])
    m = bench_rig.run(args)
    assert m["report_seed_start"] == 7_600_000 and m["report_seed_count"] == 6
    for method in bench_rig.METHODS:
        for key in (f"{method}_mean_error", f"{method}_mean_success", f"{method}_mean_leakage", f"{method}_error_yaw"):
            assert m[f"{key}_lo"] <= m[key] <= m[f"{key}_hi"], key
        assert 0 <= m[f"{method}_mean_success"] <= 1
    assert m["rig_recon_change"] < 0.1  # asking the current readings back barely moves the judge's readings
    assert {"diff_error_rig_minus_interfacegan", "diff_leakage_rig_minus_interfacegan_matched"} <= set(m)
