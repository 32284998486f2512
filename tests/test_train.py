"""Tests of stylekit.train: the adversarial loop, the supervised recipe, data, metrics, discriminator.

Everything runs at 16x16 with a few channels so each test takes seconds on one CPU core.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from stylekit.errors import CheckpointError, InvalidArgumentError

TINY_CHANNELS = {"4": 16, "8": 16, "16": 8}


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# ------------------------------------------------------------------------------------------------
# Discriminator


def test_discriminator_shapes_and_downsampling():
    from stylekit.train.discriminator import Conv2dLayer, Discriminator, MinibatchStdLayer

    torch.manual_seed(0)
    D = Discriminator(img_resolution=16, channels=TINY_CHANNELS)
    logits = D(torch.randn(6, 3, 16, 16))
    assert logits.shape == (6, 1) and torch.isfinite(logits).all()
    assert {"b16.fromrgb.weight", "b16.conv0.weight", "b16.conv1.weight", "b16.skip.weight", "b8.conv0.weight",
            "b4.conv.weight", "b4.fc.weight", "b4.out.weight"} <= set(D.state_dict())
    # 3x3 and 1x1 downsampling layers halve the size exactly
    for k in (1, 3):
        conv = Conv2dLayer(2, 5, k, down=2)
        assert conv(torch.randn(2, 2, 8, 8)).shape == (2, 5, 4, 4)
    # a constant image stays constant away from the borders after FIR downsampling (the filter sums to 1)
    conv = Conv2dLayer(1, 1, 1, down=2, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    y = conv(torch.ones(1, 1, 16, 16))
    assert torch.allclose(y[:, :, 1:-1, 1:-1], torch.ones_like(y[:, :, 1:-1, 1:-1]), atol=1e-6)
    # minibatch stddev: one extra channel, zero for identical samples, positive otherwise
    mb = MinibatchStdLayer(group_size=4)
    same = mb(torch.ones(4, 3, 2, 2))
    assert same.shape == (4, 4, 2, 2) and same[:, 3].abs().max() < 1e-3
    assert mb(torch.randn(4, 3, 2, 2))[:, 3].min() > 0.1
    with pytest.raises(InvalidArgumentError):
        Discriminator(img_resolution=24)
    with pytest.raises(InvalidArgumentError):
        D(torch.randn(2, 3, 32, 32))


# ------------------------------------------------------------------------------------------------
# Adversarial loop


def _tiny_gan_config(tmp_path, **overrides):
    from stylekit.train.gan import GanConfig

    cfg = dict(data="toyfaces", out=str(tmp_path / "run"), resolution=16, batch=4, kimg=0.008, seed=3,
               z_dim=16, w_dim=16, map_layers=2, g_channels=TINY_CHANNELS, d_channels=TINY_CHANNELS,
               pl_weight=2.0, r1_gamma=1.0, snapshot_kimg=0.008, log_kimg=0.004, grid_size=4)
    cfg.update(overrides)
    return GanConfig(**cfg)


def test_gan_two_iterations_checkpoint_and_resume(tmp_path):
    from stylekit.checkpoints.load import load_generator_file
    from stylekit.train.gan import train_gan
    from stylekit.train.skeleton import load_checkpoint

    cfg = _tiny_gan_config(tmp_path)
    first = train_gan(cfg, log=None)
    run = tmp_path / "run"
    assert first["kimg"] == pytest.approx(0.008)
    ckpt1 = load_checkpoint(run / "checkpoint-latest.pt", kind="gan")
    assert ckpt1["cur_nimg"] == 8  # two iterations of batch 4
    assert set(ckpt1["nets"]) == {"G", "D", "G_ema"} and set(ckpt1["optims"]) == {"G", "D"}
    assert (run / "samples-000000.png").is_file() and (run / "log.txt").is_file()
    G_final = load_generator_file(run / "generator.safetensors")
    assert G_final.img_resolution == 16 and G_final.z_dim == 16

    # resume and continue two more iterations: the counter advances and every network moves
    cfg2 = _tiny_gan_config(tmp_path, kimg=0.016, resume=str(run))
    second = train_gan(cfg2, log=None)
    assert second["kimg"] == pytest.approx(0.016)
    ckpt2 = load_checkpoint(run / "checkpoint-latest.pt", kind="gan")
    assert ckpt2["cur_nimg"] == 16
    for net in ("G", "D", "G_ema"):
        changed = [k for k, v in ckpt1["nets"][net].items()
                   if v.is_floating_point() and not torch.equal(v, ckpt2["nets"][net][k])]
        assert changed, f"{net} did not change after resuming"
    assert "resumed from" in (run / "log.txt").read_text()
    # the optimiser state carried over (Adam step counts keep increasing)
    steps1 = max(float(s["step"]) for s in ckpt1["optims"]["D"]["state"].values())
    steps2 = max(float(s["step"]) for s in ckpt2["optims"]["D"]["state"].values())
    assert steps2 > steps1


def test_gan_resume_rejects_foreign_checkpoint(tmp_path):
    from stylekit.train.skeleton import load_checkpoint

    bad = tmp_path / "bad.pt"
    torch.save({"kind": "supervised"}, bad)
    with pytest.raises(CheckpointError):
        load_checkpoint(bad, kind="gan")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "missing", kind="gan")


def test_lazy_regularisation_adam_correction():
    from stylekit.train.adversarial import lazy_reg_adam

    p = [torch.nn.Parameter(torch.zeros(1))]
    opt = lazy_reg_adam(p, 0.002, (0.0, 0.99), 16)
    group = opt.param_groups[0]
    assert group["lr"] == pytest.approx(0.002 * 16 / 17)
    assert group["betas"][1] == pytest.approx(0.99 ** (16 / 17))
    assert lazy_reg_adam(p, 0.002, (0.0, 0.99), None).param_groups[0]["lr"] == pytest.approx(0.002)


def test_ema_update_half_life():
    from stylekit.train.skeleton import ema_update

    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    with torch.no_grad():
        a.weight.fill_(1.0)
        b.weight.fill_(0.0)
    ema_update(b, a, 0.5)  # beta = 0.5: halfway
    assert torch.allclose(b.weight, torch.full_like(b.weight, 0.5))


# ------------------------------------------------------------------------------------------------
# Supervised recipe


def test_z_to_attributes_matches_sampler_priors():
    from stylekit.toyfaces.attributes import ATTRIBUTES, attribute_priors
    from stylekit.toyfaces.latents import z_to_attributes, z_to_unit

    n = 40000
    z = np.random.default_rng(0).standard_normal((n, 64))
    attrs = z_to_attributes(z)
    priors = attribute_priors()
    for spec in ATTRIBUTES:
        v = attrs[spec.name]
        assert v.shape == (n,)
        if spec.kind == "binary":
            p = priors[spec.name]
            assert set(np.unique(v)) <= {0.0, 1.0}
            assert abs(v.mean() - p) < 4 * math.sqrt(p * (1 - p) / n), spec.name
        else:
            u = np.sort((v - spec.low) / (spec.high - spec.low))
            ks = np.max(np.abs(u - (np.arange(1, n + 1) - 0.5) / n))
            assert ks < 1.63 / math.sqrt(n) + 1e-3, (spec.name, ks)  # KS test at the 1% level
            assert v.min() >= spec.low and v.max() <= spec.high
    # independent coordinates: tiny correlations between the uniforms
    u = z_to_unit(z)
    corr = np.corrcoef(u, rowvar=False) - np.eye(u.shape[1])
    assert np.abs(corr).max() < 0.03
    # deterministic, scale-free (the mapping network normalises z), and the free dims do not matter
    assert np.array_equal(z_to_unit(z[:10]), z_to_unit(z[:10]))
    assert np.allclose(z_to_unit(3.0 * z[:10]), z_to_unit(z[:10]))
    z_free = z[:10].copy()
    z_free[:, len(ATTRIBUTES):] = z_free[:, len(ATTRIBUTES):][:, ::-1]  # permute free dims: same norm
    assert np.allclose(z_to_unit(z_free), z_to_unit(z[:10]))
    with pytest.raises(InvalidArgumentError):
        z_to_attributes(np.zeros((2, 4)))


def test_sphere_marginal_cdf_matches_beta():
    scipy_special = pytest.importorskip("scipy.special")
    from stylekit.toyfaces.latents import sphere_marginal_table

    d = 64
    t, cdf = sphere_marginal_table(d)
    probe = np.linspace(-0.6, 0.6, 13)
    expected = scipy_special.betainc((d - 1) / 2, (d - 1) / 2, (probe + 1) / 2)
    assert np.allclose(np.interp(probe, t, cdf), expected, atol=1e-6)


def test_supervised_recipe_reduces_loss(tmp_path):
    from stylekit.checkpoints.load import load_generator_file
    from stylekit.train.supervised import SupervisedConfig, train_supervised

    losses = []

    def progress(step, total, message="", **metrics):
        losses.append(metrics["loss"])

    cfg = SupervisedConfig(out=str(tmp_path / "sup"), resolution=16, batch=8, kimg=0.16, seed=1, z_dim=16, w_dim=16,
                           map_layers=2, g_channels=TINY_CHANNELS, lr=0.01, percep_weight=0.0,
                           snapshot_kimg=0.08, log_kimg=0.008, grid_size=4)
    result = train_supervised(cfg, progress=progress, log=None, predictor=None)
    assert len(losses) == 20
    assert np.mean(losses[-4:]) < 0.8 * np.mean(losses[:4]), losses
    assert (tmp_path / "sup" / "targets.png").is_file()
    G = load_generator_file(result["generator"])
    assert G.img_resolution == 16
    # w_avg was tracked during training
    assert G.w_avg.abs().sum() > 0

    # resume extends the run from its checkpoint
    cfg.kimg = 0.176
    cfg.resume = str(tmp_path / "sup")
    more = train_supervised(cfg, log=None, predictor=None)
    assert more["kimg"] == pytest.approx(0.176)


def test_supervised_trains_a_stylegan3_and_resumes_it(tmp_path):
    """--arch stylegan3-t: the supervised recipe builds, trains (loss falls), snapshots, resumes and exports a
    StyleGAN3 (its magnitude EMAs tracked), which loads as one."""
    from stylekit.checkpoints.load import load_generator_file
    from stylekit.train.supervised import SupervisedConfig, train_supervised

    losses = []
    cfg = SupervisedConfig(out=str(tmp_path / "sg3"), arch="stylegan3-t", resolution=16, batch=8, kimg=0.12, seed=1,
                           z_dim=16, w_dim=16, map_layers=2, channel_base=512, channel_max=16, sg3_layers=4, lr=0.01,
                           percep_weight=0.0, snapshot_kimg=0.12, log_kimg=0.008, grid_size=4)
    result = train_supervised(cfg, progress=lambda *a, **m: losses.append(m["loss"]), log=None, predictor=None)
    assert np.mean(losses[-4:]) < np.mean(losses[:4]), losses
    G = load_generator_file(result["generator"])
    assert G.arch == "stylegan3" and G.img_resolution == 16 and G.synthesis.num_ws == 6
    assert any(float(b) != 1.0 for name, b in G.synthesis.named_buffers() if name.endswith("magnitude_ema"))
    cfg.kimg, cfg.resume = 0.136, str(tmp_path / "sg3")
    assert train_supervised(cfg, log=None, predictor=None)["kimg"] == pytest.approx(0.136)
    with pytest.raises(InvalidArgumentError, match="--g-channels"):
        SupervisedConfig(out=str(tmp_path / "x"), arch="stylegan3-t", kimg=1, g_channels={"4": 8}).validate()


def test_reconstruction_loss_parts():
    from stylekit.train.supervised import ReconstructionLoss

    class FakePredictor:
        def features(self, images):
            return images.mean(dim=[2, 3])

    x = torch.zeros(2, 3, 32, 32)
    y = torch.full((2, 3, 32, 32), 0.5)
    total, parts = ReconstructionLoss(percep_weight=1.0, predictor=FakePredictor())(x, y)
    assert parts["l1"] == pytest.approx(0.5) and parts["ms"] == pytest.approx(0.5)
    assert parts["percep"] == pytest.approx(0.5)
    assert float(total) == pytest.approx(1.5)
    total0, _ = ReconstructionLoss(predictor=None)(y, y)
    assert float(total0) == 0.0


def test_edge_and_face_loss_terms():
    """The gradient-domain term sees a blurred edge that a constant offset does not have, and the face-box term
    only sees the face box."""
    from stylekit.toyfaces.renderer import face_box
    from stylekit.train.supervised import ReconstructionLoss

    loss = ReconstructionLoss(l1_weight=0.0, multiscale_weight=0.0, percep_weight=0.0, grad_weight=1.0, face_weight=0.0)
    target = torch.zeros(1, 3, 64, 64)
    target[..., 32:] = 1.0                                         # a sharp horizontal edge
    _, offset = loss(target + 0.3, target)                         # the same edge, brighter: no gradient error
    blurred = target.clone()
    blurred[..., 31, :], blurred[..., 32, :] = 0.25, 0.75          # the edge smeared over more rows
    _, smeared = loss(blurred, target)
    assert offset["grad"] == pytest.approx(0.0, abs=1e-7) and smeared["grad"] > 0
    top, bottom, left, right = face_box(64)
    face_only = ReconstructionLoss(l1_weight=0.0, multiscale_weight=0.0, percep_weight=0.0, face_weight=1.0)
    outside = target.clone()
    outside[..., :top, :] += 1.0                                   # a change above the face box
    total, parts = face_only(outside, target)
    assert float(total) == 0.0 and parts["face"] == 0.0
    inside = target.clone()
    inside[..., top:bottom, left:right] += 0.5
    _, parts = face_only(inside, target)
    assert parts["face"] == pytest.approx(0.5)


def test_widening_keeps_the_images_and_trains(tmp_path):
    """widen_stylegan2 adds feature maps without changing G's images; the run built from --init + --g-channels
    has the new widths and learns."""
    from stylekit.checkpoints.load import load_generator_file
    from stylekit.train.generators import new_stylegan2, widen_stylegan2
    from stylekit.train.supervised import SupervisedConfig, train_supervised

    torch.manual_seed(0)
    G = new_stylegan2(dict(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
                           mapping_kwargs=dict(num_layers=2), channel_base=64, channel_max=16,
                           channels=dict(TINY_CHANNELS), architecture="skip")).eval()
    wide = widen_stylegan2(G, {8: TINY_CHANNELS["8"] * 2, 16: TINY_CHANNELS["16"] * 3}).eval()
    z = torch.randn(4, 16)
    with torch.no_grad():
        a = G.synthesis(G.mapping(z, None), noise_mode="const")
        b = wide.synthesis(wide.mapping(z, None), noise_mode="const")
    assert torch.allclose(a, b, atol=1e-5)
    assert wide.synthesis.b16.conv1.weight.shape[:2] == (TINY_CHANNELS["16"] * 3, TINY_CHANNELS["16"] * 3)
    assert wide.synthesis.b16.conv1.weight[:TINY_CHANNELS["16"], TINY_CHANNELS["16"]:].abs().sum() == 0
    assert wide.synthesis.b16.conv1.weight[TINY_CHANNELS["16"]:].abs().sum() > 0   # new rows random (get gradients)
    with pytest.raises(InvalidArgumentError, match="shrink"):
        widen_stylegan2(G, {16: 1})
    with pytest.raises(InvalidArgumentError, match="no 32 px block"):
        widen_stylegan2(G, {32: 64})

    from stylekit.train.generators import save_canonical

    init = save_canonical(G, tmp_path / "g.safetensors")
    cfg = SupervisedConfig(out=str(tmp_path / "wide"), resolution=16, batch=8, kimg=0.08, seed=1, lr=0.01,
                           percep_weight=0.0, grad_weight=1.0, face_weight=1.0, init=str(init),
                           g_channels={8: TINY_CHANNELS["8"] * 2, 16: TINY_CHANNELS["16"] * 3},
                           snapshot_kimg=0.08, log_kimg=0.008, grid_size=4)
    losses = []
    result = train_supervised(cfg, progress=lambda *a, **m: losses.append(m["loss"]), log=None, predictor=None)
    trained = load_generator_file(result["generator"])
    assert trained.synthesis.b16.conv1.weight.shape[0] == TINY_CHANNELS["16"] * 3
    assert np.mean(losses[-3:]) < np.mean(losses[:3]), losses


# ------------------------------------------------------------------------------------------------
# Metrics


def test_frechet_distance_identical_and_shifted():
    from stylekit.train.metrics import frechet_distance

    rng = np.random.default_rng(0)
    a = rng.standard_normal((500, 8)) @ rng.standard_normal((8, 8))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(torch.from_numpy(a), torch.from_numpy(a.copy())) == pytest.approx(0.0, abs=1e-6)
    shifted = a + 2.0
    assert frechet_distance(a, shifted) == pytest.approx(4.0 * 8, rel=1e-6)  # same covariance: |dmu|^2
    b = rng.standard_normal((500, 8)) * 3.0
    fd = frechet_distance(a, b)
    assert fd > 0
    # agrees with the textbook formula computed with a general matrix square root
    linalg = pytest.importorskip("scipy.linalg")
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ref = np.square(a.mean(0) - b.mean(0)).sum() + np.trace(ca + cb - 2 * linalg.sqrtm(ca @ cb).real)
    assert fd == pytest.approx(ref, rel=1e-6)
    # singular covariances (fewer samples than features) stay finite
    assert np.isfinite(frechet_distance(rng.standard_normal((5, 20)), rng.standard_normal((5, 20))))
    with pytest.raises(InvalidArgumentError):
        frechet_distance(a, b[:, :4])


# ------------------------------------------------------------------------------------------------
# Data


def test_image_folder_dataset(tmp_path):
    from PIL import Image

    from stylekit.train.data import ImageFolderDataset, make_source

    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    Image.new("RGB", (40, 30), (255, 0, 0)).save(folder / "a.png")
    Image.new("RGBA", (20, 20), (0, 0, 255, 0)).save(folder / "sub" / "b.png")  # transparent -> white
    Image.new("L", (64, 64), 0).save(folder / "c.jpg")
    (folder / "notes.txt").write_text("not an image")

    ds = ImageFolderDataset(folder, 16)
    assert len(ds) == 3
    items = [ds[i] for i in range(3)]
    for x in items:
        assert x.shape == (3, 16, 16) and x.dtype == torch.float32
        assert x.min() >= -1 and x.max() <= 1
    by_name = dict(zip([p.name for p in ds.files], items))
    assert torch.allclose(by_name["a.png"][:, 8, 8], torch.tensor([1.0, -1.0, -1.0]), atol=0.02)
    assert torch.allclose(by_name["b.png"], torch.ones(3, 16, 16), atol=0.02)
    assert torch.allclose(by_name["c.jpg"], -torch.ones(3, 16, 16), atol=0.05)

    mirrored = ImageFolderDataset(folder, 16, mirror=True)
    assert len(mirrored) == 6
    assert torch.equal(mirrored[3], mirrored[0].flip(-1))
    batch = make_source(str(folder), 16).batch(5, np.random.default_rng(0))
    assert batch.shape == (5, 3, 16, 16)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidArgumentError):
        ImageFolderDataset(empty, 16)
    with pytest.raises(InvalidArgumentError):
        ImageFolderDataset(tmp_path / "nope", 16)


def test_gan_trains_from_image_folder(tmp_path):
    from PIL import Image

    from stylekit.train.gan import train_gan

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    cfg = _tiny_gan_config(tmp_path, data=str(folder), pl_weight=0.0, mirror=True)
    result = train_gan(cfg, log=None)
    assert result["kimg"] == pytest.approx(0.008)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["data"] == str(folder)


def test_toyfaces_source_batches():
    from stylekit.train.data import ToyfacesSource

    x = ToyfacesSource(16).batch(3, np.random.default_rng(0))
    assert x.shape == (3, 3, 16, 16) and x.min() >= -1 and x.max() <= 1


def test_cli_parses_channels():
    from stylekit.train.cli import parse_channels

    assert parse_channels("4:128,8:64") == {"4": 128, "8": 64}
    assert parse_channels(None) is None


class _RendererAsGenerator(torch.nn.Module):
    """A stand-in 'generator' whose samples are toyfaces renders of z's attributes (or a flat grey)."""

    def __init__(self, grey: bool = False):
        super().__init__()
        self.z_dim, self.c_dim, self.img_resolution, self.grey = 32, 0, 64, grey

    def mapping(self, z, c, truncation_psi=1.0):
        return z[:, None, :]

    def synthesis(self, ws, noise_mode="const"):
        from stylekit.toyfaces.latents import render_targets

        img = render_targets(ws[:, 0], self.img_resolution)
        return torch.zeros_like(img) if self.grey else img


