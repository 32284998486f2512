"""Tests of the toyfaces attribute table, renderer and captions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from stylekit.errors import InvalidArgumentError
from stylekit.toyfaces.attributes import (
    ATTRIBUTE_NAMES,
    ATTRIBUTES,
    BINARY_ATTRIBUTES,
    CONTINUOUS_ATTRIBUTES,
    attribute_priors,
    attributes_to_unit,
    clip_attributes,
    default_attributes,
    sample_attributes,
    unit_to_attributes,
)
from stylekit.toyfaces.captions import attribute_prompts, caption, direction_prompts
from stylekit.toyfaces.renderer import NOISE_AMPLITUDE, render, render_batch

SIZE = 64


def _frame_box(size, x0, x1, y0, y1):
    """Pixel slices for a box given in frame units ([-1, 1], y down)."""
    def px(v):
        return int(round((v + 1.0) / 2.0 * size))
    return slice(px(y0), px(y1)), slice(px(x0), px(x1))


# Regions of the neutral, centred default face (frame units).
EYES = (-0.30, 0.30, -0.13, 0.05)
MOUTH = (-0.20, 0.20, 0.18, 0.40)
CORNERS = [(-1.0, -0.75, -1.0, -0.75), (0.75, 1.0, -1.0, -0.75)]
CHIN = (-0.25, 0.25, 0.40, 0.52)
CHEEKS = [(-0.36, -0.25, 0.10, 0.20), (0.25, 0.36, 0.10, 0.20)]
CROWN = (-0.15, 0.15, -0.55, -0.40)
FOREHEAD_CENTRE = (-0.08, 0.08, -0.22, -0.16)


def _render_pair(name, low, high, size=SIZE, **fixed):
    base = default_attributes()
    base.update(fixed)
    batch = {k: np.array([v, v], np.float32) for k, v in base.items()}
    batch[name] = np.array([low, high], np.float32)
    out = render_batch(batch, size=size)
    return out[0], out[1]


def _mean_diff(a, b, box, size=SIZE):
    rows, cols = _frame_box(size, *box)
    return float((a[:, rows, cols] - b[:, rows, cols]).abs().mean())


def test_attribute_table_is_consistent():
    assert len(set(ATTRIBUTE_NAMES)) == len(ATTRIBUTES)
    assert set(BINARY_ATTRIBUTES) | set(CONTINUOUS_ATTRIBUTES) == set(ATTRIBUTE_NAMES)
    for needed in ("skin_tone", "hair_color", "red_hair", "hair_length", "smile", "mouth_open",
                   "eyes_open", "glasses", "beard", "rotation", "yaw", "position_x", "position_y",
                   "background_hue", "light_direction"):
        assert needed in ATTRIBUTE_NAMES
    assert set(attribute_priors()) == set(BINARY_ATTRIBUTES)
    for spec in ATTRIBUTES:
        assert spec.low < spec.high and spec.description
        d = default_attributes()[spec.name]
        assert spec.low <= d <= spec.high


def test_sampler_ranges_priors_and_independence():
    a = sample_attributes(6000, seed=0)
    assert list(a) == list(ATTRIBUTE_NAMES)
    for spec in ATTRIBUTES:
        v = a[spec.name]
        assert v.dtype == np.float32 and v.shape == (6000,)
        assert v.min() >= spec.low and v.max() <= spec.high
        if spec.kind == "binary":
            assert set(np.unique(v)) <= {0.0, 1.0}
            assert abs(v.mean() - attribute_priors()[spec.name]) < 0.03
        else:  # uniform: covers the range
            assert v.min() < spec.low + 0.02 * (spec.high - spec.low)
            assert v.max() > spec.high - 0.02 * (spec.high - spec.low)
    corr = np.corrcoef(attributes_to_unit(a).T)
    off_diag = corr[~np.eye(len(ATTRIBUTES), dtype=bool)]
    assert np.abs(off_diag).max() < 0.06
    # same seed, same draw; rng advances
    b = sample_attributes(5, seed=7)
    c = sample_attributes(5, seed=7)
    assert all(np.array_equal(b[k], c[k]) for k in b)
    rng = np.random.default_rng(1)
    d1, d2 = sample_attributes(5, rng=rng), sample_attributes(5, rng=rng)
    assert not np.array_equal(d1["smile"], d2["smile"])


def test_unit_round_trip():
    a = sample_attributes(50, seed=3)
    u = attributes_to_unit(a)
    assert u.shape == (50, len(ATTRIBUTES)) and u.min() >= 0 and u.max() <= 1
    back = unit_to_attributes(u)
    for spec in ATTRIBUTES:
        np.testing.assert_allclose(back[spec.name], a[spec.name], atol=1e-5)
    # binaries are thresholded at 0.5
    u2 = u.copy()
    j = ATTRIBUTE_NAMES.index("glasses")
    u2[:, j] = 0.4
    assert np.all(unit_to_attributes(u2)["glasses"] == 0.0)
    u2[:, j] = 0.6
    assert np.all(unit_to_attributes(u2)["glasses"] == 1.0)
    with pytest.raises(InvalidArgumentError):
        unit_to_attributes(np.zeros((3, 4)))
    with pytest.raises(InvalidArgumentError, match="Missing"):
        attributes_to_unit({"smile": 0.0})


def test_validation_errors():
    with pytest.raises(InvalidArgumentError) as info:
        render({"moustache": 1.0})
    assert "glasses" in str(info.value) and "moustache" in str(info.value)
    with pytest.raises(InvalidArgumentError, match="smile"):
        render({"smile": 3.0})
    with pytest.raises(InvalidArgumentError, match="NaN"):
        render({"rotation": float("nan")})
    with pytest.raises(InvalidArgumentError, match="lengths"):
        render_batch({"smile": np.zeros(3), "glasses": np.zeros(2)})
    with pytest.raises(InvalidArgumentError, match="seeds"):
        render_batch({"smile": np.zeros(3)}, seeds=[1, 2])
    with pytest.raises(InvalidArgumentError, match="size"):
        render({}, size=2)
    with pytest.raises(InvalidArgumentError, match="single number"):
        render({"smile": [0.1, 0.2]})
    with pytest.raises(InvalidArgumentError):
        sample_attributes(-1)
    clipped = clip_attributes({"smile": np.array([3.0, -5.0]), "rotation": 90.0})
    np.testing.assert_allclose(clipped["smile"], [1.0, -1.0])
    assert float(clipped["rotation"]) == 25.0


def test_deterministic_and_seed_is_only_subtle_noise():
    attrs = {k: float(v[0]) for k, v in sample_attributes(1, seed=11).items()}
    a = np.asarray(render(attrs, seed=5))
    b = np.asarray(render(attrs, seed=5))
    assert np.array_equal(a, b)
    x1 = render_batch({k: [v] for k, v in attrs.items()}, seeds=[1])
    x2 = render_batch({k: [v] for k, v in attrs.items()}, seeds=[2])
    diff = (x1 - x2).abs()
    assert diff.max() > 0  # the seed does something ...
    assert diff.max() <= 2 * 2 * NOISE_AMPLITUDE + 1e-6  # ... but very little
    assert float(diff.mean()) < 2.0 / 255


def test_render_matches_render_batch():
    attrs = sample_attributes(4, seed=2)
    batch = render_batch(attrs, size=48, seeds=[3, 4, 5, 6])
    assert batch.shape == (4, 3, 48, 48) and batch.dtype == torch.float32
    assert batch.min() >= -1 and batch.max() <= 1
    for i in range(4):
        one = {k: float(v[i]) for k, v in attrs.items()}
        img = render(one, size=48, seed=3 + i)
        assert isinstance(img, Image.Image) and img.mode == "RGB" and img.size == (48, 48)
        t = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 127.5 - 1.0
        assert (t - batch[i]).abs().max() <= 1.0 / 127.5 + 1e-6
        # a batch of one renders the same as an item of a bigger batch
        single = render_batch({k: [float(v[i])] for k, v in attrs.items()}, size=48, seeds=[3 + i])
        torch.testing.assert_close(single[0], batch[i], atol=1e-5, rtol=0)


def test_sizes_and_inputs():
    for size in (17, 32, 64, 128):
        x = render_batch({"glasses": torch.tensor([1.0, 0.0])}, size=size)
        assert x.shape == (2, 3, size, size)
    assert render_batch({"smile": np.zeros(0, np.float32)}).shape == (0, 3, 64, 64)
    # scalars broadcast, tensors and numpy give the same image, missing names take defaults
    a = render_batch({"smile": torch.tensor([0.5])})
    b = render_batch({"smile": np.array([0.5], np.float32)})
    c = render_batch({**default_attributes(), "smile": 0.5})
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)
    # larger renders are the same picture: downsampled 128 is close to 64
    big = render_batch({"glasses": [1.0]}, size=128)
    small = render_batch({"glasses": [1.0]}, size=64)
    pooled = torch.nn.functional.avg_pool2d(big, 2)
    assert float((pooled - small).abs().mean()) < 0.03


def test_renderer_is_differentiable_in_continuous_attributes():
    smile = torch.tensor([0.2, -0.4], requires_grad=True)
    hue = torch.tensor([0.3, 0.6], requires_grad=True)
    out = render_batch({"smile": smile, "background_hue": hue}, size=32)
    out.sum().backward()
    assert smile.grad is not None and float(smile.grad.abs().sum()) > 0
    assert hue.grad is not None and float(hue.grad.abs().sum()) > 0


def test_compiled_drawing_matches_the_eager_one():
    """render_batch(compiled=True) (torch.compile, dynamic shapes) draws the eager pixels at several batch and
    image sizes, seeded noise included; it refuses inputs that require grad, which it cannot differentiate."""
    from stylekit.networks.precision import has_cxx_compiler
    from stylekit.toyfaces import renderer

    if not has_cxx_compiler():
        pytest.skip("torch.compile on CPU needs a C++ compiler")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # the thread count is part of a compilation's guards: the trainers' tests use one
    try:
        for n, size, seed in ((5, 32, 3), (3, 24, 4)):
            attrs = sample_attributes(n, seed=seed)
            seeds = list(range(seed, seed + n))
            eager = render_batch(attrs, size=size, seeds=seeds)
            compiled = render_batch(attrs, size=size, seeds=seeds, compiled=True)
            assert compiled.shape == (n, 3, size, size)
            assert torch.allclose(compiled, eager, atol=5e-5), (compiled - eager).abs().max()
            assert float((compiled - render_batch(attrs, size=size)).abs().max()) > 1e-4  # the seeds' noise is there
        # the drawing that ran is dynamo's wrapper of the eager one, not the eager one itself
        assert getattr(renderer._compiled_draw(), "_torchdynamo_orig_callable", None) is renderer._draw
    finally:
        torch.set_num_threads(previous)
    smile = torch.tensor([0.2, -0.4], requires_grad=True)
    with pytest.raises(InvalidArgumentError, match="compiled=False"):
        render_batch({"smile": smile}, size=32, compiled=True)


def test_compiled_drawing_without_a_cxx_compiler_says_what_to_do(monkeypatch):
    import stylekit.networks.precision as precision

    monkeypatch.setattr(precision.shutil, "which", lambda name: None)
    with pytest.raises(InvalidArgumentError, match="C\\+\\+ compiler.*compiled=False"):
        render_batch({"smile": 0.5}, size=16, compiled=True)
    assert render_batch({"smile": 0.5}, size=16).shape == (1, 3, 16, 16)  # the eager drawing needs none


def test_glasses_change_the_eye_band_only():
    off, on = _render_pair("glasses", 0.0, 1.0)
    assert _mean_diff(off, on, EYES) > 0.08
    assert _mean_diff(off, on, MOUTH) < 0.01
    for box in CORNERS:
        assert _mean_diff(off, on, box) < 1e-4


def test_eyes_open_changes_the_eye_band_only():
    closed, opened = _render_pair("eyes_open", 0.0, 1.0)
    assert _mean_diff(closed, opened, EYES) > 0.08
    assert _mean_diff(closed, opened, MOUTH) < 1e-3
    assert _mean_diff(closed, opened, CHIN) < 1e-3


@pytest.mark.parametrize("name,low,high", [("smile", -1.0, 1.0), ("mouth_open", 0.0, 1.0)])
def test_mouth_attributes_change_the_mouth(name, low, high):
    a, b = _render_pair(name, low, high)
    assert _mean_diff(a, b, MOUTH) > 0.05
    assert _mean_diff(a, b, EYES) < 0.01
    for box in CORNERS:
        assert _mean_diff(a, b, box) < 1e-4


def test_smile_bends_the_mouth_the_right_way():
    """At a smile the corners are up: the mouth's dark pixels sit lower in the centre."""
    frown, grin = _render_pair("smile", -1.0, 1.0, size=128)

    def dark_row_centre(img, x0, x1):
        rows, cols = _frame_box(128, x0, x1, 0.15, 0.45)
        lum = img[:, rows, cols].mean(0)
        weight = (lum < -0.3).float()
        ys = torch.arange(lum.shape[0], dtype=torch.float32)[:, None]
        return float((weight * ys).sum() / weight.sum().clamp(min=1))

    centre_drop_grin = dark_row_centre(grin, -0.03, 0.03) - dark_row_centre(grin, 0.11, 0.15)
    centre_drop_frown = dark_row_centre(frown, -0.03, 0.03) - dark_row_centre(frown, 0.11, 0.15)
    assert centre_drop_grin > 2 and centre_drop_frown < -2


