"""rosinality-format StyleGAN2 checkpoints (and e4e / pSp style dicts) -> StyleGAN2Generator.

Conformance is checked against outputs of rosinality's own model.py (tests/fixtures/rosinality);
the other tests build small rosinality-named state dicts here, so they run without the fixtures.
"""

from __future__ import annotations

import argparse
import math
import os
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import stylekit
from stylekit.checkpoints.rosinality import (convert_rosinality_state, load_rosinality_generator, read_rosinality)
from stylekit.errors import CheckpointError, UnsafeCheckpointError
from stylekit.networks.stylegan2 import StyleGAN2Generator

from conftest import fixture_file, tolerance_ok

SMALL_CHANNELS = {4: 16, 8: 12, 16: 8}


def make_rosinality_state(*, style_dim: int = 8, n_mlp: int = 2, channels: dict | None = None, seed: int = 0,
                          with_noises: bool = True) -> dict:
    """A random-weight rosinality ``Generator.state_dict()`` (names and shapes as model.py makes them)."""
    channels = dict(channels or SMALL_CHANNELS)
    g = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0, offset=0.0):
        return torch.randn(shape, generator=g) * scale + offset

    blur = torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64 * 4
    d = style_dim
    sd = {}
    for i in range(1, n_mlp + 1):
        sd[f"style.{i}.weight"] = randn(d, d, scale=100.0)  # randn / lr_mul with lr_mul = 0.01
        sd[f"style.{i}.bias"] = randn(d, scale=0.05)
    c4 = channels[4]
    sd["input.input"] = randn(1, c4, 4, 4)

    def styled(prefix, cin, cout, up):
        sd[f"{prefix}.conv.weight"] = randn(1, cout, cin, 3, 3)
        if up:
            sd[f"{prefix}.conv.blur.kernel"] = blur.clone()
        sd[f"{prefix}.conv.modulation.weight"] = randn(cin, d)
        sd[f"{prefix}.conv.modulation.bias"] = randn(cin, scale=0.05, offset=1.0)
        sd[f"{prefix}.noise.weight"] = torch.full([1], 0.1)
        sd[f"{prefix}.activate.bias"] = randn(cout, scale=0.05)

    def torgb(prefix, c, up):
        sd[f"{prefix}.bias"] = randn(1, 3, 1, 1, scale=0.05)
        if up:
            sd[f"{prefix}.upsample.kernel"] = blur.clone()
        sd[f"{prefix}.conv.weight"] = randn(1, 3, c, 1, 1)
        sd[f"{prefix}.conv.modulation.weight"] = randn(c, d)
        sd[f"{prefix}.conv.modulation.bias"] = randn(c, scale=0.05, offset=1.0)

    styled("conv1", c4, c4, False)
    torgb("to_rgb1", c4, False)
    resolutions = sorted(channels)
    for k, res in enumerate(resolutions[1:]):
        styled(f"convs.{2 * k}", channels[res // 2], channels[res], True)
        styled(f"convs.{2 * k + 1}", channels[res], channels[res], False)
        torgb(f"to_rgbs.{k}", channels[res], True)
    if with_noises:
        sizes = [4] + [r for r in resolutions[1:] for _ in range(2)]
        for j, size in enumerate(sizes):
            sd[f"noises.noise_{j}"] = randn(1, 1, size, size)
    return sd


def _build(config, state):
    G = StyleGAN2Generator(config)
    G.load_state_dict(state, strict=True)
    return G.eval().requires_grad_(False)


# ----------------------------------------------------------------------------------------------
# Conformance with rosinality's model.py


@pytest.fixture
def ros_fixture():
    path = fixture_file("rosinality/ros_small.pt")
    return path, dict(np.load(fixture_file("rosinality/ros_small_ref.npz")))


def _assert_close(name, ours, ref):
    ok, err, bound = tolerance_ok(ours.detach().cpu().numpy(), ref)
    assert ok, f"{name}: max|ours - ref| = {err:.3g} > {bound:.3g}"


def test_fixture_matches_rosinality_reference(ros_fixture):
    path, ref = ros_fixture
    G = load_rosinality_generator(path)
    # every size was read from the tensors: the fixture's narrowed channel table, not rosinality's
    assert G.config["channels"] == {"4": 96, "8": 96, "16": 64, "32": 64, "64": 64}
    assert (G.z_dim, G.w_dim, G.img_resolution, G.num_ws, G.mapping.num_layers) == (64, 64, 64, 10, 4)
    assert G.config["conv_clamp"] is None
    z = torch.from_numpy(ref["z"])
    with torch.no_grad():
        ws = G.mapping(z)
        _assert_close("ws", ws, ref["ws"])
        _assert_close("latent_avg", G.w_avg.reshape(ref["latent_avg"].shape), ref["latent_avg"])
        for impl in ("fast", "reference"):
            _assert_close(f"img ({impl})", G.synthesis(ws, noise_mode="const", impl=impl), ref["img"])
        ws_trunc = G.mapping(z, truncation_psi=0.7)
        _assert_close("img_trunc", G.synthesis(ws_trunc, noise_mode="const"), ref["img_trunc"])


def test_fixture_through_public_loader(ros_fixture):
    path, ref = ros_fixture
    G = stylekit.load_generator(str(path))
    assert isinstance(G, StyleGAN2Generator)
    with torch.no_grad():
        img = G(torch.from_numpy(ref["z"]), noise_mode="const")
    _assert_close("img via load_generator", img, ref["img"])


def test_fixture_noise_buffers_are_kept(ros_fixture):
    path, _ref = ros_fixture
    raw = torch.load(path, map_location="cpu", weights_only=True)["g_ema"]
    G = load_rosinality_generator(path)
    noise = G.synthesis.noise_buffers()
    assert len(noise) == 9
    for j, buf in enumerate(noise):
        assert torch.equal(buf, raw[f"noises.noise_{j}"][0, 0])


# ----------------------------------------------------------------------------------------------
# Conversion details (no fixtures needed)


def test_sizes_come_from_tensor_shapes():
    channels = {4: 20, 8: 20, 16: 12, 32: 6}
    config, state = convert_rosinality_state(make_rosinality_state(style_dim=10, n_mlp=3, channels=channels),
                                             torch.zeros(10))
    assert config["channels"] == {str(r): c for r, c in channels.items()}
    assert (config["z_dim"], config["w_dim"], config["img_resolution"]) == (10, 10, 32)
    assert config["mapping_kwargs"] == {"num_layers": 3, "lr_multiplier": 0.01}
    G = _build(config, state)
    assert G.num_ws == 2 * 5 - 2  # rosinality n_latent = 2 log2(R) - 2
    with torch.no_grad():
        img = G(torch.randn(2, 10), noise_mode="const")
    assert img.shape == (2, 3, 32, 32) and torch.isfinite(img).all()


def test_mapping_follows_rosinality_equal_linear():
    """W = lrelu(x @ (w * lr / sqrt(in)).T + b * lr) * sqrt(2) after pixel norm, rosinality's EqualLinear."""
    sd = make_rosinality_state(n_mlp=3)
    G = _build(*convert_rosinality_state(sd, torch.zeros(8)))
    z = torch.randn(5, 8, generator=torch.Generator().manual_seed(1))
    x = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)
    for i in range(1, 4):
        x = F.linear(x, sd[f"style.{i}.weight"] * (0.01 / math.sqrt(8)))
        x = F.leaky_relu(x + sd[f"style.{i}.bias"] * 0.01, 0.2) * math.sqrt(2)
    with torch.no_grad():
        ws = G.mapping(z)
    assert torch.allclose(ws, x[:, None].expand(-1, G.num_ws, -1), atol=1e-5, rtol=1e-5)


def test_layer_mapping_and_noise_buffers():
    sd = make_rosinality_state()
    config, state = convert_rosinality_state(sd, torch.zeros(8))
    assert torch.equal(state["synthesis.b4.const"], sd["input.input"][0])
    assert torch.equal(state["synthesis.b8.conv0.weight"], sd["convs.0.conv.weight"][0])  # no spatial flip
    assert torch.equal(state["synthesis.b16.conv1.bias"], sd["convs.3.activate.bias"])
    assert torch.equal(state["synthesis.b16.conv1.affine.weight"], sd["convs.3.conv.modulation.weight"])
    assert state["synthesis.b8.conv1.noise_strength"].shape == ()
    assert torch.equal(state["synthesis.b16.torgb.bias"], sd["to_rgbs.1.bias"].reshape(3))
    assert torch.equal(state["synthesis.b4.conv1.noise_const"], sd["noises.noise_0"][0, 0])
    assert torch.equal(state["synthesis.b8.conv0.noise_const"], sd["noises.noise_1"][0, 0])
    assert torch.equal(state["synthesis.b16.conv1.noise_const"], sd["noises.noise_4"][0, 0])
    assert torch.allclose(state["synthesis.b8.resample_filter"], sd["to_rgbs.0.upsample.kernel"] / 4)
    assert "resample_filter" not in config or config["resample_filter"] == [1, 3, 3, 1]


def test_non_default_blur_kernel_is_carried():
    sd = make_rosinality_state()
    kernel = torch.outer(torch.tensor([1.0, 2, 1]), torch.tensor([1.0, 2, 1])) / 16
    for key in [k for k in sd if k.endswith(("blur.kernel", "upsample.kernel"))]:
        sd[key] = kernel * 4
    config, state = convert_rosinality_state(sd, torch.zeros(8))
    assert config["resample_filter"] == [1, 2, 1]
    assert torch.allclose(state["synthesis.b16.conv0.resample_filter"], kernel)
    G = _build(config, state)
    with torch.no_grad():
        assert G(torch.randn(1, 8)).shape == (1, 3, 16, 16)
    sd["to_rgbs.1.upsample.kernel"] = torch.eye(3)  # rank 3: not separable
    with pytest.raises(CheckpointError, match=r"to_rgbs\.1\.upsample\.kernel"):
        convert_rosinality_state(sd, torch.zeros(8))


def test_missing_noises_and_latent_avg_are_filled_deterministically():
    sd = make_rosinality_state(with_noises=False)
    _, a = convert_rosinality_state(sd)
    _, b = convert_rosinality_state(sd)
    assert torch.equal(a["synthesis.b16.conv1.noise_const"], b["synthesis.b16.conv1.noise_const"])
    assert torch.equal(a["mapping.w_avg"], b["mapping.w_avg"])
    # the estimate is the mean of W: compare with an independent sample
    G = _build(*convert_rosinality_state(sd))
    with torch.no_grad():
        w = G.mapping(torch.randn(20000, 8, generator=torch.Generator().manual_seed(7)))[:, 0]
    spread = w.std(dim=0).max()
    assert (a["mapping.w_avg"] - w.mean(dim=0)).abs().max() < 0.05 * spread


def test_latent_avg_shapes(recwarn):
    sd = make_rosinality_state()
    row = torch.randn(8)
    for latent_avg in (row, row[None], row[None].repeat(6, 1)):
        _, state = convert_rosinality_state(sd, latent_avg)
        assert torch.equal(state["mapping.w_avg"], row)
    assert not recwarn.list
    with pytest.warns(UserWarning, match="different rows"):
        _, state = convert_rosinality_state(sd, torch.stack([row, row + 1]))
    assert torch.allclose(state["mapping.w_avg"], row + 0.5)
    with pytest.raises(CheckpointError, match="latent_avg has shape"):
        convert_rosinality_state(sd, torch.zeros(5))


# ----------------------------------------------------------------------------------------------
# Container formats


def test_e4e_style_dict_loads_the_same_generator(tmp_path):
    sd = make_rosinality_state()
    latent_avg = torch.randn(8)
    plain = tmp_path / "g.pt"
    torch.save({"g_ema": sd, "latent_avg": latent_avg[None]}, plain)
    e4e = {"state_dict": {**{f"encoder.body.{i}.weight": torch.randn(4, 4) for i in range(3)},
                          **{f"decoder.{k}": v for k, v in sd.items()}},
           "latent_avg": latent_avg[None].repeat(6, 1),  # e4e keeps [num_ws, w_dim]
           "opts": {"exp_dir": "experiment", "stylegan_size": 16, "encoder_type": "Encoder4Editing"}}
    e4e_path = tmp_path / "e4e_ffhq_encode.pt"
    torch.save(e4e, e4e_path)
    config_a, state_a = read_rosinality(plain)
    config_b, state_b = read_rosinality(e4e_path)
    assert config_a == config_b
    assert state_a.keys() == state_b.keys()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert torch.equal(state_b["mapping.w_avg"], latent_avg)
    G = load_rosinality_generator(e4e_path)
    assert isinstance(G, StyleGAN2Generator) and not G.training


def test_train_py_checkpoint_prefers_g_ema_and_accepts_args(tmp_path):
    g_ema, g = make_rosinality_state(seed=0), make_rosinality_state(seed=1)
    path = tmp_path / "010000.pt"
    torch.save({"g": g, "d": {"convs.0.0.weight": torch.randn(4, 3, 1, 1)}, "g_ema": g_ema,
                "g_optim": {"state": {}, "param_groups": [{"lr": 0.002, "params": [0, 1]}]},
                "args": argparse.Namespace(size=16, latent=8, n_mlp=2), "ada_aug_p": 0.0}, path)
    _, state = read_rosinality(path)
    assert torch.equal(state["synthesis.b4.const"], g_ema["input.input"][0])
    path_g = tmp_path / "g_only.pt"
    torch.save({"g": g}, path_g)
    _, state = read_rosinality(path_g)
    assert torch.equal(state["synthesis.b4.const"], g["input.input"][0])


def test_bare_state_dict_legacy_serialization(tmp_path):
    sd = make_rosinality_state()
    path = tmp_path / "bare.pt"
    torch.save(sd, path, _use_new_zipfile_serialization=False)
    config, state = read_rosinality(path)
    assert config["img_resolution"] == 16 and "mapping.w_avg" in state


def test_no_generator_inside(tmp_path):
    path = tmp_path / "mapper.pt"
    torch.save({"state_dict": {"mapper.fc.weight": torch.randn(3, 3)}, "opts": {}}, path)
    with pytest.raises(CheckpointError, match="no rosinality StyleGAN2 generator"):
        read_rosinality(path)


# ----------------------------------------------------------------------------------------------
# Bad files


class _RunsShellCommand:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pt"
    torch.save({"g_ema": make_rosinality_state(), "payload": _RunsShellCommand(marker)}, path)
    with pytest.raises(UnsafeCheckpointError) as info:
        load_rosinality_generator(path)
    message = str(info.value)
    assert str(path) in message and "system" in message and "only tensors" in message
    with pytest.raises(UnsafeCheckpointError):
        stylekit.load_generator(str(path))
    assert not marker.exists()


def test_plain_pickle_is_refused(tmp_path):
    path = tmp_path / "plain.pt"
    with open(path, "wb") as fh:
        pickle.dump({"g_ema": {"w": np.zeros(3)}}, fh, protocol=4)
    with pytest.raises(CheckpointError, match=str(path.name)):
        read_rosinality(path)


@pytest.mark.parametrize("kind", ["empty", "garbage", "truncated"])
def test_corrupt_files(tmp_path, kind):
    path = tmp_path / f"{kind}.pt"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(b"this is not a checkpoint at all\n" * 20)
    else:
        good = tmp_path / "good.pt"
        torch.save({"g_ema": make_rosinality_state()}, good)
        data = good.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as info:
        read_rosinality(path)
    assert str(path) in str(info.value)
    if kind == "empty":
        assert "empty" in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_rosinality_generator(tmp_path / "nope.pt")


# ----------------------------------------------------------------------------------------------
# Shapes that do not fit


def test_wrong_shaped_tensor_is_named():
    sd = make_rosinality_state()
    sd["convs.3.conv.weight"] = torch.randn(1, 8, 9, 3, 3)  # in-channels should be 8
    with pytest.raises(CheckpointError, match=r"convs\.3\.conv\.weight has shape \(1, 8, 9, 3, 3\), expected "
                                              r"\(1, 8, 8, 3, 3\)"):
        convert_rosinality_state(sd, torch.zeros(8))


@pytest.mark.parametrize("key,shape", [("convs.0.activate.bias", (11,)), ("noises.noise_2", (1, 1, 4, 4)),
                                       ("to_rgbs.1.conv.modulation.weight", (8, 7)), ("style.2.weight", (8, 9))])
def test_other_wrong_shapes_are_named(key, shape):
    sd = make_rosinality_state()
    sd[key] = torch.randn(shape)
    with pytest.raises(CheckpointError, match=rf"{key.replace('.', chr(92) + '.')} has shape"):
        convert_rosinality_state(sd, torch.zeros(8))


def test_missing_and_unexpected_tensors_are_named():
    sd = make_rosinality_state()
    del sd["convs.2.noise.weight"]
    with pytest.raises(CheckpointError, match=r"lacks convs\.2\.noise\.weight"):
        convert_rosinality_state(sd, torch.zeros(8))
    sd = make_rosinality_state()
    sd["convs.1.extra.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointError, match=r"convs\.1\.extra\.weight"):
        convert_rosinality_state(sd, torch.zeros(8))


def test_wrong_shape_in_file_names_tensor_and_file(tmp_path):
    sd = make_rosinality_state()
    sd["input.input"] = torch.randn(1, 16, 5, 5)
    path = tmp_path / "bad_shape.pt"
    torch.save({"g_ema": sd}, path)
    with pytest.raises(CheckpointError) as info:
        load_rosinality_generator(path)
    assert str(path) in str(info.value) and "input.input has shape (1, 16, 5, 5)" in str(info.value)
