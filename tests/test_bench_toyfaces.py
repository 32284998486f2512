"""``bench toyfaces``: PSNR / SSIM / high-frequency energy against the latents' renders, the face crop, the judge's
Fréchet distances and readings, coverage and the CLIP accuracies, each checked against a case whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from stylekit.bench.fidelity import (face_crop_box, gaussian_blur, gaussian_kernel1d, high_pass_energy, laplacian_energy, psnr,
                                     ssim)
from stylekit.errors import InvalidArgumentError


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def _naive_ssim(x: np.ndarray, y: np.ndarray, window: int = 11, sigma: float = 1.5) -> float:
    """SSIM of two ``[C, H, W]`` images in [0, 1], window by window (Wang et al. 2004), for reference."""
    r = np.arange(window) - (window - 1) / 2
    g = np.exp(-0.5 * (r / sigma) ** 2)
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    values = []
    for c in range(x.shape[0]):
        for i in range(x.shape[1] - window + 1):
            for j in range(x.shape[2] - window + 1):
                a, b = x[c, i:i + window, j:j + window], y[c, i:i + window, j:j + window]
                ma, mb = (w * a).sum(), (w * b).sum()
                va, vb = (w * (a - ma) ** 2).sum(), (w * (b - mb) ** 2).sum()
                cov = (w * (a - ma) * (b - mb)).sum()
                values.append((2 * ma * mb + c1) * (2 * cov + c2) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2)))
    return float(np.mean(values))


def test_ssim_matches_a_window_by_window_computation():
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 15, 13, generator=gen) * 2 - 1
    b = (a + 0.3 * torch.randn(2, 3, 15, 13, generator=gen)).clamp(-1, 1)
    got = ssim(a, b)
    for i in range(2):
        want = _naive_ssim(((a[i] + 1) / 2).double().numpy(), ((b[i] + 1) / 2).double().numpy())
        assert float(got[i]) == pytest.approx(want, abs=1e-8)
    assert 0.1 < float(got.max()) < 0.95          # noisy copies: clearly similar, clearly not equal


def test_ssim_known_values():
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 16, 16, generator=gen) * 2 - 1
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-12)
    assert float(ssim(x, -x)) < 0                  # the negative: structure anti-correlated
    # two flat images: only the luminance term is left, (2ab + C1) / (a^2 + b^2 + C1) on the [0, 1] scale
    a, b = torch.full([1, 3, 12, 12], -0.5), torch.full([1, 3, 12, 12], 0.5)   # 0.25 and 0.75
    c1 = 0.01 ** 2
    assert float(ssim(a, b)) == pytest.approx((2 * 0.25 * 0.75 + c1) / (0.25 ** 2 + 0.75 ** 2 + c1), rel=1e-9)
    assert float(ssim(b, a)) == pytest.approx(float(ssim(a, b)))
    with pytest.raises(InvalidArgumentError, match="11x11"):
        ssim(x[..., :10, :10], x[..., :10, :10])
    with pytest.raises(InvalidArgumentError):
        ssim(x, x[:, :, :8])


def test_psnr_known_values_and_box():
    a = torch.zeros(2, 3, 8, 8)
    b = a + 0.1                                    # 0.05 on the [0, 1] scale
    assert torch.allclose(psnr(a, b), torch.full([2], 10 * math.log10(1 / 0.05 ** 2), dtype=torch.float64))
    c = a.clone()
    c[:, :, 4:, :] = 0.4                           # the error lives in the bottom half only
    assert float(psnr(a, c, box=(0, 4, 0, 8))[0]) == math.inf
    assert float(psnr(a, c, box=(4, 8, 0, 8))[0]) == pytest.approx(10 * math.log10(1 / 0.2 ** 2))


def test_high_pass_energy_sees_detail_and_not_flat_colour():
    from stylekit.toyfaces import render_batch, sample_attributes

    renders = render_batch(sample_attributes(4, seed=3), size=64)
    box = face_crop_box(64)
    sharp = high_pass_energy(renders, box=box)
    blurred = high_pass_energy(gaussian_blur(renders, 1.5).float(), box=box)
    assert bool((blurred < 0.3 * sharp).all())
    assert float(high_pass_energy(torch.full([1, 3, 32, 32], 0.2)).max()) < 1e-20
    lap_sharp = laplacian_energy(renders, box=box)
    assert bool((laplacian_energy(gaussian_blur(renders, 1.0).float(), box=box) < 0.2 * lap_sharp).all())
    ramp = torch.linspace(-1, 1, 16).view(1, 1, 1, 16).expand(1, 3, 16, 16)   # a linear ramp has no curvature
    assert float(laplacian_energy(ramp, box=(2, 14, 2, 14)).max()) < 1e-12
    dot = torch.full([1, 1, 5, 5], -1.0)
    dot[0, 0, 2, 2] = 1.0                                  # one white pixel: L = -4 there, 1 at its 4 neighbours
    assert float(laplacian_energy(dot, box=(1, 4, 1, 4))[0]) == pytest.approx((16 + 4) / 9)
    assert gaussian_kernel1d(1.0).numel() == 7 and float(gaussian_kernel1d(1.0).sum()) == pytest.approx(1.0)
    with pytest.raises(InvalidArgumentError):
        gaussian_kernel1d(0.0)


def test_face_crop_holds_the_face_from_the_renderers_geometry():
    from stylekit.toyfaces import default_attributes, render_batch

    assert face_crop_box(64) == (17, 49, 19, 45)       # rows 17-48, columns 19-44 (the docstring's numbers)
    for size in (64, 128):
        top, bottom, left, right = face_crop_box(size)
        assert (top + bottom) / 2 / size == pytest.approx(0.51, abs=1.5 / size)   # the face centre is 0.02 low
        assert (left + right) / 2 / size == pytest.approx(0.5, abs=1 / size)
        base = default_attributes()
        image = render_batch(base, size=size)
        share = {}
        for name, value in (("eyes_open", 0.0), ("mouth_open", 1.0), ("smile", -0.8), ("background_hue", 0.1)):
            diff = (render_batch(dict(base, **{name: value}), size=size) - image).abs().sum(1)[0]
            share[name] = float(diff[top:bottom, left:right].sum() / diff.sum())
        assert share["eyes_open"] > 0.999 and share["mouth_open"] > 0.999 and share["smile"] > 0.999
        assert share["background_hue"] < 0.15             # the background lies around the crop
    with pytest.raises(InvalidArgumentError):
        face_crop_box(8)


def test_fidelity_metrics_pair_each_sample_with_its_own_target():
    from stylekit.bench.toyfaces import fidelity_metrics
    from stylekit.toyfaces import render_batch, sample_attributes

    targets = render_batch(sample_attributes(12, seed=5), size=64)
    soft = gaussian_blur(targets, 1.0).float()
    m = fidelity_metrics(soft, targets)
    assert m["psnr_lo"] <= m["psnr"] <= m["psnr_hi"] and m["psnr_n"] == 12
    assert m["ssim"] < 0.99 and m["ssim_face"] < m["ssim"]          # blur costs most where the features are
    assert m["hf_energy_ratio_face"] < 0.3 and m["hf_energy_face_samples"] < m["hf_energy_face_renders"]
    assert m["lap_energy_ratio_face"] < m["hf_energy_ratio_face"]     # the finest scale loses the most
    shuffled = fidelity_metrics(soft[torch.arange(12).roll(1)], targets)
    assert shuffled["psnr_face"] < m["psnr_face"] - 3 and shuffled["ssim_face"] < m["ssim_face"] - 0.1
    noisy = (targets + 0.2 * torch.randn(targets.shape, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    assert fidelity_metrics(noisy, targets)["hf_energy_ratio_face"] > 1.5
    assert fidelity_metrics(noisy, targets)["lap_energy_ratio_face"] > 1.5
    assert (m["face_crop_top"], m["face_crop_bottom"]) == (17, 49)


def test_shipped_generator_samples_match_the_renders_of_their_latents():
    from stylekit.bench.stats import report_seeds
    from stylekit.bench.toyfaces import fidelity_metrics, samples_and_targets
    from stylekit.checkpoints.load import load_generator
    from stylekit.latent import Latent
    from stylekit.toyfaces.latents import render_targets

    G = load_generator("toyfaces")
    seeds = report_seeds(8)
    samples, targets = samples_and_targets(G, seeds, batch=5)
    assert samples.shape == targets.shape == (8, 3, 64, 64)
    assert torch.equal(targets, render_targets(Latent.seed_z(G, list(seeds)), 64))
    m = fidelity_metrics(samples, targets)
    wrong = fidelity_metrics(samples, targets[torch.arange(8).roll(1)])
    # weights/generator.md: face-crop PSNR about 19 dB; another face's render is far worse
    assert m["psnr_face"] > 16 and wrong["psnr_face"] < m["psnr_face"] - 4


class _PredictorAsJudge:
    """A stand-in judge for plumbing: the attribute predictor's features and readings, and a face score that
    is the image's contrast (flat images score 0)."""

    def __init__(self):
        from stylekit.checkpoints.predictor import load_predictor

        self.p = load_predictor()

    def features(self, images):
        return self.p.features(images)

    def read(self, images):
        out = dict(self.p.predict(images))
        out["face"] = (images.flatten(1).std(1) * 3).clamp(0, 1)
        return out


