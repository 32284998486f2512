"""Compute precision of the generators: what 'auto' picks, bfloat16 against float32 on the conformance
fixtures, the batch arrangements of the fast path, and float32 weights on disk after convert."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import fixture_file, tiny_stylegan2
from stylekit.checkpoints.canonical import save_generator
from stylekit.checkpoints.load import load_generator
from stylekit.errors import InvalidArgumentError
from stylekit.networks.filtered_lrelu import (design_lowpass_filter, downsample_fir, filtered_lrelu,
                                               separable_terms, upsample_fir, upsample_fir_polyphase)
from stylekit.networks import modconv, ops
from stylekit.networks.modconv import modulated_conv2d_fast
from stylekit.networks.ops import setup_filter
from stylekit.networks.precision import choose_precision, resolve_precision
from stylekit.networks.stylegan2 import block_dtypes
from stylekit.networks.stylegan3 import layer_schedule

#: bfloat16 images must match float32 ones to this PSNR (images in [-1, 1], peak-to-peak 2).
MIN_BF16_PSNR_DB = 40.0

FIXTURES = {  # name -> (checkpoint, reference arrays)
    "sg2": ("nvidia/sg2_small.pkl", "nvidia/sg2_small_ref.npz"),
    "sg3t": ("nvidia/sg3t_small.pkl", "nvidia/sg3t_small_ref.npz"),
    "sg3r": ("nvidia/sg3r_small.pkl", "nvidia/sg3r_small_ref.npz"),
    "rosinality": ("rosinality/ros_small.pt", "rosinality/ros_small_ref.npz"),
}


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of ``a`` against ``b`` for images in [-1, 1] (peak-to-peak 2)."""
    mse = (a.double() - b.double()).square().mean().item()
    return float("inf") if mse == 0 else 10 * np.log10(4.0 / mse)


# --- what 'auto' picks -------------------------------------------------------------------------

@pytest.mark.parametrize("device_type, flags, expected", [
    ("cpu", {"fpu", "avx2", "avx512f", "amx_tile", "amx_bf16"}, "bf16"),
    ("cpu", {"avx512f", "avx512_bf16"}, "bf16"),
    ("cpu", ["AMX_BF16"], "bf16"),
    ("cpu", {"avx2", "avx512f", "avx512_vnni", "amx_tile"}, "fp32"),  # no bfloat16 arithmetic
    ("cpu", set(), "fp32"),
    ("cuda", set(), "fp16"),
    ("cuda", {"amx_bf16"}, "fp16"),
    ("mps", {"amx_bf16"}, "fp32"),
])
def test_choose_precision_on_given_cpu_features(device_type, flags, expected):
    assert choose_precision(device_type, flags) == expected


def test_resolve_precision_names():
    assert resolve_precision("bf16", "cpu") == "bf16"
    assert resolve_precision("fp32", "cpu") == "fp32"
    assert resolve_precision("auto", "cpu") in ("fp32", "bf16")
    assert resolve_precision(None, "cpu") == resolve_precision("auto", "cpu")
    with pytest.raises(InvalidArgumentError, match="precision"):
        resolve_precision("fp64", "cpu")


def test_fp16_runs_only_the_finest_blocks_in_float16():
    dtypes = block_dtypes([4, 8, 16, 32, 64, 128, 256, 512, 1024], "fp16")
    assert [r for r, d in dtypes.items() if d == torch.float16] == [128, 256, 512, 1024]
    assert set(block_dtypes([4, 8, 16], "bf16").values()) == {torch.bfloat16}


# --- bfloat16 against float32 on the conformance fixtures --------------------------------------

@pytest.fixture(scope="module")
def fixture_generators():
    cache = {}

    def get(name):
        if name not in cache:
            ckpt, ref = FIXTURES[name]
            G = load_generator(fixture_file(ckpt))
            cache[name] = (G, dict(np.load(fixture_file(ref))))
        return cache[name]
    return get


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_bf16_matches_fp32_on_fixtures(fixture_generators, name):
    G, ref = fixture_generators(name)
    ws = torch.from_numpy(ref["ws"]).float()
    with torch.no_grad():
        fp32 = G.synthesis(ws, noise_mode="const", precision="fp32")
        bf16 = G.synthesis(ws, noise_mode="const", precision="bf16")
        bf16_single = torch.cat([G.synthesis(ws[i:i + 1], noise_mode="const", precision="bf16")
                                 for i in range(ws.shape[0])])
    assert bf16.dtype == torch.float32 and bf16.shape == fp32.shape
    assert psnr(bf16, fp32) >= MIN_BF16_PSNR_DB, f"{name}: batch {ws.shape[0]}: {psnr(bf16, fp32):.1f} dB"
    assert psnr(bf16_single, fp32) >= MIN_BF16_PSNR_DB, f"{name}: batch 1: {psnr(bf16_single, fp32):.1f} dB"
    assert psnr(bf16, fp32) < 120  # it really ran in bfloat16


