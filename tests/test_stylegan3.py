"""StyleGAN3 generator (-T and -R) and its filtered leaky ReLU.

Conformance is checked against outputs of NVIDIA's official networks_stylegan3.py (reference ops,
float32) stored in tests/fixtures/nvidia; everything else runs on small random generators.
"""

from __future__ import annotations

import copy
import itertools
import json

import numpy as np
import pytest
import torch

from stylekit.checkpoints.nvidia_pickle import read_nvidia_pickle
from stylekit.errors import InvalidArgumentError
from stylekit.networks.base import StyleLayer
from stylekit.networks.filtered_lrelu import (_upsample_plan, bessel_j1, design_lowpass_filter, filtered_lrelu,
                                              jinc_lowpass, kaiser_lowpass, upsample_fir)
from stylekit.networks.ops import upfirdn2d
from stylekit.networks.stylegan3 import StyleGAN3Generator, make_transform

from conftest import tolerance_ok

CONFIGS = {"sg3t": "sg3t_small", "sg3r": "sg3r_small"}
_CACHE: dict[str, tuple] = {}


def load_fixture(fixtures_dir, which: str):
    """(G with the fixture's weights, reference arrays, official state dict), cached per config."""
    if which not in _CACHE:
        name = CONFIGS[which]
        g_ema = read_nvidia_pickle(fixtures_dir / "nvidia" / f"{name}.pkl")["G_ema"]
        G = StyleGAN3Generator(g_ema.init_kwargs).eval().requires_grad_(False)
        state = g_ema.tensors()
        G.load_state_dict(state, strict=True)
        ref = dict(np.load(fixtures_dir / "nvidia" / f"{name}_ref.npz"))
        _CACHE[which] = (G, ref, state, g_ema.init_kwargs)
    return _CACHE[which]


def tiny_config(radial: bool = False, **overrides) -> dict:
    """Official-style config for a 16x16 generator with few channels."""
    config = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, mapping_kwargs={"num_layers": 2},
                  channel_base=256, channel_max=16, magnitude_ema_beta=0.999)
    if radial:
        config.update(conv_kernel=1, use_radial_filters=True)
    config.update(overrides)
    return config


def tiny_generator(radial: bool = False, seed: int = 0, **overrides) -> StyleGAN3Generator:
    torch.manual_seed(seed)
    G = StyleGAN3Generator(tiny_config(radial, **overrides)).eval()
    with torch.no_grad():  # make the affine maps and the input transform non-trivial
        for name, p in G.named_parameters():
            if name.endswith("affine.weight"):
                p.normal_()
        G.mapping.w_avg.normal_()
    return G


# ------------------------------------------------------------------------------------------------
# Conformance with the official network
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("which", list(CONFIGS))
def test_mapping_matches_official(fixtures_dir, which):
    G, ref, _, _ = load_fixture(fixtures_dir, which)
    z = torch.from_numpy(ref["z"])
    with torch.no_grad():
        for key, psi in (("ws", 1.0), ("ws_trunc", 0.7)):
            ok, err, bound = tolerance_ok(G.mapping(z, None, truncation_psi=psi).numpy(), ref[key])
            assert ok, f"{which} {key}: max error {err:.3g} > {bound:.3g}"


@pytest.mark.parametrize("which, key", list(itertools.product(CONFIGS, ("img", "img_trunc", "img_rot15_t010_m005"))))
def test_synthesis_matches_official(fixtures_dir, which, key):
    G, ref, _, _ = load_fixture(fixtures_dir, which)
    ws = torch.from_numpy(ref["ws_trunc" if key == "img_trunc" else "ws"])
    kwargs = dict(rotate=15, translate=(0.1, -0.05)) if key == "img_rot15_t010_m005" else {}
    with torch.no_grad():
        img = G.synthesis(ws, noise_mode="const", **kwargs)
    assert img.dtype == torch.float32 and img.shape == ref[key].shape
    ok, err, bound = tolerance_ok(img.numpy(), ref[key])
    assert ok, f"{which} {key}: max error {err:.3g} > {bound:.3g}"


