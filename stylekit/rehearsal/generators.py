"""Full-size random-weight generators in the official formats (NVIDIA pickles, rosinality state dicts).

Every network is stylekit's own, built from the official constructor kwargs, then given random
weights drawn from a seeded ``torch.Generator`` (so a file is the same on every build with the same
torch): weights and constant inputs standard normal (NVIDIA's initialisation), biases as initialised,
``noise_const`` maps standard normal, ``noise_strength`` 0.1 and ``w_avg`` 0.3 x standard normal (so a
loader must carry them, as in ``tests/fixtures``). Snapshots also hold the training configuration's
discriminator (:mod:`.discriminator`), so a file has the real size.
"""

from __future__ import annotations

from typing import BinaryIO

import torch

from .nvidia_pickle import official_kwargs, write_nvidia_pickle

#: kind -> (architecture, official kwargs kind)
NVIDIA_KINDS = {"stylegan2": "stylegan2", "stylegan3-t": "stylegan3", "stylegan3-r": "stylegan3"}


def randomize_(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Redraw ``module``'s tensors in place from ``torch.Generator().manual_seed(seed)`` (see module doc)."""
    g = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for _, sub in module.named_modules():
            for leaf, p in sub.named_parameters(recurse=False):
                if leaf == "noise_strength":
                    p.fill_(0.1)
                elif leaf in ("weight", "const") and bool(p.abs().sum() > 0):  # zero-initialised weights stay zero
                    # FullyConnectedLayer stores randn / lr_multiplier (bias_gain is its lr_multiplier)
                    scale = 1.0 / float(getattr(sub, "bias_gain", 1.0)) if leaf == "weight" and p.ndim == 2 else 1.0
                    p.copy_(torch.randn(p.shape, generator=g) * scale)
            for leaf, b in sub.named_buffers(recurse=False):
                if leaf == "noise_const":
                    b.copy_(torch.randn(b.shape, generator=g))
                elif leaf == "w_avg":
                    b.copy_(torch.randn(b.shape, generator=g) * 0.3)
    return module


def build_nvidia_generator(kind: str, resolution: int = 1024, *, seed: int = 0):
    """A random-weight stylekit generator of ``kind`` (``'stylegan2'``, ``'stylegan3-t'``, ``'stylegan3-r'``)
    built from the official kwargs; returns ``(G, kwargs)``."""
    from ..checkpoints.build import build_generator

    kwargs = official_kwargs(kind, resolution)
    with torch.random.fork_rng(devices=[]):  # construction draws from the global RNG; keep the caller's state
        torch.manual_seed(int(seed))
        G = build_generator(NVIDIA_KINDS[kind], dict(kwargs), source=f"rehearsal {kind}")
    return randomize_(G.eval().requires_grad_(False), seed), kwargs


def nvidia_pickle_writer(kind: str, resolution: int = 1024, *, seed: int = 0, with_d: bool = True):
    """A ``produce(fh)`` function writing the NVIDIA snapshot of a random ``kind`` generator (with the
    official training configuration's discriminator as ``D`` when ``with_d``)."""

    def produce(fh: BinaryIO) -> None:
        from .discriminator import discriminator_kwargs, discriminator_record

        G, kwargs = build_nvidia_generator(kind, resolution, seed=seed)
        D = discriminator_record(discriminator_kwargs(resolution), seed=seed + 1) if with_d else None
        write_nvidia_pickle(G, kwargs, fh, D=D)

    return produce


def rosinality_state(channels: dict[int, int], *, style_dim: int = 512, n_mlp: int = 8, seed: int = 0,
                     lr_mlp: float = 0.01) -> dict[str, torch.Tensor]:
    """A random rosinality ``Generator.state_dict()`` (the ``decoder.*`` of e4e / pSp checkpoints).

    Names and shapes are rosinality's ``model.py`` (as :mod:`stylekit.checkpoints.rosinality_shapes`
    reads them); mapping weights are ``randn / lr_mlp`` (EqualLinear's storage), modulation biases 1,
    blur kernels ``outer([1,3,3,1])/64 * 4`` (``Blur`` with upsample factor 2), noise maps standard normal.
    """
    from ..checkpoints.rosinality_shapes import _expected_shapes

    g = torch.Generator().manual_seed(int(seed))
    shapes, _optional = _expected_shapes(style_dim=style_dim, n_mlp=n_mlp, channels=channels, img_channels=3, blur=4)
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    blur = torch.outer(taps, taps) / taps.sum() ** 2 * 4
    state = {}
    for key, shape in shapes.items():
        if key.endswith(("blur.kernel", "upsample.kernel")):
            value = blur.clone()
        elif key.startswith("style.") and key.endswith(".weight"):
            value = torch.randn(shape, generator=g) / lr_mlp
        elif key.endswith("modulation.bias"):
            value = torch.ones(shape)
        elif key.endswith(("activate.bias", ".bias")) or key.startswith("style."):
            value = torch.zeros(shape)
        elif key.endswith("noise.weight"):
            value = torch.full(shape, 0.1)
        else:
            value = torch.randn(shape, generator=g)
        state[key] = value
    return state


def ffhq_channels(resolution: int = 1024, channel_multiplier: int = 2) -> dict[int, int]:
    """rosinality's channel table (``channel_multiplier=2`` is config-f) up to ``resolution``."""
    table = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * channel_multiplier, 128: 128 * channel_multiplier,
             256: 64 * channel_multiplier, 512: 32 * channel_multiplier, 1024: 16 * channel_multiplier}
    return {r: c for r, c in table.items() if r <= resolution}
