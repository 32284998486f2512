"""One registry for every file stylekit uses: a short name of a kind resolves to where it lives.

Like open_clip's ``pretrained.py`` and timm's model registry, one table answers "where are the
weights of X, in which format, under which licence, and what goes with it" for every kind:

==============  ===========================================================================
kind            what it is
==============  ===========================================================================
generator       a StyleGAN2 / StyleGAN3 (``stylekit.load_generator(name)``)
encoder         an e4e / pSp / ReStyle encoder (``stylekit.invert.encoder.load_encoder``)
clip            a CLIP for text-guided editing (``stylekit.clip_backend.load_clip``)
predictor       an attribute predictor (labels for InterFaceGAN; the toyfaces judge)
relevance       a StyleCLIP global-directions relevance table for a (generator, CLIP) pair
directions      a set of latent directions (InterFaceGAN boundaries, GANSpace components, ...)
perceptual      a perceptual-loss backbone (VGG16 for LPIPS)
landmarks       a face-landmark model for FFHQ-style alignment (dlib)
rig             a rig network (StyleRig-style rig control) trained for one generator
styleflow       a StyleFlow flow (attribute-conditioned CNF on W) trained for one generator
==============  ===========================================================================

A name is unique within its kind (the toyfaces world registers a generator, a CLIP, a predictor and a
relevance table all named ``"toyfaces"``). An artifact lives either in an installed Python package
(``package`` + ``package_file``: the toyfaces world ships inside stylekit; the dlib landmarks come in
``face_recognition_models``) or on the Hugging Face Hub (``hub``), fetched through
:mod:`stylekit.hub` into the Hub cache. ``companions`` names what goes with a generator (its
encoders, CLIP, predictor, relevance table and tuned presets).

Worlds plug in by registering their files: each ``stylekit.worlds`` entry point (and the worlds this
package ships, :data:`BUILTIN_WORLDS`) is a ``register()`` function, called once on the first lookup.
Nothing here imports a world's code statically, so the runtime core stays independent of toyfaces.

Hub entries marked ``verified=False`` could not be checked from the machine they were written on
(no Hub access); ``python -m stylekit models`` shows them.
"""

from __future__ import annotations

import importlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from .errors import CheckpointError, ModelNotFoundError
from .hub import HubFile

#: Every artifact kind, in the order ``python -m stylekit models`` lists them.
KINDS = ("generator", "encoder", "clip", "predictor", "judge", "relevance", "directions", "perceptual", "landmarks",
         "rig", "styleflow")

#: ``module:function`` of what ships with stylekit (the toyfaces world and the published-weights
#: catalogue), registered even when the package's entry points are not installed (a source checkout).
#: Third-party worlds use the ``stylekit.worlds`` entry-point group.
BUILTIN_WORLDS = ("stylekit.toyfaces.artifacts:register", "stylekit.catalog:register")
ENTRY_POINT_GROUP = "stylekit.worlds"


@dataclass(frozen=True)
class Artifact:
    """One registered file.

    Exactly one source: ``package_file`` (a path inside the installed Python package ``package``)
    or ``hub`` (a file in a Hugging Face Hub repository).
    """

    name: str                                   # short name, unique within its kind ("toyfaces", "ffhq-1024")
    kind: str                                   # one of KINDS
    format: str                                 # how to read it: "safetensors", "nvidia-pkl", "rosinality-pt", ...
    description: str                            # one line for `python -m stylekit models`
    hub: HubFile | None = None                  # Hub source (repo, file, revision)
    package_file: str | None = None             # or: a path relative to the package `package`
    package: str = "stylekit"                   # the installed Python package that ships `package_file`
    licence: str = "unknown"                    # SPDX-like licence of the weights ("MIT", "CC-BY-NC-SA-4.0", ...)
    verified: bool = False                      # True once name, source and revision were checked
    note: str = ""                              # provenance or caveats
    companions: Mapping[str, str] = field(default_factory=dict)  # role -> name of what goes with it
    card: str | None = None                     # package path of the model card, beside the weights
    extra_files: Mapping[str, str] = field(default_factory=dict)  # role -> package path (e.g. an open_clip config)

    @property
    def source(self) -> str:
        """Where it lives, as one string (``package:stylekit/...`` or ``hf://owner/repo/file@rev``)."""
        if self.package_file is not None:
            return f"package:{self.package}/{self.package_file}"
        return f"hf://{self.hub.repo_id}/{self.hub.filename}@{self.hub.revision}"

    @property
    def shipped(self) -> bool:
        """True when the file comes inside an installed package (no download)."""
        return self.package_file is not None


_REGISTRY: dict[tuple[str, str], Artifact] = {}
_LOCK = threading.Lock()
_WORLDS_LOADED = False


