"""StyleFlow (stylekit.edit.styleflow, networks.flow, train.styleflow, bench styleflow, the gallery section):
invertibility, edits and sequences of edits on fresh seeds read by the predictor, files and refusals, bad inputs,
training smoke and resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stylekit.edit.styleflow import (load_flow, read_attributes, save_flow, styleflow_edit, styleflow_sequence)
from stylekit.errors import CheckpointError, InvalidArgumentError, ModelNotFoundError
from stylekit.latent import Latent
from stylekit.networks.fingerprint import generator_fingerprint
from stylekit.networks.flow import AttributeFlow
from stylekit.networks.rig import RigParam

from conftest import tiny_stylegan2

#: Fresh codes for the behaviour tests: seeds no training, tuning or benchmark uses (the trainer scores on
#: development seeds 63,000.., bench styleflow reports on 7,800,000..).
FRESH_SEEDS = list(range(8_900_000, 8_900_016))
#: The shipped flow measured a mean change of the other 14 attributes of 0.015-0.025 (predictor, development seeds,
#: weights/styleflow.md); the bound leaves room for 16 other codes. An edit that moved everything would fail it.
KEEP_BOUND = 0.05

PARAMS = [RigParam("yaw", "continuous", -30.0, 30.0), RigParam("smile", "continuous", -1.0, 1.0),
          RigParam("glasses", "binary", 0.0, 1.0)]


def _tiny_flow(G, seed=0):
    torch.manual_seed(seed)
    flow = AttributeFlow(G.w_dim, PARAMS, hidden=(16, 16), freqs=2, w_mean=torch.randn(G.w_dim) * 0.1,
                         w_std=torch.rand(G.w_dim) + 0.5)
    return flow.eval()


@pytest.fixture(scope="module")
def toy():
    import stylekit
    from stylekit.checkpoints.predictor import load_predictor

    torch.set_num_threads(1)
    G = stylekit.load_generator("toyfaces")
    return G, load_flow("toyfaces", G=G, generator_name="toyfaces"), load_predictor("toyfaces")


def test_an_untrained_flow_is_invertible_and_has_a_density():
    G = tiny_stylegan2(seed=0)
    flow = _tiny_flow(G)
    w = G.mapping(torch.randn(5, G.z_dim), None)[:, 0].detach()
    unit = torch.rand(5, 3)
    with torch.no_grad():
        eps = flow.to_noise(w, unit)
        back = flow.from_noise(eps, unit)
    assert eps.shape == w.shape and not torch.allclose(eps, flow.standardise(w), atol=1e-3)  # the ODE moved it
    assert torch.allclose(back, w, atol=1e-3 * float(flow.w_std.max()))
    assert torch.isfinite(flow.log_prob(w, unit)).all()
    nll = flow.train().nll(w, unit)  # StyleFlow's likelihood objective has gradients for every parameter
    nll.backward()
    assert all(p.grad is not None for p in flow.parameters())
    with pytest.raises(CheckpointError, match="conditioned on 3 attributes"):
        flow.to_noise(w, torch.rand(5, 2))
    with pytest.raises(CheckpointError):
        AttributeFlow(16, [PARAMS[0], PARAMS[0]])


def test_the_shipped_flow_round_trips_fresh_codes(toy):
    G, flow, predictor = toy
    lat = Latent.from_seed(G, FRESH_SEEDS)
    source = read_attributes(G, flow, lat, predictor)
    unit = torch.from_numpy(np.stack([p.to_unit(source[p.name]) for p in flow.attributes], 1)).float()
    w = lat.tensor[:, 0]
    with torch.no_grad():
        eps = flow.to_noise(w, unit)
        back = flow.from_noise(eps, unit)
    error = float(((back - w).abs() / flow.w_std).mean())
    assert error < 1e-3, f"w -> eps -> w moved the codes by {error:.2e} std"
    assert 0.3 < float(eps.std()) < 1.5 and abs(float(eps.mean())) < 0.3
    # asking the source attributes back returns the code (the round trip's residual is added back)
    same = styleflow_edit(G, flow, lat, {"smile": source["smile"]}, source=source)
    assert torch.allclose(same.tensor, lat.tensor, atol=1e-5)


@pytest.mark.parametrize("name", ["smile", "yaw", "glasses"])
def test_an_edit_moves_the_target_as_read_by_the_predictor_and_keeps_the_others(toy, name):
    G, flow, predictor = toy
    p = flow.attributes[flow.attribute_names.index(name)]
    lat = Latent.from_seed(G, FRESH_SEEDS)
    with torch.no_grad():
        before = predictor.predict_unit(lat.render(G)).double().numpy()
    j = predictor.attribute_names.index(name)
    now = before[:, j]
    target = (now < 0.5).astype(np.float64) if p.kind == "binary" else np.where(now < 0.5, now + 0.4, now - 0.4)
    out = styleflow_edit(G, flow, lat, {name: p.from_unit(target)}, predictor=predictor)
    assert out.space == "w+" and out.tensor.shape == lat.tensor.shape
    with torch.no_grad():
        after = predictor.predict_unit(out.render(G)).double().numpy()
    asked_way = np.sign(target - now) * (after[:, j] - now)
    assert np.mean(asked_way > 0.1) >= 0.8, f"{name}: moved the asked way in {np.mean(asked_way > 0.1):.2f}"
    assert np.mean(np.abs(after[:, j] - target)) < 0.25
    others = [k for k in range(before.shape[1]) if k != j]
    keep = float(np.abs(after[:, others] - before[:, others]).mean())
    assert keep < KEEP_BOUND, f"{name}: the other attributes moved by {keep:.3f} on average"


def test_sequential_edits_keep_what_was_set_before(toy):
    G, flow, predictor = toy
    lat = Latent.from_seed(G, FRESH_SEEDS)
    source = read_attributes(G, flow, lat, predictor)
    smile = np.where(source["smile"] < 0, 0.8, -0.8)
    glasses = 1.0 - source["glasses"]
    steps = styleflow_sequence(G, flow, lat, [{"smile": smile}, {"glasses": glasses}, {"yaw": 15.0}], source=source)
    assert len(steps) == 3
    # each step equals one edit asking everything set so far (the attribute vector is carried)
    joint = styleflow_edit(G, flow, lat, {"smile": smile, "glasses": glasses, "yaw": 15.0}, source=source)
    assert torch.allclose(steps[-1].tensor, joint.tensor, atol=1e-4)
    first = styleflow_edit(G, flow, lat, {"smile": smile}, source=source)
    assert torch.allclose(steps[0].tensor, first.tensor, atol=1e-4)
    # the first edit survives the two after it, as read by the predictor
    with torch.no_grad():
        read = predictor.predict(steps[-1].render(G))
    assert np.mean(np.sign(smile) * read["smile"].numpy() > 0.2) >= 0.8
    assert np.mean((read["glasses"].numpy() > 0.5) == (glasses > 0.5)) >= 0.8
    # layers: rows not chosen stay as they were
    part = styleflow_edit(G, flow, lat, {"smile": smile}, source=source, layers=[0, 1, 2])
    assert torch.equal(part.tensor[:, 3:], lat.tensor[:, 3:]) and not torch.allclose(part.tensor[:, :3],
                                                                                      lat.tensor[:, :3])


def test_reconstruct_then_edit_on_inverted_renders(toy):
    """Renders drawn by the toyfaces renderer (not the generator), inverted by the e4e encoder to W+ codes whose rows
    differ, then edited row by row with the source attributes read by the predictor."""
    from stylekit.invert.encoder import encode_batch
    from stylekit.toyfaces.attributes import sample_attributes
    from stylekit.toyfaces.renderer import render_batch

    G, flow, predictor = toy
    images = render_batch(sample_attributes(12, seed=8_900_100), size=G.img_resolution, seeds=None).float()
    lat = Latent.cat([r.latent for r in encode_batch(G, images)])
    assert lat.space == "w+" and not lat.rows_equal(atol=1e-3)
    with torch.no_grad():
        before = predictor.predict(lat.render(G))["smile"].numpy()
    target = np.where(before < 0, 0.7, -0.7)
    out = styleflow_edit(G, flow, lat, {"smile": target}, predictor=predictor)
    with torch.no_grad():
        after = predictor.predict(out.render(G))["smile"].numpy()
    asked_way = np.sign(target - before) * (after - before)
    assert np.mean(asked_way > 0.3) >= 0.75, f"inverted codes moved the asked way in {np.mean(asked_way > 0.3):.2f}"


def test_files_round_trip_and_a_flow_is_refused_for_another_generator(tmp_path):
    G, other = tiny_stylegan2(seed=0), tiny_stylegan2(seed=1)
    flow = _tiny_flow(G)
    path = save_flow(flow, tmp_path / "styleflow.safetensors", generator="tiny-a",
                     fingerprint=generator_fingerprint(G), labeller="truth", metrics={"nll_per_dim": 1.0},
                     command="python -m stylekit.train styleflow")
    loaded = load_flow(path, G=G, generator_name="tiny-a")
    assert loaded.attributes == tuple(PARAMS) and loaded.generator_name == "tiny-a"
    assert loaded.meta == {"labeller": "truth", "metrics": {"nll_per_dim": 1.0},
                           "command": "python -m stylekit.train styleflow"}
    for key, value in flow.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    lat = Latent.from_seed(G, [1, 2])
    source = {"yaw": 0.0, "smile": 0.1, "glasses": 0.0}
    assert torch.allclose(styleflow_edit(G, flow, lat, {"yaw": 10.0}, source=source).tensor,
                          styleflow_edit(G, loaded, lat, {"yaw": 10.0}, source=source).tensor, atol=1e-5)
    with pytest.raises(CheckpointError) as exc:
        load_flow(path, G=other, generator_name="tiny-b")
    assert "'tiny-a'" in str(exc.value) and "'tiny-b'" in str(exc.value)
    with pytest.raises(CheckpointError, match="tiny-a"):
        styleflow_edit(other, loaded, Latent.from_seed(other, 1), {"yaw": 0.0}, source=source)
    with pytest.raises(CheckpointError, match="W width"):
        styleflow_edit(tiny_stylegan2(seed=0, w_dim=8), loaded, torch.zeros(1, G.num_ws, 8), {"yaw": 0.0},
                       source=source)
    (tmp_path / "broken.safetensors").write_bytes(b"not a file")
    with pytest.raises(CheckpointError):
        load_flow(tmp_path / "broken.safetensors")
    with pytest.raises(ModelNotFoundError, match="train styleflow"):
        load_flow("ffhq-1024")


def test_bad_inputs_raise_clear_errors(toy):
    G = tiny_stylegan2(seed=0)
    flow = _tiny_flow(G)
    lat = Latent.from_seed(G, [1, 2])
    source = {"yaw": 0.0, "smile": 0.1, "glasses": 1.0}
    with pytest.raises(InvalidArgumentError, match="unknown attribute.*'beard'.*yaw, smile, glasses"):
        styleflow_edit(G, flow, lat, {"beard": 1.0}, source=source)
    with pytest.raises(InvalidArgumentError, match=r"\[-30, 30\]"):
        styleflow_edit(G, flow, lat, {"yaw": 45.0}, source=source)
    with pytest.raises(InvalidArgumentError, match="at least one"):
        styleflow_edit(G, flow, lat, {}, source=source)
    with pytest.raises(InvalidArgumentError, match="finite"):
        styleflow_edit(G, flow, lat, {"smile": float("nan")}, source=source)
    with pytest.raises(InvalidArgumentError, match="one number or 2"):
        styleflow_edit(G, flow, lat, {"smile": [0.1, 0.2, 0.3]}, source=source)
    with pytest.raises(InvalidArgumentError, match="source attributes missing: glasses"):
        styleflow_edit(G, flow, lat, {"smile": 0.5}, source={"yaw": 0.0, "smile": 0.1})
    with pytest.raises(InvalidArgumentError, match="source"):
        styleflow_edit(G, flow, lat, {"smile": 0.5})
    with pytest.raises(InvalidArgumentError, match="list of dicts"):
        styleflow_sequence(G, flow, lat, {"smile": 0.5}, source=source)
    with pytest.raises(InvalidArgumentError):
        styleflow_edit(G, flow, lat.to_styles(G), {"smile": 0.5}, source=source)
    with pytest.raises(InvalidArgumentError, match="AttributeFlow"):
        styleflow_edit(G, "toyfaces", lat, {"smile": 0.5}, source=source)
    with pytest.raises(InvalidArgumentError, match="outside"):
        styleflow_edit(G, flow, lat, {"smile": 0.5}, source=source, layers=[99])
    _, _, predictor = toy  # a predictor without the flow's heads cannot read the source
    other = AttributeFlow(G.w_dim, [RigParam("wings", "binary", 0, 1)], hidden=(8,))
    with pytest.raises(InvalidArgumentError, match="no head.*wings"):
        styleflow_edit(G, other, lat, {"wings": 1.0}, predictor=predictor)


def test_the_shipped_flow_is_registered_and_small(toy):
    from stylekit import registry

    G, flow, _ = toy
    assert registry.companion("toyfaces", "styleflow") == "toyfaces"
    path = registry.artifact_path("toyfaces", "styleflow")
    assert path.stat().st_size < 5e6
    assert len(flow.attributes) == 15 and flow.generator_name == "toyfaces" and flow.meta["labeller"] == "truth"
    assert flow.fingerprint == generator_fingerprint(G)
    assert not any(p.requires_grad for p in flow.parameters()) and not flow.training


def test_training_lowers_the_loss_and_resumes(tmp_path, toy):
    from stylekit.train.styleflow import StyleFlowConfig, _build, _Codes, train_styleflow

    cfg = StyleFlowConfig(out=str(tmp_path / "unused"), batch=64, hidden="32,32", threads=1)
    G, labeller, flow, cols = _build(cfg, "cpu")
    codes = _Codes(G, labeller, cols, cfg, "cpu")
    gen = torch.Generator().manual_seed(0)
    w, unit = codes.batch(256, gen)
    assert unit.shape == (256, 15) and float(unit.min()) >= 0 and float(unit.max()) <= 1
    opt = torch.optim.Adam(flow.parameters(), lr=3e-3)

    def loss():
        return flow.flow_matching_loss(w, unit, torch.Generator().manual_seed(1))

    first = float(loss().detach())
    for _ in range(40):
        total = loss()
        opt.zero_grad()
        total.backward()
        opt.step()
    last = float(loss().detach())
    assert last < 0.8 * first, f"40 steps on one batch took the loss from {first:.4f} to {last:.4f} only"

    run = tmp_path / "run"
    small = dict(out=str(run), batch=16, steps=2, warmup=0, eval_codes=4, threads=1, log_every=1, snapshot_every=1,
                 hidden="16", attributes="smile,yaw,glasses")
    train_styleflow(StyleFlowConfig(**small), log=None)
    metrics = train_styleflow(StyleFlowConfig(**{**small, "steps": 3, "resume": "latest"}), log=None)
    assert "resumed from" in (run / "log.txt").read_text()
    assert torch.load(run / "checkpoint-latest.pt", weights_only=True)["step"] == 3
    assert {"roundtrip_w_error", "nll_per_dim", "error_smile", "keep_glasses"} <= set(metrics)
    loaded = load_flow(run / "styleflow.safetensors", G=G, generator_name="toyfaces")
    assert loaded.attribute_names == ("smile", "yaw", "glasses") and loaded.meta["labeller"] == "truth"
    card = (run / "styleflow.md").read_text()
    assert card.startswith("# ") and "styleflow.safetensors" in card and "zuko" in card
    with pytest.raises(InvalidArgumentError, match="not given by the labeller"):
        train_styleflow(StyleFlowConfig(**{**small, "out": str(tmp_path / "bad"), "attributes": "wings"}), log=None)
    with pytest.raises(InvalidArgumentError, match="objective"):
        train_styleflow(StyleFlowConfig(**{**small, "out": str(tmp_path / "bad2"), "objective": "magic"}), log=None)


def test_gallery_styleflow_section_edits_chains_and_says_when_a_model_has_none(toy, monkeypatch):
    from demos import styleflow

    update, text = styleflow.styleflow_read("toyfaces", "smile", None)
    assert update["minimum"] == -1 and update["maximum"] == 1 and "smile reads" in text
    smile = -0.6 if update["value"] > 0 else 0.6
    image, info, out, state = styleflow.styleflow_apply("toyfaces", "smile", smile, True, None, None)
    assert f"smile asked {smile:.2f}" in info and "from the current latent" in info
    assert image.size[0] > 1.8 * image.size[1] and out.space == "w+"
    image, info, out2, state2 = styleflow.styleflow_apply("toyfaces", "glasses", 1.0, True, None, state)
    assert "continuing from the last StyleFlow edit" in info
    assert state2["values"]["smile"] == smile and state2["values"]["glasses"] == 1.0  # the first edit is kept
    with pytest.raises(Exception, match="within"):
        styleflow.styleflow_apply("toyfaces", "yaw", 90.0, True, None, state2)
    with pytest.raises(Exception, match="unknown attribute"):
        styleflow.styleflow_read("toyfaces", "wings", None)
    assert styleflow.flow_for("ffhq-1024", None) is None  # no registered flow: nothing is loaded
    # a model without a flow answers both endpoints with a sentence, not an error
    monkeypatch.setattr(styleflow, "flow_for", lambda model, G: None)
    image, info, out, kept = styleflow.styleflow_apply("toyfaces", "smile", 0.5, True, None, state2)
    assert image is None and out is None and kept["values"] == state2["values"] and "has no StyleFlow flow" in info
    assert "train styleflow" in styleflow.styleflow_read("toyfaces", "smile", None)[1]


def test_bench_styleflow_reports_on_its_report_seeds_with_ordered_intervals(toy):
    import argparse

    from stylekit.bench import styleflow as bench

    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--quick", "--n-test", "6", "--n-fit", "200", "--bisection-steps", "3", "--threads", "1",
                              "--attributes", "smile,yaw,glasses"])
    m = bench.run(args)
    assert m["report_seed_start"] == 7_800_000 and m["report_seed_count"] == 6 and m["n_attributes"] == 3
    assert m["ifg_labels_truth"] == 1  # InterFaceGAN learns from the labels the shipped flow learned from
    for method in bench.METHODS:
        for key in (f"{method}_mean_error", f"{method}_mean_success", f"{method}_mean_leakage",
                    f"{method}_error_smile"):
            assert m[f"{key}_lo"] <= m[key] <= m[f"{key}_hi"], key
    for method in bench.SEQUENCE_METHODS:
        assert m[f"seq_{method}_drift_lo"] <= m[f"seq_{method}_drift"] <= m[f"seq_{method}_drift_hi"]
        assert 0 <= m[f"seq_{method}_face_ok"] <= 1
    assert "seq_diff_drift_styleflow_minus_interfacegan" in m
    with pytest.raises(InvalidArgumentError, match="not the flow's"):
        bench.run(parser.parse_args(["--quick", "--attributes", "smile,yaw,wings"]))


def test_any_scorer_labels_a_flow_e_g_clip_zero_shot(tmp_path, clip, toy):
    """The generic path other generators take: CLIP zero-shot scores of prompt pairs label the codes (an untrained
    CLIP here: the labels are arbitrary, the plumbing is what is checked)."""
    from stylekit.train.styleflow import StyleFlowConfig, clip_labeller, train_styleflow

    G = toy[0]
    labeller = clip_labeller(clip, {"smiling": ("a smiling face", "a face"), "glasses": ("a face with glasses",
                                                                                      "a face")})
    ws = Latent.from_seed(G, [70_001, 70_002, 70_003]).tensor
    unit = labeller(G, None, ws)
    assert unit.shape == (3, 2) and set(np.unique(unit)) <= {0.0, 1.0}  # binary labels snapped
    cfg = StyleFlowConfig(out=str(tmp_path / "run"), batch=4, steps=2, warmup=0, eval_codes=4, threads=1, hidden="16",
                          pool=8)
    metrics = train_styleflow(cfg, labeller=labeller, log=None)
    assert "roundtrip_w_error" in metrics and not any(k.startswith("error_") for k in metrics)  # no predictor head
    flow = load_flow(tmp_path / "run" / "styleflow.safetensors", G=G)
    assert flow.attribute_names == ("smiling", "glasses") and flow.meta["labeller"] == "clip zero-shot"
    with pytest.raises(InvalidArgumentError, match="positive prompt, neutral prompt"):
        clip_labeller(clip, {"smiling": "a smiling face"})
