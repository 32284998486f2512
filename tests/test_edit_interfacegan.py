"""InterFaceGAN: boundary fitting, labelling from a scorer, conditional editing, direction files."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from stylekit.edit import interfacegan as ifg
from stylekit.edit.direction import Direction, edit, signed_distance
from stylekit.errors import CheckpointError, InvalidArgumentError
from stylekit.latent import Latent


def _planted(G, n=1200, seed=0):
    gen = torch.Generator().manual_seed(seed)
    lat = Latent.sample(G, n, seed=seed)
    w = lat.tensor[:, 0]
    d = torch.randn(G.w_dim, generator=gen)
    d = d / d.norm()
    score = (w - w.mean(0)) @ d + 0.05 * torch.randn(n, generator=gen) * w.std()
    return lat, d, (score > 0).float()


@pytest.mark.parametrize("method", ["svm", "logistic"])
def test_recovers_planted_direction(G, method):
    lat, d, labels = _planted(G)
    b = ifg.fit_boundary(lat, labels, method=method, validation_fraction=0.2, name="planted")
    assert b.vector.shape == (G.w_dim,)
    assert abs(float(b.vector.norm()) - 1) < 1e-5
    cos = float(b.vector @ d)
    assert cos > 0.9, cos
    assert b.meta["val_accuracy"] > 0.85
    # positive side = label 1
    dist = signed_distance(lat, b)
    assert ((dist > 0).float() == labels).float().mean() > 0.9


def test_edit_moves_signed_distance_by_strength(G):
    lat, _, labels = _planted(G, n=400)
    b = ifg.fit_boundary(lat, labels)
    x = Latent.from_seed(G, [3, 4])
    moved = ifg.edit(x, b, 2.5)
    assert moved.space == "w"
    torch.testing.assert_close(signed_distance(moved, b) - signed_distance(x, b), torch.full((2,), 2.5),
                               rtol=1e-4, atol=1e-4)
    only_mid = edit(x, b, 1.0, layers=[4, 5])
    assert only_mid.space == "w+"
    assert torch.equal(only_mid.tensor[:, :4], x.tensor[:, :4])
    for bad in (float("nan"), float("inf"), "a lot"):
        with pytest.raises(InvalidArgumentError):
            ifg.edit(x, b, bad)
    with pytest.raises(InvalidArgumentError, match="outside"):
        edit(x, b, 1.0, layers=[0, 40])


def test_per_layer_boundary_in_wplus(G):
    gen = torch.Generator().manual_seed(1)
    n = 800
    ws = torch.randn(n, G.num_ws, G.w_dim, generator=gen)
    d = torch.randn(G.w_dim, generator=gen)
    d = d / d.norm()
    labels = (ws[:, 2] @ d > 0).float()
    b = ifg.fit_boundary(Latent("w+", ws), labels)  # rows differ -> per layer automatically
    assert b.per_layer and b.vector.shape == (G.num_ws, G.w_dim)
    torch.testing.assert_close(b.vector.norm(dim=1), torch.ones(G.num_ws))
    cos = b.vector @ d
    assert cos[2] > 0.9
    assert cos.abs()[[0, 1, 3, 4, 5]].max() < 0.5
    with pytest.raises(InvalidArgumentError, match="per_layer=True"):
        ifg.fit_boundary(Latent("w+", ws), labels, per_layer=False)


def test_sample_and_label_keeps_confident_ends_and_edit_follows_scorer(G):
    def brightness(images):
        return images.mean(dim=(1, 2, 3))

    data = ifg.sample_and_label(G, brightness, 200, keep_fraction=0.2, seed=3, batch_size=50)
    assert data.latent.batch_size == 80 and data.labels.sum() == 40
    assert data.scores[data.labels == 1].min() >= data.scores[data.labels == 0].max()
    assert data.all_scores.shape == (200,)
    b = ifg.fit_boundary(data.latent, data.labels, name="bright")
    test = Latent.sample(G, 16, seed=99)
    with torch.no_grad():
        up = brightness(ifg.edit(test, b, 2.0).render(G))
        down = brightness(ifg.edit(test, b, -2.0).render(G))
    assert (up > down).float().mean() >= 0.9
    thr = ifg.sample_and_label(G, brightness, 60, threshold=float(data.all_scores.median()), seed=3)
    assert thr.latent.batch_size == 60


def test_conditional_editing_is_orthogonal_to_others(G):
    gen = torch.Generator().manual_seed(2)
    vecs = torch.randn(3, G.w_dim, generator=gen)
    p, o1, o2 = (Direction(v / v.norm(), name=nm, method="interfacegan", offset=0.0) for v, nm in zip(vecs, "pqr"))
    c = ifg.condition(p, [o1, o2])
    assert abs(float(c.vector.norm()) - 1) < 1e-5
    assert abs(float(c.vector @ o1.vector)) < 1e-5 and abs(float(c.vector @ o2.vector)) < 1e-5
    assert float(c.vector @ p.vector) > 0  # still points the primary way
    x = Latent.from_seed(G, [1, 2])
    moved = ifg.edit(x, c, 3.0)
    for o in (o1, o2):
        torch.testing.assert_close(signed_distance(moved, o), signed_distance(x, o), atol=1e-4, rtol=1e-4)
    with pytest.raises(InvalidArgumentError, match="span"):
        ifg.condition(p, [p])


def test_boundary_files_round_trip(G, tmp_path):
    lat, _, labels = _planted(G, n=300)
    b = ifg.fit_boundary(lat, labels, name="planted")
    for suffix in (".pt", ".safetensors"):
        path = ifg.save_boundary(b, tmp_path / f"b{suffix}")
        back = ifg.load_boundary(path, G=G)
        torch.testing.assert_close(back.vector, b.vector)
        assert back.name == "planted" and back.method == "interfacegan"
        assert abs(float(back.offset) - float(b.offset)) < 1e-6
    npy = ifg.save_boundary(b, tmp_path / "boundary.npy")
    assert np.load(npy).shape == (1, G.w_dim)  # InterFaceGAN's layout
    torch.testing.assert_close(ifg.load_boundary(npy).vector, b.vector)


def test_loads_published_e4e_pti_direction_tensors(G, tmp_path):
    gen = torch.Generator().manual_seed(0)
    for shape in ([1, G.w_dim], [G.w_dim], [G.num_ws, G.w_dim]):
        t = torch.randn(*shape, generator=gen) * 3
        torch.save(t, tmp_path / "age.pt")
        d = ifg.load_boundary(tmp_path / "age.pt", G=G)
        assert d.name == "age" and d.scale == 1.0
        expect = t.reshape(-1, G.w_dim)
        torch.testing.assert_close(d.vector.reshape(-1, G.w_dim), expect)
        x = Latent.from_seed(G, 1)
        moved = edit(x, d, 2.0)  # e4e/PTI: latent + factor * direction
        torch.testing.assert_close(moved.tensor, x.tensor + 2.0 * t.reshape(-1, G.w_dim).expand(G.num_ws, -1))
    torch.save(torch.randn(18, 512), tmp_path / "ffhq_smile.pt")
    with pytest.raises(InvalidArgumentError, match="another model"):
        ifg.load_boundary(tmp_path / "ffhq_smile.pt", G=G)


def test_bad_direction_files(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump(Evil(), f)
    with pytest.raises(CheckpointError, match="weights_only"):
        ifg.load_boundary(tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="no such"):
        ifg.load_boundary(tmp_path / "missing.npy")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(CheckpointError, match="unknown direction file type"):
        ifg.load_boundary(tmp_path / "x.txt")
    torch.save({"comp": torch.zeros(3)}, tmp_path / "pca.pt")
    with pytest.raises(CheckpointError, match="GANSpace"):
        ifg.load_boundary(tmp_path / "pca.pt")


def test_bad_labels_and_latents(G):
    lat = Latent.sample(G, 20, seed=0)
    with pytest.raises(InvalidArgumentError, match="0/1"):
        ifg.fit_boundary(lat, torch.rand(20))
    with pytest.raises(InvalidArgumentError, match="at least 2 positive"):
        ifg.fit_boundary(lat, torch.zeros(20))
    with pytest.raises(InvalidArgumentError, match="20 values"):
        ifg.fit_boundary(lat, torch.zeros(5))
    with pytest.raises(InvalidArgumentError, match="W/W\\+"):
        ifg.fit_boundary(lat.to_styles(G), torch.zeros(20))


def test_scorer_argument_errors():
    with pytest.raises(InvalidArgumentError, match="valid names are: .*glasses"):
        ifg.predictor_scorer("spectacles")
    with pytest.raises(InvalidArgumentError, match="same"):
        ifg.clip_scorer("a face", "a face")
    with pytest.raises(InvalidArgumentError, match="non-empty"):
        ifg.clip_scorer("", "a face")


def test_library_and_bench_fit_with_the_preset():
    """find_boundary, sample_and_label, fit_boundary and bench editing all default to edit.presets.INTERFACEGAN."""
    import argparse
    import dataclasses
    import inspect

    from stylekit.bench import editing
    from stylekit.edit.presets import INTERFACEGAN

    assert (INTERFACEGAN.n, INTERFACEGAN.keep_fraction, INTERFACEGAN.method) == (4000, 0.10, "svm")
    with pytest.raises(dataclasses.FrozenInstanceError):
        INTERFACEGAN.n = 10
    for fn in (ifg.find_boundary, ifg.sample_and_label):
        params = inspect.signature(fn).parameters
        assert params["n"].default == INTERFACEGAN.n and params["keep_fraction"].default == INTERFACEGAN.keep_fraction
    fit = inspect.signature(ifg.fit_boundary).parameters
    assert fit["method"].default == INTERFACEGAN.method and fit["regularization"].default == INTERFACEGAN.regularization
    parser = argparse.ArgumentParser()
    editing.add_arguments(parser)
    args = parser.parse_args([])
    assert (args.n_fit, args.keep_fraction) == (INTERFACEGAN.n, INTERFACEGAN.keep_fraction)
    params = inspect.signature(editing.evaluate).parameters
    assert (params["n_fit"].default, params["keep_fraction"].default) == (INTERFACEGAN.n, INTERFACEGAN.keep_fraction)
