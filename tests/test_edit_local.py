"""Local editing (Editing in Style): k-means parts, channel contributions, part transfer; the hook utility."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_stylegan2
from stylekit.edit import local as L
from stylekit.edit.hooks import record_activations
from stylekit.errors import InvalidArgumentError
from stylekit.latent import Latent


def two_sided_generator():
    """A tiny StyleGAN2 whose first half of channels lives on the left of the image and the second
    half on the right: the constant input is split by columns, every convolution is block-diagonal
    between the two halves, and biases and noise are zero (nothing appears where the input is empty)."""
    G = tiny_stylegan2(seed=3)
    with torch.no_grad():
        syn = G.synthesis
        c = syn.b4.const
        n = c.shape[0]
        c.zero_()
        c[: n // 2, :, 0] = torch.rand(n // 2, 4) + 0.5
        c[n // 2:, :, 3] = torch.rand(n - n // 2, 4) + 0.5
        for block in syn.blocks():
            for _, layer in block.conv_layers():
                o, i = layer.weight.shape[:2]
                same = (torch.arange(o)[:, None] < o // 2) == (torch.arange(i)[None, :] < i // 2)
                layer.weight.mul_(same[:, :, None, None])
                layer.bias.zero_()
                layer.noise_strength.zero_()
            block.torgb.bias.zero_()
    return G


@pytest.fixture(scope="module")
def G2():
    return two_sided_generator()


@pytest.fixture(scope="module")
def parts(G2):
    return L.find_parts(G2, n_parts=2, layer="b8.conv1", n_samples=24, batch_size=8)


def test_parts_split_left_and_right(G2, parts):
    lat = Latent.from_seed(G2, [1, 2])
    masks = L.part_masks(G2, parts, lat)
    assert masks.shape == (2, 16, 16)
    left, right = int(masks[0, 8, 0]), int(masks[0, 8, 15])
    assert left != right
    assert (masks[:, :, :4] == left).all() and (masks[:, :, 12:] == right).all()
    # the left channels put most of their energy in the left part, the right channels almost none
    for sl, m in zip(G2.style_layers, parts.contributions):
        half = m.shape[1] // 2
        torch.testing.assert_close(m.sum(0), torch.ones(m.shape[1]), atol=1e-5, rtol=0)
        assert float(m[left, :half].mean()) > 0.45, sl.name
        assert float(m[left, half:].mean()) < 0.05, sl.name
    assert abs(float(parts.area.sum()) - 1) < 1e-5


def test_transfer_changes_the_chosen_region_more_than_the_rest(G2, parts):
    target, ref = Latent.from_seed(G2, [1, 2, 3]), Latent.from_seed(G2, [4, 5, 6])
    masks = L.part_masks(G2, parts, target)
    left = int(masks[0, 8, 0])
    out = L.transfer_part(G2, target, ref, parts, left)
    assert out.space == "s"
    base = target.to_styles(G2)
    q = L.part_channels(parts, left)
    for s_new, s_old, s_ref, q_l in zip(out.tensor, base.tensor, ref.to_styles(G2).tensor, q):
        sel = q_l.bool()
        half = s_new.shape[1] // 2
        assert not sel[half:].any()  # only left-side channels are chosen
        torch.testing.assert_close(s_new[:, sel], s_ref[:, sel])
        assert torch.equal(s_new[:, ~sel], s_old[:, ~sel])
    with torch.no_grad():
        change = (out.render(G2) - target.render(G2)).abs().mean(1)  # [N, H, W]
    inside, outside = float(change[:, :, :5].mean()), float(change[:, :, 11:].mean())
    assert inside > 0.05 and inside > 5 * outside, (inside, outside)
    half = L.transfer_part(G2, target, ref, parts, left, strength=0.5)
    for a, b, c in zip(half.tensor, base.tensor, out.tensor):
        torch.testing.assert_close(a, (b + c) / 2)
    none = L.transfer_part(G2, target, ref, parts, left, layers=[5])  # row 5 feeds only the last ToRGB
    changed = [not torch.equal(a, b) for a, b in zip(none.tensor, base.tensor)]
    assert changed == [sl.ws_index == 5 and bool(q_l.any()) for sl, q_l in zip(G2.style_layers, q)]


def test_named_parts_and_errors(G2, parts):
    named = parts.with_names({"left": int(L.part_masks(G2, parts, Latent.from_seed(G2, 1))[0, 8, 0])})
    a, b = Latent.from_seed(G2, 1), Latent.from_seed(G2, 2)
    L.transfer_part(G2, a, b, named, "left")
    with pytest.raises(InvalidArgumentError, match="named parts are: left"):
        L.transfer_part(G2, a, b, named, "eyes")
    with pytest.raises(InvalidArgumentError, match="0-1"):
        L.transfer_part(G2, a, b, parts, 7)
    with pytest.raises(InvalidArgumentError, match="rho"):
        L.part_channels(parts, 0, rho=1.5)
    with pytest.raises(InvalidArgumentError, match="finite"):
        L.transfer_part(G2, a, b, parts, 0, strength=float("nan"))
    with pytest.raises(InvalidArgumentError, match="conv layers"):
        L.find_parts(G2, layer="b99.conv1")
    other = tiny_stylegan2(channel_max=8)
    with pytest.raises(InvalidArgumentError, match="another generator"):
        L.transfer_part(other, Latent.from_seed(other, 1), Latent.from_seed(other, 2), parts, 0)


def test_spherical_kmeans_recovers_directions():
    gen = torch.Generator().manual_seed(0)
    centres = torch.nn.functional.normalize(torch.randn(3, 8, generator=gen), dim=1)
    labels = torch.arange(300) % 3
    x = (centres[labels] + 0.05 * torch.randn(300, 8, generator=gen)) * (torch.rand(300, 1, generator=gen) * 5 + 0.1)
    c, found = L.spherical_kmeans(x, 3, seed=1)
    # the clustering equals the truth up to a relabelling
    mapping = {int(t): int(f) for t, f in zip(labels, found)}
    assert len(set(mapping.values())) == 3
    assert all(mapping[int(t)] == int(f) for t, f in zip(labels, found))
    assert float((c @ centres.t()).max(1).values.min()) > 0.99


def test_record_activations_hook_utility(G2):
    lat = Latent.from_seed(G2, [1, 2])
    with record_activations(G2.synthesis, ["b8.conv1", "b16.torgb"], which="output") as out, \
            record_activations(G2.synthesis, ["b16.torgb"], which="input") as inp:
        lat.render(G2)
    assert out["b8.conv1"].shape == (2, 32, 8, 8)
    assert out["b16.torgb"].shape == (2, 3, 16, 16)
    assert inp["b16.torgb"].shape == (2, 16, 16, 16)
    before = len(G2.synthesis.b8.conv1._forward_hooks)
    assert before == 0  # hooks are gone after the block
    with pytest.raises(InvalidArgumentError, match="b4, b8, b16"):
        with record_activations(G2.synthesis, ["b32.conv1"]):
            pass


def test_the_clustering_pass_stops_after_its_layer():
    """find_parts' first pass ends once the clustered layer ran: its features are those of a full pass, and the
    layers above it are never computed."""
    G = tiny_stylegan2(seed=1, img_resolution=64)  # the clustered layer (32 px) is below the last block
    layer = L.default_cluster_layer(G)
    last = G.style_layers[-1].name
    ws = Latent.sample(G, 3, seed=0, psi=0.7).tensor
    with torch.no_grad():
        before = G.synthesis(ws, noise_mode="const")
    # without gradients and with a batch > 1 the fast path runs the finer blocks one code at a time: those of
    # the last code are skipped then; with one code per call (what the gallery uses at 1024 px) or with
    # gradients, every layer above the clustered one is
    for grad, batch in ((False, 1), (False, 4), (True, 4)):
        with torch.set_grad_enabled(grad):
            stopped = [a for _, a in L._render_batches(G, ws, batch, [layer, last], "output", "const", stop_after=layer)]
            full = [a for _, a in L._render_batches(G, ws, batch, [layer, last], "output", "const")]
        assert torch.equal(torch.cat([a[layer] for a in stopped]), torch.cat([a[layer] for a in full]))
        ran = sum(a[last].shape[0] for a in stopped if last in a)
        assert layer != last and ran == (2 if (batch, grad) == (4, False) else 0), (grad, batch, ran)
    # the generator is left as it was: no hook stays behind, a full render matches the one before
    assert not G.synthesis.get_submodule(layer)._forward_hooks
    with torch.no_grad():
        assert torch.equal(G.synthesis(ws, noise_mode="const"), before)
