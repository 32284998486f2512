"""The toyfaces world's shipped files, registered with the artifact registry.

Everything lives in ``stylekit/toyfaces/weights/`` with a model card beside each file. The registry
calls :func:`register` on its first lookup (see ``stylekit.registry.BUILTIN_WORLDS``); the runtime
core then loads these by name (``load_generator("toyfaces")``, ``load_clip("toyfaces")``,
``load_predictor("toyfaces")``...) without importing this package's code.
"""

from __future__ import annotations

from ..registry import Artifact, register as _register

WORLD = "toyfaces"
_DIR = "toyfaces/weights"
_LICENCE = "MIT (trained by stylekit on procedural renders)"
_SHIPPED = "shipped inside the package"

#: What goes with the toyfaces generator (roles understood by the gallery and the benches).
COMPANIONS = {"encoder": "e4e-toyfaces", "restyle": "restyle-toyfaces", "clip": WORLD, "predictor": WORLD,
              "relevance": WORLD, "preset": WORLD, "rig": WORLD,
              "styleflow": WORLD}


def _shipped(name: str, kind: str, stem: str, fmt: str, description: str, *, card: str | None = None,
             **extra) -> Artifact:
    return Artifact(name=name, kind=kind, format=fmt, description=description,
                    package_file=f"{_DIR}/{stem}.safetensors", licence=_LICENCE, verified=True, note=_SHIPPED,
                    card=f"{_DIR}/{card or stem}.md", **extra)


def artifacts() -> list[Artifact]:
    """The world's artifacts, one per shipped weights file."""
    return [
        _shipped(WORLD, "generator", "generator", "safetensors",
                 "StyleGAN2 64x64 trained by stylekit on procedural toy faces (offline default)",
                 companions=COMPANIONS),
        _shipped("e4e-toyfaces", "encoder", "encoder", "safetensors",
                 "e4e encoder (image -> W+) trained by stylekit for the toyfaces generator",
                 companions={"generator": WORLD}),
        _shipped("restyle-toyfaces", "encoder", "restyle_encoder", "safetensors",
                 "ReStyle-e4e encoder (6-channel, iterative) trained by stylekit for the toyfaces generator",
                 companions={"generator": WORLD, "bootstrap": "e4e-toyfaces"}),
        _shipped("psp-toyfaces", "encoder", "psp_encoder", "safetensors",
                 "pSp encoder (image -> W+): e4e's recipe without its delta regularisation, trained by stylekit "
                 "for the toyfaces generator (the e4e-vs-pSp comparison of bench claims)",
                 companions={"generator": WORLD}),
        _shipped(WORLD, "clip", "clip", "open_clip-safetensors",
                 "a small CLIP (open_clip, custom config) trained by stylekit on captioned toy faces",
                 extra_files={"open_clip_config": f"{_DIR}/toyfaces-clip.json"}),
        _shipped(WORLD, "predictor", "predictor", "safetensors",
                 "attribute predictor: reads the 15 toyfaces attributes back from any 64x64 image"),
        _shipped(WORLD, "judge", "judge", "stylekit.judge",
                 "held-out judge: 15 attributes + a face score; only the benchmarks use it (stylekit.judge)"),
        _shipped(WORLD, "rig", "rig", "stylekit.rig",
                 "rig network (StyleRig-style rig control: yaw, roll, smile, mouth and eyes open) trained by stylekit "
                 "for the toyfaces generator through its attribute predictor",
                 companions={"generator": WORLD, "predictor": WORLD}),
        _shipped(WORLD, "styleflow", "styleflow", "stylekit.styleflow",
                 "StyleFlow flow (conditional CNF between W and a Gaussian given the 15 attributes) trained by "
                 "stylekit for the toyfaces generator on the latents' ground-truth attributes",
                 companions={"generator": WORLD, "predictor": WORLD}),
        _shipped(WORLD, "relevance", "relevance", "stylekit-relevance",
                 "StyleCLIP global-directions relevance table of the toyfaces generator with the toyfaces CLIP",
                 companions={"generator": WORLD, "clip": WORLD}),
    ]


def register() -> None:
    """Register every toyfaces artifact (idempotent)."""
    for artifact in artifacts():
        _register(artifact)
