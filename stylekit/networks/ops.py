"""Low-level operations shared by the generators, written in plain PyTorch.

These are the *reference* forms (straightforward, easy to check against the papers); faster
variants used on the hot path live next to the layers that need them.

Conventions: activations are float32 tensors ``[N, C, H, W]``; FIR filters are float32 tensors
``[fh, fw]`` (non-separable) or ``[fw]`` (separable, applied along both axes).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

_ACTIVATION_GAIN = {"linear": 1.0, "lrelu": math.sqrt(2.0)}


def setup_filter(taps: Sequence[float] | torch.Tensor, *, normalize: bool = True,
                 separable: bool = False, gain: float = 1.0, device=None) -> torch.Tensor:
    """Make a FIR filter from 1-D taps (outer product unless ``separable``).

    Returns ``[k]`` when separable else ``[k, k]``, normalised to sum to ``gain`` (per dimension
    power: the 2-D filter sums to ``gain``).
    """
    f = torch.as_tensor(taps, dtype=torch.float32, device=device)
    if f.ndim == 0:
        f = f[None]
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if normalize:
        f = f / f.sum()
    if f.ndim == 2:
        f = f * gain
    else:
        f = f * (gain ** 0.5)
    return f


def parse_padding(padding) -> tuple[int, int, int, int]:
    """``p`` | ``(px, py)`` | ``(px0, px1, py0, py1)`` -> ``(px0, px1, py0, py1)`` (ints; negative values crop)."""
    if isinstance(padding, int) or (hasattr(padding, "ndim") and getattr(padding, "ndim") == 0):
        p = int(padding)
        return p, p, p, p
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        return padding[0], padding[0], padding[1], padding[1]
    if len(padding) != 4:
        raise ValueError(f"padding must be an int, [x, y] or [x0, x1, y0, y1], not {padding}")
    px0, px1, py0, py1 = padding
    return px0, px1, py0, py1


def upfirdn2d(x: torch.Tensor, f: torch.Tensor | None, *, up: int | Sequence[int] = 1,
              down: int | Sequence[int] = 1, padding=0, flip_filter: bool = False,
              gain: float = 1.0) -> torch.Tensor:
    """Upsample (zero insertion), pad, FIR-filter and downsample a batch of images.

    Args:
        x: ``[N, C, H, W]``.
        f: ``[fh, fw]`` or separable ``[fw]`` filter, or None for identity.
        up, down: integer factors, one or ``(x, y)``.
        padding: ``p`` or ``(px, py)`` or ``(px0, px1, py0, py1)``; negative values crop.
        flip_filter: False means true convolution (the filter is flipped), as in the NVIDIA op.
        gain: overall scale of the output.

    Returns: ``[N, C, H', W']`` with ``H' = (H * up_y + py0 + py1 - fh) // down_y + 1``.
    """
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    upx, upy = (up, up) if isinstance(up, int) else up
    downx, downy = (down, down) if isinstance(down, int) else down
    px0, px1, py0, py1 = parse_padding(padding)
    n, c, h, w = x.shape

    if upx > 1 or upy > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
        x = x.reshape(n, c, h * upy, w * upx)

    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]

    f = f.to(x.dtype) * (gain ** (f.ndim / 2))
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        x = F.conv2d(x, f[None, None].repeat(c, 1, 1, 1), groups=c)
    else:
        x = F.conv2d(x, f[None, None, None, :].repeat(c, 1, 1, 1), groups=c)
        x = F.conv2d(x, f[None, None, :, None].repeat(c, 1, 1, 1), groups=c)

    return x[:, :, ::downy, ::downx]


def bias_act(x: torch.Tensor, b: torch.Tensor | None = None, *, dim: int = 1, act: str = "linear",
             alpha: float = 0.2, gain: float | None = None, clamp: float | None = None) -> torch.Tensor:
    """Add a bias along ``dim``, apply ``linear`` or ``lrelu``, scale by ``gain`` and clamp.

    ``gain`` defaults to the activation's standard gain (1 for linear, sqrt(2) for lrelu), as in
    the NVIDIA ``bias_act`` op. ``clamp`` (if not None) clips the output to ``[-clamp, clamp]``.
    """
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + b.reshape(shape)
    if act == "lrelu":
        x = F.leaky_relu(x, alpha)
    elif act != "linear":
        raise ValueError(f"unknown activation {act!r}")
    if gain is None:
        gain = _ACTIVATION_GAIN[act]
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale each row of ``x`` to unit mean square along ``dim``."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


class FullyConnectedLayer(torch.nn.Module):
    """Equalised-learning-rate linear layer (NVIDIA naming: ``weight [out, in]``, ``bias [out]``)."""

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True,
                 activation: str = "linear", lr_multiplier: float = 1.0, bias_init: float | Sequence[float] = 0.0):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = torch.nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        if bias:
            init = torch.broadcast_to(torch.as_tensor(bias_init, dtype=torch.float32), [out_features])
            self.bias = torch.nn.Parameter(init.clone() / lr_multiplier)
        else:
            self.bias = None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, in] -> [N, out]``."""
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        x = x.matmul(w.t())
        return bias_act(x, b, act=self.activation)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"


