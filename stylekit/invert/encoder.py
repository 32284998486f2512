"""Learned encoders: loading, saving and one-pass inversion with the pSp / e4e networks of
:mod:`stylekit.networks.encoders` (and ReStyle's 6-channel variant).

Official checkpoints (``torch.save({'state_dict': {'encoder.*', 'decoder.*'}, 'latent_avg',
'opts'})``) are read with ``torch.load(weights_only=True)`` and their key names mapped by
:func:`official_to_stylekit_key`::

    input_layer.0 / .1 / .2                       -> stem.conv / stem.bn / stem.act
    body.{k}.shortcut_layer.0 / .1                -> body.{k}.shortcut.conv / .bn
    body.{k}.res_layer.0 / 1 / 2 / 3 / 4          -> body.{k}.bn_in / conv1 / act / conv2 / bn_out
    body.{k}.res_layer.5.fc1 / .fc2               -> body.{k}.se.fc1 / .fc2            (ir_se only)
    styles.{i}.convs.{2j}                         -> heads.{i}.convs.{j}
    styles.{i}.linear                             -> heads.{i}.linear
    latlayer1 / latlayer2                         -> lateral_mid / lateral_fine

The decoder (``decoder.*``, rosinality's StyleGAN2) goes through
:func:`stylekit.checkpoints.rosinality.convert_rosinality_state`.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import torch

from ..checkpoints.build import load_state_checked
from ..errors import CheckpointError, InvalidArgumentError
from ..networks.encoders import LatentEncoder, normalize_config

# ----------------------------------------------------------------------------------------------
# Saving and loading (stylekit format: safetensors; official pSp / e4e: torch.save dict)


def save_encoder(enc: LatentEncoder, path, *, metadata: dict | None = None, half: bool = False) -> Path:
    """Write ``enc`` as safetensors with its config in the metadata (``half`` stores float16 weights)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {}
    for k, v in enc.state_dict().items():
        v = v.detach().cpu().contiguous()
        if half and v.is_floating_point() and not k.endswith(("running_mean", "running_var")):
            v = v.half()
        state[k] = v
    meta = {"format": "stylekit-encoder", "config": json.dumps(enc.config), "info": json.dumps(enc.info)}
    meta.update({k: str(v) for k, v in (metadata or {}).items()})
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


def load_encoder(spec, *, device="cpu", precision: str | None = None) -> LatentEncoder:
    """Load an encoder: a registered name (``'e4e-toyfaces'``), a stylekit ``.safetensors`` file, or an
    official pSp / e4e ``.pt`` checkpoint. Returns a :class:`LatentEncoder` in eval mode, no grad.

    ``precision``: ``'fp32'``, ``'bf16'``, ``'fp16'`` or ``'auto'`` (bfloat16 on CPUs with AMX or
    AVX-512-BF16, float16 on CUDA, else float32; see :mod:`stylekit.networks.precision`), recorded in
    ``enc.precision``; weights stay float32 and W+ codes come back float32. None: ``'fp32'`` for a
    name or file; an encoder object keeps its own (it is moved to ``device`` and, when ``precision``
    is given, switched to it in place).

    A generator stored in an official checkpoint (``decoder.*``) is not loaded here; see
    :func:`load_official_checkpoint`.
    """
    from ..networks.precision import resolve_precision

    chosen = None if precision is None else resolve_precision(precision, device)  # a bad name fails first
    if isinstance(spec, LatentEncoder):
        enc = spec.to(device)
    else:
        path = _resolve_encoder_path(spec)
        with open(path, "rb") as fh:
            head = fh.read(16)
        if len(head) >= 9 and head[8:9] == b"{":
            enc = _load_safetensors_encoder(path)
        else:
            enc, _ = load_official_checkpoint(path, with_decoder=False)
        enc = enc.eval().requires_grad_(False).to(device)
    if chosen is not None:
        enc.precision = chosen
    return enc


