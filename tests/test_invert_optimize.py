"""Optimisation-based inversion (Image2StyleGAN / ++): quality, noise stage, masks, Gram loss, bad input."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from stylekit.errors import ImageInputError, InvalidArgumentError
from stylekit.invert import invert
from stylekit.invert.losses import gram_matrix, prepare_mask, style_loss
from stylekit.invert.optimize import invert_composite, learning_rate, project
from stylekit.progress import Cancelled


def _sample(G, seed: int, *, mix: bool = False) -> torch.Tensor:
    """A generator sample [1, 3, 16, 16]; ``mix`` takes the fine layers from a second code (in W+, not in W)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        w = G.mapping(torch.randn(2, G.z_dim))
        ws = w[:1].clone()
        if mix:
            ws[:, 3:] = w[1:, 3:]
        return G.synthesis(ws, noise_mode="const")


def test_wplus_lowers_loss_a_lot_and_beats_w(G):
    target = _sample(G, 1, mix=True)
    res_wp = invert(G, target, space="w+", steps=100, perceptual="none")
    res_w = invert(G, target, space="w", steps=100, perceptual="none")
    assert res_wp.latent.tensor.shape == (1, G.num_ws, G.w_dim)
    assert res_w.latent.tensor.shape == (1, G.num_ws, G.w_dim)
    w = res_w.latent.tensor
    assert torch.allclose(w, w[:, :1].expand_as(w))  # W: every row equal
    assert len(res_wp.loss_history) == 100
    first, last = res_wp.loss_history[0]["loss"], res_wp.extra["final_loss"]
    assert last < 0.25 * first
    assert res_wp.psnr() > res_w.psnr() + 2.0
    assert res_wp.image.shape == (1, 3, 16, 16)
    assert res_wp.perceptual == "none" and res_wp.method == "optimize"


def test_perceptual_choice_is_recorded(G):
    res = project(G, _sample(G, 2), steps=5, perceptual="random-cnn")
    assert res.perceptual == "random-cnn"
    assert "perceptual" in res.loss_history[0]
    auto = project(G, _sample(G, 2), steps=2, perceptual="auto")
    assert auto.perceptual in ("lpips-vgg", "toyfaces", "random-cnn")


def test_noise_stage_lowers_loss_further(G):
    target = _sample(G, 3, mix=True)
    res = project(G, target, space="w+", steps=60, noise_steps=60, perceptual="none", regularize_noise_weight=10.0)
    assert res.noise is not None and len(res.noise) == len(G.noise_shapes())
    assert res.extra["final_loss"] < 0.9 * res.extra["latent_loss"]
    stages = {h["stage"] for h in res.loss_history}
    assert stages == {"latent", "noise"}
    # the returned image is what the latent + maps render
    again = G.synthesis(res.latent.tensor, noise=res.noise)
    assert torch.allclose(again, res.image, atol=1e-5)
    assert torch.allclose(res.render(G), res.image, atol=1e-5)


def test_masked_inpainting_ignores_the_masked_region(G):
    target = _sample(G, 4)
    mask = torch.ones(16, 16)
    mask[4:12, 4:12] = 0  # unknown region
    scribbled = target.clone()
    scribbled[:, :, 4:12, 4:12] = torch.rand(1, 3, 8, 8) * 2 - 1
    a = project(G, target, steps=25, mask=mask, perceptual="random-cnn", seed=3)
    b = project(G, scribbled, steps=25, mask=mask, perceptual="random-cnn", seed=3)
    assert torch.allclose(a.latent.tensor, b.latent.tensor, atol=1e-6)
    assert a.loss_history[-1]["loss"] == pytest.approx(b.loss_history[-1]["loss"], abs=1e-6)
    c = project(G, scribbled, steps=25, perceptual="random-cnn", seed=3)  # without the mask it matters
    assert not torch.allclose(a.latent.tensor, c.latent.tensor, atol=1e-3)


def test_gram_loss_zero_for_identical_features():
    torch.manual_seed(0)
    feats = [torch.randn(2, 8, 6, 6), torch.randn(2, 16, 3, 3)]
    assert torch.all(style_loss(feats, feats) == 0)
    other = [f + 0.5 * torch.randn_like(f) for f in feats]
    assert torch.all(style_loss(feats, other) > 0)
    # the Gram matrix forgets positions: a spatial shuffle keeps it
    perm = torch.randperm(36)
    f = feats[0]
    shuffled = f.reshape(2, 8, 36)[:, :, perm].reshape(2, 8, 6, 6)
    assert torch.allclose(gram_matrix(f), gram_matrix(shuffled), atol=1e-5)
    mask = torch.zeros(1, 1, 6, 6)
    mask[..., :3] = 1
    changed = f.clone()
    changed[..., 3:] = 5.0  # outside the mask
    assert torch.allclose(gram_matrix(f, mask), gram_matrix(changed, mask), atol=1e-6)


def test_style_loss_term_in_projection(G):
    style = _sample(G, 6)
    res = project(G, _sample(G, 5), steps=5, style_weight=10.0, style_image=style, perceptual="random-cnn")
    assert all("style" in h for h in res.loss_history)
    # the Gram term alone pulls the image's feature statistics toward the style image's (about 6x in 30 steps)
    only = project(G, _sample(G, 5), steps=30, pixel_weight=0.0, perceptual_weight=0.0, style_weight=1000.0,
                   style_image=style, perceptual="random-cnn")
    first, last = only.loss_history[0]["style"], only.loss_history[-1]["style"]
    assert last < 0.5 * first, (first, last)


