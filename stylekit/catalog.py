"""The published weights stylekit knows by name: registered like any world's files.

NVIDIA publishes the official StyleGAN2-ADA / StyleGAN3 pickles on NGC (the file names below are
NVIDIA's); the Hub repositories named here are community mirrors that were NOT verified from the
machine this catalogue was written on (it has no Hub access), so they carry ``verified=False`` until
someone confirms repo id, file name and revision (``python -m stylekit models`` shows the flag).
``hf://owner/repo/path[@revision]`` loads any other Hub file without registering it.

Companions of the FFHQ generators (``companions`` of each entry; :func:`stylekit.registry.companion`):
the e4e FFHQ encoder, the ReStyle-e4e FFHQ encoder (role ``restyle``), CLIP ViT-B-32 (open_clip's
``openai`` tag, the StyleCLIP papers' CLIP), the VGG16 of LPIPS, e4e's published InterFaceGAN directions
(age, smile, pose) and its GANSpace components, and the dlib landmarks for alignment. The e4e and ReStyle
encoders and e4e's edit files are published by their authors on Google Drive / GitHub
(omertov/encoder4editing, yuval-alaluf/restyle-encoder), not on the Hub: the Hub locations below are a
community mirror seen referenced in public code (e4e encoder) or the repository stylekit expects a
mirror in (:data:`COMPANIONS_REPO`); neither was verified. InterFaceGAN's published W boundaries were
fit for StyleGAN (v1) FFHQ: they are registered (same 512-d W shape, the files load) but are not named
as companions of the StyleGAN2 models. ``hf_space/WEIGHTS.md`` says which files a Space needs and how
to give them; ``python -m stylekit.rehearsal DIR`` writes random-weight stand-ins at these locations.
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
#: Where stylekit expects a Hub mirror of companion files whose authors publish them outside the Hub
#: (GitHub / Google Drive). Not verified to exist: create it (same paths) or use $STYLEKIT_HUB_MIRROR.
COMPANIONS_REPO = "stylekit/ffhq-companions"
_E4E_GITHUB = "https://github.com/omertov/encoder4editing"
_RESTYLE_GITHUB = "https://github.com/yuval-alaluf/restyle-encoder"
_INTERFACEGAN_GITHUB = "https://github.com/genforce/interfacegan/tree/master/boundaries"

#: e4e's published InterFaceGAN directions for StyleGAN2 FFHQ (editings/interfacegan_directions/<file>).
E4E_DIRECTIONS = {"age": "age.pt", "smile": "smile.pt", "pose": "pose.pt"}
#: InterFaceGAN's published W boundaries (boundaries/<file>); fit for StyleGAN (v1) FFHQ.
INTERFACEGAN_BOUNDARIES = {"age": "stylegan_ffhq_age_w_boundary.npy", "smile": "stylegan_ffhq_smile_w_boundary.npy",
                           "pose": "stylegan_ffhq_pose_w_boundary.npy",
                           "eyeglasses": "stylegan_ffhq_eyeglasses_w_boundary.npy",
                           "gender": "stylegan_ffhq_gender_w_boundary.npy"}

#: What goes with StyleGAN2 FFHQ 1024 (role -> registered name; "clip" is an open_clip architecture
#: whose default tag is "openai"; "preset" the StyleCLIP text presets).
_FFHQ_COMPANIONS = {"encoder": "e4e-ffhq", "restyle": "restyle-e4e-ffhq",
                    "clip": "ViT-B-32", "perceptual": "vgg16", "landmarks": "dlib-68",
                    "preset": "styleclip", "ganspace": "ganspace-ffhq",
                    **{f"direction:{attr}": f"e4e-ffhq-{attr}" for attr in E4E_DIRECTIONS}}
#: The other FFHQ generators (other sizes, unaligned, StyleGAN3): the encoder and W-space files above were made
#: for StyleGAN2 FFHQ 1024 (18 x 512 W+), so only the CLIP, LPIPS and landmarks apply.
_OTHER_FFHQ_COMPANIONS = {"clip": "ViT-B-32", "perceptual": "vgg16", "landmarks": "dlib-68", "preset": "styleclip"}
#: MetFaces (aligned and cropped the FFHQ way, with dlib's 68 landmarks): alignment and LPIPS apply.
_METFACES_COMPANIONS = {"perceptual": "vgg16", "landmarks": "dlib-68"}


def register() -> None:
    """Register the published generators, the LPIPS backbone and the dlib landmark model."""
    for group, repo in ((_STYLEGAN2, "public-data/StyleGAN2"), (_STYLEGAN3, "public-data/StyleGAN3")):
        for name, filename, description in group:
            companions = (_FFHQ_COMPANIONS if name == "ffhq-1024" else _OTHER_FFHQ_COMPANIONS if "ffhq" in name
                          else _METFACES_COMPANIONS if "metfaces" in name else {})
            _register(Artifact(name=name, kind="generator", format="nvidia-pkl", description=description,
                              hub=HubFile(repo, filename, "main"), licence=_NVIDIA_LICENCE, verified=False, note=_NGC,
                              companions=companions))
    _register_ffhq_companions()
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


def _register_ffhq_companions() -> None:
    """The e4e and ReStyle-e4e FFHQ encoders, e4e's directions and PCA, InterFaceGAN's boundaries, GANSpace's
    cache layout."""
    _register(Artifact(
        name="e4e-ffhq", kind="encoder", format="psp-official-pt",
        description="e4e encoder (IR-SE-50, 18 x 512 W+) for StyleGAN2 FFHQ 1024 (Tov et al. 2021)",
        hub=HubFile("AIRI-Institute/HairFastGAN", "pretrained_models/encoder4editing/e4e_ffhq_encode.pt", "main"),
        licence="MIT (e4e code); weights trained on FFHQ (CC BY-NC-SA 4.0)", verified=False,
        note=f"official file e4e_ffhq_encode.pt is on Google Drive, linked from {_E4E_GITHUB}; this Hub path is a "
             "community mirror referenced in public code, not verified here",
        companions={"generator": "ffhq-1024"}))
    _register(Artifact(
        name="restyle-e4e-ffhq", kind="encoder", format="restyle-official-pt",
        description="ReStyle-e4e encoder (IR-SE-50 backbone, 6 input channels, 18 x 512 W+ residuals) for StyleGAN2 "
                    "FFHQ 1024 (Alaluf et al. 2021), for method 'restyle'",
        hub=HubFile(COMPANIONS_REPO, "restyle/restyle_e4e_ffhq_encode.pt", "main"),
        licence="MIT (ReStyle code); weights trained on FFHQ (CC BY-NC-SA 4.0)", verified=False,
        note=f"official file restyle_e4e_ffhq_encode.pt is on Google Drive, linked from {_RESTYLE_GITHUB} "
             "(README, 'ReStyle + e4e' FFHQ); stylekit expects a copy in this Hub mirror; not verified",
        companions={"generator": "ffhq-1024"}))
    for attr, filename in E4E_DIRECTIONS.items():
        _register(Artifact(
            name=f"e4e-ffhq-{attr}", kind="directions", format="e4e-direction-pt",
            description=f"InterFaceGAN {attr} direction in W for StyleGAN2 FFHQ, as published with e4e ([1, 512])",
            hub=HubFile(COMPANIONS_REPO, f"e4e/editings/interfacegan_directions/{filename}", "main"),
            licence="MIT (e4e)", verified=False,
            note=f"official: {_E4E_GITHUB}/blob/main/editings/interfacegan_directions/{filename}; Hub mirror not verified",
            companions={"generator": "ffhq-1024"}))
    _register(Artifact(
        name="ganspace-ffhq", kind="directions", format="e4e-pca-pt",
        description="GANSpace principal components of StyleGAN2 FFHQ W, as published with e4e (comp/mean/std)",
        hub=HubFile(COMPANIONS_REPO, "e4e/editings/ganspace_pca/ffhq_pca.pt", "main"), licence="MIT (e4e)",
        verified=False, note=f"official: {_E4E_GITHUB}/blob/main/editings/ganspace_pca/ffhq_pca.pt; Hub mirror not verified",
        companions={"generator": "ffhq-1024"}))
    _register(Artifact(
        name="ganspace-ffhq-ipca", kind="directions", format="ganspace-npz",
        description="GANSpace's own component cache for StyleGAN2 FFHQ (style layer, IPCA, 80 components, 1M samples)",
        hub=HubFile(COMPANIONS_REPO, "ganspace/stylegan2-ffhq_style_ipca_c80_n1000000_w.npz", "main"),
        licence="Apache-2.0 (GANSpace)", verified=False,
        note="GANSpace computes this file on first use (its cache/components folder) rather than publishing it; "
             "stylekit expects a copy in this mirror; not verified",
        companions={"generator": "ffhq-1024"}))
    for attr, filename in INTERFACEGAN_BOUNDARIES.items():
        _register(Artifact(
            name=f"interfacegan-ffhq-{attr}", kind="directions", format="interfacegan-npy",
            description=f"InterFaceGAN {attr} boundary in W of StyleGAN (v1) FFHQ ([1, 512], unit normal)",
            hub=HubFile(COMPANIONS_REPO, f"interfacegan/boundaries/{filename}", "main"), licence="MIT (InterFaceGAN)",
            verified=False,
            note=f"official: {_INTERFACEGAN_GITHUB}/{filename}; fit for StyleGAN v1, not StyleGAN2 (so not a companion "
                 "of ffhq-1024); Hub mirror not verified"))
