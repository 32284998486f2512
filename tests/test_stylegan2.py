"""StyleGAN2 generator: conformance with NVIDIA's code, fast == reference, StyleSpace, noise, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from stylekit.errors import InvalidArgumentError
from stylekit.networks import ops
from stylekit.networks.stylegan2 import StyleGAN2Generator

from conftest import fixture_file

SMALL = dict(z_dim=32, c_dim=0, w_dim=32, img_resolution=32, mapping_kwargs=dict(num_layers=2),
             channel_base=512, channel_max=32, conv_clamp=256)


def within_bar(ours: torch.Tensor, ref: np.ndarray) -> tuple[float, float]:
    """(max |ours - ref|, allowed) with the fixtures' bar 1e-3 * max(1, std(ref))."""
    diff = float(np.abs(ours.detach().cpu().numpy() - ref).max())
    return diff, 1e-3 * max(1.0, float(ref.std()))


def close(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-3) -> bool:
    return float((a - b).abs().max()) <= rel * max(1.0, float(b.abs().max()))


def make_small(seed: int = 0, **overrides) -> StyleGAN2Generator:
    torch.manual_seed(seed)
    G = StyleGAN2Generator({**SMALL, **overrides}).eval()
    with torch.no_grad():  # make noise matter (random init has noise_strength = 0)
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.3)
    return G


@pytest.fixture(scope="module")
def nvidia_small():
    pkl, ref = fixture_file("nvidia/sg2_small.pkl"), fixture_file("nvidia/sg2_small_ref.npz")
    from stylekit.checkpoints.nvidia_pickle import read_nvidia_pickle

    record = read_nvidia_pickle(pkl)["G_ema"]
    G = StyleGAN2Generator(record.init_kwargs).eval().requires_grad_(False)
    G.load_state_dict(record.tensors(), strict=True)
    return G, dict(np.load(ref))


@pytest.mark.parametrize("impl", ["fast", "reference"])
def test_conformance_with_nvidia_reference_outputs(nvidia_small, impl):
    G, ref = nvidia_small
    z = torch.from_numpy(ref["z"])
    with torch.no_grad():
        ws = G.mapping(z, None)
        ws_trunc = G.mapping(z, None, truncation_psi=0.7)
        outputs = {"ws": ws, "ws_trunc": ws_trunc,
                   "img": G.synthesis(ws, noise_mode="const", impl=impl),
                   "img_trunc": G.synthesis(ws_trunc, noise_mode="const", impl=impl)}
    for key, ours in outputs.items():
        assert tuple(ours.shape) == ref[key].shape, key
        diff, bar = within_bar(ours, ref[key])
        assert diff <= bar, f"{key} ({impl}): max diff {diff:.3g} > {bar:.3g}"


def test_nvidia_names_and_config_roundtrip(nvidia_small):
    G, _ = nvidia_small
    names = set(G.state_dict())
    for name in ("synthesis.b4.const", "synthesis.b8.conv0.weight", "synthesis.b8.conv0.affine.weight",
                 "synthesis.b8.conv0.noise_const", "synthesis.b8.conv0.noise_strength",
                 "synthesis.b8.conv0.resample_filter", "synthesis.b8.resample_filter",
                 "synthesis.b64.torgb.weight", "mapping.w_avg", "mapping.fc3.bias"):
        assert name in names
    text = json.dumps(G.config)
    G2 = StyleGAN2Generator(json.loads(text))
    assert G2.config == G.config
    G2.load_state_dict(G.state_dict(), strict=True)


def test_nested_synthesis_kwargs_of_stylegan2_ada_are_accepted():
    flat = StyleGAN2Generator(SMALL)
    nested_cfg = {k: v for k, v in SMALL.items() if k in ("z_dim", "c_dim", "w_dim", "img_resolution", "mapping_kwargs")}
    nested_cfg["synthesis_kwargs"] = {k: v for k, v in SMALL.items() if k not in nested_cfg}
    nested_cfg["synthesis_kwargs"]["fused_modconv_default"] = True  # harmless unknown key
    nested = StyleGAN2Generator(nested_cfg)
    assert nested.config == flat.config
    assert {k: v.shape for k, v in nested.state_dict().items()} == {k: v.shape for k, v in flat.state_dict().items()}


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("arch", ["skip", "orig"])
def test_fast_matches_reference(batch, arch):
    G = make_small(architecture=arch)
    torch.manual_seed(1)
    ws = G.mapping(torch.randn(batch, G.z_dim))
    with torch.no_grad():
        fast = G.synthesis(ws, impl="fast")
        ref = G.synthesis(ws, impl="reference")
    assert fast.shape == (batch, 3, 32, 32) and fast.dtype == torch.float32 and fast.is_contiguous()
    assert close(fast, ref, 1e-4)


