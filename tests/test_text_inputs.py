"""Bad input to the text-guided edits: prompts, CLIP names, offline, same texts -- all stylekit errors."""

from __future__ import annotations

import pytest

from conftest import tiny_stylegan2
from stylekit.errors import InvalidArgumentError, ModelNotFoundError, OfflineError, StylekitError
from stylekit.latent import Latent
from stylekit.text import (compute_relevance, global_direction, optimize_latent, resolve_clip, text_direction,
                           train_mapper)


@pytest.fixture(scope="module")
def table(G, clip):
    return compute_relevance(G, clip, n_images=1, stats_samples=50)


LONG = "a face with " + " and ".join(["glasses"] * 40)


@pytest.mark.parametrize("prompt, match", [("", "empty"), ("   \n", "empty"), (LONG, "tokens")])
def test_bad_prompts_everywhere(G, clip, table, prompt, match):
    lat = Latent.sample(G, 1)
    with pytest.raises(InvalidArgumentError, match=match):
        optimize_latent(G, lat, prompt, clip=clip, steps=1)
    with pytest.raises(InvalidArgumentError, match=match):
        train_mapper(G, prompt, clip=clip, steps=1)
    with pytest.raises(InvalidArgumentError, match=match):
        global_direction(table, prompt, "a face", clip=clip)
    with pytest.raises(InvalidArgumentError, match=match):
        global_direction(table, "a face with glasses", prompt, clip=clip)


def test_over_long_message_names_the_limit(clip):
    with pytest.raises(InvalidArgumentError, match=f"at most {clip.context_length}"):
        text_direction(clip, LONG, "a face")


def test_same_target_and_neutral(clip):
    with pytest.raises(InvalidArgumentError, match="same CLIP embedding"):
        text_direction(clip, "a face", "a face")


def test_unknown_clip_name(G):
    with pytest.raises(ModelNotFoundError, match="Unknown CLIP model 'no-such-clip'"):
        resolve_clip("no-such-clip")
    with pytest.raises(ModelNotFoundError):
        optimize_latent(G, Latent.sample(G, 1), "a face", clip="no-such-clip", steps=1)
    with pytest.raises(InvalidArgumentError, match="ClipModel or a CLIP name"):
        resolve_clip(42)


def test_offline_without_weights(monkeypatch, tmp_path):
    monkeypatch.setenv("STYLEKIT_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("STYLEKIT_HUB_MIRROR", raising=False)
    with pytest.raises(OfflineError, match="ViT-B-32") as info:
        resolve_clip("ViT-B-32", cache_dir=tmp_path)
    assert isinstance(info.value, StylekitError) and "toyfaces" in str(info.value)


def test_latent_of_another_generator(G, clip, table):
    other = tiny_stylegan2(w_dim=8, z_dim=8)
    from stylekit.text import global_edit

    with pytest.raises(StylekitError):
        global_edit(G, Latent.sample(other, 1), table, "a face with glasses", "a face", clip=clip)
