"""The toyfaces CLIP: an open_clip architecture of our own, and the contrastive loop that trains it.

Architecture (``weights/toyfaces-clip.json``, registered with ``open_clip.add_model_config`` so
that ``open_clip.create_model("toyfaces-clip", pretrained=<safetensors>)`` builds it like any real
CLIP):

- image tower: open_clip's ``ModifiedResNet`` (the CLIP ResNet: 3-conv stem, anti-aliased
  bottlenecks, attention pooling) at 64x64 input, width 16, one bottleneck per stage;
- text tower: a 2-layer causal transformer of width 64 (4 heads) over open_clip's default BPE
  tokenizer, context length 40; embedding size 128.

Training (:func:`train_clip`) is plain CLIP on an endless stream of renders:

- every step renders ``fresh_per_step`` new faces with random attributes (binary ones 50/50) and fills the rest of
  the batch from a ring buffer of recent renders; every image gets a *fresh* caption from
  :func:`stylekit.toyfaces.captions.caption` (new template and synonyms each time), half of them
  wrapped in a generic template ("a photo of {}." ...) and a fresh augmentation (small affine
  jitter, colour jitter, blur by down/up-sampling, pixel noise) so that it also reads GAN samples;
- the loss is the symmetric InfoNCE of CLIP with a learned temperature, plus *hard negative*
  captions (as in NegCLIP): for each image, the captions of the same face with one binary
  attribute flipped (all five, one at a time, drawn with the same random choices as the true
  caption). They join the image->text candidates, and each image also gets a softmax over {its
  caption, its flipped captions}. Without them the towers learn the easy global cues (hair,
  background and skin colour) first and the small ones (glasses, eyes, mouth) far too slowly for
  a CPU budget; optionally (``smile_negative``) one more negative with the expression mirrored
  (smiling <-> frowning), and (``smile_weight``) a logistic smile-vs-frown term on the auxiliary
  attribute head, without which neither tower ever picked up the mouth's curvature;
- AdamW (peak 5e-4; 2e-3 stalled), linear warm-up then cosine decay, one CPU thread
  (``threads``); a checkpoint every ``checkpoint_every`` steps lets an interrupted run resume.

:func:`zero_shot_accuracy` is the evaluation reported in ``weights/clip.md``.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from stylekit.augment import augment
from stylekit.errors import CheckpointError, InvalidArgumentError
from stylekit.progress import no_progress

from .attributes import ATTRIBUTES

__all__ = [
    "OPEN_CLIP_NAME", "MODEL_CONFIG", "TrainConfig", "shipped_config_path", "shipped_weights_path",
    "register_toyfaces_clip", "create_untrained", "augment", "train_clip", "zero_shot_accuracy",
    "save_clip_weights", "NEGATED_PROMPTS",
]

#: The name the architecture is registered under in open_clip.
OPEN_CLIP_NAME = "toyfaces-clip"

_WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

#: The open_clip model config (also written to ``weights/toyfaces-clip.json``, which is what
#: :func:`register_toyfaces_clip` registers).
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


def shipped_config_path() -> Path:
    """``stylekit/toyfaces/weights/toyfaces-clip.json``: the open_clip config of the toyfaces CLIP."""
    return _WEIGHTS_DIR / f"{OPEN_CLIP_NAME}.json"


def shipped_weights_path() -> Path:
    """``stylekit/toyfaces/weights/clip.safetensors``: the trained weights shipped in the package."""
    return _WEIGHTS_DIR / "clip.safetensors"


def register_toyfaces_clip() -> str:
    """Register the toyfaces CLIP config with open_clip (idempotent) and return its open_clip name."""
    import open_clip

    if OPEN_CLIP_NAME not in open_clip.list_models():
        path = shipped_config_path()
        if not path.is_file():
            raise CheckpointError(
                f"The toyfaces CLIP config {path} is missing; reinstall stylekit (it ships with the package).")
        open_clip.add_model_config(path)
        if OPEN_CLIP_NAME not in open_clip.list_models():
            raise CheckpointError(f"open_clip did not accept the toyfaces CLIP config {path}.")
    return OPEN_CLIP_NAME


def create_untrained(device="cpu", seed: int = 0) -> torch.nn.Module:
    """A randomly initialised toyfaces CLIP built by ``open_clip.create_model`` (for training)."""
    import logging

    import open_clip

    register_toyfaces_clip()
    torch.manual_seed(seed)
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)  # open_clip warns that no pretrained weights were loaded: intended
    try:
        return open_clip.create_model(OPEN_CLIP_NAME, device=torch.device(device))
    finally:
        logger.setLevel(level)


# ----------------------------------------------------------------------------------------------
# Data: attributes, captions, hard negatives


def _one(attrs: dict[str, np.ndarray], i: int) -> dict[str, float]:
    return {k: float(v[i]) for k, v in attrs.items()}


def _mirrored_smile(smile: float, rng: np.random.Generator) -> float:
    """The expression "opposite" to ``smile`` for a hard negative: a smile becomes a frown and back;
    a neutral face (|smile| <= CALM_SMILE, "calm") becomes a clear smile or frown at random."""
    from .captions import CALM_SMILE

    if abs(smile) > CALM_SMILE:
        return -float(np.sign(smile)) * max(0.4, abs(smile))
    return 0.7 if rng.random() < 0.5 else -0.7


def _captions_with_negatives(attrs: list[dict[str, float]], rng: np.random.Generator, template_prob: float,
                             templates: Sequence[str], num_negatives: int = 1,
                             smile_negative: bool = False) -> tuple[list[str], list[list[str]]]:
    """A fresh caption per face, and captions of the same face with one binary attribute flipped.

    For each face, ``num_negatives`` distinct binary attributes (all of them when it is >= their
    number) are flipped one at a time; with ``smile_negative`` one more negative has the expression
    mirrored (smiling <-> frowning, see :func:`_mirrored_smile`). Every caption of a face uses the
    same random choices (same child seed, same template), so a negative differs from the positive
    only where the changed attribute changes the words; negatives that come out identical to the
    positive (the caption did not mention the attribute) are dropped.

    Returns:
        (positives ``[N]``, negatives: per face a list of 0..num_negatives (+1) strings).
    """
    from .attributes import BINARY_ATTRIBUTES
    from .captions import caption

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
            changed.append(dict(a, smile=_mirrored_smile(a["smile"], rng)))
        for flipped in changed:
            neg = template.format(caption(flipped, np.random.default_rng(child)))
            if neg != pos and neg not in negs:
                negs.append(neg)
        positives.append(pos)
        negatives.append(negs)
    return positives, negatives


# ----------------------------------------------------------------------------------------------
# Training


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`train_clip` (all recorded in the weights' metadata)."""

    steps: int = 600                 # optimiser steps
    batch_size: int = 64             # images (and captions) per step
    fresh_per_step: int = 32         # new renders per step; the rest come from the ring buffer
    buffer_size: int = 2048          # ring buffer of recent renders (re-captioned, re-augmented)
    lr: float = 5e-4                 # peak AdamW learning rate
    weight_decay: float = 0.05       # on matrices and convolution kernels only
    warmup: int = 40                 # linear warm-up steps
    hard_negatives: int = 5          # attribute-flipped captions per image (NegCLIP-style; 0: none)
    negatives_grad: bool = True      # backpropagate into the text tower through the negatives too
    balanced: bool = True            # train on 50/50 binary attributes (instead of the sampler's priors)
    aux_weight: float = 1.0          # auxiliary attribute loss on the image embedding (0: pure CLIP)
    hard_weight: float = 1.0         # weight of the per-image {caption vs its negatives} softmax
    smile_negative: bool = False     # one more hard negative: the caption with the expression mirrored
    smile_weight: float = 0.0        # aux head: extra smile-vs-frown logistic loss on the image embedding
    generator: str = ""              # also train on samples of this toyfaces generator ('' = renders only)
    generator_fraction: float = 0.0  # share of the fresh images that are generator samples
    template_prob: float = 0.5       # chance a caption is wrapped in a generic template
    augment_strength: float = 1.0    # see augment(); 0 disables (ramped up from 1/4 over the first half)
    size: int = 64                   # render size (the model's input size)
    seed: int = 0
    threads: int = 1                 # torch.set_num_threads (1 is ~6x faster than 2 on a busy 2-core box)
    checkpoint_every: int = 25
    eval_every: int = 100            # quick held-out zero-shot check (0: never)
    eval_per_class: int = 40
    init: str = ""                   # start from these weights (a clip.safetensors; '' = random init)
    templates: tuple = field(default=("a photo of {}.", "a picture of {}.", "an image of {}.", "a drawing of {}."))


