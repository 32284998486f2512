"""Sample-quality metrics for training: Fréchet distance between feature sets.

``toyfaces_fd`` is the acceptance metric for the shipped toyfaces generator: the Fréchet distance,
in the toyfaces attribute predictor's feature space, between renderer images and generator samples
(``fd_samples``), next to the same distance between two independent sets of renders
(``fd_floor``, the value a perfect generator would get at this sample size). The project's bar is
``fd_samples <= 3 * fd_floor``.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InvalidArgumentError


def _as_float64(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (negative eigenvalues -> 0)."""
    vals, vecs = np.linalg.eigh((a + a.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


def frechet_distance(feats_a, feats_b) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets.

    ``||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))``, with the trace of the matrix square
    root computed stably as ``tr((S_a^(1/2) S_b S_a^(1/2))^(1/2))`` from symmetric eigendecompositions
    in float64 (no complex parts, no failure on singular covariances).

    Args:
        feats_a: ``[N, F]`` numpy array or tensor (N >= 2).
        feats_b: ``[M, F]`` numpy array or tensor (M >= 2).

    Returns: a float >= 0 (0 for identical sets, up to rounding).
    """
    a, b = _as_float64(feats_a), _as_float64(feats_b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise InvalidArgumentError(
            f"frechet_distance needs two [N, F] feature sets with the same F, got {a.shape} and {b.shape}")
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise InvalidArgumentError("frechet_distance needs at least 2 samples in each set")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise InvalidArgumentError("frechet_distance got NaN or infinite features")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    cov_a, cov_b = np.atleast_2d(cov_a), np.atleast_2d(cov_b)
    root_a = _sqrtm_psd(cov_a)
    middle = root_a @ cov_b @ root_a
    vals = np.linalg.eigvalsh((middle + middle.T) / 2)
    tr_cross = np.sqrt(np.clip(vals, 0.0, None)).sum()
    fd = float(np.square(mu_a - mu_b).sum() + np.trace(cov_a) + np.trace(cov_b) - 2.0 * tr_cross)
    return max(fd, 0.0)


@torch.no_grad()
def generator_samples(G, n: int, *, seed: int = 0, batch: int = 100, truncation_psi: float = 1.0,
                      noise_mode: str = "const", device: str | torch.device = "cpu") -> torch.Tensor:
    """``n`` samples of ``G`` for standard-normal z drawn with ``seed``: ``[n, 3, R, R]`` in [-1, 1] (clamped)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, n, batch):
        m = min(batch, n - start)
        z = torch.randn([m, G.z_dim], generator=gen).to(device)
        c = torch.zeros([m, G.c_dim], device=device) if G.c_dim > 0 else None
        ws = G.mapping(z, c, truncation_psi=truncation_psi)
        out.append(G.synthesis(ws, noise_mode=noise_mode).clamp(-1, 1).to("cpu"))
    return torch.cat(out)


@torch.no_grad()
def toyfaces_renders(n: int, *, resolution: int, seed: int, batch: int = 250,
                     device: str | torch.device = "cpu") -> torch.Tensor:
    """``n`` renderer images with attributes from the sampler's distribution: ``[n, 3, R, R]`` in [-1, 1]
    (the GAN trainer's toyfaces data, :class:`~stylekit.train.data.ToyfacesSource`, drawn with ``seed``)."""
    from .data import ToyfacesSource

    source = ToyfacesSource(resolution, device=device)
    rng = np.random.default_rng(seed)
    return torch.cat([source.batch(min(batch, n - start), rng).to("cpu") for start in range(0, n, batch)])


@torch.no_grad()
def predictor_features(images: torch.Tensor, *, predictor=None, batch: int = 250) -> np.ndarray:
    """Toyfaces predictor features of ``images [N, 3, R, R]`` in [-1, 1]: ``[N, F]`` float64."""
    if predictor is None:
        from ..checkpoints.predictor import load_predictor

        predictor = load_predictor()
    feats = [predictor.features(images[i:i + batch]).to("cpu", torch.float64) for i in range(0, len(images), batch)]
    return torch.cat(feats).numpy()


def toyfaces_fd(G, n: int = 1000, device: str | torch.device = "cpu", *, seed: int = 0,
                truncation_psi: float = 1.0, noise_mode: str = "const", predictor=None) -> dict:
    """Fréchet distances in the toyfaces predictor's feature space.

    Args:
        G: a generator whose samples are toyfaces-like images at ``G.img_resolution``.
        n: images per set (renders A, renders B, samples).
        seed: seeds the two render sets (``seed`` and ``seed + 1``) and the latents (``seed + 2``).

    Returns: ``dict(fd_samples=FD(renders A, G samples), fd_floor=FD(renders A, renders B), n=n)``.
    """
    if n < 2:
        raise InvalidArgumentError(f"toyfaces_fd needs n >= 2, not {n}")
    if predictor is None:
        from ..checkpoints.predictor import load_predictor

        predictor = load_predictor()
    res = G.img_resolution
    renders_a = toyfaces_renders(n, resolution=res, seed=seed, device=device)
    renders_b = toyfaces_renders(n, resolution=res, seed=seed + 1, device=device)
    samples = generator_samples(G, n, seed=seed + 2, truncation_psi=truncation_psi, noise_mode=noise_mode,
                                device=device)
    return dict(fd_between(renders_a, renders_b, samples, predictor=predictor), n=n)


def fd_between(renders_a: torch.Tensor, renders_b: torch.Tensor, samples: torch.Tensor, *, predictor) -> dict:
    """``dict(fd_samples=FD(renders_a, samples), fd_floor=FD(renders_a, renders_b))`` in predictor features.

    All three are image batches ``[N, 3, R, R]`` in [-1, 1] (see :func:`toyfaces_fd`).
    """
    fa = predictor_features(renders_a, predictor=predictor)
    fb = predictor_features(renders_b, predictor=predictor)
    fs = predictor_features(samples, predictor=predictor)
    return dict(fd_samples=frechet_distance(fa, fs), fd_floor=frechet_distance(fa, fb))
