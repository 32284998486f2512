"""The shipped toyfaces relevance table: made for the shipped generator and CLIP, used without computing,
and its global directions edit the attributes they name (whitened relevance, top-k channels)."""

from __future__ import annotations

import pytest
import torch

from stylekit.text import cache, generator_fingerprint, global_edit, relevance_for


@pytest.fixture(scope="module")
def world():
    import stylekit
    from stylekit.clip_backend import load_clip
    from stylekit.checkpoints.predictor import load_predictor

    torch.set_num_threads(1)
    return stylekit.load_generator("toyfaces"), load_clip("toyfaces"), load_predictor()


def test_shipped_table_matches_the_shipped_generator_and_clip(world):
    G, clip, _ = world
    table = cache.registered_table(G, clip)
    assert table is not None, ("stylekit/toyfaces/weights/relevance.safetensors is stale: recompute it with the "
                               "command in weights/relevance.md")
    assert table.num_channels == sum(sl.channels for sl in G.style_layers)
    assert table.meta["n_images"] == 128


def test_relevance_for_uses_it_without_computing(world, tmp_path, monkeypatch):
    G, clip, _ = world

    def no_compute(*args, **kwargs):
        raise AssertionError("relevance_for computed a table although the package ships it")

    monkeypatch.setattr(cache, "compute_relevance", no_compute)
    table = relevance_for(G, clip, cache_dir=tmp_path)
    assert table.fingerprint == generator_fingerprint(G) and not list(tmp_path.iterdir())


@pytest.mark.parametrize("attr,target,share", [("glasses", "a face with glasses", 0.5), ("smile", "a smiling face", 0.75)])
def test_whitened_top_k_edits_show_the_attribute(world, attr, target, share):
    """The toyfaces preset (bench text's settings) on 24 fresh codes that lack the attribute: many show it after
    the edit (these codes: glasses 0.62, smile 1.00; the preset's development sweep: 0.80 and 1.00 on 50 codes
    per prompt, the preset trading some glasses for faces that keep their other attributes)."""
    from stylekit.bench.text import THRESHOLDS
    from stylekit.latent import Latent

    G, clip, predictor = world
    table = cache.registered_table(G, clip)
    pool = Latent.sample(G, 120, seed=4321)
    with torch.no_grad():
        before = predictor.predict(pool.render(G))[attr]
    threshold = THRESHOLDS.get(attr, 0.5)
    lacking = pool.select(torch.nonzero(before <= threshold).flatten()[:24].tolist())
    assert lacking.batch_size == 24
    edited = global_edit(G, lacking, table, target, "a face", clip=clip, preset="toyfaces")
    with torch.no_grad():
        after = predictor.predict(edited.render(G))[attr]
    assert float((after > threshold).float().mean()) >= share
