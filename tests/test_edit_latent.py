"""The Latent type: construction, conversion, rendering, compatibility checks."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from stylekit.errors import InvalidArgumentError
from stylekit.latent import Latent


def test_from_seed_matches_nvidia_seed_convention(G):
    lat = Latent.from_seed(G, 7)
    z = torch.from_numpy(np.random.RandomState(7).randn(1, G.z_dim)).float()
    assert lat.space == "w" and lat.tensor.shape == (1, G.num_ws, G.w_dim)
    torch.testing.assert_close(lat.tensor, G.mapping(z, None))
    assert lat.rows_equal()


def test_from_seed_list_and_truncation(G):
    lat = Latent.from_seed(G, [1, 2, 3], psi=0.5)
    assert lat.batch_size == 3 and len(lat) == 3
    z = Latent.seed_z(G, [1, 2, 3])
    torch.testing.assert_close(lat.tensor, G.mapping(z, None, truncation_psi=0.5))
    cut = Latent.from_seed(G, 1, psi=0.5, cutoff=2)
    assert cut.space == "w+" and not cut.rows_equal()


def test_render_uses_own_noise_and_generator(G):
    lat = Latent.from_seed(G, 3)
    ref = G.synthesis(lat.tensor, noise_mode="const")
    torch.testing.assert_close(lat.render(G), ref)
    # explicit noise maps override noise_mode
    noise = [torch.zeros(1, 1, h, w) for _, (h, w) in G.noise_shapes()]
    torch.testing.assert_close(lat.replace(noise=noise).render(G), G.synthesis(lat.tensor, noise_mode="none"))
    # a tuned generator replaces the one passed in
    tuned = copy.deepcopy(G)
    with torch.no_grad():
        tuned.synthesis.b4.const.add_(1.0)
    own = lat.replace(generator=tuned)
    torch.testing.assert_close(own.render(G), tuned.synthesis(lat.tensor))
    assert not torch.allclose(own.render(G), ref)


def test_spaces_convert_consistently(G):
    z = Latent.seed_z(G, [4, 5])
    lz = Latent("z", z)
    lw = lz.to_w(G)
    assert lw.space == "w"
    styles = lw.to_styles(G)
    assert styles.space == "s" and len(styles.tensor) == len(G.style_layers)
    torch.testing.assert_close(styles.render(G), lw.render(G))
    torch.testing.assert_close(lz.render(G), lw.render(G))
    with pytest.raises(InvalidArgumentError, match="cannot be turned back"):
        styles.to_wplus(G)
    wplus = lw.to_wplus(G).tensor.clone()
    wplus[:, 0] += 1
    with pytest.raises(InvalidArgumentError, match="not in W"):
        Latent("w+", wplus).to_w(G)


def test_check_compatible_names_both_shapes(G):
    other = Latent("w+", torch.zeros(1, 18, 512))
    with pytest.raises(InvalidArgumentError, match=rf"18 layers of 512 but the generator expects {G.num_ws} of {G.w_dim}"):
        other.check_compatible(G)
    with pytest.raises(InvalidArgumentError, match="18 layers of 512"):
        other.render(G)
    with pytest.raises(InvalidArgumentError, match="Z code has 512"):
        Latent("z", torch.zeros(1, 512)).check_compatible(G)
    bad_s = Latent("s", [torch.zeros(1, 3)])
    with pytest.raises(InvalidArgumentError, match="S code"):
        bad_s.check_compatible(G)


def test_bad_constructions_raise(G):
    with pytest.raises(InvalidArgumentError, match="unknown latent space"):
        Latent("q", torch.zeros(1, 3))
    with pytest.raises(InvalidArgumentError, match="unsqueeze"):
        Latent("w+", torch.zeros(G.num_ws, G.w_dim))
    with pytest.raises(InvalidArgumentError, match="same N"):
        Latent("s", [torch.zeros(1, 3), torch.zeros(2, 3)])
    with pytest.raises(InvalidArgumentError, match="seeds"):
        Latent.from_seed(G, -1)
    with pytest.raises(InvalidArgumentError, match="psi"):
        Latent.from_seed(G, 1, psi=float("nan"))
    with pytest.raises(InvalidArgumentError, match="truncation"):
        Latent.from_seed(G, 1, psi=0.5, space="z")


def test_select_cat_sample(G):
    lat = Latent.sample(G, 5, seed=3)
    assert lat.space == "w" and lat.batch_size == 5
    again = Latent.sample(G, 5, seed=3)
    torch.testing.assert_close(lat.tensor, again.tensor)
    part = lat.select([1, 3])
    torch.testing.assert_close(part.tensor, lat.tensor[[1, 3]])
    both = Latent.cat([part, lat.select(0).to_wplus(G)])
    assert both.space == "w+" and both.batch_size == 3
    with pytest.raises(InvalidArgumentError, match="different spaces"):
        Latent.cat([lat, lat.to_styles(G)])
