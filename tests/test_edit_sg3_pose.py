"""StyleGAN3 pose controls and the rotation direction; the other edits on a StyleGAN3 (conformance fixture)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from conftest import tiny_stylegan2, tolerance_ok
from stylekit.edit import sg3_pose as P
from stylekit.edit.arithmetic import style_mix
from stylekit.edit.direction import edit
from stylekit.edit.layers import layer_presets
from stylekit.edit.sefa import sefa
from stylekit.errors import InvalidArgumentError
from stylekit.latent import Latent


@pytest.fixture(scope="module")
def sg3():
    from conftest import fixture_file
    import stylekit

    return stylekit.load_generator(fixture_file("nvidia/sg3t_small.pkl")), np.load(fixture_file("nvidia/sg3t_small_ref.npz"))


@pytest.fixture(scope="module")
def sg3_posed(sg3):
    """The fixture with random (small) input-affine weights, like a trained model whose pose depends on W."""
    G = copy.deepcopy(sg3[0])
    with torch.no_grad():
        G.synthesis.input.affine.weight.copy_(torch.randn(G.synthesis.input.affine.weight.shape,
                                                          generator=torch.Generator().manual_seed(0)) * 0.1)
    return G


def test_render_pose_matches_official_user_transform(sg3):
    G, ref = sg3
    lat = Latent("w+", torch.from_numpy(ref["ws"][:1]))
    with torch.no_grad():
        img = P.render_pose(G, lat, rotate=15, translate=(0.1, -0.05))
        plain = P.render_pose(G, lat)
    ok, err, bound = tolerance_ok(img.numpy(), ref["img_rot15_t010_m005"][:1])
    assert ok, (err, bound)
    ok, err, bound = tolerance_ok(plain.numpy(), ref["img"][:1])
    assert ok, (err, bound)


def test_input_affine_rotation_has_render_pose_sign(sg3):
    G = sg3[0]
    g0, g1 = copy.deepcopy(G), copy.deepcopy(G)
    phi = 20.0
    with torch.no_grad():
        g0.synthesis.input.affine.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        r = np.deg2rad(phi)
        g1.synthesis.input.affine.bias.copy_(torch.tensor([np.cos(r), np.sin(r), 0.0, 0.0], dtype=torch.float32) * 1.3)
    lat = Latent.from_seed(G, 1)
    torch.testing.assert_close(P.input_pose(g1, lat)["rotation"], torch.tensor([phi]))
    with torch.no_grad():
        err = (P.render_pose(g0, lat, rotate=phi) - lat.render(g1)).abs().max()
    assert float(err) < 1e-4


def test_rotation_direction_turns_the_input_by_strength_degrees(sg3_posed):
    G = sg3_posed
    dirs = P.fit_pose_directions(G, n_samples=1500)
    rot = dirs["rotation"]
    assert rot.layers == (0,) and rot.meta["r2"] > 0.9
    lat = Latent.from_seed(G, [1, 2, 3])
    moved = edit(lat, rot, 5.0)
    assert torch.equal(moved.tensor[:, 1:], lat.tensor[:, 1:])  # only the input's row changes
    before, after = P.input_pose(G, lat), P.input_pose(G, moved)
    delta = after["rotation"] - before["rotation"]
    assert ((delta > 4.0) & (delta < 6.0)).all(), delta
    assert float((after["translate"] - before["translate"]).abs().max()) < 0.01  # pure: no shift
    shift = edit(lat, dirs["translate_x"], 0.05)
    dshift = P.input_pose(G, shift)["translate"] - before["translate"]
    assert ((dshift[:, 0] > 0.04) & (dshift[:, 0] < 0.06)).all(), dshift
    with torch.no_grad():
        assert not torch.allclose(moved.select(0).render(G), lat.select(0).render(G))


def test_pose_errors(sg3):
    G = sg3[0]
    with pytest.raises(InvalidArgumentError, match="does not depend on W"):
        P.fit_pose_directions(G, n_samples=200)  # the fixture's input affine weights are zero (untrained)
    lat = Latent.from_seed(G, 1)
    with pytest.raises(InvalidArgumentError, match="finite"):
        P.render_pose(G, lat, rotate=float("nan"))
    with pytest.raises(InvalidArgumentError, match="pair"):
        P.render_pose(G, lat, translate=0.1)
    g2 = tiny_stylegan2()
    with pytest.raises(InvalidArgumentError, match="need a StyleGAN3"):
        P.render_pose(g2, Latent.from_seed(g2, 1), rotate=10)
    with pytest.raises(InvalidArgumentError, match="at least one angle"):
        P.rotation_sweep(G, lat, [])


def test_rotation_sweep_shapes(sg3):
    G = sg3[0]
    frames = P.rotation_sweep(G, Latent.from_seed(G, 2), [0, 90])
    assert frames.shape == (2, 1, 3, 64, 64)
    assert not torch.allclose(frames[0], frames[1])


def test_other_edits_on_stylegan3(sg3):
    G = sg3[0]
    presets = layer_presets(G)
    union = [i for p in presets.values() for i in p]
    assert sorted(union) == list(range(G.num_ws)) and len(union) == len(set(union))
    assert 0 in presets["coarse"] and G.num_ws - 1 in presets["fine"]
    f = sefa(G, layers="coarse", k=3)
    assert f.directions.shape == (3, G.w_dim) and "input" not in f.style_layers
    a, b = Latent.from_seed(G, 1), Latent.from_seed(G, 2)
    mixed = style_mix(G, a, b, "fine")
    assert torch.equal(mixed.tensor[:, presets["fine"]], b.tensor[:, presets["fine"]])
