"""The Invert tab and the analogy on a real-size model: ffhq-1024 from the rehearsal world (random weights, real
files, real sizes), offline. Alignment of uploads and its notes, the registered e4e and ReStyle encoders (ReStyle
refused plainly where none is registered), LPIPS-VGG (and a stated fallback), PTI kept in the session as an fp16
delta with a cap and an expiry, and the analogy starting from seeds. Step counts are tiny: one 1024 px synthesis +
backward takes seconds here."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image

from demos import common, morph, pti_state
from demos import invert as tab
from stylekit.latent import Latent

MODEL = "ffhq-1024"


def _quiet(*args, **kwargs) -> None:
    """Stands in for gr.Progress."""


@pytest.fixture
def ffhq(rehearsal_world, rehearsal_env, monkeypatch):
    """ffhq-1024, its e4e and ReStyle encoders and torch hub's VGG16 from the rehearsal world, offline (the generator
    is loaded once per process by the gallery's model cache); fresh perceptual-loss and alignment caches."""
    from stylekit.invert import losses

    rehearsal_env(rehearsal_world("ffhq-1024", "e4e-ffhq", "restyle-e4e-ffhq", "vgg16-torch"))
    monkeypatch.setattr(losses, "_CACHE", {})
    monkeypatch.setattr(tab, "_ALIGNED", type(tab._ALIGNED)())
    return common.get_generator(MODEL)


@pytest.fixture
def faceless(tmp_path):
    """A 384 x 320 picture with no face in it (smooth colour bands): dlib finds nothing."""
    y, x = np.mgrid[0:320, 0:384]
    arr = np.stack([x * 255 / 383, y * 255 / 319, np.full_like(x, 90.0)], axis=-1).astype(np.uint8)
    path = tmp_path / "bands.png"
    Image.fromarray(arr).save(path)
    return str(path)


def _run(*args):
    """The Invert callback's last output (it streams; only the last one has the result)."""
    outputs = list(tab.invert(*args, None, _quiet))
    return outputs[-1]


def test_encoder_with_alignment_on_a_faceless_image_says_so_and_inverts_unaligned(ffhq, faceless):
    pytest.importorskip("dlib", reason="dlib (pip install 'stylekit[align]') is not installed")
    comparison, info, history, latent = _run(MODEL, faceless, "encoder", "w+", 1, True)
    assert "No face found" in info and "unaligned, centre-cropped" in info
    assert "encoder e4e-ffhq" in info and "PSNR" in info
    assert isinstance(latent, Latent) and not isinstance(latent, pti_state.TunedLatent)
    assert latent.generator is None and tuple(latent.tensor.shape) == (1, 18, 512)
    assert latent.device.type == "cpu"
    # original | reconstruction, each shrunk from 1024 to the display size
    assert comparison.height == pytest.approx(common.DISPLAY_MAX, abs=8)
    assert comparison.width == pytest.approx(2 * comparison.height, abs=16)
    assert list(history.columns) == ["step", "loss", "stage"] and len(history) == 1


def test_alignment_preview_notes(ffhq, faceless, monkeypatch):
    pytest.importorskip("dlib", reason="dlib (pip install 'stylekit[align]') is not installed")
    crop, note = tab.align_preview(MODEL, faceless, True)
    assert crop.size == (256, 256) and "No face found" in note
    crop, note = tab.align_preview(MODEL, faceless, False)
    assert crop.size == (256, 256) and "Alignment is off" in note and "centre-cropped" in note
    assert tab.align_preview(MODEL, None, True) == (None, "")
    assert tab.align_controls(MODEL)["value"] is True and tab.align_controls("toyfaces")["interactive"] is False
    _, note = tab.align_preview("toyfaces", str(tab.EXAMPLES / "toyface-neutral.png"), True)
    assert "can only rebuild cartoon faces" in note


def test_a_face_is_aligned_to_the_models_resolution(ffhq, tmp_path, monkeypatch):
    """dlib would not see a drawing, so the landmarks of the synthetic face (tests/test_invert_align.py) stand in
    for its detector; the rest is the gallery's path: the FFHQ crop at 1024, shown in the preview."""
    import stylekit.invert.align as align
    from test_invert_align import _centroid, _face

    img, lm = _face(width=480, height=400, centre=(240.0, 200.0), angle_deg=20)
    path = tmp_path / "face.png"
    img.save(path)
    monkeypatch.setattr(align, "detect_landmarks", lambda image: lm)
    picture, note, aligned = tab.prepare_photo(MODEL, str(path), True)
    assert aligned and "Aligned" in note and picture.size == (1024, 1024)
    arr = np.asarray(picture).astype(np.float64)
    (lx, ly), (rx, ry) = _centroid(arr, (255, 0, 0)), _centroid(arr, (0, 0, 255))
    assert lx / 1024 == pytest.approx(0.375, abs=0.02) and rx / 1024 == pytest.approx(0.625, abs=0.02)
    assert ly == pytest.approx(ry, abs=4)  # the 20 degree tilt is undone
    crop, note = tab.align_preview(MODEL, str(path), True)
    assert crop.size == (256, 256) and "Aligned" in note


