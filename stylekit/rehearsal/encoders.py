"""Full-size encoder checkpoints in the official layout: e4e FFHQ (``e4e_ffhq_encode.pt``) and ReStyle-e4e
FFHQ (``restyle_e4e_ffhq_encode.pt``).

The official file is ``torch.save({'state_dict', 'opts', 'latent_avg'})`` (e4e's ``training/coach.py``
``__get_save_dict``): ``state_dict`` is the whole ``pSp`` module's: ``encoder.*`` (Encoder4Editing,
IR-SE-50, 18 style heads, official names such as ``encoder.body.3.res_layer.5.fc1.weight``) and
``decoder.*`` (rosinality's StyleGAN2 1024, config-f); ``opts`` the training options as a dict;
``latent_avg`` ``[18, 512]`` (the mean W repeated over the styles). Here the encoder is stylekit's
:class:`~stylekit.networks.encoders.LatentEncoder` (FFHQ config) with its names mapped back to the
official ones, the decoder a random rosinality state dict, and ``opts`` the options the official FFHQ
encoder was trained with as far as its README and training script state them.

ReStyle's file is saved the same way (``training/coach_restyle_e4e.py`` ``__get_save_dict``, which also keeps
``global_step``, ``best_val_loss``, the optimizer state and the W discriminator's; the last two are left out here,
whether the published file still holds them is not known here, and stylekit reads neither): ``encoder.*`` is a
ProgressiveBackboneEncoder (IR-SE-50, 6 input channels, 18 heads on the 16 x 16 map, names such as
``encoder.styles.17.convs.6.weight``), ``opts`` the README's FFHQ training command on top of ReStyle's
option defaults (``encoder_type='ProgressiveBackboneEncoder'``, ``input_nc=6``, ``n_iters_per_batch=5``,
``output_size=1024``). The names of both come from one table, :mod:`stylekit.networks.official_keys`.
"""

from __future__ import annotations

from typing import BinaryIO

import torch

from ..networks.encoders import normalize_config
from ..networks.official_keys import stylekit_to_official_key
from .generators import ffhq_channels, rosinality_state

__all__ = ["E4E_FFHQ_OPTS", "RESTYLE_E4E_FFHQ_OPTS", "e4e_checkpoint", "e4e_writer", "restyle_e4e_checkpoint",
           "restyle_e4e_writer", "stylekit_to_official_key"]

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

#: ReStyle-e4e's training options for FFHQ (ReStyle's ``options/train_options.py`` and ``e4e_train_options.py``
#: defaults, with the README's ``train_restyle_e4e.py`` command for ``ffhq_encode``).
RESTYLE_E4E_FFHQ_OPTS = {
    "exp_dir": "experiment/restyle_e4e_ffhq_encode", "dataset_type": "ffhq_encode",
    "encoder_type": "ProgressiveBackboneEncoder", "input_nc": 6, "output_size": 1024, "batch_size": 8,
    "test_batch_size": 8, "workers": 8, "test_workers": 8, "learning_rate": 0.0001, "optim_name": "ranger",
    "train_decoder": False, "start_from_latent_avg": True, "lpips_lambda": 0.8, "id_lambda": 0.1, "l2_lambda": 1.0,
    "w_norm_lambda": 0.0, "moco_lambda": 0.0, "stylegan_weights": "pretrained_models/stylegan2-ffhq-config-f.pt",
    "checkpoint_path": None, "max_steps": 500000, "image_interval": 100, "board_interval": 50, "val_interval": 1000,
    "save_interval": None, "n_iters_per_batch": 5, "w_discriminator_lambda": 0.1, "w_discriminator_lr": 2e-05,
    "r1": 10, "d_reg_every": 16, "use_w_pool": True, "w_pool_size": 50, "delta_norm": 2, "delta_norm_lambda": 0.0002,
    "progressive_steps": None, "progressive_start": 20000, "progressive_step_every": 2000,
    "save_training_data": False, "sub_exp_dir": None, "resume_training_from_ckpt": None, "update_param_list": None,
}


def _official_state(config: dict, *, seed: int, resolution: int) -> tuple[dict, torch.Tensor]:
    """``(state_dict, latent_avg [num_ws, w_dim])`` of an official checkpoint: a random
    :class:`~stylekit.networks.encoders.StyleEncoder` of ``config`` under official names (``encoder.*``, with
    random BN statistics) and a random rosinality decoder (``decoder.*``)."""
    from ..networks.encoders import StyleEncoder

    g = torch.Generator().manual_seed(int(seed))
    with torch.random.fork_rng(devices=[]):  # layer construction draws from the global RNG
        torch.manual_seed(int(seed))
        encoder = StyleEncoder(dict(config))
    body = encoder.config["body"]
    state = {}
    for key, value in encoder.state_dict().items():
        value = value.detach().clone()
        if key.endswith("running_mean"):
            value = torch.randn(value.shape, generator=g) * 0.1
        elif key.endswith("running_var"):
            value = 1.0 + torch.rand(value.shape, generator=g) * 0.1
        state["encoder." + stylekit_to_official_key(key, body)] = value
    del encoder
    for key, value in rosinality_state(ffhq_channels(resolution), seed=seed + 1).items():
        state["decoder." + key] = value
    cfg = normalize_config(config)
    latent_avg = (torch.randn([1, cfg["w_dim"]], generator=g) * 0.3).repeat(cfg["num_ws"], 1)
    return state, latent_avg


def e4e_checkpoint(*, seed: int = 0, resolution: int = 1024) -> dict:
    """The dict of an official e4e FFHQ checkpoint with random weights (see the module docstring)."""
    from ..networks.encoders import FFHQ_CONFIG

    state, latent_avg = _official_state(FFHQ_CONFIG, seed=seed, resolution=resolution)
    return {"state_dict": state, "opts": dict(E4E_FFHQ_OPTS), "latent_avg": latent_avg}


def restyle_e4e_checkpoint(*, seed: int = 0, resolution: int = 1024) -> dict:
    """The dict of the official ReStyle-e4e FFHQ checkpoint with random weights (see the module docstring)."""
    from ..networks.restyle_backbones import RESTYLE_E4E_FFHQ_CONFIG

    state, latent_avg = _official_state(RESTYLE_E4E_FFHQ_CONFIG, seed=seed, resolution=resolution)
    return {"state_dict": state, "opts": dict(RESTYLE_E4E_FFHQ_OPTS), "latent_avg": latent_avg,
            "global_step": 0, "best_val_loss": None}


def e4e_writer(*, seed: int = 0):
    """A ``produce(fh)`` writing the e4e FFHQ checkpoint with ``torch.save``."""

    def produce(fh: BinaryIO) -> None:
        torch.save(e4e_checkpoint(seed=seed), fh)

    return produce


def restyle_e4e_writer(*, seed: int = 0):
    """A ``produce(fh)`` writing the ReStyle-e4e FFHQ checkpoint with ``torch.save``."""

    def produce(fh: BinaryIO) -> None:
        torch.save(restyle_e4e_checkpoint(seed=seed), fh)

    return produce
