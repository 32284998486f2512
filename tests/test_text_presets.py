"""The text edits' named presets (library defaults, overrides, where tuned), the relevance method options,
the package's lazy names, and where relevance tables come from (settings' cache dir, registered artifacts)."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import pkgutil

import pytest
import torch

from stylekit.errors import InvalidArgumentError
from stylekit.latent import Latent
from stylekit.text import (DifferenceOptions, GlobalDirectionsPreset, LowRankOptions, MapperPreset, OptimizePreset,
                           compute_relevance, global_direction, global_edit, optimize_latent, relevance_for,
                           save_relevance, train_mapper)
from stylekit.text import cache
from stylekit.text.presets import FROM_PRESET, GLOBAL_DIRECTIONS, MAPPER, OPTIMIZE, resolve_preset
from stylekit.text.relevance import METHODS, method_options

PROMPT = "a face with glasses"


@pytest.fixture(scope="module")
def table(G, clip):
    return compute_relevance(G, clip, method="jacobian", n_images=2, batch_size=2, stats_samples=100)


def test_every_preset_is_frozen_and_says_where_it_was_tuned():
    for presets in (GLOBAL_DIRECTIONS, OPTIMIZE, MAPPER):
        assert "toyfaces" in presets
        for name, preset in presets.items():
            assert len(preset.tuned) > 40, name
            with pytest.raises(dataclasses.FrozenInstanceError):
                preset.tuned = ""
    with pytest.raises(TypeError):
        GLOBAL_DIRECTIONS["mine"] = GLOBAL_DIRECTIONS["toyfaces"]    # the tables are read-only too
    toy = GLOBAL_DIRECTIONS["toyfaces"]
    assert (toy.alpha, toy.beta, toy.top_k, toy.whiten) == (2.0, 0.0, 240, 8.0)
    opt = OPTIMIZE["toyfaces"]
    assert (opt.steps, opt.contrast_weight, opt.augmentations, opt.l2_weight) == (60, 0.3, 4, 0.008)
    assert MAPPER["toyfaces"].steps == 150


def test_explicit_arguments_override_single_fields():
    toy = GLOBAL_DIRECTIONS["toyfaces"]
    assert resolve_preset(GlobalDirectionsPreset, "toyfaces") is toy
    mine = resolve_preset(GlobalDirectionsPreset, "toyfaces", alpha=3.0, beta=FROM_PRESET, top_k=None)
    assert (mine.alpha, mine.beta, mine.top_k, mine.whiten) == (3.0, toy.beta, None, toy.whiten)
    custom = dataclasses.replace(toy, whiten=2.0)
    assert resolve_preset(GlobalDirectionsPreset, custom, alpha=1.0).whiten == 2.0
    with pytest.raises(InvalidArgumentError, match="unknown global directions preset 'ffhq'.*toyfaces"):
        resolve_preset(GlobalDirectionsPreset, "ffhq")
    with pytest.raises(InvalidArgumentError, match="OptimizePreset"):
        resolve_preset(OptimizePreset, toy)
    assert repr(FROM_PRESET) == "<from preset>"


def test_global_edit_defaults_are_the_toyfaces_preset(G, clip, table):
    lat = Latent.sample(G, 2, seed=3)
    toy = GLOBAL_DIRECTIONS["toyfaces"]
    default = global_edit(G, lat, table, PROMPT, "a face", clip=clip)
    explicit = global_edit(G, lat, table, PROMPT, "a face", clip=clip, alpha=toy.alpha, beta=toy.beta,
                           top_k=toy.top_k, whiten=toy.whiten)
    assert all(torch.equal(a, b) for a, b in zip(default.tensor, explicit.tensor))
    assert global_direction(table, PROMPT, "a face", clip=clip).n_channels == min(toy.top_k, table.num_channels)
    plain = global_edit(G, lat, table, PROMPT, "a face", clip=clip, preset="styleclip")
    assert not all(torch.equal(a, b) for a, b in zip(default.tensor, plain.tensor))
    # the preset's alpha with another preset's channel choice: only alpha differs from 'styleclip'
    stronger = global_edit(G, lat, table, PROMPT, "a face", clip=clip, preset="styleclip", alpha=6.0)
    before = lat.to_styles(G).tensor
    for b, p, s in zip(before, plain.tensor, stronger.tensor):
        assert torch.allclose(s - b, (p - b) * 2.0, atol=1e-5)


def test_optimize_and_mapper_defaults_are_the_toyfaces_preset(G, clip):
    start = Latent.sample(G, 1, seed=5)
    opt = OPTIMIZE["toyfaces"]
    default = optimize_latent(G, start, PROMPT, clip=clip, neutral="a face", steps=2)
    explicit = optimize_latent(G, start, PROMPT, clip=clip, neutral="a face", steps=2, lr=opt.lr,
                               l2_weight=opt.l2_weight, contrast_weight=opt.contrast_weight,
                               augmentations=opt.augmentations, augment_strength=opt.augment_strength)
    assert torch.equal(default.latent.tensor, explicit.latent.tensor) and isinstance(default.latent, Latent)
    plain = optimize_latent(G, start, PROMPT, clip=clip, neutral="a face", steps=2, augmentations=0)
    assert not torch.equal(default.latent.tensor, plain.latent.tensor)
    mapping = MAPPER["toyfaces"]
    one, history = train_mapper(G, PROMPT, clip=clip, steps=2)
    two, _ = train_mapper(G, PROMPT, clip=clip, steps=2, batch_size=mapping.batch_size, lr=mapping.lr,
                          l2_weight=mapping.l2_weight)
    assert len(history["loss"]) == 2
    assert all(torch.equal(a, b) for a, b in zip(one.state_dict().values(), two.state_dict().values()))
    with pytest.raises(InvalidArgumentError, match="latent mapper preset"):
        train_mapper(G, PROMPT, clip=clip, preset="nope")
    assert isinstance(MAPPER["toyfaces"], MapperPreset)


def test_bench_defaults_are_the_library_presets():
    from stylekit.bench.__main__ import build_parser

    args = build_parser("text").parse_args([])
    toy, plain, opt = GLOBAL_DIRECTIONS["toyfaces"], GLOBAL_DIRECTIONS["toyfaces-plain"], OPTIMIZE["toyfaces"]
    assert (args.alpha, args.beta, args.top_k, args.whiten) == (toy.alpha, toy.beta, toy.top_k, toy.whiten)
    assert (args.plain_alpha, args.plain_beta) == (plain.alpha, plain.beta)
    assert (args.opt_steps, args.opt_l2, args.opt_augment) == (opt.steps, opt.l2_weight, opt.augmentations)
    assert args.mapper_steps == MAPPER["toyfaces"].steps


def test_text_tab_defaults_are_the_library_presets():
    pytest.importorskip("gradio")
    from demos import text as tab

    toy, opt = GLOBAL_DIRECTIONS["toyfaces"], OPTIMIZE["toyfaces"]
    assert tab.GLOBAL is toy and tab.OPTIMISE is opt and tab.WHITEN == toy.whiten
    assert tab.method_defaults("global") == {"strength": toy.alpha}
    assert tab.method_defaults("optimize") == {"steps": opt.steps}
    assert tab.method_defaults("mapper") == {"strength": tab.MAPPER_UNIT, "steps": MAPPER["toyfaces"].steps}
    strength, steps = tab._set_defaults("optimize")          # the sliders a method does not use stay as they are
    assert steps["value"] == opt.steps and "value" not in strength


def test_relevance_method_options():
    assert set(METHODS) == {"lowrank", "jacobian", "difference", "reference"}
    assert method_options("difference") == DifferenceOptions()
    mine = LowRankOptions(rank=8)
    assert method_options(mine) is mine
    with pytest.raises(InvalidArgumentError, match="unknown relevance method"):
        method_options(LowRankOptions)                   # the class, not an options object
    with pytest.raises(InvalidArgumentError, match="block_size"):
        DifferenceOptions(block_size=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        mine.rank = 4


def test_meta_records_the_method_and_its_options(G, clip, table):
    t = compute_relevance(G, clip, method=LowRankOptions(rank=3, holdout=1), n_images=1, stats=table.stats,
                          channels=[(0, 1)])
    assert t.meta["method"] == "lowrank" and t.meta["rank"] == 3 and t.meta["holdout"] == 1
    assert t.meta["probe_step"] == 0.1 and "sigmas" not in t.meta
    d = compute_relevance(G, clip, method=DifferenceOptions(sigmas=2.0), n_images=1, stats=table.stats,
                          channels=[(0, 1)])
    assert d.meta["method"] == "difference" and d.meta["sigmas"] == 2.0 and d.meta["block_size"] == 32


def test_no_lazy_name_shadows_a_submodule():
    import stylekit.text as text

    here = {m.name for m in pkgutil.iter_modules(text.__path__)}
    assert here == set(text._SUBMODULES)
    for name in text._LAZY:
        assert name not in here, f"stylekit.text.{name} is both an export and a module"
        assert getattr(text, name) is getattr(importlib.import_module(f"stylekit.text.{text._LAZY[name]}"), name)
    for name in here:
        assert importlib.import_module(f"stylekit.text.{name}") is getattr(text, name)


def test_cache_dir_comes_from_settings(G, clip, tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEKIT_CACHE", str(tmp_path))
    assert cache.default_cache_dir() == tmp_path / "relevance"
    assert cache.cache_path(G, clip).parent == tmp_path / "relevance"


def test_relevance_for_uses_a_matching_registered_artifact(G, clip, table, tmp_path, monkeypatch):
    """A registered relevance artifact (here a Hub file in the local mirror) made for (G, clip) is used
    without computing; one made for another generator is passed over."""
    from conftest import tiny_stylegan2
    from stylekit import registry
    from stylekit.hub import HubFile
    from stylekit.text.keys import generator_fingerprint

    other = compute_relevance(tiny_stylegan2(seed=1), clip, n_images=1, stats_samples=50, channels=[(0, 0)])
    mirror = tmp_path / "mirror"
    save_relevance(other, mirror / "someone" / "tables" / "other.safetensors")
    save_relevance(table, mirror / "someone" / "tables" / "tiny.safetensors")
    monkeypatch.setenv("STYLEKIT_HUB_MIRROR", str(mirror))
    registry.list_artifacts()                                                # the worlds register first
    for name in ("other", "tiny"):
        art = registry.Artifact(name=f"test-{name}", kind="relevance", format="stylekit-relevance",
                                description="test table", hub=HubFile("someone/tables", f"{name}.safetensors"))
        monkeypatch.setitem(registry._REGISTRY, ("relevance", art.name), art)

    def no_compute(*args, **kwargs):
        raise AssertionError("relevance_for computed a table although a registered one fits")

    monkeypatch.setattr(cache, "compute_relevance", no_compute)
    found = relevance_for(G, clip, cache_dir=tmp_path / "cache")
    assert found.fingerprint == generator_fingerprint(G) and torch.equal(found.flat(), table.flat())
    assert not (tmp_path / "cache").exists()                                 # nothing computed, nothing cached
    assert cache.registered_table(tiny_stylegan2(seed=2), clip) is None