def test_precision_attribute_drives_synthesis(fixture_generators):
    G, ref = fixture_generators("sg3t")
    ws = torch.from_numpy(ref["ws"][:1]).float()
    assert G.precision == "fp32"
    with torch.no_grad():
        try:
            G.precision = "bf16"
            via_attribute = G.synthesis(ws)
        finally:
            G.precision = "fp32"
        explicit = G.synthesis(ws, precision="bf16")
    assert torch.equal(via_attribute, explicit)
    with pytest.raises(InvalidArgumentError):
        G.precision = "int8"


# --- batch arrangements agree in float32 --------------------------------------------------------

@pytest.mark.parametrize("name", ["sg2", "sg3t", "rosinality"])
def test_batch_and_single_paths_agree_in_fp32(fixture_generators, name):
    G, ref = fixture_generators(name)
    ws = torch.from_numpy(ref["ws"]).float()
    with torch.no_grad():
        batch = G.synthesis(ws, precision="fp32")
        single = torch.cat([G.synthesis(ws[i:i + 1], precision="fp32") for i in range(ws.shape[0])])
    assert (batch - single).abs().max().item() <= 1e-5 * max(1.0, batch.abs().max().item())


@pytest.mark.parametrize("up", [1, 2])
def test_modulated_conv_batch_form_equals_weight_form(up):
    """Batch > 1 scales activations around one shared convolution; batch 1 modulates the weights."""
    g = torch.Generator().manual_seed(up)
    x = torch.randn(3, 8, 6, 6, generator=g).contiguous(memory_format=torch.channels_last)
    weight, styles, bias = torch.randn(5, 8, 3, 3, generator=g), torch.randn(3, 8, generator=g), torch.randn(5, generator=g)
    kwargs = dict(up=up, padding=1, resample_filter=setup_filter([1, 3, 3, 1]), out_gain=2 ** 0.5, bias=bias)
    with torch.no_grad():
        batch = modulated_conv2d_fast(x, weight, styles, **kwargs)
        single = torch.cat([modulated_conv2d_fast(x[i:i + 1], weight, styles[i:i + 1], **kwargs) for i in range(3)])
    assert batch.shape == (3, 5, 6 * up, 6 * up)
    assert (batch - single).abs().max().item() <= 1e-5 * max(1.0, single.abs().max().item())


