"""Read rosinality/stylegan2-pytorch generators into stylekit's :class:`StyleGAN2Generator`.

rosinality's ``model.py`` ``Generator`` is the StyleGAN2 generator that most inversion and editing
projects build on: its ``train.py`` saves ``{'g', 'd', 'g_ema', 'g_optim', 'd_optim', 'args', ...}``,
its ``convert_weight.py`` saves ``{'g_ema', 'latent_avg'}``, and e4e / pSp / ReStyle / StyleCLIP
keep the same network inside their own checkpoints as ``state_dict['decoder.*']`` next to a
top-level ``latent_avg``. This module turns any of those into NVIDIA's official layout (the one
:class:`stylekit.networks.stylegan2.StyleGAN2Generator` uses). Files are read with
``torch.load(weights_only=True)`` only: tensors and plain containers, nothing is executed
(``argparse.Namespace``, which train.py stores under ``'args'``, is the one class also admitted:
rebuilding it only sets attributes).

Every size is read from tensor shapes (``style_dim``, ``n_mlp``, resolution, the channels of
every resolution), never from rosinality's channel table, and passed on through the ``channels``
config key. Parameter by parameter (rosinality -> NVIDIA)::

    style.{i}.weight / .bias                 -> mapping.fc{i-1}.weight / .bias   (i = 1..n_mlp)
    latent_avg                                -> mapping.w_avg
    input.input [1, C, 4, 4]                  -> synthesis.b4.const [C, 4, 4]
    conv1 / convs.{2k} / convs.{2k+1}         -> b4.conv1 / b{R}.conv0 / b{R}.conv1   (R = 8 * 2**k)
      .conv.weight [1, O, I, 3, 3]            ->   .weight [O, I, 3, 3]
      .conv.modulation.weight / .bias         ->   .affine.weight / .bias
      .noise.weight [1]                       ->   .noise_strength []
      .activate.bias [O]                      ->   .bias [O]
      .conv.blur.kernel [4, 4]                ->   .resample_filter (normalised to sum 1)
    noises.noise_{j} [1, 1, H, W]             -> the j-th layer's noise_const [H, W]
    to_rgb1 / to_rgbs.{k}                     -> b4.torgb / b{R}.torgb
      .conv.weight [1, 3, C, 1, 1]            ->   .weight [3, C, 1, 1]
      .bias [1, 3, 1, 1]                      ->   .bias [3]
      .upsample.kernel                        -> b{R}.resample_filter (normalised)

Why the numbers carry over unchanged (each checked against the rosinality reference outputs in
``tests/test_rosinality.py``):

- ``EqualLinear`` stores ``weight = randn / lr_mul`` and uses ``weight * lr_mul / sqrt(in)`` and
  ``bias * lr_mul``; NVIDIA's ``FullyConnectedLayer`` does exactly the same with
  ``lr_multiplier``. ``lr_mul`` itself is not in the file: rosinality's default ``lr_mlp=0.01``
  (NVIDIA's default too) is assumed; pass ``lr_mlp=`` for a network trained otherwise.
- Modulated convolutions: rosinality multiplies the weight by ``1/sqrt(fan_in)`` before
  demodulation, which cancels it (up to the 1e-8 epsilon); for ToRGB (no demodulation) its
  ``1/sqrt(in)`` equals NVIDIA's ``ToRGBLayer.weight_gain``.
- Upsampling convolutions: rosinality runs ``conv_transpose2d`` with the stored kernel and then a
  blur padded (1, 1); NVIDIA's ``conv2d_resample`` (``flip_weight=False`` for ``up=2``) also runs
  ``conv_transpose2d`` with the unflipped kernel and the same padding, so no spatial flip is
  needed between the two PyTorch formats. (The flip in rosinality's ``convert_weight.py`` converts
  from NVIDIA's *TensorFlow* weights; NVIDIA's own ``legacy.py`` applies the same flip for the same
  reason.)
- ``NoiseInjection`` adds ``weight * noise`` before ``FusedLeakyReLU`` (bias, leaky ReLU 0.2,
  gain sqrt 2): NVIDIA's SynthesisLayer adds ``noise * noise_strength`` and then ``bias_act``.
- rosinality has no activation clamp, so the config has ``conv_clamp=None``.

Reading the sizes from the shapes, and checking every tensor against them, is
:mod:`stylekit.checkpoints.rosinality_shapes`; this module reads the file and renames the tensors.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import warnings
import zipfile
from pathlib import Path

from ..errors import CheckpointError, InvalidArgumentError, UnsafeCheckpointError
from .rosinality_shapes import (DEFAULT_BLUR_TAPS, blur_kernel_keys, check_shapes, infer_architecture,
                                is_tensor as _is_tensor, layer_names)

__all__ = ["read_torch_checkpoint", "extract_generator_state", "infer_architecture", "check_shapes",
           "convert_rosinality_state", "estimate_w_avg", "read_rosinality", "load_rosinality_generator"]

ROSINALITY_LR_MLP = 0.01  # rosinality Generator(lr_mlp=0.01); not stored in checkpoints
W_AVG_SAMPLES = 10_000  # z samples used to estimate w_avg when a checkpoint carries no latent_avg
W_AVG_SEED = 0
NOISE_SEED = 0  # seed of the noise maps generated when a checkpoint carries no noises.noise_* buffers

_CONTAINER_KEYS = ("g_ema", "g", "state_dict")
_PREFERRED_PREFIXES = ("decoder.", "", "g_ema.", "generator.", "module.")


# ----------------------------------------------------------------------------------------------
# Reading the file


def read_torch_checkpoint(path: str | os.PathLike) -> object:
    """``torch.load(path, map_location='cpu', weights_only=True)`` with stylekit errors.

    Raises:
        CheckpointError: missing, empty, truncated or not a torch checkpoint.
        UnsafeCheckpointError: the pickle asks for a global (a class or function) that the
            weights-only loader refuses; nothing from the file was executed.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file.")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the file ({exc.strerror or exc}).") from exc
    if size == 0:
        raise CheckpointError(f"{path}: the file is empty; download or save it again.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Detected pickle protocol N" chatter
            with torch.serialization.safe_globals([argparse.Namespace]):
                return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        message = str(exc)
        if "Weights only load failed" in message:
            found = re.search(r"GLOBAL ([\w.]+)", message)
            what = (f"asks for the global {found.group(1)}" if found else
                    "holds something other than tensors and plain containers")
            raise UnsafeCheckpointError(
                f"{path}: refused to load: the pickle {what}, and stylekit loads only tensors and plain "
                "containers from torch files (torch.load with weights_only=True; nothing from the file was "
                "executed). If this is an NVIDIA .pkl, open it with stylekit.load_generator; otherwise re-save "
                "the generator's state_dict() with torch.save in a trusted environment.") from exc
        raise CheckpointError(f"{path}: not a torch checkpoint ({message.strip() or type(exc).__name__}); "
                              "expected a file written by torch.save.") from exc
    except (EOFError, RuntimeError, zipfile.BadZipFile, KeyError, ValueError, TypeError, IndexError,
            AttributeError, OSError, MemoryError) as exc:
        detail = str(exc).strip().splitlines()[0].split(". ")[0] if str(exc).strip() else "no detail"
        raise CheckpointError(f"{path}: not a readable torch checkpoint: it is truncated, corrupt or another "
                              f"format ({type(exc).__name__}: {detail[:200]}); download or save it again.") from exc


def _generator_prefixes(state: dict) -> list[str]:
    """Prefixes ``p`` such that ``p + 'input.input'`` and ``p + 'conv1.conv.weight'`` are tensors in ``state``."""
    out = []
    for key, value in state.items():
        if isinstance(key, str) and key.endswith("input.input") and _is_tensor(value):
            prefix = key[: -len("input.input")]
            if _is_tensor(state.get(prefix + "conv1.conv.weight")):
                out.append(prefix)
    return out


def _strip_prefix(state: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in state.items() if isinstance(k, str) and k.startswith(prefix)}


def extract_generator_state(checkpoint, *, source: str = "<checkpoint>"):
    """Find the rosinality generator inside a loaded checkpoint.

    Accepts ``{'g_ema': sd, ...}`` (preferred), ``{'g': sd, ...}``, e4e / pSp / ReStyle / StyleCLIP
    dicts ``{'state_dict': {'decoder.<name>': ..., 'encoder.<name>': ...}, 'latent_avg': ..., 'opts': ...}``,
    or a bare generator state dict.

    Returns: ``(state, latent_avg)``: the generator's state dict with rosinality names (no prefix)
    and the top-level ``latent_avg`` tensor or None.
    """
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{source}: expected a dict (a state dict or {{'g_ema': ...}}), found "
                              f"{type(checkpoint).__name__}.")
    latent_avg = checkpoint.get("latent_avg")
    if latent_avg is not None and not _is_tensor(latent_avg):
        latent_avg = None
    candidates = [checkpoint[k] for k in _CONTAINER_KEYS if isinstance(checkpoint.get(k), dict)]
    candidates.append(checkpoint)
    for container in candidates:
        prefixes = _generator_prefixes(container)
        if not prefixes:
            continue
        for preferred in _PREFERRED_PREFIXES:
            if preferred in prefixes:
                return _strip_prefix(container, preferred), latent_avg
        if len(prefixes) == 1:
            return _strip_prefix(container, prefixes[0]), latent_avg
        raise CheckpointError(f"{source}: the checkpoint holds several generators (prefixes {sorted(prefixes)}); "
                              "extract the one you want into its own state dict.")
    keys = sorted(str(k) for k in checkpoint)[:12]
    raise CheckpointError(f"{source}: no rosinality StyleGAN2 generator found (no 'input.input' and "
                          f"'conv1.conv.weight' tensors under 'g_ema', 'g', 'state_dict' or at the top level; "
                          f"top-level keys: {keys}).")


