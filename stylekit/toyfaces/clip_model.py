"""The toyfaces CLIP: an open_clip architecture of our own, and its held-out zero-shot evaluation.

Architecture (``weights/toyfaces-clip.json``, registered with ``open_clip.add_model_config`` so
that ``open_clip.create_model("toyfaces-clip", pretrained=<safetensors>)`` builds it like any real
CLIP):

- image tower: open_clip's ``ModifiedResNet`` (the CLIP ResNet: 3-conv stem, anti-aliased
  bottlenecks, attention pooling) at 128x128 input (64 px renders are enlarged 2x), width 16, one
  bottleneck per stage;
- text tower: a 2-layer causal transformer of width 64 (4 heads) over open_clip's default BPE
  tokenizer, context length 40; embedding size 128.

It is trained by :mod:`stylekit.train.clip` (``python -m stylekit.train clip``);
:func:`zero_shot_accuracy` is the evaluation reported in ``weights/clip.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from stylekit.augment import augment
from stylekit.clip_backend import register_open_clip_config
from stylekit.errors import InvalidArgumentError

__all__ = ["OPEN_CLIP_NAME", "MODEL_CONFIG", "config_path", "create_untrained", "zero_shot_accuracy", "NEGATED_PROMPTS",
           "HELDOUT_PROMPTS", "FUNCTION_WORDS"]

#: The name the architecture is registered under in open_clip.
OPEN_CLIP_NAME = "toyfaces-clip"

#: The open_clip model config (also written to ``weights/toyfaces-clip.json``, the file the registry
#: names and :func:`create_untrained` / ``load_clip("toyfaces")`` register with open_clip).
MODEL_CONFIG: dict = {
    "embed_dim": 128,
    "vision_cfg": {"image_size": 128, "layers": [1, 1, 1, 1], "width": 16, "head_width": 32},
    "text_cfg": {"context_length": 40, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 2},
}

#: Prompts that name the *absence* of each binary attribute in the captions' own words (the class
#: prompts of the "positive vs negated" zero-shot evaluation). The captions have no wording for
#: "not red", so the other class of red hair is the prompt set of the other hair colours (their
#: embeddings averaged, see :meth:`stylekit.clip_backend.ClipModel.text_embedding`).
NEGATED_PROMPTS: dict[str, str | tuple[str, ...]] = {
    "red_hair": ("a face with black hair", "a face with brown hair", "a face with blond hair"),
    "mouth_open": "a face with a closed mouth",
    "eyes_open": "a face with closed eyes",
    "glasses": "a face without glasses",
    "beard": "a clean-shaven face",
}

#: Class prompts in words the CLIP never saw in training: ``(positive, other class)`` per binary
#: attribute and smile, for the held-out-phrasing zero-shot accuracy (``prompts="heldout"``). No
#: content word (anything but :data:`FUNCTION_WORDS`) occurs in the captions' templates and word
#: lists (:mod:`stylekit.toyfaces.captions`) or in the training templates ("a photo of {}."), and none
#: contains a caption word of four letters or more ("hairy" would contain "hair"); the subject is
#: "a kid", never "a face". open_clip's BPE still tokenises the new words, so these measure how far
#: the text tower generalises beyond its vocabulary, not how well it knows the world.
HELDOUT_PROMPTS: dict[str, tuple[str, str | tuple[str, ...]]] = {
    "red_hair": ("a kid with a carrot mop",
                 ("a kid with an ebony mop", "a kid with a chocolate mop", "a kid with a flaxen mop")),
    "mouth_open": ("a kid with parted lips", "a kid with sealed lips"),
    "eyes_open": ("a kid who is awake", "a kid who is asleep"),
    "glasses": ("a kid wearing specs", "a kid wearing no specs"),
    "beard": ("a kid sporting whiskers", "a kid sporting no whiskers"),
    "smile": ("a joyful kid", "a miserable kid"),
}

#: The words a held-out phrasing may share with the captions: articles, prepositions, negation.
FUNCTION_WORDS = frozenset({"a", "an", "the", "of", "with", "without", "no", "not", "and", "who", "is"})


def config_path() -> Path:
    """The open_clip config file of the toyfaces CLIP (``weights/toyfaces-clip.json``), as registered."""
    from stylekit import registry

    return registry.extra_file(registry.resolve("toyfaces", "clip"), "open_clip_config")


def create_untrained(device="cpu", seed: int = 0) -> torch.nn.Module:
    """A randomly initialised toyfaces CLIP built by ``open_clip.create_model`` (for training)."""
    import logging

    import open_clip

    register_open_clip_config(config_path())
    torch.manual_seed(seed)
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)  # open_clip warns that no pretrained weights were loaded: intended
    try:
        return open_clip.create_model(OPEN_CLIP_NAME, device=torch.device(device))
    finally:
        logger.setLevel(level)


def _render(attrs: dict[str, np.ndarray], size: int, seeds: np.ndarray) -> torch.Tensor:
    from .renderer import render_batch

    return render_batch(attrs, size=size, seeds=seeds)


# ----------------------------------------------------------------------------------------------
# Evaluation


def zero_shot_accuracy(clip, *, per_class: int = 200, seed: int = 1234, prompts: str = "neutral",
                       attributes: Sequence[str] | None = None, size: int = 64, batch: int = 100,
                       augment_strength: float = 0.0) -> dict[str, float]:
    """Held-out zero-shot accuracy of a CLIP on fresh, balanced renders, per binary attribute.

    For each binary attribute ``a``: ``per_class`` faces with ``a = 1`` and ``per_class`` with
    ``a = 0`` (every other attribute drawn from the usual prior, with a seed stream that training
    never uses), rendered at ``size``. ``"smile"`` may be listed too: smiles (smile uniform in
    ``[0.4, 1]``) against frowns (``[-1, -0.4]``), "a smiling face" against "a face" (``"neutral"``)
    or "a frowning face" (``"negated"``). A face is labelled positive when
    ``clip.zero_shot_scores(images, positive, other) > 0.5`` (i.e. the positive prompt is the more
    similar of the two, each averaged over ``clip.templates``). Accuracy is the fraction labelled
    correctly over the balanced ``2 * per_class`` faces (chance = 0.5).

    Args:
        clip: a :class:`stylekit.clip_backend.ClipModel`.
        prompts: ``"neutral"``: positive vs neutral prompt of ``attribute_prompts()``
            (``"a face with glasses"`` vs ``"a face"``); ``"negated"``: positive vs
            :data:`NEGATED_PROMPTS` (``"a face without glasses"``); ``"heldout"``: both classes in
            words no training caption uses, :data:`HELDOUT_PROMPTS` (``"a kid wearing specs"`` vs
            ``"a kid wearing no specs"``).
        augment_strength: apply :func:`augment` to the renders first (robustness check).

    Returns:
        dict attribute -> accuracy in ``[0, 1]``.
    """
    from .attributes import BINARY_ATTRIBUTES, sample_attributes
    from .captions import attribute_prompts

    if prompts not in ("neutral", "negated", "heldout"):
        raise InvalidArgumentError("prompts must be 'neutral', 'negated' or 'heldout'.")
    pairs = attribute_prompts()
    names = list(attributes) if attributes is not None else list(BINARY_ATTRIBUTES)
    out: dict[str, float] = {}
    gen = torch.Generator().manual_seed(seed)
    pairs["smile"] = ("a smiling face", "a face")
    negated = dict(NEGATED_PROMPTS, smile="a frowning face")
    for k, name in enumerate(names):
        if name not in pairs:
            raise InvalidArgumentError(f"zero-shot accuracy is defined for the binary attributes and 'smile', "
                                       f"not {name!r}.")
        pos, neutral = pairs[name]
        other = neutral if prompts == "neutral" else negated[name]
        if prompts == "heldout":
            pos, other = HELDOUT_PROMPTS[name]
        attrs = sample_attributes(2 * per_class, rng=np.random.default_rng([seed, k, 7]))
        labels = np.zeros(2 * per_class, dtype=np.float32)
        labels[:per_class] = 1.0
        if name == "smile":  # smiles vs frowns
            magnitude = np.random.default_rng([seed, k, 8]).uniform(0.4, 1.0, 2 * per_class).astype(np.float32)
            attrs[name] = np.where(labels > 0, magnitude, -magnitude)
        else:
            attrs[name] = labels.copy()
        correct = 0
        with torch.no_grad():
            for i in range(0, 2 * per_class, batch):
                part = {a: v[i:i + batch] for a, v in attrs.items()}
                imgs = _render(part, size, np.arange(i, i + len(part[name])) + 1_000_000 * (k + 1))
                if augment_strength > 0:
                    imgs = augment(imgs, gen, strength=augment_strength)
                scores = clip.zero_shot_scores(imgs, pos, other).cpu().numpy()
                correct += int(((scores > 0.5) == (labels[i:i + batch] >= 0.5)).sum())
        out[name] = correct / (2 * per_class)
    return out