@pytest.mark.parametrize("which", list(CONFIGS))
def test_reference_impl_matches_official(fixtures_dir, which):
    """The literal (zero-insertion, grouped-conv) path gives the same numbers; one latent keeps -R quick."""
    G, ref, _, _ = load_fixture(fixtures_dir, which)
    with torch.no_grad():
        img = G.synthesis(torch.from_numpy(ref["ws"][:1]), impl="reference", rotate=15, translate=(0.1, -0.05))
    ok, err, bound = tolerance_ok(img.numpy(), ref["img_rot15_t010_m005"][:1])
    assert ok, f"{which} reference impl: max error {err:.3g} > {bound:.3g}"


@pytest.mark.parametrize("which", list(CONFIGS))
def test_designed_filters_equal_stored(fixtures_dir, which):
    """A generator built from the config alone designs the official filters bit for bit."""
    _, _, state, init_kwargs = load_fixture(fixtures_dir, which)
    fresh = StyleGAN3Generator(init_kwargs).state_dict()
    assert set(fresh) == set(state)
    filters = [k for k in state if k.endswith("_filter")]
    assert len(filters) >= 2 * 14
    radial_seen = False
    for key in filters:
        ours, theirs = fresh[key], state[key].to(torch.float32)
        assert ours.shape == theirs.shape, key
        radial_seen |= ours.ndim == 2
        assert torch.equal(ours, theirs), f"{key}: max difference {(ours - theirs).abs().max():.3g}"
    assert radial_seen == (which == "sg3r")


# ------------------------------------------------------------------------------------------------
# Filter design and the filtered leaky ReLU
# ------------------------------------------------------------------------------------------------

def test_kaiser_filter_matches_scipy_firwin():
    signal = pytest.importorskip("scipy.signal")
    for numtaps, cutoff, width, fs in [(12, 2.0, 8.0, 32), (24, 3.17, 10.3, 64), (12, 181.0, 150.0, 1024),
                                       (7, 0.2, 0.3, 2)]:
        ours = kaiser_lowpass(numtaps, cutoff, width, fs)
        theirs = signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)


def test_bessel_j1_matches_scipy():
    special = pytest.importorskip("scipy.special")
    x = np.linspace(-40.0, 40.0, 4001)
    np.testing.assert_allclose(bessel_j1(x), special.j1(x), rtol=0, atol=1e-14)