# ----------------------------------------------------------------------------------------------
# Conversion


def _taps_from_kernel(kernel, *, source: str, key: str):
    """A stored separable blur kernel ``[k, k]`` -> its 1-D taps ``[k]`` (float64, summing to 1)."""
    import torch

    k = kernel.detach().to(torch.float64)
    total = k.sum()
    if not torch.isfinite(k).all() or total == 0:
        raise CheckpointError(f"{source}: {key} is not a usable blur kernel (non-finite or zero sum).")
    f = k / total
    taps = f.sum(dim=0)
    if not torch.allclose(torch.outer(f.sum(dim=1), taps), f, atol=1e-6):
        raise CheckpointError(f"{source}: {key} is not a separable blur kernel; stylekit's StyleGAN2 needs one.")
    return taps


def _latent_avg_vector(latent_avg, w_dim: int, *, source: str):
    """``latent_avg`` of shape [w_dim], [1, w_dim] or [num_ws, w_dim] -> ``[w_dim]`` float32."""
    import torch

    la = latent_avg.detach().to(torch.float32)
    if la.ndim == 1:
        la = la[None]
    if la.ndim != 2 or la.shape[1] != w_dim:
        raise CheckpointError(f"{source}: latent_avg has shape {tuple(latent_avg.shape)}, expected [{w_dim}], "
                              f"[1, {w_dim}] or [num_ws, {w_dim}].")
    if torch.allclose(la, la[:1].expand_as(la), atol=1e-6):
        return la[0].clone()  # [w_dim], or [num_ws, w_dim] with identical rows (e4e, pSp)
    warnings.warn(f"{source}: latent_avg holds {la.shape[0]} different rows; using their mean as w_avg.",
                  stacklevel=4)  # the caller of convert_rosinality_state
    return la.mean(dim=0)


