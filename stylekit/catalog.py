"""The published weights stylekit knows by name: registered like any world's files.

NVIDIA publishes the official StyleGAN2-ADA / StyleGAN3 pickles on NGC (the file names below are
NVIDIA's); the Hub repositories named here are community mirrors that were NOT verified from the
machine this catalogue was written on (it has no Hub access), so they carry ``verified=False`` until
someone confirms repo id, file name and revision (``python -m stylekit models`` shows the flag).
``hf://owner/repo/path[@revision]`` loads any other Hub file without registering it.
"""

from __future__ import annotations

from .hub import HubFile
from .registry import Artifact
from .registry import register as _register

_NGC = "NVIDIA's official pickle (published on NGC); Hub mirror location not verified here"
_NVIDIA_LICENCE = "NVIDIA Source Code License-NC (non-commercial)"

# name, file in the repository, description
_STYLEGAN2 = (
    ("ffhq-1024", "models/stylegan2-ffhq-1024x1024.pkl", "StyleGAN2 config-f, FFHQ 1024x1024"),
    ("ffhq-512", "models/stylegan2-ffhq-512x512.pkl", "StyleGAN2, FFHQ 512x512"),
    ("ffhq-256", "models/stylegan2-ffhq-256x256.pkl", "StyleGAN2, FFHQ 256x256"),
    ("ffhqu-1024", "models/stylegan2-ffhqu-1024x1024.pkl", "StyleGAN2, unaligned FFHQ 1024x1024"),
    ("metfaces-1024", "models/stylegan2-metfaces-1024x1024.pkl", "StyleGAN2-ADA, MetFaces 1024x1024"),
    ("metfacesu-1024", "models/stylegan2-metfacesu-1024x1024.pkl", "StyleGAN2-ADA, unaligned MetFaces 1024x1024"),
    ("afhqcat-512", "models/stylegan2-afhqcat-512x512.pkl", "StyleGAN2-ADA, AFHQ cats 512x512"),
    ("afhqdog-512", "models/stylegan2-afhqdog-512x512.pkl", "StyleGAN2-ADA, AFHQ dogs 512x512"),
    ("afhqwild-512", "models/stylegan2-afhqwild-512x512.pkl", "StyleGAN2-ADA, AFHQ wild 512x512"),
    ("afhqv2-512", "models/stylegan2-afhqv2-512x512.pkl", "StyleGAN2, AFHQv2 512x512"),
)
_STYLEGAN3 = (
    ("sg3t-ffhq-1024", "models/stylegan3-t-ffhq-1024x1024.pkl", "StyleGAN3-T, FFHQ 1024x1024"),
    ("sg3r-ffhq-1024", "models/stylegan3-r-ffhq-1024x1024.pkl", "StyleGAN3-R, FFHQ 1024x1024"),
    ("sg3t-ffhqu-1024", "models/stylegan3-t-ffhqu-1024x1024.pkl", "StyleGAN3-T, unaligned FFHQ 1024x1024"),
    ("sg3r-ffhqu-1024", "models/stylegan3-r-ffhqu-1024x1024.pkl", "StyleGAN3-R, unaligned FFHQ 1024x1024"),
    ("sg3t-ffhqu-256", "models/stylegan3-t-ffhqu-256x256.pkl", "StyleGAN3-T, unaligned FFHQ 256x256"),
    ("sg3r-ffhqu-256", "models/stylegan3-r-ffhqu-256x256.pkl", "StyleGAN3-R, unaligned FFHQ 256x256"),
    ("sg3t-metfaces-1024", "models/stylegan3-t-metfaces-1024x1024.pkl", "StyleGAN3-T, MetFaces 1024x1024"),
    ("sg3r-metfaces-1024", "models/stylegan3-r-metfaces-1024x1024.pkl", "StyleGAN3-R, MetFaces 1024x1024"),
    ("sg3t-metfacesu-1024", "models/stylegan3-t-metfacesu-1024x1024.pkl", "StyleGAN3-T, unaligned MetFaces 1024x1024"),
    ("sg3r-metfacesu-1024", "models/stylegan3-r-metfacesu-1024x1024.pkl", "StyleGAN3-R, unaligned MetFaces 1024x1024"),
    ("sg3t-afhqv2-512", "models/stylegan3-t-afhqv2-512x512.pkl", "StyleGAN3-T, AFHQv2 512x512"),
    ("sg3r-afhqv2-512", "models/stylegan3-r-afhqv2-512x512.pkl", "StyleGAN3-R, AFHQv2 512x512"),
)
#: What goes with the FFHQ generators (the StyleCLIP paper's CLIP and preset; no FFHQ encoder is registered yet).
_FFHQ_COMPANIONS = {"clip": "ViT-B-32", "preset": "styleclip"}


def register() -> None:
    """Register the published generators, the LPIPS backbone and the dlib landmark model."""
    for group, repo in ((_STYLEGAN2, "public-data/StyleGAN2"), (_STYLEGAN3, "public-data/StyleGAN3")):
        for name, filename, description in group:
            _register(Artifact(name=name, kind="generator", format="nvidia-pkl", description=description,
                              hub=HubFile(repo, filename, "main"), licence=_NVIDIA_LICENCE, verified=False, note=_NGC,
                              companions=_FFHQ_COMPANIONS if "ffhq" in name else {}))
    _register(Artifact(
        name="vgg16", kind="perceptual", format="torchvision-vgg16",
        description="torchvision's ImageNet VGG16 (the backbone of LPIPS-VGG), as timm republishes it",
        hub=HubFile("timm/vgg16.tv_in1k", "model.safetensors", "main"), licence="BSD-3-Clause (torchvision)",
        verified=False, note="repository layout not verified here; $STYLEKIT_VGG16 or torch hub's "
                             "checkpoints/vgg16-397923af.pth are used first"))
    _register(Artifact(
        name="dlib-68", kind="landmarks", format="dlib-shape-predictor",
        description="dlib's 68-point face landmark model (FFHQ-style alignment)",
        package="face_recognition_models", package_file="models/shape_predictor_68_face_landmarks.dat",
        licence="CC0-1.0", verified=True, note="from the face-recognition-models package (pip install 'stylekit[align]')"))