def _load_worlds() -> None:
    """Call every world's ``register()`` once (built-in worlds, then ``stylekit.worlds`` entry points)."""
    global _WORLDS_LOADED
    if _WORLDS_LOADED:
        return
    with _LOCK:
        if _WORLDS_LOADED:
            return
        _WORLDS_LOADED = True  # set first: a world's register() calls register(), which must not recurse here
        targets = list(BUILTIN_WORLDS)
        from importlib.metadata import entry_points

        targets += [ep.value for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.value not in targets]
        for target in targets:
            module_name, _, func_name = target.partition(":")
            getattr(importlib.import_module(module_name), func_name or "register")()


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ModelNotFoundError(f"unknown artifact kind {kind!r}; kinds are: {', '.join(KINDS)}.")


def register(artifact: Artifact, *, overwrite: bool = False) -> None:
    """Add an artifact (e.g. your own Hub file) to the registry for this process."""
    _check_kind(artifact.kind)
    if (artifact.hub is None) == (artifact.package_file is None):
        raise ValueError(f"artifact {artifact.name!r} needs exactly one of hub= or package_file=")
    key = (artifact.kind, artifact.name)
    if key in _REGISTRY and not overwrite and _REGISTRY[key] != artifact:
        raise ValueError(f"a {artifact.kind} named {artifact.name!r} is already registered")
    _REGISTRY[key] = artifact


def list_artifacts(kind: str | None = None) -> list[Artifact]:
    """Every registered artifact (optionally of one ``kind``), grouped by kind in :data:`KINDS` order."""
    _load_worlds()
    if kind is not None:
        _check_kind(kind)
    order = {k: i for i, k in enumerate(KINDS)}
    found = [a for a in _REGISTRY.values() if kind is None or a.kind == kind]
    return sorted(found, key=lambda a: order[a.kind])  # stable: registration order within a kind


def resolve(name: str, kind: str = "generator") -> Artifact:
    """The artifact called ``name`` of ``kind``; an unknown name raises :class:`ModelNotFoundError`
    naming the registered ones of that kind."""
    _load_worlds()
    _check_kind(kind)
    artifact = _REGISTRY.get((kind, name))
    if artifact is not None:
        return artifact
    known = ", ".join(a.name for a in list_artifacts(kind)) or "(none)"
    other = [k for k in KINDS if (k, name) in _REGISTRY]
    hint = f" ({name!r} is registered as a {' and a '.join(other)})" if other else ""
    raise ModelNotFoundError(
        f"Unknown model {name!r}{hint}: no {kind} of that name is registered and no such file exists. Registered {kind}s: "
        f"{known}. You can also pass a path to a file or an hf://owner/repo/path/to/file[@revision] address.")


def companion(name: str, role: str, kind: str = "generator") -> str | None:
    """The name of what goes with artifact ``name`` in ``role`` (``"encoder"``, ``"clip"``, ``"preset"``...), or None."""
    try:
        return resolve(name, kind).companions.get(role)
    except ModelNotFoundError:
        return None


def package_path(relative: str, package: str = "stylekit") -> Path:
    """Absolute path of a file shipped inside an installed package (default: stylekit itself).

    The package is located without importing it (``face_recognition_models`` imports pkg_resources).
    """
    import importlib.util

    spec = importlib.util.find_spec(package)
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    if not roots:
        raise ModelNotFoundError(f"the Python package {package!r} that ships {relative} is not installed; "
                                 f"install it (pip install {package.replace('_', '-')}).")
    for root in roots:
        candidate = Path(root) / relative
        if candidate.exists():
            return candidate
    return Path(roots[0]) / relative


def artifact_path(artifact: Artifact | str, kind: str | None = None, *, cache_dir: str | os.PathLike | None = None,
                  local_files_only: bool | None = None) -> Path:
    """A local path of the artifact's file: the shipped file, or the Hub file fetched into the Hub cache.

    Args:
        artifact: an :class:`Artifact` or a registered name (then ``kind`` is required).
        cache_dir, local_files_only: passed to :func:`stylekit.hub.fetch`.

    Raises: :class:`ModelNotFoundError` (unknown name), :class:`CheckpointError` (a shipped file is
    missing from the installation), :class:`~stylekit.errors.OfflineError` (a Hub file is not cached
    and cannot be downloaded; the message says how to supply it).
    """
    if isinstance(artifact, str):
        if kind is None:
            raise ValueError("artifact_path(name) needs the artifact's kind")
        artifact = resolve(artifact, kind)
    if artifact.package_file is not None:
        path = package_path(artifact.package_file, artifact.package)
        if not path.is_file():
            raise CheckpointError(f"the {artifact.kind} {artifact.name!r} should ship as {path}, which is missing; "
                                  f"reinstall {artifact.package}.")
        return path
    from . import hub

    return hub.fetch(artifact.hub, cache_dir=cache_dir, local_files_only=local_files_only)


def extra_file(artifact: Artifact, role: str) -> Path:
    """A shipped side file of an artifact (``extra_files[role]``), e.g. an open_clip config."""
    relative = artifact.extra_files.get(role)
    if relative is None:
        raise CheckpointError(f"the {artifact.kind} {artifact.name!r} has no {role!r} file registered.")
    return package_path(relative, artifact.package)