def test_toyfaces_fd_separates_renders_from_junk():
    from stylekit.train.metrics import toyfaces_fd

    good = toyfaces_fd(_RendererAsGenerator(), n=200)
    bad = toyfaces_fd(_RendererAsGenerator(grey=True), n=200)
    assert good["fd_floor"] > 0 and good["n"] == 200
    assert good["fd_samples"] < 2.0 * good["fd_floor"]  # renders through the z map look like renders
    assert bad["fd_samples"] > 20 * bad["fd_floor"]


# ------------------------------------------------------------------------------------------------
# The shared skeleton and the command line


def test_every_trainer_parses_and_refuses_the_shipped_weights_folder(tmp_path, capsys):
    from stylekit.train.cli import TRAINERS, build_parser, config_from_args, main
    from stylekit.train.skeleton import shipped_weights_dir

    shipped = shipped_weights_dir()
    before = {p.name: p.stat().st_mtime_ns for p in shipped.iterdir()}
    length = {"gan": ["--kimg", "0.004"], "supervised": ["--kimg", "0.004"]}
    for kind in TRAINERS:
        extra = length.get(kind, ["--steps", "1"])
        # a bare run (no --out) does not start
        with pytest.raises(SystemExit) as info:
            main([kind] + extra)
        assert info.value.code == 2
        # the shipped folder, a file inside it, or an export there: refused before anything is built
        for where in (["--out", str(shipped)], ["--out", str(shipped / "run")],
                      ["--out", str(tmp_path / kind), "--export", str(shipped / "new.safetensors")]):
            assert main([kind] + extra + where) == 2, (kind, where)
            assert "--overwrite-shipped" in capsys.readouterr().err
        # the explicit flag is accepted (validated only: nothing is trained here)
        args = build_parser().parse_args([kind] + extra + ["--out", str(shipped), "--overwrite-shipped"])
        cfg = config_from_args(args)
        assert cfg.kind == kind and cfg.overwrite_shipped and cfg.out == str(shipped)
        cfg.validate()
        # the common options parse the same way for every trainer
        args = build_parser().parse_args([kind] + extra + ["--out", "r", "--batch", "3", "--lr", "0.01", "--seed", "7",
                                                           "--resume", "--threads", "1", "--export", "e.st"])
        cfg = config_from_args(args)
        assert (cfg.batch, cfg.lr, cfg.seed, cfg.resume, cfg.threads, cfg.export) == (3, 0.01, 7, "latest", 1, "e.st")
        assert config_from_args(build_parser().parse_args([kind] + extra + ["--out", "r", "--no-resume"])).resume is None
    assert {p.name: p.stat().st_mtime_ns for p in shipped.iterdir()} == before
    assert not (shipped / "run").exists() and not (shipped / "new.safetensors").exists()


