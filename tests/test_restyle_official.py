"""Official ReStyle checkpoints (yuval-alaluf/restyle-encoder): the key layout, the three backbone encoders
(BackboneEncoder, ProgressiveBackboneEncoder, ResNetBackboneEncoder, small widths) against an independent model with
the official module structure, ReStyle's iterations, bad files, and the full-size rehearsal file by its registry
name (slow: a ~1 GB file, one 1024 px image, one iteration)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import tiny_stylegan2
from stylekit.errors import CheckpointError
from stylekit.invert import invert
from stylekit.invert.encoder import load_encoder, load_official_checkpoint
from stylekit.invert.refine import restyle
from stylekit.networks.encoders import StyleEncoder
from stylekit.networks.official_keys import official_to_stylekit_key, stylekit_to_official_key
from stylekit.networks.restyle_backbones import RESTYLE_E4E_FFHQ_CONFIG, RESTYLE_RESNET34_CONFIG
from test_invert_encoder import _OfficialIRSE, _OfficialStyleBlock, _randomize_bn

W_DIM = 16  # the tiny generator's; the official heads are GradualStyleBlock(w_dim, w_dim, 16) on a w_dim-wide map
STAGES = ((8, 1), (12, 1), (14, 1), (W_DIM, 1))


# Names read from the official code (models/encoders/restyle_e4e_encoders.py, restyle_psp_encoders.py, helpers.py,
# torchvision's resnet34): ProgressiveBackboneEncoder on IR-SE-50, and ResNetBackboneEncoder.
OFFICIAL_IR_NAMES = ["input_layer.0.weight", "input_layer.1.running_var", "input_layer.2.weight",
                     "body.0.res_layer.0.weight", "body.0.res_layer.1.weight", "body.0.res_layer.2.weight",
                     "body.0.res_layer.3.weight", "body.0.res_layer.4.running_mean", "body.0.res_layer.5.fc1.weight",
                     "body.3.shortcut_layer.0.weight", "body.3.shortcut_layer.1.bias", "body.23.res_layer.5.fc2.weight",
                     "styles.0.convs.0.weight", "styles.17.convs.6.bias", "styles.17.linear.weight"]
OFFICIAL_RESNET_NAMES = ["conv1.weight", "bn1.running_mean", "relu.weight", "body.0.conv1.weight", "body.0.bn1.bias",
                         "body.0.conv2.weight", "body.0.bn2.running_var", "body.3.downsample.0.weight",
                         "body.3.downsample.1.weight", "body.15.bn2.weight", "styles.17.convs.6.weight"]


def test_full_size_layouts_use_exactly_the_official_names():
    for config, expected, absent in ((RESTYLE_E4E_FFHQ_CONFIG, OFFICIAL_IR_NAMES, "latlayer1.weight"),
                                     (RESTYLE_RESNET34_CONFIG, OFFICIAL_RESNET_NAMES, "input_layer.0.weight")):
        with torch.device("meta"):
            ours = list(StyleEncoder(config).state_dict())
        official = [stylekit_to_official_key(k, config["body"]) for k in ours]
        assert set(expected) <= set(official) and absent not in official
        assert len(set(official)) == len(official)
        assert [official_to_stylekit_key(k) for k in official] == ours  # one table, both directions
        assert sum(k.startswith("styles.") and k.endswith("convs.0.weight") for k in official) == 18
        assert not any(k.startswith("styles.") and k.endswith("convs.8.weight") for k in official)  # 4 convs: 16 -> 1
    with pytest.raises(CheckpointError):
        official_to_stylekit_key("fc.weight")  # torchvision's classifier is not part of any encoder
    with pytest.raises(CheckpointError):
        official_to_stylekit_key("styles.0.convs.1.weight")  # odd indices are LeakyReLUs: no tensors


# ----------------------------------------------------------------------------------------------
# An independent model with ReStyle's module structure, small widths, 6 input channels, 32 x 32 input.


class _OfficialBackbone(nn.Module):
    """restyle_psp_encoders.BackboneEncoder / ResNetBackboneEncoder and restyle_e4e_encoders.Progressive* in small."""

    def __init__(self, body: str, e4e: bool, n_styles: int):
        super().__init__()
        from torchvision.models.resnet import BasicBlock

        self.body_kind, self.e4e, self.n_styles = body, e4e, n_styles
        units, in_c = [], 8
        if body == "ir":
            self.input_layer = nn.Sequential(nn.Conv2d(6, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.PReLU(8))
            for depth, count in STAGES:
                for j in range(count):
                    units.append(_OfficialIRSE(in_c, depth, 2 if j == 0 else 1, 4))
                    in_c = depth
        else:
            self.conv1 = nn.Conv2d(6, 8, kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(8)
            self.relu = nn.PReLU(8)
            for s, (depth, count) in enumerate(STAGES):
                for j in range(count):
                    stride = 2 if j == 0 and s > 0 else 1
                    down = None
                    if stride != 1 or in_c != depth:
                        down = nn.Sequential(nn.Conv2d(in_c, depth, 1, stride, bias=False), nn.BatchNorm2d(depth))
                    units.append(BasicBlock(in_c, depth, stride, down))
                    in_c = depth
        self.body = nn.Sequential(*units)
        self.styles = nn.ModuleList([_OfficialStyleBlock(W_DIM, W_DIM, 2) for _ in range(n_styles)])

    def forward(self, x):
        x = self.input_layer(x) if self.body_kind == "ir" else self.relu(self.bn1(self.conv1(x)))
        x = self.body(x)
        if not self.e4e:
            return torch.stack([s(x) for s in self.styles], dim=1)
        w = self.styles[0](x).repeat(self.n_styles, 1, 1).permute(1, 0, 2).clone()
        for i in range(1, self.n_styles):
            w[:, i] += self.styles[i](x)
        return w


ENCODER_TYPES = {"BackboneEncoder": ("ir", False), "ProgressiveBackboneEncoder": ("ir", True),
                 "ResNetBackboneEncoder": ("resnet", False), "ResNetProgressiveBackboneEncoder": ("resnet", True)}


@pytest.fixture(scope="module")
def G64():
    """A tiny random StyleGAN2 at 64 x 64 (toyfaces' size): 10 x 16 W+."""
    return tiny_stylegan2(seed=0, img_resolution=64)


def _restyle_file(path, encoder_type: str, n_styles: int, *, drop: str | None = None, opts: dict | None = None):
    body, e4e = ENCODER_TYPES[encoder_type]
    torch.manual_seed(3)
    official = _OfficialBackbone(body, e4e, n_styles)
    _randomize_bn(official)
    official.eval()
    latent_avg = torch.randn(W_DIM) * 0.3
    state = {"encoder." + k: v for k, v in official.state_dict().items() if k != drop}
    ckpt = {"state_dict": state, "latent_avg": latent_avg.reshape(1, -1).repeat(n_styles, 1),
            "opts": {"encoder_type": encoder_type, "input_nc": 6, "n_iters_per_batch": 5, "output_size": 64,
                     "dataset_type": "ffhq_encode", **(opts or {})}, "global_step": 10, "best_val_loss": None}
    torch.save(ckpt, path)
    return official, latent_avg


@pytest.mark.parametrize("encoder_type", list(ENCODER_TYPES))
def test_small_restyle_checkpoint_loads_and_refines_like_the_official_iterations(G64, tmp_path, encoder_type):
    path = tmp_path / "restyle.pt"
    official, latent_avg = _restyle_file(path, encoder_type, G64.num_ws)
    enc = load_encoder(path)
    cfg = enc.config
    body, e4e = ENCODER_TYPES[encoder_type]
    assert (cfg["in_channels"], cfg["input_size"], cfg["arch"], cfg["body"]) == (6, 32, "backbone", body)
    assert cfg["mode"] == ("e4e" if e4e else "psp") and cfg["stages"] == [list(s) for s in STAGES]
    assert cfg["num_ws"] == G64.num_ws and enc.info["encoder_type"] == encoder_type
    assert torch.equal(enc.latent_avg, latent_avg)

    torch.manual_seed(0)
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    res = restyle(G64, x, encoder=path, iterations=2, bootstrap=None)
    assert res.latent.tensor.shape == (1, G64.num_ws, W_DIM) and res.image.shape == (1, 3, 64, 64)
    assert len(res.extra["psnr_per_step"]) == 2

    # ReStyle's run_on_batch + pSp/e4e forward, written out: w_1 = latent_avg + E(x, face_pool(G(latent_avg))),
    # w_2 = w_1 + E(x, face_pool(G(w_1))), face_pool = AdaptiveAvgPool2d(encoder input size).
    pool = nn.AdaptiveAvgPool2d(32)
    with torch.no_grad():
        w = latent_avg.reshape(1, 1, -1).repeat(1, G64.num_ws, 1)
        ws = []
        for _ in range(2):
            y = G64.synthesis(w, noise_mode="const")
            w = w + official(pool(torch.cat([x, y], dim=1)))
            ws.append(w)
    assert not torch.allclose(ws[0], ws[1], atol=1e-4)  # the second iteration moved the latent
    assert torch.allclose(res.latent.tensor, ws[1], atol=1e-4), float((res.latent.tensor - ws[1]).abs().max())
    one = invert(G64, x, method="restyle", encoder=enc, steps=1, bootstrap=None)
    assert torch.allclose(one.latent.tensor, ws[0], atol=1e-4)


def test_restyle_checkpoint_info(tmp_path):
    """What the loaded encoder says about its file (a file without ``decoder.*`` gives no generator)."""
    path = tmp_path / "restyle.pt"
    _restyle_file(path, "ProgressiveBackboneEncoder", 10)
    enc, G = load_official_checkpoint(path)
    assert G is None and enc.config["in_channels"] == 6 and enc.info["iterations_trained"] == 5
    assert "ReStyle" in enc.info["source"]


def test_bad_restyle_files_say_what_is_wrong(G64, tmp_path):
    path = tmp_path / "bad.pt"
    _restyle_file(path, "BackboneEncoder", G64.num_ws, opts={"encoder_type": "FancyTransformerEncoder"})
    with pytest.raises(CheckpointError, match="FancyTransformerEncoder.*not supported"):
        load_encoder(path)
    _restyle_file(path, "BackboneEncoder", G64.num_ws, opts={"encoder_type": "ResNetBackboneEncoder"})
    with pytest.raises(CheckpointError, match="do not fit encoder_type 'ResNetBackboneEncoder'"):
        load_encoder(path)
    _restyle_file(path, "ResNetBackboneEncoder", G64.num_ws, drop="body.2.bn2.running_var")
    with pytest.raises(CheckpointError, match="running_var"):
        load_encoder(path)
    _restyle_file(path, "ProgressiveBackboneEncoder", G64.num_ws, drop="input_layer.0.weight")
    with pytest.raises(CheckpointError, match="not a pSp / e4e / ReStyle encoder"):
        load_encoder(path)
    state = torch.load(path, weights_only=True)
    state["state_dict"]["encoder.input_layer.0.weight"] = torch.zeros(8, 6, 3, 3)
    state["state_dict"]["encoder.mystery.weight"] = torch.zeros(2)
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="mystery"):
        load_encoder(path)


