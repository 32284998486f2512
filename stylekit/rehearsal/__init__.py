"""A full-size rehearsal world: random-weight stand-ins for every real-model file, in the real formats and places.

The real FFHQ pipeline needs files this project cannot ship or download in tests: NVIDIA's StyleGAN2 /
StyleGAN3 pickles, the e4e encoder, CLIP ViT-B-32, VGG16, published direction files. This package
writes each of them at its real size, in its publisher's format, at the location stylekit's registry
(and open_clip, torch hub) look in, as a real Hugging Face Hub cache. Random weights make every picture
meaningless but every code path, file size, memory figure and timing real, so tests and benchmarks can
rehearse the real models offline::

    python -m stylekit.rehearsal DIR            # build (or complete) the world; prints the env to export
    export HF_HUB_CACHE=DIR/hub TORCH_HOME=DIR/torch HF_HUB_OFFLINE=1 STYLEKIT_OFFLINE=1
    python -c "import stylekit; print(stylekit.load_generator('ffhq-1024'))"

Modules: :mod:`.nvidia_pickle` (the persistence-pickle writer), :mod:`.generators`, :mod:`.encoders`,
:mod:`.companions` (CLIP, VGG16, directions), :mod:`.hubcache` (the cache layout), :mod:`.world`
(parts, manifest, :func:`build_world`). A tool floor: nothing in the runtime imports it.
"""

from .world import PARTS, build_world, check_world, read_manifest, world_env, world_size

__all__ = ["PARTS", "build_world", "check_world", "read_manifest", "world_env", "world_size"]
