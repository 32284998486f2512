"""Train the toyfaces CLIP (:mod:`stylekit.toyfaces.clip_model`): plain CLIP on an endless stream of renders.

- every step renders ``fresh_per_step`` new faces with random attributes (binary ones 50/50) and
  fills the rest of the batch from a ring buffer of recent renders; every image gets a *fresh*
  caption (new template and synonyms each time), half of them wrapped in a generic template
  ("a photo of {}." ...), and a fresh augmentation (:func:`stylekit.augment.augment`: small affine
  jitter, colour jitter, blur by down/up-sampling, pixel noise) so that it also reads GAN samples;
  optionally a share of the fresh images are samples of a toyfaces generator, captioned from the
  attributes their latents encode (see :mod:`stylekit.train.clip_data`);
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
  (``threads``); a checkpoint every ``snapshot_every`` steps lets an interrupted run resume (by
  default a run folder holding a checkpoint of the same settings is continued).

On several processes (:mod:`stylekit.train.distributed`) every rank draws the whole batch (renders,
buffer, captions, augmentation: the shared streams) and encodes its rows; the embeddings are
gathered so the contrastive loss and its negatives span the global batch, as on one process.

With ``--precision bf16`` (or fp16) both towers and the auxiliary head run under autocast (the image
tower channels-last on CPU); embeddings are cast to float32 before the losses
(:mod:`stylekit.train.mixed_precision`).

The run folder gets ``clip.safetensors`` (float16, open_clip keys, the settings and a summary in the
metadata). :func:`evaluate_clip` is the held-out zero-shot evaluation reported in ``weights/clip.md``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, ClassVar

import torch
import torch.nn.functional as F

from ..augment import augment
from ..errors import InvalidArgumentError
from ..progress import ProgressCallback, no_progress
from ..toyfaces.attributes import ATTRIBUTES, BINARY_ATTRIBUTES
from ..toyfaces.captions import CALM_SMILE
from ..toyfaces.clip_model import MODEL_CONFIG, OPEN_CLIP_NAME, create_untrained, zero_shot_accuracy
from .clip_data import RingBuffer, captions_with_negatives, fresh_images
from .clip_weights import load_init_weights, save_clip_weights
from .skeleton import Run, Smoothed, StepsConfig, is_due

__all__ = ["ClipConfig", "clip_loss", "attribute_loss", "train_clip", "evaluate_clip"]


@dataclass
class ClipConfig(StepsConfig):
    """Hyper-parameters of :func:`train_clip` (all recorded in the weights' metadata)."""

    steps: int = 600                 # optimiser steps
    batch: int = 64                  # images (and captions) per step
    lr: float = 5e-4                 # peak AdamW learning rate
    warmup: int = 40                 # linear warm-up steps, then a cosine to 0
    log_every: int = 10
    snapshot_every: int = 25         # checkpoint every this many steps
    threads: int | None = 1          # torch.set_num_threads (1 is ~6x faster than 2 on a busy 2-core box)
    resume: str | None = "auto"      # continue a run folder that holds a checkpoint of the same settings
    fresh_per_step: int = 32         # new renders per step; the rest come from the ring buffer
    buffer_size: int = 2048          # ring buffer of recent renders (re-captioned, re-augmented)
    weight_decay: float = 0.05       # on matrices and convolution kernels only
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
    eval_every: int = 100            # quick held-out zero-shot check (0: never)
    eval_per_class: int = 40
    init: str = ""                   # start from these weights (a clip.safetensors; '' = random init)
    templates: tuple = field(default=("a photo of {}.", "a picture of {}.", "an image of {}.", "a drawing of {}."))

    kind: ClassVar[str] = "clip"
    #: Settings that do not change what is learned (the rest must match to resume).
    RUN_FIELDS: ClassVar[tuple[str, ...]] = StepsConfig.RUN_FIELDS + (
        "log_every", "snapshot_every", "eval_every", "eval_per_class")

    def resumed_from(self, saved: dict) -> "ClipConfig":
        """A CLIP run resumes only with the settings it was started with (the ring buffer and the
        schedule depend on them)."""
        mine = self.learned_settings()
        theirs = {k: v for k, v in saved.items() if k not in self.RUN_FIELDS}
        if theirs != mine:
            changed = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            raise InvalidArgumentError(
                f"The checkpoint in {self.out} was made with other settings ({', '.join(changed)}); use another "
                "--out, or --no-resume (resume=None) to start afresh there.")
        return self

    def validate(self) -> None:
        super().validate()
        if self.batch < 2 or not 1 <= self.fresh_per_step <= self.batch:
            raise InvalidArgumentError("train_clip needs --batch >= 2 and 1 <= --fresh-per-step <= --batch.")


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: weight decay on matrices and kernels, none on biases, norms, embeddings and the scale."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim < 2 or "token_embedding" in name or "positional_embedding" in name or "logit_scale" in name:
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def clip_loss(img: torch.Tensor, txt: torch.Tensor, neg: torch.Tensor | None, owner: torch.Tensor | None,
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


def attribute_loss(pred: torch.Tensor, attrs: list[dict[str, float]], smile_weight: float = 0.0) -> torch.Tensor:
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
        worded = smile.abs() > CALM_SMILE
        if bool(worded.any()):
            loss = loss + smile_weight * F.binary_cross_entropy_with_logits(
                pred[worded, len(ATTRIBUTES)], (smile[worded] > 0).float())
    return loss


class _Model:
    """The open_clip model, its tokenizer and ClipModel wrapper, the auxiliary head and the optimiser."""

    def __init__(self, cfg: ClipConfig, amp):
        import open_clip

        from ..clip_backend import ClipModel

        self.amp = amp
        self.model = amp.channels_last(create_untrained(seed=cfg.seed))
        self.model.train()
        self.tokenizer = open_clip.get_tokenizer(OPEN_CLIP_NAME)
        self.helper = ClipModel(self.model, self.tokenizer, name="toyfaces", pretrained=None, freeze=False)
        # Auxiliary attribute head on the image embedding (training aid only; not part of the CLIP).
        self.aux_head = torch.nn.Linear(MODEL_CONFIG["embed_dim"], len(ATTRIBUTES) + 1)
        groups = _param_groups(self.model, cfg.weight_decay)
        groups[0]["params"] = groups[0]["params"] + list(self.aux_head.parameters())
        self.opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)

    def nets(self) -> dict:
        return {"model": self.model, "aux_head": self.aux_head}

    def optims(self) -> dict:
        return {"optimizer": self.opt}


def _start(run: Run, cfg: ClipConfig, m: _Model) -> tuple[float, list]:
    """Resume (returns the seconds already spent and the evaluation history) or initialise from ``cfg.init``."""
    state = run.resume_state()
    if state is not None:
        cfg.resumed_from(run.saved_config(state))
        extra = run.restore(state, m.nets(), m.optims())
        run.log(f"resumed from {run.resume_path} at step {run.step} ({extra['elapsed']:.0f} s so far)")
        return float(extra["elapsed"]), list(extra["history"])
    run.write_config()
    if cfg.init:
        resized = load_init_weights(m.model, cfg.init)
        run.log(f"initialised from {cfg.init}" + (f" (resized: {', '.join(resized)})" if resized else ""))
    return 0.0, []


def _data(run: Run, cfg: ClipConfig):
    """The optional generator whose samples join the fresh images, and the ring buffer, filled."""
    sampler = None
    if cfg.generator and cfg.generator_fraction > 0:
        from ..checkpoints.load import load_generator

        sampler = load_generator(cfg.generator, device="cpu").eval().requires_grad_(False)
        run.log(f"{cfg.generator_fraction:.0%} of the fresh images are samples of {cfg.generator}")
    buffer = RingBuffer(cfg.buffer_size, cfg.size)
    t_fill = time.time()
    while buffer.count < min(cfg.buffer_size, max(cfg.batch * 4, 256)):
        imgs, attrs = fresh_images(min(128, cfg.buffer_size - buffer.count), run.rng, cfg.size, cfg.balanced)
        buffer.add(imgs, attrs)
    run.log(f"filled buffer with {buffer.count} renders in {time.time() - t_fill:.1f} s")
    return sampler, buffer


def _batch(run: Run, cfg: ClipConfig, step: int, buffer: RingBuffer, sampler):
    """The step's images ``[batch, 3, S, S]`` (fresh + buffer, augmented), attributes, captions and negatives."""
    new_imgs, new_attrs = fresh_images(cfg.fresh_per_step, run.rng, cfg.size, cfg.balanced, generator=sampler,
                                       generator_fraction=cfg.generator_fraction)
    old_imgs, old_attrs = buffer.sample(cfg.batch - cfg.fresh_per_step, run.rng)
    buffer.add(new_imgs, new_attrs)
    images = torch.cat([new_imgs, old_imgs], 0)
    attrs = new_attrs + old_attrs
    ramp = min(1.0, 0.25 + 0.75 * step / max(1, cfg.steps // 2))  # gentle first, full from half-way
    images = augment(images, run.gen, strength=cfg.augment_strength * ramp)
    pos, negs = captions_with_negatives(attrs, run.rng, cfg.template_prob, cfg.templates, cfg.hard_negatives,
                                        cfg.smile_negative)
    return images, attrs, pos, negs


def _gather(dist, local: torch.Tensor) -> torch.Tensor:
    """Every rank's rows of ``local [n_r, ...]`` concatenated in rank order (sizes may differ); the
    gradient flows through this rank's own rows only."""
    import torch.distributed as td

    sizes = [torch.zeros([], dtype=torch.long, device=local.device) for _ in range(dist.world)]
    td.all_gather(sizes, torch.tensor(local.shape[0], device=local.device))
    longest = max(int(n) for n in sizes)
    padded = local.detach().new_zeros([longest, *local.shape[1:]])
    padded[: local.shape[0]] = local.detach()
    parts = [torch.empty_like(padded) for _ in range(dist.world)]
    td.all_gather(parts, padded)
    parts = [part[: int(n)] for part, n in zip(parts, sizes)]
    parts[dist.rank] = local
    return torch.cat(parts)


def _global_batch(dist, img, txt, neg, owner, scale):
    """The contrastive loss's inputs over the global batch on several processes.

    Gathers the ranks' embeddings (this rank's rows keep their gradient), shifts the negatives'
    owners to global rows, and returns the factor to multiply the contrastive loss by (the number of
    ranks) with a logit scale whose gradient is divided by it: averaged over the ranks, the
    gradients are then exactly those of the loss over the whole batch on one process.
    """
    rows = img.shape[0]
    img, txt = _gather(dist, img), _gather(dist, txt)
    if neg is None:
        neg = img.new_zeros([0, img.shape[1]])
        owner = torch.zeros([0], dtype=torch.long)
    neg = _gather(dist, neg)
    owner = _gather(dist, owner.to(img.device) + dist.rank * rows).cpu()
    if neg.shape[0] == 0:
        neg = owner = None
    scale = scale.detach() + (scale - scale.detach()) / dist.world
    return img, txt, neg, owner, scale, float(dist.world)


def _train_step(m: _Model, cfg: ClipConfig, images, attrs, pos, negs, dist=None) -> tuple[float, float, float]:
    """One AdamW step on the contrastive (+ auxiliary) loss; returns ``(loss, i2t accuracy, logit scale)``.

    ``images``, ``attrs``, ``pos``, ``negs``: this rank's rows of the batch; on several processes
    (``dist``) the contrastive loss runs over every rank's rows (see :func:`_global_batch`)."""
    model, tokenizer, amp = m.model, m.tokenizer, m.amp
    with amp.autocast():
        img_raw = model.encode_image(amp.images(m.helper.preprocess(images))).float()
        txt_raw = model.encode_text(tokenizer(pos)).float()
    img = F.normalize(img_raw, dim=-1)
    txt = F.normalize(txt_raw, dim=-1)
    flat = [t for group in negs for t in group]
    neg, owner = None, None
    if flat:
        owner = torch.tensor([i for i, group in enumerate(negs) for _ in group])
        with torch.set_grad_enabled(cfg.negatives_grad), amp.autocast():
            neg_raw = model.encode_text(tokenizer(flat)).float()
        neg = F.normalize(neg_raw, dim=-1)
    scale = model.logit_scale.exp().clamp(max=100.0)
    factor = 1.0
    if dist is not None and dist.active:
        img, txt, neg, owner, scale, factor = _global_batch(dist, img, txt, neg, owner, scale)
    loss, acc = clip_loss(img, txt, neg, owner, scale, cfg.hard_weight)
    reported = loss.detach()
    loss = loss * factor
    if cfg.aux_weight > 0:
        with amp.autocast():
            aux = m.aux_head(img_raw).float()
        aux_loss = cfg.aux_weight * attribute_loss(aux, attrs, cfg.smile_weight)
        loss = loss + aux_loss
        reported = reported + aux_loss.detach()
    m.opt.zero_grad(set_to_none=True)
    amp.backward(loss)
    amp.unscale(m.opt)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    amp.step(m.opt)
    with torch.no_grad():
        model.logit_scale.clamp_(0.0, math.log(100.0))
    return float(reported), acc, float(scale.detach())


def _held_out(run: Run, cfg: ClipConfig, m: _Model, done: int, loss: float, history: list) -> None:
    """The quick held-out zero-shot check (negated prompts, every binary attribute and smile)."""
    m.model.eval()
    with torch.no_grad():
        result = zero_shot_accuracy(m.helper, per_class=cfg.eval_per_class, seed=10_000 + done, prompts="negated",
                                    attributes=list(BINARY_ATTRIBUTES) + ["smile"])
    m.model.train()
    history.append({"step": done, "loss": round(loss, 4), **{k: round(v, 4) for k, v in result.items()}})
    run.log(f"step {done} held-out zero-shot: " + ", ".join(f"{k} {v:.3f}" for k, v in result.items()))


def train_clip(cfg: ClipConfig, *, progress: ProgressCallback = no_progress,
               log: Callable[[str], None] | None = print) -> dict:
    """Train the toyfaces CLIP (from scratch, or fine-tune ``cfg.init``); writes ``clip.safetensors`` in ``cfg.out``.

    Args:
        cfg: hyper-parameters (see :class:`ClipConfig`); ``cfg.export`` also copies the weights there.
        progress: ``callback(step, total, "training toyfaces CLIP", loss=...)`` every step.
        log: where log lines go besides ``out/log.txt`` (None: the file only).

    Returns:
        a summary dict: steps, seconds, final loss, images seen, held-out zero-shot history, weights path.
    """
    with Run(cfg, log=log, progress=progress, torch_offset=0) as run:
        m = _Model(cfg, run.amp)
        elapsed, history = _start(run, cfg, m)
        run.distribute(m.nets(), m.optims())
        sampler, buffer = _data(run, cfg)
        t0 = time.time() - elapsed
        start = run.step
        loss_ema, acc_ema = Smoothed(), Smoothed()
        for step in range(start, cfg.steps):
            for g in m.opt.param_groups:
                g["lr"] = cfg.lr_at(step)
            images, attrs, pos, negs = _batch(run, cfg, step, buffer, sampler)  # the same on every rank
            rows = run.dist.rows(cfg.batch)
            loss, acc, scale = _train_step(m, cfg, run.shard(images), attrs[rows], pos[rows], negs[rows], run.dist)
            loss_ema.update(loss)
            acc_ema.update(acc)
            done = run.step = step + 1
            run.cur_nimg = done * cfg.batch
            if is_due(done, cfg.log_every, cfg.steps):
                el = time.time() - t0
                run.log(f"step {done}/{cfg.steps} loss {loss_ema.value:.3f} i2t-acc {acc_ema.value:.3f} "
                        f"scale {scale:.1f} lr {cfg.lr_at(step):.2e} {el:.0f}s "
                        f"({el / max(1, done - start if start else done):.2f} s/step)")
            if cfg.eval_every and is_due(done, cfg.eval_every, cfg.steps) and run.is_main:
                _held_out(run, cfg, m, done, loss_ema.value, history)
            run.progress(done, cfg.steps, "training toyfaces CLIP", loss=loss_ema.value)
            if is_due(done, cfg.snapshot_every, cfg.steps):
                run.checkpoint(nets=m.nets(), optims=m.optims(),
                               extra={"elapsed": time.time() - t0, "history": history})
        if not run.is_main:
            return {}
        return _finish(run, cfg, m, time.time() - t0, loss_ema.value, buffer, history)


def _finish(run: Run, cfg: ClipConfig, m: _Model, seconds: float, loss: float | None, buffer: RingBuffer,
            history: list) -> dict:
    """Write ``clip.safetensors`` (and the export copy) with the settings and a summary; return the summary."""
    m.model.eval()
    summary = {"steps": cfg.steps, "seconds": round(seconds, 1), "final_loss": round(loss or float("nan"), 4),
               "images_seen": cfg.steps * cfg.batch, "unique_renders": cfg.steps * cfg.fresh_per_step + buffer.count,
               "history": history}
    weights = save_clip_weights(m.model, run.out / "clip.safetensors",
                                metadata={"train_config": cfg.learned_settings(), "summary": summary})
    run.export(weights)
    run.log(f"wrote {weights} after {seconds:.0f} s")
    return {**summary, "weights": str(weights)}


def evaluate_clip(weights: str, per_class: int = 200, seed: int = 1234) -> dict:
    """Held-out zero-shot accuracies of a toyfaces CLIP weights file (loaded through ``load_clip``):
    negated and neutral prompts, and neutral prompts on augmented renders."""
    from ..clip_backend import load_clip

    clip = load_clip("toyfaces", pretrained=weights)
    names = list(BINARY_ATTRIBUTES) + ["smile"]
    result = {prompts: zero_shot_accuracy(clip, per_class=per_class, seed=seed, prompts=prompts, attributes=names)
              for prompts in ("neutral", "negated")}
    result["neutral_augmented"] = zero_shot_accuracy(clip, per_class=per_class, seed=seed, augment_strength=1.0)
    return result