@pytest.mark.parametrize("shape", [(1, 5, 7, 4, 6), (3, 8, 4, 5, 5), (2, 3, 3, 1, 2)])
def test_phase_upsampling_equals_the_transposed_convolution(shape):
    """Four 2x2 phase kernels + interleave + FIR compute exactly NVIDIA's transposed conv + FIR (float64)."""
    n, i, o, h, w = shape
    g = torch.Generator().manual_seed(h * w)
    x = torch.randn(n, i, h, w, generator=g, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    weight, bias = torch.randn(o, i, 3, 3, generator=g, dtype=torch.float64), torch.randn(o, generator=g, dtype=torch.float64)
    f = setup_filter([1, 3, 3, 1]).double()
    for b in (bias, None):
        ref = modconv.upsample_conv2d(x, weight, f, 1, b)
        new = modconv.upsample_conv2d_phases(x, modconv.phase_kernels(weight), f, b)
        assert new.shape == ref.shape == (n, o, 2 * h, 2 * w)
        assert (new - ref).abs().max().item() <= 1e-12 * max(1.0, ref.abs().max().item())


@pytest.mark.parametrize("batch", [1, 3])
def test_bf16_upsampling_layers_take_the_phase_form_and_agree_with_fp32(batch):
    """In bfloat16 inference at the measured sizes the fast path upsamples by phases; its result is
    the float32 one to bfloat16's precision, and a weight update reaches the cached phase kernels."""
    g = torch.Generator().manual_seed(batch)
    side = modconv.PHASES_MIN_SIDE
    x = torch.randn(batch, 16, side, side, generator=g).contiguous(memory_format=torch.channels_last)
    weight = torch.nn.Parameter(torch.randn(8, 16, 3, 3, generator=g), requires_grad=False)
    styles, bias = torch.randn(batch, 16, generator=g), torch.randn(8, generator=g)
    kwargs = dict(up=2, padding=1, resample_filter=setup_filter([1, 3, 3, 1]), out_gain=2 ** 0.5, bias=bias)
    with torch.no_grad():
        assert modconv._use_phases(x.bfloat16(), weight, 1, kwargs["resample_filter"])
        assert not modconv._use_phases(x, weight, 1, kwargs["resample_filter"])  # float32 keeps the transposed conv
        assert not modconv._use_phases(x[..., :side // 2, :side // 2].bfloat16(), weight, 1, kwargs["resample_filter"])
        for _ in range(2):  # the second call reads the cached kernels
            ref = modulated_conv2d_fast(x, weight, styles, **kwargs)
            low = modulated_conv2d_fast(x.bfloat16(), weight, styles, **kwargs)
            assert low.dtype == torch.bfloat16 and low.shape == ref.shape == (batch, 8, 2 * side, 2 * side)
            assert psnr(low.float() / ref.abs().max(), ref / ref.abs().max()) >= 40.0
        weight.mul_(-1)
        flipped = modulated_conv2d_fast(x.bfloat16(), weight, styles, **kwargs)
        ref_flipped = modulated_conv2d_fast(x, weight, styles, **kwargs)
    assert psnr(flipped.float() / ref_flipped.abs().max(), ref_flipped / ref_flipped.abs().max()) >= 40.0
    assert psnr(flipped.float() / ref.abs().max(), ref / ref.abs().max()) < 20.0


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("clamp", [None, 0.5])
def test_bf16_leaky_relu_through_onednn_equals_pytorchs(clamp, fused, monkeypatch):
    """The channels-last bfloat16 activation runs as oneDNN's fused post-op: bit for bit PyTorch's (and the
    same when a PyTorch build without the op falls back to PyTorch's kernel)."""
    monkeypatch.setattr(ops, "FUSED_CONV_LRELU", fused)
    x = torch.randn(2, 16, 9, 7, generator=torch.Generator().manual_seed(5)).bfloat16()
    expected = F.leaky_relu(x.float(), 0.2).bfloat16()
    expected = expected if clamp is None else expected.clamp(-clamp, clamp)
    for layout in (torch.channels_last, torch.contiguous_format):
        xl = x.contiguous(memory_format=layout)
        assert ops._onednn_bf16_activation(xl) == (layout == torch.channels_last)
        with torch.no_grad():
            got = ops.lrelu_clamp_(xl.clone(memory_format=layout), 0.2, clamp)
        assert got.dtype == torch.bfloat16 and torch.equal(got, expected)


def test_cached_weight_casts_follow_weight_updates():
    """bfloat16 copies of the weights are reused between calls, but never after the weights changed."""
    G = tiny_stylegan2(seed=3)
    G.precision = "bf16"
    ws = G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(0)))
    with torch.no_grad():
        before = G.synthesis(ws)
        for p in G.synthesis.parameters():
            if p.ndim == 4:
                p.mul_(-1.0)
        after = G.synthesis(ws)
    fresh = tiny_stylegan2(seed=3)
    fresh.precision = "bf16"
    with torch.no_grad():
        for p in fresh.synthesis.parameters():
            if p.ndim == 4:
                p.mul_(-1.0)
        expected = fresh.synthesis(ws)
    assert not torch.equal(before, after)
    assert torch.equal(after, expected)


# --- StyleGAN3's polyphase upsampling (the reduced-precision path) -----------------------------

@pytest.mark.parametrize("up, taps, padding", [(2, 12, (11, 10, 11, 10)), (4, 24, (23, 22, 3, -5)),
                                               (2, 6, (-3, 7, 0, 2)), (4, 8, (1, 0, -2, 9))])
def test_polyphase_upsampling_equals_transposed_convolution(up, taps, padding):
    g = torch.Generator().manual_seed(up * taps)
    x = torch.randn(2, 3, 9, 11, generator=g).contiguous(memory_format=torch.channels_last)
    f = torch.randn(taps, generator=g)
    ref = upsample_fir(x, f, up=up, padding=padding, gain=1.5)
    ours = upsample_fir_polyphase(x, f, up=up, padding=padding, gain=1.5)
    assert ours.shape == ref.shape
    assert (ours - ref).abs().max().item() <= 1e-5 * ref.abs().max().item()
    activated = upsample_fir_polyphase(x, f, up=up, padding=padding, gain=1.5, slope=0.2, clamp=2.0)
    assert torch.allclose(activated, torch.nn.functional.leaky_relu(ours, 0.2).clamp(-2, 2), atol=1e-6)


def test_filtered_lrelu_bf16_is_close_to_fp32():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 16, 20, 20, generator=g)
    fu, fd = torch.softmax(torch.randn(12, generator=g), 0), torch.softmax(torch.randn(12, generator=g), 0)
    kwargs = dict(up=2, down=2, padding=(11, 10, 11, 10), gain=2 ** 0.5, slope=0.2, clamp=1.0)
    ref = filtered_lrelu(x, fu, fd, **kwargs)
    ours = filtered_lrelu(x.bfloat16(), fu, fd, **kwargs)
    assert ours.dtype == torch.bfloat16 and ours.shape == ref.shape
    assert psnr(ours.float(), ref) >= MIN_BF16_PSNR_DB