# ----------------------------------------------------------------------------------------------
# Fast variants (CPU hot path). Same results as the reference forms above up to float rounding.


def separable_taps(f: torch.Tensor) -> list[float] | None:
    """1-D taps ``u`` with ``outer(u, u) == f`` for a 2-D filter ``f [k, k]`` (or ``f`` itself if 1-D).

    Returns None when ``f`` is not such a symmetric rank-1 filter (callers then use
    :func:`upfirdn2d`). ``setup_filter([1, 3, 3, 1])`` gives ``[1/8, 3/8, 3/8, 1/8]``.
    """
    if f.ndim == 1:
        return [float(t) for t in f.tolist()]
    if f.ndim != 2 or f.shape[0] != f.shape[1]:
        return None
    total = float(f.sum())
    if total <= 0:
        return None
    u = f.sum(dim=1) / math.sqrt(total)
    if not torch.allclose(torch.outer(u, u), f, rtol=1e-5, atol=1e-7):
        return None
    return [float(t) for t in u.tolist()]


def _fir1d_into(out: torch.Tensor, x: torch.Tensor, g: Sequence[float], dim: int, offset: int) -> torch.Tensor:
    """``out[t] = sum_j g[j] * x[t + offset + j]`` along ``dim``, with ``x`` zero outside its range.

    Writes into ``out`` (any strided view) with shifted slices; no padded copy of ``x`` is made.
    """
    size, length = x.shape[dim], out.shape[dim]
    terms = []
    for j, gj in enumerate(g):
        lo, hi = max(0, -(offset + j)), min(length, size - (offset + j))
        if gj != 0 and hi > lo:
            terms.append((gj, lo, hi, offset + j))
    terms.sort(key=lambda t: t[1] - t[2])  # widest first
    if terms and terms[0][1] == 0 and terms[0][2] == length:
        gj, lo, hi, shift = terms.pop(0)
        src = x.narrow(dim, shift, length)
        if torch.is_grad_enabled():
            out.copy_(src * gj)
        else:
            torch.mul(src, gj, out=out)
    else:
        out.zero_()
    for gj, lo, hi, shift in terms:
        out.narrow(dim, lo, hi - lo).add_(x.narrow(dim, lo + shift, hi - lo), alpha=gj)
    return out


def _upsample1d(x: torch.Tensor, g: Sequence[float], dim: int, p0: int, p1: int) -> torch.Tensor:
    """Zero-insertion x2 upsampling + correlation with ``g`` along ``dim`` (polyphase, no zeros stored)."""
    size = x.shape[dim]
    k = len(g)
    total = 2 * size + p0 + p1 - k + 1
    half = (total + 1) // 2
    d = dim % x.ndim
    shape = list(x.shape)
    shape[d] = 2 * half
    out = x.new_empty(shape)
    phases = out.unflatten(d, (half, 2))
    for r in range(2):
        # output t = 2m + r takes g[i] * upsampled[t + i - p0]; nonzero when (r + i - p0) is even.
        first = (p0 - r) % 2
        taps = list(g[first::2])
        offset = (r + first - p0) // 2
        view = phases.select(d + 1, r)  # [..., half, ...] along axis d
        length = (total - r + 1) // 2
        if length < half:
            view.narrow(d, length, half - length).zero_()
            view = view.narrow(d, 0, length)
        _fir1d_into(view, x, taps, d, offset)
    return out.narrow(dim, 0, total)


def upsample2d_separable(x: torch.Tensor, taps: Sequence[float]) -> torch.Tensor:
    """Official ``upsample2d(x, outer(taps, taps))`` (x2, gain 4): ``[N, C, H, W] -> [N, C, 2H, 2W]``.

    Polyphase: each output phase is a short FIR of the input, so no zero-inserted image is formed.
    """
    k = len(taps)
    g = [t * 2.0 for t in reversed(list(taps))]  # gain 4 split over the two axes
    p0, p1 = (k + 1) // 2, (k - 2) // 2
    x = _upsample1d(x, g, -1, p0, p1)
    return _upsample1d(x, g, -2, p0, p1)


