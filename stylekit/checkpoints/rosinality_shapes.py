"""The architecture of a rosinality/stylegan2-pytorch generator, read from its tensor shapes.

rosinality's ``model.py`` builds its channel table from ``channel_multiplier``, but e4e, pSp,
ReStyle and narrowed research models change it, so nothing here assumes a table: every size
(``style_dim``, ``n_mlp``, resolution, the channels of every resolution, the blur kernel) is voted
on by the tensors that carry it (:func:`infer_architecture`), and then every tensor is checked
against the shapes those sizes imply (:func:`check_shapes`), so a wrong or foreign tensor is named.
The state dicts here use rosinality's names with no prefix (see
:func:`stylekit.checkpoints.rosinality.extract_generator_state`).
"""

from __future__ import annotations

import re
from collections import Counter

from ..errors import CheckpointError

DEFAULT_BLUR_TAPS = (1, 3, 3, 1)


def is_tensor(value) -> bool:
    """Whether ``value`` is a torch tensor (torch is imported only when this is called)."""
    import torch

    return isinstance(value, torch.Tensor)


def blur_kernel_keys(num_blocks: int) -> list[str]:
    """Names of the stored blur kernels (up-sampling convolutions, then ToRGB up-samplers)."""
    keys = [f"convs.{2 * k}.conv.blur.kernel" for k in range(num_blocks)]
    return keys + [f"to_rgbs.{k}.upsample.kernel" for k in range(num_blocks)]



def _shape(state: dict, key: str) -> tuple[int, ...] | None:
    value = state.get(key)
    return tuple(value.shape) if is_tensor(value) else None


def _vote(state: dict, probes: list[tuple[str, int, int]], what: str, source: str) -> int:
    """The most common size among ``(key, ndim, axis)`` probes: robust to one wrong tensor, which is then named."""
    sizes = Counter()
    for key, ndim, axis in probes:
        shape = _shape(state, key)
        if shape is not None and len(shape) == ndim:
            sizes[shape[axis]] += 1
    if not sizes:
        raise CheckpointError(f"{source}: cannot tell the {what} from the checkpoint: none of "
                              f"{[p[0] for p in probes[:4]]} is a tensor of the expected rank.")
    return sizes.most_common(1)[0][0]


def _count(state: dict, pattern: str) -> int:
    """How many consecutive indices ``i = first, first+1, ...`` have ``pattern.format(i)`` in ``state``."""
    regex = re.compile("^" + re.escape(pattern).replace(r"\{\}", r"(\d+)") + "$")
    indices = {int(m.group(1)) for k in state if isinstance(k, str) for m in [regex.match(k)] if m}
    return len(indices)


def layer_names(num_blocks: int) -> list[tuple[str, str, int]]:
    """``(rosinality prefix, NVIDIA layer name, resolution)`` of every modulated conv, in synthesis order."""
    out = [("conv1", "b4.conv1", 4)]
    for k in range(num_blocks):
        res = 8 * 2 ** k
        out.append((f"convs.{2 * k}", f"b{res}.conv0", res))
        out.append((f"convs.{2 * k + 1}", f"b{res}.conv1", res))
    return out