def test_fast_matches_reference_with_odd_filter_and_no_clamp():
    G = make_small(resample_filter=[1, 2, 1], conv_clamp=None)
    ws = G.mapping(torch.randn(2, G.z_dim))
    with torch.no_grad():
        assert close(G.synthesis(ws, impl="fast"), G.synthesis(ws, impl="reference"), 1e-4)


def test_style_layers_and_ws_to_styles():
    G = make_small()
    syn = G.synthesis
    names = [sl.name for sl in syn.style_layers]
    assert names[:5] == ["b4.conv1", "b4.torgb", "b8.conv0", "b8.conv1", "b8.torgb"]
    assert names[-1] == "b32.torgb" and len(names) == 2 + 3 * 3
    idx = {sl.name: sl.ws_index for sl in syn.style_layers}
    assert (idx["b4.conv1"], idx["b4.torgb"], idx["b8.conv0"], idx["b8.conv1"], idx["b8.torgb"]) == (0, 1, 1, 2, 3)
    assert idx["b32.torgb"] == syn.num_ws - 1 == 7
    assert [sl.kind for sl in syn.style_layers[:2]] == ["conv", "torgb"]
    ws = torch.randn(2, syn.num_ws, G.w_dim)
    styles = syn.ws_to_styles(ws)
    for s, sl in zip(styles, syn.style_layers):
        assert s.shape == (2, sl.channels)
    # S is each layer's affine(w) (ToRGB's weight_gain is not inside S).
    torgb = syn.b8.torgb
    assert torch.allclose(styles[4], torgb.affine(ws[:, 3]))
    assert syn.noise_shapes()[:3] == [("b4.conv1", (4, 4)), ("b8.conv0", (8, 8)), ("b8.conv1", (8, 8))]
    assert (syn.num_ws, syn.img_resolution, syn.img_channels) == (8, 32, 3)


@pytest.mark.parametrize("impl", ["fast", "reference"])
def test_styles_path_equals_ws_path(impl):
    G = make_small()
    ws = G.mapping(torch.randn(2, G.z_dim))
    with torch.no_grad():
        a = G.synthesis(ws, impl=impl)
        b = G.synthesis(None, styles=G.synthesis.ws_to_styles(ws), impl=impl)
    assert torch.equal(a, b)


def test_editing_one_style_channel_changes_the_image():
    G = make_small()
    ws = G.mapping(torch.randn(1, G.z_dim))
    with torch.no_grad():
        styles = G.synthesis.ws_to_styles(ws)
        base = G.synthesis(None, styles=styles)
        styles[3] = styles[3].clone()
        styles[3][:, 0] += 5.0
        edited = G.synthesis(None, styles=styles)
    assert not torch.allclose(base, edited)


def test_noise_modes_and_explicit_noise():
    G = make_small()
    ws = G.mapping(torch.randn(2, G.z_dim))
    with torch.no_grad():
        const = G.synthesis(ws, noise_mode="const")
        explicit = G.synthesis(ws, noise=[buf.clone() for buf in G.synthesis.noise_buffers()])
        explicit4d = G.synthesis(ws, noise=[buf[None, None].expand(2, 1, -1, -1) for buf in G.synthesis.noise_buffers()])
        torch.manual_seed(5)
        random1 = G.synthesis(ws, noise_mode="random")
        torch.manual_seed(5)
        random2 = G.synthesis(ws, noise_mode="random")
        none = G.synthesis(ws, noise_mode="none")
        zeros = G.synthesis(ws, noise=[torch.zeros(h, w) for _, (h, w) in G.synthesis.noise_shapes()])
    assert torch.equal(const, explicit)
    assert close(explicit4d, const, 1e-6)
    assert torch.equal(random1, random2)
    assert not torch.allclose(random1, const, atol=1e-3)
    assert not torch.allclose(none, const, atol=1e-3)
    assert torch.equal(none, zeros)


def test_style_mixing_runs():
    G = make_small()
    torch.manual_seed(3)
    w_a, w_b = G.mapping(torch.randn(2, G.z_dim)).unbind(0)
    mixed = w_a.clone()[None]
    mixed[:, 4:] = w_b[4:]
    with torch.no_grad():
        imgs = G.synthesis(torch.cat([w_a[None], w_b[None], mixed]))
    assert imgs.shape == (3, 3, 32, 32) and torch.isfinite(imgs).all()
    assert not torch.allclose(imgs[2], imgs[0]) and not torch.allclose(imgs[2], imgs[1])


def test_conditional_generator_requires_c():
    G = make_small(c_dim=5)
    z = torch.randn(2, G.z_dim)
    with pytest.raises(ValueError):
        G.mapping(z, None)
    c = torch.nn.functional.one_hot(torch.tensor([0, 3]), 5).float()
    with torch.no_grad():
        img = G(z, c)
        other = G(z, torch.nn.functional.one_hot(torch.tensor([1, 2]), 5).float())
    assert img.shape == (2, 3, 32, 32) and torch.isfinite(img).all()
    assert not torch.allclose(img, other)
    assert "mapping.embed.weight" in G.state_dict()