def estimate_w_avg(mapping_state: dict, config: dict, *, samples: int = W_AVG_SAMPLES, seed: int = W_AVG_SEED):
    """Mean of ``mapping(z)`` over ``samples`` seeded standard-normal ``z``: ``[w_dim]``.

    Used when a checkpoint carries no ``latent_avg`` (as rosinality's ``mean_latent`` does).
    ``mapping_state``: ``fc{i}.weight`` / ``fc{i}.bias`` with NVIDIA names.
    """
    import torch

    from ..networks.mapping import MappingNetwork

    mk = config["mapping_kwargs"]
    net = MappingNetwork(z_dim=config["z_dim"], c_dim=0, w_dim=config["w_dim"], num_ws=1,
                         num_layers=mk["num_layers"], lr_multiplier=mk["lr_multiplier"])
    net.load_state_dict({**mapping_state, "w_avg": torch.zeros(config["w_dim"])}, strict=True)
    gen = torch.Generator().manual_seed(seed)
    total = torch.zeros(config["w_dim"], dtype=torch.float64)
    with torch.no_grad():
        for start in range(0, samples, 2000):
            z = torch.randn([min(2000, samples - start), config["z_dim"]], generator=gen)
            total += net(z)[:, 0].to(torch.float64).sum(dim=0)
    return (total / samples).to(torch.float32)


