"""Learned encoders: loading, saving and one-pass inversion with the pSp / e4e networks of
:mod:`stylekit.networks.encoders` (and ReStyle's 6-channel variants).

Official checkpoints (``torch.save({'state_dict': {'encoder.*', 'decoder.*'}, 'latent_avg',
'opts'})``, the same for pSp, e4e and ReStyle) are read with ``torch.load(weights_only=True)`` and
their key names mapped by :func:`official_to_stylekit_key` (one table for both directions:
:mod:`stylekit.networks.official_keys`), e.g. for the IR-SE body::

    input_layer.0 / .1 / .2                       -> stem.conv / stem.bn / stem.act
    body.{k}.shortcut_layer.0 / .1                -> body.{k}.shortcut.conv / .bn
    body.{k}.res_layer.0 / 1 / 2 / 3 / 4          -> body.{k}.bn_in / conv1 / act / conv2 / bn_out
    body.{k}.res_layer.5.fc1 / .fc2               -> body.{k}.se.fc1 / .fc2            (ir_se only)
    styles.{i}.convs.{2j}                         -> heads.{i}.convs.{j}
    styles.{i}.linear                             -> heads.{i}.linear
    latlayer1 / latlayer2                         -> lateral_mid / lateral_fine

and for ReStyle's ResNet-34 body ``conv1 / bn1 / relu -> stem.conv / .bn / .act``,
``body.{k}.downsample.0 / .1 -> body.{k}.shortcut.conv / .bn`` (the BasicBlocks keep their names).
``opts['encoder_type']`` picks the heads (see :data:`stylekit.networks.restyle_backbones.ENCODER_TYPES`).

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
from ..networks.official_keys import official_to_stylekit_key
from ..networks.restyle_backbones import ENCODER_TYPES

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
    official pSp / e4e / ReStyle ``.pt`` checkpoint. Returns a :class:`LatentEncoder` in eval mode, no grad.

    ``precision``: ``'fp32'``, ``'bf16'``, ``'fp16'`` or ``'auto'`` (bfloat16 on CPUs with AMX or
    AVX-512-BF16, float16 on CUDA, else float32; see :mod:`stylekit.networks.precision`), recorded in
    ``enc.precision``; weights stay float32 and W+ codes come back float32. None: ``'fp32'`` for a
    name or file; an encoder object keeps its own (it is moved to ``device`` and, when ``precision``
    is given, switched to it in place).

    A generator stored in an official checkpoint (``decoder.*``) is not loaded here; see
    :func:`load_official_checkpoint`.
    """
    from ..networks.cpu_memory import keep_freed_memory
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
    keep_freed_memory(device)
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