def test_jinc_filter_matches_formula():
    f = jinc_lowpass(12, 4.0, 6.0, 32)
    assert f.shape == (12, 12)
    np.testing.assert_allclose(f.sum(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(f, f.T, atol=1e-15)  # radially symmetric => symmetric and flip-invariant
    np.testing.assert_allclose(f, f[::-1, ::-1], atol=1e-15)
    special = pytest.importorskip("scipy.special")
    signal = pytest.importorskip("scipy.signal")
    x = (np.arange(12) - 5.5) / 32
    r = np.hypot(*np.meshgrid(x, x))
    beta = signal.kaiser_beta(signal.kaiser_atten(12, 6.0 / 16))
    expected = special.j1(2 * 4.0 * np.pi * r) / (np.pi * r) * np.outer(np.kaiser(12, beta), np.kaiser(12, beta))
    np.testing.assert_allclose(f, expected / expected.sum(), rtol=1e-12, atol=1e-15)
    assert np.isfinite(jinc_lowpass(13, 4.0, 6.0, 32)).all()  # odd size: the centre tap uses the limit


def test_design_lowpass_identity():
    assert design_lowpass_filter(1, 2.0, 4.0, 16) is None
    assert design_lowpass_filter(12, 2.0, 4.0, 32).shape == (12,)
    assert design_lowpass_filter(12, 2.0, 4.0, 32, radial=True).shape == (12, 12)


def test_upsample_plan_matches_zero_insertion():
    """Trimmed transposed convolution == zero insertion + padding + convolution, for any padding."""
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    for _ in range(400):
        up, k, n = int(rng.integers(1, 5)), int(rng.choice([2, 5, 6, 12, 24])), int(rng.integers(1, 12))
        p0, p1 = (int(v) for v in rng.integers(-k - 3, k + 4, size=2))
        if n * up + p0 + p1 - k + 1 <= 0:
            continue
        x, f = torch.randn(1, 2, 3, n), torch.randn(k)
        expected = upfirdn2d(x, f.view(1, k), up=(up, 1), padding=(p0, p1, 0, 0))
        # a [1, k] (2-D) filter upsamples rows too, with a 1-tap filter: keep every up-th row
        got = upsample_fir(x, f.view(1, k) / up ** 2, up=up, padding=(p0, p1, 0, 0))
        got = got[:, :, ::up][:, :, :3] if up > 1 else got
        assert got.shape == expected.shape, (up, k, n, p0, p1)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5, msg=str((up, k, n, p0, p1)))
        i0, i1, crop, out_pad, _, _ = _upsample_plan(n, k, up, p0, p1)
        assert 0 <= i0 < i1 <= n and 0 <= crop <= k - 1 and 0 <= out_pad < up


@pytest.mark.parametrize("up, down, radial, separable_up", [
    (2, 2, False, True), (4, 2, False, True), (2, 2, True, True), (2, 1, False, True), (1, 2, True, True),
    (1, 1, False, True), (2, 2, False, False)])
@pytest.mark.parametrize("padding", [(9, 8, 9, 8), (3, 2, 5, 4), (-1, 0, 2, -3)])
def test_filtered_lrelu_fast_equals_reference(up, down, radial, separable_up, padding):
    torch.manual_seed(1)
    fu = design_lowpass_filter(6 * up if up > 1 else 1, 2.0, 4.0, 16 * up)
    if fu is not None and not separable_up:
        fu = torch.outer(fu, fu)
    fd = design_lowpass_filter(6 * down if down > 1 else 1, 2.0, 4.0, 16 * up, radial=radial)
    x, b = torch.randn(2, 3, 20, 17), torch.randn(3)
    kwargs = dict(up=up, down=down, padding=padding, gain=np.sqrt(2), slope=0.2, clamp=1.5)
    ref = filtered_lrelu(x, fu, fd, b, impl="reference", **kwargs)
    fast = filtered_lrelu(x, fu, fd, b, impl="fast", **kwargs)
    assert fast.shape == ref.shape
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5)
    assert torch.isfinite(fast).all()


@pytest.mark.parametrize("min_rows", [1, 3, 8])
def test_filtered_lrelu_strips_equal_reference(monkeypatch, min_rows):
    """Working in strips of output rows (as for large images) changes nothing, values or gradients."""
    from stylekit.networks import filtered_lrelu as module

    monkeypatch.setattr(module, "STRIP_BYTES", 1)
    monkeypatch.setattr(module, "MIN_STRIP_ROWS", min_rows)
    torch.manual_seed(2)
    for up, radial, padding in [(2, False, (9, 8, 9, 8)), (4, True, (-6, -9, -6, -9)), (2, True, (3, 7, 1, 2))]:
        fu = design_lowpass_filter(6 * up, 2.0, 4.0, 16 * up)
        fd = design_lowpass_filter(12, 2.0, 4.0, 16 * up, radial=radial)
        x = torch.randn(2, 3, 19, 23, requires_grad=True)
        kwargs = dict(up=up, down=2, padding=padding, gain=np.sqrt(2), slope=0.2, clamp=0.8)
        ref = filtered_lrelu(x, fu, fd, None, impl="reference", **kwargs)
        fast = filtered_lrelu(x, fu, fd, None, impl="fast", **kwargs)
        torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5)
        g = torch.randn_like(ref)
        (grad_ref,) = torch.autograd.grad(ref, x, g)
        (grad_fast,) = torch.autograd.grad(fast, x, g)
        torch.testing.assert_close(grad_fast, grad_ref, rtol=1e-4, atol=1e-5)