def test_judge_metrics_compare_the_right_sets():
    from stylekit.bench.stats import report_seeds
    from stylekit.bench.toyfaces import judge_metrics
    from stylekit.latent import Latent
    from stylekit.toyfaces.latents import render_targets, z_to_attributes

    class Z:
        z_dim, device = 32, "cpu"

    z = Latent.seed_z(Z, list(report_seeds(40)))
    targets = render_targets(z, 64)
    refs = render_targets(Latent.seed_z(Z, list(report_seeds(40, 40))), 64)
    labels = z_to_attributes(z)
    judge = _PredictorAsJudge()
    same, readings = judge_metrics(judge, targets, targets, refs, labels, face_threshold=0.5)
    assert same["judge_fd_samples"] == same["judge_fd_floor"] and same["judge_fd_ratio"] == pytest.approx(1.0)
    assert same["judge_label_min_acc"] == same["judge_label_min_acc_renders"] >= 0.9
    assert same["judge_face_rate"] == 1.0 and set(readings) == {"samples", "references"}
    grey = torch.zeros_like(targets)
    flat, _ = judge_metrics(judge, grey, targets, refs, labels, face_threshold=0.5)
    assert flat["judge_fd_ratio"] > 3 and flat["judge_face_rate"] == 0.0 and flat["judge_face_rate_hi"] < 0.1
    assert flat["judge_face_score"] == 0.0 and flat["judge_face_score_renders"] == same["judge_face_score"]
    # a constant reading gets a binary right exactly as often as the labels take that value
    rate = float((labels["glasses"] >= 0.5).mean())
    assert flat["judge_label_acc_glasses"] in (pytest.approx(rate), pytest.approx(1 - rate))


