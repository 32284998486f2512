"""A network's identity: a digest of its architecture, config and every weight and buffer.

Files made for one generator (relevance tables, StyleCLIP mappers, rig networks) are keyed by it, so a file
is never applied to another generator by mistake. (Moved here from ``stylekit.text.keys`` so that every
floor from the networks up can use it; ``stylekit.text.keys`` re-exports it.)
"""

from __future__ import annotations

import hashlib
import json
import weakref

import torch

__all__ = ["generator_fingerprint"]

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
