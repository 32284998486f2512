"""Modulated convolution (StyleGAN2 and StyleGAN3) in its reference and fast forms.

A modulated convolution scales the input channels of a convolution's weight by a per-sample style
``s [N, I]`` and (when demodulating) rescales each output channel of every sample's weight to unit
L2 norm. The *reference* forms run it as NVIDIA's code does (one grouped convolution with one
modulated kernel per sample); the *fast* form arranges the same maths for CPU speed (see
:func:`modulated_conv2d_fast`).

Shapes: activations ``x [N, I, H, W]``, base weights ``weight [O, I, k, k]``, styles ``[N, I]``,
demodulation coefficients ``[N, O]``.
"""

from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F

from . import ops


def modulated_conv2d_reference(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, *,
                               demodulate: bool = True, up: int = 1, padding: int = 0,
                               resample_filter: torch.Tensor | None = None) -> torch.Tensor:
    """Official ``modulated_conv2d`` (``fused_modconv=True``) as one grouped convolution.

    Args:
        x: ``[N, I, H, W]`` activations.
        weight: ``[O, I, k, k]`` base weights.
        styles: ``[N, I]`` modulation (already scaled by any weight gain).
        demodulate: scale each output channel's per-sample weights to unit L2 norm (eps 1e-8).
        up: 1, or 2 for the upsampling layer (zero insertion, ``resample_filter`` with gain 4, then
            a true convolution of the weights on the upsampled grid, as NVIDIA's conv2d_resample).
        padding: convolution padding w.r.t. the (upsampled) grid.

    Returns: ``[N, O, H*up, W*up]`` (before noise, bias and activation).
    """
    n, in_ch, h, w_ = x.shape
    out_ch, _, kh, kw = weight.shape
    wgt = weight.unsqueeze(0) * styles.reshape(n, 1, in_ch, 1, 1)  # [N, O, I, k, k]
    if demodulate:
        dcoefs = (wgt.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [N, O]
        wgt = wgt * dcoefs.reshape(n, out_ch, 1, 1, 1)
    x = x.reshape(1, n * in_ch, h, w_)
    wgt = wgt.reshape(n * out_ch, in_ch, kh, kw)
    if up > 1:
        fh, fw = resample_filter.shape[-2], resample_filter.shape[-1]
        pad = [padding + (fw + up - 1) // 2, padding + (fw - up) // 2,
               padding + (fh + up - 1) // 2, padding + (fh - up) // 2]
        x = ops.upfirdn2d(x, resample_filter, up=up, padding=pad, gain=up * up)
        # conv2d_resample uses flip_weight=False for upsampling layers: a true convolution.
        x = F.conv2d(x, wgt.flip([2, 3]), groups=n)
    else:
        x = F.conv2d(x, wgt, padding=padding, groups=n)
    return x.reshape(n, out_ch, *x.shape[2:])


def demodulation_coefficients(weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """``rsqrt(sum_{i,k} (w[o,i,k] * s[n,i])^2 + 1e-8)`` as ``[N, O]``, via one small matmul.

    ``sum_k w^2`` ``[O, I]`` of a parameter is remembered between calls when no gradient is recorded.
    """
    wsq = _derived(weight, "wsq", lambda w: w.square().sum(dim=[2, 3]))  # [O, I]
    return (styles.square() @ wsq.t() + 1e-8).rsqrt()


def upsample_conv2d(x: torch.Tensor, weight: torch.Tensor, resample_filter: torch.Tensor, padding: int,
                  bias: torch.Tensor | None) -> torch.Tensor:
    """x2 upsampling + true convolution with ``weight [O, I, k, k]`` on the fine grid (+ ``bias [O]``).

    As the official conv2d_resample fast path: a stride-2 transposed convolution, then the FIR
    (gain 4) as one depthwise convolution that also adds the bias.
    """
    kh, kw = weight.shape[-2:]
    fh, fw = resample_filter.shape[-2:]
    y = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)  # [N, O, 2H + k - 2, 2W + k - 2]
    pad = [padding + (fw + 1) // 2 - (kw - 1), padding + (fw - 2) // 2 - (kw - 2),
           padding + (fh + 1) // 2 - (kh - 1), padding + (fh - 2) // 2 - (kh - 2)]
    return ops.fir2d_depthwise(y, resample_filter, padding=pad, gain=4.0, bias=bias)


# Each output phase of a stride-2 transposed 3x3 convolution, per axis, as a 2-tap window over the
# input samples (x[m-1], x[m]): phase 0 (even outputs) reads taps (2, 0), phase 1 (odd outputs) reads
# (none, 1); index 3 is a zero tap.
_PHASE_TAPS = ((2, 0), (3, 1))

#: The phase form of the x2 upsampling convolution is used (bfloat16 / float16 on CPU, inference) for
#: inputs from ``PHASES_MIN_SIDE`` to ``PHASES_MAX_SIDE`` pixels on a side. Measured on a 2-core AMX
#: Xeon (one StyleGAN2 config-f layer each, batch 1, bf16 channels-last): 32 -> 64 px, 512 channels,
#: 14.2 -> 11.8 ms; 64 -> 128, 19.7 -> 12.0; 128 -> 256, 18.8 -> 10.2; 256 -> 512, 20.4 -> 16.2; but
#: 512 -> 1024 (32 output channels) 23.8 -> 26.0, 4 -> 8 4.0 -> 5.9 (the 16-tap kernels cost more to
#: modulate than the small layer saves), and float32 slower at every size (its transposed convolution
#: is relatively fast).
PHASES_MIN_SIDE, PHASES_MAX_SIDE = 32, 256


def phase_kernels(weight: torch.Tensor) -> torch.Tensor:
    """The four output phases of ``conv_transpose2d(x, weight.transpose(0, 1), stride=2)`` as 2x2 kernels.

    ``weight [O, I, 3, 3]`` -> ``[4, O, I, 2, 2]``, phase ``2a + b`` (row phase a, column phase b)
    first. ``conv2d(x, k[p], padding=1)`` gives phase p's outputs ``y[2m + a, 2n + b]`` for
    ``m in 0..H, n in 0..W`` (its 9 of the 16 taps are the weight's; the others are zero, so the
    odd phases' extra last row / column is zero).
    """
    padded = F.pad(weight, [0, 1, 0, 1])  # [O, I, 4, 4], index 3 = 0
    taps = torch.tensor(_PHASE_TAPS, device=weight.device)
    k = padded[:, :, taps][:, :, :, :, taps]  # [O, I, a, ty, b, tx]
    return k.permute(2, 4, 0, 1, 3, 5).reshape(4, *weight.shape[:2], 2, 2).contiguous()


def upsample_conv2d_phases(x: torch.Tensor, kernels: torch.Tensor, resample_filter: torch.Tensor,
                           bias: torch.Tensor | None) -> torch.Tensor:
    """:func:`upsample_conv2d` for a 3x3 weight, padding 1 and a 4x4 filter, without the transposed convolution.

    ``kernels [4, O, I, 2, 2]`` (:func:`phase_kernels`, in ``x.dtype``) run as one ordinary 2x2
    convolution to ``4*O`` channels, which oneDNN runs several times faster than the transposed
    one (16 multiply-adds for its 9 per output, still less time); one copy interleaves the phases
    into the fine grid (with the zero border the FIR's padding needs), then the FIR (gain 4) adds the
    bias as in :func:`upsample_conv2d`. ``x [N, I, H, W]`` -> ``[N, O, 2H, 2W]``, channels-last.
    """
    n, _, h, w = x.shape
    out_ch = kernels.shape[1]
    z = F.conv2d(x, kernels.reshape(4 * out_ch, *kernels.shape[2:]), padding=1)  # [N, 4*O, H+1, W+1]
    z = z.permute(0, 2, 3, 1).reshape(n, h + 1, w + 1, 2, 2, out_ch)  # [N, m, n, a, b, O]
    # the fine grid y[2m + a, 2n + b] (2H + 2 rows) behind one zero row and column: 2H + 3 in all
    grid = x.new_empty([n, 2 * h + 3, 2 * w + 3, out_ch])
    grid[:, 0].zero_()
    grid[:, 1:, 0].zero_()
    grid[:, 1:, 1:].unflatten(1, (h + 1, 2)).unflatten(3, (w + 1, 2)).copy_(z.permute(0, 1, 3, 2, 4, 5))
    return ops.fir2d_depthwise(grid.permute(0, 3, 1, 2), resample_filter, padding=0, gain=4.0, bias=bias)


def _use_phases(x: torch.Tensor, weight: torch.Tensor, padding: int, resample_filter: torch.Tensor) -> bool:
    """Whether :func:`modulated_conv2d_fast` upsamples through :func:`upsample_conv2d_phases` (see
    ``PHASES_MIN_SIDE``): reduced precision on CPU, no gradient recorded, not compiling, the official
    3x3 / padding 1 / 4x4-filter layer, a measured-faster size."""
    return (x.device.type == "cpu" and x.dtype in (torch.bfloat16, torch.float16)
            and not torch.is_grad_enabled() and not torch.compiler.is_compiling()
            and tuple(weight.shape[2:]) == (3, 3) and padding == 1 and tuple(resample_filter.shape) == (4, 4)
            and PHASES_MIN_SIDE <= min(x.shape[2:]) and max(x.shape[2:]) <= PHASES_MAX_SIDE)


def cast_weight(weight: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``weight`` in ``dtype``; a parameter's cast copy is kept and reused until the parameter changes.

    The cache key is the tensor's version counter (bumped by every in-place update: optimiser
    steps, ``load_state_dict``, ``copy_``), so a cached copy is never stale. With autograd
    recording on a trainable weight, or for a non-parameter, the cast is redone each call.
    """
    if weight.dtype == dtype:
        return weight
    return _derived(weight, ("cast", dtype), lambda w: w.to(dtype))


def _derived(weight: torch.Tensor, what, make) -> torch.Tensor:
    """``make(weight)``; for a parameter with no gradient recorded to it (see :func:`_cacheable`) computed once
    and kept (keyed by ``what``) until the parameter changes or dies."""
    return _cached(weight, what, make) if _cacheable(weight) else make(weight)


def _cacheable(weight: torch.Tensor) -> bool:
    """Whether derived copies of ``weight`` may be remembered: a parameter, no gradient recorded to it,
    not inside ``torch.compile`` (which cannot trace the cache; a compiled graph recomputes the copies)."""
    return (not torch.compiler.is_compiling() and isinstance(weight, torch.nn.Parameter) and not weight.is_inference()
            and not (torch.is_grad_enabled() and weight.requires_grad))


def _cached(weight: torch.Tensor, what, make) -> torch.Tensor:
    """``make(weight.detach())``, remembered per (``weight``, ``what``) until ``weight`` changes or dies."""
    key = (what, weight._version, weight.data_ptr(), weight.device)
    slot = _CACHE.get(id(weight))
    if slot is None:
        slot = _CACHE[id(weight)] = {}
        weakref.finalize(weight, _CACHE.pop, id(weight), None)
    entry = slot.get(what)
    if entry is not None and entry[0] == key:
        return entry[1]
    out = make(weight.detach())
    slot[what] = (key, out)
    return out


_CACHE: dict[int, dict] = {}  # id(weight) -> {what: (key, derived tensor)}


def modulated_conv2d_fast(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, *, up: int = 1,
                          padding: int = 0, resample_filter: torch.Tensor | None = None, out_gain: float = 1.0,
                          bias: torch.Tensor | None = None) -> torch.Tensor:
    """``out_gain * (modulated_conv2d_reference(x, weight, styles, up=up, ...) + bias)``, demodulated.

    Computes in ``x.dtype`` (float32, bfloat16 or float16); ``weight [O, I, k, k]``, ``styles [N, I]``
    and ``bias [O]`` are float32, and the demodulation coefficients are computed in float32.

    - Demodulation coefficients are ``rsqrt(s^2 @ sum_k w^2 + 1e-8)`` (one small matmul, no
      per-sample weight tensor); ``out_gain`` is folded into them.
    - Batch 1: modulate and demodulate the weights (one ``[O, I, k, k]`` tensor, rounded once to
      ``x.dtype``) and run one ordinary convolution with the bias folded into it.
    - Batch > 1: modulate the activations (``x * s``), run one convolution with the shared weights
      over the whole batch, then scale by the coefficients and add the bias in one ``addcmul``.
    - ``up=2``: see :func:`upsample_conv2d` (transposed conv + depthwise FIR, no zero-inserted tensor);
      in bfloat16 / float16 inference on CPU, at the sizes where it was measured faster, the same
      maths as four 2x2 phase kernels (:func:`upsample_conv2d_phases`).

    Works for any memory format; channels_last input is fastest on CPU (oneDNN). Returns
    ``[N, O, H*up, W*up]`` in ``x.dtype``.
    """
    n = x.shape[0]
    out_ch = weight.shape[0]
    dtype = x.dtype
    d = demodulation_coefficients(weight, styles)
    if out_gain != 1:
        d = d * out_gain
    b = None if bias is None else (bias * out_gain).to(dtype)
    phases = up > 1 and _use_phases(x, weight, padding, resample_filter)
    if n == 1:
        scale = styles.reshape(1, -1, 1, 1) * d.reshape(-1, 1, 1, 1)  # [O, I, 1, 1]
        if phases:
            base = _derived(weight, "phases", phase_kernels)
            return upsample_conv2d_phases(x, (base * scale).to(dtype), resample_filter, b)
        wgt = (weight * scale).to(dtype)  # (measured: faster than one mixed-dtype mul with out=)
        if up == 1:
            return F.conv2d(x, wgt, b, padding=padding)
        return upsample_conv2d(x, wgt, resample_filter, padding, b)
    x = x * styles.reshape(n, -1, 1, 1).to(dtype)
    if phases:
        kernels = _derived(weight, ("phases", dtype), lambda w: phase_kernels(w).to(dtype))
        y = upsample_conv2d_phases(x, kernels, resample_filter, None)
    elif up == 1:
        y = F.conv2d(x, cast_weight(weight, dtype), padding=padding)
    else:
        y = upsample_conv2d(x, cast_weight(weight, dtype), resample_filter, padding, None)
    d = d.reshape(n, out_ch, 1, 1).to(dtype)
    if b is None:
        return y.mul_(d) if not torch.is_grad_enabled() else y * d
    b = b.reshape(1, out_ch, 1, 1)
    if torch.is_grad_enabled():
        return torch.addcmul(b, y, d)
    return torch.addcmul(b, y, d, out=y)


# StyleGAN3


def prenormalize(weight: torch.Tensor, styles: torch.Tensor, demodulate: bool):
    """Scale ``weight [O, I, k, k]`` per output channel and ``styles [N, I]`` (by their overall RMS)
    to unit mean square before demodulation, for numerical range (as in the official network)."""
    if not demodulate:
        return weight, styles
    weight = weight * weight.square().mean([1, 2, 3], keepdim=True).rsqrt()
    styles = styles * styles.square().mean().rsqrt()
    return weight, styles


def modulated_conv2d_grouped(x, weight, styles, *, demodulate: bool, padding: int, input_gain) -> torch.Tensor:
    """Reference modulated convolution, written like the official one: one modulated kernel per
    sample, run as a grouped convolution. ``x [N, I, H, W]``, ``weight [O, I, k, k]``, ``styles [N, I]``
    -> ``[N, O, H + 2p - k + 1, W + 2p - k + 1]``."""
    n = x.shape[0]
    out_c, in_c, kh, kw = weight.shape
    weight, styles = prenormalize(weight, styles, demodulate)
    w = weight.unsqueeze(0) * styles.reshape(n, 1, in_c, 1, 1)  # [N, O, I, k, k]
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt().reshape(n, out_c, 1, 1, 1)
    if input_gain is not None:
        w = w * input_gain.expand(n, in_c).reshape(n, 1, in_c, 1, 1)
    x = x.contiguous().reshape(1, n * in_c, *x.shape[2:])
    x = F.conv2d(x, w.reshape(n * out_c, in_c, kh, kw).to(x.dtype), padding=padding, groups=n)
    return x.reshape(n, out_c, *x.shape[2:])
