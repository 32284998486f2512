"""The rehearsal world: every file of the real-model pipeline, at full size, where stylekit looks for it.

Layout of a world folder ``DIR``::

    DIR/hub/models--owner--name/{blobs,snapshots,refs}   a Hugging Face Hub cache (HF_HUB_CACHE=DIR/hub)
    DIR/torch/hub/checkpoints/vgg16-397923af.pth         torch hub's cache (TORCH_HOME=DIR/torch)
    DIR/manifest.json                                    every file: part, size, sha256

Hub files are written at the registry's locations (:mod:`stylekit.catalog`; CLIP at the repository
open_clip's pretrained table names), so the real lookup paths find them offline:
``load_generator("ffhq-1024")``, ``load_encoder("e4e-ffhq")`` (and ``"restyle-e4e-ffhq"``),
``load_clip("ViT-B-32")``, the LPIPS VGG16 lookup, ``registry.artifact_path(<direction name>, "directions")``.

Parts (build only what you need with ``parts=``) are listed in :data:`PARTS`. Building is idempotent: a
file whose blob exists with the size (and, with ``verify=True``, the sha256) the manifest records is
kept; anything else is rewritten. Files are deterministic (seeded), so a rebuild gives the same bytes.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

from ..errors import CheckpointError, InvalidArgumentError
from . import companions as comp
from .encoders import e4e_writer, restyle_e4e_writer
from .generators import nvidia_pickle_writer
from .hubcache import snapshot_path, write_hub_file

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class WorldFile:
    """One file of the world: where it goes (a Hub repository file, or a path under ``DIR/torch``)."""

    part: str
    produce: Callable[[], Callable[[BinaryIO], None]]  # returns the writer (built lazily)
    repo_id: str | None = None
    filename: str | None = None
    torch_path: str | None = None  # relative to DIR/torch
    revision: int = 1  # raised when the writer changes what it writes: older files are rewritten

    def relpath(self) -> str:
        """The file's path relative to the world folder (the manifest key)."""
        if self.torch_path is not None:
            return f"torch/{self.torch_path}"
        return str(Path("hub") / snapshot_path(Path("."), self.repo_id, self.filename))


def _seed(name: str) -> int:
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def _hub(kind: str, name: str) -> tuple[str, str]:
    from .. import registry

    artifact = registry.resolve(name, kind)
    return artifact.hub.repo_id, artifact.hub.filename


def _clip_location(model: str = "ViT-B-32", tag: str = "openai") -> tuple[str, str]:
    """The Hub repository and file open_clip (and stylekit) fetch for ``model`` / ``tag``."""
    import open_clip

    from ..clip_sources import HF_WEIGHT_NAMES

    hf_hub = (open_clip.get_pretrained_cfg(model, tag) or {}).get("hf_hub", "")
    if not hf_hub:
        raise InvalidArgumentError(f"open_clip names no Hub repository for {model} / {tag}.")
    if hf_hub.endswith("/"):
        return hf_hub.rstrip("/"), HF_WEIGHT_NAMES[0]
    repo_id, filename = os.path.split(hf_hub)
    return repo_id, filename


