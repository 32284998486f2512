"""CLIP models for text-guided editing and zero-shot labelling, all through open_clip.

``load_clip(name, pretrained)`` returns a :class:`ClipModel` around an ``open_clip`` model:

- ``load_clip("ViT-B-32", "openai")`` (or any name in ``open_clip.list_models()`` with one of its
  pretrained tags, or a path to a weights file): the weights come from the Hugging Face Hub through
  :mod:`stylekit.hub` (its cache, ``STYLEKIT_HUB_MIRROR``, ``STYLEKIT_OFFLINE``), or, for the few
  tags that only have a URL, through open_clip's own downloader into ``~/.cache/clip``
  (:mod:`stylekit.clip_sources`).
- ``load_clip("hf://owner/repo[@revision]")``: an open_clip repository on the Hub
  (``open_clip_config.json`` plus weights); the older ``hf-hub:owner/repo`` form is accepted with a
  DeprecationWarning.
- ``load_clip("toyfaces")`` (the default) or any CLIP in the artifact registry (kind ``"clip"``): an
  open_clip config shipped beside safetensors weights, registered with ``open_clip.add_model_config``
  and created with ``open_clip.create_model`` exactly like a real model (the toyfaces CLIP's card is
  ``stylekit/toyfaces/weights/clip.md``).

The wrapper adds what stylekit needs on top of open_clip: a differentiable image preprocessing
from generator output (``[N, 3, H, W]`` in ``[-1, 1]``) that never leaves the autograd graph,
prompt validation with stylekit errors, prompt templates, and two-prompt zero-shot scores.

Nothing here runs at import time; open_clip itself is imported on the first ``load_clip`` call.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F

from .errors import CheckpointError, InvalidArgumentError, ModelNotFoundError
from . import clip_sources as sources
from .hub import HubFile

__all__ = ["ClipModel", "load_clip", "list_clip_models", "register_open_clip_config", "DEFAULT_TEMPLATES",
           "TOYFACES_CLIP"]

#: The name of the offline toyfaces CLIP in :func:`load_clip`.
TOYFACES_CLIP = "toyfaces"

#: Prompt templates averaged by :meth:`ClipModel.text_embedding` when none are given (the toyfaces
#: CLIP was trained with captions wrapped in these, so they suit it as well as real CLIPs).
DEFAULT_TEMPLATES: tuple[str, ...] = (
    "{}",
    "a photo of {}.",
    "a picture of {}.",
    "an image of {}.",
    "a drawing of {}.",
)

#: Text embeddings a frozen :class:`ClipModel` remembers (by prompt, templates and precision).
TEXT_MEMO_SIZE = 256

class ClipModel:
    """An open_clip model with stylekit's differentiable preprocessing and prompt helpers.

    Attributes:
        model: the ``open_clip`` model (eval mode, parameters frozen).
        tokenizer: the matching open_clip tokenizer.
        name: the name it was loaded under (``"toyfaces"``, ``"ViT-B-32"``, ...).
        pretrained: the pretrained tag or weights path.
        templates: default prompt templates for :meth:`text_embedding`.
        precision: ``'fp32'``, ``'bf16'`` or ``'fp16'``: the dtype the image tower computes in (a
            frozen model's text tower stays float32, which is faster on CPU; a trainable model runs both
            towers under ``torch.autocast``); weights on disk stay float32, embeddings are float32.

    A frozen model remembers its text embeddings (:meth:`text_embedding`, :data:`TEXT_MEMO_SIZE`).

    ``freeze=True`` (the default) puts the model in eval mode with frozen parameters; gradients
    still flow to input images.
    """

    def __init__(self, model: torch.nn.Module, tokenizer, *, name: str, pretrained: str | None,
                 templates: Sequence[str] = DEFAULT_TEMPLATES, freeze: bool = True, precision: str = "fp32"):
        from open_clip.model import get_model_preprocess_cfg

        from .networks.precision import resolve_precision

        # freeze=False leaves mode and requires_grad alone (the training loop wraps its live model).
        self.model = model.eval().requires_grad_(False) if freeze else model
        self.tokenizer = tokenizer
        self.name = name
        self.pretrained = pretrained
        self.templates = tuple(templates)
        self.precision = resolve_precision(precision, self.device)
        cfg = get_model_preprocess_cfg(model)
        size = cfg.get("size", getattr(model.visual, "image_size", 224))
        self.image_size: tuple[int, int] = (size, size) if isinstance(size, int) else tuple(size)
        self.context_length: int = int(getattr(model, "context_length", None)
                                       or getattr(tokenizer, "context_length", 77))
        self._mean = torch.tensor(cfg.get("mean", (0.48145466, 0.4578275, 0.40821073)),
                                  dtype=torch.float32).view(1, 3, 1, 1)
        self._std = torch.tensor(cfg.get("std", (0.26862954, 0.26130258, 0.27577711)),
                                 dtype=torch.float32).view(1, 3, 1, 1)

    # -- basic properties ---------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def embed_dim(self) -> int:
        """Size D of the joint embedding space."""
        proj = getattr(self.model, "text_projection", None)
        if isinstance(proj, torch.Tensor):
            return int(proj.shape[-1])
        with torch.no_grad():
            return int(self.encode_text(["a"]).shape[-1])

    @property
    def logit_scale(self) -> float:
        """The model's learned temperature ``exp(logit_scale)`` (100 for OpenAI's CLIPs)."""
        return float(self.model.logit_scale.detach().exp().clamp(max=100.0))

    def to(self, device) -> "ClipModel":
        """Move the model to ``device`` (in place) and return self."""
        self.model.to(torch.device(device))
        return self

    def __repr__(self) -> str:
        return (f"ClipModel(name={self.name!r}, pretrained={self.pretrained!r}, image_size={self.image_size}, "
                f"context_length={self.context_length}, device={self.device}, precision={self.precision!r})")

    def _towers(self):
        """``(model, input dtype, context)`` for the chosen precision.

        fp32: the model itself. A frozen model in bf16/fp16: a cached copy with weights in that dtype
        (autocast over frozen float32 weights made open_clip's attention copy expanded weights per
        call: ViT-B-32 at batch 8 ran 4.5x slower than fp32). A trainable model (the CLIP trainer's
        live one): autocast, so its float32 weights keep learning.
        """
        import contextlib

        if self.precision == "fp32":
            return self.model, None, contextlib.nullcontext()
        from .networks.precision import dtype_of

        dtype = dtype_of(self.precision)
        if any(p.requires_grad for p in self.model.parameters()):
            return self.model, None, torch.autocast(self.device.type, dtype=dtype)
        cached = getattr(self, "_lowp", None)
        if cached is None or cached[0] != (self.precision, self.device):
            import copy

            cached = ((self.precision, self.device), copy.deepcopy(self.model).to(dtype))
            self._lowp = cached
        return cached[1], dtype, contextlib.nullcontext()

    # -- text ---------------------------------------------------------------------------------

    def _token_count(self, text: str) -> int:
        """Tokens the prompt needs including start/end markers (before any truncation)."""
        tok = self.tokenizer
        if hasattr(tok, "encode") and hasattr(tok, "sot_token_id"):   # open_clip SimpleTokenizer
            return len(tok.encode(text)) + 2
        inner = getattr(tok, "tokenizer", None)                        # HFTokenizer and friends
        if inner is not None and callable(inner):
            return len(inner(text)["input_ids"])
        return int((tok([text]) != 0).sum())  # pragma: no cover - unknown tokenizer kind

    def validate_prompts(self, prompts: str | Iterable[str]) -> list[str]:
        """Check prompts and return them as a list.

        Raises:
            InvalidArgumentError: a prompt that is not a string, is empty or whitespace-only, or needs
                more tokens than the model's context length.
        """
        if isinstance(prompts, str):
            prompts = [prompts]
        prompts = list(prompts)
        if not prompts:
            raise InvalidArgumentError("No prompt given: pass at least one text prompt.")
        for p in prompts:
            if not isinstance(p, str):
                raise InvalidArgumentError(f"Prompts must be strings, got {type(p).__name__}.")
            if not p.strip():
                raise InvalidArgumentError(
                    "The prompt is empty (or only whitespace); describe the image in a few words, "
                    "e.g. 'a face with glasses'.")
            n = self._token_count(p)
            if n > self.context_length:
                raise InvalidArgumentError(
                    f"The prompt {p[:60]!r}{'...' if len(p) > 60 else ''} needs {n} tokens but CLIP "
                    f"model {self.name!r} reads at most {self.context_length} (including start and end "
                    "markers); shorten it.")
        return prompts

    def tokenize(self, prompts: str | Iterable[str]) -> torch.Tensor:
        """Validated prompts -> token ids ``[N, context_length]`` (long, on the model's device)."""
        prompts = self.validate_prompts(prompts)
        return self.tokenizer(prompts).to(self.device)

    def encode_text(self, prompts: str | Iterable[str]) -> torch.Tensor:
        """Prompts -> L2-normalised text embeddings ``[N, D]`` (float32)."""
        tokens = self.tokenize(prompts)
        model, dtype, context = self._towers()
        if dtype is not None:
            # The text tower of a frozen model stays in float32: on CPU, open_clip's bf16 text transformer ran
            # 4.6x slower than float32 (ViT-B-32, 5 prompts, 2 cores: 0.95 s vs 0.21 s), and it is cheap anyway.
            model = self.model
        with context:
            features = model.encode_text(tokens)
        return F.normalize(features.float(), dim=-1)

    def text_embedding(self, prompt: str | Sequence[str], templates: Sequence[str] | None = None) -> torch.Tensor:
        """One prompt (or a class of prompts) put in each template (``"{}"`` marks where), embedded and averaged.

        ``prompt`` may be a string or a sequence of phrasings of one class (``("black hair",
        "brown hair", "blond hair")`` for "not red"): every phrasing goes in every template.
        Returns the L2-normalised mean of the normalised embeddings, shape ``[D]`` (the prompt
        ensembling of the CLIP paper). ``templates=None`` uses :attr:`templates`.
        """
        phrasings = self.validate_prompts(prompt)
        templates = self.templates if templates is None else tuple(templates)
        if not templates or any("{}" not in t for t in templates):
            raise InvalidArgumentError("Every prompt template must contain '{}' where the prompt goes.")
        frozen = not any(p.requires_grad for p in self.model.parameters())
        key = (tuple(phrasings), templates, self.precision, str(self.device))
        memo = self.__dict__.setdefault("_text_memo", {})
        if frozen and key in memo:
            return memo[key].clone()
        emb = F.normalize(self.encode_text([t.format(p) for p in phrasings for t in templates]).mean(dim=0), dim=-1)
        if frozen:  # a frozen model's text embeddings never change: remember them (a ViT-B-32 prompt over the
            # default templates costs about 2 s on a 2-core CPU, and callers ask for the same prompts again)
            if len(memo) >= TEXT_MEMO_SIZE:
                memo.pop(next(iter(memo)))
            memo[key] = emb.detach().clone()
        return emb

    # -- images -------------------------------------------------------------------------------

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Generator output -> the model's input, differentiably.

        ``images`` ``[N, 3, H, W]`` in ``[-1, 1]`` is resized so its shorter side matches the model
        input (bicubic with antialiasing when shrinking, bilinear when enlarging), centre-cropped to
        the model's ``image_size``, mapped to ``[0, 1]`` and normalised with the model's mean/std.
        Only torch operations are used, so gradients flow back to ``images``.
        """
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise InvalidArgumentError(f"CLIP needs images as a tensor [N, 3, H, W] in [-1, 1], got {shape}.")
        x = images.float()
        th, tw = self.image_size
        h, w = x.shape[-2:]
        if (h, w) != (th, tw):
            scale = max(th / h, tw / w)
            nh, nw = max(th, round(h * scale)), max(tw, round(w * scale))
            if (nh, nw) != (h, w):
                if scale < 1:
                    x = F.interpolate(x, size=(nh, nw), mode="bicubic", align_corners=False, antialias=True)
                else:
                    x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False)
            top, left = (nh - th) // 2, (nw - tw) // 2
            x = x[:, :, top:top + th, left:left + tw]
        x = (x + 1.0) * 0.5
        mean, std = self._mean.to(x.device), self._std.to(x.device)
        return (x - mean) / std

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``[N, 3, H, W]`` in ``[-1, 1]`` -> L2-normalised embeddings ``[N, D]`` (differentiable)."""
        x = self.preprocess(images.to(self.device))
        model, dtype, context = self._towers()
        with context:
            features = model.encode_image(x if dtype is None else x.to(dtype))
        return F.normalize(features.float(), dim=-1)

    # -- scores -------------------------------------------------------------------------------

    def similarity(self, images: torch.Tensor, prompt: str | torch.Tensor,
                   templates: Sequence[str] | None = None) -> torch.Tensor:
        """Cosine similarity ``[N]`` between each image and a prompt (or a given text embedding ``[D]``).

        Differentiable in ``images``: ``1 - similarity`` is StyleCLIP's CLIP loss.
        """
        text = prompt if isinstance(prompt, torch.Tensor) else self.text_embedding(prompt, templates)
        return self.encode_image(images) @ text.to(self.device).float()

    def zero_shot_scores(self, images: torch.Tensor, positive_prompt: str | Sequence[str],
                         neutral_prompt: str | Sequence[str], templates: Sequence[str] | None = None) -> torch.Tensor:
        """Probability ``[N]`` (in ``[0, 1]``) that ``positive_prompt`` rather than ``neutral_prompt`` applies.

        A softmax over the two prompts' cosine similarities scaled by the model's logit scale, each
        prompt ensembled over ``templates`` (default :attr:`templates`). Either prompt may be a
        sequence of phrasings of its class (see :meth:`text_embedding`).
        """
        pos = self.text_embedding(positive_prompt, templates)
        neu = self.text_embedding(neutral_prompt, templates)
        feats = self.encode_image(images)
        logits = self.logit_scale * feats @ torch.stack([pos, neu], dim=1)
        return logits.softmax(dim=-1)[:, 0]


# ----------------------------------------------------------------------------------------------
# Loading


def _registered_clip(name: str):
    from . import registry

    return next((a for a in registry.list_artifacts("clip") if a.name == name), None)


def list_clip_models() -> list[str]:
    """Names :func:`load_clip` accepts besides paths and ``hf://`` addresses: the registered CLIPs + open_clip's."""
    import open_clip

    from . import registry

    return [a.name for a in registry.list_artifacts("clip")] + [m for m in open_clip.list_models()]


def _create(open_clip_name: str, weights: str | None, device, **kwargs) -> torch.nn.Module:
    import open_clip

    try:
        return open_clip.create_model(open_clip_name, pretrained=weights, device=torch.device(device),
                                      require_pretrained=weights is not None, **kwargs)
    except (RuntimeError, ValueError, KeyError, OSError) as exc:
        raise CheckpointError(
            f"open_clip could not build {open_clip_name!r} from {weights!r}: {exc}. Check that the weights file "
            "belongs to this architecture and is complete.") from exc


def register_open_clip_config(config: Path) -> str:
    """Register an open_clip config file (idempotent) and return its model name (the file's stem)."""
    import open_clip

    if config.stem not in open_clip.list_models():
        if not config.is_file():
            raise CheckpointError(f"The open_clip config {config} is missing; reinstall the package that ships it.")
        open_clip.add_model_config(config)
        if config.stem not in open_clip.list_models():
            raise CheckpointError(f"open_clip did not accept the config {config}.")
    return config.stem


def _load_registered(artifact, pretrained: str | os.PathLike | None, device) -> ClipModel:
    """A registered CLIP (e.g. ``"toyfaces"``): an open_clip config shipped beside safetensors weights."""
    import open_clip

    from . import registry

    open_clip_name = register_open_clip_config(registry.extra_file(artifact, "open_clip_config"))
    weights = Path(pretrained) if pretrained is not None else registry.artifact_path(artifact)
    if not weights.is_file():
        card = f" (its model card, {artifact.card}, says how they were trained)" if artifact.card else ""
        raise CheckpointError(f"The weights of CLIP {artifact.name!r} ({weights}) are missing; pass the path of an "
                              f"existing weights file as `pretrained`, reinstall stylekit, or train new ones{card}.")
    model = _create(open_clip_name, str(weights), device)
    return ClipModel(model, open_clip.get_tokenizer(open_clip_name), name=artifact.name, pretrained=str(weights))


def _load_hf_hub(name: str, device, cache_dir) -> ClipModel:
    import open_clip

    repo_id, revision = sources.hub_repo(name)
    config = sources.fetch_first([HubFile(repo_id, "open_clip_config.json", revision)], name=name, tag="hub",
                          cache_dir=cache_dir)
    sources.fetch_first([HubFile(repo_id, f, revision) for f in sources.HF_WEIGHT_NAMES], name=name, tag="hub", cache_dir=cache_dir)
    local = "local-dir:" + str(config.parent)
    try:
        model = open_clip.create_model(local, device=torch.device(device))
        tokenizer = open_clip.get_tokenizer(local)
    except (RuntimeError, ValueError, KeyError, OSError) as exc:
        raise CheckpointError(f"open_clip could not build {name!r}: {exc}.") from exc
    return ClipModel(model, tokenizer, name=name, pretrained=str(config.parent))


def load_clip(name: str = TOYFACES_CLIP, pretrained: str | os.PathLike | None = None, device="cpu", *,
              cache_dir: str | os.PathLike | None = None, precision: str = "fp32") -> ClipModel:
    """Load a CLIP model by name.

    Args:
        name: ``"toyfaces"`` (default, shipped in the package), an open_clip architecture such as
            ``"ViT-B-32"`` (see :func:`list_clip_models`), or ``"hf://owner/repo[@revision]"`` (an open_clip
            repository on the Hub; the old ``"hf-hub:owner/repo"`` still works with a DeprecationWarning).
        pretrained: for open_clip architectures, a pretrained tag (``"openai"``, ``"laion2b_s34b_b79k"``;
            ``None`` picks ``"openai"`` when it exists, else the first tag open_clip lists) or a path to a
            weights file; for ``"toyfaces"``, ``None`` (the shipped weights) or a path to other weights.
        device: torch device for the model.
        cache_dir: Hugging Face cache folder (default: the usual ``HF_HOME`` cache).
        precision: ``'fp32'`` (default), ``'bf16'``, ``'fp16'`` or ``'auto'`` (bfloat16 on CPUs with
            AMX / AVX-512-BF16, float16 on CUDA, else float32): the towers' compute dtype.

    Raises:
        ModelNotFoundError: unknown name or tag (the message lists valid ones).
        OfflineError: the weights must be downloaded but stylekit is offline (``STYLEKIT_OFFLINE`` /
            ``HF_HUB_OFFLINE``) or the download fails; the message says how to supply them.
        CheckpointError: the weights do not fit the architecture or cannot be read.
    """
    from .networks.cpu_memory import keep_freed_memory
    from .networks.precision import resolve_precision

    chosen = resolve_precision(precision, device)  # an unknown name fails before anything is loaded
    clip = _load(name, pretrained, device, cache_dir)
    clip.precision = chosen
    keep_freed_memory(device)
    return clip


def _load(name, pretrained, device, cache_dir) -> ClipModel:
    if not isinstance(name, str) or not name.strip():
        raise ModelNotFoundError(f"A CLIP model name must be a non-empty string, got {name!r}.")
    name = name.strip()
    if name == "toyfaces-clip":  # the open_clip config's name of the toyfaces CLIP
        name = TOYFACES_CLIP
    registered = _registered_clip(name)
    if registered is not None:
        return _load_registered(registered, pretrained, device)
    if name.startswith(("hf://", "hf-hub:")):
        return _load_hf_hub(name, device, cache_dir)

    import open_clip

    arch = name.replace("/", "-")
    if arch not in open_clip.list_models():
        raise sources.unknown_model(name)
    kwargs: dict = {}
    if pretrained is not None and Path(pretrained).is_file():
        weights, tag = str(pretrained), str(pretrained)
    else:
        tag = sources.default_tag(arch) if pretrained is None else str(pretrained)
        weights, tag_cfg = sources.resolve_tag(arch, tag, cache_dir)
        # open_clip applies a tag's preprocessing and activation only when it downloads the tag
        # itself; we download, so pass them on (QuickGELU matters for OpenAI's weights).
        kwargs["force_quick_gelu"] = bool(tag_cfg.get("quick_gelu", False))
        from open_clip.transform import PreprocessCfg

        keys = set(asdict(PreprocessCfg()).keys()) - {"size"}
        kwargs["force_preprocess_cfg"] = {k: v for k, v in tag_cfg.items() if k in keys}
    model = _create(arch, weights, device, **kwargs)
    tokenizer = open_clip.get_tokenizer(arch)
    return ClipModel(model, tokenizer, name=name, pretrained=tag)
