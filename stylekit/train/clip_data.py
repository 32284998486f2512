"""The data of CLIP training on the toyfaces world: faces, captions with hard negatives, a ring buffer.

Every image gets a *fresh* caption from :func:`stylekit.toyfaces.captions.caption` (new template and
synonyms each time), optionally wrapped in a generic template, and *hard negative* captions (as in
NegCLIP): the same face's caption with one binary attribute flipped, drawn with the same random
choices, and optionally one with the expression mirrored.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..toyfaces.attributes import BINARY_ATTRIBUTES, sample_attributes
from ..toyfaces.captions import CALM_SMILE, caption
from ..toyfaces.latents import z_to_attributes
from ..toyfaces.renderer import render_batch

__all__ = ["face_at", "mirrored_smile", "captions_with_negatives", "RingBuffer", "fresh_images"]


def face_at(attrs: dict[str, np.ndarray], i: int) -> dict[str, float]:
    """Face ``i`` of an attribute batch (name -> ``[N]`` array) as a dict of floats."""
    return {k: float(v[i]) for k, v in attrs.items()}


def mirrored_smile(smile: float, rng: np.random.Generator) -> float:
    """The expression "opposite" to ``smile`` for a hard negative: a smile becomes a frown and back;
    a neutral face (|smile| <= CALM_SMILE, "calm") becomes a clear smile or frown at random."""
    if abs(smile) > CALM_SMILE:
        return -float(np.sign(smile)) * max(0.4, abs(smile))
    return 0.7 if rng.random() < 0.5 else -0.7


def captions_with_negatives(attrs: list[dict[str, float]], rng: np.random.Generator, template_prob: float,
                            templates: Sequence[str], num_negatives: int = 1,
                            smile_negative: bool = False) -> tuple[list[str], list[list[str]]]:
    """A fresh caption per face, and captions of the same face with one binary attribute flipped.

    For each face, ``num_negatives`` distinct binary attributes (all of them when it is >= their
    number) are flipped one at a time; with ``smile_negative`` one more negative has the expression
    mirrored (smiling <-> frowning, see :func:`mirrored_smile`). Every caption of a face uses the
    same random choices (same child seed, same template), so a negative differs from the positive
    only where the changed attribute changes the words; negatives that come out identical to the
    positive (the caption did not mention the attribute) are dropped.

    Returns:
        (positives ``[N]``, negatives: per face a list of 0..num_negatives (+1) strings).
    """
    positives: list[str] = []
    negatives: list[list[str]] = []
    k = min(max(0, num_negatives), len(BINARY_ATTRIBUTES))
    for a in attrs:
        child = int(rng.integers(0, 2**62))
        flips = [BINARY_ATTRIBUTES[i] for i in rng.permutation(len(BINARY_ATTRIBUTES))[:k]]
        template = templates[int(rng.integers(len(templates)))] if rng.random() < template_prob else "{}"
        pos = template.format(caption(a, np.random.default_rng(child)))
        negs: list[str] = []
        changed = []
        for flip in flips:
            flipped = dict(a)
            flipped[flip] = 0.0 if a[flip] >= 0.5 else 1.0
            changed.append(flipped)
        if smile_negative:
            changed.append(dict(a, smile=mirrored_smile(a["smile"], rng)))
        for flipped in changed:
            neg = template.format(caption(flipped, np.random.default_rng(child)))
            if neg != pos and neg not in negs:
                negs.append(neg)
        positives.append(pos)
        negatives.append(negs)
    return positives, negatives


class RingBuffer:
    """Recent renders (float16 ``[capacity, 3, S, S]``) with their attributes; ``sample`` draws with replacement."""

    def __init__(self, capacity: int, size: int):
        self.images = torch.zeros(capacity, 3, size, size, dtype=torch.float16)
        self.attrs: list[dict[str, float] | None] = [None] * capacity
        self.count = 0
        self.head = 0

    def add(self, images: torch.Tensor, attrs: list[dict[str, float]]) -> None:
        cap = self.images.shape[0]
        for k in range(images.shape[0]):
            self.images[self.head] = images[k].to(torch.float16)
            self.attrs[self.head] = attrs[k]
            self.head = (self.head + 1) % cap
            self.count = min(self.count + 1, cap)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[torch.Tensor, list[dict[str, float]]]:
        idx = rng.integers(0, self.count, size=n)
        return self.images[torch.from_numpy(idx)].float(), [self.attrs[i] for i in idx]


def fresh_images(n: int, rng: np.random.Generator, size: int, balanced: bool = False, *, generator=None,
                 generator_fraction: float = 0.0) -> tuple[torch.Tensor, list[dict[str, float]]]:
    """``n`` new images ``[n, 3, size, size]`` and their attributes.

    Renders (binaries 50/50 when ``balanced``), except that a ``generator_fraction`` share (rounded
    stochastically) are samples of ``generator``, a toyfaces StyleGAN trained with labelled latents
    (:mod:`stylekit.train.supervised`), with the attributes their latents encode
    (``z_to_attributes(z)``; the prior's rates, not balanced) — so the CLIP also learns the soft
    look of GAN samples, which it labels for InterFaceGAN.
    """
    n_gen = 0
    if generator is not None and generator_fraction > 0:
        share = n * generator_fraction
        n_gen = min(n, int(share) + int(rng.random() < share - int(share)))
    attrs = sample_attributes(n - n_gen, rng=rng)
    if balanced:
        for name in BINARY_ATTRIBUTES:
            attrs[name] = (rng.random(n - n_gen) < 0.5).astype(np.float32)
    seeds = rng.integers(0, 2**31 - 1, size=n - n_gen)
    images, faces = render_batch(attrs, size=size, seeds=seeds), [face_at(attrs, i) for i in range(n - n_gen)]
    if n_gen:
        z = torch.from_numpy(rng.standard_normal((n_gen, generator.z_dim))).float()
        with torch.no_grad():
            samples = generator.synthesis(generator.mapping(z.to(generator.device), None), noise_mode="const")
        samples = samples.float().cpu()
        if samples.shape[-1] != size:
            samples = F.interpolate(samples, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        gattrs = z_to_attributes(z)
        images = torch.cat([images, samples.clamp(-1, 1)])
        faces = faces + [face_at(gattrs, i) for i in range(n_gen)]
    return images, faces
