"""Where CLIP weights come from: open_clip's pretrained tags and open_clip repositories on the Hub.

The weights of a tag are fetched through :mod:`stylekit.hub` (its cache, ``STYLEKIT_HUB_MIRROR``,
offline mode) or, for the few tags that only have a URL, through open_clip's own downloader into
``~/.cache/clip``; every failure says how to supply the file. :func:`stylekit.clip_backend.load_clip`
is the public entry point.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Sequence

from . import settings
from .errors import ModelNotFoundError, OfflineError
from .hub import HubFile, fetch

#: Weights files of an open_clip repository on the Hub, in the order they are tried.
HF_WEIGHT_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors",
                    "open_clip_pytorch_model.bin")


def unknown_model(name: str) -> ModelNotFoundError:
    import open_clip

    known = [m for m in open_clip.list_models() if open_clip.list_pretrained_tags_by_model(m)]
    from . import registry

    some = [a.name for a in registry.list_artifacts("clip")] + [m for m in ("ViT-B-32", "ViT-B-16", "ViT-L-14", "RN50") if m in known]
    return ModelNotFoundError(
        f"Unknown CLIP model {name!r}. Valid names include {', '.join(some)} "
        f"(open_clip knows {len(known)} architectures with pretrained weights: see "
        "stylekit.clip_backend.list_clip_models()), or use 'hf://owner/repo' for an open_clip repository "
        "on the Hugging Face Hub.")


def offline_error(name: str, tag: str, what: str, how: str) -> OfflineError:
    return OfflineError(
        f"The weights of CLIP model {name!r} (pretrained={tag!r}) are not available offline: {what}. {how} "
        "Or use load_clip('toyfaces'), which ships inside the package.")


def fetch_first(files: Sequence[HubFile], *, name: str, tag: str, cache_dir) -> Path:
    """Fetch the first of ``files`` that exists (cache or Hub); OfflineError if none can be had."""
    offline_exc: OfflineError | None = None
    missing: list[str] = []
    for hub_file in files:
        try:
            return fetch(hub_file, cache_dir=cache_dir)
        except OfflineError as exc:
            offline_exc = offline_exc or exc
        except ModelNotFoundError:
            missing.append(hub_file.filename)
    if offline_exc is not None:
        first = files[0]
        raise offline_error(
            name, tag, f"{first.repo_id}/{first.filename} is not in the Hugging Face cache and cannot be "
            f"downloaded now{' (STYLEKIT_OFFLINE / HF_HUB_OFFLINE is set)' if settings.offline() else ''}",
            f"On a connected machine run `hf download {first.repo_id} {first.filename}` and copy the Hub cache "
            f"(HF_HOME) here, or put the file at $STYLEKIT_HUB_MIRROR/{first.repo_id}/{first.filename}, or pass "
            "its path as `pretrained`.") from offline_exc
    raise ModelNotFoundError(
        f"The Hugging Face Hub repository {files[0].repo_id} has none of {', '.join(missing)} for CLIP model "
        f"{name!r}; check the name or pass a weights file path as `pretrained`.")


def resolve_tag(name: str, tag: str, cache_dir) -> tuple[str, dict]:
    """A pretrained tag of a built-in open_clip model -> (local weights path, tag config)."""
    import open_clip
    from open_clip.pretrained import download_pretrained_from_url

    cfg = open_clip.get_pretrained_cfg(name, tag)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(name)
        raise ModelNotFoundError(
            f"CLIP model {name!r} has no pretrained tag {tag!r}. Its tags are: "
            f"{', '.join(tags) if tags else '(none)'}; or pass a path to a weights file.")
    if cfg.get("file"):
        return cfg["file"], cfg
    hf_hub = cfg.get("hf_hub", "")
    if hf_hub:
        if hf_hub.endswith("/"):  # open_clip's convention: a repo id whose default weights file is meant
            repo_id, filenames = hf_hub.rstrip("/"), ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        else:
            repo_id, filename = os.path.split(hf_hub)
            stem, ext = os.path.splitext(filename)
            filenames = ([stem + ".safetensors"] if ext in (".bin", ".pth") else []) + [filename]
        path = fetch_first([HubFile(repo_id, f) for f in filenames], name=name, tag=tag, cache_dir=cache_dir)
        return str(path), cfg
    url = cfg.get("url", "")
    if not url:
        raise ModelNotFoundError(f"open_clip lists no download location for {name!r} / {tag!r}; "
                                 "pass a weights file path as `pretrained`.")
    clip_cache = Path(cache_dir or os.path.expanduser("~/.cache/clip"))
    target = clip_cache / os.path.basename(url)
    if settings.offline() and not target.is_file():
        raise offline_error(name, tag, f"{target} does not exist and STYLEKIT_OFFLINE / HF_HUB_OFFLINE is set",
                             f"Download {url} on a connected machine and put it at {target}, or pass its path "
                             "as `pretrained`.")
    try:
        return download_pretrained_from_url(url, cache_dir=str(clip_cache)), cfg
    except OSError as exc:
        raise offline_error(name, tag, f"downloading {url} failed ({exc})",
                             f"Download it on a connected machine and put it at {target}, or pass its path "
                             "as `pretrained`.") from exc


def default_tag(name: str) -> str:
    import open_clip

    tags = open_clip.list_pretrained_tags_by_model(name)
    if not tags:
        raise ModelNotFoundError(
            f"open_clip has no pretrained weights for {name!r}; pass a path to a weights file as `pretrained`.")
    return "openai" if "openai" in tags else tags[0]


def hub_repo(name: str) -> tuple[str, str]:
    """``hf://owner/repo[@revision]`` (or the deprecated ``hf-hub:owner/repo``) -> (repo id, revision)."""
    if name.startswith("hf-hub:"):
        warnings.warn(f"{name!r}: the 'hf-hub:owner/repo' form is deprecated; write 'hf://{name[len('hf-hub:'):]}' "
                      "(stylekit's one Hub address scheme).", DeprecationWarning, stacklevel=5)
        rest = name[len("hf-hub:"):]
    else:
        rest = name[len("hf://"):]
    rest, _, revision = rest.partition("@")
    repo_id = rest.strip("/")
    if repo_id.count("/") != 1:
        raise ModelNotFoundError(f"{name!r} should look like 'hf://owner/repo[@revision]': an open_clip repository "
                                 "on the Hugging Face Hub (open_clip_config.json plus weights).")
    return repo_id, revision or "main"
