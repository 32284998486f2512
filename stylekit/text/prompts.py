"""Which CLIP, and prompts -> CLIP text embeddings / directions (shared by the three methods)."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ..clip_backend import ClipModel, load_clip
from ..errors import InvalidArgumentError

__all__ = ["resolve_clip", "text_target", "text_direction"]


def resolve_clip(clip, *, device=None, cache_dir=None) -> ClipModel:
    """A :class:`ClipModel` from a loaded one (returned as is) or a name for :func:`load_clip`
    (``cache_dir``: the Hugging Face cache to use).

    Raises ModelNotFoundError / OfflineError / CheckpointError from :func:`load_clip` for unknown
    names or missing weights, InvalidArgumentError for anything else.
    """
    if isinstance(clip, ClipModel):
        return clip
    if isinstance(clip, str):
        return load_clip(clip, device=device or "cpu", cache_dir=cache_dir)
    raise InvalidArgumentError(f"clip must be a ClipModel or a CLIP name such as 'toyfaces' or 'ViT-B-32', "
                               f"got {type(clip).__name__}.")


def text_target(clip: ClipModel, prompt, templates: Sequence[str] | None = None) -> torch.Tensor:
    """A prompt (ensembled over ``templates``) or a given embedding ``[D]`` -> unit text embedding ``[D]``."""
    if isinstance(prompt, torch.Tensor):
        if prompt.ndim != 1 or prompt.shape[0] != clip.embed_dim:
            raise InvalidArgumentError(f"a text embedding for CLIP {clip.name!r} must be [{clip.embed_dim}], "
                                       f"got {tuple(prompt.shape)}.")
        return F.normalize(prompt.detach().float(), dim=0).to(clip.device)
    with torch.no_grad():
        return clip.text_embedding(prompt, templates)


def text_direction(clip: ClipModel, target, neutral, templates: Sequence[str] | None = None) -> torch.Tensor:
    """StyleCLIP's text direction ``Δt``: the unit vector from the neutral to the target text embedding, ``[D]``.

    ``target`` / ``neutral`` are prompts (e.g. ``"a face with glasses"`` / ``"a face"``) or embeddings.

    Raises:
        InvalidArgumentError: bad prompts (empty, too long), or target and neutral with the same embedding.
    """
    t = text_target(clip, target, templates)
    n = text_target(clip, neutral, templates)
    diff = t - n
    if float(diff.norm()) < 1e-6:
        raise InvalidArgumentError(f"the target {target!r} and neutral {neutral!r} texts have the same CLIP embedding, "
                                   "so there is no direction between them; describe what should change in the target.")
    return F.normalize(diff, dim=0)
