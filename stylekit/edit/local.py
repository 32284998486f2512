"""Local editing by part transfer, after "Editing in Style" (Collins et al., CVPR 2020).

StyleGAN's feature maps are organised by object part: clustering the per-pixel feature vectors of
one synthesis layer over many samples (spherical k-means, :func:`spherical_kmeans`) gives a small
set of parts (eyes, mouth, hair, background...) that is the same for every sample. Each style
channel of each layer mostly acts where its activations are; the contribution matrix

    M_l[k, c] = mean over samples of  sum_{pixels in part k} x_c^2 / sum_{all pixels} x_c^2

(``x_c`` the input activations that layer ``l``'s style channel ``c`` modulates) is the share of
channel ``c``'s energy that falls inside part ``k``. To transfer part ``k`` from a reference code to a
target code, interpolate only the style channels that belong to that part:

    s'_l = s_l + strength * q_l * (s_ref_l - s_l),     q_l[c] in {0, 1}

where (as in the authors' code) ``q_l[c] = 1`` for the channels with the largest ``M_l[k, c]``,
taken in decreasing order while the accumulated "outside energy" ``sum (1 - M_l[k, c])`` stays
below ``epsilon``, and only if ``M_l[k, c] > rho``. Everything happens in StyleSpace, so the result
is an ``'s'`` :class:`~stylekit.latent.Latent`.

Use :func:`find_parts` once per generator (it renders ``n_samples`` codes up to the clustered layer, then in full), look at
:func:`part_masks` to see which cluster is which part, optionally name them
(:meth:`PartSegmentation.with_names`), then :func:`transfer_part`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InvalidArgumentError
from ..latent import Latent
from ..progress import no_progress
from .direction import as_latent
from .hooks import record_activations
from .layers import check_strength, resolve_layers, style_layer_resolutions

__all__ = ["spherical_kmeans", "PartSegmentation", "find_parts", "part_masks", "part_channels", "transfer_part",
           "default_cluster_layer"]


# ----------------------------------------------------------------------------------------------
# Spherical k-means


def spherical_kmeans(x: torch.Tensor, k: int, *, iters: int = 50, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Cluster the directions of ``x [P, C]`` (rows are L2-normalised; similarity is the cosine).

    Initialisation is k-means++ on cosine distance with a seeded generator; empty clusters are
    re-seeded with the worst-fitting point.

    Returns: ``(centroids [k, C] unit rows, labels [P] long)``.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 2 <= k <= x.shape[0]:
        raise InvalidArgumentError(f"the number of parts must be an integer in 2-{x.shape[0]}, got {k!r}.")
    gen = torch.Generator().manual_seed(seed)
    x = F.normalize(x.detach().to(torch.float32).cpu(), dim=1)
    p = x.shape[0]
    first = int(torch.randint(p, (1,), generator=gen))
    cents = [x[first]]
    best = (x @ x[first]).clamp(-1, 1)
    for _ in range(1, k):
        dist = (1 - best).clamp_min(0) + 1e-12
        idx = int(torch.multinomial(dist, 1, generator=gen))
        cents.append(x[idx])
        best = torch.maximum(best, x @ x[idx])
    c = torch.stack(cents)
    labels = torch.full((p,), -1, dtype=torch.long)
    for _ in range(iters):
        sim = x @ c.t()
        new = sim.argmax(1)
        if torch.equal(new, labels):
            break
        labels = new
        sums = torch.zeros_like(c).index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=k)
        for j in torch.nonzero(counts == 0).flatten().tolist():
            worst = int(sim.max(1).values.argmin())
            sums[j] = x[worst]
            labels[worst] = j
        c = F.normalize(sums, dim=1)
    return c, labels


# ----------------------------------------------------------------------------------------------
# Finding parts


@dataclass(eq=False)
class PartSegmentation:
    """Semantic parts of a generator found by :func:`find_parts`.

    layer:         the synthesis layer whose output features were clustered.
    centroids:     ``[K, C]`` unit cluster centres in that layer's feature space.
    contributions: one entry per ``G.style_layers`` entry: ``[K, C_l]`` shares ``M_l[k, c]`` (each column
                   sums to 1 over ``k``), or None for a style without spatial input (StyleGAN3's ``input``).
    area:          ``[K]`` mean fraction of the image each part covers.
    names:         optional names for parts: ``{'eyes': (3,), 'hair': (1, 4)}``.
    meta:          sample count, seconds...
    """

    layer: str
    centroids: torch.Tensor
    contributions: list[torch.Tensor | None]
    area: torch.Tensor
    names: dict[str, tuple[int, ...]] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    @property
    def n_parts(self) -> int:
        return self.centroids.shape[0]

    def with_names(self, names: dict[str, int | tuple[int, ...] | list[int]]) -> "PartSegmentation":
        """A copy with named parts (a name may cover several clusters), e.g. ``{'mouth': 2, 'hair': [0, 5]}``."""
        out = dict(self.names)
        for name, clusters in names.items():
            out[str(name)] = self.resolve(clusters)
        return replace(self, names=out)

    def resolve(self, part) -> tuple[int, ...]:
        """Cluster indices for a part given as an index, a list of indices or a name."""
        if isinstance(part, str):
            if part in self.names:
                return self.names[part]
            raise InvalidArgumentError(f"unknown part {part!r}; named parts are: "
                                       f"{', '.join(self.names) or 'none yet (name them with with_names)'}; or pass "
                                       f"a cluster index 0-{self.n_parts - 1}.")
        items = [part] if isinstance(part, (int, np.integer)) and not isinstance(part, bool) else list(part)
        if not items or not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) and 0 <= i < self.n_parts
                                for i in items):
            raise InvalidArgumentError(f"part {part!r} does not exist; pass cluster indices in 0-{self.n_parts - 1} or "
                                       f"a name ({', '.join(self.names) or 'none named yet'}).")
        return tuple(sorted({int(i) for i in items}))


def default_cluster_layer(G) -> str:
    """The conv layer whose output is clustered by default: the last one working at <= 32 px
    (Collins et al. use 32x32 features for FFHQ)."""
    best = None
    for sl, res in zip(G.style_layers, style_layer_resolutions(G)):
        if sl.kind == "conv" and res <= 32 * 1.01:
            best = sl.name
    if best is None:
        best = next(sl.name for sl in G.style_layers if sl.kind == "conv")
    return best


def _crop(module, x: torch.Tensor, which: str) -> torch.Tensor:
    """Drop StyleGAN3's canvas margin so feature maps cover the image only (no-op for StyleGAN2)."""
    rate = getattr(module, f"{'out' if which == 'output' else 'in'}_sampling_rate", None)
    if rate is None or x.ndim != 4:
        return x
    rate = int(round(float(rate)))
    h, w = x.shape[-2:]
    if h <= rate or w <= rate:
        return x
    top, left = (h - rate) // 2, (w - rate) // 2
    return x[..., top:top + rate, left:left + rate]


class _Stop(Exception):
    """Raised by a forward hook to end a synthesis pass once the layer it needs has run."""


def _render_batches(G, ws, batch_size, record, which, noise_mode, stop_after: str | None = None):
    """Yield (batch index slice, Activations) for each batch of W+ codes. With ``stop_after`` (a submodule
    of ``G.synthesis``), each pass ends right after that module ran: the layers above it are not computed
    (part finding's first pass needs only the clustered 32 px layer, a small share of a 1024 px synthesis).
    The pass ends once that module has output every code of the batch (the fast path may run the finer
    layers one code at a time)."""
    for i in range(0, ws.shape[0], batch_size):
        rows = ws[i:i + batch_size].shape[0]
        seen = [0]

        def stop(module, inputs, output, rows=rows, seen=seen):
            seen[0] += output.shape[0]
            if seen[0] >= rows:
                raise _Stop

        with record_activations(G.synthesis, record, which=which) as acts:
            handle = G.synthesis.get_submodule(stop_after).register_forward_hook(stop) if stop_after else None
            try:
                G.synthesis(ws[i:i + batch_size], noise_mode=noise_mode)
            except _Stop:
                pass
            finally:
                if handle is not None:
                    handle.remove()
        yield slice(i, i + batch_size), acts


@torch.no_grad()
def find_parts(G, *, n_parts: int = 8, layer: str | None = None, n_samples: int = 64, seed: int = 0,
               psi: float = 0.7, max_pixels: int = 60000, iters: int = 50, batch_size: int = 8,
               noise_mode: str = "const", progress=no_progress) -> PartSegmentation:
    """Cluster one layer's features into parts and compute every style channel's contribution to each part.

    Args:
        G: the generator.
        n_parts: ``K``, the number of clusters (the paper uses a handful to a dozen).
        layer: the synthesis layer to cluster (a style-layer name such as ``'b32.conv1'``; default
            :func:`default_cluster_layer`).
        n_samples: random codes rendered (twice: once up to ``layer`` to cluster, once in full to measure
            contributions).
        seed, psi: sampling seed and truncation.
        max_pixels: at most this many pixel features (drawn at random) go into k-means.
        iters: k-means iterations.
        batch_size: codes per synthesis call.

    Returns: a :class:`PartSegmentation`.
    """
    t0 = time.perf_counter()
    names = [sl.name for sl in G.style_layers]
    layer = default_cluster_layer(G) if layer is None else layer
    if layer not in names:
        raise InvalidArgumentError(f"unknown layer {layer!r} to cluster; use one of the conv layers: "
                                   f"{', '.join(sl.name for sl in G.style_layers if sl.kind == 'conv')}.")
    module = G.synthesis.get_submodule(layer)
    ws = Latent.sample(G, n_samples, seed=seed, psi=psi).tensor
    gen = torch.Generator().manual_seed(seed)

    # Pass 1: features of the clustered layer -> spherical k-means
    feats = []
    total = 2 * math.ceil(n_samples / batch_size)
    step = 0
    for _, acts in _render_batches(G, ws, batch_size, [layer], "output", noise_mode, stop_after=layer):
        f = _crop(module, acts[layer], "output").float()
        feats.append(f.permute(0, 2, 3, 1).reshape(-1, f.shape[1]).cpu())
        step += 1
        progress(step, total, "clustering features")
    feats = torch.cat(feats)
    if feats.shape[0] > max_pixels:
        feats = feats[torch.randperm(feats.shape[0], generator=gen)[:max_pixels]]
    centroids, _ = spherical_kmeans(feats, n_parts, iters=iters, seed=seed)
    del feats

    # Pass 2: every style layer's input energy per part
    spatial = [sl for sl in G.style_layers if sl.kind != "input"]
    record = [sl.name for sl in spatial]
    energy = {sl.name: torch.zeros(n_parts, sl.channels, dtype=torch.float64) for sl in spatial}
    area = torch.zeros(n_parts, dtype=torch.float64)
    with record_activations(G.synthesis, [layer], which="output") as out_acts:
        for sel, acts in _render_batches(G, ws, batch_size, record, "input", noise_mode):
            f = _crop(module, out_acts[layer], "output").float()
            out_acts.clear()
            onehot = _assign(f, centroids)  # [B, K, h, w]
            area += onehot.mean(dim=(2, 3)).sum(0).double().cpu()
            for sl in spatial:
                x = _crop(G.synthesis.get_submodule(sl.name), acts[sl.name], "input").float()
                u = F.interpolate(onehot, size=x.shape[-2:], mode="area") if onehot.shape[-2:] != x.shape[-2:] else onehot
                e = x.square()
                e = e / e.sum(dim=(2, 3), keepdim=True).clamp_min(1e-12)  # per sample, per channel shares
                energy[sl.name] += torch.einsum("bchw,bkhw->kc", e, u).double().cpu()
            step += 1
            progress(step, total, "measuring channel contributions")
    contributions = []
    for sl in G.style_layers:
        if sl.name in energy:
            m = energy[sl.name] / n_samples
            contributions.append((m / m.sum(0, keepdim=True).clamp_min(1e-12)).float())
        else:
            contributions.append(None)
    meta = {"n_samples": n_samples, "seed": seed, "psi": psi, "fit_seconds": time.perf_counter() - t0}
    return PartSegmentation(layer, centroids, contributions, (area / n_samples).float(), {}, meta)


def _assign(features: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """One-hot part membership ``[N, K, h, w]`` of feature maps ``[N, C, h, w]``."""
    f = F.normalize(features.float(), dim=1)
    sim = torch.einsum("nchw,kc->nkhw", f, centroids.to(f))
    labels = sim.argmax(1)
    return F.one_hot(labels, centroids.shape[0]).permute(0, 3, 1, 2).to(f.dtype)


@torch.no_grad()
def part_masks(G, parts: PartSegmentation, latent, *, size: int | None = None, noise_mode: str = "const") -> torch.Tensor:
    """Which part every pixel of the rendered codes belongs to: ``[N, size, size]`` long in ``[0, K)``
    (default ``size`` = the image resolution; nearest-neighbour upsampling of the clustered layer)."""
    lat = as_latent(latent, G)
    renderer = lat.generator if lat.generator is not None else G
    with record_activations(renderer.synthesis, [parts.layer], which="output") as acts:
        lat.render(G, noise_mode=noise_mode)
    f = _crop(renderer.synthesis.get_submodule(parts.layer), acts[parts.layer], "output")
    f = F.normalize(f.float(), dim=1)
    if f.shape[1] != parts.centroids.shape[1]:
        raise InvalidArgumentError("these parts were found on another generator (feature sizes differ); run "
                                   "find_parts(G) for this one.")
    labels = torch.einsum("nchw,kc->nkhw", f, parts.centroids.to(f)).argmax(1)
    size = G.img_resolution if size is None else int(size)
    return F.interpolate(labels[:, None].float(), size=(size, size), mode="nearest")[:, 0].long()


def part_channels(parts: PartSegmentation, part, *, rho: float = 0.3, epsilon: float = 4.0) -> list[torch.Tensor]:
    """The interpolation mask ``q_l [C_l]`` (0/1) of every style layer for ``part``.

    Args:
        parts: from :func:`find_parts`.
        part: cluster index, list of indices, or a name set with :meth:`PartSegmentation.with_names`.
        rho: a channel must put more than this share of its energy in the part (0-1).
        epsilon: budget of accumulated outside energy ``sum (1 - M)`` over the chosen channels of a
            layer, taken in decreasing order of ``M`` (larger = more channels, less local).

    Returns: one ``[C_l]`` float tensor per style layer (all zeros for layers without spatial input).
    """
    clusters = parts.resolve(part)
    rho = float(check_strength(rho, name="rho"))
    epsilon = float(check_strength(epsilon, name="epsilon"))
    if not 0 <= rho < 1 or epsilon < 0:
        raise InvalidArgumentError(f"rho must be in [0, 1) and epsilon >= 0, got rho={rho}, epsilon={epsilon}.")
    out = []
    for m in parts.contributions:
        if m is None:
            out.append(None)
            continue
        share = m[list(clusters)].sum(0)  # [C]
        order = torch.argsort(share, descending=True)
        within = torch.cumsum(1 - share[order], 0) < epsilon
        q = torch.zeros_like(share)
        q[order[within]] = 1
        q = q * (share > rho).to(q.dtype)
        out.append(q)
    return out


def transfer_part(G, target, reference, parts: PartSegmentation, part, *, strength: float = 1.0, rho: float = 0.3,
                  epsilon: float = 4.0, layers=None) -> Latent:
    """Give ``target`` the ``part`` (eyes, mouth, hair...) of ``reference``.

    Args:
        G: the generator.
        target: ``N`` or 1 codes to edit (any space; converted to S).
        reference: ``N`` or 1 codes to borrow the part from.
        parts: from :func:`find_parts` on this generator.
        part: cluster index / indices or a name.
        strength: blend factor (1 = take the reference's channels fully; 0.5 halfway; finite).
        rho, epsilon: channel selection (see :func:`part_channels`).
        layers: restrict to style layers fed by these W+ rows (indices, range or preset; default all).

    Returns: an ``'s'`` Latent; only the selected channels differ from ``target``.
    """
    t = as_latent(target, G).to_styles(G)
    r = as_latent(reference, G).to_styles(G)
    if len(parts.contributions) != len(G.style_layers) or any(
            m is not None and m.shape[1] != sl.channels for m, sl in zip(parts.contributions, G.style_layers)):
        raise InvalidArgumentError("these parts were found on another generator; run find_parts(G) for this one.")
    nt, nr = t.batch_size, r.batch_size
    if nt != nr and 1 not in (nt, nr):
        raise InvalidArgumentError(f"cannot combine {nt} target codes with {nr} reference codes; use the same number or one.")
    k = check_strength(strength)
    rows = set(resolve_layers(G, layers))
    q = part_channels(parts, part, rho=rho, epsilon=epsilon)
    n = max(nt, nr)
    styles = []
    for sl, s_t, s_r, q_l in zip(G.style_layers, t.tensor, r.tensor, q):
        s_t = s_t.expand(n, -1)
        if q_l is None or sl.ws_index not in rows or not bool(q_l.any()):
            styles.append(s_t.clone())
            continue
        w = (k * q_l).to(s_t).unsqueeze(0)
        styles.append(s_t + w * (s_r.expand(n, -1) - s_t))
    return t.replace(tensor=styles)
