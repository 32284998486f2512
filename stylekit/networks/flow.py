"""AttributeFlow: a conditional continuous normalizing flow between W and a Gaussian, conditioned on attributes.

After StyleFlow (Abdal et al., ACM TOG 2021): a continuous normalizing flow (CNF) ``w <-> eps`` whose vector
field also sees an attribute vector ``a``; mapping a code to ``eps`` with its own attributes and back with one
attribute changed edits that attribute and keeps what ``eps`` holds (everything the attributes do not say):

    w    [N, D]   --standardise x = (w - w_mean) / w_std (per dimension)-->   x(0)
    ODE  dx/dt = f(t, x, c),  t from 0 to 1,  c = 2 a - 1  (a: [N, A] attributes in unit scale)
    eps  = x(1)   [N, D], distributed N(0, I) for every c once trained

``f`` is zuko's free-form Jacobian transform (``zuko.flows.continuous.FFJTransform``: an MLP of ``x``, ``c`` and a
sine / cosine embedding of ``t``), and zuko integrates it (adaptive Dormand-Prince, checkpoint adjoint) both
ways and gives the exact log-density through the Jacobian trace. zuko is imported when a flow is built, never
at import time. ``D`` = ``w_dim``; ``A`` = the number of attributes, each a named value with a kind and range
(:class:`~stylekit.networks.rig.RigParam`, shared with the rig networks) that travels in the config.

Two training objectives use the same network: :meth:`AttributeFlow.flow_matching_loss` (conditional flow
matching with straight paths, Lipman et al. 2023: simulation-free, one evaluation of ``f`` per code, what the
shipped toyfaces flow used) and :meth:`AttributeFlow.nll` (maximum likelihood through the ODE, StyleFlow's own
objective, FFJORD's Hutchinson trace estimate; every step integrates the ODE, far slower on a CPU).
:mod:`stylekit.edit.styleflow` reads and writes the files and edits :class:`~stylekit.latent.Latent` codes.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Sequence

import torch
from torch import nn

from ..errors import CheckpointError
from .rig import RigParam

__all__ = ["AttributeFlow"]


class AttributeFlow(nn.Module):
    """A conditional CNF on standardised W codes ``[N, D]`` given attributes in unit scale ``[N, A]``.

    Args:
        w_dim: ``D``, the generator's W width.
        attributes: the conditioning attributes, in order (:class:`RigParam` or dicts with its fields).
        hidden: the vector field MLP's hidden widths.
        freqs: time-embedding frequencies (``2 freqs`` inputs).
        w_mean, w_std: per-dimension standardisation of W (``[D]`` each; default 0 and 1). Training sets them
            from the generator's samples; they are buffers and travel with the weights.
        atol, rtol: the ODE solver's tolerances when mapping codes.
    """

    def __init__(self, w_dim: int, attributes: Sequence[RigParam | dict], hidden: Sequence[int] = (256, 256, 256),
                 freqs: int = 4, *, w_mean: torch.Tensor | None = None, w_std: torch.Tensor | None = None,
                 atol: float = 1e-5, rtol: float = 1e-4):
        super().__init__()
        from zuko.flows.continuous import FFJTransform

        attributes = tuple(p if isinstance(p, RigParam) else RigParam(**p) for p in attributes)
        if not attributes or any(p.kind not in ("binary", "continuous") or not p.high > p.low for p in attributes):
            raise CheckpointError("a flow needs at least one attribute, each 'binary' or 'continuous' with high > low.")
        if len({p.name for p in attributes}) != len(attributes):
            raise CheckpointError(f"the flow's attribute names repeat: {[p.name for p in attributes]}.")
        hidden = tuple(int(h) for h in hidden)
        if int(w_dim) < 1 or int(freqs) < 1 or not hidden or min(hidden) < 1:
            raise CheckpointError(f"AttributeFlow sizes must be >= 1 (w_dim {w_dim}, hidden {hidden}, freqs {freqs}).")
        self.attributes = attributes
        self.attribute_names = tuple(p.name for p in attributes)
        self.w_dim, self.freqs, self.hidden = int(w_dim), int(freqs), hidden
        self.config = {"w_dim": self.w_dim, "hidden": list(hidden), "freqs": self.freqs, "atol": float(atol),
                       "rtol": float(rtol), "attributes": [asdict(p) for p in attributes]}
        self.transform = FFJTransform(self.w_dim, len(attributes), freqs=self.freqs, atol=atol, rtol=rtol,
                                      exact=True, hidden_features=hidden)
        D = self.w_dim
        mean = torch.zeros(D) if w_mean is None else torch.as_tensor(w_mean, dtype=torch.float32).reshape(D)
        std = torch.ones(D) if w_std is None else torch.as_tensor(w_std, dtype=torch.float32).reshape(D)
        self.register_buffer("w_mean", mean.clone())
        self.register_buffer("w_std", std.clone())

    # -- conditioning and standardisation ------------------------------------------------------
    def context(self, unit: torch.Tensor) -> torch.Tensor:
        """Attributes in unit scale ``[N, A]`` -> the vector field's context ``[N, A]`` in ``[-1, 1]``."""
        if unit.ndim != 2 or unit.shape[1] != len(self.attributes):
            raise CheckpointError(f"the flow is conditioned on {len(self.attributes)} attributes "
                                  f"({', '.join(self.attribute_names)}), got attributes of shape {tuple(unit.shape)}.")
        return unit.to(self.w_mean.dtype) * 2 - 1

    def standardise(self, w: torch.Tensor) -> torch.Tensor:
        return (w - self.w_mean) / self.w_std

    def unstandardise(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.w_std + self.w_mean

    def velocity(self, t: torch.Tensor, x: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
        """The vector field ``f(t, x, c)``: ``t [N]`` (or a scalar), ``x [N, D]`` standardised, ``unit [N, A]``."""
        return self.transform.f(torch.as_tensor(t, dtype=x.dtype, device=x.device), x, self.context(unit))

    # -- mapping codes ----------------------------------------------------------------------------
    def to_noise(self, w: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
        """``w [N, D]`` with attributes ``unit [N, A]`` -> ``eps [N, D]`` (integrates ``t`` from 0 to 1)."""
        return self.transform(self.context(unit))(self.standardise(w))

    def from_noise(self, eps: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
        """``eps [N, D]`` with attributes ``unit [N, A]`` -> ``w [N, D]`` (integrates ``t`` from 1 to 0)."""
        return self.unstandardise(self.transform(self.context(unit)).inv(eps))

    def log_prob(self, w: torch.Tensor, unit: torch.Tensor, *, exact: bool = True) -> torch.Tensor:
        """``log p(w | a)`` per code ``[N]`` (nats; exact Jacobian trace, or Hutchinson's estimate)."""
        x = self.standardise(w)
        previous, self.transform.exact = self.transform.exact, exact
        try:
            eps, ladj = self.transform(self.context(unit)).call_and_ladj(x)
        finally:
            self.transform.exact = previous
        base = -0.5 * eps.square().sum(-1) - 0.5 * self.w_dim * math.log(2 * math.pi)
        return base + ladj - self.w_std.log().sum()

    # -- training objectives --------------------------------------------------------------------
    def flow_matching_loss(self, w: torch.Tensor, unit: torch.Tensor, gen: torch.Generator | None = None
                           ) -> torch.Tensor:
        """Conditional flow matching on straight paths ``x_t = (1 - t) x + t eps`` (target velocity ``eps - x``):
        the mean squared error of ``f`` per dimension, a scalar. ``gen`` draws ``t`` and ``eps`` (on the CPU)."""
        x = self.standardise(w)
        n = x.shape[0]
        t = torch.rand(n, 1, generator=gen).to(x.device, x.dtype)
        eps = torch.randn(x.shape, generator=gen).to(x.device, x.dtype)
        xt = (1 - t) * x + t * eps
        return (self.velocity(t.squeeze(1), xt, unit) - (eps - x)).square().mean()

    def nll(self, w: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
        """StyleFlow's maximum-likelihood objective: mean ``-log p(w | a) / D`` (Hutchinson trace), a scalar."""
        return -self.log_prob(w, unit, exact=False).mean() / self.w_dim