def test_synthesis_in_strips_matches_official(fixtures_dir, monkeypatch):
    from stylekit.networks import filtered_lrelu as module

    monkeypatch.setattr(module, "STRIP_BYTES", 1)
    monkeypatch.setattr(module, "MIN_STRIP_ROWS", 5)
    G, ref, _, _ = load_fixture(fixtures_dir, "sg3t")
    with torch.no_grad():
        img = G.synthesis(torch.from_numpy(ref["ws"][:2]))
    ok, err, bound = tolerance_ok(img.numpy(), ref["img"][:2])
    assert ok, f"strips: max error {err:.3g} > {bound:.3g}"


def test_filtered_lrelu_steps():
    """Identity filters: bias, gain*lrelu and clamp, exactly."""
    x = torch.tensor([[[[-2.0, -0.5, 0.25, 3.0]]]])
    y = filtered_lrelu(x, None, None, torch.tensor([0.5]), gain=2.0, slope=0.1, clamp=4.0)
    torch.testing.assert_close(y, torch.tensor([[[[-0.3, 0.0, 1.5, 4.0]]]]))


# ------------------------------------------------------------------------------------------------
# The generator's interface
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("radial", [False, True])
def test_random_init_shapes(radial):
    G = tiny_generator(radial)
    assert G.arch == "stylegan3"
    assert G.num_ws == 16 and G.img_resolution == 16 and G.img_channels == 3 and G.w_dim == 8
    assert G.noise_shapes() == []
    layers = G.style_layers
    assert layers[0] == StyleLayer("input", 0, 4, "input")
    assert [layer.kind for layer in layers[1:]] == ["conv"] * 14 + ["torgb"]
    assert [layer.ws_index for layer in layers] == list(range(16))
    assert layers[1].name.startswith("L0_") and layers[-1].name.startswith("L14_16_3")
    # the channel counts are the affine output sizes
    styles = G.ws_to_styles(torch.randn(2, 16, 8))
    assert [s.shape for s in styles] == [(2, layer.channels) for layer in layers]
    with torch.no_grad():
        img = G(torch.randn(2, 8), None, truncation_psi=0.7)
    assert img.shape == (2, 3, 16, 16) and img.dtype == torch.float32 and torch.isfinite(img).all()
    down = [m.down_filter for n, m in G.synthesis.named_children() if n.startswith("L") and m.down_filter is not None]
    assert any(f.ndim == 2 for f in down) == radial


def test_config_is_json_and_rebuilds():
    config = tiny_config(True)
    config.update(num_fp16_res=np.int64(4), some_unknown_key=object(), channel_base=np.int64(256))
    G = StyleGAN3Generator(config)
    text = json.dumps(G.config)
    assert "some_unknown_key" not in text
    G2 = StyleGAN3Generator(json.loads(text))
    assert {k: v.shape for k, v in G.state_dict().items()} == {k: v.shape for k, v in G2.state_dict().items()}
    G2.load_state_dict(G.state_dict(), strict=True)
    ws = torch.randn(1, G.num_ws, G.w_dim)
    with torch.no_grad():
        assert torch.equal(G.synthesis(ws), G2.synthesis(ws))


def test_official_random_init_rules():
    G = tiny_generator(seed=3)
    torch.manual_seed(3)
    fresh = StyleGAN3Generator(tiny_config())
    assert torch.equal(fresh.synthesis.input.affine.weight, torch.zeros(4, 8))
    assert torch.equal(fresh.synthesis.input.affine.bias, torch.tensor([1.0, 0, 0, 0]))
    assert torch.equal(fresh.synthesis.input.transform, torch.eye(3))
    freqs = G.synthesis.input.freqs
    assert (freqs.norm(dim=1) <= G.synthesis.input.bandwidth).all()
    assert ((G.synthesis.input.phases >= -0.5) & (G.synthesis.input.phases < 0.5)).all()
    for name in G.synthesis.layer_names:
        layer = getattr(G.synthesis, name)
        assert float(layer.magnitude_ema) == 1.0 and torch.equal(layer.bias, torch.zeros_like(layer.bias))


