"""Latent arithmetic: lerp/slerp, layer presets, style mixing, analogies, truncation."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_stylegan2
from stylekit.edit import arithmetic as A
from stylekit.edit.layers import describe_layers, layer_presets, resolve_layers, ws_resolutions
from stylekit.errors import InvalidArgumentError
from stylekit.latent import Latent


def test_lerp_endpoints_equal_inputs(G):
    a = Latent.from_seed(G, 1)
    b = Latent.from_seed(G, 2).to_wplus(G)
    torch.testing.assert_close(A.lerp(a, b, 0.0).tensor, a.tensor)
    torch.testing.assert_close(A.lerp(a, b, 1.0).tensor, b.tensor)
    mid = A.lerp(a, b, 0.5)
    assert mid.space == "w+"  # W with W+ gives W+
    torch.testing.assert_close(mid.tensor, (a.tensor + b.tensor) / 2)
    sa, sb = a.to_styles(G), b.to_styles(G)
    for x, y in zip(A.lerp(sa, sb, 1.0).tensor, sb.tensor):
        torch.testing.assert_close(x, y)


def test_lerp_per_code_weights_and_broadcast(G):
    a = Latent.from_seed(G, 1)
    b = Latent.from_seed(G, [2, 3, 4])
    out = A.lerp(a, b, torch.tensor([0.0, 0.5, 1.0]))
    assert out.batch_size == 3 and out.space == "w"
    torch.testing.assert_close(out.tensor[0], a.tensor[0])
    torch.testing.assert_close(out.tensor[2], b.tensor[2])


def test_slerp_keeps_norm_and_endpoints(G):
    gen = torch.Generator().manual_seed(0)
    za = torch.randn(4, G.z_dim, generator=gen)
    zb = torch.randn(4, G.z_dim, generator=gen)
    zb = zb / zb.norm(dim=1, keepdim=True) * za.norm(dim=1, keepdim=True)  # equal norms
    a, b = Latent("z", za), Latent("z", zb)
    for t in (0.0, 0.25, 0.5, 0.9, 1.0):
        out = A.slerp(a, b, t)
        torch.testing.assert_close(out.tensor.norm(dim=1), za.norm(dim=1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(A.slerp(a, b, 0.0).tensor, za, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(A.slerp(a, b, 1.0).tensor, zb, rtol=1e-5, atol=1e-5)
    # the angle moves linearly
    mid = A.slerp(a, b, 0.5).tensor
    ang = lambda x, y: torch.arccos((x * y).sum(1) / (x.norm(dim=1) * y.norm(dim=1)))
    torch.testing.assert_close(ang(za, mid), ang(mid, zb), rtol=1e-4, atol=1e-4)
    # a plain lerp would shrink the norm
    assert (A.lerp(a, b, 0.5).tensor.norm(dim=1) < za.norm(dim=1) - 1e-3).all()


def test_interpolation_frames(G):
    a, b = Latent("z", Latent.seed_z(G, 1)), Latent("z", Latent.seed_z(G, 2))
    frames = A.interpolation_frames(a, b, 5)
    assert len(frames) == 5
    torch.testing.assert_close(frames[0].tensor, a.tensor, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(frames[-1].tensor, b.tensor, rtol=1e-5, atol=1e-5)
    # auto chose slerp in Z: norms stay between the two ends
    norms = torch.stack([f.tensor.norm() for f in frames])
    lo, hi = sorted([a.tensor.norm().item(), b.tensor.norm().item()])
    assert (norms >= lo - 1e-4).all() and (norms <= hi + 1e-4).all()
    with pytest.raises(InvalidArgumentError, match=">= 2"):
        A.interpolation_frames(a, b, 1)


@pytest.mark.parametrize("res, expected", [
    (16, {"coarse": (0, 1, 2, 3), "middle": (4, 5), "fine": ()}),
    (64, {"coarse": (0, 1, 2, 3), "middle": (4, 5, 6, 7), "fine": (8, 9)}),
    (1024, {"coarse": (0, 1, 2, 3), "middle": (4, 5, 6, 7), "fine": tuple(range(8, 18))}),
])
def test_presets_cover_all_layers_without_overlap(res, expected):
    G = tiny_stylegan2(img_resolution=res, channel_base=2 ** 14, channel_max=4, w_dim=8, z_dim=8)
    presets = layer_presets(G)
    assert presets == expected
    union = [i for p in presets.values() for i in p]
    assert sorted(union) == list(range(G.num_ws)) and len(union) == len(set(union))
    # resolutions never decrease along W+
    res_list = ws_resolutions(G)
    assert all(x <= y for x, y in zip(res_list, res_list[1:]))


def test_resolve_layers_forms_and_errors(G):
    assert resolve_layers(G, None) == tuple(range(G.num_ws))
    assert resolve_layers(G, "2-4") == (2, 3, 4)
    assert resolve_layers(G, range(1, 3)) == (1, 2)
    assert resolve_layers(G, slice(4, None)) == (4, 5)
    assert resolve_layers(G, "coarse+middle") == tuple(range(6))
    with pytest.raises(InvalidArgumentError, match="outside this generator's W\\+ layers 0-5"):
        resolve_layers(G, [0, 9])
    with pytest.raises(InvalidArgumentError, match="no 'fine' layers"):
        resolve_layers(G, "fine")
    with pytest.raises(InvalidArgumentError, match="unknown layer choice"):
        resolve_layers(G, "eyes")
    assert "coarse 0-3" in describe_layers(G)


def test_style_mix_and_crossover(G):
    a, b = Latent.from_seed(G, 1), Latent.from_seed(G, 2)
    mixed = A.style_mix(G, a, b, "coarse")
    assert mixed.space == "w+"
    torch.testing.assert_close(mixed.tensor[:, :4], b.tensor[:, :4])
    torch.testing.assert_close(mixed.tensor[:, 4:], a.tensor[:, 4:])
    cross = A.crossover(G, a, b, 2)
    torch.testing.assert_close(cross.tensor[:, :2], a.tensor[:, :2])
    torch.testing.assert_close(cross.tensor[:, 2:], b.tensor[:, 2:])
    with pytest.raises(InvalidArgumentError, match="crossover point"):
        A.crossover(G, a, b, G.num_ws)


def test_mixing_grid(G):
    rows = Latent.from_seed(G, [1, 2])
    cols = [Latent.from_seed(G, 3), Latent.from_seed(G, 4), Latent.from_seed(G, 5)]
    grid = A.mixing_grid(G, rows, cols, "middle")
    assert grid.images.shape == (2, 3, 3, 16, 16)
    assert grid.row_images.shape == (2, 3, 16, 16) and grid.col_images.shape == (3, 3, 16, 16)
    expect = A.style_mix(G, rows.select(1), cols[2], "middle").render(G)
    torch.testing.assert_close(grid.images[1, 2], expect[0])


def test_analogy_arithmetic(G):
    w1, w2, w3 = (Latent.from_seed(G, s) for s in (1, 2, 3))
    out = A.analogy(G, w1, w2, w3)
    assert out.space == "w"
    torch.testing.assert_close(out.tensor, w1.tensor + (w3.tensor - w2.tensor))
    half = A.analogy(G, w1, w2, w3, strength=0.5, layers="middle")
    assert half.space == "w+"
    torch.testing.assert_close(half.tensor[:, 4:], (w1.tensor + 0.5 * (w3.tensor - w2.tensor))[:, 4:])
    torch.testing.assert_close(half.tensor[:, :4], w1.tensor[:, :4])
    # identity: analogy of a code onto itself gives the target back
    torch.testing.assert_close(A.analogy(G, w1, w2, w2).tensor, w1.tensor)


def test_truncation_cutoff_leaves_later_layers(G):
    lat = Latent.from_seed(G, [1, 2])
    out = A.truncate(G, lat, 0.5, cutoff=3)
    avg = G.w_avg
    torch.testing.assert_close(out.tensor[:, :3], avg + 0.5 * (lat.tensor[:, :3] - avg))
    assert torch.equal(out.tensor[:, 3:], lat.tensor[:, 3:])
    # same as the mapping network's own truncation
    z = Latent.seed_z(G, [1, 2])
    torch.testing.assert_close(out.tensor, G.mapping(z, None, truncation_psi=0.5, truncation_cutoff=3))
    full = A.truncate(G, lat, 0.0)
    assert full.space == "w"
    torch.testing.assert_close(full.tensor, avg.expand_as(lat.tensor))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "strong", True])
def test_non_finite_or_odd_strengths_raise(G, bad):
    a, b = Latent.from_seed(G, 1), Latent.from_seed(G, 2)
    with pytest.raises(InvalidArgumentError):
        A.lerp(a, b, bad)
    with pytest.raises(InvalidArgumentError):
        A.analogy(G, a, a, b, strength=bad)
    with pytest.raises(InvalidArgumentError):
        A.truncate(G, a, bad)


def test_mismatched_shapes_raise(G):
    a = Latent.from_seed(G, 1)
    other = Latent("w+", torch.zeros(1, 18, 512))
    with pytest.raises(InvalidArgumentError, match="different"):
        A.lerp(a, other, 0.5)
    with pytest.raises(InvalidArgumentError, match="18 layers of 512"):
        A.style_mix(G, a, other)
    with pytest.raises(InvalidArgumentError, match="cannot combine 2 codes with 3"):
        A.lerp(Latent.from_seed(G, [1, 2]), Latent.from_seed(G, [1, 2, 3]), 0.5)
    same = A.lerp(a, a, 0.3)              # between a code and itself there is only that code
    assert same.space == a.space and torch.allclose(same.tensor, a.tensor)
