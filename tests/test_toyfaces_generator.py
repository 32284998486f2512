"""The shipped toyfaces generator: loads offline through the registry and draws what the renderer draws, sharply
enough for issue 17's fidelity bars; the shipped weights stay inside their budget."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import stylekit
from stylekit.registry import artifact_path


@pytest.fixture(scope="module")
def G():
    path = artifact_path("toyfaces", "generator")
    assert path.is_file(), f"the shipped generator {path} is missing"
    return stylekit.load_generator("toyfaces", device="cpu")


def test_shipped_generator_shapes_and_range(G):
    assert (G.img_resolution, G.c_dim) == (64, 0)
    assert G.z_dim >= 15 and G.num_ws == 10
    z = torch.randn(6, G.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ws = G.mapping(z, None, truncation_psi=0.7)
        img = G.synthesis(ws, noise_mode="const")
        same = G.synthesis(None, styles=G.ws_to_styles(ws))
    assert ws.shape == (6, G.num_ws, G.w_dim) and img.shape == (6, 3, 64, 64)
    assert torch.isfinite(img).all() and img.abs().max() < 1.5
    assert torch.equal(img, same)
    assert G.w_avg.shape == (G.w_dim,) and torch.isfinite(G.w_avg).all()


def test_shipped_generator_draws_the_attributes_of_its_latents(G):
    """Training tied z to attributes (stylekit.toyfaces.latents.z_to_attributes): check samples follow it."""
    from stylekit.toyfaces.attributes import ATTRIBUTES
    from stylekit.checkpoints.predictor import load_predictor
    from stylekit.toyfaces.latents import render_targets, z_to_attributes

    z = torch.randn(200, G.z_dim, generator=torch.Generator().manual_seed(123))
    with torch.no_grad():
        img = G.synthesis(G.mapping(z, None), noise_mode="const").clamp(-1, 1)
        target = render_targets(z, 64)
        pred = load_predictor().predict(img)
    assert (img - target).abs().mean() < 0.035  # close to the render of the same face, pixel for pixel (0.023)
    truth = z_to_attributes(z)
    # Bounds sit a little under what the shipped weights reach (see weights/generator.md: binary
    # 0.985-1.0, smile 0.991, the rest 0.989-0.999); eyes and glasses are the softest features.
    for spec in ATTRIBUTES:
        p, t = pred[spec.name].numpy(), truth[spec.name]
        if spec.kind == "binary":
            assert ((p >= 0.5) == (t >= 0.5)).mean() >= 0.96, spec.name
        else:
            assert np.corrcoef(p, t)[0, 1] >= 0.97, spec.name


def test_the_shipped_generator_is_close_to_the_renders_where_the_eye_looks(G):
    """Measured against the renders (no network), on 64 seeded codes (4,200,000+), psi 1, const noise. Issue 17's
    bars are 29 dB whole, 27 dB on the face crop and a Laplacian ratio of 0.8; these codes give 32.5 and 27.9 dB
    and a Laplacian ratio of 0.84 (the 2026-12-04 generator it replaced: 32.2, 27.6 and 0.75; the 312-kimg one:
    24.6, 19.4 and 0.15). The bounds sit under the measured values by about the 95% interval's half-width, so a
    blurrier generator (or a broken synthesis path) fails."""
    from stylekit.bench.toyfaces import fidelity_metrics, samples_and_targets

    m = fidelity_metrics(*samples_and_targets(G, range(4_200_000, 4_200_064)))
    assert m["psnr"] >= 31.8, m["psnr"]
    assert m["psnr_face"] >= 27.2, m["psnr_face"]
    assert m["lap_energy_ratio_face"] >= 0.80, m["lap_energy_ratio_face"]
    assert m["hf_energy_ratio_face"] >= 0.86, m["hf_energy_ratio_face"]


def test_shipped_weights_stay_under_60_mb():
    """Issue 17's budget for everything that ships in ``stylekit/toyfaces/weights`` (33 MB)."""
    folder = artifact_path("toyfaces", "generator").parent
    total = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    assert total < 60_000_000, f"{total / 1e6:.1f} MB"
