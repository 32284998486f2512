"""Shared test helpers: where the conformance fixtures live (tests/fixtures, shipped with the repository),
and small generators built on the fly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"

os.environ.setdefault("STYLEKIT_OFFLINE", "1")  # tests never touch the network


def fixture_file(relative: str) -> Path:
    """The conformance fixture ``tests/fixtures/<relative>``; fails the test (never skips) when it is missing.

    The fixtures ship with the repository, so a missing one means a broken checkout, not an optional extra.
    """
    path = FIXTURES / relative
    if not path.is_file():
        pytest.fail(f"conformance fixture {relative} is missing from {FIXTURES}; it is part of the repository "
                    f"(see tests/fixtures/README.md): restore it from git.", pytrace=False)
    return path


@pytest.fixture
def fixtures_dir() -> Path:
    """The conformance fixtures folder, ``tests/fixtures`` (a missing folder fails the test)."""
    if not FIXTURES.is_dir():
        pytest.fail(f"conformance fixtures folder {FIXTURES} is missing; it is part of the repository "
                    f"(see tests/fixtures/README.md): restore it from git.", pytrace=False)
    return FIXTURES


def tolerance_ok(ours, ref) -> tuple[bool, float, float]:
    """The fixtures' bar: max|ours - ref| <= 1e-3 * max(1, std(ref)). Returns (ok, error, bound)."""
    import numpy as np

    ours = np.asarray(ours, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert ours.shape == ref.shape, f"shape {ours.shape} != reference {ref.shape}"
    err = float(np.abs(ours - ref).max())
    bound = 1e-3 * max(1.0, float(ref.std()))
    return err <= bound, err, bound


def tiny_stylegan2(seed: int = 0, **overrides):
    """A random-weight StyleGAN2 at 16x16 with few channels (fast enough for any test)."""
    import torch

    from stylekit.networks.stylegan2 import StyleGAN2Generator

    config = dict(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
                  mapping_kwargs={"num_layers": 2}, channel_base=256, channel_max=32, conv_clamp=256)
    config.update(overrides)
    torch.manual_seed(seed)
    G = StyleGAN2Generator(config)
    with torch.no_grad():
        for name, buf in G.named_buffers():
            if name.endswith("noise_const") or name.endswith("w_avg"):
                buf.copy_(torch.randn_like(buf) * 0.3)
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.1)
    return G.eval().requires_grad_(False)


@pytest.fixture(scope="module")
def G():
    """``tiny_stylegan2(seed=0)``: a fresh one per test module (a module may fine-tune or alter it).

    Modules that need another generator (the shipped toyfaces one, a StyleGAN3) define their own ``G``.
    """
    return tiny_stylegan2(seed=0)


def untrained_clip(name: str = "toyfaces", seed: int = 0):
    """A ClipModel around a randomly initialised toyfaces-architecture open_clip model (no weights file)."""
    import open_clip

    from stylekit.clip_backend import ClipModel
    from stylekit.toyfaces.clip_model import OPEN_CLIP_NAME, create_untrained

    return ClipModel(create_untrained(seed=seed), open_clip.get_tokenizer(OPEN_CLIP_NAME), name=name, pretrained=None)


@pytest.fixture(scope="module")
def clip():
    """An untrained toyfaces-architecture CLIP named 'toyfaces' (the text tests' CLIP)."""
    return untrained_clip()


# ----------------------------------------------------------------------------------------------
# The full-size rehearsal world (stylekit.rehearsal): built once, kept between runs


def rehearsal_dir() -> Path:
    """Where the rehearsal world is cached: ``$STYLEKIT_REHEARSAL_DIR`` or ``~/.cache/stylekit-rehearsal``."""
    return Path(os.environ.get("STYLEKIT_REHEARSAL_DIR") or Path.home() / ".cache" / "stylekit-rehearsal")


@pytest.fixture(scope="session")
def rehearsal_world():
    """``build(*parts) -> Path``: the rehearsal world folder with at least ``parts`` built (each part is
    built at most once per session; files already there with the recorded size are kept, so later runs
    only check sizes)."""
    from stylekit.rehearsal import build_world

    root = rehearsal_dir()
    done: set[str] = set()

    def build(*parts: str) -> Path:
        missing = [p for p in parts if p not in done]
        if missing:
            build_world(root, parts=missing)
            done.update(missing)
        return root

    return build


@pytest.fixture
def rehearsal_env(monkeypatch):
    """``use(world) -> None``: point huggingface_hub, torch hub and stylekit at a rehearsal world, offline,
    for this test (huggingface_hub reads HF_HUB_CACHE at import, so its constant is patched too)."""
    import huggingface_hub.constants as hf_constants

    from stylekit.rehearsal import world_env

    def use(world: Path) -> None:
        for key, value in world_env(world).items():
            monkeypatch.setenv(key, value)
        for key in ("STYLEKIT_HUB_MIRROR", "STYLEKIT_VGG16", "HF_HOME"):
            monkeypatch.delenv(key, raising=False)
        monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", world_env(world)["HF_HUB_CACHE"])
        monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)

    return use