def test_each_trainer_keeps_its_learning_rate_curve():
    """The one cosine_lr reproduces, bit for bit, the four schedules the trainers had before sharing it."""
    from stylekit.train.clip import ClipConfig
    from stylekit.train.encoder import EncoderConfig
    from stylekit.train.predictor import PredictorConfig
    from stylekit.train.supervised import SupervisedConfig

    def encoder_before(step, n, lr, rd):
        t = step / max(1, n)
        if rd <= 0 or t < 1 - rd:
            return lr
        r = (t - (1 - rd)) / rd
        return lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * r)))

    def clip_before(step, n, lr, warmup):
        if step < warmup:
            return lr * (step + 1) / warmup
        t = (step - warmup) / max(1, n - warmup)
        return lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))

    def predictor_before(step, n, lr, warmup=150):
        if step < warmup:
            return lr * (step + 1) / warmup
        t = (step - warmup) / max(1, n - warmup)
        return lr * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0))))

    def supervised_before(cur, total, lr, rd_kimg):
        if rd_kimg > 0:
            start = total - rd_kimg * 1000
            if cur > start:
                frac = min((cur - start) / (rd_kimg * 1000), 1.0)
                return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        return lr

    for n, rd in ((700, 0.3), (20000, 0.3), (45, 0.5), (100, 0.0)):
        cfg = EncoderConfig(steps=n, lr=5e-4, decay=rd)
        assert all(cfg.lr_at(s) == encoder_before(s, n, 5e-4, rd) for s in range(n)), (n, rd)
    for n, warmup, lr in ((600, 40, 5e-4), (1200, 20, 3e-4), (3, 0, 2e-4)):
        cfg = ClipConfig(steps=n, warmup=warmup, lr=lr)
        assert all(cfg.lr_at(s) == clip_before(s, n, lr, warmup) for s in range(n + 3)), (n, warmup)
    for n in (4000, 2, 151):
        cfg = PredictorConfig(steps=n, lr=2e-3)
        assert all(cfg.lr_at(s) == predictor_before(s, n, 2e-3) for s in range(n + 3)), n
    for kimg, rd, batch in ((240, 60, 16), (72, 12, 8), (0.176, 0.05, 8), (10, 0, 32)):
        cfg = SupervisedConfig(kimg=kimg, lr=0.002, lr_rampdown_kimg=rd)
        total = int(round(kimg * 1000))
        assert all(cfg.lr_at(c) == supervised_before(c, total, 0.002, rd) for c in range(0, total + batch, batch))


