"""Pivotal tuning: better than the pivot, original untouched, compact weight delta."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conftest import tiny_stylegan2
from stylekit.errors import InvalidArgumentError
from stylekit.invert import invert
from stylekit.invert.pti import apply_delta, delta_bytes, pivotal_tuning, save_delta


def _photo() -> torch.Tensor:
    """A smooth random image the generator cannot produce exactly ([1, 3, 16, 16] in [-1, 1])."""
    torch.manual_seed(3)
    return F.avg_pool2d(torch.rand(1, 3, 16, 16) * 2 - 1, 3, 1, 1)


@pytest.fixture(scope="module")
def pti_result(G):
    before = {k: v.clone() for k, v in G.state_dict().items()}
    res = invert(G, _photo(), method="pti", steps=50, pivot_steps=50, perceptual="random-cnn", lr=3e-3)
    return res, before


def test_pti_beats_its_pivot_and_leaves_the_original_alone(G, pti_result):
    res, before = pti_result
    assert res.psnr() > res.extra["pivot_psnr"] + 3.0
    assert res.extra["pivot_method"] == "optimize-w"
    w = res.latent.tensor
    assert torch.allclose(w, w[:, :1].expand_as(w))  # W pivot
    after = G.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any(p.requires_grad for p in G.parameters())
    assert res.generator is not G and not any(p.requires_grad for p in res.generator.parameters())
    assert any(h.get("locality", 0) > 0 for h in res.loss_history)


def test_weight_delta_rebuilds_the_tuned_generator(G, pti_result, tmp_path):
    res, _ = pti_result
    delta = res.generator_delta
    assert delta and all(k.startswith("synthesis.") for k in delta)  # the mapping never changes
    assert all(v.dtype == torch.float16 for v in delta.values())
    assert res.generator_delta_bytes == delta_bytes(delta) > 0
    rebuilt = apply_delta(G, delta)
    with torch.no_grad():
        a = rebuilt.synthesis(res.latent.tensor, noise_mode="const")
    assert torch.allclose(a, res.image, atol=2e-3)
    assert torch.allclose(res.render(), res.image, atol=1e-5)
    assert save_delta(delta, tmp_path / "delta.safetensors") >= res.generator_delta_bytes
    other = tiny_stylegan2(seed=1, channel_max=16)
    with pytest.raises(InvalidArgumentError):
        apply_delta(other, delta)


def test_pti_with_given_pivot_and_bad_inputs(G):
    w = G.w_avg.reshape(1, -1)
    res = pivotal_tuning(G, _photo(), steps=5, pivot_latent=w, perceptual="none", locality_weight=0.0)
    assert res.extra["pivot_method"] == "given" and len(res.loss_history) == 5
    with pytest.raises(InvalidArgumentError):
        pivotal_tuning(G, _photo(), steps=0, pivot_latent=w)
    with pytest.raises(InvalidArgumentError):
        pivotal_tuning(G, _photo(), steps=5, pivot="guess")
    with pytest.raises(InvalidArgumentError):
        pivotal_tuning(G, _photo(), steps=5, pivot_latent=w, lr=0)


def test_result_latent_and_package_entry_point(G, pti_result):
    import stylekit

    res, _ = pti_result
    lat = res.latent
    assert lat.space == "w" and lat.generator is res.generator
    with torch.no_grad():
        assert torch.allclose(lat.render(G), res.image, atol=1e-5)  # renders with the tuned generator
    quick = stylekit.invert.invert(G, _photo(), steps=3, perceptual="none")
    assert quick.method == "optimize" and quick.latent.space == "w+"
    # stylekit.invert is a plain package; its entry point is the function stylekit.invert.invert
    assert not callable(stylekit.invert) and callable(stylekit.invert.invert) and hasattr(stylekit.invert, "project")
