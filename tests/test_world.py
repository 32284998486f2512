"""``python -m stylekit.train world``: install a new toyfaces generator and refit what depends on it (issue 17).

The refit runs for real at a tiny scale on a copy of the shipped weights, with a "new" generator made by
perturbing the shipped one: every stage's trainer runs, each result lands in the copy, the fingerprint-bound
files then accept the new generator (and the old files would not), and a rerun skips what is done.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from stylekit.errors import CheckpointError, InvalidArgumentError
from stylekit.train.cli import build_parser, config_from_args, main
from stylekit.train.skeleton import shipped_weights_dir
from stylekit.train.world import REFIT, WorldConfig, plan, refit_world


def _new_generator(path):
    """The shipped generator with its 64-px convolution nudged: same latents and size, other weights."""
    from stylekit.checkpoints.load import load_generator_file
    from stylekit.train.generators import save_canonical

    G = load_generator_file(shipped_weights_dir() / "generator.safetensors")
    with torch.no_grad():
        conv = G.synthesis.b64.conv1.weight
        conv.add_(0.05 * torch.randn(conv.shape, generator=torch.Generator().manual_seed(0)))
    save_canonical(G, path)
    return G


def test_plan_parses_with_every_trainer(tmp_path):
    """Each stage's command is one its trainer accepts, and names the world's files as they will be installed."""
    shipped = plan(WorldConfig(generator="g.safetensors", out=str(tmp_path / "run")))
    assert [s.name for s, _ in shipped] == [s.name for s in REFIT]
    by_name = {s.name: argv for s, argv in shipped}
    assert by_name["restyle"][by_name["restyle"].index("--bootstrap") + 1] == "e4e-toyfaces"  # recorded in the file
    assert by_name["rig"][by_name["rig"].index("--generator") + 1] == "toyfaces"
    weights = tmp_path / "w"
    mine = plan(WorldConfig(generator="g.safetensors", out=str(tmp_path / "run"), weights=str(weights), scale=0.01,
                            stages=("restyle", "relevance")))
    assert [s.name for s, _ in mine] == ["restyle", "relevance"]
    restyle = mine[0][1]
    assert restyle[restyle.index("--bootstrap") + 1] == str(weights / "encoder.safetensors")
    assert restyle[restyle.index("--steps") + 1] == "6"
    for stage, argv in shipped:
        if stage.trainer == "relevance":
            continue
        cfg = config_from_args(build_parser().parse_args(argv), argv)
        assert cfg.steps == stage.steps
    on_gpu = plan(WorldConfig(generator="g.safetensors", out=str(tmp_path / "run"), device="cuda", precision="bf16"))
    for stage, argv in on_gpu:
        assert argv[argv.index("--device") + 1] == "cuda", stage.name
        if stage.trainer != "relevance":
            cfg = config_from_args(build_parser().parse_args(argv), argv)
            assert (cfg.device, cfg.precision) == ("cuda", "bf16")
    with pytest.raises(InvalidArgumentError, match="unknown stage"):
        plan(WorldConfig(generator="g", out="o", stages=("e4e", "gan")))


def test_refuses_the_package_without_overwrite_and_a_foreign_generator(tmp_path):
    with pytest.raises(InvalidArgumentError, match="shipped weights"):
        refit_world(WorldConfig(generator=str(shipped_weights_dir() / "generator.safetensors"), out=str(tmp_path)))
    from stylekit.networks.stylegan2 import StyleGAN2Generator
    from stylekit.train.generators import save_canonical

    weights = tmp_path / "w"
    weights.mkdir()
    shutil.copy(shipped_weights_dir() / "generator.safetensors", weights)
    other = StyleGAN2Generator(dict(z_dim=32, w_dim=64, img_resolution=64, img_channels=3, channel_base=512,
                                    channel_max=64, mapping_kwargs=dict(num_layers=2)))
    save_canonical(other, tmp_path / "other.safetensors")
    with pytest.raises(InvalidArgumentError, match="z_dim 32"):
        refit_world(WorldConfig(generator=str(tmp_path / "other.safetensors"), out=str(tmp_path / "run"),
                                weights=str(weights)), log=None)
    assert (weights / "generator.safetensors").read_bytes() == (shipped_weights_dir() / "generator.safetensors").read_bytes()


@pytest.mark.slow
def test_tiny_refit_end_to_end(tmp_path, capsys):
    from stylekit.edit.rig import load_rig
    from stylekit.edit.styleflow import load_flow
    from stylekit.invert.encoder import load_encoder
    from stylekit.text import load_relevance

    weights = tmp_path / "weights"
    shutil.copytree(shipped_weights_dir(), weights)
    before = {p.name: p.read_bytes() for p in weights.glob("*.safetensors")}
    G = _new_generator(tmp_path / "new.safetensors")
    out = tmp_path / "run"
    argv = ["world", "--generator", str(tmp_path / "new.safetensors"), "--out", str(out), "--weights", str(weights),
            "--scale", "0.002"]
    assert main(argv) == 0
    state = json.loads((out / "world.json").read_text())
    assert list(state["stages"]) == [s.name for s in REFIT]
    for stage in REFIT:  # every file was replaced by its stage's result
        assert (weights / stage.file).read_bytes() != before[stage.file], stage.name
        assert f"--out {out / stage.name}" in state["stages"][stage.name]["command"], stage.name
    assert (weights / "generator.safetensors").read_bytes() == (tmp_path / "new.safetensors").read_bytes()
    for name in ("e4e", "restyle", "psp"):  # the encoders' held-out PSNR, for the cards
        assert 5 < state["stages"][name]["result"]["eval_psnr"] < 60, state["stages"][name]
    # the fingerprint-bound files are the new generator's now, and the shipped ones are not
    load_rig(weights / "rig.safetensors", G=G)
    load_flow(weights / "styleflow.safetensors", G=G)
    load_relevance(weights / "relevance.safetensors", G=G)
    with pytest.raises(CheckpointError):
        load_rig(shipped_weights_dir() / "rig.safetensors", G=G)
    assert load_encoder(weights / "restyle_encoder.safetensors").config["in_channels"] == 6
    # a rerun does nothing but say so
    capsys.readouterr()
    assert main(argv) == 0
    log = capsys.readouterr().out
    assert log.count("skipped") == len(REFIT) and "installed" not in log.split("{")[0]
    # and another generator is refused in that run folder
    with pytest.raises(InvalidArgumentError, match="another generator"):
        refit_world(WorldConfig(generator=str(shipped_weights_dir() / "generator.safetensors"), out=str(out),
                                weights=str(weights)), log=None)


def test_bench_commands_exist():
    """Every benchmark the refit asks for is one that ``python -m stylekit.bench`` (or the gallery's) runs."""
    from stylekit.bench import BENCHMARKS
    from stylekit.train.world import BENCH_COMMANDS

    names = [c.split()[3] for c in BENCH_COMMANDS if c.startswith("python -m stylekit.bench ")]
    assert names and set(names) <= set(BENCHMARKS)
    assert "python -m demos.bench_app" in BENCH_COMMANDS