def infer_official_config(enc_state: dict, opts: dict | None = None, *, source: str = "<checkpoint>") -> dict:
    """Read an encoder config from official tensor shapes and ``opts['encoder_type']``.

    The body is IR(-SE) when ``input_layer.0.weight`` is there, ResNet-34 when ``conv1.weight`` is (ReStyle's
    ResNet encoders); the stages come from the ``body.*`` widths, the input channels (3, or 6 for ReStyle) from
    the stem, the heads from ``styles.*``. ``encoder_type`` (one of
    :data:`stylekit.networks.restyle_backbones.ENCODER_TYPES`) says pSp or e4e heads and pyramid or backbone;
    without one, an e4e variant is assumed.
    """
    opts = opts or {}
    if "input_layer.0.weight" in enc_state:
        body, stem_key, unit_key = "ir", "input_layer.0.weight", "body.{k}.res_layer.1.weight"
    elif "conv1.weight" in enc_state:
        body, stem_key, unit_key = "resnet", "conv1.weight", "body.{k}.conv1.weight"
    else:
        raise CheckpointError(f"{source}: no 'encoder.input_layer.0.weight' (IR-SE body) or 'encoder.conv1.weight' "
                              "(ResNet body): not a pSp / e4e / ReStyle encoder checkpoint.")
    stem_w = enc_state[stem_key]
    laterals = "latlayer1.weight" in enc_state
    default_type = {("ir", True): "Encoder4Editing", ("ir", False): "ProgressiveBackboneEncoder",
                    ("resnet", True): "ResNetGradualStyleEncoder",
                    ("resnet", False): "ResNetProgressiveBackboneEncoder"}[(body, laterals)]
    encoder_type = str(opts.get("encoder_type") or default_type)
    if encoder_type not in ENCODER_TYPES:
        raise CheckpointError(f"{source}: encoder_type {encoder_type!r} is not supported; stylekit reads "
                              f"{', '.join(ENCODER_TYPES)}.")
    mode, arch, type_body = ENCODER_TYPES[encoder_type]
    if type_body != body or (arch == "fpn") != laterals:
        raise CheckpointError(f"{source}: the tensors do not fit encoder_type {encoder_type!r} (found a "
                              f"{'ResNet-34' if body == 'resnet' else 'IR-SE'} body "
                              f"{'with' if laterals else 'without'} pSp's lateral layers).")
    depths = []
    k = 0
    while unit_key.format(k=k) in enc_state:
        depths.append(int(enc_state[unit_key.format(k=k)].shape[0]))
        k += 1
    stages: list[list[int]] = []
    prev = None
    for k, d in enumerate(depths):  # a stage starts where the width changes (ResNet: where a downsample is)
        starts = f"body.{k}.downsample.0.weight" in enc_state if body == "resnet" else d != prev
        if starts or not stages:
            stages.append([d, 1])
        else:
            stages[-1][1] += 1
        prev = d
    if len(stages) != 4:
        raise CheckpointError(f"{source}: the encoder body has {len(stages)} width changes; expected the 4 stages "
                              "of an IR(-SE) 50/100/152 or ResNet-34 backbone.")
    num_ws = 0
    while f"styles.{num_ws}.linear.weight" in enc_state:
        num_ws += 1
    if num_ws == 0:
        raise CheckpointError(f"{source}: no 'styles.*' heads in the encoder.")
    n_convs = [sum(1 for key in enc_state if re.fullmatch(rf"styles\.{i}\.convs\.\d+\.weight", key))
               for i in range(num_ws)]
    if min(n_convs) == 0:
        raise CheckpointError(f"{source}: style head {n_convs.index(0)} has no convolutions.")
    c3_size = 2 ** n_convs[0]
    coarse = sum(1 for n in n_convs if n == n_convs[0])
    middle = coarse + sum(1 for n in n_convs if n == n_convs[0] + 1)
    lin = enc_state["styles.0.linear.weight"]
    head_ch = int(enc_state["styles.0.convs.0.weight"].shape[0])
    se = "body.0.res_layer.5.fc1.weight" in enc_state
    reduction = 16
    if se:
        fc1 = enc_state["body.0.res_layer.5.fc1.weight"]
        reduction = max(1, int(fc1.shape[1]) // max(1, int(fc1.shape[0])))
    return normalize_config({
        "mode": mode, "arch": arch, "body": body, "in_channels": int(stem_w.shape[1]), "input_size": c3_size * 16,
        "stem_channels": int(stem_w.shape[0]), "stages": stages, "se": se, "se_reduction": reduction,
        "num_ws": num_ws, "w_dim": int(lin.shape[0]), "head_channels": head_ch,
        "coarse_ind": coarse, "middle_ind": middle,
    })


def load_official_checkpoint(path, *, with_decoder: bool = True):
    """Read an official pSp / e4e / ReStyle checkpoint: ``(LatentEncoder, Generator or None)``.

    The file is a ``torch.save`` dict with ``state_dict`` (``encoder.*`` and ``decoder.*``),
    ``latent_avg`` and ``opts``; it is read with ``torch.load(weights_only=True)``. When
    ``opts['start_from_latent_avg']`` is false, pSp / e4e codes are used as they are (latent_avg = 0);
    ReStyle always starts from ``latent_avg`` (its first iteration adds it), so its encoders keep it. A
    ReStyle encoder (6 input channels) runs with :func:`stylekit.invert.refine.restyle`.
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
    restyle = config["in_channels"] == 6 or config["arch"] == "backbone"
    use_avg = restyle or bool(opts.get("start_from_latent_avg", True))
    encoder_type = next(name for name, kinds in ENCODER_TYPES.items()
                        if kinds == (config["mode"], config["arch"], config["body"]))
    info = {"source": f"official {'ReStyle' if restyle else 'pSp/e4e'} checkpoint",
            "encoder_type": str(opts.get("encoder_type") or encoder_type), "file": os.path.basename(source)}
    if restyle and opts.get("n_iters_per_batch"):
        info["iterations_trained"] = int(opts["n_iters_per_batch"])
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
