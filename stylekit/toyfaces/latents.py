"""Labelled latents: the fixed map from a generator's z to toyfaces attributes.

The toyfaces generator is trained so that the first ``A`` coordinates of its latent (``A`` = the
number of attributes, in :data:`~stylekit.toyfaces.attributes.ATTRIBUTES` order) carry the
attributes: every sample has a known ground truth (:func:`z_to_attributes`) and a target image
(:func:`render_targets`, the render of those attributes).

**The map.** The mapping network first normalises z to ``x = z / rms(z)`` (a point on the sphere of
radius ``sqrt(z_dim)``), so the map reads ``x``, the exact input the network sees; reading raw ``z``
would leave the network unable to tell ``z`` from ``2 z`` and blur every target. The first ``A``
dims of ``x`` go through their exact marginal CDF to ``u`` in ``[0, 1]`` (uniform): for a uniform
point on that sphere, ``(x_j / sqrt(d) + 1) / 2`` is ``Beta((d-1)/2, (d-1)/2)``; this CDF tends to
the standard normal CDF as ``d`` grows. Continuous attributes are ``low + u (high - low)``
(uniform, as in the sampler); a binary attribute is 1 when ``u < p`` with ``p`` its prior, so it is
1 with the sampler's probability. The remaining ``z_dim - A`` dims are free (they carry nothing the
renderer uses; the renderer's seed only adds tiny pixel noise, which the targets leave out).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from ..errors import InvalidArgumentError

__all__ = ["sphere_marginal_table", "z_to_unit", "z_to_attributes", "render_targets"]


@lru_cache(maxsize=8)
def sphere_marginal_table(dim: int, points: int = 200_001) -> tuple[np.ndarray, np.ndarray]:
    """CDF table of ``t = x_j / sqrt(dim)`` for ``x`` uniform on the sphere of radius ``sqrt(dim)``.

    Density ``proportional to (1 - t^2)^((dim - 3) / 2)`` on ``[-1, 1]``; returns ``(t [P], cdf [P])``.
    """
    t = np.linspace(-1.0, 1.0, points)
    if dim == 1:  # the "sphere" is {-1, +1}
        return np.array([-1.0, 0.0, 0.0, 1.0]), np.array([0.0, 0.5, 0.5, 1.0])
    log_pdf = 0.5 * (dim - 3) * np.log(np.clip(1.0 - t * t, 1e-300, None))
    pdf = np.exp(log_pdf - log_pdf.max())
    if dim == 2:  # density (1 - t^2)^(-1/2): integrate the arcsine law in closed form
        return t, 0.5 + np.arcsin(t) / math.pi
    cdf = np.concatenate([[0.0], np.cumsum((pdf[1:] + pdf[:-1]) * 0.5 * np.diff(t))])
    return t, cdf / cdf[-1]


def z_to_unit(z: torch.Tensor | np.ndarray, num_attributes: int | None = None) -> np.ndarray:
    """The uniform variables ``u [N, A]`` in ``[0, 1]`` that :func:`z_to_attributes` reads from ``z [N, z_dim]``.

    ``u_j = CDF_d(x_j)`` with ``x = z / rms(z)`` (the mapping network's normalisation) and
    ``CDF_d`` the exact marginal CDF of one coordinate on the sphere of radius ``sqrt(d)``,
    ``d = z_dim``. For ``z ~ N(0, I)`` each ``u_j`` is exactly uniform.
    """
    from .attributes import ATTRIBUTES

    a = len(ATTRIBUTES) if num_attributes is None else num_attributes
    if isinstance(z, torch.Tensor):
        z = z.detach().to("cpu", torch.float64).numpy()
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < a:
        raise InvalidArgumentError(
            f"z must be [N, z_dim] with z_dim >= {a} (one dimension per toyfaces attribute), got shape {z.shape}")
    d = z.shape[1]
    x = z / np.sqrt(np.mean(z * z, axis=1, keepdims=True) + 1e-8)
    t, cdf = sphere_marginal_table(d)
    return np.clip(np.interp(x[:, :a] / math.sqrt(d), t, cdf), 0.0, 1.0)


def z_to_attributes(z: torch.Tensor | np.ndarray) -> dict[str, np.ndarray]:
    """The fixed map from latents ``z [N, z_dim]`` to toyfaces attributes (dict name -> float32 ``[N]``).

    Continuous attributes are uniform on ``[low, high]`` and binaries are 1 with the sampler's prior
    probability when ``z ~ N(0, I)`` (see the module docstring).
    """
    from .attributes import ATTRIBUTES, attribute_priors, unit_to_attributes

    u = z_to_unit(z, len(ATTRIBUTES))
    priors = attribute_priors()
    unit = u.copy()
    for j, spec in enumerate(ATTRIBUTES):
        if spec.kind == "binary":
            unit[:, j] = (u[:, j] < priors[spec.name]).astype(np.float64)
    return unit_to_attributes(unit)


def render_targets(z: torch.Tensor, resolution: int, device="cpu", compiled: bool = False) -> torch.Tensor:
    """Renders of ``z_to_attributes(z)`` for ``z [N, z_dim]``: ``[N, 3, R, R]`` float32 in ``[-1, 1]`` (no pixel noise).

    ``compiled``: draw through ``torch.compile`` (see :func:`~stylekit.toyfaces.renderer.render_batch`)."""
    from .renderer import render_batch

    attrs = z_to_attributes(z)
    img = render_batch(attrs, size=resolution, seeds=None, device=device, compiled=compiled)
    return img.to(torch.float32)