def test_an_interrupted_gan_run_resumes_exactly(tmp_path):
    """Checkpoints hold the step counter and every random state, so 2 + 3 iterations equal 5 in one go."""
    from stylekit.train.gan import train_gan

    def run(out, kimg, resume=None):
        cfg = _tiny_gan_config(tmp_path, out=str(tmp_path / out), kimg=kimg, r1_interval=3, pl_interval=2,
                               ema_rampup=0.05, resume=resume)
        return load_file(train_gan(cfg, log=None)["generator"])

    from safetensors.torch import load_file

    straight = run("a", 0.02)
    run("b", 0.008)
    resumed = run("b", 0.02, resume="latest")
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    log = (tmp_path / "b" / "log.txt").read_text()
    assert f"resumed from {tmp_path / 'b' / 'checkpoint-latest.pt'} at kimg 0.0" in log


def test_run_checkpoints_atomically_with_random_states(tmp_path):
    from stylekit.train.skeleton import CHECKPOINT_NAME, Run, StepsConfig, load_checkpoint

    cfg = StepsConfig(out=str(tmp_path / "run"), seed=5)
    net = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with Run(cfg, log=None) as run:
        run.rng.random(3)
        torch.randn(2, generator=run.gen)
        run.step, run.cur_nimg = 4, 128
        path = run.checkpoint(nets={"net": net}, optims={"opt": opt}, extra={"note": 1.5}, keep="000004")
        expected = (run.rng.random(), float(torch.randn([], generator=run.gen)), float(torch.randn([])))
    assert path.name == "checkpoint-000004.pt" and (tmp_path / "run" / CHECKPOINT_NAME).is_file()
    assert not list((tmp_path / "run").glob("*.tmp"))
    state = load_checkpoint(tmp_path / "run", kind="train")
    assert (state["step"], state["cur_nimg"], state["extra"]) == (4, 128, {"note": 1.5})
    with pytest.raises(CheckpointError, match="'gan'"):
        load_checkpoint(tmp_path / "run", kind="gan")
    other = torch.nn.Linear(2, 2)
    with Run(StepsConfig(out=str(tmp_path / "run"), seed=99, resume="latest"), log=None) as run:
        extra = run.restore(run.resume_state(), {"net": other}, {})
        assert extra == {"note": 1.5} and (run.step, run.cur_nimg) == (4, 128)
        assert (run.rng.random(), float(torch.randn([], generator=run.gen)), float(torch.randn([]))) == expected
    assert torch.equal(other.weight, net.weight)
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        Run(StepsConfig(out=str(tmp_path / "empty"), resume="latest"), log=None).resume_state()


