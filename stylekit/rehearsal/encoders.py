"""A full-size e4e FFHQ encoder checkpoint in the official layout (``e4e_ffhq_encode.pt``).

The official file is ``torch.save({'state_dict', 'opts', 'latent_avg'})`` (e4e's ``training/coach.py``
``__get_save_dict``): ``state_dict`` is the whole ``pSp`` module's: ``encoder.*`` (Encoder4Editing,
IR-SE-50, 18 style heads, official names such as ``encoder.body.3.res_layer.5.fc1.weight``) and
``decoder.*`` (rosinality's StyleGAN2 1024, config-f); ``opts`` the training options as a dict;
``latent_avg`` ``[18, 512]`` (the mean W repeated over the styles). Here the encoder is stylekit's
:class:`~stylekit.networks.encoders.LatentEncoder` (FFHQ config) with its names mapped back to the
official ones, the decoder a random rosinality state dict, and ``opts`` the options the official FFHQ
encoder was trained with as far as its README and training script state them.

ReStyle's ResNet-34 ``BackboneEncoder`` is not written: stylekit does not implement that backbone.
"""

from __future__ import annotations

import re
from typing import BinaryIO

import torch

from .generators import ffhq_channels, rosinality_state

#: e4e's training options for the FFHQ encoder (keys of e4e's ``options/train_options.py``).
E4E_FFHQ_OPTS = {
    "exp_dir": "rehearsal", "dataset_type": "ffhq_encode", "encoder_type": "Encoder4Editing",
    "batch_size": 8, "test_batch_size": 4, "workers": 8, "test_workers": 4, "learning_rate": 0.0001,
    "optim_name": "ranger", "train_decoder": False, "start_from_latent_avg": True, "lpips_type": "alex",
    "lpips_lambda": 0.8, "id_lambda": 0.5, "l2_lambda": 1.0, "stylegan_weights": "stylegan2-ffhq-config-f.pt",
    "stylegan_size": 1024, "checkpoint_path": None, "max_steps": 300000, "w_discriminator_lambda": 0.1,
    "w_discriminator_lr": 2e-05, "r1": 10, "d_reg_every": 16, "use_w_pool": True, "w_pool_size": 50,
    "delta_norm": 2, "delta_norm_lambda": 0.0002, "progressive_start": 20000, "progressive_step_every": 2000,
    "progressive_steps": None, "save_training_data": False, "sub_exp_dir": None, "keep_optimizer": False,
    "resume_training_from_ckpt": None, "update_param_list": None,
}

_RES = {"bn_in": 0, "conv1": 1, "act": 2, "conv2": 3, "bn_out": 4}


def stylekit_to_official_key(key: str) -> str:
    """stylekit's encoder tensor name (without ``encoder.``) -> the official pSp / e4e name (the inverse
    of :func:`stylekit.invert.encoder.official_to_stylekit_key`)."""
    m = re.fullmatch(r"stem\.(conv|bn|act)\.(.+)", key)
    if m:
        return f"input_layer.{('conv', 'bn', 'act').index(m.group(1))}.{m.group(2)}"
    m = re.fullmatch(r"body\.(\d+)\.shortcut\.(conv|bn)\.(.+)", key)
    if m:
        return f"body.{m.group(1)}.shortcut_layer.{('conv', 'bn').index(m.group(2))}.{m.group(3)}"
    m = re.fullmatch(r"body\.(\d+)\.(bn_in|conv1|act|conv2|bn_out)\.(.+)", key)
    if m:
        return f"body.{m.group(1)}.res_layer.{_RES[m.group(2)]}.{m.group(3)}"
    m = re.fullmatch(r"body\.(\d+)\.se\.(fc1|fc2)\.(.+)", key)
    if m:
        return f"body.{m.group(1)}.res_layer.5.{m.group(2)}.{m.group(3)}"
    m = re.fullmatch(r"heads\.(\d+)\.convs\.(\d+)\.(weight|bias)", key)
    if m:
        return f"styles.{m.group(1)}.convs.{2 * int(m.group(2))}.{m.group(3)}"
    m = re.fullmatch(r"heads\.(\d+)\.linear\.(weight|bias)", key)
    if m:
        return f"styles.{m.group(1)}.linear.{m.group(2)}"
    m = re.fullmatch(r"lateral_(mid|fine)\.(weight|bias)", key)
    if m:
        return f"latlayer{1 if m.group(1) == 'mid' else 2}.{m.group(2)}"
    raise KeyError(f"no official name for encoder tensor {key!r}")


def e4e_checkpoint(*, seed: int = 0, resolution: int = 1024) -> dict:
    """The dict of an official e4e FFHQ checkpoint with random weights (see the module docstring)."""
    from ..networks.encoders import FFHQ_CONFIG, StyleEncoder

    g = torch.Generator().manual_seed(int(seed))
    with torch.random.fork_rng(devices=[]):  # layer construction draws from the global RNG
        torch.manual_seed(int(seed))
        encoder = StyleEncoder(dict(FFHQ_CONFIG))
    state = {}
    for key, value in encoder.state_dict().items():
        value = value.detach().clone()
        if key.endswith("running_mean"):
            value = torch.randn(value.shape, generator=g) * 0.1
        elif key.endswith("running_var"):
            value = 1.0 + torch.rand(value.shape, generator=g) * 0.1
        state["encoder." + stylekit_to_official_key(key)] = value
    for key, value in rosinality_state(ffhq_channels(resolution), seed=seed + 1).items():
        state["decoder." + key] = value
    n_styles = FFHQ_CONFIG["num_ws"]
    latent_avg = (torch.randn([1, FFHQ_CONFIG["w_dim"]], generator=g) * 0.3).repeat(n_styles, 1)
    return {"state_dict": state, "opts": dict(E4E_FFHQ_OPTS), "latent_avg": latent_avg}


def e4e_writer(*, seed: int = 0):
    """A ``produce(fh)`` writing the e4e FFHQ checkpoint with ``torch.save``."""

    def produce(fh: BinaryIO) -> None:
        torch.save(e4e_checkpoint(seed=seed), fh)

    return produce