def convert_rosinality_state(state: dict, latent_avg=None, *, lr_mlp: float = ROSINALITY_LR_MLP,
                             source: str = "<state dict>") -> tuple[dict, dict]:
    """rosinality generator state dict -> ``(config, state_dict)`` for :class:`StyleGAN2Generator`.

    Args:
        state: a rosinality ``Generator.state_dict()`` (or any checkpoint dict holding one, see
            :func:`extract_generator_state`; its ``latent_avg`` is then used unless given here).
        latent_avg: the mean W, ``[w_dim]``, ``[1, w_dim]`` or ``[num_ws, w_dim]`` (identical rows,
            as e4e / pSp store it). None: estimated from 10,000 seeded samples of the mapping network.
        lr_mlp: the mapping network's learning-rate multiplier the file was trained with (not stored).
        source: a name for error messages (the file path).

    Returns:
        config: official NVIDIA Generator kwargs plus ``channels={'4': C4, ..., 'R': CR}``
            (``conv_clamp=None``, ``architecture='skip'``).
        state_dict: float32 tensors with NVIDIA names, ready for ``load_state_dict(strict=True)``.
    """
    if isinstance(state, dict) and "input.input" not in state:
        state, found_avg = extract_generator_state(state, source=source)
        if latent_avg is None:
            latent_avg = found_avg
    if not isinstance(state, dict):
        raise CheckpointError(f"{source}: expected a state dict, found {type(state).__name__}.")
    if not (isinstance(lr_mlp, (int, float)) and lr_mlp > 0):
        raise InvalidArgumentError(f"lr_mlp must be a positive number (rosinality's default is 0.01), got {lr_mlp!r}.")
    arch = infer_architecture(state, source=source)
    check_shapes(state, arch, source=source)
    taps = _resample_taps(state, len(arch["channels"]) - 1, source=source)
    config = _nvidia_config(arch, lr_mlp, taps)
    out = _nvidia_tensors(state, arch, taps)
    out["mapping.w_avg"] = _w_avg(out, config, latent_avg, source=source)
    return config, out


def _resample_taps(state: dict, num_blocks: int, *, source: str) -> list:
    """The 1-D taps of the blur kernel every up-sampling layer stores (all must agree), as small integers
    when they are (``[1, 3, 3, 1]`` rather than ``[0.125, 0.375, ...]``); the default when none is stored."""
    import torch

    taps = None
    for key in (k for k in blur_kernel_keys(num_blocks) if k in state):
        t = _taps_from_kernel(state[key], source=source, key=key)
        if taps is None:
            taps = t
        elif not torch.allclose(t, taps, atol=1e-6):
            raise CheckpointError(f"{source}: {key} differs from the other blur kernels; stylekit's StyleGAN2 "
                                  "uses one resample filter for every layer.")
    if taps is None:
        return list(DEFAULT_BLUR_TAPS)
    positive = taps[taps > 0]
    ratios = [float(x) / float(positive.min()) if positive.numel() else float(x) for x in taps]
    return [int(round(r)) for r in ratios] if all(abs(r - round(r)) < 1e-6 for r in ratios) else ratios


def _nvidia_config(arch: dict, lr_mlp: float, taps: list) -> dict:
    """Official NVIDIA Generator kwargs for the sizes ``arch`` read from the shapes, plus ``channels``."""
    config = {
        "z_dim": arch["style_dim"],
        "c_dim": 0,
        "w_dim": arch["style_dim"],
        "img_resolution": arch["img_resolution"],
        "img_channels": arch["img_channels"],
        "mapping_kwargs": {"num_layers": arch["n_mlp"], "lr_multiplier": float(lr_mlp)},
        "channel_base": 32768,
        "channel_max": 512,
        "num_fp16_res": 0,
        "conv_clamp": None,
        "architecture": "skip",
        "channels": {str(res): int(c) for res, c in sorted(arch["channels"].items())},
    }
    if taps != list(DEFAULT_BLUR_TAPS):
        config["resample_filter"] = taps
    return config


