"""StyleGAN3 (Alias-Free GAN) generator, configs -T and -R, in plain PyTorch.

A re-implementation of NVIDIA's ``training/networks_stylegan3.py`` (Karras et al. 2021) with the
same constructor arguments, the same parameter and buffer names (an official pickle's tensors load
with ``strict=True``) and the same numbers as its reference (non-CUDA) ops.

The synthesis network is a stack of ``num_layers + 1`` layers after a Fourier-feature input:

- ``input``: ``channels[0]`` sinusoids with fixed random frequencies and phases, rotated and
  translated by a learned affine map of ``ws[:, 0]`` (and by the optional user transform), sampled
  on a ``size[0]`` grid, then mixed by a learned ``[C, C]`` matrix.
- ``L{idx}_{size}_{channels}``: modulated convolution (style ``affine(ws[:, idx + 1])``), then the
  filtered leaky ReLU (:mod:`stylekit.networks.filtered_lrelu`) that changes the sampling rate
  alias-free. The last layer is the ToRGB layer (1x1 convolution, no demodulation, no activation).

The cutoff frequency rises geometrically from ``first_cutoff`` to ``img_resolution / 2`` over the
first ``num_layers - num_critical`` layers; each layer's sampling rate, filter transition band,
canvas size (the image plus a ``margin_size`` border) and channel count follow from it.

The fast path runs in the synthesis network's ``precision`` (see :meth:`SynthesisNetwork.layer_dtypes`);
in bfloat16 the filtered nonlinearity upsamples polyphase and runs 2-D downsampling filters as short
separable sums (see :mod:`stylekit.networks.filtered_lrelu`). StyleGAN3 has no noise inputs. ``rotate`` / ``translate`` reproduce the official
``gen_images.py`` user transform without changing the module's ``input.transform`` buffer.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InvalidArgumentError
from .base import Generator, StyleLayer, check_styles, check_ws
from .filtered_lrelu import design_lowpass_filter, filtered_lrelu
from .mapping import MappingNetwork
from .precision import dtype_of
from .modconv import demodulation_coefficients, modulated_conv2d_grouped, prenormalize
from .ops import FullyConnectedLayer

_IMPLS = ("fast", "reference")


# ------------------------------------------------------------------------------------------------
# User transform
# ------------------------------------------------------------------------------------------------

def make_transform(translate: Sequence[float] = (0.0, 0.0), angle: float = 0.0) -> np.ndarray:
    """The official ``gen_images.py`` user transform: rotation by ``angle`` degrees and translation
    by ``translate = (x, y)`` in units of the image width (the output canvas spans one unit).

    Returns a float64 ``[3, 3]`` homogeneous matrix. The synthesis network expects its *inverse*.
    """
    a = angle / 360.0 * 2 * np.pi
    s, c = np.sin(a), np.cos(a)
    return np.array([[c, s, translate[0]],
                     [-s, c, translate[1]],
                     [0.0, 0.0, 1.0]], dtype=np.float64)


def _to_float(value, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{what} must be a number, got {value!r}.") from None
    if not math.isfinite(v):
        raise InvalidArgumentError(f"{what} must be a finite number, got {value!r}.")
    return v


# ------------------------------------------------------------------------------------------------
# Layers
# ------------------------------------------------------------------------------------------------

class SynthesisInput(torch.nn.Module):
    """Fourier-feature input: ``w [N, w_dim]`` -> ``[N, channels, size, size]``.

    Buffers ``freqs [C, 2]`` (cycles per unit, inside a disc of radius ``bandwidth``), ``phases [C]``
    (cycles) and ``transform [3, 3]`` (stored user transform, the inverse of the image transform);
    parameters ``weight [C, C]`` and ``affine`` (``w_dim -> 4``: rotation cos/sin and translation x/y).
    """

    def __init__(self, *, w_dim: int, channels: int, size: int | Sequence[int], sampling_rate: float,
                 bandwidth: float):
        super().__init__()
        self.w_dim = w_dim
        self.channels = channels
        self.size = [int(s) for s in np.broadcast_to(np.asarray(size), [2])]  # [width, height]
        self.sampling_rate = float(sampling_rate)
        self.bandwidth = float(bandwidth)

        # Frequencies drawn from a disc (radius `bandwidth`), phases uniform in [-0.5, 0.5).
        freqs = torch.randn([channels, 2])
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs /= radii * radii.square().exp().pow(0.25)
        freqs *= bandwidth
        phases = torch.rand([channels]) - 0.5

        self.weight = torch.nn.Parameter(torch.randn([channels, channels]))
        self.affine = FullyConnectedLayer(w_dim, 4, bias_init=[1, 0, 0, 0])
        with torch.no_grad():
            self.affine.weight.zero_()  # starts as the identity transform
        self.register_buffer("transform", torch.eye(3, 3))
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", phases)

    def forward(self, styles: torch.Tensor, transform: torch.Tensor | None = None) -> torch.Tensor:
        """Fourier features from the affine output.

        Args:
            styles: ``[N, 4]`` = ``affine(w)``: (cos, sin, tx, ty) up to scale.
            transform: ``[3, 3]`` user inverse transform; None = the stored ``transform`` buffer.

        Returns: ``[N, channels, size_h, size_w]`` in channels-last memory layout.
        """
        user = self.transform if transform is None else transform
        n = styles.shape[0]
        t = styles / styles[:, :2].norm(dim=1, keepdim=True)  # (cos, sin, tx, ty), rotation normalised
        zero, one = torch.zeros_like(t[:, 0]), torch.ones_like(t[:, 0])
        # Inverse rotation and inverse translation with respect to the resulting image.
        m_r = torch.stack([torch.stack([t[:, 0], -t[:, 1], zero], 1),
                           torch.stack([t[:, 1], t[:, 0], zero], 1),
                           torch.stack([zero, zero, one], 1)], 1)
        m_t = torch.stack([torch.stack([one, zero, -t[:, 2]], 1),
                           torch.stack([zero, one, -t[:, 3]], 1),
                           torch.stack([zero, zero, one], 1)], 1)
        transforms = m_r @ m_t @ user.to(t.dtype).unsqueeze(0)  # [N, 3, 3]

        # Transform the frequencies; damp those the user transform pushed out of band.
        freqs = self.freqs.unsqueeze(0)  # [1, C, 2]
        phases = self.phases.unsqueeze(0) + (freqs @ transforms[:, :2, 2:]).squeeze(2)  # [N, C]
        freqs = freqs @ transforms[:, :2, :2]  # [N, C, 2]
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth)
                      / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)  # [N, C]

        # Sample positions: pixel centres of the canvas, in units where the sampling rate is 1/pixel.
        w, h = self.size
        theta = torch.zeros(1, 2, 3, device=styles.device, dtype=styles.dtype)
        theta[0, 0, 0] = 0.5 * w / self.sampling_rate
        theta[0, 1, 1] = 0.5 * h / self.sampling_rate
        grid = F.affine_grid(theta, [1, 1, h, w], align_corners=False)  # [1, H, W, 2] (x, y)

        x = (grid.reshape(1, h * w, 2) @ freqs.transpose(1, 2)).reshape(n, h, w, self.channels)
        x = x + phases.reshape(n, 1, 1, -1)
        x = torch.sin(x * (2 * np.pi)) * amplitudes.reshape(n, 1, 1, -1)
        x = x @ (self.weight / np.sqrt(self.channels)).t()  # [N, H, W, C]
        return x.permute(0, 3, 1, 2)  # [N, C, H, W], channels-last in memory

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, channels={self.channels}, size={self.size}, "
                f"sampling_rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}")


class SynthesisLayer(torch.nn.Module):
    """One StyleGAN3 layer: modulated convolution + filtered leaky ReLU (or the final ToRGB).

    Input ``[N, in_channels, in_size, in_size]``, output ``[N, out_channels, out_size, out_size]``.
    Parameters ``weight [out, in, k, k]``, ``bias [out]``, ``affine`` (``w_dim -> in_channels``);
    buffers ``magnitude_ema []`` (running mean square of the input), ``up_filter`` / ``down_filter``
    (``[taps]``, radial ``[taps, taps]``, or absent for identity).
    """

    def __init__(self, *, w_dim: int, is_torgb: bool, is_critically_sampled: bool,
                 in_channels: int, out_channels: int, in_size: int, out_size: int,
                 in_sampling_rate: int, out_sampling_rate: int, in_cutoff: float, out_cutoff: float,
                 in_half_width: float, out_half_width: float, conv_kernel: int = 3, filter_size: int = 6,
                 lrelu_upsampling: int = 2, use_radial_filters: bool = False, conv_clamp: float | None = 256,
                 magnitude_ema_beta: float = 0.999):
        super().__init__()
        self.w_dim = w_dim
        self.is_torgb = is_torgb
        self.is_critically_sampled = is_critically_sampled
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.in_size = [int(s) for s in np.broadcast_to(np.asarray(in_size), [2])]  # [width, height]
        self.out_size = [int(s) for s in np.broadcast_to(np.asarray(out_size), [2])]
        self.in_sampling_rate = in_sampling_rate
        self.out_sampling_rate = out_sampling_rate
        self.tmp_sampling_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
        self.in_cutoff = float(in_cutoff)
        self.out_cutoff = float(out_cutoff)
        self.in_half_width = float(in_half_width)
        self.out_half_width = float(out_half_width)
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, self.conv_kernel, self.conv_kernel]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))

        # Upsampling filter: passes the input band (in_cutoff), at the temporary sampling rate.
        self.up_factor = int(np.rint(self.tmp_sampling_rate / in_sampling_rate))
        assert in_sampling_rate * self.up_factor == self.tmp_sampling_rate
        self.up_taps = filter_size * self.up_factor if self.up_factor > 1 and not is_torgb else 1
        self.register_buffer("up_filter", design_lowpass_filter(
            self.up_taps, in_cutoff, in_half_width * 2, self.tmp_sampling_rate))

        # Downsampling filter: limits the band to out_cutoff before decimation.
        self.down_factor = int(np.rint(self.tmp_sampling_rate / out_sampling_rate))
        assert out_sampling_rate * self.down_factor == self.tmp_sampling_rate
        self.down_taps = filter_size * self.down_factor if self.down_factor > 1 and not is_torgb else 1
        self.down_radial = bool(use_radial_filters and not is_critically_sampled)
        self.register_buffer("down_filter", design_lowpass_filter(
            self.down_taps, out_cutoff, out_half_width * 2, self.tmp_sampling_rate, radial=self.down_radial))

        # Padding so that output samples sit at the symmetric positions (paper, Appendix C.3).
        in_sz, out_sz = np.asarray(self.in_size), np.asarray(self.out_size)
        pad_total = (out_sz - 1) * self.down_factor + 1  # size wanted before downsampling
        pad_total -= (in_sz + self.conv_kernel - 1) * self.up_factor  # size after upsampling
        pad_total += self.up_taps + self.down_taps - 2  # shrinkage from the two filters
        pad_lo = (pad_total + self.up_factor) // 2
        pad_hi = pad_total - pad_lo
        self.padding = [int(pad_lo[0]), int(pad_hi[0]), int(pad_lo[1]), int(pad_hi[1])]

    def forward(self, x: torch.Tensor, styles: torch.Tensor, *, impl: str = "fast",
                update_emas: bool = False) -> torch.Tensor:
        """``x [N, in_channels, in_h, in_w]``, ``styles [N, in_channels]`` (= ``affine(w)``) ->
        ``[N, out_channels, out_h, out_w]``."""
        if update_emas:
            magnitude = x.detach().to(torch.float32).square().mean()
            self.magnitude_ema.copy_(magnitude.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        input_gain = self.magnitude_ema.rsqrt()

        if self.is_torgb:
            styles = styles * (1 / np.sqrt(self.in_channels * self.conv_kernel ** 2))
        demodulate = not self.is_torgb
        gain = 1.0 if self.is_torgb else float(np.sqrt(2))
        slope = 1.0 if self.is_torgb else 0.2
        flrelu = dict(up=self.up_factor, down=self.down_factor, padding=self.padding, gain=gain,
                      slope=slope, clamp=self.conv_clamp, impl=impl)

        if impl == "reference":
            x = modulated_conv2d_grouped(x, self.weight, styles, demodulate=demodulate,
                                          padding=self.conv_kernel - 1, input_gain=input_gain)
            return filtered_lrelu(x, self.up_filter, self.down_filter, self.bias.to(x.dtype), **flrelu)

        # Fast path: fold style, demodulation and input gain into one kernel per sample and let the
        # convolution add the bias, so that no extra pass over the activations is needed.
        weight, styles = prenormalize(self.weight, styles, demodulate)
        n = styles.shape[0]
        kernels = weight.unsqueeze(0) * (styles * input_gain).reshape(n, 1, -1, 1, 1)  # [N, O, I, k, k]
        if demodulate:
            kernels = kernels * demodulation_coefficients(weight, styles).reshape(n, -1, 1, 1, 1)
        bias = self.bias.to(x.dtype)
        outputs = [F.conv2d(x[i:i + 1], kernels[i].to(x.dtype), bias, padding=self.conv_kernel - 1) for i in range(n)]
        x = outputs[0] if n == 1 else torch.cat(outputs)
        return filtered_lrelu(x, self.up_filter, self.down_filter, None, **flrelu)

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, is_torgb={self.is_torgb}, is_critically_sampled={self.is_critically_sampled},\n"
                f"in_sampling_rate={self.in_sampling_rate:g}, out_sampling_rate={self.out_sampling_rate:g},\n"
                f"in_cutoff={self.in_cutoff:g}, out_cutoff={self.out_cutoff:g},\n"
                f"in_half_width={self.in_half_width:g}, out_half_width={self.out_half_width:g},\n"
                f"in_size={self.in_size}, out_size={self.out_size},\n"
                f"in_channels={self.in_channels}, out_channels={self.out_channels}")


# ------------------------------------------------------------------------------------------------
# Synthesis network
# ------------------------------------------------------------------------------------------------

def layer_schedule(*, img_resolution: int, img_channels: int, channel_base: int = 32768, channel_max: int = 512,
                   num_layers: int = 14, num_critical: int = 2, first_cutoff: float = 2,
                   first_stopband: float = 2 ** 2.1, last_stopband_rel: float = 2 ** 0.3,
                   margin_size: int = 10) -> dict[str, np.ndarray]:
    """Per-layer frequency plan of the official network, index 0 = the input, ``num_layers`` = ToRGB.

    Returns float64 arrays of length ``num_layers + 1``: ``cutoffs`` (f_c), ``stopbands`` (f_t),
    ``sampling_rates`` (s), ``half_widths`` (f_h), ``sizes`` (canvas size) and ``channels``.
    """
    last_cutoff = img_resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
    sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
    sizes = sampling_rates + margin_size * 2
    sizes[-2:] = img_resolution
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = img_channels
    return dict(cutoffs=cutoffs, stopbands=stopbands, sampling_rates=sampling_rates,
                half_widths=half_widths, sizes=sizes, channels=channels)


class SynthesisNetwork(torch.nn.Module):
    """W+ ``[N, num_ws, w_dim]`` -> image ``[N, img_channels, R, R]`` (float32, about [-1, 1]).

    ``num_ws = num_layers + 2``: ``ws[:, 0]`` drives the input, ``ws[:, i + 1]`` layer ``i``.
    """

    def __init__(self, *, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, num_layers: int = 14, num_critical: int = 2, first_cutoff: float = 2,
                 first_stopband: float = 2 ** 2.1, last_stopband_rel: float = 2 ** 0.3, margin_size: int = 10,
                 output_scale: float = 0.25, **layer_kwargs):
        super().__init__()
        self.w_dim = w_dim
        self.num_ws = num_layers + 2
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_layers = num_layers
        self.num_critical = num_critical
        self.margin_size = margin_size
        self.output_scale = output_scale

        plan = layer_schedule(img_resolution=img_resolution, img_channels=img_channels, channel_base=channel_base,
                              channel_max=channel_max, num_layers=num_layers, num_critical=num_critical,
                              first_cutoff=first_cutoff, first_stopband=first_stopband,
                              last_stopband_rel=last_stopband_rel, margin_size=margin_size)
        cutoffs, rates, half_widths = plan["cutoffs"], plan["sampling_rates"], plan["half_widths"]
        sizes, channels = plan["sizes"], plan["channels"]

        self.input = SynthesisInput(w_dim=w_dim, channels=int(channels[0]), size=int(sizes[0]),
                                    sampling_rate=rates[0], bandwidth=cutoffs[0])
        self.layer_names: list[str] = []
        for idx in range(num_layers + 1):
            prev = max(idx - 1, 0)
            layer = SynthesisLayer(
                w_dim=w_dim, is_torgb=(idx == num_layers), is_critically_sampled=(idx >= num_layers - num_critical),
                in_channels=int(channels[prev]), out_channels=int(channels[idx]),
                in_size=int(sizes[prev]), out_size=int(sizes[idx]),
                in_sampling_rate=int(rates[prev]), out_sampling_rate=int(rates[idx]),
                in_cutoff=cutoffs[prev], out_cutoff=cutoffs[idx],
                in_half_width=half_widths[prev], out_half_width=half_widths[idx], **layer_kwargs)
            name = f"L{idx}_{layer.out_size[0]}_{layer.out_channels}"
            setattr(self, name, layer)
            self.layer_names.append(name)
        self.precision = "fp32"  # compute precision of the fast path (see layer_dtypes)

    # --- StyleSpace ----------------------------------------------------------------------------
    @property
    def style_layers(self) -> list[StyleLayer]:
        """``input`` (4 styles: rotation cos/sin, translation x/y), then every layer (its input channels)."""
        layers = [StyleLayer("input", 0, 4, "input")]
        for idx, name in enumerate(self.layer_names):
            layer = getattr(self, name)
            layers.append(StyleLayer(name, idx + 1, layer.in_channels, "torgb" if layer.is_torgb else "conv"))
        return layers

    def ws_to_styles(self, ws: torch.Tensor) -> list[torch.Tensor]:
        """W+ ``[N, num_ws, w_dim]`` -> the affine outputs, one ``[N, channels]`` per style layer."""
        ws = check_ws(ws, self.num_ws, self.w_dim)
        styles = [self.input.affine(ws[:, 0])]
        for idx, name in enumerate(self.layer_names):
            styles.append(getattr(self, name).affine(ws[:, idx + 1]))
        return styles

    def noise_shapes(self) -> list[tuple[str, tuple[int, int]]]:
        """The fast path runs in the synthesis network's ``precision`` (see :meth:`SynthesisNetwork.layer_dtypes`);