# ------------------------------------------------------------------------------------------------
# Compute precision (--precision)


def test_every_trainer_parses_precision():
    from stylekit.train.cli import TRAINERS, build_parser, config_from_args

    length = {"gan": ["--kimg", "0.004"], "supervised": ["--kimg", "0.004"]}
    for kind in TRAINERS:
        base = [kind] + length.get(kind, ["--steps", "1"]) + ["--out", "r"]
        assert config_from_args(build_parser().parse_args(base)).precision == "fp32"  # the default changes nothing
        for choice in ("fp32", "bf16", "fp16", "auto"):
            cfg = config_from_args(build_parser().parse_args(base + ["--precision", choice]))
            assert cfg.precision == choice and cfg.to_dict()["precision"] == choice, (kind, choice)
            assert "precision" not in cfg.learned_settings()  # how a run executes, not what it learns
        with pytest.raises(SystemExit):
            build_parser().parse_args(base + ["--precision", "int8"])
        cfg.precision = "half"
        with pytest.raises(InvalidArgumentError, match="precision"):
            cfg.validate()


def test_mixed_precision_modes():
    from stylekit.train.mixed_precision import MixedPrecision

    fp32 = MixedPrecision("fp32")
    x = torch.randn(2, 3, 4, 4)
    assert not fp32.enabled and fp32.synthesis is None and fp32.scaler is None and fp32.images(x) is x
    with fp32.autocast():
        assert not torch.is_autocast_enabled("cpu")
    bf16 = MixedPrecision("bf16", "cpu")
    assert bf16.enabled and bf16.synthesis == "bf16" and bf16.scaler is None
    assert bf16.images(x).is_contiguous(memory_format=torch.channels_last)
    conv = bf16.channels_last(torch.nn.Conv2d(3, 4, 3))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    with bf16.autocast():
        assert conv(bf16.images(x)).dtype == torch.bfloat16
    assert "channels-last" in bf16.describe()
    assert MixedPrecision("auto", "cpu").precision in ("fp32", "bf16")
    # bfloat16 asked for on a CPU without bfloat16 units runs, and the run's log says to use auto
    avx2 = MixedPrecision("bf16", "cpu", cpu_flags=["avx2", "fma"])
    assert avx2.emulated and avx2.enabled and "--precision auto" in avx2.describe()
    amx = MixedPrecision("bf16", "cpu", cpu_flags=["avx512f", "amx_bf16"])
    assert not amx.emulated and "WARNING" not in amx.describe()
    assert not MixedPrecision("fp32", "cpu", cpu_flags=["avx2"]).emulated
    # float16 scales the loss and skips a step whose gradients overflowed
    fp16 = MixedPrecision("fp16", "cpu")
    assert fp16.scaler is not None and "gradient scaling" in fp16.describe()
    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([w], lr=0.1)
    fp16.backward((w * torch.tensor([1.0, 2.0, float("inf")])).sum())
    fp16.step(opt)
    assert torch.equal(w.detach(), torch.ones(3))
    opt.zero_grad()
    fp16.backward((w * 2).sum())
    fp16.unscale(opt)
    assert torch.allclose(w.grad, torch.full((3,), 2.0))
    fp16.step(opt)
    assert torch.allclose(w.detach(), torch.full((3,), 0.8))
    state = fp16.state_dict()
    other = MixedPrecision("fp16", "cpu")
    other.load_state_dict(state)
    assert other.scaler.get_scale() == fp16.scaler.get_scale()