def _nvidia_tensors(state: dict, arch: dict, taps: list) -> dict:
    """Every tensor but ``mapping.w_avg`` under its NVIDIA name (float32), following the table above.

    Noise maps the checkpoint lacks are drawn from a generator seeded with :data:`NOISE_SEED`, in layer order.
    """
    import torch

    from ..networks.ops import setup_filter

    resample_filter = setup_filter(taps)
    num_blocks = len(arch["channels"]) - 1

    def t(key):
        return state[key].detach().to(torch.float32)

    out: dict = {}
    for i in range(1, arch["n_mlp"] + 1):
        out[f"mapping.fc{i - 1}.weight"] = t(f"style.{i}.weight")
        out[f"mapping.fc{i - 1}.bias"] = t(f"style.{i}.bias")

    out["synthesis.b4.const"] = t("input.input")[0]
    noise_gen = None
    for j, (ros, nv, res) in enumerate(layer_names(num_blocks)):
        p = f"synthesis.{nv}."
        out[p + "weight"] = t(f"{ros}.conv.weight")[0]
        out[p + "bias"] = t(f"{ros}.activate.bias")
        out[p + "affine.weight"] = t(f"{ros}.conv.modulation.weight")
        out[p + "affine.bias"] = t(f"{ros}.conv.modulation.bias")
        out[p + "noise_strength"] = t(f"{ros}.noise.weight").reshape([])
        out[p + "resample_filter"] = resample_filter.clone()
        noise_key = f"noises.noise_{j}"
        if noise_key in state:
            out[p + "noise_const"] = t(noise_key)[0, 0]
        else:
            if noise_gen is None:
                noise_gen = torch.Generator().manual_seed(NOISE_SEED)
            out[p + "noise_const"] = torch.randn([res, res], generator=noise_gen)
    for k in range(num_blocks + 1):
        res = 4 * 2 ** k
        ros = "to_rgb1" if k == 0 else f"to_rgbs.{k - 1}"
        p = f"synthesis.b{res}."
        out[p + "resample_filter"] = resample_filter.clone()
        out[p + "torgb.weight"] = t(f"{ros}.conv.weight")[0]
        out[p + "torgb.bias"] = t(f"{ros}.bias").reshape(-1)
        out[p + "torgb.affine.weight"] = t(f"{ros}.conv.modulation.weight")
        out[p + "torgb.affine.bias"] = t(f"{ros}.conv.modulation.bias")
    return out


def _w_avg(out: dict, config: dict, latent_avg, *, source: str):
    """``mapping.w_avg`` ``[w_dim]``: the checkpoint's ``latent_avg``, or else estimated from the converted mapping."""
    import torch

    if latent_avg is not None:
        if not _is_tensor(latent_avg):
            latent_avg = torch.as_tensor(latent_avg)
        return _latent_avg_vector(latent_avg, config["w_dim"], source=source)
    mapping_state = {k[len("mapping."):]: v for k, v in out.items() if k.startswith("mapping.fc")}
    return estimate_w_avg(mapping_state, config)


# ----------------------------------------------------------------------------------------------
# Public entry points


def read_rosinality(path: str | os.PathLike, *, lr_mlp: float = ROSINALITY_LR_MLP) -> tuple[dict, dict]:
    """Read a rosinality / e4e / pSp / ReStyle checkpoint: ``(config, state_dict)`` with NVIDIA names."""
    source = str(path)
    checkpoint = read_torch_checkpoint(path)
    state, latent_avg = extract_generator_state(checkpoint, source=source)
    return convert_rosinality_state(state, latent_avg, lr_mlp=lr_mlp, source=source)


def load_rosinality_generator(path: str | os.PathLike, device="cpu", *, lr_mlp: float = ROSINALITY_LR_MLP):
    """Load a rosinality-format generator as a :class:`StyleGAN2Generator` (eval mode, no grad) on ``device``.

    ``G.mapping(z)`` equals rosinality's ``g_ema.style(z)`` broadcast to W+ and
    ``G.synthesis(ws, noise_mode='const')`` equals ``g_ema([ws], input_is_latent=True,
    randomize_noise=False)``; truncation pulls toward the file's ``latent_avg``.
    """
    from .build import build_generator, load_state_checked

    source = str(path)
    config, state = read_rosinality(path, lr_mlp=lr_mlp)
    G = build_generator("stylegan2", config, source=source)
    load_state_checked(G, state, source=source)
    return G.eval().requires_grad_(False).to(device)
