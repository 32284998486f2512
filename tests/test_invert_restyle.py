"""ReStyle (iterative refinement) and the encoder training loop, on a tiny generator."""

from __future__ import annotations

import json

import pytest
import torch

from stylekit.errors import InvalidArgumentError
from stylekit.invert import invert
from stylekit.invert.encoder import load_encoder
from stylekit.networks.encoders import LatentEncoder
from stylekit.train.cli import main
from stylekit.train.encoder import EncoderConfig, evaluate, train_encoder, training_batch

TINY = dict(mode="e4e", input_size=32, stem_channels=8, stages=[[8, 1], [16, 1], [24, 1], [32, 1]], se=True,
            se_reduction=4, head_channels=16, coarse_ind=2, middle_ind=4)


@pytest.fixture(scope="module")
def restyle_encoder(G, tmp_path_factory):
    out = tmp_path_factory.mktemp("restyle")
    cfg = EncoderConfig(steps=100, batch=8, lr=2e-3, data="samples", perceptual="none", perceptual_weight=0.0,
                        restyle=True, restyle_iterations=2, snapshot_every=50, log_every=20, eval_images=8,
                        encoder_config=dict(TINY), seed=0, out=str(out), resume=None)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same sums in the same order on every machine
    try:
        enc = train_encoder(cfg, G=G, log=None)
    finally:
        torch.set_num_threads(threads)
    return enc, out


def test_restyle_steps_improve_reconstructions(G, restyle_encoder):
    enc, _ = restyle_encoder
    assert enc.config["in_channels"] == 6
    held_out = training_batch(G, "samples", 16, torch.Generator().manual_seed(123))
    one = evaluate(G, enc, held_out, restyle_iterations=1)
    two = evaluate(G, enc, held_out, restyle_iterations=2)
    assert two["mse"] < one["mse"]
    res = invert(G, held_out[:1], method="restyle", encoder=enc, steps=3)
    assert res.latent.tensor.shape == (1, G.num_ws, G.w_dim) and res.image.shape == (1, 3, 16, 16)
    assert len(res.extra["psnr_per_step"]) == 3 and len(res.loss_history) == 3
    assert res.method == "restyle"


