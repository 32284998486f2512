"""Losses for inversion: pixel MSE, perceptual distance, Gram (style) loss, noise regularisation, masks.

All images are ``[N, 3, H, W]`` float32 in ``[-1, 1]``; masks are ``[1 or N, 1, H, W]`` in ``[0, 1]``
with 1 = "this pixel counts" and 0 = "ignore it".

Perceptual distances (:func:`build_perceptual`), best first when ``kind='auto'``:

- ``'lpips-vgg'``: LPIPS v0.1 with the VGG16 backbone (Zhang et al. 2018), as in NVIDIA's
  projector and PTI. It needs the ``lpips`` package (which ships the linear-layer weights) *and*
  torchvision's ImageNet VGG16 weights as a local file (``$STYLEKIT_VGG16``, torch hub's
  ``checkpoints/vgg16-397923af.pth``, or the registered ``vgg16`` perceptual artifact already in the
  Hub cache); the loss itself never downloads them.
- ``'toyfaces'``: the feature maps of the toyfaces attribute predictor shipped with stylekit
  (the registered predictor ``"toyfaces"``: ``load_predictor("toyfaces").features``), channel-normalised like LPIPS. It is
  trained on toy faces only, so it is the right offline choice there and a rough one elsewhere.
- ``'random-cnn'``: a fixed-seed, untrained 4-stage convolutional network (a VGG-like shape with
  ReLUs and average pooling); features of random CNNs still capture local structure and texture
  statistics (He, Wang & Hopcroft 2016), and this one needs no weights at all.
- ``'none'``: no perceptual term.

Every extractor has the same interface: ``features(x) -> list of [N, C, h, w]`` maps, and
``distance(x, y) -> [N]``. Masks follow Image2StyleGAN++: a masked perceptual or style loss compares
the features of ``mask * x`` and ``mask * y``, so pixels outside the mask cannot influence it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import registry, settings
from ..errors import InvalidArgumentError, StylekitError

PERCEPTUAL_KINDS = ("auto", "lpips-vgg", "toyfaces", "random-cnn", "none")
VGG16_FILENAME = "vgg16-397923af.pth"  # torchvision's ImageNet VGG16 weights
MAX_PERCEPTUAL_SIZE = 256  # larger images are area-downsampled before feature extraction (as NVIDIA's projector)


# ----------------------------------------------------------------------------------------------
# Pixel terms and masks


def masked_mse(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error per sample ``[N]``; with a mask, the mean over the masked pixels only."""
    diff = (x - y).square()
    if mask is None:
        return diff.mean(dim=[1, 2, 3])
    weight = mask.expand(x.shape[0], 1, *x.shape[2:])
    return (diff * weight).sum(dim=[1, 2, 3]) / (weight.sum(dim=[1, 2, 3]) * x.shape[1]).clamp_min(1e-8)


def prepare_mask(mask, size: int, *, device="cpu", name: str = "mask") -> torch.Tensor:
    """Turn a user mask into ``[1, 1, size, size]`` float32 in ``[0, 1]`` (1 = use this pixel).

    Accepts a tensor (``[H, W]``, ``[1, H, W]``, ``[1, 1, H, W]``, ``[3, H, W]`` ...), a numpy
    array or a PIL image (converted to grayscale; values > 1 are read as 0..255). A mask of another
    size is resized (bilinear) when its aspect ratio is square like the image; otherwise, or when
    it selects no pixel, :class:`InvalidArgumentError` says what to do.
    """
    import numpy as np

    if mask is None:
        raise InvalidArgumentError(f"{name} is None; pass an array or image with 1 where pixels count.")
    if hasattr(mask, "convert") and hasattr(mask, "size") and not isinstance(mask, torch.Tensor):
        mask = np.asarray(mask.convert("L"), dtype=np.float32)
    if not isinstance(mask, torch.Tensor):
        try:
            mask = torch.as_tensor(np.asarray(mask, dtype=np.float32))
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"{name} must be an image, array or tensor of numbers ({exc}).") from exc
    m = mask.detach().to(torch.float32)
    if m.ndim == 2:
        m = m[None, None]
    elif m.ndim == 3:
        # [C, H, W] (C <= 4) or [H, W, C]
        if m.shape[0] <= 4 and m.shape[-1] > 4:
            m = m.mean(dim=0, keepdim=True)[None]
        elif m.shape[-1] <= 4:
            m = m.mean(dim=-1)[None, None]
        else:
            raise InvalidArgumentError(f"{name} of shape {tuple(mask.shape)} is not a single mask; pass [H, W].")
    elif m.ndim == 4 and m.shape[0] == 1:
        m = m.mean(dim=1, keepdim=True)
    else:
        raise InvalidArgumentError(f"{name} must be [H, W] (or [1, 1, H, W]), got shape {tuple(mask.shape)}.")
    if not torch.isfinite(m).all():
        raise InvalidArgumentError(f"{name} contains NaN or infinite values.")
    if m.max() > 1.0:
        m = m / 255.0
    if m.min() < 0:
        raise InvalidArgumentError(f"{name} has negative values; use 0 (ignore) .. 1 (use).")
    h, w = m.shape[-2:]
    if (h, w) != (size, size):
        if h != w:
            raise InvalidArgumentError(
                f"{name} is {w}x{h} but the image is {size}x{size}: the aspect ratios differ, so it cannot be "
                f"resized to fit; draw the mask on the square, {size}x{size} image.")
        m = F.interpolate(m, size=(size, size), mode="bilinear", align_corners=False, antialias=h > size)
        m = m.clamp(0, 1)
    if float(m.sum()) <= 1e-6:
        raise InvalidArgumentError(f"{name} selects no pixel (it is all zero); mark the region to use with 1.")
    return m.to(device)


