"""Global directions: relevance vectors (the four methods agree), the relevance file and its keys, S edits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conftest import tiny_stylegan2, untrained_clip
from stylekit.errors import CheckpointError, InvalidArgumentError
from stylekit.latent import Latent
from stylekit.text import (DifferenceOptions, LowRankOptions, RelevanceTable, ReferenceOptions, clip_key,
                           compute_relevance, generator_fingerprint, global_direction, global_edit, load_relevance,
                           relevance_for, save_relevance, text_direction)
from stylekit.text import cache
from stylekit.text import relevance_methods as methods


@pytest.fixture(scope="module")
def table(G, clip):
    return compute_relevance(G, clip, method="jacobian", n_images=3, batch_size=3, stats_samples=200)


SOME = [(0, 0), (0, 5), (1, 3), (2, 7), (4, 1), (6, 2), (7, 0)]


def test_table_layout_and_unit_rows(G, clip, table):
    assert [tuple(r.shape) for r in table.relevance] == [(sl.channels, clip.embed_dim) for sl in G.style_layers]
    norms = table.flat().norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-4)
    assert table.layer_kinds == tuple(sl.kind for sl in G.style_layers)
    assert table.fingerprint == generator_fingerprint(G) and table.clip_id == clip_key(clip)
    assert table.meta["method"] == "jacobian" and table.meta["channels_computed"] == table.num_channels


def test_vectorised_difference_equals_reference(G, clip, table):
    kwargs = dict(n_images=3, stats=table.stats, channels=SOME)
    ref = compute_relevance(G, clip, method="reference", batch_size=2, **kwargs)
    diff = compute_relevance(G, clip, method=DifferenceOptions(block_size=3), batch_size=5, **kwargs)
    assert torch.allclose(diff.vectors(SOME), ref.vectors(SOME), atol=1e-4)
    assert float(ref.vectors(SOME).norm(dim=1).min()) > 0.99
    # channels that were not asked for stay zero
    assert float(ref.relevance[3].abs().sum()) == 0.0


def test_jacobian_is_the_limit_of_small_differences(G, clip, table):
    small = compute_relevance(G, clip, method=DifferenceOptions(sigmas=0.01, block_size=4), n_images=3,
                              stats=table.stats, channels=SOME)
    cos = (small.vectors(SOME) * table.vectors(SOME)).sum(1)
    assert float(cos.min()) > 0.98, cos


def test_lowrank_is_the_default_and_approaches_the_jacobian_with_rank(G, clip, table):
    flat = table.flat()
    cos, energy = {}, {}
    for rank in (1, 48):
        lr = compute_relevance(G, clip, n_images=3, batch_size=3, stats=table.stats,
                               method=LowRankOptions(rank=rank, holdout=6))
        assert lr.meta["method"] == "lowrank" and lr.meta["rank"] == rank
        norms = lr.flat().norm(dim=1)
        assert torch.allclose(norms, torch.ones_like(norms), atol=1e-4)
        cos[rank] = float((lr.flat() * flat).sum(1).mean())
        energy[rank] = lr.meta["captured_energy"]
    # a rank-1 sketch misses part of the Jacobian (of an untrained CLIP: few directions dominate), and says so;
    # rank 48 holds nearly all of it
    assert energy[1] < 0.95 * energy[48] and energy[48] > 0.99 and energy[48] <= 1.0 + 1e-6, energy
    assert cos[48] > 0.97 and cos[48] > cos[1] + 0.02, cos


def test_lowrank_at_full_rank_is_the_exact_jacobian(G, clip, table):
    full = compute_relevance(G, clip, n_images=3, batch_size=3, stats=table.stats,
                             method=LowRankOptions(rank=clip.embed_dim), channels=SOME)
    assert torch.allclose(full.vectors(SOME), table.vectors(SOME), atol=1e-4)
    assert full.meta["captured_energy"] == 1.0


def test_lowrank_basis_spans_a_low_rank_map_exactly():
    """The range finder on a map whose Jacobian has rank 3: three probes capture all of it."""
    torch.manual_seed(0)
    styles = [torch.randn(2, 5), torch.randn(2, 4)]
    mix = torch.randn(3, 9)
    lift = torch.linalg.qr(torch.randn(16, 3))[0]

    class Linear:
        def synthesis(self, ws, noise_mode="const", styles=None):
            return torch.cat(styles, dim=1)

    class Embed:
        embed_dim = 16

        def encode_image(self, x):
            return (x @ mix.T) @ lift.T                                          # rank-3 map [m, 9] -> [m, 16]

    base = Embed().encode_image(torch.cat(styles, 1))
    y = methods._probe(Linear(), Embed(), styles, base, torch.randn(2, 3, 9), step=0.5, batch_size=4, noise_mode="const")
    q, _ = torch.linalg.qr(y.transpose(1, 2))
    jac = lift @ mix                                                             # [16, 9]
    assert torch.allclose(q @ (q.transpose(1, 2) @ jac), jac.expand(2, 16, 9), atol=1e-4)


def test_channel_subset_gives_the_same_rows(G, clip, table):
    sub = compute_relevance(G, clip, method="jacobian", n_images=3, batch_size=2, stats=table.stats,
                            channels=SOME[::2])
    assert torch.allclose(sub.vectors(SOME[::2]), table.vectors(SOME[::2]), atol=1e-4)
    assert sub.meta["channels_computed"] == len(SOME[::2])


def test_vjp_per_dimension_fallback_matches_batched(G, clip):
    styles = [s.detach() for s in Latent.sample(G, 2, seed=3).to_styles(G).tensor]
    chunk = [s.clone().requires_grad_(True) for s in styles]
    e = methods.embed_styles(G, clip, chunk, "const")
    batched = methods._vjp_all(e, chunk, 7)
    one = torch.autograd.grad(e[:, 5].sum(), chunk, retain_graph=True)
    assert torch.allclose(batched[:, 5], torch.cat(one, dim=1), atol=1e-5)


def test_fingerprint_tracks_weights(G):
    other = tiny_stylegan2(seed=0)
    assert generator_fingerprint(other) == generator_fingerprint(G)
    fp = generator_fingerprint(other)
    with torch.no_grad():
        next(iter(other.parameters())).add_(1e-3)
    assert generator_fingerprint(other) != fp
    assert generator_fingerprint(tiny_stylegan2(seed=1)) != generator_fingerprint(G)


def test_file_roundtrip_and_refusals(G, clip, table, tmp_path):
    path = save_relevance(table, tmp_path / "rel.safetensors")
    back = load_relevance(path, G=G, clip=clip)
    assert torch.equal(back.flat(), table.flat())
    assert all(torch.equal(a, b) for a, b in zip(back.stats.std, table.stats.std))
    assert back.meta["n_images"] == 3
    with pytest.raises(CheckpointError, match="another generator"):
        load_relevance(path, G=tiny_stylegan2(seed=1))
    with pytest.raises(CheckpointError, match="CLIP 'toyfaces:[0-9a-f]{16}', not 'other-clip:"):
        load_relevance(path, clip=untrained_clip("other-clip"))
    # same name, other weights (another pretrained tag, a fine-tuned copy): refused too
    with pytest.raises(CheckpointError, match="CLIP 'toyfaces' with other weights"):
        load_relevance(path, clip=untrained_clip("toyfaces", seed=1))
    with pytest.raises(CheckpointError, match="no such relevance file"):
        load_relevance(tmp_path / "missing.safetensors")
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="not a stylekit relevance file"):
        load_relevance(tmp_path / "other.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not safetensors at all")
    with pytest.raises(CheckpointError):
        load_relevance(tmp_path / "junk.safetensors")


def test_relevance_for_computes_once_then_reads_the_cache(G, clip, table, tmp_path, monkeypatch):
    calls = []

    def fake_compute(G_, clip_, **kwargs):
        calls.append(kwargs)
        return table

    monkeypatch.setattr(cache, "compute_relevance", fake_compute)
    first = relevance_for(G, clip, cache_dir=tmp_path, n_images=3)
    second = relevance_for(G, clip, cache_dir=tmp_path)
    assert len(calls) == 1 and calls[0] == {"n_images": 3}
    assert torch.equal(second.flat(), first.flat())
    assert len(list(tmp_path.glob("relevance-*-toyfaces_*.safetensors"))) == 1
    relevance_for(G, clip, cache_dir=tmp_path, recompute=True)
    assert len(calls) == 2


def _planted(table, clip, layer, channel, sign=1.0):
    """A copy of ``table`` whose rows are random except one row that is (+/-) the text direction."""
    dt = text_direction(clip, "a face with glasses", "a face").cpu()
    gen = torch.Generator().manual_seed(0)
    rel = [F.normalize(torch.randn(r.shape, generator=gen), dim=1) for r in table.relevance]
    rel = [r - (r @ dt).unsqueeze(1) * dt.unsqueeze(0) for r in rel]   # orthogonal to dt: relevance 0
    rel[layer][channel] = sign * dt
    return RelevanceTable(rel, table.stats, table.fingerprint, table.clip_id, table.layer_kinds, {})


def test_global_edit_moves_only_relevant_channels(G, clip, table):
    planted = _planted(table, clip, 2, 5, sign=-1.0)
    lat = Latent.sample(G, 3, seed=7)
    direction = global_direction(planted, "a face with glasses", "a face", clip=clip, preset="styleclip", beta=0.1)
    assert direction.n_channels == 1
    edited = global_edit(G, lat, planted, "a face with glasses", "a face", clip=clip, preset="styleclip", alpha=2.5,
                         beta=0.1)
    assert edited.space == "s"
    before = lat.to_styles(G).tensor
    for li, (a, b) in enumerate(zip(before, edited.tensor)):
        change = b - a
        if li == 2:
            expected = -2.5 * table.stats.std[2][5]
            assert torch.allclose(change[:, 5], expected.expand(3), atol=1e-5)
            change[:, 5] = 0
        assert float(change.abs().max()) < 1e-6
    assert edited.render(G).shape == (3, 3, 16, 16)


def test_kinds_and_beta(G, clip, table):
    torgb = next(i for i, sl in enumerate(G.style_layers) if sl.kind == "torgb")
    planted = _planted(table, clip, torgb, 0)
    assert global_direction(planted, "a face with glasses", "a face", clip=clip, preset="styleclip").n_channels == 1
    with pytest.raises(InvalidArgumentError, match="lower beta"):
        global_direction(planted, "a face with glasses", "a face", clip=clip, kinds=("conv",), beta=0.5)
    with pytest.raises(InvalidArgumentError, match="largest is"):
        global_direction(table, "a face with glasses", "a face", clip=clip, beta=1.01)
    with pytest.raises(InvalidArgumentError, match="kinds"):
        global_direction(table, "a face with glasses", "a face", clip=clip, kinds=("nope",))


def test_global_edit_refuses_other_generator_and_clip(G, clip, table):
    G2 = tiny_stylegan2(seed=1)
    with pytest.raises(CheckpointError, match="another generator"):
        global_edit(G2, Latent.sample(G2, 1), table, "a face with glasses", "a face", clip=clip)
    with pytest.raises(CheckpointError, match="text directions of one CLIP"):
        global_direction(table, "a face with glasses", "a face", clip=untrained_clip("ViT-B-32"))


def test_compute_relevance_argument_checks(G, clip):
    with pytest.raises(InvalidArgumentError, match="unknown relevance method"):
        compute_relevance(G, clip, method="fast")
    with pytest.raises(InvalidArgumentError, match="n_images"):
        compute_relevance(G, clip, n_images=0)
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        compute_relevance(G, clip, n_images=1, channels=[(0, 10_000)])
    with pytest.raises(InvalidArgumentError, match="sigmas"):
        compute_relevance(G, clip, n_images=1, method=ReferenceOptions(sigmas=-1.0))
    with pytest.raises(InvalidArgumentError, match="rank"):
        compute_relevance(G, clip, n_images=1, method=LowRankOptions(rank=0))
    with pytest.raises(InvalidArgumentError, match="holdout"):
        compute_relevance(G, clip, n_images=1, method=LowRankOptions(holdout=-1))
    with pytest.raises(InvalidArgumentError, match="probe_step"):
        compute_relevance(G, clip, n_images=1, method=LowRankOptions(probe_step=float("nan")))


def _crowded(table, clip, specific=(3, 2)):
    """A table where every channel but one moves CLIP along one shared axis ``u`` (plus a little noise),
    and one channel moves it along ``v`` alone; returns it and the text direction ``0.8 u + 0.6 v``."""
    D = table.embed_dim
    gen = torch.Generator().manual_seed(1)
    u, v = torch.linalg.qr(torch.randn(D, 2, generator=gen))[0].T
    rel = [F.normalize(u.expand(r.shape[0], -1) + 0.3 / D ** 0.5 * torch.randn(r.shape, generator=gen), dim=1)
           for r in table.relevance]
    rel[specific[0]][specific[1]] = v
    return RelevanceTable(rel, table.stats, table.fingerprint, table.clip_id, table.layer_kinds, {}), 0.8 * u + 0.6 * v


def _top(direction):
    flat = torch.cat(direction.scores).abs()
    sizes = [s.shape[0] for s in direction.scores]
    i = int(flat.argmax())
    li = next(k for k in range(len(sizes)) if i < sum(sizes[:k + 1]))
    return li, i - sum(sizes[:li])


def test_whitened_relevance_finds_the_specific_channel(clip, table):
    crowded, text = _crowded(table, clip)
    assert torch.allclose(text_direction(clip, text, -text).cpu(), text, atol=1e-6)  # embeddings as the text pair
    # plain cosine: the shared axis wins (about 0.8 beats 0.6); whitened: the one channel that moves v
    plain = global_direction(crowded, text, -text, clip=clip, preset="styleclip", beta=0.0, top_k=1)
    white = global_direction(crowded, text, -text, clip=clip, beta=0.0, top_k=1, whiten=1.0)
    assert plain.n_channels == 1 and white.n_channels == 1
    assert _top(plain) != (3, 2)
    assert _top(white) == (3, 2)
    # a huge shrinkage is the identity up to scale: StyleCLIP's plain cosine comes back
    loose = global_direction(crowded, text, -text, clip=clip, beta=0.0, whiten=1e6)
    assert torch.allclose(torch.cat(loose.scores), torch.cat(plain.scores), atol=1e-3)


def test_whitener_is_symmetric_and_whitens(table):
    W = table.whitener(0.5).double()
    assert torch.allclose(W, W.T, atol=1e-5)
    rows = table.flat().double()
    sigma = rows.T @ rows / rows.shape[0]
    # W Σ W has the eigenvalues λ / (λ + 0.5 mean λ): 1 for large axes, shrunk toward 0 for small ones
    ev = torch.linalg.eigvalsh(sigma)
    expected = ev / (ev + 0.5 * ev.mean())
    assert torch.allclose(torch.linalg.eigvalsh(W @ sigma @ W), expected, atol=1e-4)
    assert table.whitener(0.5) is table.whitener(0.5)  # remembered


def test_top_k_keeps_the_most_relevant(clip, table):
    full = global_direction(table, "a face with glasses", "a face", clip=clip, preset="styleclip", beta=0.0)
    few = global_direction(table, "a face with glasses", "a face", clip=clip, preset="styleclip", beta=0.0, top_k=5)
    assert few.n_channels == 5
    kept = torch.cat(few.delta) != 0
    scores = torch.cat(full.scores).abs()
    assert float(scores[kept].min()) >= float(scores[~kept].max())
    # beta still applies first: fewer than top_k pass it, all of those stay
    some = global_direction(table, "a face with glasses", "a face", clip=clip, preset="styleclip",
                            beta=float(scores.topk(3).values[-1]), top_k=50)
    assert some.n_channels == 3
    for bad in (0, -3, 2.5, True):
        with pytest.raises(InvalidArgumentError, match="top_k"):
            global_direction(table, "a face with glasses", "a face", clip=clip, top_k=bad)
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(InvalidArgumentError, match="whiten"):
            global_direction(table, "a face with glasses", "a face", clip=clip, whiten=bad)


def test_cli_writes_a_table(tmp_path):
    from stylekit.checkpoints.canonical import save_generator
    from stylekit.cli import main
    G2 = tiny_stylegan2(seed=3)
    path = save_generator(G2, tmp_path / "g.safetensors")
    out = tmp_path / "rel.safetensors"
    assert main(["relevance", "--model", str(path), "--n-images", "2", "--rank", "4", "--out", str(out)]) == 0
    from stylekit.clip_backend import load_clip
    from stylekit.checkpoints.load import load_generator

    table = load_relevance(out, G=load_generator(str(path)), clip=load_clip("toyfaces"))
    assert table.meta["n_images"] == 2 and table.meta["rank"] == 4
    assert main(["relevance", "--model", str(path), "--clip", "no-such-clip", "--out", str(out)]) == 2