def add_plane_(x: torch.Tensor, plane: torch.Tensor) -> torch.Tensor:
    """``x [N, C, H, W] + plane [N or 1, 1, H, W]`` (the plane added to every channel); in place
    unless autograd is recording.

    For a channels-last bfloat16/float16 ``x`` on CPU the add is a rank-1 matrix update per sample
    (``[H*W, C] += plane (x) ones``), which runs several times faster there than PyTorch's
    broadcasting add in those dtypes; the result is the same rounded sum.
    """
    if torch.is_grad_enabled() and (x.requires_grad or plane.requires_grad):
        return x + plane
    plane = plane.to(x.dtype)
    if (x.device.type == "cpu" and x.dtype in (torch.bfloat16, torch.float16) and x.ndim == 4
            and x.is_contiguous(memory_format=torch.channels_last)):
        n, c, h, w = x.shape
        rows = x.permute(0, 2, 3, 1).reshape(n, h * w, c)  # a view of x's memory
        ones = x.new_ones([1, c])
        for i in range(n):
            rows[i].addmm_(plane[i if plane.shape[0] > 1 else 0].reshape(h * w, 1), ones)
        return x
    return x.add_(plane)


def lrelu_clamp_(x: torch.Tensor, alpha: float = 0.2, clamp: float | None = None) -> torch.Tensor:
    """``clamp(leaky_relu(x, alpha), -clamp, clamp)`` of ``x [N, C, H, W]``: in place (or into a new
    tensor, see below) unless autograd is recording; use the returned tensor.

    For a channels-last bfloat16 ``x`` on CPU the leaky ReLU is oneDNN's, fused as the post-op of
    an identity 1x1 depthwise convolution (a new tensor): the same values bit for bit, 2-2.6x
    faster than PyTorch's bfloat16 ``leaky_relu_`` (measured at 32x1024x1024 on one core of an AMX
    Xeon: 9.8 against 25.3 ms; 5.4 against 9.5 on two).
    """
    if torch.is_grad_enabled():
        x = F.leaky_relu(x, alpha)
        return x if clamp is None else x.clamp(-clamp, clamp)
    fused = None
    if _onednn_bf16_activation(x):
        fused = fused_depthwise_conv_lrelu(x, x.new_ones([x.shape[1], 1, 1, 1]), [0, 0], alpha)
    x = F.leaky_relu_(x, alpha) if fused is None else fused
    return x if clamp is None else x.clamp_(-clamp, clamp)


def _onednn_bf16_activation(x: torch.Tensor) -> bool:
    """Whether :func:`lrelu_clamp_` can run ``x`` through oneDNN's fused activation (CPU, bfloat16,
    4-D channels-last, a oneDNN build, not inside ``torch.compile``)."""
    return (x.device.type == "cpu" and x.dtype == torch.bfloat16 and x.ndim == 4
            and x.is_contiguous(memory_format=torch.channels_last) and torch.backends.mkldnn.is_available()
            and not torch.compiler.is_compiling())


#: Whether oneDNN's convolution with a fused leaky ReLU (``torch.ops.mkldnn._convolution_pointwise``) may be
#: tried; switched off for good the first time this PyTorch build turns out not to have it.
FUSED_CONV_LRELU = True


def fused_depthwise_conv_lrelu(x: torch.Tensor, weight: torch.Tensor, padding: Sequence[int],
                               slope: float) -> torch.Tensor | None:
    """``leaky_relu(conv2d(x, weight, padding=padding, groups=C), slope)`` as one oneDNN call (a new tensor), for
    ``x [N, C, H, W]`` and ``weight [C, 1, kh, kw]`` on CPU without autograd; None when this PyTorch build lacks
    the op (callers then run the two passes themselves)."""
    global FUSED_CONV_LRELU
    if not FUSED_CONV_LRELU:
        return None
    try:
        return torch.ops.mkldnn._convolution_pointwise(x, weight, None, list(padding), [1, 1], [1, 1], x.shape[1],
                                                       "leaky_relu", [slope], "")
    except (AttributeError, RuntimeError, NotImplementedError):
        FUSED_CONV_LRELU = False
        return None


def fir2d_depthwise(x: torch.Tensor, f: torch.Tensor, *, padding: int | Sequence[int] = 0, gain: float = 1.0,
                    bias: torch.Tensor | None = None) -> torch.Tensor:
    """``upfirdn2d(x, f, padding=padding, gain=gain)`` (no resampling) + optional per-channel ``bias [C]``.

    One depthwise convolution (fast with oneDNN on channels_last input); the bias rides along
    for free. ``f`` is a 2-D ``[fh, fw]`` filter; asymmetric or negative padding is applied first.
    """
    c = x.shape[1]
    px0, px1, py0, py1 = parse_padding(padding)
    if f.ndim == 1:
        f = torch.outer(f, f)
    k = (f.to(x.dtype) * gain).flip([0, 1]).reshape(1, 1, *f.shape).repeat(c, 1, 1, 1)
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return F.conv2d(x, k, bias, padding=(py0, px0), groups=c)
    x = F.pad(x, [px0, px1, py0, py1])
    return F.conv2d(x, k, bias, groups=c)
