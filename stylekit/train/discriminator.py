"""The StyleGAN2 discriminator (residual architecture), written for training stylekit's generators.

The layout follows StyleGAN2 / StyleGAN2-ADA's ``resnet`` discriminator: a 1x1 ``fromrgb`` at the
input resolution, then one residual block per resolution down to 8x8 (two 3x3 convolutions, the
second downsampling by 2 after a [1,3,3,1] FIR low-pass, plus a 1x1 downsampling skip, the two
branches summed with gain sqrt(1/2)), then an epilogue at 4x4 (minibatch standard deviation, a 3x3
convolution, a fully connected layer and a linear output). Every weight uses the equalised learning
rate (stored ~N(0, 1), scaled by 1/sqrt(fan_in) at run time). Parameter names follow NVIDIA's
(``b64.fromrgb.weight``, ``b64.conv0``, ``b64.conv1``, ``b64.skip``, ``b4.mbstd``, ``b4.conv``,
``b4.fc``, ``b4.out``) so that the structure is easy to compare with the official code.

Input images: float32 ``[N, C, R, R]`` in about ``[-1, 1]``. Output: logits ``[N, 1]``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import InvalidArgumentError
from ..networks.ops import FullyConnectedLayer, bias_act, setup_filter, upfirdn2d


class Conv2dLayer(torch.nn.Module):
    """Equalised-lr convolution with optional 2x FIR downsampling, bias and activation.

    ``weight [out, in, k, k]`` (k odd), ``bias [out]``. With ``down=2`` the input is low-passed with
    the resampling filter and then convolved with stride 2, so ``[N, in, H, W] -> [N, out, H/2, W/2]``;
    otherwise the spatial size is kept (``k // 2`` zero padding).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, bias: bool = True,
                 activation: str = "linear", down: int = 1, resample_filter=(1, 3, 3, 1),
                 conv_clamp: float | None = None):
        super().__init__()
        if down not in (1, 2):
            raise InvalidArgumentError(f"down must be 1 or 2, not {down}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = kernel_size
        self.activation = activation
        self.down = down
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.act_gain = math.sqrt(2.0) if activation == "lrelu" else 1.0
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels])) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        """``[N, in, H, W] -> [N, out, H / down, W / down]``; ``gain`` scales the activated output."""
        w = self.weight * self.weight_gain
        if self.down == 2:
            fw = self.resample_filter.shape[-1]
            # Pad so that filtering then a stride-2 convolution gives exactly half the size.
            p0 = self.padding + (fw - 2 + 1) // 2
            p1 = self.padding + (fw - 2) // 2
            if self.kernel_size == 1:
                x = upfirdn2d(x, self.resample_filter, down=2, padding=[p0, p1, p0, p1])
                x = F.conv2d(x, w)
            else:
                x = upfirdn2d(x, self.resample_filter, padding=[p0, p1, p0, p1])
                x = F.conv2d(x, w, stride=2)
        else:
            x = F.conv2d(x, w, padding=self.padding)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, act=self.activation, gain=self.act_gain * gain, clamp=clamp)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
                f"kernel_size={self.kernel_size}, activation={self.activation}, down={self.down}")