def test_supervised_bf16_reduces_loss(tmp_path):
    """The short supervised run of test_supervised_recipe_reduces_loss with --precision bf16 learns too
    (last 4 log lines' mean loss < 0.8 x the first 4), and writes float32 weights."""
    from safetensors import safe_open

    from stylekit.train.supervised import SupervisedConfig, train_supervised

    losses, lines = [], []

    def progress(step, total, message="", **metrics):
        losses.append(metrics["loss"])

    cfg = SupervisedConfig(out=str(tmp_path / "sup"), resolution=16, batch=8, kimg=0.16, seed=1, z_dim=16, w_dim=16,
                           map_layers=2, g_channels=TINY_CHANNELS, lr=0.01, percep_weight=0.0,
                           snapshot_kimg=0.08, log_kimg=0.008, grid_size=4, precision="bf16")
    result = train_supervised(cfg, progress=progress, log=lines.append, predictor=None)
    assert any(line.startswith("precision bf16") for line in lines)
    assert len(losses) == 20 and all(math.isfinite(v) for v in losses)
    assert np.mean(losses[-4:]) < 0.8 * np.mean(losses[:4]), losses
    with safe_open(result["generator"], "pt") as fh:
        assert {fh.get_tensor(k).dtype for k in fh.keys()} == {torch.float32}


def test_every_generator_and_encoder_trainer_steps_in_bf16(tmp_path):
    """One short run of the GAN (with R1 and path length), supervised-with-discriminator and e4e / ReStyle
    encoder trainers in bf16: finite losses, float32 weights and a resumable checkpoint."""
    from conftest import tiny_stylegan2
    from stylekit.train.encoder import EncoderConfig, train_encoder
    from stylekit.train.gan import train_gan
    from stylekit.train.supervised import SupervisedConfig, train_supervised

    gan = train_gan(_tiny_gan_config(tmp_path, kimg=0.016, pl_interval=2, r1_interval=2, precision="bf16"), log=None)
    assert math.isfinite(gan["kimg"]) and (tmp_path / "run" / "checkpoint-latest.pt").is_file()
    sup = train_supervised(SupervisedConfig(out=str(tmp_path / "sup"), resolution=16, batch=8, kimg=0.032, seed=1,
                                            z_dim=16, w_dim=16, map_layers=2, g_channels=TINY_CHANNELS, lr=0.01,
                                            percep_weight=0.0, adv_weight=0.1, r1_interval=2, snapshot_kimg=0.08,
                                            log_kimg=0.008, grid_size=4, precision="bf16"), log=None, predictor=None)
    assert math.isfinite(sup["loss"])
    G = tiny_stylegan2()
    enc_cfg = dict(mode="e4e", in_channels=3, input_size=16, stem_channels=8, stages=[[8, 1], [16, 1], [24, 1], [32, 1]],
                   se=True, se_reduction=4, num_ws=G.num_ws, w_dim=16, head_channels=16, coarse_ind=2, middle_ind=4)
    for restyle in (False, True):
        enc = train_encoder(EncoderConfig(out=str(tmp_path / f"enc{restyle}"), steps=3, batch=4, perceptual="none",
                                          perceptual_weight=0.0, log_every=3, snapshot_every=3, eval_images=4,
                                          encoder_config=enc_cfg, restyle=restyle, restyle_iterations=2,
                                          half_export=False, precision="bf16"), G=G, log=None)
        assert all(p.dtype == torch.float32 for p in enc.parameters())
        record = json.loads((tmp_path / f"enc{restyle}" / "log.jsonl").read_text().splitlines()[-1])
        assert math.isfinite(record["loss"]) and math.isfinite(record["eval_psnr"])