def _files() -> list[WorldFile]:
    from ..catalog import E4E_DIRECTIONS, INTERFACEGAN_BOUNDARIES
    from ..invert.losses import VGG16_FILENAME

    files = []
    for part, name, kind in (("ffhq-1024", "ffhq-1024", "stylegan2"), ("sg3t-ffhq-1024", "sg3t-ffhq-1024", "stylegan3-t"),
                             ("sg3r-ffhq-1024", "sg3r-ffhq-1024", "stylegan3-r")):
        repo, filename = _hub("generator", name)
        files.append(WorldFile(part, lambda kind=kind, name=name: nvidia_pickle_writer(kind, 1024, seed=_seed(name)),
                               repo, filename, revision=2))  # 2: with the training discriminator
    repo, filename = _hub("encoder", "e4e-ffhq")
    files.append(WorldFile("e4e-ffhq", lambda: e4e_writer(seed=_seed("e4e-ffhq")), repo, filename))
    repo, filename = _hub("encoder", "restyle-e4e-ffhq")
    files.append(WorldFile("restyle-e4e-ffhq", lambda: restyle_e4e_writer(seed=_seed("restyle-e4e-ffhq")), repo,
                           filename))
    repo, filename = _clip_location()
    files.append(WorldFile("clip-vit-b-32", lambda: comp.clip_writer("ViT-B-32", seed=_seed("ViT-B-32")), repo, filename))
    files.append(WorldFile("vgg16-torch", lambda: comp.torchvision_vgg16_writer(seed=_seed("vgg16")),
                           torch_path=f"hub/checkpoints/{VGG16_FILENAME}"))
    repo, filename = _hub("perceptual", "vgg16")
    files.append(WorldFile("vgg16-timm", lambda: comp.timm_vgg16_writer(seed=_seed("vgg16-timm")), repo, filename))
    for attr in E4E_DIRECTIONS:
        name = f"e4e-ffhq-{attr}"
        files.append(WorldFile("directions", lambda name=name: comp.e4e_direction_writer(_seed(name)),
                               *_hub("directions", name)))
    for attr in INTERFACEGAN_BOUNDARIES:
        name = f"interfacegan-ffhq-{attr}"
        files.append(WorldFile("directions", lambda name=name: comp.boundary_writer(_seed(name)),
                               *_hub("directions", name)))
    files.append(WorldFile("directions", lambda: comp.e4e_pca_writer(_seed("ganspace-ffhq")),
                           *_hub("directions", "ganspace-ffhq")))
    files.append(WorldFile("directions", lambda: comp.ganspace_npz_writer(_seed("ganspace-ffhq")),
                           *_hub("directions", "ganspace-ffhq-ipca")))
    return files


#: Every part, in build order, with what it holds.
PARTS = {
    "ffhq-1024": "StyleGAN2 config-f FFHQ 1024 NVIDIA pickle (G, G_ema and the training D)",
    "sg3t-ffhq-1024": "StyleGAN3-T FFHQ 1024 NVIDIA pickle",
    "sg3r-ffhq-1024": "StyleGAN3-R FFHQ 1024 NVIDIA pickle",
    "e4e-ffhq": "e4e FFHQ encoder, official checkpoint layout (IR-SE-50 + rosinality decoder)",
    "restyle-e4e-ffhq": "ReStyle-e4e FFHQ encoder, official checkpoint layout (IR-SE-50 backbone, 6 channels, "
                        "+ rosinality decoder)",
    "clip-vit-b-32": "open_clip ViT-B-32 'openai' weights where open_clip fetches them",
    "vgg16-torch": "torchvision VGG16 in torch hub's checkpoints (what LPIPS-VGG looks for first)",
    "vgg16-timm": "timm vgg16.tv_in1k model.safetensors (the registry's vgg16 entry)",
    "directions": "e4e InterFaceGAN directions, InterFaceGAN boundaries, e4e's GANSpace PCA, GANSpace's .npz",
}


def world_env(directory: str | os.PathLike) -> dict[str, str]:
    """The environment variables that point stylekit (and huggingface_hub, torch hub) at a world, offline."""
    root = Path(directory).resolve()
    return {"HF_HUB_CACHE": str(root / "hub"), "TORCH_HOME": str(root / "torch"), "HF_HUB_OFFLINE": "1",
            "STYLEKIT_OFFLINE": "1"}


def _check_parts(parts: Iterable[str] | None) -> list[str]:
    if parts is None:
        return list(PARTS)
    parts = [parts] if isinstance(parts, str) else list(parts)
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise InvalidArgumentError(f"unknown rehearsal part(s) {unknown}; parts are: {', '.join(PARTS)}.")
    return parts