def test_beard_darkens_the_chin():
    a, b = _render_pair("beard", 0.0, 1.0, hair_color=0.1)
    assert _mean_diff(a, b, CHIN) > 0.2
    rows, cols = _frame_box(SIZE, *CHIN)
    assert float(b[:, rows, cols].mean()) < float(a[:, rows, cols].mean())
    assert _mean_diff(a, b, FOREHEAD_CENTRE) < 1e-3


def test_background_hue_changes_corners_not_the_face():
    a, b = _render_pair("background_hue", 0.0, 0.6)
    for box in CORNERS:
        assert _mean_diff(a, b, box) > 0.2
    assert _mean_diff(a, b, FOREHEAD_CENTRE) < 1e-3
    # hue 0 is red, 0.33 (120 deg) is yellow-green: check the channel that dominates the corner
    red, _ = _render_pair("background_hue", 0.0, 0.0)
    rows, cols = _frame_box(SIZE, *CORNERS[0])
    rgb = red[:, rows, cols].mean((1, 2))
    assert rgb[0] > rgb[1] + 0.2 and rgb[0] > rgb[2] + 0.2


def test_skin_and_hair_colours():
    light, dark = _render_pair("skin_tone", 0.0, 1.0)
    rows, cols = _frame_box(SIZE, *CHEEKS[0])
    assert float(dark[:, rows, cols].mean()) < float(light[:, rows, cols].mean()) - 0.4
    black, blond = _render_pair("hair_color", 0.0, 1.0)
    rows, cols = _frame_box(SIZE, *CROWN)
    assert float(blond[:, rows, cols].mean()) > float(black[:, rows, cols].mean()) + 0.8
    plain, red = _render_pair("red_hair", 0.0, 1.0)
    r, g = red[0, rows, cols].mean(), red[1, rows, cols].mean()
    assert float(r - g) > 0.3
    assert _mean_diff(plain, red, MOUTH) < 0.01