def test_restyle_runs_with_the_registered_restyle_encoder_and_is_refused_plainly_without_one(ffhq, faceless):
    assert "all four" in tab.methods_status(MODEL)
    comparison, info, history, latent = _run(MODEL, faceless, "restyle", "w+", 1, False)  # one pass at 1024
    assert "encoder restyle-e4e-ffhq" in info and "PSNR" in info and list(history["stage"]) == ["restyle"]
    assert isinstance(latent, Latent) and tuple(latent.tensor.shape) == (1, 18, 512) and latent.space == "w+"
    for model in ("sg3t-ffhq-1024", "ffhq-512"):  # no encoder is registered for them: no model load needed to say so
        assert "restyle" not in tab.encoders_for(model)
        assert "optimize and pti" in tab.methods_status(model)
        assert tab.missing_encoder(model, "restyle") == (f"no restyle encoder is registered for {model!r}; use method "
                                                         "'optimize' or 'pti'.")
    assert "can only rebuild cartoon faces" in tab.methods_status("toyfaces")


def test_optimisation_uses_lpips_vgg_when_its_weights_are_there(ffhq, faceless):
    comparison, info, history, latent = _run(MODEL, faceless, "optimize", "w+", 2, False)
    assert "perceptual loss: lpips-vgg" in info and "falls back" not in info
    assert "Alignment is off" in info
    assert len(history) == 2 and tuple(latent.tensor.shape) == (1, 18, 512) and latent.space == "w+"


def test_without_vgg16_the_fallback_is_stated(ffhq, monkeypatch):
    from stylekit.invert import losses

    monkeypatch.setattr(losses, "find_vgg16_weights", lambda: None)
    kind, note = tab.perceptual_for(MODEL, "cpu")
    assert kind == "random-cnn" and "LPIPS-VGG is not available" in note and "vgg16-397923af.pth" in note
    assert tab.perceptual_for("toyfaces", "cpu") == ("auto", "")


def test_pti_keeps_an_fp16_delta_in_the_session_not_a_generator(ffhq, faceless, monkeypatch):
    monkeypatch.setattr(pti_state, "_DELTAS", type(pti_state._DELTAS)())
    monkeypatch.setattr(pti_state, "_TUNED", type(pti_state._TUNED)())
    comparison, info, history, latent = _run(MODEL, faceless, "pti", "w", 1, False)
    assert isinstance(latent, pti_state.TunedLatent) and latent.generator is None
    weights = latent.weights
    assert weights.tensors and all(t.dtype == torch.float16 and t.device.type == "cpu"
                                   for t in weights.tensors.values())
    assert all(name.startswith("synthesis.") for name in weights.tensors)  # the mapping network is never tuned
    assert f"{weights.nbytes / 1e6:.0f} MB float16 delta" in info and "perceptual loss: lpips-vgg" in info
    assert pti_state.held() == [weights]
    # using it rebuilds the tuned generator from the base one; the session latent gets the delta form back
    state, picture, description = tab.use_inversion(MODEL, latent)
    assert isinstance(state, pti_state.TunedLatent) and state.weights is weights and state.generator is None
    assert "PTI-tuned generator" in description
    rebuilt = common.current_latent(ffhq, state)
    assert rebuilt.generator is not None and rebuilt.generator is not ffhq
    name = next(iter(weights.tensors))
    changed = rebuilt.generator.state_dict()[name] - ffhq.state_dict()[name]
    assert torch.allclose(changed.float(), weights.tensors[name].float(), atol=1e-3)


def test_pti_deltas_are_capped_and_expire(ffhq, monkeypatch):
    monkeypatch.setattr(pti_state, "_DELTAS", type(pti_state._DELTAS)())
    monkeypatch.setattr(pti_state, "_TUNED", type(pti_state._TUNED)())
    monkeypatch.setattr(pti_state, "MAX_DELTAS", 2)
    name = "synthesis.b4.conv1.bias"
    base = pti_state.fingerprint(ffhq)
    code = Latent.from_seed(ffhq, 0).tensor

    def kept():
        w = pti_state.TunedWeights({name: torch.full_like(ffhq.state_dict()[name], 0.01)}, MODEL, base)
        return pti_state.TunedLatent("w", code, weights=w)

    first, second, third = kept(), kept(), kept()
    assert first.weights.dropped and not first.weights.tensors  # the least recently used one went
    with pytest.raises(Exception, match="no longer kept"):
        common.current_latent(ffhq, first)
    assert common.current_latent(ffhq, second).generator is not None
    second.weights.used -= pti_state.DELTA_TTL_S + 1
    assert pti_state.held() == [third.weights] and "not used for 30 minutes" in second.weights.dropped
    with pytest.raises(Exception, match="tuned from 'ffhq-1024'"):
        common.current_latent(common.get_generator("toyfaces"), third)


def test_analogy_starts_from_seeds_on_ffhq(ffhq):
    assert morph.default_pair(MODEL) == "seeds" and morph.default_pair("toyfaces") == morph.PAIRS[0]
    pair, from_box, to_box = morph.pair_for_model(MODEL)
    assert pair["value"] == "seeds" and from_box["visible"] and to_box["visible"]
    with pytest.raises(gr.Error, match="fit only toyfaces"):
        morph.analogy(MODEL, morph.PAIRS[0], 3, 4, 1.5, "all", None)
    assert not common.is_cached((MODEL, "analogy-pair"))  # nothing was inverted
    picture, info, out = morph.analogy(MODEL, "seeds", 3, 4, 1.5, "all", None)
    assert "(seed 4 - seed 3)" in info and tuple(out.tensor.shape)[1:] == (18, 512)
    assert picture.height == pytest.approx(common.DISPLAY_MAX, abs=8)
