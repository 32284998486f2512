"""Named models: a short name resolves to a file shipped in the package or to a Hub file.

Like timm's model registry: ``resolve("ffhq-1024")`` says where the weights live and in which
format; ``stylekit.load_generator("ffhq-1024")`` fetches them through ``stylekit.hub`` (the
Hugging Face cache) and reads them with the matching loader.

Hub locations: NVIDIA publishes the official StyleGAN2-ADA / StyleGAN3 pickles on NGC (file names
below are NVIDIA's); the Hub repositories named here are community mirrors that were NOT verified
from the machine this registry was written on (it has no Hub access). Entries carry
``verified=False`` until someone confirms repo id, file name and revision; run
``python -m stylekit models`` to see them. ``hf://owner/repo/path`` loads any other Hub file.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import ModelNotFoundError
from .hub import HubFile


@dataclass(frozen=True)
class ModelEntry:
    """One registered model.

    ``package_file`` is a path relative to the ``stylekit`` package; otherwise ``hub`` names the
    Hub file. ``format`` is one of ``safetensors`` (canonical), ``nvidia-pkl``, ``rosinality-pt``.
    """

    name: str
    kind: str                      # 'generator', 'encoder', 'clip', 'predictor'
    format: str
    description: str
    hub: HubFile | None = None
    package_file: str | None = None
    verified: bool = False
    note: str = ""

    @property
    def source(self) -> str:
        if self.package_file is not None:
            return f"package:stylekit/{self.package_file}"
        return f"hf://{self.hub.repo_id}/{self.hub.filename}@{self.hub.revision}"


_NGC = "NVIDIA's official pickle (published on NGC); Hub mirror location not verified here"


def _sg(name, repo, filename, description, note=_NGC):
    return ModelEntry(name=name, kind="generator", format="nvidia-pkl", description=description,
                      hub=HubFile(repo, filename, "main"), verified=False, note=note)


_ENTRIES: tuple[ModelEntry, ...] = (
    ModelEntry(name="toyfaces", kind="generator", format="safetensors",
               description="StyleGAN2 64x64 trained by stylekit on procedural toy faces (offline default)",
               package_file="toyfaces/weights/generator.safetensors", verified=True,
               note="shipped inside the package; see stylekit/toyfaces/weights/generator.md"),
    ModelEntry(name="e4e-toyfaces", kind="encoder", format="safetensors",
               description="e4e encoder (image -> W+) trained by stylekit for the toyfaces generator",
               package_file="toyfaces/weights/encoder.safetensors", verified=True,
               note="shipped inside the package; see stylekit/toyfaces/weights/encoder.md"),
    ModelEntry(name="restyle-toyfaces", kind="encoder", format="safetensors",
               description="ReStyle-e4e encoder (6-channel, iterative) trained by stylekit for the toyfaces generator",
               package_file="toyfaces/weights/restyle_encoder.safetensors", verified=True,
               note="shipped inside the package; see stylekit/toyfaces/weights/encoder.md"),
    # StyleGAN2 (stylegan2-ada-pytorch format; converted from the original TF StyleGAN2 release).
    _sg("ffhq-1024", "public-data/StyleGAN2", "models/stylegan2-ffhq-1024x1024.pkl", "StyleGAN2 config-f, FFHQ 1024x1024"),
    _sg("ffhq-512", "public-data/StyleGAN2", "models/stylegan2-ffhq-512x512.pkl", "StyleGAN2, FFHQ 512x512"),
    _sg("ffhq-256", "public-data/StyleGAN2", "models/stylegan2-ffhq-256x256.pkl", "StyleGAN2, FFHQ 256x256"),
    _sg("ffhqu-1024", "public-data/StyleGAN2", "models/stylegan2-ffhqu-1024x1024.pkl", "StyleGAN2, unaligned FFHQ 1024x1024"),
    _sg("metfaces-1024", "public-data/StyleGAN2", "models/stylegan2-metfaces-1024x1024.pkl", "StyleGAN2-ADA, MetFaces 1024x1024"),
    _sg("metfacesu-1024", "public-data/StyleGAN2", "models/stylegan2-metfacesu-1024x1024.pkl", "StyleGAN2-ADA, unaligned MetFaces 1024x1024"),
    _sg("afhqcat-512", "public-data/StyleGAN2", "models/stylegan2-afhqcat-512x512.pkl", "StyleGAN2-ADA, AFHQ cats 512x512"),
    _sg("afhqdog-512", "public-data/StyleGAN2", "models/stylegan2-afhqdog-512x512.pkl", "StyleGAN2-ADA, AFHQ dogs 512x512"),
    _sg("afhqwild-512", "public-data/StyleGAN2", "models/stylegan2-afhqwild-512x512.pkl", "StyleGAN2-ADA, AFHQ wild 512x512"),
    _sg("afhqv2-512", "public-data/StyleGAN2", "models/stylegan2-afhqv2-512x512.pkl", "StyleGAN2, AFHQv2 512x512"),
    # StyleGAN3 (-T translation-equivariant, -R rotation-equivariant).
    _sg("sg3t-ffhq-1024", "public-data/StyleGAN3", "models/stylegan3-t-ffhq-1024x1024.pkl", "StyleGAN3-T, FFHQ 1024x1024"),
    _sg("sg3r-ffhq-1024", "public-data/StyleGAN3", "models/stylegan3-r-ffhq-1024x1024.pkl", "StyleGAN3-R, FFHQ 1024x1024"),
    _sg("sg3t-ffhqu-1024", "public-data/StyleGAN3", "models/stylegan3-t-ffhqu-1024x1024.pkl", "StyleGAN3-T, unaligned FFHQ 1024x1024"),
    _sg("sg3r-ffhqu-1024", "public-data/StyleGAN3", "models/stylegan3-r-ffhqu-1024x1024.pkl", "StyleGAN3-R, unaligned FFHQ 1024x1024"),
    _sg("sg3t-ffhqu-256", "public-data/StyleGAN3", "models/stylegan3-t-ffhqu-256x256.pkl", "StyleGAN3-T, unaligned FFHQ 256x256"),
    _sg("sg3r-ffhqu-256", "public-data/StyleGAN3", "models/stylegan3-r-ffhqu-256x256.pkl", "StyleGAN3-R, unaligned FFHQ 256x256"),
    _sg("sg3t-metfaces-1024", "public-data/StyleGAN3", "models/stylegan3-t-metfaces-1024x1024.pkl", "StyleGAN3-T, MetFaces 1024x1024"),
    _sg("sg3r-metfaces-1024", "public-data/StyleGAN3", "models/stylegan3-r-metfaces-1024x1024.pkl", "StyleGAN3-R, MetFaces 1024x1024"),
    _sg("sg3t-metfacesu-1024", "public-data/StyleGAN3", "models/stylegan3-t-metfacesu-1024x1024.pkl", "StyleGAN3-T, unaligned MetFaces 1024x1024"),
    _sg("sg3r-metfacesu-1024", "public-data/StyleGAN3", "models/stylegan3-r-metfacesu-1024x1024.pkl", "StyleGAN3-R, unaligned MetFaces 1024x1024"),
    _sg("sg3t-afhqv2-512", "public-data/StyleGAN3", "models/stylegan3-t-afhqv2-512x512.pkl", "StyleGAN3-T, AFHQv2 512x512"),
    _sg("sg3r-afhqv2-512", "public-data/StyleGAN3", "models/stylegan3-r-afhqv2-512x512.pkl", "StyleGAN3-R, AFHQv2 512x512"),
)

_REGISTRY: dict[str, ModelEntry] = {entry.name: entry for entry in _ENTRIES}


def list_models(kind: str | None = None) -> list[ModelEntry]:
    """All registered entries (optionally of one ``kind``), in registration order."""
    return [e for e in _REGISTRY.values() if kind is None or e.kind == kind]


def register(entry: ModelEntry, *, overwrite: bool = False) -> None:
    """Add a model to the registry (e.g. your own Hub repo) for this process."""
    if entry.name in _REGISTRY and not overwrite:
        raise ValueError(f"a model named {entry.name!r} is already registered")
    if (entry.hub is None) == (entry.package_file is None):
        raise ValueError("a ModelEntry needs exactly one of hub= or package_file=")
    _REGISTRY[entry.name] = entry


def resolve(name: str) -> ModelEntry:
    """Look up a registered name; unknown names raise :class:`ModelNotFoundError` listing the valid ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ModelNotFoundError(
            f"Unknown model {name!r}: not a registered name and not an existing file. Registered models: {known}. "
            "You can also pass a path to a .pkl/.pt/.safetensors file or an hf://owner/repo/file address.") from None


def package_path(relative: str) -> Path:
    """Absolute path of a file shipped inside the stylekit package."""
    return Path(str(resources.files("stylekit").joinpath(relative)))