def test_hair_length_fills_the_sides_below_the_ears():
    short, long = _render_pair("hair_length", 0.0, 1.0)
    for x0, x1 in ((-0.52, -0.44), (0.44, 0.52)):
        assert _mean_diff(short, long, (x0, x1, 0.3, 0.6)) > 0.2
    assert _mean_diff(short, long, MOUTH) < 0.01


def test_pose_attributes_move_the_face():
    # rotation changes the layout broadly (both eyes move, top of the head moves)
    a, b = _render_pair("rotation", -25.0, 25.0)
    assert _mean_diff(a, b, EYES) > 0.1 and _mean_diff(a, b, CROWN) > 0.02
    # position_x is (almost) a translation: shifting back aligns the face
    size = 100
    a, b = _render_pair("position_x", 0.0, 0.1, size=size)
    shift = 10  # 0.1 of the width
    rows, cols = _frame_box(size, -0.5, 0.5, -0.6, 0.5)
    moved = b[:, rows, cols.start + shift:cols.stop + shift]
    assert float((moved - a[:, rows, cols]).abs().mean()) < 0.02
    assert float((b[:, rows, cols] - a[:, rows, cols]).abs().mean()) > 0.08
    a, b = _render_pair("position_y", 0.0, 0.1, size=size)
    moved = b[:, rows.start + shift:rows.stop + shift, cols]
    assert float((moved - a[:, rows, cols]).abs().mean()) < 0.02
    # yaw moves the features sideways: the eyes move right for positive yaw
    a, b = _render_pair("yaw", -30.0, 30.0)
    assert _mean_diff(a, b, EYES) > 0.1
    left, right = _render_pair("yaw", -30.0, 30.0, size=128, hair_color=1.0, hair_length=0.0)

    def eye_centroid_x(img):
        rows, cols = _frame_box(128, -0.36, 0.36, -0.1, 0.02)
        dark = (img[:, rows, cols].mean(0) < -0.5).float()
        xs = torch.arange(dark.shape[1], dtype=torch.float32)[None, :]
        return float((dark * xs).sum() / dark.sum())

    assert eye_centroid_x(right) > eye_centroid_x(left) + 8


