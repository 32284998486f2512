"""Identities that files made for one model are keyed by: a generator's (or any module's) weights digest,
and a CLIP's name plus its weights digest."""

from __future__ import annotations

from ..networks.fingerprint import generator_fingerprint

__all__ = ["generator_fingerprint", "clip_key"]


def clip_key(clip) -> str:
    """The CLIP identity a relevance table is keyed by: its name and a digest of its weights.

    ``'toyfaces:1a2b3c4d5e6f7a8b'``, ``'ViT-B-32:...'``: the name alone is not enough, because one
    architecture comes with many weights (open_clip's pretrained tags, a fine-tuned toyfaces CLIP),
    and a table measured in one CLIP's image space means nothing in another's. The digest is
    :func:`generator_fingerprint` of the open_clip model (remembered until a weight changes).
    """
    return f"{clip.name}:{generator_fingerprint(clip.model)[:16]}"