def gram_matrix(features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Gram matrix ``[N, C, C]`` of feature maps ``[N, C, h, w]``, normalised by ``C * (number of pixels)``.

    With a mask (``[1|N, 1, H, W]``, resized to ``h x w``), the features are weighted by it and the
    normalisation uses the mask's area instead of ``h * w``.
    """
    n, c, h, w = features.shape
    f = features
    area = torch.full((n,), float(h * w), device=features.device)
    if mask is not None:
        m = F.interpolate(mask, size=(h, w), mode="area") if mask.shape[-2:] != (h, w) else mask
        f = f * m
        area = m.expand(n, 1, h, w).sum(dim=[1, 2, 3]).clamp_min(1e-8)
    f = f.reshape(n, c, h * w)
    return (f @ f.transpose(1, 2)) / (c * area).reshape(n, 1, 1)


def style_loss(feats_x: list[torch.Tensor], feats_y: list[torch.Tensor], mask: torch.Tensor | None = None) -> torch.Tensor:
    """Gram-matrix (style) loss ``[N]``: mean over layers of ``mean((Gram(fx) - Gram(fy))^2)``. Zero iff equal Grams."""
    total = 0.0
    for fx, fy in zip(feats_x, feats_y):
        if fx.ndim != 4:
            continue
        gx, gy = gram_matrix(fx, mask), gram_matrix(fy, mask)
        total = total + (gx - gy).square().mean(dim=[1, 2])
    if isinstance(total, float):
        raise InvalidArgumentError("the style (Gram) loss needs spatial feature maps; this perceptual extractor has none.")
    return total / len(feats_x)


def noise_regularization(noise_maps: list[torch.Tensor]) -> torch.Tensor:
    """NVIDIA projector's noise regulariser: squared auto-correlation at lag 1, over a pyramid down to 8x8.

    ``noise_maps`` are ``[1, 1, H, W]``; returns a scalar. Zero for white noise in expectation; it
    grows when a map starts to carry image structure.
    """
    reg = 0.0
    for noise in noise_maps:
        v = noise
        while True:
            reg = reg + (v * torch.roll(v, shifts=1, dims=3)).mean().square()
            reg = reg + (v * torch.roll(v, shifts=1, dims=2)).mean().square()
            if v.shape[2] <= 8:
                break
            v = F.avg_pool2d(v, kernel_size=2)
    return reg if isinstance(reg, torch.Tensor) else torch.zeros([])


# ----------------------------------------------------------------------------------------------
# Perceptual extractors


def _normalize_channels(f: torch.Tensor) -> torch.Tensor:
    """Unit-normalise feature vectors along channels (LPIPS's ``normalize_tensor``)."""
    return f / (f.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)


def _shrink(x: torch.Tensor, max_size: int = MAX_PERCEPTUAL_SIZE) -> torch.Tensor:
    if x.shape[-1] > max_size:
        x = F.interpolate(x, size=(max_size, max_size), mode="area")
    return x


class PerceptualExtractor(torch.nn.Module):
    """Base class: ``features(x)`` gives feature maps; ``distance`` compares them (LPIPS-like)."""

    name = "none"

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def prepare(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Features of ``mask * x`` (Image2StyleGAN++ masking), ready for :meth:`compare`."""
        return self.features(x if mask is None else x * mask)

    def compare(self, feats_x: list[torch.Tensor], feats_y: list[torch.Tensor]) -> torch.Tensor:
        """Distance ``[N]``: mean over layers of the spatially averaged squared difference of unit-normalised features."""
        total = 0.0
        for fx, fy in zip(feats_x, feats_y):
            d = (_normalize_channels(fx) - _normalize_channels(fy)).square().sum(dim=1)  # [N, h, w] or [N]
            total = total + (d.flatten(1).mean(dim=1) if d.ndim > 1 else d)
        return total / max(1, len(feats_x))

    def distance(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Per-sample distance ``[N]`` between images ``x`` and ``y`` (``[N, 3, H, W]``, ``[-1, 1]``)."""
        return self.compare(self.prepare(x, mask), self.prepare(y, mask))


class RandomCNNFeatures(PerceptualExtractor):
    """A fixed, untrained CNN: 4 stages of two 3x3 convs + ReLU, average pooling between stages.

    Widths 32, 64, 96, 128; weights drawn once from ``torch.Generator().manual_seed(seed)`` with He
    initialisation, so every process gets the same network. Returns the four stage outputs.
    """

    name = "random-cnn"

    def __init__(self, seed: int = 0, widths=(32, 64, 96, 128)):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.convs = torch.nn.ModuleList()
        in_ch = 3
        for width in widths:
            for _ in range(2):
                conv = torch.nn.Conv2d(in_ch, width, 3, padding=1, padding_mode="reflect")
                with torch.no_grad():
                    conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * (2.0 / (in_ch * 9)) ** 0.5)
                    conv.bias.zero_()
                self.convs.append(conv)
                in_ch = width
        self.requires_grad_(False).eval()

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = _shrink(x)
        out = []
        for i, conv in enumerate(self.convs):
            x = F.relu(conv(x))
            if i % 2 == 1:
                out.append(x)
                if i + 1 < len(self.convs) and min(x.shape[-2:]) >= 2:
                    x = F.avg_pool2d(x, 2)
        return out


class LPIPSVGG(PerceptualExtractor):
    """LPIPS v0.1 (VGG16 backbone, learned linear layers) from the ``lpips`` package, weights loaded locally."""

    name = "lpips-vgg"

    def __init__(self, vgg_path: Path):
        super().__init__()
        import lpips  # noqa: PLC0415

        model = lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True, verbose=False)  # pnet_rand: no download
        state = _read_vgg16(vgg_path)
        slices = [model.net.slice1, model.net.slice2, model.net.slice3, model.net.slice4, model.net.slice5]
        loaded = 0
        for sl in slices:
            for idx, layer in sl.named_children():
                if isinstance(layer, torch.nn.Conv2d):
                    layer.weight.data.copy_(state[f"features.{idx}.weight"])
                    layer.bias.data.copy_(state[f"features.{idx}.bias"])
                    loaded += 1
        if loaded != 13:
            raise RuntimeError(f"expected 13 VGG16 conv layers, loaded {loaded}")
        self.model = model.eval().requires_grad_(False)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = self.model.net.forward(self.model.scaling_layer(_shrink(x)))
        return list(outs)

    def compare(self, feats_x, feats_y):
        """LPIPS: per layer, the learned 1x1 linear layer on squared normalised differences, spatially averaged, summed."""
        total = 0.0
        for lin, fx, fy in zip(self.model.lins, feats_x, feats_y):
            d = (_normalize_channels(fx) - _normalize_channels(fy)).square()
            total = total + lin(d).mean(dim=[1, 2, 3])
        return total


class ToyfacesFeatures(PerceptualExtractor):
    """The toyfaces attribute predictor as a perceptual network.

    Its conv trunk's block outputs (spatial maps, used like LPIPS's VGG layers and by the Gram
    loss) plus its penultimate feature vector (``predictor.features``); inputs are resized to the
    predictor's 64x64 by the predictor itself.
    """

    name = "toyfaces"

    def __init__(self, predictor):
        super().__init__()
        self.predictor = predictor
        for p in predictor.parameters():
            p.requires_grad_(False)
        predictor.eval()

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        pred = self.predictor
        trunk = getattr(pred, "trunk", None)
        if not isinstance(trunk, torch.nn.Sequential) or not hasattr(pred, "_prepare") or not hasattr(pred, "fc"):
            out = pred.features(x)
            return [out] if isinstance(out, torch.Tensor) else list(out)
        h = pred._prepare(x)
        maps = []
        for block in trunk:
            h = block(h)
            if h.ndim == 4:
                maps.append(h)
        vector = F.silu(pred.fc(h.flatten(1)))
        return maps + [vector]


def find_vgg16_weights() -> Path | None:
    """The local VGG16 weights for LPIPS, if any, without downloading: ``$STYLEKIT_VGG16``, torch hub's
    ``checkpoints/vgg16-397923af.pth``, or the registered ``vgg16`` perceptual artifact in the Hub cache."""
    override = settings.vgg16_override()
    if override is not None and override.is_file():
        return override
    try:
        candidate = Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILENAME
    except Exception:  # noqa: BLE001 - an unusual torch config must not break inversion
        candidate = None
    if candidate is not None and candidate.is_file():
        return candidate
    try:
        return registry.artifact_path("vgg16", "perceptual", local_files_only=True)
    except StylekitError:
        return None


def _read_vgg16(path: Path) -> dict:
    """``features.{i}.weight`` / ``.bias`` tensors of a torchvision-layout VGG16 file (.pth or .safetensors)."""
    if path.suffix == ".safetensors":
        from ..checkpoints.tagged import read_tagged

        return read_tagged(path, fmt=None, kind="VGG16 weights")[1]
    return torch.load(path, map_location="cpu", weights_only=True)


_CACHE: dict[tuple, PerceptualExtractor | None] = {}
log = logging.getLogger("stylekit.invert")


def build_perceptual(kind: str = "auto", *, device="cpu") -> tuple[PerceptualExtractor | None, str]:
    """Build the perceptual extractor ``kind`` (see the module docstring); returns ``(extractor, name)``.

    ``'auto'`` tries ``'lpips-vgg'``, then ``'toyfaces'``, then ``'random-cnn'``; falling back past
    ``'lpips-vgg'`` is logged as a warning (once per process and kind) with the reason. An explicit kind
    whose weights are missing raises :class:`InvalidArgumentError` saying why. ``'none'`` gives
    ``(None, 'none')``. Extractors are cached per (kind, device); a kind that failed is tried again next time.
    """
    if kind not in PERCEPTUAL_KINDS:
        raise InvalidArgumentError(f"perceptual must be one of {PERCEPTUAL_KINDS}, not {kind!r}.")
    if kind == "none":
        return None, "none"
    order = ("lpips-vgg", "toyfaces", "random-cnn") if kind == "auto" else (kind,)
    reasons = []
    for candidate in order:
        key = (candidate, str(device))
        if key in _CACHE:
            return _fell_back(_CACHE[key], reasons)
        ext, reason = _try_build(candidate)  # a failure is not cached: weights fetched later are found
        if ext is not None:
            _CACHE[key] = ext.to(device)
            return _fell_back(_CACHE[key], reasons)
        reasons.append(f"{candidate}: {reason}")
    raise InvalidArgumentError(f"the perceptual loss {kind!r} is not available here ({'; '.join(reasons)}); "
                               "use perceptual='auto' to fall back automatically.")


_WARNED: set = set()


def _fell_back(ext: PerceptualExtractor, reasons: list[str]) -> tuple[PerceptualExtractor, str]:
    """``(ext, ext.name)``; when better kinds failed first (``reasons``), say so once in the log."""
    if reasons and ext.name not in _WARNED:
        _WARNED.add(ext.name)
        log.warning("perceptual loss: using %r because %s", ext.name, "; ".join(reasons))
    return ext, ext.name


def _try_build(kind: str) -> tuple[PerceptualExtractor | None, str]:
    if kind == "random-cnn":
        return RandomCNNFeatures(), ""
    if kind == "lpips-vgg":
        path = find_vgg16_weights()
        if path is None:
            return None, (f"torchvision's VGG16 weights ({VGG16_FILENAME}) are not in torch hub's cache and "
                          "$STYLEKIT_VGG16 is not set")
        try:
            return LPIPSVGG(path), ""
        except Exception as exc:  # noqa: BLE001 - any failure means "not available", and we say why
            return None, f"could not build LPIPS ({type(exc).__name__}: {exc})"
    if kind == "toyfaces":
        from ..checkpoints.predictor import load_predictor  # noqa: PLC0415

        try:
            predictor = load_predictor("toyfaces")
        except Exception as exc:  # noqa: BLE001 - missing weights and the like
            return None, f"the toyfaces predictor could not be loaded ({type(exc).__name__}: {exc})"
        return ToyfacesFeatures(predictor), ""
    return None, "unknown"


# ----------------------------------------------------------------------------------------------
# The reconstruction objective


class ReconstructionLoss:
    """``pixel_weight * MSE + perceptual_weight * perceptual + style_weight * Gram`` against fixed targets.

    Args:
        target: ``[N, 3, R, R]`` in ``[-1, 1]``: the pixel (and by default perceptual) target.
        extractor: a :class:`PerceptualExtractor` or None (no perceptual / style terms).
        pixel_mask, perceptual_mask: ``[1|N, 1, R, R]`` in ``[0, 1]`` or None (every pixel counts).
        perceptual_target: another image for the perceptual term (default ``target``).
        style_target, style_mask: image and mask for the Gram-matrix style term (Image2StyleGAN++).

    Calling it on images ``[N, 3, R, R]`` returns ``(loss [N], terms)`` with ``terms`` a dict of
    per-sample ``[N]`` tensors: ``mse``, ``perceptual``, ``style`` (those that are active).
    The targets' features are computed once, here.
    """

    def __init__(self, target: torch.Tensor, *, extractor: PerceptualExtractor | None = None,
                 pixel_weight: float = 1.0, perceptual_weight: float = 1.0, style_weight: float = 0.0,
                 pixel_mask: torch.Tensor | None = None, perceptual_mask: torch.Tensor | None = None,
                 perceptual_target: torch.Tensor | None = None, style_target: torch.Tensor | None = None,
                 style_mask: torch.Tensor | None = None):
        self.target = target.detach()
        self.extractor = extractor
        self.pixel_weight, self.perceptual_weight, self.style_weight = pixel_weight, perceptual_weight, style_weight
        self.pixel_mask, self.perceptual_mask, self.style_mask = pixel_mask, perceptual_mask, style_mask
        self.perc_feats = self.style_feats = None
        with torch.no_grad():
            if extractor is not None and perceptual_weight > 0:
                ptarget = self.target if perceptual_target is None else perceptual_target.detach()
                self.perc_feats = [f.detach() for f in extractor.prepare(ptarget, perceptual_mask)]
            if extractor is not None and style_weight > 0:
                starget = self.target if style_target is None else style_target.detach()
                self.style_feats = [f.detach() for f in extractor.prepare(starget, style_mask)]
        if style_weight > 0 and extractor is None:
            raise InvalidArgumentError("the style (Gram) loss needs a perceptual feature extractor; "
                                       "do not pass perceptual='none' together with a style weight.")

    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        terms: dict[str, torch.Tensor] = {}
        loss = 0.0
        if self.pixel_weight > 0:
            terms["mse"] = masked_mse(images, self.target, self.pixel_mask)
            loss = loss + self.pixel_weight * terms["mse"]
        if self.perc_feats is not None:
            feats = self.extractor.prepare(images, self.perceptual_mask)
            terms["perceptual"] = self.extractor.compare(feats, self.perc_feats)
            loss = loss + self.perceptual_weight * terms["perceptual"]
        if self.style_feats is not None:
            feats = self.extractor.prepare(images, self.style_mask)
            terms["style"] = style_loss(feats, self.style_feats)
            loss = loss + self.style_weight * terms["style"]
        if not isinstance(loss, torch.Tensor):
            raise InvalidArgumentError("every loss weight is zero; give the pixel or perceptual term a positive weight.")
        return loss, terms


def reconstruction_loss(images: torch.Tensor, targets: torch.Tensor, *, extractor: PerceptualExtractor | None,
                        pixel_weight: float = 1.0, perceptual_weight: float = 1.0) -> tuple[torch.Tensor, dict]:
    """Batch form for training: ``(loss [N], terms)`` of MSE + perceptual between two image batches."""
    return ReconstructionLoss(targets, extractor=extractor, pixel_weight=pixel_weight,
                              perceptual_weight=perceptual_weight)(images)
