"""GANSpace (PCA of W) and SeFa (closed-form factorisation of the style affines)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stylekit.edit import ganspace as gs
from stylekit.edit import sefa as sf
from stylekit.edit.direction import edit
from stylekit.errors import CheckpointError, InvalidArgumentError
from stylekit.latent import Latent


@pytest.fixture(scope="module")
def pca(G):
    return gs.fit_pca(G, n_samples=3000, n_components=None)


# ----------------------------------------------------------------------------------------------
# GANSpace


def test_components_orthonormal_and_variance_sorted(G, pca):
    c = pca.components
    assert c.shape == (G.w_dim, G.w_dim)
    torch.testing.assert_close(c @ c.t(), torch.eye(G.w_dim), atol=1e-5, rtol=0)
    r = pca.explained_variance_ratio
    assert (r[:-1] >= r[1:] - 1e-7).all()
    assert abs(float(r.sum()) - 1) < 1e-4  # all components: the whole variance
    assert (pca.stdev[:-1] >= pca.stdev[1:] - 1e-6).all()
    # stdev is the spread of the samples' coordinates
    w = Latent.sample(G, 3000, seed=0).tensor[:, 0]
    torch.testing.assert_close(((w - pca.mean) @ c[0]).std(), pca.stdev[0], rtol=1e-3, atol=1e-5)


def test_pca_finds_planted_axis_and_lowrank_agrees():
    gen = torch.Generator().manual_seed(0)
    axis = torch.randn(32, generator=gen)
    axis /= axis.norm()
    codes = torch.randn(2000, 32, generator=gen) * 0.3 + torch.randn(2000, 1, generator=gen) * 3 * axis + 5
    exact = gs.pca_from_codes(codes, 4)
    assert float((exact.components[0] @ axis).abs()) > 0.99
    fast = gs.pca_from_codes(codes, 4, method="lowrank")
    assert float((fast.components[0] @ exact.components[0]).abs()) > 0.999
    torch.testing.assert_close(fast.stdev[0], exact.stdev[0], rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(exact.mean, codes.mean(0), rtol=1e-5, atol=1e-5)


def test_component_edit_add_and_set(G, pca):
    lat = Latent.from_seed(G, [1, 2])
    before = gs.component_coordinates(lat, pca)
    out = gs.edit_components(lat, pca, {2: 1.5}, layers="coarse", G=G)
    after = gs.component_coordinates(out, pca)
    torch.testing.assert_close(after[:, :4, 2] - before[:, :4, 2], torch.full((2, 4), 1.5), atol=1e-4, rtol=0)
    assert torch.equal(out.tensor[:, 4:], lat.tensor[:, 4:])
    torch.testing.assert_close(after[:, :4, 3], before[:, :4, 3], atol=1e-4, rtol=0)  # other components untouched
    put = gs.edit_components(lat, pca, [(0, -2.0, "middle")], mode="set", G=G)
    torch.testing.assert_close(gs.component_coordinates(put, pca)[:, 4:, 0], torch.full((2, 2), -2.0),
                               atol=1e-4, rtol=0)
    d = gs.component_direction(pca, 1)
    assert d.scale == pytest.approx(float(pca.stdev[1]))
    moved = edit(lat, d, 1.0)
    assert moved.space == "w"
    with pytest.raises(InvalidArgumentError, match="component 99"):
        gs.edit_components(lat, pca, {99: 1.0})
    with pytest.raises(InvalidArgumentError, match="finite"):
        gs.edit_components(lat, pca, {0: float("nan")})
    with pytest.raises(InvalidArgumentError, match="outside"):
        gs.edit_components(lat, pca, [(0, 1.0, [0, 50])], G=G)


def test_components_files(G, pca, tmp_path):
    path = gs.save_components(pca, tmp_path / "g.npz")
    with np.load(path) as data:
        assert data["lat_comp"].shape == (G.w_dim, 1, G.w_dim)  # GANSpace layout [K, 1, w_dim]
        assert data["lat_mean"].shape == (1, G.w_dim) and data["lat_stdev"].shape == (G.w_dim,)
    back = gs.load_components(path, G=G)
    torch.testing.assert_close(back.components, pca.components)
    torch.testing.assert_close(back.stdev, pca.stdev)
    torch.testing.assert_close(back.explained_variance_ratio, pca.explained_variance_ratio)
    # e4e / PTI ffhq_pca.pt layout
    torch.save({"comp": pca.components[:5, None], "mean": pca.mean[None], "std": pca.stdev[:5]}, tmp_path / "p.pt")
    e4e = gs.load_components(tmp_path / "p.pt", G=G)
    assert e4e.n_components == 5
    torch.testing.assert_close(e4e.components, pca.components[:5])
    np.savez(tmp_path / "bad.npz", comp=np.zeros((3, 4)))
    with pytest.raises(CheckpointError, match="lat_comp"):
        gs.load_components(tmp_path / "bad.npz")
    np.savez(tmp_path / "ffhq.npz", lat_comp=np.zeros((3, 1, 512), np.float32) + 1,
             lat_mean=np.zeros((1, 512), np.float32), lat_stdev=np.ones(3, np.float32))
    with pytest.raises(InvalidArgumentError, match="w_dim 512"):
        gs.load_components(tmp_path / "ffhq.npz", G=G)


# ----------------------------------------------------------------------------------------------
# SeFa


def _independent_A(G, names):
    rows = []
    for name in names:
        block, layer = name.split(".")
        w = getattr(getattr(G.synthesis, block), layer).affine.weight.detach().double()
        rows.append(w / w.norm(dim=1, keepdim=True))
    return torch.cat(rows)


def test_sefa_directions_are_eigenvectors(G):
    f = sf.sefa(G, k=5)
    assert f.style_layers == tuple(sl.name for sl in G.style_layers if sl.kind == "conv")
    a = _independent_A(G, f.style_layers)
    ata = a.t() @ a
    for v, lam in zip(f.directions.double(), f.eigenvalues.double()):
        torch.testing.assert_close(ata @ v, lam * v, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(f.directions @ f.directions.t(), torch.eye(5), atol=1e-5, rtol=0)
    assert (f.eigenvalues[:-1] >= f.eigenvalues[1:]).all()
    # the first direction changes the styles most: no random unit vector beats it
    rand = torch.randn(200, G.w_dim, dtype=torch.float64)
    rand /= rand.norm(dim=1, keepdim=True)
    assert float((rand @ a.t()).square().sum(1).max()) <= float(f.eigenvalues[0]) + 1e-6


def test_sefa_layers_restrict_the_edit(G):
    f = sf.sefa(G, layers="coarse", k=3)
    assert f.layers == (0, 1, 2, 3)
    # row 3 feeds both b8.torgb (not a conv) and b16.conv0
    assert f.style_layers == ("b4.conv1", "b8.conv0", "b8.conv1", "b16.conv0")
    d = sf.sefa_direction(f, 0)
    lat = Latent.from_seed(G, 4)
    out = edit(lat, d, 3.0)
    assert out.space == "w+"
    changed = (out.tensor - lat.tensor).abs().sum(-1)[0] > 0
    assert changed.nonzero().flatten().tolist() == list(f.layers)
    torch.testing.assert_close((out.tensor - lat.tensor)[0, f.layers[0]].norm(), torch.tensor(3.0))
    with pytest.raises(InvalidArgumentError, match="SeFa direction 7"):
        sf.sefa_direction(f, 7)
    with pytest.raises(InvalidArgumentError, match="k must be"):
        sf.sefa(G, k=0)
    with pytest.raises(InvalidArgumentError, match="no conv style layers"):
        sf.sefa(G, layers=[5])  # row 5 feeds only the last ToRGB