def test_radial_filter_runs_as_a_short_separable_sum_in_bf16():
    """StyleGAN3-R's 2-D downsampling filters are two or three separable terms to 1e-4 (bfloat16 path)."""
    plan = layer_schedule(img_resolution=1024, img_channels=3, channel_base=65536, channel_max=1024)
    idx = 4  # a StyleGAN3-R 1024 layer's down filter, designed as the layer designs it
    rate = max(plan["sampling_rates"][idx - 1], plan["sampling_rates"][idx]) * 2
    f = design_lowpass_filter(12, plan["cutoffs"][idx], plan["half_widths"][idx] * 2, rate, radial=True)
    terms = separable_terms(f, tol=1e-4)
    assert terms is not None and len(terms) <= 3
    approx = sum(torch.outer(v, u) for u, v in terms)
    assert (approx - f).abs().max().item() <= 1e-4 * f.abs().max().item()
    assert separable_terms(torch.randn(5, 5), tol=1e-4) is None  # not symmetric
    x = torch.randn(1, 8, 30, 34, generator=torch.Generator().manual_seed(0)).contiguous(memory_format=torch.channels_last)
    ref = downsample_fir(x, f, down=2)
    ours = downsample_fir(x.bfloat16(), f, down=2)
    assert ours.shape == ref.shape and psnr(ours.float() / 2, ref / 2) >= MIN_BF16_PSNR_DB


# --- loading and converting ---------------------------------------------------------------------

def test_load_generator_precision_and_convert_keeps_float32(tmp_path, fixture_generators):
    path = fixture_file(FIXTURES["sg2"][0])
    G = load_generator(path, precision="bf16")
    assert G.precision == "bf16"
    assert all(p.dtype == torch.float32 for p in G.parameters())
    assert load_generator(path).precision == "fp32"
    assert load_generator(path, precision="auto").precision == resolve_precision("auto", "cpu")
    with pytest.raises(InvalidArgumentError):
        load_generator(path, precision="half")

    out = save_generator(G, tmp_path / "g.safetensors")
    from safetensors import safe_open

    with safe_open(str(out), framework="pt") as fh:
        dtypes = {fh.get_tensor(k).dtype for k in fh.keys()}
    assert dtypes == {torch.float32}

    G2 = load_generator(out, precision="bf16")
    ws = torch.from_numpy(fixture_generators("sg2")[1]["ws"]).float()
    with torch.no_grad():
        assert torch.equal(G2.synthesis(ws), G.synthesis(ws))
    # a built generator keeps its precision unless one is asked for
    assert load_generator(G2).precision == "bf16"
    assert load_generator(G2, precision="fp32").precision == "fp32"


def test_fused_depthwise_activation_equals_separate_passes(monkeypatch):
    """bfloat16 polyphase upsampling with oneDNN's fused conv + leaky ReLU equals conv, then leaky ReLU."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 16, 12, 14, generator=g).bfloat16().contiguous(memory_format=torch.channels_last)
    f = torch.softmax(torch.randn(12, generator=g), 0)
    kwargs = dict(up=2, padding=(11, 10, 11, 10), gain=2 ** 0.5, slope=0.2, clamp=1.0)
    fused = upsample_fir_polyphase(x, f, **kwargs)
    monkeypatch.setattr(ops, "FUSED_CONV_LRELU", False)
    separate = upsample_fir_polyphase(x, f, **kwargs)
    assert (fused.float() - separate.float()).abs().max().item() <= 2e-2 * separate.float().abs().max().item()