in bfloat16 the filtered nonlinearity upsamples polyphase and runs 2-D downsampling filters as short
separable sums (see :mod:`stylekit.networks.filtered_lrelu`). StyleGAN3 has no noise inputs."""
        return []

    # --- forward -------------------------------------------------------------------------------
    def forward(self, ws: torch.Tensor | None = None, noise_mode: str = "const", noise=None,
                styles: Sequence[torch.Tensor] | None = None, rotate: float = 0.0,
                translate: Sequence[float] = (0.0, 0.0), impl: str = "fast", precision: str | None = None,
                update_emas: bool = False) -> torch.Tensor:
        """Synthesize images.

        Args:
            ws: W+ latents ``[N, num_ws, w_dim]``; ignored (may be None) when ``styles`` is given.
            noise_mode: accepted for interface compatibility (``'const'``, ``'random'``, ``'none'``);
                StyleGAN3 has no noise, so it changes nothing.
            noise: must be None or empty (StyleGAN3 has no noise inputs).
            styles: StyleSpace S (see :meth:`ws_to_styles`): one ``[N, channels]`` tensor per style layer.
            rotate: rotation of the image content in degrees (the official ``gen_images.py --rotate``).
            translate: ``(x, y)`` shift of the image content in units of the image width (the
                official ``gen_images.py --translate``).
            impl: ``'fast'`` (default: per-sample folded kernels, strided/separable filtering in
                strips, see :mod:`stylekit.networks.filtered_lrelu`) or ``'reference'`` (the official
                reference ops written out literally: grouped modulated convolution, zero-insertion
                upsampling; slow). Same numbers up to float rounding.
            precision: ``'fp32'``, ``'bf16'`` or ``'fp16'`` for the fast path's activations,
                convolutions and filtered nonlinearities (``'fp16'``: only the layers NVIDIA runs in
                float16); None = ``self.precision``. ``impl='reference'`` is always float32.
            update_emas: training only: update the layers' ``magnitude_ema`` from this batch.

        Returns: ``[N, img_channels, img_resolution, img_resolution]`` float32, about [-1, 1].
        """
        if noise_mode not in ("const", "random", "none"):
            raise InvalidArgumentError(f"noise_mode must be 'const', 'random' or 'none', not {noise_mode!r}.")
        if noise is not None and len(noise) > 0:
            raise InvalidArgumentError("StyleGAN3 has no noise inputs: pass noise=None (G.noise_shapes() is empty).")
        if impl not in _IMPLS:
            raise InvalidArgumentError(f"impl must be 'fast' or 'reference', not {impl!r}.")
        if styles is None:
            if ws is None:
                raise InvalidArgumentError("pass ws [N, num_ws, w_dim] or styles (a list from ws_to_styles).")
            styles = self.ws_to_styles(ws)
        else:
            styles = check_styles(styles, self.style_layers)
        transform = self._user_transform(rotate, translate)

        x = self.input(styles[0].to(torch.float32), transform)
        if impl == "reference":
            x = x.contiguous()
        dtypes = self.layer_dtypes(precision or self.precision) if impl == "fast" else None
        for idx, (name, s) in enumerate(zip(self.layer_names, styles[1:])):
            if dtypes is not None and x.dtype != dtypes[idx]:
                x = x.to(dtypes[idx])
            x = getattr(self, name)(x, s.to(torch.float32), impl=impl, update_emas=update_emas)
        if self.output_scale != 1:
            x = x * self.output_scale
        return x.to(torch.float32).contiguous()

    def layer_dtypes(self, precision: str) -> list[torch.dtype]:
        """The fast path's dtype per layer: one dtype everywhere for ``'fp32'`` / ``'bf16'``; for
        ``'fp16'`` float16 where NVIDIA uses it (output sampling rate * 2**4 > img_resolution)."""
        dtype = dtype_of(precision)
        if dtype != torch.float16:
            return [dtype] * len(self.layer_names)
        return [torch.float16 if getattr(self, name).out_sampling_rate * 16 > self.img_resolution else torch.float32
                for name in self.layer_names]

    def _user_transform(self, rotate, translate) -> torch.Tensor | None:
        """The input's inverse transform for this call: the stored one composed with the inverse of
        ``make_transform(translate, rotate)``; None (use the buffer as is) when both are zero."""
        angle = _to_float(rotate, "rotate")
        try:
            tx, ty = translate
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"translate must be a pair (x, y), got {translate!r}.") from None
        tx, ty = _to_float(tx, "translate x"), _to_float(ty, "translate y")
        if angle == 0 and tx == 0 and ty == 0:
            return None
        stored = self.input.transform.detach().cpu().to(torch.float64).numpy()
        inverse = stored @ np.linalg.inv(make_transform((tx, ty), angle))
        return torch.as_tensor(inverse, dtype=torch.float32, device=self.input.transform.device)

    def extra_repr(self) -> str:
        return (f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, "
                f"img_channels={self.img_channels}, num_layers={self.num_layers}, num_critical={self.num_critical}, "
                f"margin_size={self.margin_size}")


# ------------------------------------------------------------------------------------------------
# Generator
# ------------------------------------------------------------------------------------------------

_SYNTHESIS_KEYS = {
    "channel_base": 32768, "channel_max": 512, "num_layers": 14, "num_critical": 2, "first_cutoff": 2,
    "first_stopband": 2 ** 2.1, "last_stopband_rel": 2 ** 0.3, "margin_size": 10, "output_scale": 0.25,
}
_LAYER_KEYS = {
    "conv_kernel": 3, "filter_size": 6, "lrelu_upsampling": 2, "use_radial_filters": False, "conv_clamp": 256,
    "magnitude_ema_beta": 0.999,
}
_IGNORED_KEYS = {"num_fp16_res": 4}  # stored for round trips; stylekit runs StyleGAN3 in float32
_MAPPING_KEYS = ("num_layers", "lr_multiplier", "w_avg_beta")


def _jsonable(value):
    """numpy scalars/arrays and tuples -> plain Python (so that ``config`` survives ``json.dumps``)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


