"""`python -m stylekit convert / info / generate / models` and the canonical format round trip."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import stylekit
from stylekit.checkpoints.canonical import read_canonical, save_generator
from stylekit.cli import main, parse_seeds
from stylekit.errors import CheckpointError, InvalidArgumentError

from conftest import tiny_stylegan2


def _outputs(G, seed=0):
    z = torch.from_numpy(np.random.RandomState(seed).randn(3, G.z_dim)).float()
    with torch.no_grad():
        ws = G.mapping(z, None, truncation_psi=0.7)
        return ws, G.synthesis(ws, noise_mode="const")


def test_parse_seeds():
    assert parse_seeds("0-3,10,12-13") == [0, 1, 2, 3, 10, 12, 13]
    for bad in ("", "a", "5-2", "-3"):
        with pytest.raises(InvalidArgumentError):
            parse_seeds(bad)


def test_seed_z_matches_official_recipe():
    from stylekit.latent import Latent

    G = tiny_stylegan2(seed=1)  # the CLI's generate draws z with Latent.seed_z
    z = Latent.seed_z(G, [7])
    assert np.allclose(z.numpy()[0], np.random.RandomState(7).randn(G.z_dim).astype(np.float32))


def test_canonical_round_trip_is_identical(tmp_path):
    G = tiny_stylegan2(seed=1)
    path = save_generator(G, tmp_path / "tiny.safetensors", extra_metadata={"note": "test"})
    arch, config, state, meta = read_canonical(path)
    assert arch == "stylegan2" and meta["note"] == "test" and config == json.loads(json.dumps(G.config))
    G2 = stylekit.load_generator(path)
    for a, b in zip(_outputs(G), _outputs(G2)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", ["nvidia/sg2_small.pkl", "nvidia/sg3t_small.pkl", "nvidia/sg3r_small.pkl",
                                  "rosinality/ros_small.pt"])
def test_convert_then_load_gives_identical_outputs(tmp_path, fixtures_dir, name, capsys):
    src = fixtures_dir / name
    out = tmp_path / "converted.safetensors"
    assert main(["convert", str(src), str(out)]) == 0
    G_src, G_out = stylekit.load_generator(src), stylekit.load_generator(out)
    assert G_out.arch == G_src.arch
    for a, b in zip(_outputs(G_src), _outputs(G_out)):
        assert torch.equal(a, b)
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert G_src.arch in text and "style layers" in text


def test_info_json(tmp_path, capsys):
    G = tiny_stylegan2()
    path = save_generator(G, tmp_path / "g.safetensors")
    assert main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["arch"] == "stylegan2" and info["img_resolution"] == 16 and info["num_ws"] == G.num_ws
    assert [layer[0] for layer in info["style_layers"]] == [s.name for s in G.style_layers]


def test_generate_grid_offline_on_a_file(tmp_path):
    path = save_generator(tiny_stylegan2(), tmp_path / "g.safetensors")
    out = tmp_path / "grid.png"
    result = subprocess.run([sys.executable, "-m", "stylekit", "generate", "--model", str(path), "--seeds", "0-7",
                             "--psi", "0.7", "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    grid = Image.open(out)
    assert grid.size == (3 * 16 + 4 * 2, 3 * 16 + 4 * 2)  # 8 images -> 3x3 tiles with 2 px padding
    assert np.asarray(grid).std() > 5


def test_cli_errors_are_one_line_messages(tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    assert main(["info", str(bad)]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["generate", "--model", "no-such-model", "--seeds", "0"]) == 2
    with pytest.raises(CheckpointError):
        read_canonical(bad)


def test_safetensors_without_metadata_says_convert(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match="stylekit convert"):
        stylekit.load_generator(path)


def test_wrong_shapes_name_the_tensor(tmp_path):
    G = tiny_stylegan2()
    path = save_generator(G, tmp_path / "g.safetensors")
    arch, config, state, meta = read_canonical(path)
    from safetensors.torch import save_file

    state["synthesis.b8.conv0.weight"] = torch.zeros(3, 3, 3, 3)
    save_file(state, str(path), metadata=meta)
    with pytest.raises(CheckpointError, match="synthesis.b8.conv0.weight"):
        stylekit.load_generator(path)
