"""StyleCLIP latent mapper: layout sized from the generator, training, instant edits, files."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_stylegan2
from stylekit.errors import CheckpointError, InvalidArgumentError
from stylekit.latent import Latent
from stylekit.text import LatentMapper, apply_mapper, load_mapper, save_mapper, train_mapper
from stylekit.text.mapper import mapper_groups


@pytest.fixture(scope="module")
def trained(G, clip):
    return train_mapper(G, "a face with glasses", clip=clip, steps=40, batch_size=4, lr=2e-3, l2_weight=0.0)


def test_groups_follow_styleclip_split():
    assert mapper_groups(18) == {"coarse": (0, 1, 2, 3), "medium": (4, 5, 6, 7), "fine": tuple(range(8, 18))}
    assert mapper_groups(10)["fine"] == (8, 9)
    assert mapper_groups(6) == {"coarse": (0, 1, 2, 3), "medium": (4, 5)}
    ffhq = LatentMapper(18, 512)
    assert sum(p.numel() for p in ffhq.parameters()) == 3 * 4 * (512 * 512 + 512)
    small = LatentMapper(6, 16, depth=2)
    assert set(small.mappers) == {"coarse", "medium"}


def test_inactive_groups_leave_their_rows_alone(G):
    mapper = LatentMapper(G.num_ws, G.w_dim, groups=("medium",))   # the tiny G has 6 rows: no fine group
    for p in mapper.parameters():
        torch.nn.init.normal_(p)
    ws = Latent.sample(G, 2, seed=1).ws(G)
    with torch.no_grad():
        out = mapper(ws)
    fine = list(mapper.rows["medium"])
    coarse_medium = [i for i in range(G.num_ws) if i not in fine]
    assert torch.equal(out[:, coarse_medium], ws[:, coarse_medium])
    assert float((out[:, fine] - ws[:, fine]).abs().max()) > 1e-3
    with pytest.raises(InvalidArgumentError, match="groups"):
        LatentMapper(G.num_ws, G.w_dim, groups=("tiny",))
    with pytest.raises(InvalidArgumentError, match="none in groups"):
        LatentMapper(4, 8, groups=("fine",))


def test_training_moves_codes_toward_the_prompt(G, clip, trained):
    mapper, history = trained
    assert len(history["clip"]) == 40
    lat = Latent.sample(G, 6, seed=123)
    edited = apply_mapper(mapper, lat, G=G)
    assert edited.space == "w+"
    with torch.no_grad():
        before = clip.similarity(lat.render(G), "a face with glasses").mean()
        after = clip.similarity(edited.render(G), "a face with glasses").mean()
    assert after > before + 1e-3
    untrained = LatentMapper(G.num_ws, G.w_dim)
    with torch.no_grad():   # the last layer starts near zero: an untrained mapper barely moves a code
        assert float((untrained(lat.ws(G)) - lat.ws(G)).abs().max()) < 0.05
    zero = apply_mapper(mapper, lat, G=G, strength=0.0)
    assert torch.equal(zero.tensor, lat.ws(G))


def test_save_load_roundtrip_and_refusals(G, trained, tmp_path):
    mapper, _ = trained
    path = save_mapper(mapper, tmp_path / "glasses.safetensors")
    back = load_mapper(path, G=G)
    lat = Latent.sample(G, 2, seed=5)
    assert torch.equal(apply_mapper(back, lat, G=G).tensor, apply_mapper(mapper, lat, G=G).tensor)
    assert back.meta["prompt"] == "a face with glasses" and back.meta["clip_name"] == "toyfaces"
    with pytest.raises(CheckpointError, match="another generator"):
        load_mapper(path, G=tiny_stylegan2(seed=1))
    with pytest.raises(CheckpointError, match="another model"):
        load_mapper(path, G=tiny_stylegan2(w_dim=8, z_dim=8))
    with pytest.raises(CheckpointError, match="no such mapper file"):
        load_mapper(tmp_path / "missing.safetensors")
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="not a stylekit latent mapper"):
        load_mapper(tmp_path / "other.safetensors")


def test_apply_errors(G, trained):
    mapper, _ = trained
    with pytest.raises(InvalidArgumentError, match="StyleSpace"):
        apply_mapper(mapper, Latent.sample(G, 1).to_styles(G), G=G)
    with pytest.raises(InvalidArgumentError, match="LatentMapper"):
        apply_mapper(object(), Latent.sample(G, 1), G=G)
    other = tiny_stylegan2(w_dim=8, z_dim=8)
    with pytest.raises(InvalidArgumentError):
        apply_mapper(mapper, Latent.sample(other, 1), G=other)