def test_clip_and_predictor_trainers_step_in_bf16(tmp_path):
    """Three steps of the CLIP and predictor trainers in bf16: finite losses, and the files they write."""
    from stylekit.train.clip import ClipConfig, train_clip
    from stylekit.train.predictor import PredictorConfig, train_predictor

    summary = train_clip(ClipConfig(out=str(tmp_path / "clip"), steps=3, batch=8, fresh_per_step=4, buffer_size=16,
                                    eval_every=0, log_every=1, snapshot_every=3, warmup=1, precision="bf16"), log=None)
    assert math.isfinite(summary["final_loss"]) and (tmp_path / "clip" / "clip.safetensors").is_file()
    metrics = train_predictor(PredictorConfig(out=str(tmp_path / "pred"), steps=3, batch=8, pool=16, eval_samples=20,
                                              warmup=1, log_every=1, snapshot_every=3, precision="bf16"), log=None)
    from stylekit.checkpoints.predictor import predictor_metrics
    from stylekit.toyfaces.attributes import BINARY_ATTRIBUTES, CONTINUOUS_ATTRIBUTES

    # every attribute scored on the 20 held-out renders, and the file carries the numbers it returned
    assert set(metrics["clean"]["accuracy"]) == set(BINARY_ATTRIBUTES) and metrics["clean"]["samples"] == 20
    assert set(metrics["clean"]["r2"]) == set(CONTINUOUS_ATTRIBUTES) and metrics["degraded"]["degraded"]
    stored = predictor_metrics(tmp_path / "pred" / "predictor.safetensors")
    assert stored["clean"]["accuracy"] == pytest.approx(metrics["clean"]["accuracy"])


def test_laplacian_loss_term_sees_a_soft_line():
    """The Laplacian term is zero for a constant offset and larger for a one-pixel line drawn soft than the
    gradient term is (the line's first differences partly cancel in a blur; its second differences do not)."""
    from stylekit.train.supervised import ReconstructionLoss

    off = dict(l1_weight=0.0, multiscale_weight=0.0, percep_weight=0.0)
    target = torch.zeros(1, 3, 32, 32)
    target[..., 16, :] = 1.0                                       # a one-pixel line
    soft = target.clone()
    soft[..., 15, :] = soft[..., 17, :] = 0.25
    soft[..., 16, :] = 0.5                                         # the same line, blurred (same mass)
    lap = ReconstructionLoss(lap_weight=1.0, **off)
    total, parts = lap(target + 0.3, target)
    assert parts["lap"] == pytest.approx(0.0, abs=1e-7) and float(total) == pytest.approx(0.0, abs=1e-7)
    total, parts = lap(soft, target)
    d = (soft - target)[0, 0]
    manual = (d[:-2, 1:-1] + d[2:, 1:-1] + d[1:-1, :-2] + d[1:-1, 2:] - 4 * d[1:-1, 1:-1]).abs().mean()
    assert parts["lap"] == pytest.approx(float(manual)) and float(total) == pytest.approx(float(manual))
    _, grad = ReconstructionLoss(grad_weight=1.0, **off)(soft, target)
    assert parts["lap"] > 1.5 * grad["grad"]


def test_compiled_synthesis_matches_eager():
    """--compile's synthesis (torch.compile, one graph) gives the eager image and gradients (float32), and
    the bfloat16 path compiles too; disabled, it is G.synthesis itself."""
    from stylekit.networks.stylegan2 import StyleGAN2Generator
    from stylekit.train.compiled import synthesis_callable

    torch.manual_seed(0)
    G = StyleGAN2Generator(dict(z_dim=8, w_dim=8, img_resolution=16, mapping_kwargs=dict(num_layers=2),
                                channels={"4": 16, "8": 16, "16": 8}))
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.1)
    assert synthesis_callable(G, enabled=False, device="cpu") == G.synthesis
    fast = synthesis_callable(G, enabled=True, device="cpu")
    ws = G.mapping(torch.randn(4, 8), None).detach().requires_grad_(True)
    eager = G.synthesis(ws, noise_mode="const")
    (g_eager,) = torch.autograd.grad(eager.square().sum(), ws)
    compiled = fast(ws, noise_mode="const")
    (g_compiled,) = torch.autograd.grad(compiled.square().sum(), ws)
    assert torch.allclose(compiled, eager, atol=1e-4), (compiled - eager).abs().max()
    assert torch.allclose(g_compiled, g_eager, rtol=1e-3, atol=1e-3), (g_compiled - g_eager).abs().max()
    bf16 = fast(ws, noise_mode="const", precision="bf16")
    assert bf16.dtype == torch.float32 and (bf16 - eager).norm() / eager.norm() < 0.02  # bf16 rounding: ~0.005


def test_compile_needs_a_cxx_compiler_on_cpu(monkeypatch):
    import stylekit.networks.precision as precision
    import stylekit.train.compiled as compiled
    from stylekit.errors import InvalidArgumentError
    from stylekit.networks.stylegan2 import StyleGAN2Generator

    G = StyleGAN2Generator(dict(z_dim=8, w_dim=8, img_resolution=8, mapping_kwargs=dict(num_layers=2)))
    monkeypatch.setattr(precision.shutil, "which", lambda name: None)
    with pytest.raises(InvalidArgumentError, match="C\\+\\+ compiler"):
        compiled.synthesis_callable(G, enabled=True, device="cpu")
    assert compiled.synthesis_callable(G, enabled=False, device="cpu") == G.synthesis