class StyleGAN3Generator(Generator):
    """StyleGAN3 (-T or -R) generator built from the official ``Generator`` constructor kwargs.

    ``config`` keys: ``z_dim``, ``c_dim``, ``w_dim``, ``img_resolution``, ``img_channels``,
    ``mapping_kwargs`` (``num_layers`` default 2, ``lr_multiplier``, ``w_avg_beta``), and the
    synthesis kwargs ``channel_base``, ``channel_max``, ``num_layers``, ``num_critical``,
    ``first_cutoff``, ``first_stopband``, ``last_stopband_rel``, ``margin_size``, ``output_scale``,
    ``conv_kernel`` (1 for -R), ``filter_size``, ``lrelu_upsampling``, ``use_radial_filters``
    (True for -R), ``conv_clamp``, ``magnitude_ema_beta``; ``num_fp16_res`` is kept but unused.
    Other keys are ignored. A fresh generator is randomly initialised like the official one and
    designs its own filters.
    """

    arch = "stylegan3"

    def __init__(self, config: dict):
        required = ("z_dim", "w_dim", "img_resolution")
        missing = [k for k in required if k not in config]
        if missing:
            raise InvalidArgumentError(f"StyleGAN3 config is missing {missing}; give the official Generator kwargs.")
        known = set(required) | {"c_dim", "img_channels", "mapping_kwargs"} | set(_SYNTHESIS_KEYS) \
            | set(_LAYER_KEYS) | set(_IGNORED_KEYS)
        clean = _jsonable({k: v for k, v in config.items() if k in known})
        clean.setdefault("c_dim", 0)
        clean.setdefault("img_channels", 3)
        clean["mapping_kwargs"] = {k: v for k, v in dict(clean.get("mapping_kwargs") or {}).items()
                                   if k in _MAPPING_KEYS}
        super().__init__(clean)

        synthesis_kwargs = {k: clean.get(k, d) for k, d in {**_SYNTHESIS_KEYS, **_LAYER_KEYS}.items()}
        self.synthesis = SynthesisNetwork(w_dim=int(clean["w_dim"]), img_resolution=int(clean["img_resolution"]),
                                          img_channels=int(clean["img_channels"]), **synthesis_kwargs)
        mk = clean["mapping_kwargs"]
        w_dim = int(clean["w_dim"])
        self.mapping = MappingNetwork(z_dim=int(clean["z_dim"]), c_dim=int(clean["c_dim"]), w_dim=w_dim,
                                      num_ws=self.synthesis.num_ws, num_layers=int(mk.get("num_layers", 2)),
                                      embed_features=w_dim, layer_features=w_dim,
                                      lr_multiplier=float(mk.get("lr_multiplier", 0.01)),
                                      w_avg_beta=float(mk.get("w_avg_beta", 0.998)))
