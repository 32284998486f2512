"""The StyleGAN2 generator in plain PyTorch, number for number with NVIDIA's official code.

Structure, parameter names and equations follow ``training/networks_stylegan2.py`` of NVlabs
stylegan3 (identical to ``training/networks.py`` of stylegan2-ada-pytorch for the generator), so an
official pickle's tensors load with ``load_state_dict(strict=True)``::

    G = StyleGAN2Generator(record.init_kwargs)      # the official constructor kwargs
    G.load_state_dict(record.tensors())             # synthesis.b4.const, synthesis.b8.conv0.weight, ...

The synthesis network runs on two interchangeable code paths (``impl=``):

- ``'reference'``: deliberately plain. Resampling is zero insertion + padding + a 2-D FIR
  convolution (:func:`stylekit.networks.ops.upfirdn2d`); a modulated convolution is one grouped
  convolution with per-sample weights, exactly as the official ``fused_modconv=True`` branch.
- ``'fast'`` (default): the same maths arranged for CPU speed. See
  :func:`stylekit.networks.modconv.modulated_conv2d_fast`.
  It agrees with the reference to about 1e-6 relative (float rounding only). It computes in the
  synthesis network's ``precision`` (``'fp32'`` default, ``'bf16'``, ``'fp16'``: see
  :func:`block_dtypes` and :mod:`stylekit.networks.precision`); weights stay float32, the
  demodulation coefficients and the skip image are float32, and images come back float32.

StyleSpace (S) convention: the style of every layer, ToRGB included, is the raw output of that
layer's affine map, ``affine(w)`` (``[N, in_channels]``, about 1 +- small). ToRGB's constant
``weight_gain = 1/sqrt(in_channels)`` is *not* part of S; the ToRGB layer applies it when it uses
the style. This is the convention of the StyleSpace paper (whose TF code keeps that gain on the
convolution weight), so S values of ToRGB layers are comparable with those of conv layers.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from ..errors import InvalidArgumentError
from . import ops
from .base import Generator, StyleLayer, check_styles, check_ws
from .modconv import modulated_conv2d_fast, modulated_conv2d_reference
from .precision import dtype_of
from .stylegan2_config import channel_table, normalize_config
from .mapping import MappingNetwork

_LRELU_GAIN = math.sqrt(2.0)
_LRELU_ALPHA = 0.2
_IMPLS = ("fast", "reference")
_NOISE_MODES = ("const", "random", "none")


# ----------------------------------------------------------------------------------------------
# Layers (parameter names follow NVIDIA's)


class SynthesisLayer(torch.nn.Module):
    """Modulated 3x3 convolution + noise + bias + leaky ReLU (+ clamp), optionally upsampling x2.

    Tensors: ``affine.weight [I, w_dim]``, ``affine.bias [I]`` (init 1), ``weight [O, I, 3, 3]``,
    ``bias [O]``, ``noise_strength []``, buffers ``noise_const [R, R]`` and ``resample_filter [4, 4]``.
    """

    def __init__(self, in_channels: int, out_channels: int, *, w_dim: int, resolution: int, up: int = 1,
                 use_noise: bool = True, resample_filter: Sequence[float] = (1, 3, 3, 1),
                 conv_clamp: float | None = None, kernel_size: int = 3):
        super().__init__()
        self.in_channels, self.out_channels, self.w_dim = in_channels, out_channels, w_dim
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.conv_clamp = conv_clamp
        self.padding = kernel_size // 2
        self.act_gain = _LRELU_GAIN
        self.register_buffer("resample_filter", ops.setup_filter(resample_filter))
        self.affine = ops.FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = torch.nn.Parameter(torch.zeros([]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x: torch.Tensor, styles: torch.Tensor, noise: torch.Tensor | None,
                impl: str = "fast") -> torch.Tensor:
        """``x [N, I, R/up, R/up]``, ``styles [N, I]``, ``noise`` unscaled ``[N|1, 1, R, R]`` or None.

        Returns ``[N, O, R, R]``: ``clamp(lrelu(conv(x) + noise * noise_strength + bias) * sqrt(2))``.
        """
        if noise is not None:
            noise = noise * self.noise_strength
        if impl == "reference":
            x = modulated_conv2d_reference(x, self.weight, styles, up=self.up, padding=self.padding,
                                           resample_filter=self.resample_filter)
            if noise is not None:
                x = x + noise
            return ops.bias_act(x, self.bias, act="lrelu", gain=self.act_gain, clamp=self.conv_clamp)

        # Fast: lrelu(v) * g == lrelu(v * g) for g > 0, so the gain is folded into the conv output.
        g = self.act_gain
        x = modulated_conv2d_fast(x, self.weight, styles, up=self.up, padding=self.padding,
                                  resample_filter=self.resample_filter, out_gain=g, bias=self.bias)
        if noise is not None:
            x = ops.add_plane_(x, (noise * g).to(x.dtype))
        return ops.lrelu_clamp_(x, _LRELU_ALPHA, self.conv_clamp)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, w_dim={self.w_dim}, "
                f"resolution={self.resolution}, up={self.up}")


class ToRGBLayer(torch.nn.Module):
    """Modulated 1x1 convolution (no demodulation) + bias (+ clamp) producing the image branch."""

    def __init__(self, in_channels: int, out_channels: int, *, w_dim: int, conv_clamp: float | None = None):
        super().__init__()
        self.in_channels, self.out_channels, self.w_dim = in_channels, out_channels, w_dim
        self.conv_clamp = conv_clamp
        self.affine = ops.FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, 1, 1]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, styles: torch.Tensor, impl: str = "fast") -> torch.Tensor:
        """``x [N, I, H, W]``, ``styles [N, I]`` = ``affine(w)`` (without ``weight_gain``) -> ``[N, C, H, W]``."""
        styles = styles * self.weight_gain
        if impl == "reference":
            x = modulated_conv2d_reference(x, self.weight, styles, demodulate=False)
            return ops.bias_act(x, self.bias, clamp=self.conv_clamp)
        # [N, H, W, I] @ [N, I, C]: a view (no copy) when x is channels_last. Computed in x.dtype,
        # the bias added (and the result returned) in float32 for the image's skip sum.
        n, _, h, w_ = x.shape
        wgt = (self.weight[:, :, 0, 0].unsqueeze(0) * styles.unsqueeze(1)).transpose(1, 2)  # [N, I, C]
        y = torch.matmul(x.permute(0, 2, 3, 1).reshape(n, h * w_, -1), wgt.to(x.dtype)).float() + self.bias
        y = y.reshape(n, h, w_, -1).permute(0, 3, 1, 2)  # [N, C, H, W], channels_last memory
        if self.conv_clamp is not None:
            y = y.clamp(-self.conv_clamp, self.conv_clamp)
        return y

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}, w_dim={self.w_dim}"


class SynthesisBlock(torch.nn.Module):
    """One resolution: ``const`` (first block) or ``conv0`` (x2 up), then ``conv1``, then ``torgb``."""

    def __init__(self, in_channels: int, out_channels: int, *, w_dim: int, resolution: int, img_channels: int,
                 is_last: bool, architecture: str = "skip", resample_filter: Sequence[float] = (1, 3, 3, 1),
                 conv_clamp: float | None = None, use_noise: bool = True):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.register_buffer("resample_filter", ops.setup_filter(resample_filter))
        # the filter's 1-D taps, for a compiled forward (torch.compile cannot trace separable_taps'
        # data-dependent check; the buffer always holds setup_filter(resample_filter))
        self._compiled_taps = ops.separable_taps(self.resample_filter)
        self.num_conv = 0
        self.num_torgb = 0
        layer_kwargs = dict(w_dim=w_dim, resolution=resolution, use_noise=use_noise,
                            resample_filter=resample_filter, conv_clamp=conv_clamp)
        if in_channels == 0:
            self.const = torch.nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, up=2, **layer_kwargs)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1

    def conv_layers(self) -> list[tuple[str, SynthesisLayer]]:
        return [(name, getattr(self, name)) for name in ("conv0", "conv1") if hasattr(self, name)]

    def upsample_image(self, img: torch.Tensor, impl: str) -> torch.Tensor:
        """``[N, C, R/2, R/2] -> [N, C, R, R]`` with the block's FIR (official ``upsample2d``)."""
        f = self.resample_filter
        if impl != "reference":
            taps = self._compiled_taps if torch.compiler.is_compiling() else ops.separable_taps(f)
            if taps is not None:
                return ops.upsample2d_separable(img, taps)
        fh, fw = f.shape
        return ops.upfirdn2d(img, f, up=2, padding=[(fw + 1) // 2, (fw - 2) // 2, (fh + 1) // 2, (fh - 2) // 2],
                             gain=4)


def block_dtypes(resolutions: Sequence[int], precision: str) -> dict[int, torch.dtype]:
    """The fast path's activation dtype per block resolution for a ``precision``.

    ``'fp32'``: float32 everywhere; ``'bf16'``: bfloat16 everywhere (float32's range, so nothing
    can overflow); ``'fp16'``: float16 on the four finest resolutions only (NVIDIA's
    ``num_fp16_res=4``, where nearly all the work is), float32 below, where 512-channel sums
    could exceed float16's range.
    """
    dtype = dtype_of(precision)
    if dtype != torch.float16:
        return {r: dtype for r in resolutions}
    finest = max(resolutions)
    return {r: (torch.float16 if r * 8 >= finest else torch.float32) for r in resolutions}


# ----------------------------------------------------------------------------------------------
# Synthesis network


class SynthesisNetwork(torch.nn.Module):
    """W+ (or StyleSpace S) -> image. Blocks ``b4, b8, ..., b{R}`` as in NVIDIA's code.

    Attributes: ``num_ws``, ``w_dim``, ``img_resolution``, ``img_channels``, ``block_resolutions``,
    ``style_layers`` (list of :class:`~stylekit.networks.base.StyleLayer`).
    """

    def __init__(self, *, w_dim: int, img_resolution: int, img_channels: int, channels: dict[int, int],
                 architecture: str = "skip", resample_filter: Sequence[float] = (1, 3, 3, 1),
                 conv_clamp: float | None = None, use_noise: bool = True):
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.architecture = architecture
        self.block_resolutions = [2 ** i for i in range(2, int(math.log2(img_resolution)) + 1)]
        self.channels = dict(channels)
        self.num_ws = 0
        style_layers: list[StyleLayer] = []
        for res in self.block_resolutions:
            in_ch = channels[res // 2] if res > 4 else 0
            block = SynthesisBlock(in_ch, channels[res], w_dim=w_dim, resolution=res, img_channels=img_channels,
                                   is_last=(res == img_resolution), architecture=architecture,
                                   resample_filter=resample_filter, conv_clamp=conv_clamp, use_noise=use_noise)
            setattr(self, f"b{res}", block)
            w_idx = self.num_ws
            for i, (name, layer) in enumerate(block.conv_layers()):
                style_layers.append(StyleLayer(f"b{res}.{name}", w_idx + i, layer.in_channels, "conv"))
            if block.num_torgb:
                style_layers.append(StyleLayer(f"b{res}.torgb", w_idx + block.num_conv, block.torgb.in_channels,
                                               "torgb"))
            self.num_ws += block.num_conv
            if res == img_resolution:
                self.num_ws += block.num_torgb
        self.style_layers: list[StyleLayer] = style_layers
        self.precision = "fp32"  # compute precision of the fast path (see block_dtypes)

    def blocks(self) -> list[SynthesisBlock]:
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def _layer(self, name: str) -> torch.nn.Module:
        block, layer = name.split(".")
        return getattr(getattr(self, block), layer)

    def noise_shapes(self) -> list[tuple[str, tuple[int, int]]]:
        """``[(layer name, (H, W)), ...]``: the noise maps an explicit ``noise=`` list must give, in order."""
        out = []
        for block in self.blocks():
            for name, layer in block.conv_layers():
                if layer.use_noise:
                    out.append((f"b{block.resolution}.{name}", (layer.resolution, layer.resolution)))
        return out

    def noise_buffers(self) -> list[torch.Tensor]:
        """The stored ``noise_const`` buffers ``[H, W]`` in :meth:`noise_shapes` order."""
        return [self._layer(name).noise_const for name, _ in self.noise_shapes()]

    def ws_to_styles(self, ws: torch.Tensor) -> list[torch.Tensor]:
        """W+ ``[N, num_ws, w_dim]`` -> StyleSpace S: ``affine(ws[:, ws_index])`` ``[N, channels]`` per style layer.

        ToRGB styles exclude the layer's constant ``weight_gain`` (see the module docstring).
        """
        ws = check_ws(ws, self.num_ws, self.w_dim)
        return [self._layer(sl.name).affine(ws[:, sl.ws_index]) for sl in self.style_layers]

    def _noise_maps(self, noise, noise_mode: str, n: int, device) -> list[torch.Tensor | None]:
        shapes = self.noise_shapes()
        if noise is not None:
            if not isinstance(noise, (list, tuple)) or len(noise) != len(shapes):
                raise InvalidArgumentError(f"noise must be a list of {len(shapes)} maps, one per entry of "
                                           f"noise_shapes() (got {len(noise) if isinstance(noise, (list, tuple)) else type(noise).__name__}).")
            out = []
            for m, (name, (h, w)) in zip(noise, shapes):
                if isinstance(m, torch.Tensor) and m.ndim == 2:
                    m = m.reshape(1, 1, *m.shape)
                if (not isinstance(m, torch.Tensor) or m.ndim != 4 or m.shape[1] != 1 or tuple(m.shape[2:]) != (h, w)
                        or m.shape[0] not in (1, n)):
                    got = tuple(m.shape) if isinstance(m, torch.Tensor) else type(m).__name__
                    raise InvalidArgumentError(f"noise map for {name} must be [{n} or 1, 1, {h}, {w}] or [{h}, {w}], "
                                               f"got {got}.")
                out.append(m.to(device=device, dtype=torch.float32))
            return out
        if noise_mode == "none":
            return [None] * len(shapes)
        if noise_mode == "const":
            return [b.reshape(1, 1, *b.shape) for b in self.noise_buffers()]
        return [torch.randn([n, 1, h, w], device=device) for _, (h, w) in shapes]

    def forward(self, ws: torch.Tensor | None = None, noise_mode: str = "const",
                noise: Sequence[torch.Tensor] | None = None, styles: Sequence[torch.Tensor] | None = None,
                impl: str = "fast", precision: str | None = None, force_fp32: bool = True, fused_modconv=None,
                update_emas: bool = False, translate: Sequence[float] = (0.0, 0.0)) -> torch.Tensor:
        """Synthesize images.

        Args:
            ws: W+ ``[N, num_ws, w_dim]``; ignored (may be None) when ``styles`` is given.
            noise_mode: ``'const'`` (stored ``noise_const`` buffers), ``'random'`` (fresh N(0,1) maps
                per sample) or ``'none'``.
            noise: explicit unscaled noise maps, one per :meth:`noise_shapes` entry, each
                ``[N or 1, 1, H, W]`` or ``[H, W]``; overrides ``noise_mode``; gradients flow into them.
                (Each layer multiplies its map by its learned ``noise_strength``.)
            styles: StyleSpace S (list of ``[N, C]``, see :meth:`ws_to_styles`) used instead of ``ws``.
            impl: ``'fast'`` (default) or ``'reference'`` (always float32).
            precision: ``'fp32'``, ``'bf16'`` or ``'fp16'`` for the fast path's activations and
                convolutions; None = ``self.precision`` (see :func:`block_dtypes`). The styles,
                demodulation coefficients and the skip image stay float32.
            force_fp32, fused_modconv, update_emas: accepted for compatibility with official call
                sites (``precision`` decides the dtype; the maths is always the fused-modconv one).
            translate: ``(x, y)`` shift of the *input grid* in image widths, StyleGAN3's argument of the same
                name: the learned 4x4 constant is shifted by ``4 x`` and ``4 y`` of its pixels, band-limited and
                periodic (a phase ramp on its 2-D DFT). This is how the StyleGAN3 paper translates a StyleGAN2
                to measure equivariance: noise maps and the layers' padding do not move, so fine detail stays
                where the pixel grid is ("texture sticking"). ``(0, 0)`` leaves the network unchanged.

        Returns: ``[N, img_channels, R, R]`` float32, about [-1, 1].
        """
        del force_fp32, fused_modconv, update_emas
        shift = _input_shift(translate)
        dtypes = block_dtypes(self.block_resolutions, precision or self.precision) if impl == "fast" else None
        if impl not in _IMPLS:
            raise InvalidArgumentError(f"impl must be one of {_IMPLS}, not {impl!r}.")
        if noise_mode not in _NOISE_MODES:
            raise InvalidArgumentError(f"noise_mode must be one of {_NOISE_MODES}, not {noise_mode!r}.")
        if styles is None:
            if ws is None:
                raise InvalidArgumentError("pass ws [N, num_ws, w_dim] or styles (a list from ws_to_styles).")
            styles = self.ws_to_styles(ws)
        else:
            styles = check_styles(styles, self.style_layers)
        n = styles[0].shape[0]
        noise_maps = iter(self._noise_maps(noise, noise_mode, n, styles[0].device))
        style_iter = iter(styles)
        plan = []  # (block, [(layer, style, noise)], torgb style or None)
        for block in self.blocks():
            convs = [(layer, next(style_iter), next(noise_maps) if layer.use_noise else None)
                     for _name, layer in block.conv_layers()]
            plan.append((block, convs, next(style_iter) if block.num_torgb else None))
        per_sample = impl == "fast" and n > 1 and not torch.is_grad_enabled()  # training keeps one batch
        split = self._per_sample_from(plan) if per_sample else len(plan)
        x, img = self._run_blocks(plan[:split], None, None, n, impl, dtypes, shift)
        if split == len(plan):
            return img.contiguous()
        images = []
        for i in range(n):  # finer blocks sample by sample (see _per_sample_from)
            one = [(block, [(layer, s[i:i + 1], m if m is None or m.shape[0] == 1 else m[i:i + 1])
                            for layer, s, m in convs], None if t is None else t[i:i + 1])
                   for block, convs, t in plan[split:]]
            images.append(self._run_blocks(one, x[i:i + 1], None if img is None else img[i:i + 1], 1, impl, dtypes)[1])
        return torch.cat(images).contiguous()

    @staticmethod
    def _per_sample_from(plan) -> int:
        """Index of the first block the fast path runs one sample at a time when the batch is > 1.

        Batch > 1 modulates activations (two extra passes over them, see ``modulated_conv2d_fast``)
        where batch 1 modulates weights (one pass over ``O*I*k*k`` weights per sample); from the
        resolution where ``R^2 * (I + O)`` exceeds ``O * I * 9`` the per-sample form does less work
        (and rounds less in bfloat16). For StyleGAN2 config-f that is 64x64 and up.
        """
        for idx, (block, convs, _) in enumerate(plan):
            layer = convs[-1][0]
            if block.resolution ** 2 * (layer.in_channels + layer.out_channels) >= 9 * layer.in_channels * layer.out_channels:
                return idx
        return len(plan)

    def _run_blocks(self, plan, x, img, n: int, impl: str, dtypes, shift=None):
        """Run ``plan``'s blocks from activations ``x`` and skip image ``img`` (None before the first block);
        ``shift`` moves the constant input (see ``translate`` in :meth:`forward`)."""
        for block, convs, torgb_style in plan:
            if block.in_channels == 0:
                const = block.const if shift is None else _shift_periodic(block.const, shift)
                x = const.unsqueeze(0).expand(n, -1, -1, -1)
                x = x.contiguous(memory_format=torch.channels_last if impl == "fast" else torch.contiguous_format)
            if dtypes is not None and x.dtype != dtypes[block.resolution]:
                x = x.to(dtypes[block.resolution])
            for layer, style, layer_noise in convs:
                x = layer(x, style, layer_noise, impl=impl)
            if img is not None:
                img = block.upsample_image(img, impl)
            if torgb_style is not None:
                y = block.torgb(x, torgb_style, impl=impl)
                img = y if img is None else img + y
        return x, img

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, "
                f"img_channels={self.img_channels}, architecture={self.architecture}")


def _input_shift(translate) -> tuple[float, float] | None:
    """``translate`` checked: a finite pair, or None when it is (0, 0)."""
    try:
        tx, ty = (float(v) for v in translate)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"translate must be a pair (x, y) of image widths, got {translate!r}.") from None
    if not (math.isfinite(tx) and math.isfinite(ty)):
        raise InvalidArgumentError(f"translate must be finite, got {translate!r}.")
    return None if tx == 0 and ty == 0 else (tx, ty)


