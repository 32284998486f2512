"""Names for the clusters of part finding (Local edits tab), read from the toyfaces world.

A toyfaces latent's first coordinates fix its attributes, so the renderer can draw the same face twice
with one attribute at two extremes; the pixels that differ are that feature's region (hair colour 0 vs 1
gives the hair, skin tone the skin, eyes open vs closed the eyes, and so on). Each cluster takes the
name of the region holding most of its pixels over a few faces, when that share is
clear (at least :data:`MIN_SHARE` of the cluster's pixels lie in it); otherwise it stays ``part k``.
Other models get ``part k`` names.
"""

from __future__ import annotations

import torch

#: region name -> (attribute, its two extreme values); a region's mask is where the renders differ
REGIONS = {
    "background": [("background_hue", 0.0, 0.5)],
    "hair": [("hair_color", 0.0, 1.0)],
    "skin": [("skin_tone", 0.0, 1.0)],
    "eyes": [("eyes_open", 0.0, 1.0)],
    "mouth": [("mouth_open", 0.0, 1.0), ("smile", -1.0, 1.0)],
}
MIN_SHARE = 0.6  # below this share of its pixels in one region a cluster keeps its number
SEEDS = range(16)


def _region_masks(z: torch.Tensor, size: int) -> dict[str, torch.Tensor]:
    """Region name -> ``[N, size, size]`` bool masks for the faces of latents ``z [N, z_dim]``."""
    from stylekit.toyfaces.latents import z_to_attributes
    from stylekit.toyfaces.renderer import render_batch

    attrs = z_to_attributes(z)
    masks = {}
    for name, changes in REGIONS.items():
        mask = torch.zeros(z.shape[0], size, size, dtype=torch.bool)
        for attribute, low, high in changes:
            a = dict(attrs, **{attribute: low, "glasses": 0.0})
            b = dict(attrs, **{attribute: high, "glasses": 0.0})
            diff = (render_batch(a, size=size) - render_batch(b, size=size)).abs().amax(1)
            mask |= diff > 0.2
        masks[name] = mask
    masks["skin"] &= ~(masks["eyes"] | masks["mouth"])  # skin tone also colours the lips and lids
    # the clothed shoulders: the lower part of the picture that none of the features above covers
    rest = ~torch.stack(list(masks.values())).any(0)
    rest[:, : int(size * 0.6)] = False
    masks["shoulders"] = rest
    return masks


def name_parts(G, parts, n_parts: int) -> list[str]:
    """One name per cluster: the toyfaces region that holds most of it (``'hair'``, ``'eyes'``...; a second
    cluster of the same region is ``'hair (2)'``), or ``'part k'``."""
    from stylekit.edit.local import part_masks
    from stylekit.latent import Latent

    z = Latent.seed_z(G, list(SEEDS), device="cpu")  # on purpose: the toyfaces renderer draws the regions on the CPU
    latents = Latent.cat([Latent.from_seed(G, s, psi=1.0) for s in SEEDS])
    size = G.img_resolution
    regions = _region_masks(z, size)
    labels = part_masks(G, parts, latents, size=size).cpu()  # the regions are drawn on the CPU
    names, used = [], {}
    for k in range(n_parts):
        cluster = labels == k
        size_k = cluster.sum().item()
        shares = {name: (cluster & mask).sum().item() / size_k if size_k else 0.0 for name, mask in regions.items()}
        best = max(shares, key=shares.get)
        if shares[best] < MIN_SHARE:
            names.append(f"part {k}")
            continue
        used[best] = used.get(best, 0) + 1
        names.append(best if used[best] == 1 else f"{best} ({used[best]})")
    return names