def _resolve_encoder_path(spec) -> Path:
    """A file path, or a registered encoder name resolved through the artifact registry."""
    spec_str = os.fspath(spec)
    p = Path(spec_str).expanduser()
    if p.is_file():
        return p
    from .. import registry

    return registry.artifact_path(registry.resolve(spec_str, "encoder"))


def _load_safetensors_encoder(path: Path) -> LatentEncoder:
    from ..checkpoints.tagged import read_tagged

    meta, state = read_tagged(path, fmt=None, kind="encoder", missing="no such encoder file.")
    if meta.get("format") != "stylekit-encoder" or "config" not in meta:
        raise CheckpointError(f"{path}: a safetensors file without stylekit encoder metadata (format/config); "
                              "generators load with stylekit.load_generator instead.")
    try:
        config = json.loads(meta["config"])
        info = json.loads(meta.get("info", "{}"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: the encoder config in the metadata is not valid JSON ({exc}).") from exc
    enc = LatentEncoder(config, info=info)
    load_state_checked(enc, state, source=str(path), what="encoder")
    return enc


_RES_LAYER = {"0": "bn_in", "1": "conv1", "2": "act", "3": "conv2", "4": "bn_out", "5": "se"}


def official_to_stylekit_key(key: str) -> str:
    """Map one official pSp / e4e encoder key (without ``encoder.``) to stylekit's name (see module docstring)."""
    m = re.fullmatch(r"input_layer\.(\d)\.(.+)", key)
    if m:
        return f"stem.{('conv', 'bn', 'act')[int(m.group(1))]}.{m.group(2)}"
    m = re.fullmatch(r"body\.(\d+)\.shortcut_layer\.(\d)\.(.+)", key)
    if m:
        return f"body.{m.group(1)}.shortcut.{('conv', 'bn')[int(m.group(2))]}.{m.group(3)}"
    m = re.fullmatch(r"body\.(\d+)\.res_layer\.(\d)\.(.+)", key)
    if m and m.group(2) in _RES_LAYER:
        return f"body.{m.group(1)}.{_RES_LAYER[m.group(2)]}.{m.group(3)}"
    m = re.fullmatch(r"styles\.(\d+)\.convs\.(\d+)\.(weight|bias)", key)
    if m and int(m.group(2)) % 2 == 0:
        return f"heads.{m.group(1)}.convs.{int(m.group(2)) // 2}.{m.group(3)}"
    m = re.fullmatch(r"styles\.(\d+)\.linear\.(weight|bias)", key)
    if m:
        return f"heads.{m.group(1)}.linear.{m.group(2)}"
    m = re.fullmatch(r"latlayer([12])\.(weight|bias)", key)
    if m:
        return f"{'lateral_mid' if m.group(1) == '1' else 'lateral_fine'}.{m.group(2)}"
    raise CheckpointError(f"unexpected encoder tensor {key!r}: not part of the pSp / e4e GradualStyleEncoder "
                          "architecture (ReStyle's ResNet-34 backbone encoders are not supported).")


def infer_official_config(enc_state: dict, opts: dict | None = None, *, source: str = "<checkpoint>") -> dict:
    """Read an encoder config from official tensor shapes (``input_layer.0.weight``, ``body.*``, ``styles.*``)."""
    opts = opts or {}
    try:
        stem_w = enc_state["input_layer.0.weight"]
    except KeyError:
        raise CheckpointError(f"{source}: no 'encoder.input_layer.0.weight': not a pSp / e4e encoder checkpoint.") from None
    depths = []
    k = 0
    while f"body.{k}.res_layer.1.weight" in enc_state:
        depths.append(int(enc_state[f"body.{k}.res_layer.1.weight"].shape[0]))
        k += 1
    stages: list[list[int]] = []
    prev = None
    for d in depths:
        if d != prev or not stages:
            stages.append([d, 1])
        else:
            stages[-1][1] += 1
        prev = d
    if len(stages) != 4:
        raise CheckpointError(f"{source}: the encoder body has {len(stages)} width changes; expected the 4 stages "
                              "of an IR(-SE) 50/100/152 backbone.")
    num_ws = 0
    while f"styles.{num_ws}.linear.weight" in enc_state:
        num_ws += 1
    if num_ws == 0:
        raise CheckpointError(f"{source}: no 'styles.*' heads in the encoder.")
    n_convs = [sum(1 for key in enc_state if re.fullmatch(rf"styles\.{i}\.convs\.\d+\.weight", key))
               for i in range(num_ws)]
    c3_size = 2 ** n_convs[0]
    coarse = sum(1 for n in n_convs if n == n_convs[0])
    middle = coarse + sum(1 for n in n_convs if n == n_convs[0] + 1)
    lin = enc_state["styles.0.linear.weight"]
    head_ch = int(enc_state["styles.0.convs.0.weight"].shape[0])
    encoder_type = str(opts.get("encoder_type", "Encoder4Editing"))
    mode = "psp" if encoder_type == "GradualStyleEncoder" else "e4e"
    if encoder_type not in ("GradualStyleEncoder", "Encoder4Editing"):
        raise CheckpointError(f"{source}: encoder_type {encoder_type!r} is not supported (only pSp's "
                              "GradualStyleEncoder and e4e's Encoder4Editing).")
    se = "body.0.res_layer.5.fc1.weight" in enc_state
    reduction = 16
    if se:
        fc1 = enc_state["body.0.res_layer.5.fc1.weight"]
        reduction = max(1, int(fc1.shape[1]) // max(1, int(fc1.shape[0])))
    return normalize_config({
        "mode": mode, "in_channels": int(stem_w.shape[1]), "input_size": c3_size * 16,
        "stem_channels": int(stem_w.shape[0]), "stages": stages, "se": se, "se_reduction": reduction,
        "num_ws": num_ws, "w_dim": int(lin.shape[0]), "head_channels": head_ch,
        "coarse_ind": coarse, "middle_ind": middle,
    })


def load_official_checkpoint(path, *, with_decoder: bool = True):
    """Read an official pSp / e4e checkpoint: ``(LatentEncoder, Generator or None)``.

    The file is a ``torch.save`` dict with ``state_dict`` (``encoder.*`` and ``decoder.*``),
    ``latent_avg`` and ``opts``; it is read with ``torch.load(weights_only=True)``. When
    ``opts['start_from_latent_avg']`` is false, codes are used as they are (latent_avg = 0).
    """
    from ..checkpoints.rosinality import read_torch_checkpoint

    source = str(path)
    ckpt = read_torch_checkpoint(path)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or not isinstance(ckpt["state_dict"], dict):
        raise CheckpointError(f"{source}: not a pSp / e4e checkpoint (expected a dict with 'state_dict').")
    state = ckpt["state_dict"]
    opts = ckpt.get("opts") or {}
    if not isinstance(opts, dict):
        opts = vars(opts) if hasattr(opts, "__dict__") else {}
    enc_state = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
    if not enc_state:
        raise CheckpointError(f"{source}: the checkpoint holds no 'encoder.*' tensors.")
    config = infer_official_config(enc_state, opts, source=source)
    latent_avg = ckpt.get("latent_avg")
    use_avg = bool(opts.get("start_from_latent_avg", True))
    info = {"source": "official pSp/e4e checkpoint", "encoder_type": str(opts.get("encoder_type", "Encoder4Editing")),
            "file": os.path.basename(source)}
    enc = LatentEncoder(config, latent_avg if (use_avg and latent_avg is not None) else None, info=info)
    mapped = {}
    for key, value in enc_state.items():
        if key.endswith("num_batches_tracked"):
            continue
        mapped["encoder." + official_to_stylekit_key(key)] = value.float() if value.is_floating_point() else value
    mapped["latent_avg"] = enc.latent_avg
    for key, value in enc.state_dict().items():  # BN counters are not needed for inference
        if key.endswith("num_batches_tracked"):
            mapped[key] = value
    load_state_checked(enc, mapped, source=source, what="encoder")
    G = None
    dec_state = {k[len("decoder."):]: v for k, v in state.items() if k.startswith("decoder.")}
    if with_decoder and dec_state:
        from ..checkpoints.build import build_generator
        from ..checkpoints.rosinality import convert_rosinality_state

        g_config, g_state = convert_rosinality_state(dec_state, latent_avg, source=source)
        G = build_generator("stylegan2", g_config, source=source)
        load_state_checked(G, g_state, source=source)
        G = G.eval().requires_grad_(False)
    return enc.eval().requires_grad_(False), G


# ----------------------------------------------------------------------------------------------
# Inversion with an encoder


def encode(G, image, *, encoder="e4e-toyfaces", progress=None, device=None, precision: str | None = None):
    """One encoder pass: ``image`` -> W+; returns an :class:`~stylekit.invert.result.InversionResult`
    whose ``latent`` is a ``'w+'`` Latent ``[1, num_ws, w_dim]``.

    Args:
        G: the generator the encoder was trained for (``num_ws`` and ``w_dim`` must match).
        image: anything :func:`stylekit.images.image_to_tensor` accepts, or a tensor in ``[-1, 1]``.
        encoder: a :class:`LatentEncoder`, a registered name or a file path (see :func:`load_encoder`).
        progress: called once at the end (the pass is a single step).
        precision: the encoder's compute precision (``'fp32'``, ``'bf16'``, ``'fp16'``, ``'auto'``; see
            :func:`load_encoder`); None: float32, or an encoder object's own. The generator renders in
            ``G.precision``.
    """
    from ._inputs import target_tensor

    start = time.perf_counter()
    device = torch.device(device) if device is not None else G.w_avg.device
    enc = _one_pass_encoder(G, encoder, device, precision)
    return _encode_targets(G, enc, target_tensor(G, image, device=device), progress, start)[0]


def encode_batch(G, images, *, encoder="e4e-toyfaces", progress=None, device=None,
                 precision: str | None = None) -> list:
    """:func:`encode` for a batch in one encoder pass: ``images`` a list of images or a tensor ``[N, 3, H, W]``;
    returns ``N`` results in order, each as :func:`encode` returns it (``seconds`` is the batch's time / N,
    ``extra['batch_size']`` is N)."""
    from ._inputs import target_batch

    start = time.perf_counter()
    device = torch.device(device) if device is not None else G.w_avg.device
    enc = _one_pass_encoder(G, encoder, device, precision)
    return _encode_targets(G, enc, target_batch(G, images, device=device), progress, start, batch=True)


def _one_pass_encoder(G, encoder, device, precision) -> LatentEncoder:
    enc = load_encoder(encoder, device=device, precision=precision)
    enc.check_generator(G)
    if enc.config["in_channels"] != 3:
        raise InvalidArgumentError("this encoder takes 6 channels (a ReStyle encoder); use method='restyle'.")
    return enc


def _encode_targets(G, enc: LatentEncoder, target: torch.Tensor, progress, start: float, *, batch: bool = False) -> list:
    """One pass over ``target [N, 3, R, R]``: a list of N results."""
    from ._inputs import progress_or_default
    from .result import InversionResult, inversion_latent

    with torch.no_grad():
        latent = enc(target)
        img = G.synthesis(latent, noise_mode="const")
    progress_or_default(progress)(1, 1, "encoder")
    n = target.shape[0]
    seconds = (time.perf_counter() - start) / n
    results = []
    for i in range(n):
        t, y = target[i:i + 1], img[i:i + 1]
        mse = float((y - t).square().mean())
        extra = {"encoder": enc.info, "batch_size": n} if batch else {"encoder": enc.info}
        results.append(InversionResult(latent=inversion_latent(latent[i:i + 1], "w+"), image=y, target=t,
                                       method="encoder", loss_history=[{"step": 0, "stage": "encoder", "loss": mse,
                                                                        "mse": mse}],
                                       perceptual="none", seconds=seconds, extra=extra))
    return results