def test_crossover_takes_each_image_in_its_region(G):
    a, b = _sample(G, 1), _sample(G, 2)
    mask = torch.zeros(16, 16)
    mask[:, :8] = 1
    res = invert_composite(G, a, b, mask, steps=80, perceptual="none")
    left, right = res.image[..., :8], res.image[..., 8:]
    assert (left - a[..., :8]).square().mean() < (left - b[..., :8]).square().mean()
    assert (right - b[..., 8:]).square().mean() < (right - a[..., 8:]).square().mean()


def test_image_inputs_of_every_kind(G):
    from PIL import Image

    arr = ((_sample(G, 9)[0].permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    big = Image.fromarray(arr).resize((40, 30))  # non-square, other size
    buf = io.BytesIO()
    big.save(buf, format="PNG")
    for image in (big, arr, buf.getvalue(), torch.from_numpy(arr).permute(2, 0, 1)):
        res = project(G, image, steps=2, perceptual="none")
        assert res.target.shape == (1, 3, 16, 16)
    with pytest.raises(ImageInputError):
        project(G, b"not an image", steps=2)
    with pytest.raises(ImageInputError):
        project(G, torch.full((1, 3, 16, 16), float("nan")), steps=2)


@pytest.mark.parametrize("steps", [0, -3, 20001, 10**9, 1.5, "100", None, True])
def test_bad_steps_raise(G, steps):
    with pytest.raises(InvalidArgumentError):
        project(G, _sample(G, 1), steps=steps)


def test_bad_masks_raise_and_resize(G):
    target = _sample(G, 1)
    with pytest.raises(InvalidArgumentError, match="aspect"):
        project(G, target, steps=2, mask=np.ones((8, 16)))
    with pytest.raises(InvalidArgumentError, match="all zero"):
        project(G, target, steps=2, mask=np.zeros((16, 16)))
    with pytest.raises(InvalidArgumentError):
        project(G, target, steps=2, mask=np.full((16, 16), np.nan))
    big = prepare_mask(np.ones((64, 64)) * 255, 16)  # 0..255 values, other size: resized and rescaled
    assert big.shape == (1, 1, 16, 16) and float(big.max()) == pytest.approx(1.0)
    from PIL import Image

    pil_mask = Image.fromarray(np.full((32, 32), 255, dtype=np.uint8))
    assert project(G, target, steps=2, mask=pil_mask, perceptual="none").latent.tensor.shape[1] == G.num_ws


def test_other_bad_arguments(G):
    target = _sample(G, 1)
    with pytest.raises(InvalidArgumentError):
        invert(G, target, method="magic")
    with pytest.raises(InvalidArgumentError):
        invert(G, target, space="z", steps=2)
    with pytest.raises(InvalidArgumentError):
        project(G, target, steps=2, lr=-1)
    with pytest.raises(InvalidArgumentError):
        project(G, target, steps=2, perceptual="vgg19")
    with pytest.raises(InvalidArgumentError):
        project(G, target, steps=2, init_latent=torch.zeros(3, 5))


def test_init_latent_and_determinism(G):
    target = _sample(G, 2)
    a = project(G, target, steps=10, perceptual="none", seed=1)
    b = project(G, target, steps=10, perceptual="none", seed=1)
    assert torch.equal(a.latent.tensor, b.latent.tensor)
    start = project(G, target, steps=10, perceptual="none", init_latent=a.latent)
    assert start.loss_history[0]["loss"] < a.loss_history[0]["loss"]


def test_progress_and_cancel(G):
    calls = []
    project(G, _sample(G, 1), steps=4, noise_steps=2, perceptual="none",
            progress=lambda step, total, message="", **m: calls.append((step, total, message)))
    assert calls[-1] == (6, 6, "noise") and calls[0][0] == 1

    def cancel(step, total, message="", **m):
        if step == 2:
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        project(G, _sample(G, 1), steps=50, perceptual="none", progress=cancel)
    assert not any(p.requires_grad for p in G.parameters())  # the generator is left as it was


def test_learning_rate_schedule():
    assert learning_rate(0.0, 0.1) == 0.0
    assert learning_rate(0.5, 0.1) == pytest.approx(0.1)
    assert learning_rate(0.9, 0.1) < 0.1
    assert learning_rate(0.999, 0.1) < 1e-3


def test_toyfaces_predictor_as_perceptual_features():
    from stylekit.invert.losses import ToyfacesFeatures
    from stylekit.toyfaces.predictor import new_predictor

    torch.manual_seed(0)
    ext = ToyfacesFeatures(new_predictor().eval())
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    feats = ext.features(x)
    assert sum(f.ndim == 4 for f in feats) >= 4 and feats[-1].ndim == 2  # trunk maps + the feature vector
    assert torch.all(ext.distance(x, x) == 0)
    assert torch.all(ext.distance(x, x.flip(-1)) > 0)
    mask = torch.ones(1, 1, 16, 16)
    mask[..., 8:] = 0
    y = x.clone()
    y[..., 8:] = 0.7
    assert torch.allclose(ext.distance(x, y, mask), torch.zeros(2), atol=1e-6)