def _param_groups(model: torch.nn.Module, weight_decay: float):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim < 2 or "token_embedding" in name or "positional_embedding" in name or "logit_scale" in name:
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))


def _render(attrs: dict[str, np.ndarray], size: int, seeds: np.ndarray) -> torch.Tensor:
    from .renderer import render_batch

    return render_batch(attrs, size=size, seeds=seeds)


class _RingBuffer:
    """Recent renders (float16 ``[capacity, 3, S, S]``) with their attributes."""

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


def _fresh(n: int, rng: np.random.Generator, size: int, balanced: bool = False, *, generator=None,
           generator_fraction: float = 0.0) -> tuple[torch.Tensor, list[dict[str, float]]]:
    """``n`` new images ``[n, 3, size, size]`` and their attributes.

    Renders (binaries 50/50 when ``balanced``), except that a ``generator_fraction`` share (rounded
    stochastically) are samples of ``generator``, a toyfaces StyleGAN trained with labelled latents
    (:mod:`stylekit.train.supervised`), with the attributes their latents encode
    (``z_to_attributes(z)``; the prior's rates, not balanced) — so the CLIP also learns the soft
    look of GAN samples, which it labels for InterFaceGAN.
    """
    from .attributes import BINARY_ATTRIBUTES, sample_attributes

    n_gen = 0
    if generator is not None and generator_fraction > 0:
        share = n * generator_fraction
        n_gen = min(n, int(share) + int(rng.random() < share - int(share)))
    attrs = sample_attributes(n - n_gen, rng=rng)
    if balanced:
        for name in BINARY_ATTRIBUTES:
            attrs[name] = (rng.random(n - n_gen) < 0.5).astype(np.float32)
    seeds = rng.integers(0, 2**31 - 1, size=n - n_gen)
    images, faces = _render(attrs, size, seeds), [_one(attrs, i) for i in range(n - n_gen)]
    if n_gen:
        from ..train.supervised import z_to_attributes

        z = torch.from_numpy(rng.standard_normal((n_gen, generator.z_dim))).float()
        with torch.no_grad():
            samples = generator.synthesis(generator.mapping(z.to(generator.device), None), noise_mode="const")
        samples = samples.float().cpu()
        if samples.shape[-1] != size:
            samples = F.interpolate(samples, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        gattrs = z_to_attributes(z)
        images = torch.cat([images, samples.clamp(-1, 1)])
        faces = faces + [_one(gattrs, i) for i in range(n_gen)]
    return images, faces


def _clip_loss(img: torch.Tensor, txt: torch.Tensor, neg: torch.Tensor | None, owner: torch.Tensor | None,
               scale: torch.Tensor, hard_weight: float = 1.0) -> tuple[torch.Tensor, float]:
    """CLIP's symmetric InfoNCE plus a hard-negative term.

    Args:
        img, txt: normalised image / positive-caption embeddings ``[N, D]`` (row i belongs together).
        neg: normalised hard-negative caption embeddings ``[M, D]``; ``owner[m]`` is the image whose
            flipped caption row m is. They join the image->text candidates of every image, and each
            image also gets a softmax over {its caption, its own negatives} weighted by ``hard_weight``.
        scale: the (exponentiated) logit scale.

    Returns:
        (loss, image->text top-1 accuracy among the in-batch captions).
    """
    n = img.shape[0]
    target = torch.arange(n)
    logits_t = scale * txt @ img.T                       # [N texts, N images]
    logits_pos = scale * img @ txt.T                     # [N images, N texts]
    if neg is None or neg.shape[0] == 0:
        loss = 0.5 * (F.cross_entropy(logits_pos, target) + F.cross_entropy(logits_t, target))
        return loss, float((logits_pos.argmax(1) == target).float().mean())
    logits_neg = scale * img @ neg.T                     # [N images, M negatives]
    loss = 0.5 * (F.cross_entropy(torch.cat([logits_pos, logits_neg], 1), target)
                  + F.cross_entropy(logits_t, target))
    if hard_weight > 0:
        own = owner[None, :] == target[:, None]          # [N, M]
        own_logits = torch.cat([logits_pos.diagonal()[:, None], logits_neg.masked_fill(~own, float("-inf"))], 1)
        loss = loss + hard_weight * F.cross_entropy(own_logits, torch.zeros(n, dtype=torch.long))
    acc = float((logits_pos.argmax(1) == target).float().mean())
    return loss, acc


def _attribute_loss(pred: torch.Tensor, attrs: list[dict[str, float]], smile_weight: float = 0.0) -> torch.Tensor:
    """Auxiliary loss on the image embedding. pred ``[N, A + 1]``.

    BCE on the binary attributes, MSE on the unit-scaled continuous ones (columns ``0..A-1``, in
    :data:`ATTRIBUTES` order), plus ``smile_weight`` times a logistic loss of column ``A`` on
    "smile > 0" over the faces whose expression has a word (|smile| > CALM_SMILE: smiling or frowning).
    The plain MSE alone never made the image tower encode the mouth's small curvature (a linear
    probe on the embedding read smiles vs frowns at chance); a classification term with its own
    weight does.
    """
    target = torch.tensor([[spec.to_unit(a[spec.name]) for spec in ATTRIBUTES] for a in attrs], dtype=torch.float32)
    binary = torch.tensor([spec.kind == "binary" for spec in ATTRIBUTES])
    body = pred[:, :len(ATTRIBUTES)]
    loss = (F.binary_cross_entropy_with_logits(body[:, binary], target[:, binary])
            + F.mse_loss(body[:, ~binary], target[:, ~binary]))
    if smile_weight > 0:
        smile = torch.tensor([a["smile"] for a in attrs], dtype=torch.float32)
        from .captions import CALM_SMILE

        worded = smile.abs() > CALM_SMILE
        if bool(worded.any()):
            loss = loss + smile_weight * F.binary_cross_entropy_with_logits(
                pred[worded, len(ATTRIBUTES)], (smile[worded] > 0).float())
    return loss


def save_clip_weights(model: torch.nn.Module, path: str | os.PathLike, *, metadata: dict | None = None,
                      dtype: torch.dtype = torch.float16) -> Path:
    """Write the model's state dict as safetensors (floats as ``dtype``) with the config in the metadata.

    The keys are open_clip's, so ``open_clip.create_model("toyfaces-clip", pretrained=path)`` loads it.
    """
    from safetensors.torch import save_file

    state = {k: (v.detach().to(dtype) if v.is_floating_point() else v.detach()).contiguous().cpu()
             for k, v in model.state_dict().items()}
    meta = {"format": "stylekit-toyfaces-clip", "open_clip_name": OPEN_CLIP_NAME,
            "open_clip_config": json.dumps(MODEL_CONFIG)}
    for k, v in (metadata or {}).items():
        meta[k] = v if isinstance(v, str) else json.dumps(v)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


def load_init_weights(model: torch.nn.Module, path: str | os.PathLike) -> list[str]:
    """Copy a toyfaces CLIP weights file into ``model`` (to fine-tune it, e.g. at a new input size).

    Every tensor must match by name and shape except the image tower's attention-pool positional
    embedding ``[1 + g*g, C]``, whose ``g x g`` grid is resized bicubically to the model's grid (the
    ResNet tower's grid is ``image_size / 32``). Returns the names of the resized tensors.
    """
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise InvalidArgumentError(f"init weights {path} not found: give the path of a clip.safetensors file.")
    src = load_file(str(path))
    dst = model.state_dict()
    missing = sorted(set(dst) - set(src))
    if missing:
        raise InvalidArgumentError(f"{path} is not a toyfaces CLIP weights file (missing {missing[:3]}...).")
    resized = []
    with torch.no_grad():
        for name, value in dst.items():
            other = src[name].to(value.dtype)
            if other.shape == value.shape:
                value.copy_(other)
            elif name.endswith("attnpool.positional_embedding") and other.shape[1] == value.shape[1]:
                g_src, g_dst = round((other.shape[0] - 1) ** 0.5), round((value.shape[0] - 1) ** 0.5)
                grid = other[1:].reshape(1, g_src, g_src, -1).permute(0, 3, 1, 2)
                grid = F.interpolate(grid, size=(g_dst, g_dst), mode="bicubic", align_corners=False)
                value.copy_(torch.cat([other[:1], grid.permute(0, 2, 3, 1).reshape(g_dst * g_dst, -1)]))
                resized.append(name)
            else:
                raise InvalidArgumentError(f"{path}: tensor {name} has shape {tuple(other.shape)}, the model "
                                           f"needs {tuple(value.shape)}; only the positional grid can be resized.")
    return resized


def train_clip(out: str | os.PathLike, config: TrainConfig | None = None, *,
               checkpoint: str | os.PathLike | None = None, resume: bool = True,
               progress: Callable[..., None] = no_progress, log: Callable[[str], None] | None = None) -> dict:
    """Train the toyfaces CLIP (from scratch, or fine-tune ``config.init``) and write its weights to ``out``.

    Args:
        out: destination ``.safetensors`` file.
        config: hyper-parameters (default :class:`TrainConfig`).
        checkpoint: training state file (default ``out`` + ``.ckpt.pt``), written every
            ``config.checkpoint_every`` steps; with ``resume`` an existing one is continued.
        progress: stylekit progress callback ``(step, total, message, **metrics)``.
        log: optional line logger (e.g. ``print``).

    Returns:
        a summary dict: steps, seconds, final loss, held-out zero-shot accuracies of the last check.
    """
    from .attributes import BINARY_ATTRIBUTES
    from .captions import attribute_prompts  # noqa: F401  (fail early if the world is incomplete)
    from stylekit.clip_backend import ClipModel

    import open_clip

    cfg = config or TrainConfig()
    if cfg.steps < 1 or cfg.batch_size < 2 or not 1 <= cfg.fresh_per_step <= cfg.batch_size:
        raise InvalidArgumentError("train_clip needs steps >= 1, batch_size >= 2 and 1 <= fresh_per_step <= batch_size.")
    log = log or (lambda s: None)
    out = Path(out)
    ckpt_path = Path(checkpoint) if checkpoint is not None else out.with_name(out.name + ".ckpt.pt")
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        model = create_untrained(seed=cfg.seed)
        model.train()
        tokenizer = open_clip.get_tokenizer(OPEN_CLIP_NAME)
        helper = ClipModel(model, tokenizer, name="toyfaces", pretrained=None, freeze=False)
        # Auxiliary attribute head on the image embedding (training aid only; not part of the CLIP).
        aux_head = torch.nn.Linear(MODEL_CONFIG["embed_dim"], len(ATTRIBUTES) + 1)
        groups = _param_groups(model, cfg.weight_decay)
        groups[0]["params"] = groups[0]["params"] + list(aux_head.parameters())
        opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)
        rng = np.random.default_rng(cfg.seed)
        gen = torch.Generator().manual_seed(cfg.seed)
        start, elapsed, history = 0, 0.0, []
        if resume and ckpt_path.is_file():
            state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
            if state.get("config") != _config_dict(cfg):
                raise InvalidArgumentError(
                    f"The checkpoint {ckpt_path} was made with other settings; delete it or pass resume=False.")
            model.load_state_dict(state["model"])
            aux_head.load_state_dict(state["aux_head"])
            opt.load_state_dict(state["optimizer"])
            rng.bit_generator.state = state["numpy_rng"]
            gen.set_state(state["torch_rng"])
            start, elapsed, history = state["step"], state["elapsed"], state["history"]
            log(f"resumed from {ckpt_path} at step {start} ({elapsed:.0f} s so far)")
        elif cfg.init:
            resized = load_init_weights(model, cfg.init)
            log(f"initialised from {cfg.init}" + (f" (resized: {', '.join(resized)})" if resized else ""))

        sampler = None
        if cfg.generator and cfg.generator_fraction > 0:
            from ..checkpoints.load import load_generator

            sampler = load_generator(cfg.generator, device="cpu").eval().requires_grad_(False)
            log(f"{cfg.generator_fraction:.0%} of the fresh images are samples of {cfg.generator}")
        buffer = _RingBuffer(cfg.buffer_size, cfg.size)
        t_fill = time.time()
        while buffer.count < min(cfg.buffer_size, max(cfg.batch_size * 4, 256)):
            imgs, attrs = _fresh(min(128, cfg.buffer_size - buffer.count), rng, cfg.size, cfg.balanced)
            buffer.add(imgs, attrs)
        log(f"filled buffer with {buffer.count} renders in {time.time() - t_fill:.1f} s")

        t0 = time.time() - elapsed
        loss_ema, acc_ema, last_eval = None, None, {}
        for step in range(start, cfg.steps):
            for g in opt.param_groups:
                g["lr"] = _lr_at(step, cfg)
            new_imgs, new_attrs = _fresh(cfg.fresh_per_step, rng, cfg.size, cfg.balanced, generator=sampler,
                                         generator_fraction=cfg.generator_fraction)
            old_imgs, old_attrs = buffer.sample(cfg.batch_size - cfg.fresh_per_step, rng)
            buffer.add(new_imgs, new_attrs)
            images = torch.cat([new_imgs, old_imgs], 0)
            attrs = new_attrs + old_attrs
            ramp = min(1.0, 0.25 + 0.75 * step / max(1, cfg.steps // 2))  # gentle first, full from half-way
            images = augment(images, gen, strength=cfg.augment_strength * ramp)
            pos, negs = _captions_with_negatives(attrs, rng, cfg.template_prob, cfg.templates, cfg.hard_negatives,
                                                 cfg.smile_negative)

            img_raw = model.encode_image(helper.preprocess(images))
            img = F.normalize(img_raw, dim=-1)
            txt = F.normalize(model.encode_text(tokenizer(pos)), dim=-1)
            flat = [t for group in negs for t in group]
            neg, owner = None, None
            if flat:
                owner = torch.tensor([i for i, group in enumerate(negs) for _ in group])
                with torch.set_grad_enabled(cfg.negatives_grad):
                    neg = F.normalize(model.encode_text(tokenizer(flat)), dim=-1)
            scale = model.logit_scale.exp().clamp(max=100.0)
            loss, acc = _clip_loss(img, txt, neg, owner, scale, cfg.hard_weight)
            if cfg.aux_weight > 0:
                loss = loss + cfg.aux_weight * _attribute_loss(aux_head(img_raw), attrs, cfg.smile_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0.0, math.log(100.0))

            lv = float(loss.detach())
            loss_ema = lv if loss_ema is None else 0.95 * loss_ema + 0.05 * lv
            acc_ema = acc if acc_ema is None else 0.95 * acc_ema + 0.05 * acc
            done = step + 1
            if done % 10 == 0 or done == cfg.steps:
                el = time.time() - t0
                log(f"step {done}/{cfg.steps} loss {loss_ema:.3f} i2t-acc {acc_ema:.3f} scale {float(scale.detach()):.1f} "
                    f"lr {_lr_at(step, cfg):.2e} {el:.0f}s ({el / max(1, done - start if start else done):.2f} s/step)")
            if cfg.eval_every and (done % cfg.eval_every == 0 or done == cfg.steps):
                model.eval()
                with torch.no_grad():
                    last_eval = zero_shot_accuracy(helper, per_class=cfg.eval_per_class, seed=10_000 + done,
                                                   prompts="negated", attributes=list(BINARY_ATTRIBUTES) + ["smile"])
                model.train()
                history.append({"step": done, "loss": round(loss_ema, 4), **{k: round(v, 4) for k, v in last_eval.items()}})
                log(f"step {done} held-out zero-shot: " + ", ".join(f"{k} {v:.3f}" for k, v in last_eval.items()))
            progress(done, cfg.steps, "training toyfaces CLIP", loss=loss_ema)
            if done % cfg.checkpoint_every == 0 or done == cfg.steps:
                _save_checkpoint(ckpt_path, model, aux_head, opt, rng, gen, done, time.time() - t0, history, cfg)

        seconds = time.time() - t0
        model.eval()
        summary = {"steps": cfg.steps, "seconds": round(seconds, 1), "final_loss": round(loss_ema or float("nan"), 4),
                   "images_seen": cfg.steps * cfg.batch_size, "unique_renders": cfg.steps * cfg.fresh_per_step + buffer.count,
                   "history": history}
        save_clip_weights(model, out, metadata={"train_config": _config_dict(cfg), "summary": summary})
        log(f"wrote {out} after {seconds:.0f} s")
        return summary
    finally:
        torch.set_num_threads(threads)


def _config_dict(cfg: TrainConfig) -> dict:
    d = asdict(cfg)
    d["templates"] = list(d["templates"])
    return d


def _save_checkpoint(path: Path, model, aux_head, opt, rng, gen, step, elapsed, history, cfg) -> None:
    state = {"model": model.state_dict(), "aux_head": aux_head.state_dict(), "optimizer": opt.state_dict(), "numpy_rng": rng.bit_generator.state,
             "torch_rng": gen.get_state(), "step": step, "elapsed": elapsed, "history": history,
             "config": _config_dict(cfg)}
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, tmp)
    os.replace(tmp, path)


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
            :data:`NEGATED_PROMPTS` (``"a face without glasses"``).
        augment_strength: apply :func:`augment` to the renders first (robustness check).

    Returns:
        dict attribute -> accuracy in ``[0, 1]``.
    """
    from .attributes import BINARY_ATTRIBUTES, sample_attributes
    from .captions import attribute_prompts

    if prompts not in ("neutral", "negated"):
        raise InvalidArgumentError("prompts must be 'neutral' or 'negated'.")
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
