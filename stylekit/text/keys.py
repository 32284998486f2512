"""Identities that files made for one model are keyed by: a generator's (or any module's) weights digest,
and a CLIP's name plus its weights digest."""

from __future__ import annotations

import hashlib
import json
import weakref

import torch

__all__ = ["generator_fingerprint", "clip_key"]

_FINGERPRINTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _version_key(G) -> tuple:
    return tuple((t.data_ptr(), t._version) for t in G.state_dict().values())


def generator_fingerprint(G) -> str:
    """A hex digest of the generator's architecture, config and every weight and buffer.

    Two generators share it only when they compute the same function (a PTI-tuned copy, another
    checkpoint or another architecture all differ), so relevance files and mappers can be keyed by it.
    The digest is remembered per generator object until one of its tensors changes.
    """
    key = _version_key(G)
    known = _FINGERPRINTS.get(G)
    if known is not None and known[0] == key:
        return known[1]
    h = hashlib.blake2b(digest_size=20)
    h.update(str(getattr(G, "arch", type(G).__name__)).encode())
    h.update(json.dumps(getattr(G, "config", {}), sort_keys=True, default=str).encode())
    for name, t in G.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    digest = h.hexdigest()
    _FINGERPRINTS[G] = (key, digest)
    return digest


def clip_key(clip) -> str:
    """The CLIP identity a relevance table is keyed by: its name and a digest of its weights.

    ``'toyfaces:1a2b3c4d5e6f7a8b'``, ``'ViT-B-32:...'``: the name alone is not enough, because one
    architecture comes with many weights (open_clip's pretrained tags, a fine-tuned toyfaces CLIP),
    and a table measured in one CLIP's image space means nothing in another's. The digest is
    :func:`generator_fingerprint` of the open_clip model (remembered until a weight changes).
    """
    return f"{clip.name}:{generator_fingerprint(clip.model)[:16]}"