def test_supervised_compiled_bf16_reduces_loss(tmp_path):
    """The short bf16 run of test_supervised_bf16_reduces_loss with --compile (parsed from the CLI) learns too and
    says in its log that the synthesis and the targets' drawing are compiled."""
    from stylekit.train.cli import build_parser, config_from_args
    from stylekit.train.supervised import train_supervised

    argv = ["supervised", "--out", str(tmp_path / "sup"), "--resolution", "16", "--batch", "8", "--kimg", "0.16",
            "--seed", "1", "--z-dim", "16", "--w-dim", "16", "--map-layers", "2", "--lr", "0.01", "--percep", "0",
            "--lap", "0.5", "--snapshot-kimg", "0.08", "--log-kimg", "0.008", "--precision", "bf16", "--compile",
            "--threads", "1", "--g-channels", ",".join(f"{k}:{v}" for k, v in TINY_CHANNELS.items())]
    cfg = config_from_args(build_parser().parse_args(argv))
    assert cfg.compile and cfg.lap_weight == 0.5
    cfg.grid_size = 4
    losses, lines = [], []

    def progress(step, total, message="", **metrics):
        losses.append(metrics["loss"])

    train_supervised(cfg, progress=progress, log=lines.append, predictor=None)
    assert any("synthesis and the targets' drawing compiled" in line for line in lines)
    assert len(losses) == 20 and all(math.isfinite(v) for v in losses)
    assert np.mean(losses[-4:]) < 0.8 * np.mean(losses[:4]), losses


def test_profile_steps_says_where_a_training_step_goes(tmp_path):
    """--profile-steps: the steps after the first three run under the profiler; profile.json splits them into the
    convolutions, drawing the targets and the rest, with each operator's own time, and the log says so. A run
    that ends while profiling reports the steps it profiled; one that ends before says nothing was profiled."""
    import json

    from stylekit.train.profiling import CONV_OPS, StepProfile, time_shares
    from stylekit.train.supervised import SupervisedConfig, train_supervised

    def run(out, kimg, steps):
        lines = []
        cfg = SupervisedConfig(out=str(tmp_path / out), resolution=16, batch=8, kimg=kimg, seed=1, z_dim=16,
                               w_dim=16, map_layers=2, g_channels=TINY_CHANNELS, lr=0.01, percep_weight=0.0,
                               snapshot_kimg=1, log_kimg=0.008, grid_size=4, profile_steps=steps)
        train_supervised(cfg, log=lines.append, predictor=None)
        path = tmp_path / out / "profile.json"
        return (json.loads(path.read_text()) if path.is_file() else None), lines

    prof, lines = run("a", 0.056, 2)  # 7 steps: 3, then 2 profiled, then 2 more
    assert prof["steps"] == 2 and prof["after_steps"] == 3 and prof["wall_ms"] > 0
    shares = prof["shares_ms"]
    assert set(shares) == {"convolutions", "render_targets", "other"}
    assert all(v > 0 for v in shares.values())
    assert shares["render_targets"] < prof["wall_ms"]
    assert shares["convolutions"] == pytest.approx(sum(v for k, v in prof["self_ms"].items() if k in CONV_OPS))
    assert sum(shares.values()) == pytest.approx(sum(prof["self_ms"].values()))
    assert any(k in prof["self_ms"] for k in ("aten::mkldnn_convolution", "aten::convolution_backward"))
    assert any(line.startswith("profile of 2 steps (after 3)") for line in lines)

    prof, _ = run("b", 0.040, 50)  # 5 steps: 2 of the 50 profiled when the run ends
    assert prof["steps"] == 2
    prof, lines = run("c", 0.016, 5)  # 2 steps
    assert prof is None and any("nothing profiled" in line for line in lines)

    from stylekit.train.gan import train_gan

    train_gan(_tiny_gan_config(tmp_path, out=str(tmp_path / "gan"), kimg=0.016, profile_steps=1), log=None)
    gan = json.loads((tmp_path / "gan" / "profile.json").read_text())  # 4 steps: the GAN's real images are "data"
    assert gan["steps"] == 1 and set(gan["shares_ms"]) == {"convolutions", "data", "other"}
    assert gan["shares_ms"]["data"] > 0

    # the parts of a given profile: scopes whole, their operators not counted again in "other"
    self_ms = {"aten::mkldnn_convolution": 4.0, "aten::mm": 1.0, "aten::mul": 3.0, "render_targets": 0.5,
               "aten::add": 2.0}
    assert time_shares(self_ms, {"render_targets": 2.5}) == {"convolutions": 5.0, "render_targets": 2.5,
                                                             "other": 3.0}
    with pytest.raises(InvalidArgumentError, match="CPU"):
        StepProfile(3, None, "cuda")
    with pytest.raises(InvalidArgumentError, match="profile-steps"):
        SupervisedConfig(out=str(tmp_path / "d"), profile_steps=-1).validate()


def test_gan_compiled_bf16_trains_and_logs_it(tmp_path):
    """--compile for the GAN trainer (parsed from the CLI): a short bf16 run with R1 and path-length steps (the
    path-length term runs the eager synthesis) gives finite losses, says the synthesis and the toyfaces renders
    are compiled (the synthesis alone on a folder of images) and writes float32 weights."""
    from safetensors.torch import load_file

    from stylekit.train.cli import build_parser, config_from_args
    from stylekit.train.gan import _compiled_note, train_gan

    cfg = _tiny_gan_config(tmp_path, kimg=0.024, r1_interval=2, pl_interval=2, precision="bf16", compile=True)
    argv = ["gan", "--out", cfg.out, "--kimg", "0.024", "--precision", "bf16", "--compile"]
    assert config_from_args(build_parser().parse_args(argv)).compile
    lines, losses = [], []

    def progress(step, total, message="", **metrics):
        losses.append(metrics)

    result = train_gan(cfg, progress=progress, log=lines.append)
    assert any("synthesis and the toyfaces renders compiled" in line for line in lines), lines
    folder = SimpleNamespace(compile=True, data=str(tmp_path))
    assert _compiled_note(folder) == ", synthesis compiled (the first step compiles it)"
    assert losses and all(math.isfinite(v) for m in losses for v in m.values())
    weights = load_file(result["generator"])
    assert {t.dtype for t in weights.values()} == {torch.float32}
