"""Rehearsal files of a generator's companions: CLIP, VGG16, published direction and component files.

Each ``*_writer`` returns a ``produce(fh)`` function writing one file in the format its publisher uses:

- open_clip ViT-B-32 (``openai``): ``open_clip_model.safetensors`` of the open_clip model's state dict, as
  open_clip fetches it from the Hub repository its pretrained table names (``timm/vit_base_patch32_clip_224.openai``);
- VGG16: torchvision's ``vgg16()`` state dict saved with ``torch.save`` (``vgg16-397923af.pth``), and timm's
  ``vgg16.tv_in1k`` state dict as ``model.safetensors`` (the registry's Hub entry);
- InterFaceGAN boundaries: ``np.save`` of a unit ``[1, 512]`` float32 array (genforce/interfacegan's
  ``boundaries/stylegan_ffhq_*_w_boundary.npy``);
- e4e directions: ``torch.save`` of a ``[1, 512]`` tensor (``editings/interfacegan_directions/*.pt``);
- GANSpace components: e4e's ``editings/ganspace_pca/ffhq_pca.pt`` (``comp [80, 1, 512]``, ``mean [1, 512]``,
  ``std [80]``) and GANSpace's own ``.npz`` cache (``act_comp``, ``act_mean``, ``act_stdev``, ``lat_comp``,
  ``lat_mean``, ``lat_stdev``, ``var_ratio``; for StyleGAN2's ``style`` layer activations and latents are W).

Random weights and random orthonormal directions: every path, size and shape real, every picture meaningless.
"""

from __future__ import annotations

import io
from typing import BinaryIO

import numpy as np
import torch


def clip_writer(model_name: str = "ViT-B-32", *, seed: int = 0):
    """open_clip ``model_name`` with random weights as ``open_clip_model.safetensors``."""

    def produce(fh: BinaryIO) -> None:
        import open_clip
        from safetensors.torch import save

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            model = open_clip.create_model(model_name, pretrained=None)
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        fh.write(save(state, metadata={"format": "pt"}))

    return produce


def torchvision_vgg16_writer(*, seed: int = 0):
    """torchvision's ``vgg16()`` random state dict, ``torch.save``-d (the file torch hub keeps)."""

    def produce(fh: BinaryIO) -> None:
        import torchvision

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            model = torchvision.models.vgg16(weights=None)
        torch.save(model.state_dict(), fh)

    return produce


def timm_vgg16_writer(*, seed: int = 0):
    """timm's ``vgg16.tv_in1k`` random state dict as ``model.safetensors`` (timm's Hub layout)."""

    def produce(fh: BinaryIO) -> None:
        import timm
        from safetensors.torch import save

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            model = timm.create_model("vgg16.tv_in1k", pretrained=False)
        fh.write(save({k: v.detach().contiguous() for k, v in model.state_dict().items()}, metadata={"format": "pt"}))

    return produce


def _unit_rows(n: int, dim: int, seed: int) -> torch.Tensor:
    """``[n, dim]`` orthonormal rows drawn from a seeded ``torch.Generator``."""
    g = torch.Generator().manual_seed(int(seed))
    q, _ = torch.linalg.qr(torch.randn(dim, n, generator=g, dtype=torch.float64))
    return q.T.contiguous().float()


def boundary_writer(seed: int, w_dim: int = 512):
    """An InterFaceGAN boundary: ``np.save`` of a unit ``[1, w_dim]`` float32 normal vector."""

    def produce(fh: BinaryIO) -> None:
        buf = io.BytesIO()
        np.save(buf, _unit_rows(1, w_dim, seed).numpy().astype(np.float32))
        fh.write(buf.getvalue())

    return produce


def e4e_direction_writer(seed: int, w_dim: int = 512, norm: float = 6.0):
    """An e4e InterFaceGAN direction: ``torch.save`` of a ``[1, w_dim]`` tensor (e4e's are not unit length)."""

    def produce(fh: BinaryIO) -> None:
        torch.save(_unit_rows(1, w_dim, seed) * norm, fh)

    return produce


def _pca(seed: int, k: int, w_dim: int):
    g = torch.Generator().manual_seed(int(seed) + 1)
    comp = _unit_rows(k, w_dim, seed)
    std = torch.sort(torch.rand(k, generator=g) * 2 + 0.2, descending=True).values
    mean = torch.randn(1, w_dim, generator=g) * 0.3
    return comp, mean, std


def e4e_pca_writer(seed: int, k: int = 80, w_dim: int = 512):
    """e4e's ``ffhq_pca.pt``: ``{'comp': [k, 1, w_dim], 'mean': [1, w_dim], 'std': [k]}``."""

    def produce(fh: BinaryIO) -> None:
        comp, mean, std = _pca(seed, k, w_dim)
        torch.save({"comp": comp.reshape(k, 1, w_dim), "mean": mean, "std": std}, fh)

    return produce


def ganspace_npz_writer(seed: int, k: int = 80, w_dim: int = 512):
    """GANSpace's component cache (``decomposition.py`` keys; StyleGAN2 ``style`` layer: activations are W)."""

    def produce(fh: BinaryIO) -> None:
        comp, mean, std = _pca(seed, k, w_dim)
        var = std.double() ** 2
        arrays = {
            "act_comp": comp.reshape(k, 1, w_dim).numpy(), "act_mean": mean.numpy(), "act_stdev": std.numpy(),
            "lat_comp": comp.reshape(k, 1, w_dim).numpy(), "lat_mean": mean.numpy(), "lat_stdev": std.numpy(),
            "var_ratio": (var / (var.sum() * 1.25)).float().numpy(),
        }
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        fh.write(buf.getvalue())

    return produce
