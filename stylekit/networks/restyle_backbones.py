"""ReStyle's encoder backbones (Alaluf, Patashnik & Cohen-Or 2021), as configs of
:class:`~stylekit.networks.encoders.StyleEncoder` plus the ResNet-34 unit they need.

ReStyle's encoders (``models/encoders/restyle_psp_encoders.py`` and ``restyle_e4e_encoders.py`` of the
official code) read 6 channels, the photo and the current reconstruction, both at 256 x 256, and drop
pSp's feature pyramid: every style head is a ``GradualStyleBlock(512, 512, 16)`` on the final 16 x 16
map. In config terms that is ``arch='backbone'`` (``coarse_ind = middle_ind = num_ws``, no laterals)::

    x [N, 6, 256, 256] = concat(photo, reconstruction)        (reconstruction face-pooled to 256)
      body 'ir'    : conv3x3 + BN + PReLU (256), IR-SE-50 stages [64x3, 128x4, 256x14, 512x3] -> [N, 512, 16, 16]
      body 'resnet': conv7x7 stride 2 + BN + PReLU (128), ResNet-34 BasicBlock stages
                     [64x3, 128x4, 256x6, 512x3] (first stage stride 1, no max-pool)  -> [N, 512, 16, 16]
      heads        : 18 x (4 stride-2 conv3x3 + LeakyReLU, 16 -> 1, then EqualLinear)  -> [N, 18, 512]
    'psp' (BackboneEncoder, ResNetBackboneEncoder):                 delta_i = head_i(c3)
    'e4e' (ProgressiveBackboneEncoder, ResNetProgressiveBackboneEncoder): delta_i = head_0(c3) + head_i(c3) (i>0)

The iterations (``utils/inference_utils.py`` ``run_on_batch`` and the ``forward`` of ``models/psp.py`` /
``e4e.py``): ``w_1 = latent_avg + E(concat(x, avg_image))`` with ``avg_image = face_pool(G(latent_avg))``,
then ``w_t = w_{t-1} + E(concat(x, face_pool(G(w_{t-1}))))``; ``face_pool`` is ``AdaptiveAvgPool2d(256)``.
:func:`stylekit.invert.refine.restyle_steps` runs exactly these, and the encoder area-pools its input to
256 (the face pool) when the size is a multiple of it.

The FFHQ models the ReStyle README publishes use the IR-SE-50 body (``restyle_psp_ffhq_encode.pt``:
BackboneEncoder; ``restyle_e4e_ffhq_encode.pt``: ProgressiveBackboneEncoder, the one ReStyle suggests
for editing); the other domains use the ResNet-34 body.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: ResNet-34's ``layer1..4``: [width, BasicBlocks].
RESNET34_STAGES = [[64, 3], [128, 4], [256, 6], [512, 3]]
#: IR-SE-50's four stages: [width, IR units].
IRSE50_STAGES = [[64, 3], [128, 4], [256, 14], [512, 3]]

#: ReStyle-e4e for StyleGAN2 FFHQ 1024 (``restyle_e4e_ffhq_encode.pt``, ProgressiveBackboneEncoder).
RESTYLE_E4E_FFHQ_CONFIG = {
    "mode": "e4e", "arch": "backbone", "body": "ir", "in_channels": 6, "input_size": 256, "stem_channels": 64,
    "stages": IRSE50_STAGES, "se": True, "se_reduction": 16, "num_ws": 18, "w_dim": 512, "head_channels": 512,
    "coarse_ind": 18, "middle_ind": 18,
}
#: ReStyle-pSp for StyleGAN2 FFHQ 1024 (``restyle_psp_ffhq_encode.pt``, BackboneEncoder).
RESTYLE_PSP_FFHQ_CONFIG = {**RESTYLE_E4E_FFHQ_CONFIG, "mode": "psp"}
#: ReStyle's ResNet-34 backbone (ResNet[Progressive]BackboneEncoder), e.g. for cars / churches / AFHQ.
RESTYLE_RESNET34_CONFIG = {**RESTYLE_E4E_FFHQ_CONFIG, "body": "resnet", "stages": RESNET34_STAGES, "se": False}

#: The official ``encoder_type`` names: (mode, arch, body).
ENCODER_TYPES = {
    "GradualStyleEncoder": ("psp", "fpn", "ir"),
    "Encoder4Editing": ("e4e", "fpn", "ir"),
    "ResNetGradualStyleEncoder": ("psp", "fpn", "resnet"),
    "BackboneEncoder": ("psp", "backbone", "ir"),
    "ProgressiveBackboneEncoder": ("e4e", "backbone", "ir"),
    "ResNetBackboneEncoder": ("psp", "backbone", "resnet"),
    "ResNetProgressiveBackboneEncoder": ("e4e", "backbone", "resnet"),
}


class BasicBlock(torch.nn.Module):
    """torchvision's ResNet ``BasicBlock``: ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``.

    ``[N, in_ch, H, W]`` -> ``[N, depth, H / stride, W / stride]``; ``conv1`` (3x3) carries the stride; the
    shortcut is a strided 1x1 conv + BN when the shape changes, else the identity.
    """

    def __init__(self, in_ch: int, depth: int, stride: int):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(in_ch, depth, 3, stride, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(depth)
        self.conv2 = torch.nn.Conv2d(depth, depth, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(depth)
        self.shortcut = None
        if stride != 1 or in_ch != depth:
            self.shortcut = torch.nn.Sequential()
            self.shortcut.add_module("conv", torch.nn.Conv2d(in_ch, depth, 1, stride, bias=False))
            self.shortcut.add_module("bn", torch.nn.BatchNorm2d(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        short = x if self.shortcut is None else self.shortcut(x)
        r = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(r + short)


def resnet_stem(in_channels: int, channels: int) -> torch.nn.Sequential:
    """ReStyle's ResNet stem: conv7x7 stride 2 (no bias) + BN + PReLU.

    ``[N, in_channels, S, S]`` -> ``[N, channels, S/2, S/2]``."""
    stem = torch.nn.Sequential()
    stem.add_module("conv", torch.nn.Conv2d(in_channels, channels, 7, 2, 3, bias=False))
    stem.add_module("bn", torch.nn.BatchNorm2d(channels))
    stem.add_module("act", torch.nn.PReLU(channels))
    return stem


def face_pool(x: torch.Tensor, size: int) -> torch.Tensor:
    """``[N, C, H, W]`` -> ``[N, C, size, size]``: ReStyle's ``AdaptiveAvgPool2d(size)`` when ``H`` and ``W``
    are multiples of ``size`` (area averaging), else bilinear (antialiased when shrinking)."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    if x.shape[-1] % size == 0 and x.shape[-2] % size == 0:
        return F.adaptive_avg_pool2d(x, size)
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=x.shape[-1] > size)
