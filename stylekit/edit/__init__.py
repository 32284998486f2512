"""Latent editing: every classic StyleGAN editing technique as a plain function on :class:`~stylekit.latent.Latent`.

Modules (one per technique; each gallery tab wraps one):

- :mod:`~stylekit.edit.arithmetic`   interpolation (lerp / slerp), style mixing, analogies, truncation
- :mod:`~stylekit.edit.interfacegan` supervised linear boundaries (Shen et al. 2020), conditional editing
- :mod:`~stylekit.edit.ganspace`     PCA directions in W (Härkönen et al. 2020)
- :mod:`~stylekit.edit.sefa`         closed-form factorization of the style affines (Shen & Zhou 2021)
- :mod:`~stylekit.edit.stylespace`   single StyleSpace channels (Wu et al. 2021)
- :mod:`~stylekit.edit.local`        part transfer with k-means on activations (Collins et al. 2020)
- :mod:`~stylekit.edit.retrieval`    part-based retrieval and transfer (Retrieve in Style, Chong et al. 2021)
- :mod:`~stylekit.edit.sg3_pose`     StyleGAN3 rotation / translation controls and a rotation direction
- :mod:`~stylekit.edit.rig`          rig control after StyleRig (Tewari et al. 2020): set named rig values with a RigNet
- :mod:`~stylekit.edit.styleflow`    attribute-conditioned edits with a conditional CNF (StyleFlow, Abdal et al. 2021)

Shared pieces: :class:`Direction` and :func:`edit` (any linear direction in W/W+, from any method
or from a published ``.pt`` / ``.npy`` file), layer presets (:func:`layer_presets`) and the hook
utility (:mod:`~stylekit.edit.hooks`). The default settings of the fitting protocols are the named
presets of :mod:`~stylekit.edit.presets`.

Names are imported lazily: ``import stylekit.edit`` does no work.
"""

from __future__ import annotations

from stylekit.lazy import lazy_exports

_LAZY = {
    "Direction": "stylekit.edit.direction",
    "edit": "stylekit.edit.direction",
    "signed_distance": "stylekit.edit.direction",
    "save_direction": "stylekit.edit.direction",
    "load_direction": "stylekit.edit.direction",
    "layer_presets": "stylekit.edit.layers",
    "resolve_layers": "stylekit.edit.layers",
    "ws_resolutions": "stylekit.edit.layers",
    "describe_layers": "stylekit.edit.layers",
    "lerp": "stylekit.edit.arithmetic",
    "slerp": "stylekit.edit.arithmetic",
    "interpolate": "stylekit.edit.arithmetic",
    "interpolation_frames": "stylekit.edit.arithmetic",
    "style_mix": "stylekit.edit.arithmetic",
    "crossover": "stylekit.edit.arithmetic",
    "mixing_grid": "stylekit.edit.arithmetic",
    "analogy": "stylekit.edit.arithmetic",
    "truncate": "stylekit.edit.arithmetic",
}

_SUBMODULES = ("arithmetic", "direction", "ganspace", "hooks", "interfacegan", "layers", "local", "presets",
               "retrieval", "rig", "sefa", "sg3_pose", "styleflow", "stylespace")

__all__ = sorted(_LAZY) + list(_SUBMODULES)


__getattr__ = lazy_exports(__name__, _LAZY, _SUBMODULES)
