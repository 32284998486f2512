"""StyleCLIP latent optimisation: moves toward the text, stays near the start, reports progress."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_stylegan2
from stylekit.errors import InvalidArgumentError
from stylekit.latent import Latent
from stylekit.progress import Cancelled
from stylekit.text import optimize_latent


PROMPT = "a face with glasses"


def _similarity(G, clip, lat):
    with torch.no_grad():
        return clip.similarity(lat.render(G), PROMPT)


def test_moves_every_code_toward_the_prompt(G, clip):
    start = Latent.sample(G, 3, seed=1)
    out = optimize_latent(G, start, PROMPT, clip=clip, preset="styleclip", steps=25, lr=0.1, l2_weight=0.0)
    assert out.latent.space == "w+" and out.latent.tensor.shape == (3, G.num_ws, G.w_dim)
    assert set(out.history) == {"loss", "clip", "contrast", "l2", "perceptual"} and len(out.history["clip"]) == 25
    assert max(out.history["contrast"]) == 0.0  # no neutral text: no contrast term
    before, after = _similarity(G, clip, start), _similarity(G, clip, out.latent)
    assert torch.all(after > before + 1e-3), (before, after)
    assert torch.allclose(out.similarity, after, atol=1e-5)
    assert out.history["clip"][-1] < out.history["clip"][0]


def test_l2_keeps_the_edit_near_the_start(G, clip):
    start = Latent.sample(G, 2, seed=2)
    free = optimize_latent(G, start, PROMPT, clip=clip, preset="styleclip", steps=15, l2_weight=0.0)
    tied = optimize_latent(G, start, PROMPT, clip=clip, preset="styleclip", steps=15, l2_weight=50.0)
    dist = lambda r: float((r.latent.tensor - start.tensor).norm())  # noqa: E731
    assert dist(tied) < 0.5 * dist(free)
    assert tied.history["l2"][-1] > 0


def test_perceptual_term_and_start_noise_kept(G, clip):
    from stylekit.invert.losses import RandomCNNFeatures

    start = Latent.sample(G, 1, seed=3, space="w+")
    noise = [torch.zeros(1, 1, h, w) for _, (h, w) in G.noise_shapes()]
    start = start.replace(noise=noise)
    out = optimize_latent(G, start, PROMPT, clip=clip, preset="styleclip", steps=5, perceptual_weight=1.0,
                          extractor=RandomCNNFeatures())
    assert out.history["perceptual"][0] == pytest.approx(0.0, abs=1e-6)   # the first step renders the start
    assert max(out.history["perceptual"]) > 0
    assert out.latent.noise is noise


def test_augmented_clip_term_is_seeded_and_still_moves_toward_the_prompt(G, clip):
    start = Latent.sample(G, 2, seed=4)
    plain = optimize_latent(G, start, PROMPT, clip=clip, preset="styleclip", steps=6, l2_weight=0.0)
    one = optimize_latent(G, start, PROMPT, clip=clip, steps=6, l2_weight=0.0, augmentations=3, seed=1)
    again = optimize_latent(G, start, PROMPT, clip=clip, steps=6, l2_weight=0.0, augmentations=3, seed=1)
    other = optimize_latent(G, start, PROMPT, clip=clip, steps=6, l2_weight=0.0, augmentations=3, seed=2)
    assert torch.equal(one.latent.tensor, again.latent.tensor)
    assert not torch.allclose(one.latent.tensor, other.latent.tensor)
    assert not torch.allclose(one.latent.tensor, plain.latent.tensor)
    assert torch.all(_similarity(G, clip, one.latent) > _similarity(G, clip, start))
    for bad in (-1, 65, 2.5, True):
        with pytest.raises(InvalidArgumentError, match="augmentations"):
            optimize_latent(G, start, PROMPT, clip=clip, steps=1, augmentations=bad)
    with pytest.raises(InvalidArgumentError, match="augment_strength"):
        optimize_latent(G, start, PROMPT, clip=clip, steps=1, augmentations=2, augment_strength=float("nan"))


def test_neutral_contrast_raises_the_zero_shot_choice(G, clip):
    start = Latent.sample(G, 3, seed=5)
    t, n = clip.text_embedding(PROMPT), clip.text_embedding("a face")

    def margin(lat):  # CLIP's logit for the prompt over the neutral
        with torch.no_grad():
            return clip.encode_image(lat.render(G)) @ (t - n)

    # the contrast term alone (the cosine term is still there, so weigh the choice up)
    out = optimize_latent(G, start, PROMPT, clip=clip, preset="styleclip", neutral="a face", contrast_weight=10.0,
                          steps=12, l2_weight=0.0)
    assert torch.all(margin(out.latent) > margin(start) + 1e-3)
    # it is -log p(prompt | image) of the two-way choice: positive, falling
    assert out.history["contrast"][0] > out.history["contrast"][-1] > 0
    loss0 = out.history["clip"][0] + 10.0 * out.history["contrast"][0]
    assert out.history["loss"][0] == pytest.approx(loss0, rel=1e-5)
    plain = optimize_latent(G, start, PROMPT, clip=clip, preset="styleclip", steps=12, l2_weight=0.0)
    assert not torch.allclose(plain.latent.tensor, out.latent.tensor)
    with pytest.raises(InvalidArgumentError, match="same CLIP embedding"):
        optimize_latent(G, start, PROMPT, clip=clip, neutral=PROMPT, steps=1)
    with pytest.raises(InvalidArgumentError, match="empty"):
        optimize_latent(G, start, PROMPT, clip=clip, neutral="  ", steps=1)
    with pytest.raises(InvalidArgumentError, match="contrast_weight"):
        optimize_latent(G, start, PROMPT, clip=clip, neutral="a face", contrast_weight=-1.0, steps=1)


def test_progress_and_cancel(G, clip):
    seen = []

    def progress(step, total, message="", **metrics):
        seen.append((step, total, set(metrics)))
        if step == 3:
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        optimize_latent(G, Latent.sample(G, 1), PROMPT, clip=clip, preset="styleclip", steps=10, progress=progress)
    assert [s[0] for s in seen] == [1, 2, 3] and seen[0][1] == 10 and {"loss", "clip"} <= seen[0][2]


def test_argument_errors(G, clip):
    lat = Latent.sample(G, 1)
    with pytest.raises(InvalidArgumentError, match="StyleSpace"):
        optimize_latent(G, lat.to_styles(G), PROMPT, clip=clip, steps=1)
    with pytest.raises(InvalidArgumentError, match="extractor"):
        optimize_latent(G, lat, PROMPT, clip=clip, steps=1, perceptual_weight=1.0)
    with pytest.raises(InvalidArgumentError, match="steps"):
        optimize_latent(G, lat, PROMPT, clip=clip, steps=0)
    with pytest.raises(InvalidArgumentError, match="another model"):
        optimize_latent(G, Latent.sample(tiny_stylegan2(w_dim=8, z_dim=8), 1), PROMPT, clip=clip, steps=1)
    with pytest.raises(InvalidArgumentError, match=r"\[128\]"):
        optimize_latent(G, lat, torch.zeros(5), clip=clip, steps=1)
