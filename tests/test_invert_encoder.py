"""pSp / e4e encoder: shapes, the official checkpoint format, stylekit's own format, encode()."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import tiny_stylegan2
from stylekit.errors import CheckpointError, InvalidArgumentError, ModelNotFoundError
from stylekit.invert import invert
from stylekit.invert.encoder import load_encoder, load_official_checkpoint, official_to_stylekit_key, save_encoder
from stylekit.networks.encoders import (FFHQ_CONFIG, TOYFACES_CONFIG, LatentEncoder, StyleEncoder,
                                        delta_regularization)

TINY = dict(mode="e4e", in_channels=3, input_size=32, stem_channels=8, stages=[[8, 1], [16, 1], [24, 2], [32, 1]],
            se=True, se_reduction=4, num_ws=6, w_dim=16, head_channels=16, coarse_ind=2, middle_ind=4)


def test_toyfaces_encoder_shapes_and_size():
    torch.manual_seed(0)
    enc = StyleEncoder(TOYFACES_CONFIG).eval()
    with torch.no_grad():
        out = enc(torch.rand(2, 3, 64, 64) * 2 - 1)
    assert out.shape == (2, 10, 128)
    n_params = sum(p.numel() for p in enc.parameters())
    assert n_params * 2 <= 8 * 1024 * 1024  # stored as float16: at most 8 MB
    with torch.no_grad():  # other input sizes are resized
        assert enc(torch.zeros(1, 3, 100, 100)).shape == (1, 10, 128)


def test_ffhq_encoder_shapes_and_parameter_count():
    with torch.device("meta"):  # no memory, no maths: shapes only
        enc = StyleEncoder(FFHQ_CONFIG)
        out = enc(torch.empty(1, 3, 256, 256))
    assert out.shape == (1, 18, 512)
    n_params = sum(p.numel() for p in enc.parameters())
    # IR-SE-50 backbone (~24M) + 18 map2style heads of 512-channel stride-2 convs: pSp's ~267M
    assert 260e6 < n_params < 275e6
    assert len(enc.body) == 24 and enc.taps == [2, 6, 20, 23]
    assert [len(h.convs) for h in enc.heads] == [4] * 3 + [5] * 4 + [6] * 11


def test_e4e_progressive_stage_and_delta_reg():
    torch.manual_seed(0)
    enc = StyleEncoder(TINY).eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    enc.progressive_stage = 0
    with torch.no_grad():
        codes = enc(x)
    assert torch.allclose(codes, codes[:, :1].expand_as(codes))  # only the base code
    assert float(delta_regularization(codes)) == pytest.approx(0.0)
    enc.progressive_stage = TINY["num_ws"] - 1
    with torch.no_grad():
        codes = enc(x)
    assert float(delta_regularization(codes)) > 0


# ----------------------------------------------------------------------------------------------
# An independent model with the official module structure (pSp's models/encoders/psp_encoders.py and
# helpers.py), so that its state_dict() carries the official key names.


class _OfficialEqualLinear(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(o, i))
        self.bias = nn.Parameter(torch.randn(o) * 0.1)
        self.scale = 1 / math.sqrt(i)

    def forward(self, x):
        return F.linear(x, self.weight * self.scale, self.bias)


class _OfficialSE(nn.Module):
    def __init__(self, c, r):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, c // r, 1, padding=0, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(c // r, c, 1, padding=0, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        return x * self.sigmoid(self.fc2(self.relu(self.fc1(self.avg_pool(x)))))


class _OfficialIRSE(nn.Module):
    def __init__(self, in_c, depth, stride, r):
        super().__init__()
        if in_c == depth:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(in_c, depth, 1, stride, bias=False), nn.BatchNorm2d(depth))
        self.res_layer = nn.Sequential(nn.BatchNorm2d(in_c), nn.Conv2d(in_c, depth, 3, 1, 1, bias=False),
                                       nn.PReLU(depth), nn.Conv2d(depth, depth, 3, stride, 1, bias=False),
                                       nn.BatchNorm2d(depth), _OfficialSE(depth, r))

    def forward(self, x):
        return self.shortcut_layer(x) + self.res_layer(x)


class _OfficialStyleBlock(nn.Module):
    def __init__(self, in_c, out_c, spatial):
        super().__init__()
        mods = [nn.Conv2d(in_c, out_c, 3, 2, 1), nn.LeakyReLU()]
        for _ in range(int(math.log2(spatial)) - 1):
            mods += [nn.Conv2d(out_c, out_c, 3, 2, 1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*mods)
        self.linear = _OfficialEqualLinear(out_c, out_c)
        self.out_c = out_c

    def forward(self, x):
        return self.linear(self.convs(x).view(-1, self.out_c))


class _OfficialEncoder(nn.Module):
    """Official structure, small widths: stages (8x1, 16x1, 24x2, W x1), 32x32 input, 6 codes of W (= w_dim)."""

    def __init__(self, e4e: bool, width: int = 32):
        super().__init__()
        self.e4e = e4e
        self.input_layer = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.PReLU(8))
        units, in_c = [], 8
        for depth, count in ((8, 1), (16, 1), (24, 2), (width, 1)):
            for j in range(count):
                units.append(_OfficialIRSE(in_c, depth, 2 if j == 0 else 1, 4))
                in_c = depth
        self.body = nn.Sequential(*units)
        self.styles = nn.ModuleList([_OfficialStyleBlock(width, width, 2 if i < 2 else (4 if i < 4 else 8))
                                     for i in range(6)])
        self.latlayer1 = nn.Conv2d(24, width, 1)
        self.latlayer2 = nn.Conv2d(16, width, 1)

    def forward(self, x):
        x = self.input_layer(x)
        for i, layer in enumerate(self.body):
            x = layer(x)
            if i == 1:
                c1 = x
            elif i == 3:
                c2 = x
            elif i == 4:
                c3 = x
        up = lambda a, b: F.interpolate(a, size=b.shape[-2:], mode="bilinear", align_corners=True) + b  # noqa: E731
        p2 = up(c3, self.latlayer1(c2))
        p1 = up(p2, self.latlayer2(c1))
        feats = [c3, c3, p2, p2, p1, p1]
        if not self.e4e:
            return torch.stack([s(f) for s, f in zip(self.styles, feats)], dim=1)
        w0 = self.styles[0](c3)
        w = w0.repeat(6, 1, 1).permute(1, 0, 2).clone()
        for i in range(1, 6):
            w[:, i] += self.styles[i](feats[i])
        return w


def _randomize_bn(module):
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.normal_(1, 0.1)
                m.bias.normal_(0, 0.1)


def _official_file(tmp_path, encoder_type, *, width=32, decoder_state=None, latent_avg=None):
    torch.manual_seed(1)
    official = _OfficialEncoder(e4e=encoder_type == "Encoder4Editing", width=width)
    _randomize_bn(official)
    official.eval()
    latent_avg = torch.randn(width) if latent_avg is None else latent_avg
    state = {"encoder." + k: v for k, v in official.state_dict().items()}
    state.update({"decoder." + k: v for k, v in (decoder_state or {}).items()})
    ckpt = {"state_dict": state, "latent_avg": latent_avg.reshape(1, -1).repeat(6, 1),
            "opts": {"encoder_type": encoder_type, "start_from_latent_avg": True, "stylegan_size": 64}}
    path = tmp_path / "e4e.pt"
    torch.save(ckpt, path)
    return path, official, latent_avg


@pytest.mark.parametrize("encoder_type", ["Encoder4Editing", "GradualStyleEncoder"])
def test_official_checkpoint_loads_and_reproduces_outputs(tmp_path, encoder_type):
    path, official, latent_avg = _official_file(tmp_path, encoder_type)
    enc = load_encoder(path)
    assert enc.config["mode"] == ("e4e" if encoder_type == "Encoder4Editing" else "psp")
    assert enc.config["num_ws"] == 6 and enc.config["w_dim"] == 32 and enc.config["input_size"] == 32
    assert enc.config["stages"] == [[8, 1], [16, 1], [24, 2], [32, 1]] and enc.config["se_reduction"] == 4
    assert (enc.config["coarse_ind"], enc.config["middle_ind"]) == (2, 4)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        expected = official(x) + latent_avg
        got = enc(x)
    assert torch.allclose(got, expected, atol=1e-5), float((got - expected).abs().max())


def test_official_checkpoint_with_decoder(tmp_path, fixtures_dir):
    """e4e files carry rosinality's generator as decoder.*: it converts and matches rosinality's outputs."""
    import numpy as np

    g_state = torch.load(fixtures_dir / "rosinality" / "ros_small.pt", map_location="cpu", weights_only=True)["g_ema"]
    ref = np.load(fixtures_dir / "rosinality" / "ros_small_ref.npz")
    latent_avg = torch.from_numpy(ref["latent_avg"][0])
    path, official, _ = _official_file(tmp_path, "Encoder4Editing", width=64, decoder_state=g_state,
                                       latent_avg=latent_avg)
    enc, G = load_official_checkpoint(path)
    assert G is not None and G.img_resolution == 64 and G.num_ws == 10 and G.w_dim == 64
    assert torch.allclose(G.w_avg, latent_avg)
    with torch.no_grad():
        img = G.synthesis(torch.from_numpy(ref["ws"]), noise_mode="const")
        x = torch.rand(2, 3, 32, 32) * 2 - 1
        assert torch.allclose(enc(x), official(x) + latent_avg, atol=1e-5)
    assert float((img - torch.from_numpy(ref["img"])).abs().max()) <= 1e-3 * max(1.0, float(ref["img"].std()))


def test_official_key_mapping():
    assert official_to_stylekit_key("input_layer.1.running_var") == "stem.bn.running_var"
    assert official_to_stylekit_key("body.3.shortcut_layer.0.weight") == "body.3.shortcut.conv.weight"
    assert official_to_stylekit_key("body.23.res_layer.5.fc2.weight") == "body.23.se.fc2.weight"
    assert official_to_stylekit_key("styles.17.convs.10.bias") == "heads.17.convs.5.bias"
    assert official_to_stylekit_key("latlayer2.weight") == "lateral_fine.weight"
    with pytest.raises(CheckpointError):
        official_to_stylekit_key("fc.weight")  # a classifier: no encoder has one (ResNet names: test_restyle_official)


def test_bad_official_checkpoints(tmp_path):
    p = tmp_path / "x.pt"
    torch.save({"g_ema": {}}, p)
    with pytest.raises(CheckpointError):
        load_encoder(p)
    torch.save({"state_dict": {"decoder.style.1.weight": torch.zeros(2, 2)}}, p)
    with pytest.raises(CheckpointError, match="encoder"):
        load_encoder(p)
    with pytest.raises(ModelNotFoundError):
        load_encoder(tmp_path / "missing.pt")


def test_safetensors_round_trip_and_encode(tmp_path):
    G = tiny_stylegan2()
    torch.manual_seed(2)
    enc = LatentEncoder(dict(TINY), G.w_avg).eval()
    _randomize_bn(enc)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        ref = enc(x)
    for half in (False, True):
        path = save_encoder(enc, tmp_path / f"enc{half}.safetensors", half=half)
        back = load_encoder(path)
        with torch.no_grad():
            out = back(x)
        assert torch.allclose(out, ref, atol=2e-2 if half else 1e-6)
    res = invert(G, x[:1], method="encoder", encoder=enc)
    assert res.latent.tensor.shape == (1, G.num_ws, G.w_dim) and res.image.shape == (1, 3, 16, 16)
    assert torch.allclose(res.latent.tensor, ref[:1], atol=1e-6)
    with pytest.raises(InvalidArgumentError):
        invert(G, x[:1], method="encoder", encoder=enc, steps=3)
    other = LatentEncoder({**TINY, "num_ws": 4, "middle_ind": 3}).eval()
    with pytest.raises(InvalidArgumentError, match="generator"):
        invert(G, x[:1], method="encoder", encoder=other)


def test_bf16_encoder_agrees_with_fp32_on_the_shipped_e4e():
    """bf16 W+ codes of the shipped e4e-toyfaces decode like the fp32 ones (bounds: PSNR >= 40 dB per
    image between the decoded images, and relative error of the code offsets <= 0.03; measured on this
    machine: 53 dB minimum, 0.008)."""
    from stylekit.checkpoints.load import load_generator
    from stylekit.invert.result import psnr
    from stylekit.toyfaces.attributes import sample_attributes
    from stylekit.toyfaces.renderer import render_batch

    G = load_generator("toyfaces")
    x = render_batch(sample_attributes(8, seed=5), size=G.img_resolution).float()
    fp32 = load_encoder("e4e-toyfaces")
    bf16 = load_encoder("e4e-toyfaces", precision="bf16")
    assert fp32.precision == "fp32" and bf16.precision == "bf16"
    with torch.no_grad():
        ws32, ws16 = fp32(x), bf16(x)
        assert ws16.dtype == torch.float32 and ws16.shape == ws32.shape
        assert torch.equal(ws32, fp32.encoder(x) + fp32.latent_avg)  # fp32 is exactly the plain forward
        offsets = ws32 - fp32.latent_avg
        assert float((ws16 - ws32).norm() / offsets.norm()) <= 0.03
        img32 = G.synthesis(ws32, noise_mode="const")
        img16 = G.synthesis(ws16, noise_mode="const")
    assert min(psnr(img16[i:i + 1], img32[i:i + 1]) for i in range(len(x))) >= 40.0
    res = invert(G, x[:1], method="encoder", encoder="e4e-toyfaces", precision="bf16")
    assert torch.allclose(res.latent.tensor, ws16[:1], atol=1e-5)
    # ReStyle passes the precision to its encoder and to the bootstrap encoder
    r32 = invert(G, x[:1], method="restyle", steps=2)
    r16 = invert(G, x[:1], method="restyle", steps=2, precision="bf16")
    assert psnr(r16.image, r32.image) >= 40.0
    assert not torch.equal(r16.latent.tensor, r32.latent.tensor)


def test_encoder_precision_choices_and_cached_weights():
    torch.manual_seed(3)
    enc = LatentEncoder(dict(TINY)).eval().requires_grad_(False)
    _randomize_bn(enc)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with pytest.raises(InvalidArgumentError, match="precision"):
        load_encoder(enc, precision="int8")
    with pytest.raises(InvalidArgumentError, match="precision"):
        enc.precision = "bfloat16"
    G = tiny_stylegan2()
    with pytest.raises(InvalidArgumentError, match="precision"):
        invert(G, x[:1], method="encoder", encoder=LatentEncoder({**TINY, "num_ws": G.num_ws, "w_dim": G.w_dim}),
               precision="half")
    assert load_encoder(enc, precision="auto").precision in ("fp32", "bf16", "fp16")
    enc = load_encoder(enc, precision="bf16")
    assert enc.precision == "bf16"
    with torch.no_grad():
        before = enc(x)
        assert before.dtype == torch.float32
        enc.encoder.heads[-1].linear.bias.add_(1.0)  # a weight changes: the cached casts must follow
        after = enc(x)
    assert float((after - before)[:, -1].mean()) == pytest.approx(1.0, abs=0.05)
    assert torch.allclose(after[:, 0], before[:, 0])
    with torch.no_grad():
        enc.encoder.heads[0].convs[0].weight.mul_(0.0)
        zeroed = enc(x)
    assert not torch.allclose(zeroed[:, 0], after[:, 0], atol=1e-3)
    enc.precision = "fp32"
    with torch.no_grad():
        assert torch.equal(enc(x), enc.encoder(x) + enc.latent_avg)


def test_map2style_head_gradients_in_bf16_on_a_1x1_input():
    """A head whose input is 1x1 (input_size 16) trains correctly under bf16 autocast: the border taps of
    its stride-2 3x3 convolution get a zero weight gradient (oneDNN's own backward leaves them as garbage)
    and the centre tap's gradient matches float32 (relative error <= 0.02)."""
    from stylekit.networks.encoders import GradualStyleBlock

    torch.manual_seed(0)
    head = GradualStyleBlock(16, 16, 8, spatial=2).to(memory_format=torch.channels_last)
    x = torch.randn(4, 16, 1, 1)
    head(x).square().sum().backward()
    ref = head.convs[0].weight.grad.clone()
    head.zero_grad()
    for _ in range(20):
        head.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = head(x.contiguous(memory_format=torch.channels_last))
        out.float().square().sum().backward()
        grad = head.convs[0].weight.grad
        border = grad.clone()
        border[:, :, 1, 1] = 0
        assert torch.equal(border, torch.zeros_like(border))
        assert float((grad - ref).abs().max() / ref.abs().max()) <= 0.02
