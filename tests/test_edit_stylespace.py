"""StyleSpace: single-channel edits and attribute channel detection."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_stylegan2
from stylekit.edit import stylespace as ss
from stylekit.errors import InvalidArgumentError
from stylekit.latent import Latent


@pytest.fixture(scope="module")
def stats(G):
    return ss.style_statistics(G, n_samples=1500)


def test_statistics_match_samples(G, stats):
    lat = Latent.sample(G, 1500, seed=0)
    styles = G.ws_to_styles(lat.tensor)
    for s, m, sd in zip(styles, stats.mean, stats.std):
        torch.testing.assert_close(s.mean(0), m, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(s.std(0), sd, atol=1e-4, rtol=1e-3)


def test_single_channel_edit_changes_only_that_channel(G, stats):
    lat = Latent.from_seed(G, [1, 2])
    base = lat.to_styles(G)
    out = ss.edit_channel(G, lat, "b8.conv1", 5, 2.0, stats=stats)
    assert out.space == "s"
    li = [sl.name for sl in G.style_layers].index("b8.conv1")
    for i, (a, b) in enumerate(zip(base.tensor, out.tensor)):
        diff = b - a
        if i == li:
            torch.testing.assert_close(diff[:, 5], torch.full((2,), 2.0) * stats.std[li][5])
            diff[:, 5] = 0
        assert torch.count_nonzero(diff) == 0
    manual = [s.clone() for s in base.tensor]
    manual[li][:, 5] += 2.0 * stats.std[li][5]
    with torch.no_grad():
        torch.testing.assert_close(out.render(G), G.synthesis(None, styles=manual))
        assert not torch.allclose(out.render(G), base.render(G))
    by_index = ss.edit_channel(G, lat, li, 5, 2.0, stats=stats)
    torch.testing.assert_close(by_index.tensor[li], out.tensor[li])


def test_channel_edit_errors(G, stats):
    lat = Latent.from_seed(G, 1)
    with pytest.raises(InvalidArgumentError, match="b4.conv1, b4.torgb"):
        ss.edit_channel(G, lat, "b99.conv0", 0, 1.0, stats=stats)
    with pytest.raises(InvalidArgumentError, match="channels 0-31"):
        ss.edit_channel(G, lat, "b8.conv1", 32, 1.0, stats=stats)
    with pytest.raises(InvalidArgumentError, match="finite"):
        ss.edit_channel(G, lat, "b8.conv1", 0, float("inf"), stats=stats)
    other = tiny_stylegan2(channel_max=8)
    with pytest.raises(InvalidArgumentError, match="another generator"):
        ss.edit_channel(G, lat, 0, 0, 1.0, stats=ss.style_statistics(other, n_samples=10))


def test_channels_from_labels_finds_planted_channel(G):
    lat = Latent.sample(G, 800, seed=5)
    styles = G.ws_to_styles(lat.tensor)
    li = [sl.name for sl in G.style_layers].index("b16.conv0")
    s = styles[li][:, 11]
    labels = (s > s.quantile(0.8)).float()
    top = ss.channels_from_labels(G, lat, labels, top_k=5)
    assert (top[0].layer, top[0].channel) == ("b16.conv0", 11)
    assert top[0].score > 0  # (channels of a 16-dim W are strongly correlated, so no margin is asked)
    assert all(abs(a.score) >= abs(b.score) for a, b in zip(top, top[1:]))
    neg = ss.channels_from_labels(G, lat, 1 - labels, top_k=1)[0]
    assert (neg.layer, neg.channel) == ("b16.conv0", 11) and neg.score < 0
    assert "b16.conv0" in ss.format_channels(top)
    # ToRGB layers are excluded by default
    assert all(t.layer.endswith(("conv0", "conv1")) for t in ss.channels_from_labels(G, lat, labels, top_k=50))
    with pytest.raises(InvalidArgumentError, match="at least 2 positive"):
        ss.channels_from_labels(G, lat, torch.zeros(800))


def test_channels_from_gradients_agree_with_finite_differences(G, stats):
    def redness(images):
        return images[:, 0].mean(dim=(1, 2)) - images[:, 1:].mean(dim=(1, 2, 3))

    lat = Latent.sample(G, 8, seed=2)
    top = ss.channels_from_gradients(G, redness, lat, top_k=400, stats=stats, kinds=("conv", "torgb"))
    base = lat.to_styles(G)

    def effect(cs, eps=1e-2):
        up = ss.edit_channel(G, base, cs.layer_index, cs.channel, eps, stats=stats)
        with torch.no_grad():
            return float((redness(up.render(G)) - redness(base.render(G))).mean() / eps)

    best = effect(top[0])
    assert abs(best - top[0].score) < 0.05 * abs(top[0].score) + 1e-4
    for cs in top[50::70]:  # lower-ranked channels move the score less
        assert abs(effect(cs)) < abs(best)

    def not_differentiable(images):
        return images.detach().mean(dim=(1, 2, 3))

    with pytest.raises(InvalidArgumentError, match="not differentiable"):
        ss.channels_from_gradients(G, not_differentiable, lat, stats=stats)


def test_gradient_scores_of_two_sets_combine_by_their_weighted_mean(G, stats):
    def redness(images):
        return images[:, 0].mean(dim=(1, 2)) - images[:, 1:].mean(dim=(1, 2, 3))

    a, b = Latent.sample(G, 3, seed=4), Latent.sample(G, 1, seed=5)
    whole = ss.gradient_scores(G, redness, Latent.cat([a, b]), stats=stats, batch_size=2)
    parts = [ss.gradient_scores(G, redness, x, stats=stats) for x in (a, b)]
    for w, pa, pb in zip(whole, parts[0], parts[1]):
        torch.testing.assert_close(w, (3 * pa + pb) / 4, atol=1e-6, rtol=1e-4)
    ranked = ss.top_channels(G, whole, top_k=5)
    direct = ss.channels_from_gradients(G, redness, Latent.cat([a, b]), top_k=5, stats=stats)
    assert [(c.layer_index, c.channel) for c in ranked] == [(c.layer_index, c.channel) for c in direct]
    assert abs(ranked[0].score) >= abs(ranked[-1].score)
    with pytest.raises(InvalidArgumentError, match="one score tensor per style layer"):
        ss.top_channels(G, whole[:-1])