@pytest.mark.slow
def test_the_full_size_rehearsal_file_loads_by_name_and_refines(rehearsal_world, rehearsal_env):
    """restyle-e4e-ffhq (the ffhq-1024 'restyle' companion) from the rehearsal world: one 1024 px image, one pass."""
    from stylekit import load_generator, registry

    rehearsal_env(rehearsal_world("ffhq-1024", "restyle-e4e-ffhq"))
    assert registry.companion("ffhq-1024", "restyle") == "restyle-e4e-ffhq"
    path = registry.artifact_path("restyle-e4e-ffhq", "encoder", local_files_only=True)
    assert path.name == "restyle_e4e_ffhq_encode.pt"
    ckpt = torch.load(path, map_location="meta", weights_only=True, mmap=True)
    assert ckpt["opts"]["encoder_type"] == "ProgressiveBackboneEncoder" and ckpt["opts"]["input_nc"] == 6
    assert set(OFFICIAL_IR_NAMES) <= {k[len("encoder."):] for k in ckpt["state_dict"] if k.startswith("encoder.")}
    assert tuple(ckpt["latent_avg"].shape) == (18, 512)
    enc = load_encoder("restyle-e4e-ffhq")
    assert enc.config == {**RESTYLE_E4E_FFHQ_CONFIG, "stages": [list(s) for s in RESTYLE_E4E_FFHQ_CONFIG["stages"]]}
    G = load_generator("ffhq-1024")
    x = torch.rand(1, 3, 1024, 1024) * 2 - 1
    res = restyle(G, x, encoder=enc, iterations=1)
    assert res.latent.tensor.shape == (1, 18, 512) and torch.isfinite(res.latent.tensor).all()
    start = enc.latent_avg.reshape(1, 1, -1).expand(1, 18, -1)
    assert not torch.allclose(res.latent.tensor, start)