@pytest.mark.parametrize("radial", [False, True])
def test_styles_path_equals_ws_path(radial):
    G = tiny_generator(radial, seed=1)
    ws = torch.randn(3, G.num_ws, G.w_dim)
    with torch.no_grad():
        styles = G.ws_to_styles(ws)
        a = G.synthesis(ws, noise_mode="const")
        b = G.synthesis(None, styles=styles)
        assert torch.equal(a, b)
        edited = [s.clone() for s in styles]
        edited[3][:, 0] += 5.0
        assert not torch.equal(G.synthesis(None, styles=edited), a)


def test_styles_path_equals_ws_path_on_fixture(fixtures_dir):
    G, ref, _, _ = load_fixture(fixtures_dir, "sg3t")
    ws = torch.from_numpy(ref["ws"][:2])
    with torch.no_grad():
        assert torch.equal(G.synthesis(None, styles=G.ws_to_styles(ws)), G.synthesis(ws))


def test_rotate_translate_do_not_touch_buffers():
    G = tiny_generator(seed=2)
    before = {k: v.clone() for k, v in G.state_dict().items()}
    ws = torch.randn(2, G.num_ws, G.w_dim)
    with torch.no_grad():
        plain = G.synthesis(ws)
        moved = G.synthesis(ws, rotate=30.0, translate=(0.2, 0.1))
        again = G.synthesis(ws, rotate=0.0, translate=(0.0, 0.0))
    assert not torch.equal(plain, moved)
    assert torch.equal(plain, again)
    after = G.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_rotate_translate_follow_official_recipe():
    """Same as the official gen_images.py recipe (copy inverse(m) into the buffer), and composes
    with a stored non-identity transform as: stored @ inverse(m)."""
    G = tiny_generator(seed=4)
    ws = torch.randn(2, G.num_ws, G.w_dim)
    m = make_transform((0.1, -0.05), 15.0)
    np.testing.assert_allclose(m[:2, :2], [[np.cos(np.pi / 12), np.sin(np.pi / 12)],
                                           [-np.sin(np.pi / 12), np.cos(np.pi / 12)]])
    official = copy.deepcopy(G)
    official.synthesis.input.transform.copy_(torch.from_numpy(np.linalg.inv(m)))
    with torch.no_grad():
        assert torch.equal(G.synthesis(ws, rotate=15, translate=(0.1, -0.05)), official.synthesis(ws))
        stored = make_transform((0.03, 0.02), -20.0)
        G.synthesis.input.transform.copy_(torch.from_numpy(stored))
        official.synthesis.input.transform.copy_(torch.from_numpy(stored @ np.linalg.inv(m)))
        assert torch.equal(G.synthesis(ws, rotate=15, translate=(0.1, -0.05)), official.synthesis(ws))
        assert torch.equal(G.synthesis.input.transform, torch.from_numpy(stored).float())


def test_translation_moves_content():
    """A horizontal translation by k/R of the image width shifts the image by about k pixels."""
    G = tiny_generator(seed=5, img_resolution=32, channel_base=512, channel_max=16)
    ws = G.mapping(torch.randn(1, 8), None)
    with torch.no_grad():
        base = G.synthesis(ws)
        shifted = G.synthesis(ws, translate=(4 / 32, 0.0))
    inner = (slice(None), slice(None), slice(6, -6))
    errors = {dx: (shifted[..., 6 + dx:26 + dx] - base[..., 6:26])[inner].abs().mean().item() for dx in range(-4, 5)}
    best = min(errors, key=errors.get)
    assert best == 4, errors


def test_gradients_flow_to_ws_and_styles():
    G = tiny_generator(radial=True, seed=6).requires_grad_(False)
    ws = torch.randn(2, G.num_ws, G.w_dim, requires_grad=True)
    img = G.synthesis(ws, rotate=5.0)
    img.square().mean().backward()
    assert ws.grad is not None and torch.isfinite(ws.grad).all()
    assert (ws.grad.abs().sum(dim=(0, 2)) > 0).all()  # every layer's w matters
    styles = [s.detach().requires_grad_(True) for s in G.ws_to_styles(ws.detach())]
    G.synthesis(None, styles=styles).sum().backward()
    assert all(s.grad is not None and torch.isfinite(s.grad).all() for s in styles)


