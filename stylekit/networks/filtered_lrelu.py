"""StyleGAN3's filtered leaky ReLU and its low-pass filter design, in plain PyTorch.

An alias-free nonlinearity (Karras et al. 2021, "Alias-Free Generative Adversarial Networks",
Sec. 3.2): to apply a pointwise nonlinearity to a band-limited signal without creating aliases,
the signal is first upsampled (zero insertion + low-pass FIR filter), the leaky ReLU is applied
at the higher rate, and the result is low-pass filtered and decimated again.

For one channel the operation is, in order (matching NVIDIA's ``filtered_lrelu`` op):

1. add the channel's bias ``b``;
2. upsample by ``up`` (insert ``up - 1`` zeros after every sample);
3. pad with zeros (``padding``; negative values crop);
4. convolve with the upsampling filter ``fu`` scaled by ``up**2`` (keep the "valid" part);
5. multiply by ``gain`` and apply leaky ReLU with negative ``slope`` (the two commute);
6. clamp to ``[-clamp, clamp]``;
7. convolve with the downsampling filter ``fd`` ("valid" part) and keep every ``down``-th sample.

Filters are float32 tensors: ``[taps]`` for a separable filter (applied along x and then y),
``[taps_y, taps_x]`` for a non-separable (e.g. radially symmetric) one, or ``None`` for identity.

Two implementations:

- ``impl='reference'`` runs the steps literally with :func:`stylekit.networks.ops.upfirdn2d`
  (zero insertion followed by a full-rate convolution), exactly like NVIDIA's reference op.
- ``impl='fast'`` computes the same numbers (up to float rounding) without wasted work: the
  upsampling is a strided transposed convolution (no multiplications by inserted zeros), the
  downsampling a strided convolution (no outputs that would be thrown away), separable filters
  are applied as two 1-D passes, the gain rides in the upsampling filter, everything runs in
  channels-last memory layout (what PyTorch's CPU depthwise convolutions are fastest on), and
  the work is done in strips of output rows (see ``STRIP_BYTES``) so that the ``up**2``-times
  larger intermediate is never held whole. In bfloat16/float16 (PyTorch's CPU depthwise
  *transposed* convolution has no fast kernel for them) the upsampling is polyphase
  (:func:`upsample_fir_polyphase`, the activation applied as the phases are interleaved) and a 2-D
  downsampling filter runs as a sum of separable strided passes (:func:`separable_terms`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .ops import bias_act, fused_depthwise_conv_lrelu, parse_padding, upfirdn2d


# ------------------------------------------------------------------------------------------------
# Filter design
# ------------------------------------------------------------------------------------------------

def kaiser_beta(atten_db: float) -> float:
    """Kaiser window shape parameter for a stopband attenuation of ``atten_db`` decibels."""
    if atten_db > 50:
        return 0.1102 * (atten_db - 8.7)
    if atten_db > 21:
        return 0.5842 * (atten_db - 21) ** 0.4 + 0.07886 * (atten_db - 21)
    return 0.0


def kaiser_atten(numtaps: int, width: float) -> float:
    """Kaiser's estimate of the attenuation (dB) of a ``numtaps`` filter whose transition band is
    ``width`` wide, in units of the Nyquist frequency (so 1 = the whole band)."""
    return 2.285 * (numtaps - 1) * math.pi * width + 7.95


def kaiser_lowpass(numtaps: int, cutoff: float, width: float, fs: float) -> np.ndarray:
    """Kaiser-windowed sinc low-pass filter, as ``scipy.signal.firwin(numtaps, cutoff, width=width, fs=fs)``.

    Args:
        numtaps: filter length.
        cutoff: -6 dB cutoff frequency, in the same units as ``fs`` (``0 < cutoff < fs / 2``).
        width: width of the transition band, same units; it sets the Kaiser window's beta.
        fs: sampling rate.

    Returns: float64 ``[numtaps]``, symmetric, scaled to unit gain at DC (sums to 1).
    """
    nyquist = fs / 2
    c = cutoff / nyquist
    beta = kaiser_beta(kaiser_atten(numtaps, width / nyquist))
    m = np.arange(numtaps, dtype=np.float64) - (numtaps - 1) / 2
    h = c * np.sinc(c * m) * np.kaiser(numtaps, beta)
    return h / h.sum()


def bessel_j1(x: np.ndarray) -> np.ndarray:
    """Bessel function of the first kind of order 1, float64, accurate to about 1e-15.

    Uses Bessel's integral ``J1(x) = 1/(2 pi) * integral over [0, 2 pi) of cos(t - x sin t) dt``
    with the trapezoidal rule, which for this smooth periodic integrand is exact except for
    aliased terms ``J_{N-1}(x), J_{N+1}(x), ...``; with ``N > |x| + 64`` points they are below 1e-20.
    """
    x = np.asarray(x, dtype=np.float64)
    n = 64 + 2 * int(np.ceil(np.abs(x).max(initial=0.0)))
    t = np.arange(n, dtype=np.float64) * (2 * np.pi / n)
    return np.cos(t - x[..., None] * np.sin(t)).mean(axis=-1)


def jinc_lowpass(numtaps: int, cutoff: float, width: float, fs: float) -> np.ndarray:
    """Radially symmetric low-pass filter: a jinc (the 2-D ideal disc low-pass) times a separable Kaiser window.

    Same arguments as :func:`kaiser_lowpass`. Returns float64 ``[numtaps, numtaps]`` summing to 1.
    """
    x = (np.arange(numtaps, dtype=np.float64) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(x, x))
    # jinc: J1(2 pi c r) / (pi r); its limit at r = 0 is c (only reached for odd numtaps).
    j1 = bessel_j1(2 * cutoff * np.pi * r)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(r > 0, j1 / (np.pi * r), cutoff)
    beta = kaiser_beta(kaiser_atten(numtaps, width / (fs / 2)))
    window = np.kaiser(numtaps, beta)
    f = f * np.outer(window, window)
    return f / f.sum()


def design_lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float,
                          radial: bool = False) -> torch.Tensor | None:
    """The low-pass filter of one StyleGAN3 layer (NVIDIA's ``SynthesisLayer.design_lowpass_filter``).

    Returns None for ``numtaps == 1`` (identity), else float32 ``[numtaps]`` (separable Kaiser
    filter) or, with ``radial``, ``[numtaps, numtaps]`` (jinc-based filter).
    """
    if numtaps < 1:
        raise ValueError(f"numtaps must be at least 1, not {numtaps}")
    if numtaps == 1:
        return None
    f = jinc_lowpass(numtaps, cutoff, width, fs) if radial else kaiser_lowpass(numtaps, cutoff, width, fs)
    return torch.as_tensor(f, dtype=torch.float32)


# ------------------------------------------------------------------------------------------------
# The operation
# ------------------------------------------------------------------------------------------------

#: Target size in bytes of the upsampled intermediate the fast path holds at a time: it works in
#: strips of output rows, at least ``MIN_STRIP_ROWS`` each so that the strips' overlap stays small.
STRIP_BYTES = 32 * 2 ** 20
MIN_STRIP_ROWS = 8


def _filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """``(width, height)`` of a filter (a separable ``[k]`` filter is ``k`` by ``k``)."""
    if f is None:
        return 1, 1
    return f.shape[-1], f.shape[0]


def output_size(in_h: int, in_w: int, fu: torch.Tensor | None, fd: torch.Tensor | None,
                up: int, down: int, padding) -> tuple[int, int]:
    """``(out_h, out_w)`` of :func:`filtered_lrelu` for an ``[*, *, in_h, in_w]`` input."""
    px0, px1, py0, py1 = parse_padding(padding)
    fu_w, fu_h = _filter_size(fu)
    fd_w, fd_h = _filter_size(fd)
    out_w = (in_w * up + px0 + px1 - (fu_w - 1) - (fd_w - 1) + (down - 1)) // down
    out_h = (in_h * up + py0 + py1 - (fu_h - 1) - (fd_h - 1) + (down - 1)) // down
    return out_h, out_w


def filtered_lrelu(x: torch.Tensor, fu: torch.Tensor | None = None, fd: torch.Tensor | None = None,
                   b: torch.Tensor | None = None, *, up: int = 1, down: int = 1, padding=0,
                   gain: float = math.sqrt(2), slope: float = 0.2, clamp: float | None = None,
                   impl: str = "fast") -> torch.Tensor:
    """Bias, upsample + filter, leaky ReLU with gain, clamp, filter + downsample (see the module doc).

    Args:
        x: ``[N, C, H, W]`` float tensor (any memory layout).
        fu: upsampling filter ``[k]`` (separable), ``[kh, kw]`` or None (identity).
        fd: downsampling filter ``[k]`` (separable), ``[kh, kw]`` or None (identity).
        b: per-channel bias ``[C]`` or None.
        up, down: integer up- and downsampling factors (>= 1).
        padding: zero padding of the upsampled image before ``fu``: ``p``, ``[px, py]`` or
            ``[px0, px1, py0, py1]``; negative values crop.
        gain: scale applied with the activation (sqrt(2) keeps the signal's magnitude).
        slope: slope of the leaky ReLU for negative inputs (1 = linear).
        clamp: clamp the activated signal to ``[-clamp, clamp]``; None disables.
        impl: ``'fast'`` (strided, separable, channels-last) or ``'reference'`` (literal ops).

    Returns: ``[N, C, out_h, out_w]`` (see :func:`output_size`), same dtype as ``x``; the fast
    path returns it in channels-last memory layout.
    """
    if x.ndim != 4:
        raise ValueError(f"filtered_lrelu expects [N, C, H, W] input, got shape {list(x.shape)}")
    if up < 1 or down < 1:
        raise ValueError(f"up and down must be >= 1, got up={up}, down={down}")
    if impl == "reference":
        return _filtered_lrelu_reference(x, fu, fd, b, up=up, down=down, padding=padding,
                                         gain=gain, slope=slope, clamp=clamp)
    if impl != "fast":
        raise ValueError(f"impl must be 'fast' or 'reference', not {impl!r}")
    out_h, out_w = output_size(x.shape[2], x.shape[3], fu, fd, up, down, padding)
    x = x.contiguous(memory_format=torch.channels_last)
    if b is not None:
        x = x + b.to(x.dtype).reshape(1, -1, 1, 1)
    px0, px1, py0, py1 = parse_padding(padding)
    tmp_w = x.shape[3] * up + px0 + px1 - _filter_size(fu)[0] + 1
    tmp_h = x.shape[2] * up + py0 + py1 - _filter_size(fu)[1] + 1
    fd_h = _filter_size(fd)[1]

    # Work in strips of output rows so that the upsampled intermediate (up**2 times the input)
    # is never held whole: less memory, and each strip is still warm in cache when it is
    # activated and filtered down. Strips overlap by the downsampling filter's support.
    row_bytes = x.shape[0] * x.shape[1] * tmp_w * x.element_size()
    strip = max(MIN_STRIP_ROWS, (STRIP_BYTES // max(row_bytes, 1) - fd_h) // down + 1)  # output rows per strip
    # float32 keeps the transposed convolutions; other dtypes use the polyphase form (no fast
    # reduced-precision depthwise transposed convolution on CPU).
    polyphase = x.dtype != torch.float32 and fu is not None and fu.ndim == 1
    fuse_activation = not (torch.is_grad_enabled() and x.requires_grad)  # clamp(out=...) has no gradient
    pieces = []
    for o0 in range(0, out_h, strip):
        o1 = min(out_h, o0 + strip)
        t0, t1 = o0 * down, (o1 - 1) * down + fd_h  # intermediate rows this strip needs
        # gain > 0 commutes with the leaky ReLU, so it rides along in the upsampling filter.
        strip_padding = (px0, px1, py0 - t0, py1 - (tmp_h - t1))
        if polyphase and fuse_activation:
            y = upsample_fir_polyphase(x, fu, up=up, padding=strip_padding, gain=gain, slope=slope, clamp=clamp)
        elif polyphase:
            y = _activate(upsample_fir_polyphase(x, fu, up=up, padding=strip_padding, gain=gain), gain=1.0,
                          slope=slope, clamp=clamp)
        else:
            y = _activate(upsample_fir(x, fu, up=up, padding=strip_padding, gain=gain), gain=1.0, slope=slope,
                          clamp=clamp)
        pieces.append(downsample_fir(y, fd, down=down))
    y = pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=2)
    assert y.shape[2:] == (out_h, out_w), (y.shape, out_h, out_w)
    return y


def _filtered_lrelu_reference(x, fu, fd, b, *, up, down, padding, gain, slope, clamp) -> torch.Tensor:
    """The literal sequence of operations with zero-insertion upsampling (NVIDIA's reference op)."""
    x = bias_act(x, b)
    x = upfirdn2d(x, fu, up=up, padding=parse_padding(padding), gain=up ** 2)
    x = bias_act(x, act="lrelu", alpha=slope, gain=gain, clamp=clamp)
    x = upfirdn2d(x, fd, down=down)
    return x


def _activate(x: torch.Tensor, *, gain: float, slope: float, clamp: float | None) -> torch.Tensor:
    """``clamp(leaky_relu(x, slope) * gain)``, in place when no gradient is being recorded."""
    inplace = not (torch.is_grad_enabled() and x.requires_grad)
    if slope != 1:
        x = F.leaky_relu_(x, slope) if inplace else F.leaky_relu(x, slope)
    if gain != 1:
        x = x.mul_(gain) if inplace else x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp_(-clamp, clamp) if inplace else x.clamp(-clamp, clamp)
    return x


def _depthwise(f: torch.Tensor, channels: int, shape: tuple[int, int], dtype) -> torch.Tensor:
    """One filter ``f`` repeated as a depthwise convolution weight ``[channels, 1, *shape]``."""
    return f.to(dtype).reshape(1, 1, *shape).expand(channels, 1, *shape).contiguous()


def _pad_or_crop(x: torch.Tensor, left: int, right: int, dim: int) -> torch.Tensor:
    """Zero-pad (positive) or crop (negative) ``x`` along spatial ``dim`` (2 = y, 3 = x)."""
    if left > 0 or right > 0:
        pads = [0, 0, 0, 0]
        base = 0 if dim == 3 else 2
        pads[base], pads[base + 1] = max(left, 0), max(right, 0)
        x = F.pad(x, pads)
    if left < 0 or right < 0:
        n = x.shape[dim]
        x = x.narrow(dim, max(-left, 0), n - max(-left, 0) - max(-right, 0))
    return x


def _upsample_plan(n: int, k: int, up: int, pad0: int, pad1: int) -> tuple[int, int, int, int, int, int]:
    """How to compute one axis of :func:`upsample_fir` with a transposed convolution.

    The requested output (upsample a length-``n`` signal by ``up``, pad by ``pad0``/``pad1``,
    convolve with a ``k``-tap filter, keep the valid part) is the slice ``[k - 1 - pad0, n * up + pad1)``
    of the *full* transposed convolution (length ``(n - 1) * up + k``, zero outside). Input samples
    that cannot reach that slice are trimmed first; PyTorch's ``padding`` / ``output_padding``
    crop ``crop`` samples on the left and ``crop - out_pad`` on the right; whatever remains is
    ``extra_left`` / ``extra_right`` (pad if positive, crop if negative), usually zero.

    Returns ``(i0, i1, crop, out_pad, extra_left, extra_right)``: use input samples ``[i0, i1)``.
    """
    start, end = k - 1 - pad0, n * up + pad1
    i0 = min(max(0, (start - k) // up + 1), n - 1)  # first input sample that reaches output `start`
    i1 = max(min(n, (end - 1) // up + 1), i0 + 1)  # one past the last one that reaches `end - 1`
    start, end = start - i0 * up, end - i0 * up  # now relative to the trimmed input's full result
    full = (i1 - i0 - 1) * up + k
    left, right = start, full - end  # samples to crop (negative: to pad)
    # Never crop more than wanted on either side; PyTorch needs crop <= k - 1, out_pad < up and
    # at least one output sample.
    crop = min(max(left, 0), max(right, 0) + up - 1, k - 1, (full - 1) // 2)
    out_pad = max(0, crop - max(right, 0))
    return i0, i1, crop, out_pad, crop - left, crop - out_pad - right


def upsample_fir(x: torch.Tensor, f: torch.Tensor | None, *, up: int, padding, gain: float = 1.0) -> torch.Tensor:
    """Steps 2-4: upsample by ``up``, pad, convolve with ``f * up**2`` (valid part), times ``gain``.

    Computed as a transposed convolution with stride ``up`` (which is exactly "insert zeros, then
    convolve" without multiplying the zeros); the requested ``padding`` becomes trimming of the
    input and the convolution's own cropping (see :func:`_upsample_plan`). Args as in
    :func:`filtered_lrelu`; ``x`` is ``[N, C, H, W]``.

    Returns: ``[N, C, H * up + py0 + py1 - kh + 1, W * up + px0 + px1 - kw + 1]``.
    """
    px0, px1, py0, py1 = parse_padding(padding)
    c = x.shape[1]
    if f is None:
        if up > 1:  # Rare (never in StyleGAN3): zero insertion without a filter, times up**2.
            n, _, h, w = x.shape
            x = F.pad(x.reshape(n, c, h, 1, w, 1), [0, up - 1, 0, 0, 0, up - 1]).reshape(n, c, h * up, w * up)
        if up > 1 or gain != 1:
            x = x * (gain * up ** 2)
        return _pad_or_crop(_pad_or_crop(x, px0, px1, dim=3), py0, py1, dim=2)

    kw, kh = _filter_size(f)
    x0, x1, crop_x, opad_x, extra_x0, extra_x1 = _upsample_plan(x.shape[3], kw, up, px0, px1)
    y0, y1, crop_y, opad_y, extra_y0, extra_y1 = _upsample_plan(x.shape[2], kh, up, py0, py1)
    x = x[:, :, y0:y1, x0:x1]
    if f.ndim == 1:
        wx = _depthwise(f * (up * gain), c, (1, kw), x.dtype)
        wy = _depthwise(f * up, c, (kh, 1), x.dtype)

        def horizontal(t):
            return F.conv_transpose2d(t, wx, stride=(1, up), padding=(0, crop_x), output_padding=(0, opad_x), groups=c)

        def vertical(t):
            return F.conv_transpose2d(t, wy, stride=(up, 1), padding=(crop_y, 0), output_padding=(opad_y, 0), groups=c)

        # Either order gives the same result. On CPU the vertical pass costs more per output sample,
        # so for large factors it runs first, on the signal before it is widened.
        x = horizontal(vertical(x)) if up > 2 else vertical(horizontal(x))
    else:
        w2 = _depthwise(f * (gain * up ** 2), c, (kh, kw), x.dtype)
        x = F.conv_transpose2d(x, w2, stride=up, padding=(crop_y, crop_x), output_padding=(opad_y, opad_x),
                               groups=c)
    x = _pad_or_crop(x, extra_x0, extra_x1, dim=3)
    x = _pad_or_crop(x, extra_y0, extra_y1, dim=2)
    return x


def upsample_fir_polyphase(x: torch.Tensor, f: torch.Tensor, *, up: int, padding, gain: float = 1.0,
                           slope: float = 1.0, clamp: float | None = None) -> torch.Tensor:
    """:func:`upsample_fir` for a separable ``f [k]`` without transposed convolutions.

    Along each axis, output sample ``up * m + r`` takes only every ``up``-th filter tap, so each of
    the ``up`` output phases is an ordinary depthwise convolution of the input with a
    ``ceil(k / up)``-tap sub-filter; the phases are written interleaved into the result. PyTorch's
    CPU depthwise *transposed* convolution has no fast bfloat16 kernel (it is tens of times slower
    than float32), while ordinary depthwise convolutions in channels-last bfloat16 are fast.
    Same arguments, result and shape as :func:`upsample_fir` (channels-last memory), followed by
    the activation (leaky ReLU with ``slope``, then ``clamp``), which is applied to each phase as it
    is written (one pass fewer over the upsampled signal than activating it afterwards).
    """
    px0, px1, py0, py1 = parse_padding(padding)
    x = _upsample_axis(x, f * up, up, py0, py1, dim=2)
    return _upsample_axis(x, f * (up * gain), up, px0, px1, dim=3, slope=slope, clamp=clamp)


def _upsample_axis(x: torch.Tensor, f: torch.Tensor, up: int, pad0: int, pad1: int, dim: int,
                   slope: float = 1.0, clamp: float | None = None) -> torch.Tensor:
    """Zero-insertion by ``up``, padding ``pad0``/``pad1`` and convolution with ``f [k]`` (valid part) along ``dim``.

    Output ``t[up*m + r] = sum_q f'[j0 + up*q] * x[m + q + c]`` with ``f'`` the flipped filter,
    ``j0 = (pad0 - r) mod up`` and ``c = (r + j0 - pad0) / up``: one depthwise correlation per phase ``r``,
    then ``clamp(leaky_relu(t, slope))`` as each phase is written.
    """
    n_in, k, c = x.shape[dim], f.shape[0], x.shape[1]
    length = n_in * up + pad0 + pad1 - k + 1
    shape = list(x.shape)
    shape[dim] = length
    out = torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
    taps = f.flip(0).to(x.dtype)
    for r in range(up):
        count = len(range(r, length, up))
        if count <= 0:
            continue
        j0 = (pad0 - r) % up
        sub = taps[j0::up]
        view = out[:, :, r::up, :] if dim == 2 else out[:, :, :, r::up]
        if sub.numel() == 0:
            view.zero_()  # leaky_relu(0) = 0 = clamp(0)
            continue
        q = sub.numel()
        lo = (r + j0 - pad0) // up
        hi = lo + count + q - 1  # input samples [lo, hi) are read (zero outside [0, n_in))
        left, right = max(0, -lo), max(0, hi - n_in)
        src = x.narrow(dim, max(lo, 0), min(hi, n_in) - max(lo, 0)) if lo > 0 or hi < n_in else x
        if src.shape[dim] <= 0:
            view.zero_()
            continue
        pad = max(left, right)
        kshape = (q, 1) if dim == 2 else (1, q)
        y = _depthwise_conv_lrelu(src, _depthwise(sub, c, kshape, x.dtype), [pad, 0] if dim == 2 else [0, pad], slope)
        y = y.narrow(dim, pad - left, count)
        if clamp is not None and clamp >= 0:
            torch.clamp(y, -clamp, clamp, out=view)
        else:
            view.copy_(y)
    return out


def _depthwise_conv_lrelu(x: torch.Tensor, weight: torch.Tensor, padding: list[int], slope: float) -> torch.Tensor:
    """``leaky_relu(conv2d(x, weight, padding=padding, groups=C), slope)`` (no activation for ``slope == 1``).

    On CPU in bfloat16/float16 without autograd, one oneDNN convolution with the activation fused
    (:func:`stylekit.networks.ops.fused_depthwise_conv_lrelu`: it saves a pass over the upsampled signal),
    when this PyTorch build has it.
    """
    c = x.shape[1]
    if (slope != 1 and x.device.type == "cpu" and x.dtype != torch.float32
            and not (torch.is_grad_enabled() and x.requires_grad)):
        fused = fused_depthwise_conv_lrelu(x, weight, padding, slope)
        if fused is not None:
            return fused
    y = F.conv2d(x, weight, padding=padding, groups=c)
    return y if slope == 1 else F.leaky_relu(y, slope) if torch.is_grad_enabled() else F.leaky_relu_(y, slope)


def downsample_fir(x: torch.Tensor, f: torch.Tensor | None, *, down: int) -> torch.Tensor:
    """Step 7: convolve with ``f`` (valid part) and keep every ``down``-th sample.

    A strided convolution: only the kept outputs are computed. ``x`` is ``[N, C, H, W]``; returns
    ``[N, C, (H - kh) // down + 1, (W - kw) // down + 1]``.
    """
    if f is None:
        return x[:, :, ::down, ::down] if down > 1 else x
    c = x.shape[1]
    kw, kh = _filter_size(f)
    f = f.flip(list(range(f.ndim)))  # convolution, not correlation (StyleGAN3's filters are symmetric anyway)
    terms = [(f, f)] if f.ndim == 1 else None
    if terms is None and x.dtype != torch.float32:
        terms = separable_terms(f, tol=LOW_RANK_TOL)
    if terms is None:
        return F.conv2d(x, _depthwise(f, c, (kh, kw), x.dtype), stride=down, groups=c)
    out = None
    for u, v in terms:  # f ~ sum of outer(v, u): rows filtered by u, columns by v
        y = strided_fir_axis(x, _depthwise(u, c, (1, kw), x.dtype), down, dim=3)
        y = strided_fir_axis(y, _depthwise(v, c, (kh, 1), x.dtype), down, dim=2)
        out = y if out is None else out.add_(y)
    return out


def strided_fir_axis(x: torch.Tensor, weight: torch.Tensor, stride: int, dim: int) -> torch.Tensor:
    """``conv2d(x, weight, stride=stride along dim, groups=C)`` for a 1-D depthwise ``weight`` (``[C, 1, k, 1]``
    along rows, ``dim=2``; ``[C, 1, 1, k]`` along columns, ``dim=3``): a FIR correlation keeping every
    ``stride``-th output, ``[N, C, H, W] -> [N, C, (L - k) // stride + 1 along dim]``.

    Training in reduced precision on CPU, the gradient is computed by :class:`_StridedFir` (PyTorch's
    backward of a strided depthwise convolution has no fast bfloat16 kernel there: it took most of a
    StyleGAN3 step); otherwise this is the plain convolution.
    """
    if (x.dtype != torch.float32 and x.device.type == "cpu" and torch.is_grad_enabled() and x.requires_grad
            and not weight.requires_grad):
        return _StridedFir.apply(x, weight, stride, dim)
    return _strided_conv(x, weight, stride, dim)


def _strided_conv(x: torch.Tensor, weight: torch.Tensor, stride: int, dim: int) -> torch.Tensor:
    """The depthwise convolution of :func:`strided_fir_axis`, striding along ``dim`` only."""
    return F.conv2d(x, weight, stride=(stride, 1) if dim == 2 else (1, stride), groups=x.shape[1])


class _StridedFir(torch.autograd.Function):
    """:func:`strided_fir_axis` whose input gradient is a polyphase sum of ordinary (stride-1) depthwise
    convolutions, one per phase ``r``: ``gx[p*s + r] = sum_q t[r + q*s] * gy[p - q]`` for the taps ``t``."""

    @staticmethod
    def forward(ctx, x, weight, stride, dim):
        ctx.save_for_backward(weight)
        ctx.stride, ctx.dim, ctx.length = stride, dim, x.shape[dim]
        return _strided_conv(x, weight, stride, dim)

    @staticmethod
    def backward(ctx, gy):
        (weight,) = ctx.saved_tensors
        return strided_fir_input_grad(gy, weight, ctx.stride, ctx.dim, ctx.length), None, None, None


def strided_fir_input_grad(gy: torch.Tensor, weight: torch.Tensor, stride: int, dim: int, length: int) -> torch.Tensor:
    """The gradient of :func:`strided_fir_axis` with respect to its input, whose size along ``dim`` was
    ``length``, from the output gradient ``gy`` (same layout rules; channels-last result)."""
    c = gy.shape[1]
    taps = weight.reshape(c, -1)  # [C, k]: the correlation's taps
    shape = list(gy.shape)
    shape[dim] = length
    gx = torch.zeros(shape, dtype=gy.dtype, device=gy.device).contiguous(memory_format=torch.channels_last)
    for r in range(min(stride, taps.shape[1])):
        sub = taps[:, r::stride].flip(1)  # a true convolution with t[r::s] as a correlation
        q = sub.shape[1]
        kshape, pad = ((c, 1, q, 1), (q - 1, 0)) if dim == 2 else ((c, 1, 1, q), (0, q - 1))
        y = F.conv2d(gy, sub.reshape(kshape).contiguous(), padding=pad, groups=c)  # outputs p = 0 .. M + q - 2
        phase = gx[:, :, r::stride, :] if dim == 2 else gx[:, :, :, r::stride]
        n = min(phase.shape[dim], y.shape[dim])
        phase.narrow(dim, 0, n).copy_(y.narrow(dim, 0, n))
    return gx


#: Relative accuracy (against ``max|f|``) of the separable sum that replaces a 2-D downsampling
#: filter in reduced precision: far below bfloat16's rounding (about 4e-3).
LOW_RANK_TOL = 1e-4


def separable_terms(f: torch.Tensor, tol: float, max_terms: int = 3) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
    """A symmetric 2-D filter ``f [k, k]`` as ``sum_i outer(v_i, u_i)`` with ``|f - sum| <= tol * max|f|``.

    From the eigen-decomposition of ``f`` (StyleGAN3's radial low-pass filters have eigenvalues
    falling about 100x per term, so two terms reach 2e-5). Returns None when ``f`` is not square
    and symmetric or needs more than ``max_terms`` terms (callers then run the 2-D filter).
    """
    g = f.detach().double().cpu()
    if g.ndim != 2 or g.shape[0] != g.shape[1] or not torch.allclose(g, g.t(), atol=1e-12):
        return None
    values, vectors = torch.linalg.eigh(g)
    order = values.abs().argsort(descending=True)
    scale = g.abs().max().item()
    approx = torch.zeros_like(g)
    terms = []
    for i in order[:max_terms].tolist():
        u = vectors[:, i]
        approx += values[i] * torch.outer(u, u)
        terms.append((u.to(f.dtype).to(f.device), (u * values[i]).to(f.dtype).to(f.device)))
        if (approx - g).abs().max().item() <= tol * scale:
            return terms
    return None