def test_training_writes_resumable_checkpoints(G, restyle_encoder, tmp_path):
    enc, out = restyle_encoder
    assert (out / "checkpoint-latest.pt").is_file() and (out / "encoder.safetensors").is_file()
    lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in lines] == [20, 40, 60, 80, 100] and "eval_psnr" in lines[-1]
    exported = load_encoder(out / "encoder.safetensors")
    x = torch.rand(2, 6, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(exported.encoder(x), enc.encoder(x), atol=5e-2)  # float16 export
    state = torch.load(out / "checkpoint-latest.pt", weights_only=True)
    assert int(state["step"]) == 100


def test_encoder_training_lowers_loss_and_resumes(G, tmp_path):
    cfg = EncoderConfig(steps=30, batch=8, lr=2e-3, data="samples", perceptual="none", perceptual_weight=0.0,
                        snapshot_every=15, log_every=15, eval_images=8, encoder_config=dict(TINY), seed=1,
                        progressive_every=5, half_export=False, out=str(tmp_path), resume=None)
    logs = []
    train_encoder(cfg, G=G, log=logs.append)
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert records[-1]["mse"] < records[0]["mse"]
    assert records[0]["stage"] < G.num_ws - 1  # progressive: offsets switched on one by one
    # resume: ask for more iterations, it continues from 30
    cfg2 = EncoderConfig(**{**cfg.__dict__, "steps": 45, "resume": "auto"})
    logs.clear()
    train_encoder(cfg2, G=G, log=logs.append)
    assert any("resumed" in line and "30" in line for line in logs)
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert records[-1]["iteration"] == 45


def test_restyle_bad_inputs(G, restyle_encoder):
    enc, _ = restyle_encoder
    x = torch.zeros(1, 3, 16, 16)
    with pytest.raises(InvalidArgumentError):
        invert(G, x, method="restyle", encoder=enc, steps=0)
    with pytest.raises(InvalidArgumentError):
        invert(G, x, method="restyle", encoder=enc, steps=50000)
    with pytest.raises(InvalidArgumentError, match="6 input channels"):
        invert(G, x, method="restyle", encoder=LatentEncoder({**TINY, "num_ws": 6, "w_dim": 16}), steps=2)
    with pytest.raises(InvalidArgumentError, match="restyle"):
        invert(G, x, method="encoder", encoder=enc)
    with pytest.raises(InvalidArgumentError):
        invert(G, x, method="restyle", encoder=enc, space="w")


def test_cli_reports_errors(tmp_path, capsys):
    assert main(["encoder", "--generator", str(tmp_path / "missing.pkl"), "--out", str(tmp_path / "run"),
                 "--steps", "1"]) == 2
    assert "error:" in capsys.readouterr().err


def test_restyle_initialised_from_e4e_starts_equal_to_it(G):
    from stylekit.invert.refine import restyle_steps
    from stylekit.train.encoder import init_from

    torch.manual_seed(4)
    e4e = LatentEncoder({**TINY, "num_ws": G.num_ws, "w_dim": G.w_dim}, G.w_avg).eval()
    rs = LatentEncoder({**TINY, "num_ws": G.num_ws, "w_dim": G.w_dim, "in_channels": 6}, G.w_avg).eval()
    assert init_from(rs, e4e) == []
    x = training_batch(G, "samples", 2, torch.Generator().manual_seed(9))
    with torch.no_grad():
        latent, _, _ = restyle_steps(G, rs, x, 1)
        assert torch.allclose(latent, e4e(x), atol=1e-5)


def test_latent_regression_pretraining_needs_no_generator_gradient(G, tmp_path):
    cfg = EncoderConfig(steps=30, batch=8, lr=2e-3, data="samples", pixel_weight=0.0, perceptual_weight=0.0,
                        latent_weight=1.0, snapshot_every=30, log_every=10, eval_images=8,
                        encoder_config=dict(TINY), seed=2, out=str(tmp_path), resume=None)
    train_encoder(cfg, G=G, log=None)
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert "mse" not in records[0] and records[-1]["latent"] < records[0]["latent"]
    with pytest.raises(InvalidArgumentError, match="nothing to train"):
        train_encoder(EncoderConfig(steps=2, data="renders", pixel_weight=0.0, perceptual_weight=0.0,
                                    latent_weight=1.0, out=str(tmp_path / "b")), G=G, log=None)


def test_bootstrapped_restyle_starts_from_its_encoder(G, tmp_path):
    from stylekit.invert.encoder import save_encoder
    from stylekit.invert.result import psnr

    torch.manual_seed(5)
    e4e = LatentEncoder({**TINY, "num_ws": G.num_ws, "w_dim": G.w_dim}, G.w_avg, info={"name": "tiny-e4e"}).eval()
    boot_file = save_encoder(e4e, tmp_path / "e4e.safetensors")
    cfg = EncoderConfig(steps=4, batch=4, lr=1e-3, data="samples", perceptual="none", perceptual_weight=0.0,
                        restyle=True, restyle_iterations=2, bootstrap=str(boot_file), snapshot_every=4, log_every=2,
                        eval_images=4, encoder_config=dict(TINY), seed=0, out=str(tmp_path / "run"), resume=None)
    rs = train_encoder(cfg, G=G, log=None)
    saved = load_encoder(tmp_path / "run" / "encoder.safetensors")
    assert saved.info["bootstrap"] == str(boot_file)
    x = training_batch(G, "samples", 1, torch.Generator().manual_seed(3))
    auto = invert(G, x, method="restyle", encoder=saved, steps=2)
    with torch.no_grad():
        first_guess = psnr(G.synthesis(e4e(auto.target), noise_mode="const"), auto.target)
    assert auto.extra["bootstrap_psnr"] == pytest.approx(first_guess, abs=1e-3)
    plain = invert(G, x, method="restyle", encoder=saved, steps=2, bootstrap=None)
    assert plain.extra["bootstrap_psnr"] is None
    assert not torch.allclose(plain.latent.tensor, auto.latent.tensor)
    with pytest.raises(InvalidArgumentError, match="restyle=True"):
        train_encoder(EncoderConfig(steps=2, bootstrap=str(boot_file), out=str(tmp_path / "b")), G=G, log=None)
    with pytest.raises(InvalidArgumentError, match="one-pass"):
        invert(G, x, method="restyle", encoder=saved, steps=1, bootstrap=rs)


def test_shipped_restyle_beats_one_e4e_pass_on_held_out_renders():
    """The shipped pair keeps ReStyle's promise: refinement from the e4e guess lowers the error on renders."""
    import stylekit
    from stylekit.invert.encoder import encode

    G = stylekit.load_generator("toyfaces")
    renders = training_batch(G, "renders", 24, torch.Generator().manual_seed(777))
    e4e = sum(encode(G, renders[i:i + 1]).psnr() for i in range(len(renders))) / len(renders)
    rs = sum(invert(G, renders[i:i + 1], method="restyle").psnr() for i in range(len(renders))) / len(renders)
    assert rs > e4e + 0.1