class DiscriminatorBlock(torch.nn.Module):
    """One residual block: ``[N, in, R, R] -> [N, out, R/2, R/2]`` (``fromrgb`` when it is the first)."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, *, resolution: int,
                 img_channels: int, first: bool, conv_clamp: float | None = None):
        super().__init__()
        self.resolution = resolution
        self.first = first
        if first:
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, activation="lrelu", conv_clamp=conv_clamp)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, activation="lrelu", down=2, conv_clamp=conv_clamp)
        self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=2)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor) -> torch.Tensor:
        if self.first:
            x = self.fromrgb(img)
        y = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv0(x)
        x = self.conv1(x, gain=math.sqrt(0.5))
        return y + x


class MinibatchStdLayer(torch.nn.Module):
    """Append the standard deviation across groups of samples as extra feature maps.

    ``[N, C, H, W] -> [N, C + num_channels, H, W]``. Samples are split into groups of
    ``min(group_size, N)`` (N must be divisible by it); within each group the per-feature standard
    deviation is averaged over features and pixels, giving ``num_channels`` scalars per group that
    are broadcast to every member.
    """

    def __init__(self, group_size: int = 4, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        if n % g != 0:
            g = math.gcd(n, g)
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = y - y.mean(dim=0)
        y = (y.square().mean(dim=0) + 1e-8).sqrt()
        y = y.mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1)
        y = y.repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


class DiscriminatorEpilogue(torch.nn.Module):
    """The 4x4 head: ``[N, C, 4, 4] -> logits [N, 1]``."""

    def __init__(self, in_channels: int, *, resolution: int = 4, mbstd_group_size: int = 4,
                 mbstd_num_channels: int = 1, conv_clamp: float | None = None):
        super().__init__()
        self.resolution = resolution
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, 3, activation="lrelu",
                                conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution * resolution, in_channels, activation="lrelu")
        self.out = FullyConnectedLayer(in_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        return self.out(x)


def discriminator_channels(img_resolution: int, channel_base: int, channel_max: int,
                           channels: dict | None = None) -> dict[int, int]:
    """Feature maps per resolution: ``min(channel_base // res, channel_max)`` unless given explicitly."""
    out = {}
    res = 4
    while res <= img_resolution:
        if channels is not None and str(res) in channels:
            out[res] = int(channels[str(res)])
        elif channels is not None and res in channels:
            out[res] = int(channels[res])
        else:
            out[res] = min(channel_base // res, channel_max)
        res *= 2
    return out


class Discriminator(torch.nn.Module):
    """StyleGAN2 residual discriminator: ``img [N, C, R, R] in [-1, 1] -> logits [N, 1]``.

    Args (all keyword):
        img_resolution: R, a power of two >= 8.
        img_channels: C (3 for RGB).
        channel_base, channel_max: feature maps per resolution ``min(channel_base // res, channel_max)``.
        channels: optional explicit ``{str(res): channels}`` overriding the formula.
        mbstd_group_size, mbstd_num_channels: minibatch standard deviation settings.
        conv_clamp: clamp convolution outputs to +-this (None = off).
    """

    def __init__(self, *, img_resolution: int, img_channels: int = 3, channel_base: int = 32768,
                 channel_max: int = 512, channels: dict | None = None, mbstd_group_size: int = 4,
                 mbstd_num_channels: int = 1, conv_clamp: float | None = None):
        super().__init__()
        log2 = int(round(math.log2(img_resolution))) if img_resolution > 0 else 0
        if img_resolution < 8 or 2 ** log2 != img_resolution:
            raise InvalidArgumentError(
                f"the discriminator needs a power-of-two resolution >= 8, not {img_resolution}")
        self.config = dict(img_resolution=img_resolution, img_channels=img_channels, channel_base=channel_base,
                           channel_max=channel_max, channels=None if channels is None else {str(k): int(v) for k, v in channels.items()},
                           mbstd_group_size=mbstd_group_size, mbstd_num_channels=mbstd_num_channels,
                           conv_clamp=conv_clamp)
        self.img_resolution, self.img_channels = img_resolution, img_channels
        ch = discriminator_channels(img_resolution, channel_base, channel_max, channels)
        self.block_resolutions = [2 ** i for i in range(log2, 2, -1)]
        for res in self.block_resolutions:
            block = DiscriminatorBlock(ch[res], ch[res], ch[res // 2], resolution=res, img_channels=img_channels,
                                       first=(res == img_resolution), conv_clamp=conv_clamp)
            setattr(self, f"b{res}", block)
        self.b4 = DiscriminatorEpilogue(ch[4], mbstd_group_size=mbstd_group_size,
                                        mbstd_num_channels=mbstd_num_channels, conv_clamp=conv_clamp)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """``img [N, C, R, R]`` (about [-1, 1]) -> ``logits [N, 1]`` (higher = judged real)."""
        if img.ndim != 4 or img.shape[1] != self.img_channels or img.shape[2] != self.img_resolution \
                or img.shape[3] != self.img_resolution:
            raise InvalidArgumentError(
                f"the discriminator expects images [N, {self.img_channels}, {self.img_resolution}, "
                f"{self.img_resolution}], got {list(img.shape)}")
        x = None
        for res in self.block_resolutions:
            x = getattr(self, f"b{res}")(x, img)
        return self.b4(x)
