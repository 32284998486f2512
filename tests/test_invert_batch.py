"""invert() on a batch: one result per image, equal to the one-by-one results."""

from __future__ import annotations

import pytest
import torch

from stylekit.checkpoints.load import load_generator
from stylekit.errors import ImageInputError, InvalidArgumentError
from stylekit.invert import InversionResult, invert
from stylekit.latent import Latent


@pytest.fixture(scope="module")
def G():
    return load_generator("toyfaces")


@pytest.fixture(scope="module")
def images(G):
    return Latent.from_seed(G, [11, 12, 13]).render(G)  # [3, 3, 64, 64]


def _one_by_one(G, images, **kw):
    return [invert(G, images[i:i + 1], **kw) for i in range(images.shape[0])]


@pytest.mark.parametrize("method", ["encoder", "restyle"])
def test_encoder_batches_equal_single_images(G, images, method):
    batch = invert(G, images, method=method)
    single = _one_by_one(G, images, method=method)
    assert isinstance(batch, list) and len(batch) == 3
    for b, s in zip(batch, single):
        assert isinstance(b, InversionResult) and b.method == method and b.extra["batch_size"] == 3
        assert b.latent.tensor.shape == (1, G.num_ws, G.w_dim) and b.image.shape == (1, 3, 64, 64)
        assert torch.allclose(b.latent.tensor, s.latent.tensor, atol=1e-5)
        assert torch.allclose(b.image, s.image, atol=1e-4)
        assert torch.equal(b.target, s.target)
        assert b.psnr() == pytest.approx(s.psnr(), abs=1e-3)
    # a list of images (files, PIL, tensors) is a batch too
    as_list = invert(G, [images[0], images[1:2]], method=method)
    assert len(as_list) == 2 and torch.allclose(as_list[1].latent.tensor, single[1].latent.tensor, atol=1e-5)


def test_single_images_keep_returning_one_result(G, images):
    one = invert(G, images[:1], method="encoder")
    assert isinstance(one, InversionResult) and "batch_size" not in one.extra
    assert isinstance(invert(G, images[0], method="encoder"), InversionResult)
    listed = invert(G, [images[0]], method="encoder")
    assert isinstance(listed, list) and len(listed) == 1


def test_optimisation_of_a_batch_follows_each_image_alone(G, images):
    kw = dict(method="optimize", steps=12, perceptual="none", seed=3)
    batch = invert(G, images, **kw)
    single = _one_by_one(G, images, **kw)
    for b, s in zip(batch, single):
        # the same path: Adam's element-wise steps amplify float rounding of batched convolutions a little
        # (50 steps with the toyfaces perceptual loss: latents within 3e-2, PSNR within 0.006 dB)
        assert torch.allclose(b.latent.tensor, s.latent.tensor, atol=5e-2)
        assert b.extra["final_loss"] == pytest.approx(s.extra["final_loss"], rel=5e-3)
        assert b.psnr() == pytest.approx(s.psnr(), abs=0.05)
        assert len(b.loss_history) == 12 and b.loss_history[0]["loss"] == pytest.approx(s.loss_history[0]["loss"],
                                                                                         rel=1e-4)
    w = invert(G, images[:2], method="optimize", space="w", steps=5, perceptual="none")
    assert all(r.space == "w" and r.latent.rows_equal() for r in w)


def test_per_image_options_and_pti_run_image_by_image(G, images):
    noise = invert(G, images[:2], method="optimize", steps=3, noise_steps=2, perceptual="none")
    alone = invert(G, images[1:2], method="optimize", steps=3, noise_steps=2, perceptual="none")
    assert torch.allclose(noise[1].latent.tensor, alone.latent.tensor, atol=1e-6)
    assert noise[1].noise is not None
    kw = dict(method="pti", steps=2, pivot_steps=2, perceptual="none")
    batch = invert(G, images[:2], **kw)
    single = _one_by_one(G, images[:2], **kw)
    for b, s in zip(batch, single):
        assert b.generator is not None and b.generator is not s.generator
        assert torch.allclose(b.image, s.image, atol=1e-5)


def test_batch_errors(G, images):
    with pytest.raises(ImageInputError, match="empty"):
        invert(G, [], method="encoder")
    with pytest.raises(InvalidArgumentError, match="takes no steps"):
        invert(G, images, method="encoder", steps=3)
    with pytest.raises(InvalidArgumentError, match="space='w\\+'"):
        invert(G, images, method="restyle", space="w")
