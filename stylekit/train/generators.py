"""What the generator trainers (adversarial and supervised) share: the generator's settings, building
or loading a trainable StyleGAN2, style mixing, fixed-latent sample grids, and writing the result in
stylekit's canonical format.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import ClassVar
from pathlib import Path

import torch

from ..errors import CheckpointError, InvalidArgumentError
from .skeleton import KimgConfig

__all__ = ["GeneratorConfig", "ARCHS", "new_stylegan2", "new_generator", "load_init_generator", "widen_stylegan2",
           "generator_for_run",
           "save_canonical",
           "mixed_ws", "save_grid", "fixed_latents", "sample_grid"]


@dataclass
class GeneratorConfig(KimgConfig):
    """A generator-training run: length in kimg plus the StyleGAN2 generator's architecture.

    The architecture fields are ignored when ``init`` is given (the init file's config wins), except
    ``g_channels``: with ``init`` it widens the init generator to those channels without changing what it draws
    (:func:`widen_stylegan2`).
    """

    arch: str = "stylegan2"             # 'stylegan2', 'stylegan3-t' or 'stylegan3-r' (see ARCHS)
    resolution: int = 64                # training resolution R (power of two)
    z_dim: int = 64
    w_dim: int = 64
    map_layers: int = 4
    channel_base: int = 4096            # feature maps per resolution: min(channel_base // res, channel_max)
    channel_max: int = 128
    g_channels: dict | None = None      # optional explicit {str(res): channels} for G (StyleGAN2)
    sg3_layers: int = 10                # StyleGAN3: synthesis layers (the official 14 at 1024; fewer for small R)
    conv_clamp: float | None = None
    init: str | None = None             # start G (and its EMA) from this canonical generator file
    ema_kimg: float = 1.0               # half-life of the generator EMA in kimg
    grid_size: int = 36                 # images in the sample grids
    compile: bool = False               # run G's synthesis through torch.compile (see train.compiled)

    RUN_FIELDS: ClassVar[tuple[str, ...]] = KimgConfig.RUN_FIELDS + ("compile",)

    def generator_config(self) -> dict:
        """NVIDIA-style Generator kwargs for :class:`StyleGAN2Generator` or, for the StyleGAN3 archs,
        :class:`~stylekit.networks.stylegan3.StyleGAN3Generator` (``channel_base`` / ``channel_max`` in StyleGAN3's
        sense: ``min(channel_base / 2 / cutoff, channel_max)`` per layer; -R: 1x1 convolutions, radial filters)."""
        if self.arch != "stylegan2":
            return dict(z_dim=self.z_dim, c_dim=0, w_dim=self.w_dim, img_resolution=self.resolution, img_channels=3,
                        mapping_kwargs=dict(num_layers=self.map_layers), channel_base=self.channel_base,
                        channel_max=self.channel_max, num_layers=self.sg3_layers,
                        conv_kernel=1 if self.arch == "stylegan3-r" else 3,
                        use_radial_filters=self.arch == "stylegan3-r")
        cfg = dict(z_dim=self.z_dim, c_dim=0, w_dim=self.w_dim, img_resolution=self.resolution, img_channels=3,
                   mapping_kwargs=dict(num_layers=self.map_layers), channel_base=self.channel_base,
                   channel_max=self.channel_max, conv_clamp=self.conv_clamp, architecture="skip")
        if self.g_channels:
            cfg["channels"] = {str(k): int(v) for k, v in self.g_channels.items()}
        return cfg

    def resumed_from(self, saved: dict) -> "GeneratorConfig":
        """The checkpoint's settings, except the run fields (see :attr:`RUN_FIELDS`); ``init`` is dropped."""
        merged = {**saved, **{k: getattr(self, k) for k in self.RUN_FIELDS}, "init": None}
        return type(self).from_dict(merged)

    def validate(self) -> None:
        super().validate()
        log2 = int(round(math.log2(self.resolution))) if self.resolution > 0 else 0
        if self.resolution < 8 or 2 ** log2 != self.resolution:
            raise InvalidArgumentError(f"--resolution must be a power of two >= 8, not {self.resolution}")
        if self.arch not in ARCHS:
            raise InvalidArgumentError(f"--arch must be one of {ARCHS}, not {self.arch!r}")
        if self.arch != "stylegan2" and self.g_channels:
            raise InvalidArgumentError("--g-channels is for StyleGAN2; a StyleGAN3's channels follow --channel-base "
                                       "and --channel-max")


#: The generator architectures the trainers build.
ARCHS = ("stylegan2", "stylegan3-t", "stylegan3-r")


def new_stylegan2(config: dict, device="cpu"):
    """A fresh :class:`StyleGAN2Generator` from NVIDIA-style kwargs, on ``device``, in train mode."""
    from ..networks.stylegan2 import StyleGAN2Generator

    return StyleGAN2Generator(dict(config)).to(device).train()


def new_generator(config: dict, arch: str = "stylegan2", device="cpu"):
    """A fresh generator of ``arch`` (``'stylegan2'`` or ``'stylegan3'``, the networks' ``arch`` names; the
    trainer's ``'stylegan3-t'`` / ``'stylegan3-r'`` also work) from NVIDIA-style kwargs, in train mode."""
    if arch == "stylegan2":
        return new_stylegan2(config, device=device)
    if arch.startswith("stylegan3"):
        from ..networks.stylegan3 import StyleGAN3Generator

        return StyleGAN3Generator(dict(config)).to(device).train()
    raise InvalidArgumentError(f"unknown generator architecture {arch!r}; use one of {ARCHS}.")


def load_init_generator(path: str, device="cpu"):
    """Read a canonical generator file to start training from: returns a trainable StyleGAN2 or StyleGAN3 G."""
    from ..checkpoints.canonical import read_canonical
    from ..checkpoints.load import load_state_checked

    arch, config, state, _ = read_canonical(path)
    if arch not in ("stylegan2", "stylegan3"):
        raise CheckpointError(f"{path}: only StyleGAN2 and StyleGAN3 generators can be trained here, this one is "
                              f"{arch!r}.")
    G = new_generator(config, arch, device="cpu")
    load_state_checked(G, state, source=str(path))
    return G.to(device).train().requires_grad_(True)


@torch.no_grad()
def widen_stylegan2(G, channels: dict, *, seed: int = 0):
    """A copy of StyleGAN2 ``G`` with more feature maps at some resolutions, drawing exactly the same images.

    ``channels`` maps resolutions (``int`` or ``str``) to at least their current channel counts. The wider
    network starts from a fresh generator of the new shape; every old tensor is copied into its top-left
    slice. What keeps the function: a modulated convolution's output channel ``o`` is
    ``sum_i w[o, i] s_i x_i / sqrt(sum_i (w[o, i] s_i)^2 + eps)``, so the weights from new input channels to
    old output channels are set to 0 (old outputs and their demodulation are unchanged) while new output
    channels keep their random weights (they compute features, which the next layer ignores until training
    moves its zero weights; a zero-zero pair would never get a gradient). ToRGB has no demodulation but a
    gain ``1/sqrt(in_channels)``: its old weights are scaled by ``sqrt(new_in / old_in)`` and its weights from new
    channels set to 0. Noise strengths are per layer, so new channels share them.

    Returns a new generator in train mode (``G`` is unchanged). Raises InvalidArgumentError when a
    resolution is not G's or would lose channels.
    """
    config = json.loads(json.dumps(G.config))
    old = {int(k): int(v) for k, v in (config.get("channels") or {}).items()}
    if not old:
        from ..networks.stylegan2_config import channel_table

        old = {int(k): int(v) for k, v in channel_table(config).items()}
    new = dict(old)
    for res, ch in channels.items():
        res, ch = int(res), int(ch)
        if res not in old:
            raise InvalidArgumentError(f"the generator has no {res} px block (it has {sorted(old)}).")
        if ch < old[res]:
            raise InvalidArgumentError(f"widening cannot shrink the {res} px block ({old[res]} -> {ch} channels).")
        new[res] = ch
    config["channels"] = {str(k): v for k, v in sorted(new.items())}
    torch.manual_seed(seed)
    wide = new_stylegan2(config, device="cpu")
    source = G.state_dict()
    for name, t in wide.state_dict().items():
        o = source[name].to(t.device, t.dtype)
        if o.shape == t.shape:
            t.copy_(o)
            continue
        if o.ndim != t.ndim:
            raise InvalidArgumentError(f"cannot widen {name}: {tuple(o.shape)} -> {tuple(t.shape)}")
        if name.endswith("torgb.weight"):  # [3, I, 1, 1]: gain 1/sqrt(I) moves
            t.zero_()
            t[:, :o.shape[1]] = o * math.sqrt(t.shape[1] / o.shape[1])
            continue
        if name.endswith(".weight") and t.ndim == 4:  # conv [O, I, k, k]: old rows read zeros from new inputs
            t[:o.shape[0], o.shape[1]:] = 0
        t[tuple(slice(0, n) for n in o.shape)] = o
    return wide.train().requires_grad_(True)


def generator_for_run(cfg: GeneratorConfig, state: dict | None, device) -> torch.nn.Module:
    """The generator a run trains: from ``cfg.init`` on a fresh run (widened to ``cfg.g_channels`` when given),
    else built from the checkpoint's (or the config's) architecture. Its resolution must equal ``cfg.resolution``."""
    if cfg.init and state is None:
        G = load_init_generator(cfg.init, device=device)
        if cfg.g_channels:
            if G.arch != "stylegan2":
                raise InvalidArgumentError("--g-channels with --init widens a StyleGAN2; this init file is a "
                                           f"{G.arch}.")
            G = widen_stylegan2(G, cfg.g_channels, seed=cfg.seed).to(device)
    else:
        extra = (state or {}).get("extra") or {}
        g_config = (json.loads(state.get("g_config") or extra["g_config"]) if state is not None
                    else cfg.generator_config())
        arch = extra.get("g_arch", "stylegan2") if state is not None else cfg.arch
        G = new_generator(g_config, arch, device=device)
    if G.img_resolution != cfg.resolution:
        raise InvalidArgumentError(f"the generator is {G.img_resolution}x{G.img_resolution} but --resolution is "
                                   f"{cfg.resolution}; use the same resolution.")
    return G


def save_canonical(G, path: str | Path, extra_metadata: dict | None = None) -> Path:
    """Write ``G`` in stylekit's canonical safetensors format."""
    from ..checkpoints.canonical import save_generator

    return save_generator(G, path, extra_metadata=extra_metadata)


def mixed_ws(G, z: torch.Tensor, *, style_mixing_prob: float, update_emas: bool = False,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Map ``z [N, z_dim]`` to ``ws [N, num_ws, w_dim]`` with style-mixing regularisation.

    With probability ``style_mixing_prob`` (per batch, as in StyleGAN2-ADA) a random cutoff in
    ``[1, num_ws)`` is drawn and the ws from it onward come from a second random latent.
    """
    ws = G.mapping(z, None, update_emas=update_emas)
    if style_mixing_prob > 0 and G.num_ws > 1:
        u = torch.rand([], generator=generator).item()
        if u < style_mixing_prob:
            cutoff = int(torch.randint(1, G.num_ws, [], generator=generator).item())
            z2 = torch.randn(z.shape, generator=generator).to(z.device)
            ws = ws.clone()
            ws[:, cutoff:] = G.mapping(z2, None, update_emas=False)[:, cutoff:]
    return ws


def save_grid(images: torch.Tensor, path: str | Path, *, ncols: int | None = None) -> Path:
    """Write ``[N, 3, H, W]`` images in [-1, 1] as one PNG grid."""
    from ..images import make_grid, tensor_to_pil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensor_to_pil(make_grid(images.clamp(-1, 1), ncols=ncols, padding=1)).save(path)
    return path


def fixed_latents(G, n: int, seed: int = 1234) -> torch.Tensor:
    """``n`` reproducible standard-normal latents ``[n, z_dim]`` for sample grids."""
    return torch.randn([n, G.z_dim], generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def sample_grid(G, z: torch.Tensor, path: str | Path, device="cpu") -> Path:
    """Render ``G`` at fixed ``z [N, z_dim]`` (noise_mode='const') and save the grid PNG."""
    was_training = G.training
    G.eval()
    imgs = []
    for i in range(0, len(z), 64):
        ws = G.mapping(z[i:i + 64].to(device), None)
        imgs.append(G.synthesis(ws, noise_mode="const").cpu())
    G.train(was_training)
    return save_grid(torch.cat(imgs), path)