def test_magnitude_ema_only_updates_on_request():
    G = tiny_generator(seed=7)
    layer = getattr(G.synthesis, G.synthesis.layer_names[0])
    ws = torch.randn(2, G.num_ws, G.w_dim)
    with torch.no_grad():
        G.synthesis(ws)
        assert float(layer.magnitude_ema) == 1.0
        G.synthesis(ws, update_emas=True)
    assert float(layer.magnitude_ema) != 1.0


def test_invalid_arguments():
    G = tiny_generator(seed=8)
    ws = torch.randn(1, G.num_ws, G.w_dim)
    with pytest.raises(InvalidArgumentError, match="no noise"):
        G.synthesis(ws, noise=[torch.zeros(1, 1, 16, 16)])
    G.synthesis(ws, noise=[], noise_mode="random")  # accepted, nothing to do
    with pytest.raises(InvalidArgumentError):
        G.synthesis(torch.randn(1, G.num_ws - 1, G.w_dim))
    with pytest.raises(InvalidArgumentError):
        G.synthesis(ws, noise_mode="bogus")
    with pytest.raises(InvalidArgumentError):
        G.synthesis(ws, impl="cuda")
    with pytest.raises(InvalidArgumentError):
        G.synthesis(ws, rotate=float("nan"))
    with pytest.raises(InvalidArgumentError):
        G.synthesis(ws, translate=1.0)
    with pytest.raises(InvalidArgumentError):
        G.synthesis(None, styles=G.ws_to_styles(ws)[:-1])
    with pytest.raises(InvalidArgumentError):
        StyleGAN3Generator({"z_dim": 8})


@pytest.mark.parametrize("dim", [2, 3])
def test_strided_fir_gradient_is_exact(dim):
    """The polyphase input gradient of a strided depthwise FIR equals autograd's (float64), for odd and even
    lengths, taps shorter and longer than the stride, and trailing samples no output reads."""
    import torch.nn.functional as F

    from stylekit.networks.filtered_lrelu import strided_fir_input_grad

    torch.manual_seed(3)
    for k, s, n in [(12, 2, 40), (12, 2, 41), (5, 3, 29), (2, 4, 17), (1, 2, 9)]:
        taps = torch.randn(k, dtype=torch.float64)
        w = taps.repeat(3, 1).reshape((3, 1, k, 1) if dim == 2 else (3, 1, 1, k))
        x = torch.randn(2, 3, *((n, 7) if dim == 2 else (7, n)), dtype=torch.float64, requires_grad=True)
        y = F.conv2d(x, w, stride=(s, 1) if dim == 2 else (1, s), groups=3)
        gy = torch.randn_like(y)
        (expected,) = torch.autograd.grad(y, x, gy)
        got = strided_fir_input_grad(gy, w, s, dim, n)
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12, msg=str((k, s, n)))


def test_filtered_lrelu_bf16_gradient_follows_float32():
    """Training a StyleGAN3 in bfloat16 on CPU takes the strided FIR's own backward (no slow bf16 depthwise
    backward); its input gradient agrees with float32's to bfloat16's precision."""
    torch.manual_seed(4)
    fu = design_lowpass_filter(12, 2.0, 4.0, 32)
    fd = design_lowpass_filter(12, 2.0, 4.0, 32, radial=True)
    x = torch.randn(2, 8, 19, 23)
    kwargs = dict(up=2, down=2, padding=(9, 8, 9, 8), gain=np.sqrt(2), slope=0.2, clamp=4.0)
    x32 = x.clone().requires_grad_(True)
    ref = filtered_lrelu(x32, fu, fd, None, impl="reference", **kwargs)
    x16 = x.to(torch.bfloat16).requires_grad_(True)
    out = filtered_lrelu(x16, fu, fd, None, impl="fast", **kwargs)
    g = torch.randn_like(ref)
    (grad_ref,) = torch.autograd.grad(ref, x32, g)
    (grad16,) = torch.autograd.grad(out, x16, g.to(torch.bfloat16))
    rel = (grad16.float() - grad_ref).norm() / grad_ref.norm()
    assert rel < 2e-2, rel