def test_coverage_sees_a_collapsed_attribute_and_counts_positives():
    from stylekit.bench.toyfaces import coverage
    from stylekit.toyfaces.attributes import ATTRIBUTES, attribute_priors, sample_attributes

    renders = sample_attributes(500, seed=0)
    same = coverage(renders, renders)
    assert all(abs(same[f"coverage_{s.name}_span"] - 1.0) < 1e-9 for s in ATTRIBUTES if s.kind == "continuous")
    collapsed = dict(renders, smile=np.full(500, 0.3), glasses=np.r_[np.ones(50), np.zeros(450)])
    cov = coverage(collapsed, renders)
    assert cov["coverage_smile_span"] < 1e-6 and cov["coverage_min_span"] == cov["coverage_smile_span"]
    assert cov["coverage_glasses_rate"] == pytest.approx(0.1)
    assert cov["prior_glasses_rate"] == attribute_priors()["glasses"]
    doubled = coverage(dict(renders, yaw=renders["yaw"] * 2), renders)
    assert doubled["coverage_yaw_span"] == pytest.approx(2.0)


def test_clip_metrics_use_each_prompt_set_with_intervals():
    from stylekit.bench.toyfaces import clip_metrics
    from stylekit.toyfaces.clip_model import HELDOUT_PROMPTS

    class Spy:
        def __init__(self):
            self.pairs = []

        def zero_shot_scores(self, images, positive, other):
            self.pairs.append((positive, other))
            return torch.ones(len(images))        # always "positive": right on exactly half the faces

    spy = Spy()
    m = clip_metrics(spy, per_class=3, seed=7_000_123)
    for name, pair in HELDOUT_PROMPTS.items():
        assert pair in spy.pairs
        assert m[f"clip_heldout_zeroshot_{name}"] == 0.5 and m[f"clip_zeroshot_{name}"] == 0.5
        assert m[f"clip_heldout_zeroshot_{name}_lo"] < 0.5 < m[f"clip_heldout_zeroshot_{name}_hi"]
    assert ("a face with glasses", "a face without glasses") in spy.pairs
    assert ("a face with glasses", "a face") in spy.pairs
    assert m["clip_min_heldout_zeroshot_acc"] == 0.5 and m["clip_seed"] == 7_000_123


def test_toyfaces_bench_options():
    from stylekit.bench.__main__ import build_parser

    args = build_parser("toyfaces").parse_args(["--n", "50", "--no-clip", "--offset", "100", "--hf-sigma", "2"])
    assert args.n == 50 and args.no_clip and args.offset == 100 and args.hf_sigma == 2.0