def _expected_shapes(*, style_dim: int, n_mlp: int, channels: dict[int, int], img_channels: int,
                     blur: int, kernel: int = 3) -> tuple[dict[str, tuple], set[str]]:
    """rosinality state-dict names -> shapes for the given sizes, and the set of optional names."""
    d = style_dim
    exp: dict[str, tuple] = {}
    optional: set[str] = set()
    for i in range(1, n_mlp + 1):
        exp[f"style.{i}.weight"] = (d, d)
        exp[f"style.{i}.bias"] = (d,)
    c4 = channels[4]
    exp["input.input"] = (1, c4, 4, 4)
    resolutions = sorted(channels)
    num_blocks = len(resolutions) - 1
    for j, (ros, nv, res) in enumerate(layer_names(num_blocks)):
        up = nv.endswith("conv0")
        cin = channels[res // 2] if up else channels[res]
        cout = channels[res]
        exp[f"{ros}.conv.weight"] = (1, cout, cin, kernel, kernel)
        exp[f"{ros}.conv.modulation.weight"] = (cin, d)
        exp[f"{ros}.conv.modulation.bias"] = (cin,)
        exp[f"{ros}.noise.weight"] = (1,)
        exp[f"{ros}.activate.bias"] = (cout,)
        if up:
            exp[f"{ros}.conv.blur.kernel"] = (blur, blur)
            optional.add(f"{ros}.conv.blur.kernel")
        exp[f"noises.noise_{j}"] = (1, 1, res, res)
        optional.add(f"noises.noise_{j}")
    for k, res in enumerate(resolutions):
        ros = "to_rgb1" if res == 4 else f"to_rgbs.{k - 1}"
        c = channels[res]
        exp[f"{ros}.conv.weight"] = (1, img_channels, c, 1, 1)
        exp[f"{ros}.conv.modulation.weight"] = (c, d)
        exp[f"{ros}.conv.modulation.bias"] = (c,)
        exp[f"{ros}.bias"] = (1, img_channels, 1, 1)
        if res > 4:
            exp[f"{ros}.upsample.kernel"] = (blur, blur)
            optional.add(f"{ros}.upsample.kernel")
    return exp, optional


def _channels(state: dict, num_blocks: int, source: str) -> dict[int, int]:
    """Channels of every resolution ``{4: C4, 8: C8, ...}``, each voted on by the tensors that carry it."""
    channels: dict[int, int] = {}
    c4_probes = [("input.input", 4, 1), ("conv1.conv.weight", 5, 1), ("conv1.conv.weight", 5, 2),
                 ("conv1.activate.bias", 1, 0), ("conv1.conv.modulation.weight", 2, 0),
                 ("to_rgb1.conv.weight", 5, 2), ("to_rgb1.conv.modulation.weight", 2, 0),
                 ("convs.0.conv.weight", 5, 2), ("convs.0.conv.modulation.weight", 2, 0)]
    channels[4] = _vote(state, c4_probes, "channels at 4x4", source)
    for k in range(num_blocks):
        res = 8 * 2 ** k
        a, b = f"convs.{2 * k}", f"convs.{2 * k + 1}"
        probes = [(f"{a}.conv.weight", 5, 1), (f"{a}.activate.bias", 1, 0), (f"{b}.conv.weight", 5, 1),
                  (f"{b}.conv.weight", 5, 2), (f"{b}.conv.modulation.weight", 2, 0), (f"{b}.activate.bias", 1, 0),
                  (f"to_rgbs.{k}.conv.weight", 5, 2), (f"to_rgbs.{k}.conv.modulation.weight", 2, 0)]
        channels[res] = _vote(state, probes, f"channels at {res}x{res}", source)
    return channels


def infer_architecture(state: dict, *, source: str = "<state dict>") -> dict:
    """Sizes of a rosinality generator from its tensor shapes.

    Returns ``{'style_dim', 'n_mlp', 'img_resolution', 'img_channels', 'channels': {res: C}, 'blur'}``
    (``blur`` = the stored blur-kernel size, 4 for the default [1, 3, 3, 1]).
    """
    n_mlp = _count(state, "style.{}.weight")
    if n_mlp == 0:
        raise CheckpointError(f"{source}: no mapping layers (style.1.weight, style.2.weight, ...) in the checkpoint.")
    num_blocks = _count(state, "to_rgbs.{}.conv.weight")
    style_probes = [(f"style.{i}.weight", 2, a) for i in range(1, n_mlp + 1) for a in (0, 1)]
    style_probes += [(f"{ros}.conv.modulation.weight", 2, 1) for ros, _, _ in layer_names(num_blocks)]
    style_dim = _vote(state, style_probes, "style dimension", source)
    channels = _channels(state, num_blocks, source)
    img_channels = _vote(state, [("to_rgb1.conv.weight", 5, 1), ("to_rgb1.bias", 4, 1)]
                         + [(f"to_rgbs.{k}.conv.weight", 5, 1) for k in range(num_blocks)], "image channels", source)
    blur_keys = blur_kernel_keys(num_blocks)
    blur = len(DEFAULT_BLUR_TAPS)
    if any(_shape(state, key) is not None for key in blur_keys):
        blur = _vote(state, [(key, 2, 0) for key in blur_keys], "blur kernel size", source)
    return {"style_dim": style_dim, "n_mlp": n_mlp, "img_resolution": 4 * 2 ** num_blocks,
            "img_channels": img_channels, "channels": channels, "blur": blur}


def check_shapes(state: dict, arch: dict, *, source: str = "<state dict>") -> None:
    """Require every tensor of a rosinality generator, with the shape ``arch`` implies; name the first misfit."""
    expected, optional = _expected_shapes(style_dim=arch["style_dim"], n_mlp=arch["n_mlp"],
                                          channels=arch["channels"], img_channels=arch["img_channels"],
                                          blur=arch["blur"])
    for key, shape in expected.items():
        value = state.get(key)
        if value is None:
            if key in optional:
                continue
            raise CheckpointError(f"{source}: the checkpoint lacks {key} (expected shape {shape}) that a "
                                  f"{arch['img_resolution']}x{arch['img_resolution']} rosinality generator needs.")
        if not is_tensor(value):
            raise CheckpointError(f"{source}: {key} is a {type(value).__name__}, not a tensor.")
        if tuple(value.shape) != shape:
            raise CheckpointError(f"{source}: {key} has shape {tuple(value.shape)}, expected {shape} (the "
                                  f"{arch['img_resolution']}x{arch['img_resolution']} architecture with channels "
                                  f"{arch['channels']} read from the other tensors).")
        if not value.is_floating_point():
            raise CheckpointError(f"{source}: {key} has dtype {value.dtype}; expected floating-point weights.")
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        raise CheckpointError(f"{source}: tensor {unexpected[0]!r} (of {len(unexpected)} unexpected) is not part of a "
                              "rosinality StyleGAN2 generator; this file may come from a modified model.py.")
