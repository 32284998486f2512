"""GANSpace (Härkönen et al., NeurIPS 2020): principal components of W as edit directions.

Sample many W codes, run PCA, and move a code along component ``k`` on a chosen range of W+ rows:

    w' = w + amount * stdev_k * comp_k          (mode 'add', amount in standard deviations)
    w' = w + (amount - coord_k(w)) * stdev_k * comp_k   (mode 'set', as e4e/PTI: put the code AT amount)

where ``coord_k(w) = (w - mean) . comp_k / stdev_k``. The first components are the most important
axes of variation (for faces: pose, gender, age, lighting); restricting them to coarse / middle /
fine rows (:mod:`stylekit.edit.layers`) makes them more specific, as the GANSpace paper shows.

Files: :func:`load_components` reads GANSpace's own ``.npz`` caches (keys ``lat_comp [K, 1, w_dim]``,
``lat_mean [1, w_dim]``, ``lat_stdev [K]`` and ``var_ratio [K]``, written by GANSpace's
``decomposition.py``) and the ``ffhq_pca.pt`` dict that e4e / PTI ship (keys ``comp``, ``mean``,
``std``); :func:`save_components` writes the GANSpace ``.npz`` layout.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import CheckpointError, InvalidArgumentError
from ..latent import Latent
from ..progress import no_progress
from .direction import Direction, _wplus, edit
from .layers import check_strength, layers_for_direction, resolve_layers

__all__ = ["PCAComponents", "fit_pca", "pca_from_codes", "component_direction", "edit_components",
           "component_coordinates", "save_components", "load_components"]


@dataclass(eq=False)
class PCAComponents:
    """Principal components of W.

    components: ``[K, w_dim]`` unit rows (orthonormal when fitted here), most variance first.
    mean:       ``[w_dim]`` the mean code.
    stdev:      ``[K]`` standard deviation of the samples' coordinates along each component.
    explained_variance_ratio: ``[K]`` share of W's total variance each component explains (sorted, descending).
    meta:       where it came from (sample count, seconds, source file...).
    """

    components: torch.Tensor
    mean: torch.Tensor
    stdev: torch.Tensor
    explained_variance_ratio: torch.Tensor | None = None
    meta: dict = field(default_factory=dict)

    @property
    def n_components(self) -> int:
        return self.components.shape[0]

    @property
    def w_dim(self) -> int:
        return self.components.shape[1]

    def check_compatible(self, G) -> None:
        if self.w_dim != G.w_dim:
            raise InvalidArgumentError(f"these PCA components are for w_dim {self.w_dim} but the generator has "
                                       f"w_dim {G.w_dim}; they were computed for another model.")

    def check_index(self, index) -> int:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < self.n_components:
            raise InvalidArgumentError(f"component {index!r} does not exist; choose 0-{self.n_components - 1}.")
        return int(index)


def pca_from_codes(codes, n_components: int | None = None, *, method: str = "svd", seed: int = 0) -> PCAComponents:
    """PCA of given W codes.

    Args:
        codes: ``[N, w_dim]`` tensor, or a W Latent (its first row is used).
        n_components: ``K`` (default ``min(N - 1, w_dim)``).
        method: ``'svd'`` (exact, ``torch.linalg.svd``) or ``'lowrank'`` (``torch.pca_lowrank``, faster for
            small ``K`` and large ``w_dim``).
        seed: for ``'lowrank'``'s random projections.

    Returns: :class:`PCAComponents`; each component's sign is fixed so that its largest-magnitude
    entry is positive (deterministic across runs).
    """
    if isinstance(codes, Latent):
        if codes.space not in ("w", "w+"):
            raise InvalidArgumentError("GANSpace works on W codes; pass a W Latent (Latent.sample(G, n)).")
        codes = codes.tensor[:, 0]
    if not isinstance(codes, torch.Tensor) or codes.ndim != 2 or codes.shape[0] < 3:
        raise InvalidArgumentError("codes must be a [N, w_dim] tensor with N >= 3 samples.")
    n, d = codes.shape
    k = min(n - 1, d) if n_components is None else n_components
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= min(n - 1, d):
        raise InvalidArgumentError(f"n_components must be an integer in 1-{min(n - 1, d)} for {n} samples of "
                                   f"dimension {d}, got {n_components!r}.")
    x = codes.detach().to(torch.float64)
    mean = x.mean(0)
    xc = x - mean
    total = xc.square().sum() / (n - 1)
    if method == "svd":
        _, s, vh = torch.linalg.svd(xc, full_matrices=False)
        comps, var = vh[:k], s[:k].square() / (n - 1)
    elif method == "lowrank":
        torch.manual_seed(seed)
        _, s, v = torch.pca_lowrank(xc, q=min(k + 8, min(n, d)), center=False, niter=6)
        comps, var = v[:, :k].t(), s[:k].square() / (n - 1)
    else:
        raise InvalidArgumentError(f"unknown PCA method {method!r}; use 'svd' or 'lowrank'.")
    order = torch.argsort(var, descending=True)
    comps, var = comps[order], var[order]
    sign = torch.sign(comps.gather(1, comps.abs().argmax(1, keepdim=True)))
    comps = comps * sign
    stdev = (xc @ comps.t()).std(dim=0)
    return PCAComponents(comps.to(torch.float32), mean.to(torch.float32), stdev.to(torch.float32),
                         (var / total).to(torch.float32), {"n_samples": int(n), "method": method})


def fit_pca(G, *, n_samples: int = 20000, n_components: int | None = 80, seed: int = 0, psi: float = 1.0,
            method: str = "svd", progress=no_progress) -> PCAComponents:
    """Sample ``n_samples`` W codes of ``G`` and compute their principal components.

    Args:
        G: the generator.
        n_samples: codes to sample (mapping only; no images are rendered, so this is cheap).
        n_components: ``K`` (capped at ``w_dim``; None = ``w_dim``).
        seed, psi: sampling seed and truncation.
        method: ``'svd'`` or ``'lowrank'`` (see :func:`pca_from_codes`).

    Returns: :class:`PCAComponents` (``meta['fit_seconds']`` holds the time taken).
    """
    t0 = time.perf_counter()
    progress(0, 2, "sampling W")
    lat = Latent.sample(G, n_samples, seed=seed, psi=psi)
    progress(1, 2, "PCA")
    k = None if n_components is None else min(int(n_components), G.w_dim, n_samples - 1)
    pca = pca_from_codes(lat.tensor[:, 0], k, method=method, seed=seed)
    progress(2, 2, "done")
    pca.meta.update({"seed": seed, "psi": psi, "fit_seconds": time.perf_counter() - t0})
    return pca


def component_direction(pca: PCAComponents, index: int, *, layers=None, G=None) -> Direction:
    """Component ``index`` as a :class:`Direction` whose strength unit is one standard deviation,
    acting on ``layers`` (default all rows; a preset name needs ``G``)."""
    i = pca.check_index(index)
    d = Direction(pca.components[i].clone(), layers_for_direction(G, layers), f"PC{i}", "ganspace", float(pca.stdev[i]), None,
                  {"explained_variance_ratio": None if pca.explained_variance_ratio is None
                   else float(pca.explained_variance_ratio[i])})
    return d


def component_coordinates(latent, pca: PCAComponents, *, G=None) -> torch.Tensor:
    """Coordinates of each W+ row along every component, in standard deviations: ``[N, num_ws, K]``
    (``coord_k(w)`` of the module docstring; the PCA projection of the codes)."""
    ws = _wplus(latent, G).tensor
    if ws.shape[-1] != pca.w_dim:
        raise InvalidArgumentError(f"the codes have w_dim {ws.shape[-1]} but the components {pca.w_dim}.")
    comps = pca.components.to(ws)
    return ((ws - pca.mean.to(ws)) @ comps.t()) / pca.stdev.to(ws).clamp_min(1e-12)


def edit_components(latent, pca: PCAComponents, edits, *, layers=None, mode: str = "add", G=None) -> Latent:
    """Apply one or more component edits.

    Args:
        latent: ``N`` codes (Z is mapped with ``G``; W/W+).
        pca: the components.
        edits: ``{index: amount}``, or a list of ``(index, amount)`` / ``(index, amount, layers)`` tuples;
            ``amount`` in standard deviations of that component (finite).
        layers: W+ rows for edits that name none (default: all rows).
        mode: ``'add'`` moves each code by ``amount`` sigmas; ``'set'`` places it at coordinate
            ``amount`` along the component (e4e / PTI's GANSpace edits), per row.
        G: the generator (maps Z, resolves presets, checks shapes).

    Returns: the edited Latent (``'w'`` if a W code moved on all rows, else ``'w+'``).
    """
    if mode not in ("add", "set"):
        raise InvalidArgumentError(f"unknown GANSpace edit mode {mode!r}; use 'add' or 'set'.")
    if G is not None:
        pca.check_compatible(G)
    items = list(edits.items()) if isinstance(edits, dict) else list(edits)
    if not items:
        raise InvalidArgumentError("no edits given; pass e.g. {0: 2.0} (component 0, +2 sigma).")
    lat = _wplus(latent, G)
    num_ws = lat.tensor.shape[1]
    for item in items:
        if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
            raise InvalidArgumentError(f"each edit must be (index, amount) or (index, amount, layers), got {item!r}.")
        index, amount = pca.check_index(item[0]), check_strength(item[1], name="amount")
        rows = resolve_layers(G, item[2] if len(item) == 3 else layers, num_ws=num_ws)
        d = component_direction(pca, index)
        if mode == "add":
            lat = edit(lat, d, amount, layers=rows, G=G)
        else:
            coord = component_coordinates(lat, pca)[..., index]  # [N, num_ws]
            comp = pca.components[index].to(lat.tensor)
            delta = (amount - coord).unsqueeze(-1) * float(pca.stdev[index]) * comp
            mask = torch.zeros(num_ws, 1, dtype=delta.dtype, device=delta.device)
            mask[list(rows)] = 1
            lat = lat.replace(space="w+", tensor=lat.tensor + delta * mask)
    return lat


# ----------------------------------------------------------------------------------------------
# Files


def save_components(pca: PCAComponents, path) -> Path:
    """Write GANSpace's ``.npz`` layout (``lat_comp [K, 1, w_dim]``, ``lat_mean [1, w_dim]``,
    ``lat_stdev [K]``, ``var_ratio [K]``; the ``act_*`` keys repeat them, as GANSpace does when the
    decomposition is done directly in W)."""
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise InvalidArgumentError(f"GANSpace components are saved as .npz, not {path.suffix or 'no extension'!r}.")
    comp = pca.components.detach().cpu().numpy().astype(np.float32)
    mean = pca.mean.detach().cpu().numpy().astype(np.float32)[None]
    std = pca.stdev.detach().cpu().numpy().astype(np.float32)
    ratio = (pca.explained_variance_ratio.detach().cpu().numpy().astype(np.float32)
             if pca.explained_variance_ratio is not None else np.full_like(std, np.nan))
    np.savez_compressed(path, lat_comp=comp[:, None, :], lat_mean=mean, lat_stdev=std, var_ratio=ratio,
                        act_comp=comp[:, None, :], act_mean=mean, act_stdev=std)
    return path


def load_components(path, *, G=None) -> PCAComponents:
    """Read PCA components: GANSpace ``.npz`` (``lat_comp``/``lat_mean``/``lat_stdev``[/``var_ratio``]) or
    the e4e / PTI ``ffhq_pca.pt`` dict (``comp``/``mean``/``std``, read with ``weights_only=True``).
    Checked against ``G`` when given."""
    path = Path(os.fspath(path))
    source = str(path)
    if not path.is_file():
        raise CheckpointError(f"{source}: no such components file.")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: np.asarray(data[k]) for k in data.files}
        except (ValueError, OSError) as exc:
            raise CheckpointError(f"{source}: not a readable .npz of numeric arrays ({exc}).") from None
        keys = ("lat_comp", "lat_mean", "lat_stdev")
        if not all(k in arrays for k in keys):
            raise CheckpointError(f"{source}: a GANSpace file needs keys {', '.join(keys)}; found {sorted(arrays)}.")
        comp, mean, std = (torch.from_numpy(arrays[k].astype(np.float32)) for k in keys)
        ratio = arrays.get("var_ratio")
        ratio = None if ratio is None else torch.from_numpy(ratio.astype(np.float32)).reshape(-1)
    elif suffix in (".pt", ".pth"):
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch raises many types for unreadable/unsafe pickles
            raise CheckpointError(f"{source}: cannot read it with torch.load(weights_only=True) "
                                  f"({type(exc).__name__}).") from None
        if not isinstance(blob, dict) or not all(isinstance(blob.get(k), torch.Tensor) for k in ("comp", "mean", "std")):
            found = sorted(blob) if isinstance(blob, dict) else type(blob).__name__
            raise CheckpointError(f"{source}: expected a dict with tensors 'comp', 'mean', 'std' (e4e/PTI's "
                                  f"ffhq_pca.pt), found {found}.")
        comp, mean, std = (blob[k].float() for k in ("comp", "mean", "std"))
        ratio = None
    else:
        raise CheckpointError(f"{source}: unknown components file type {suffix!r}; use GANSpace's .npz or a .pt dict.")
    k = comp.shape[0]
    comp = comp.reshape(k, -1)
    mean = mean.reshape(-1)
    std = std.reshape(-1)
    if mean.shape[0] != comp.shape[1] or std.shape[0] != k:
        raise CheckpointError(f"{source}: inconsistent shapes: components {list(comp.shape)}, mean {list(mean.shape)}, "
                              f"stdev {list(std.shape)}.")
    comp = comp / comp.norm(dim=1, keepdim=True).clamp_min(1e-12)
    pca = PCAComponents(comp, mean, std, ratio, {"source": source})
    if G is not None:
        pca.check_compatible(G)
    return pca
