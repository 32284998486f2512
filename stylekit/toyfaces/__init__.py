"""toyfaces: a procedural world of cartoon faces with known attributes.

It is the ground truth that stylekit's editing techniques are judged against: the renderer knows
every attribute of every face, so an "add glasses" direction can be checked by rendering, and the
attribute predictor (a small CNN shipped with the package) reads the attributes back from any
image, including GAN samples.

- :mod:`.attributes`: the attribute table (:data:`ATTRIBUTES`), sampler and unit scaling.
- :mod:`.renderer`: ``render`` (one PIL image) and ``render_batch`` (a ``[n, 3, S, S]`` tensor in
  ``[-1, 1]``), a vectorised torch renderer.
- :mod:`.captions`: natural-language captions and prompt pairs for text-guided editing.
- :mod:`.predictor`: ``new_predictor`` (the attribute predictor's toyfaces heads; the shipped weights load
  with ``stylekit.checkpoints.predictor.load_predictor("toyfaces")``).

Names are imported lazily: ``import stylekit.toyfaces`` does not import torch.
"""

from __future__ import annotations

from stylekit.lazy import lazy_exports

_LAZY = {
    "AttributeSpec": "attributes",
    "ATTRIBUTES": "attributes",
    "ATTRIBUTE_NAMES": "attributes",
    "BINARY_ATTRIBUTES": "attributes",
    "CONTINUOUS_ATTRIBUTES": "attributes",
    "attribute_spec": "attributes",
    "attribute_priors": "attributes",
    "default_attributes": "attributes",
    "sample_attributes": "attributes",
    "attributes_to_unit": "attributes",
    "unit_to_attributes": "attributes",
    "validate_attributes": "attributes",
    "clip_attributes": "attributes",
    "render": "renderer",
    "render_batch": "renderer",
    "caption": "captions",
    "attribute_prompts": "captions",
    "direction_prompts": "captions",
    "new_predictor": "predictor",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_exports(__name__, _LAZY)