def read_manifest(directory: str | os.PathLike) -> dict:
    """The world's manifest (``{'version', 'files': {relpath: {part, size, sha256}}}``); empty if none."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        return {"version": MANIFEST_VERSION, "files": {}}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable rehearsal manifest ({exc}); delete it to rebuild the world.") from exc
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise CheckpointError(f"{path}: not a rehearsal manifest; delete it to rebuild the world.")
    return data


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _problem(root: Path, f: WorldFile, entry: dict | None, verify: bool) -> str | None:
    rel = f.relpath()
    path = root / rel
    if entry is None:
        return "not in the manifest"
    if entry.get("revision", 1) != f.revision:
        return f"written by revision {entry.get('revision', 1)} of its writer, now {f.revision}"
    if not path.exists():
        return "missing" + (" (dangling snapshot link)" if path.is_symlink() else "")
    size = path.stat().st_size
    if size != entry.get("size"):
        return f"size {size} bytes, the manifest says {entry.get('size')}"
    if path.is_symlink() and Path(os.path.realpath(path)).name != entry.get("sha256"):
        return "its blob is not named by the recorded sha256"
    if verify and _sha256(path) != entry.get("sha256"):
        return "sha256 differs from the manifest"
    return None


def check_world(directory: str | os.PathLike, *, parts: Iterable[str] | None = None,
                verify: bool = False) -> dict[str, str]:
    """``{relpath: problem}`` for every file of ``parts`` that is missing, of the wrong size (truncated),
    or (``verify``) whose sha256 differs from the manifest; empty when the world is whole."""
    root = Path(directory)
    wanted = _check_parts(parts)
    files = read_manifest(root)["files"]
    problems = {}
    for f in _files():
        if f.part in wanted:
            problem = _problem(root, f, files.get(f.relpath()), verify)
            if problem:
                problems[f.relpath()] = problem
    return problems


@contextlib.contextmanager
def _locked(root: Path):
    """One builder at a time per world (test sessions and benchmarks may share one)."""
    import fcntl

    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build_world(directory: str | os.PathLike, *, parts: Iterable[str] | None = None, verify: bool = False,
                log: Callable[[str], None] | None = None) -> dict:
    """Build (or complete) the rehearsal world in ``directory``; returns the manifest.

    Args:
        parts: names from :data:`PARTS` (None: all).
        verify: re-hash existing files (slow for gigabytes) instead of trusting size + blob name.
        log: called with one line per file written or kept (default: silent).
    """
    root = Path(directory).resolve()
    wanted = _check_parts(parts)
    say = log or (lambda line: None)
    with _locked(root):
        manifest = read_manifest(root)
        for f in _files():
            if f.part not in wanted:
                continue
            rel = f.relpath()
            problem = _problem(root, f, manifest["files"].get(rel), verify)
            if problem is None:
                say(f"kept   {rel}")
                continue
            start = time.perf_counter()
            writer = f.produce()
            if f.torch_path is not None:
                path, size, digest = _write_plain(root / rel, writer)
            else:
                path, size, digest = write_hub_file(root / "hub", f.repo_id, f.filename, writer)
            manifest["files"][rel] = {"part": f.part, "size": size, "sha256": digest, "revision": f.revision}
            _write_manifest(root, manifest)
            say(f"wrote  {rel} ({size / 1e6:.1f} MB, {time.perf_counter() - start:.1f} s; was: {problem})")
    return manifest


def _write_plain(path: Path, writer) -> tuple[Path, int, str]:
    from .hubcache import _HashingWriter

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".incomplete")
    with open(tmp, "wb") as fh:
        hashing = _HashingWriter(fh)
        writer(hashing)
    os.replace(tmp, path)
    return path, hashing.size, hashing.sha256.hexdigest()


def _write_manifest(root: Path, manifest: dict) -> None:
    manifest["version"] = MANIFEST_VERSION
    tmp = root / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(tmp, root / MANIFEST)


def world_size(directory: str | os.PathLike) -> int:
    """Bytes of every file the manifest records."""
    return sum(int(e.get("size", 0)) for e in read_manifest(directory)["files"].values())