@pytest.mark.parametrize("impl", ["fast", "reference"])
def test_gradients_reach_ws_and_noise(impl):
    G = make_small().requires_grad_(False)
    ws = G.mapping(torch.randn(2, G.z_dim)).detach().requires_grad_(True)
    noise = [torch.randn(1, 1, h, w, requires_grad=True) for _, (h, w) in G.synthesis.noise_shapes()]
    G.synthesis(ws, noise=noise, impl=impl).square().mean().backward()
    assert ws.grad is not None and ws.grad.abs().sum() > 0
    for n in noise:
        assert n.grad is not None and torch.isfinite(n.grad).all() and n.grad.abs().sum() > 0


def test_fast_and_reference_gradients_agree():
    G = make_small().requires_grad_(False)
    ws0 = G.mapping(torch.randn(2, G.z_dim)).detach()
    grads = {}
    for impl in ("fast", "reference"):
        ws = ws0.clone().requires_grad_(True)
        styles = [s.detach().requires_grad_(True) for s in G.synthesis.ws_to_styles(ws0)]
        G.synthesis(ws, impl=impl).square().mean().backward()
        G.synthesis(None, styles=styles, impl=impl).sum().backward()
        grads[impl] = (ws.grad, styles[5].grad)
    assert close(grads["fast"][0], grads["reference"][0], 1e-4)
    assert close(grads["fast"][1], grads["reference"][1], 1e-4)


def test_channels_override_builds_narrowed_table():
    # rosinality-style table: 4:96, 8:96, 16:64, 32:64 (not what channel_base/channel_max give)
    G = StyleGAN2Generator({**SMALL, "channels": {"4": 96, "8": 96, 16: 64, "32": 64}})
    sd = G.state_dict()
    assert sd["synthesis.b4.const"].shape == (96, 4, 4)
    assert sd["synthesis.b8.conv0.weight"].shape == (96, 96, 3, 3)
    assert sd["synthesis.b16.conv0.weight"].shape == (64, 96, 3, 3)
    assert sd["synthesis.b32.torgb.weight"].shape == (3, 64, 1, 1)
    assert G.config["channels"] == {"4": 96, "8": 96, "16": 64, "32": 64}
    json.dumps(G.config)
    with torch.no_grad():
        assert G(torch.randn(1, G.z_dim)).shape == (1, 3, 32, 32)


def test_bad_configs_and_arguments_raise_stylekit_errors():
    with pytest.raises(InvalidArgumentError, match="resnet"):
        StyleGAN2Generator({**SMALL, "architecture": "resnet"})
    with pytest.raises(InvalidArgumentError):
        StyleGAN2Generator({**SMALL, "img_resolution": 48})
    with pytest.raises(InvalidArgumentError):
        StyleGAN2Generator({k: v for k, v in SMALL.items() if k != "w_dim"})
    G = make_small()
    ws = torch.randn(1, G.num_ws, G.w_dim)
    shapes = G.synthesis.noise_shapes()
    with pytest.raises(InvalidArgumentError, match="noise"):
        G.synthesis(ws, noise=[torch.zeros(h, w) for _, (h, w) in shapes[:-1]])
    with pytest.raises(InvalidArgumentError, match="noise map"):
        G.synthesis(ws, noise=[torch.zeros(h + 1, w) for _, (h, w) in shapes])
    with pytest.raises(InvalidArgumentError, match="ws"):
        G.synthesis(torch.randn(1, G.num_ws + 1, G.w_dim))
    with pytest.raises(InvalidArgumentError, match="styles"):
        G.synthesis(None, styles=G.synthesis.ws_to_styles(ws)[:-1])
    with pytest.raises(InvalidArgumentError):
        G.synthesis(ws, noise_mode="sometimes")
    with pytest.raises(InvalidArgumentError):
        G.synthesis(ws, impl="cuda")


def test_fast_fir_ops_match_reference_upfirdn2d():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 9, 7)
    for taps in ([1, 3, 3, 1], [1, 2, 5, 3], [1, 2, 1]):
        f = ops.setup_filter(taps)
        ref_up = ops.upfirdn2d(x, f, up=2, padding=[(len(taps) + 1) // 2, (len(taps) - 2) // 2] * 2, gain=4)
        assert close(ops.upsample2d_separable(x, ops.separable_taps(f)), ref_up, 1e-6)
        for pad in (1, (2, 1, 0, 1), (-1, 2, 2, -1)):
            assert close(ops.fir2d_depthwise(x, f, padding=pad, gain=4), ops.upfirdn2d(x, f, padding=pad, gain=4), 1e-6)
    assert ops.separable_taps(torch.tensor([[1.0, 0.0], [0.0, 1.0]])) is None