def test_light_direction_shades_the_lit_side():
    from_left, from_right = _render_pair("light_direction", -90.0, 90.0)
    left_box, right_box = CHEEKS
    rows_l, cols_l = _frame_box(SIZE, *left_box)
    rows_r, cols_r = _frame_box(SIZE, *right_box)

    def balance(img):  # brightness of the viewer's left cheek minus the right cheek
        return float(img[:, rows_l, cols_l].mean() - img[:, rows_r, cols_r].mean())

    assert balance(from_left) > 0.1 and balance(from_right) < -0.1


def test_captions_follow_the_attributes():
    rng = np.random.default_rng(0)
    base = default_attributes()
    with_all = {**base, "glasses": 1.0, "beard": 1.0, "eyes_open": 0.0, "red_hair": 1.0,
                "hair_color": 0.5}
    texts = [caption(with_all, rng) for _ in range(40)]
    assert all(any(w in t for w in ("glasses", "spectacles")) for t in texts)
    assert all(("beard" in t) for t in texts)
    assert all(any(w in t for w in ("closed", "shut")) for t in texts)
    assert sum(any(w in t for w in ("red", "ginger", "copper")) for t in texts) > 20
    assert len(set(texts)) > 15  # varied templates and synonyms
    plain = [caption({**base, "smile": -0.9}, rng) for _ in range(40)]
    assert not any("glasses" in t and "no glasses" not in t and "without" not in t for t in plain)
    assert not any(("beard" in t and "no beard" not in t) for t in plain)
    assert sum(any(w in t for w in ("frown", "sad", "grumpy")) for t in plain) > 15
    assert caption(with_all, 5) == caption(with_all, 5)
    with pytest.raises(InvalidArgumentError):
        caption({"hat": 1.0}, rng)


def test_prompt_pairs():
    prompts = attribute_prompts()
    assert set(prompts) == set(BINARY_ATTRIBUTES)
    for positive, neutral in prompts.values():
        assert positive != neutral and neutral in positive
    assert prompts["glasses"] == ("a face with glasses", "a face")
    assert set(direction_prompts()) <= set(CONTINUOUS_ATTRIBUTES)