def _shift_periodic(x: torch.Tensor, shift: tuple[float, float]) -> torch.Tensor:
    """``x [C, H, W]`` moved by ``shift = (x, y)`` of its own width/height (content moves right/down for positive
    values), band-limited and periodic: ``ifft2(fft2(x) * exp(-2 pi i (k_x x + k_y y)))``, real part."""
    c, h, w = x.shape
    ky = torch.fft.fftfreq(h, device=x.device, dtype=torch.float32).view(h, 1) * h
    kx = torch.fft.fftfreq(w, device=x.device, dtype=torch.float32).view(1, w) * w
    phase = torch.exp(-2j * math.pi * (kx * shift[0] + ky * shift[1]))
    return torch.fft.ifft2(torch.fft.fft2(x.float()) * phase).real.to(x.dtype)


# ----------------------------------------------------------------------------------------------
# Generator


class StyleGAN2Generator(Generator):
    """StyleGAN2 (config-e/f, StyleGAN2-ADA) generator: ``mapping`` z -> W+, ``synthesis`` W+ -> image.

    ``config`` is exactly the official ``Generator`` constructor kwargs: ``z_dim, c_dim, w_dim,
    img_resolution, img_channels=3, mapping_kwargs={num_layers, embed_features, layer_features,
    lr_multiplier, w_avg_beta}, channel_base=32768, channel_max=512, num_fp16_res (ignored),
    conv_clamp=None, architecture='skip'|'orig', resample_filter=[1,3,3,1], use_noise=True``, flat or
    nested under ``synthesis_kwargs``; unknown keys that do not change the maths are ignored.
    stylekit adds ``channels={'4': 512, '8': 512, ...}`` to override the channel formula per resolution.
    ``self.config`` is the normalised, JSON-able form of it.
    """

    arch = "stylegan2"

    def __init__(self, config: dict):
        cfg = normalize_config(config)
        super().__init__(cfg)
        table = channel_table(cfg)
        self.synthesis = SynthesisNetwork(w_dim=cfg["w_dim"], img_resolution=cfg["img_resolution"],
                                          img_channels=cfg["img_channels"], channels=table,
                                          architecture=cfg["architecture"], resample_filter=cfg["resample_filter"],
                                          conv_clamp=cfg["conv_clamp"], use_noise=cfg["use_noise"])
        self.mapping = MappingNetwork(z_dim=cfg["z_dim"], c_dim=cfg["c_dim"], w_dim=cfg["w_dim"],
                                      num_ws=self.synthesis.num_ws, **cfg["mapping_kwargs"])
