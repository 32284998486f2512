"""Translation equivariance: StyleGAN2's input-grid shift, EQ-T, the texture-sticking frames, bad input."""

from __future__ import annotations

import pytest
import torch

from stylekit.edit.equivariance import eq_t, random_shifts, shift_image, sticking_frames, translated
from stylekit.errors import InvalidArgumentError


@pytest.fixture(scope="module")
def toyfaces():
    from stylekit import load_generator

    return load_generator("toyfaces")


def _tiny_sg3():
    from stylekit.networks.stylegan3 import StyleGAN3Generator

    torch.manual_seed(0)
    return StyleGAN3Generator(dict(z_dim=16, w_dim=16, img_resolution=32, channel_base=2048, channel_max=32,
                                   num_layers=6, mapping_kwargs=dict(num_layers=2))).eval()


def test_stylegan2_input_shift_is_a_periodic_shift_of_the_constant(toyfaces):
    """translate=(k/4, 0) of the 4x4 constant is a roll by k of its pixels; a whole period changes nothing;
    (0, 0) is the plain network."""
    from stylekit.networks.stylegan2 import _shift_periodic

    x = torch.randn(3, 4, 4)
    assert torch.allclose(_shift_periodic(x, (0.25, 0.0)), torch.roll(x, 1, dims=2), atol=1e-5)
    assert torch.allclose(_shift_periodic(x, (0.0, -0.5)), torch.roll(x, -2, dims=1), atol=1e-5)
    ws = toyfaces.mapping(torch.randn(2, toyfaces.z_dim), None)
    with torch.no_grad():
        plain = toyfaces.synthesis(ws, noise_mode="const")
        assert torch.equal(plain, toyfaces.synthesis(ws, noise_mode="const", translate=(0, 0)))
        assert torch.allclose(plain, toyfaces.synthesis(ws, noise_mode="const", translate=(1.0, 0)), atol=1e-4)
        assert not torch.allclose(plain, toyfaces.synthesis(ws, noise_mode="const", translate=(0.1, 0)), atol=1e-3)
    with pytest.raises(InvalidArgumentError, match="translate"):
        toyfaces.synthesis(ws, translate=(float("nan"), 0))


def test_shift_image_and_random_shifts():
    img = torch.arange(16.0).view(1, 1, 4, 4)
    moved, (rows, cols) = shift_image(img, (1, -1))
    assert moved[0, 0, 0, 1] == img[0, 0, 1, 0]            # content moved right by one and up by one
    assert (rows, cols) == (slice(0, 3), slice(1, 4))
    with pytest.raises(InvalidArgumentError):
        shift_image(img, (4, 0))
    shifts = random_shifts(64, 50, seed=1)
    assert len(shifts) == 50 and (0, 0) not in shifts and max(max(abs(a), abs(b)) for a, b in shifts) <= 8
    assert shifts == random_shifts(64, 50, seed=1)


def test_eq_t_separates_stylegan3_from_stylegan2(toyfaces):
    """A StyleGAN3 translates (integer shifts) nearly exactly; the toyfaces StyleGAN2 sticks to its grid."""
    G3 = _tiny_sg3()
    ws3 = G3.mapping(torch.randn(3, 16), None)
    moved, (rows, cols) = shift_image(G3.synthesis(ws3), (3, 0))
    assert (translated(G3, ws3, (3, 0)) - moved)[..., rows, cols].abs().max() < 1e-3   # content moves right
    sg3 = eq_t(G3, ws3, random_shifts(32, 4))
    sg2 = eq_t(toyfaces, toyfaces.mapping(torch.randn(3, toyfaces.z_dim), None), random_shifts(64, 4))
    assert sg3.eq_t_db > 40 > 30 > sg2.eq_t_db
    assert sg2.per_code_db.shape == (3,) and sg2.as_dict()["shifts"] == 4


def test_sticking_frames_and_bad_input(toyfaces):
    ws = toyfaces.mapping(torch.randn(1, toyfaces.z_dim), None)
    frames, average = sticking_frames(toyfaces, ws, steps=3)
    assert frames.shape == (3, 1, 3, 64, 64) and torch.allclose(average, frames.mean(0))
    with pytest.raises(InvalidArgumentError, match="steps"):
        sticking_frames(toyfaces, ws, steps=1)
    with pytest.raises(InvalidArgumentError, match="max_shift_px"):
        sticking_frames(toyfaces, ws, max_shift_px=1000)
    with pytest.raises(InvalidArgumentError, match="at least one"):
        eq_t(toyfaces, ws, [])
    with pytest.raises(InvalidArgumentError, match="StyleGAN2 and StyleGAN3"):
        eq_t(object(), ws, [(1, 0)])


def test_bench_equivariance_reports_eq_t(tmp_path):
    import json

    from stylekit.bench.__main__ import main

    out = tmp_path / "eq.json"
    main(["equivariance", "--models", "toyfaces", "--n", "4", "--shifts", "2", "--json", str(out)])
    metrics = json.loads(out.read_text())
    assert metrics["report_seed_start"] == 7_900_000 and metrics["toyfaces_eq_t_code_db_n"] == 4
    assert 5 < metrics["toyfaces_eq_t_db"] < 30


@pytest.mark.parametrize("arch", ["stylegan2", "stylegan3"])
def test_codes_may_be_latents_of_any_space(toyfaces, arch):
    """A W+ tensor, its Latent and the Latent's StyleSpace form give the same frames and EQ-T (the gallery
    passes the session latent, which may be an S code after a StyleSpace edit)."""
    from stylekit.latent import Latent

    G = toyfaces if arch == "stylegan2" else _tiny_sg3()
    lat = Latent.from_seed(G, 3, psi=0.7, space="w+")
    ws = lat.ws(G)
    s_code = lat.to_styles(G)
    assert s_code.space == "s"
    shifts = random_shifts(G.img_resolution, 2, seed=1)
    want = eq_t(G, ws, shifts).eq_t_db
    frames, _ = sticking_frames(G, ws, steps=2)
    assert eq_t(G, ws, shifts, base=translated(G, ws, (0, 0))).eq_t_db == want  # the caller's own render
    for codes in (lat, s_code):
        assert abs(eq_t(G, codes, shifts).eq_t_db - want) < 1e-3
        assert torch.allclose(sticking_frames(G, codes, steps=2)[0], frames, atol=1e-4)
    # an edit in S shows up in the frames: the view pans the edited face, not a W+ stand-in
    edited = s_code.replace(tensor=[t * 1.5 for t in s_code.tensor])
    assert (sticking_frames(G, edited, steps=2)[0] - frames).abs().mean() > 1e-2
