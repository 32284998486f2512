"""The stylekit gallery: one gr.Blocks with a model picker and one tab per technique.

Run ``python app.py`` (serves on http://127.0.0.1:7860 with the offline ``toyfaces`` model).

Every callback has an ``api_name``, so ``gradio_client`` can drive the app (``Client(url).view_api()``
lists them, every input and output named; ``/models`` lists the registered generator names). The
session's current latent lives in a ``gr.State`` (one per browser session / client); each tab's *Use this
result* button makes its result the current latent for the other tabs. Session state expires
``--state-ttl`` seconds (default two hours) after it was last set.

For the person running it: models load in their own queue and never hold up another user
(:mod:`demos.models`), on the one device :mod:`demos.device` picks (``STYLEKIT_DEVICE``; CUDA when there is a
GPU); on a ZeroGPU Space the heavy callbacks borrow a GPU through ``spaces.GPU``. ``STYLEKIT_DEFAULT_MODEL``
names the first model (toyfaces when unset); a bad device or model name stops the start with a message.
Hub requests wait at most ``STYLEKIT_HUB_TIMEOUT`` seconds (5 here unless set). A user's mistake is one
``WARNING user error ...`` line in the log, only unexpected errors print a traceback.
``python -m demos.bench_soak`` puts a classroom's load on it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings

from stylekit import settings

if settings.zero_gpu_space():  # ZeroGPU wants spaces imported before anything touches CUDA
    try:
        import spaces  # noqa: F401
    except ImportError:
        pass

import gradio as gr  # noqa: E402

from demos import (common, edit, generate, invert, local, mixing, models, morph, sg3, stylespace, text,  # noqa: E402
                   video)
from stylekit.errors import StylekitError  # noqa: E402

GALLERY_HUB_TIMEOUT_S = "5"  # STYLEKIT_HUB_TIMEOUT for the gallery: a stalled Hub fails a load in seconds

MAX_UPLOAD = "25mb"  # larger uploads are refused by the server before any callback runs
#: the Morph frames: as tall as their rows (Gradio's gallery otherwise keeps a fixed 450 px, blank below one row)
CSS = ("#morph-gallery .grid-wrap.fixed-height { height: auto !important; min-height: 0 !important; "
       "max-height: none !important; }")
TABS = [
    ("Generate", generate),
    ("Style mixing", mixing),
    ("Invert", invert),
    ("Edit", edit),
    ("StyleSpace", stylespace),
    ("Local edits", local),
    ("Morph", morph),
    ("Text", text),
    ("StyleGAN3 pose", sg3),
    ("Video", video),
]


@common.user_errors
def model_info(model: str, progress=gr.Progress()) -> str:
    """Returns a line describing the picked model (loading it first; Hub models download on first use)."""
    progress(0, desc=f"Loading {model} (Hub models are downloaded on first use)")
    try:
        G = models.load(model, progress=common.download_progress(progress, f"Loading {model}"))
    except StylekitError as exc:
        raise common.user_error(exc, "loading a model") from None
    return models.describe_model(model, G)


def pick_model(model: str, loaded: str, progress=gr.Progress()):
    """The picker's handler: returns ``(picker value, info line, loaded model)``. When ``model`` fails to load,
    the picker goes back to ``loaded`` (the last model that worked) and the info line says why."""
    progress(0, desc=f"Loading {model} (Hub models are downloaded on first use)")
    try:
        G = models.load(model, progress=common.download_progress(progress, f"Loading {model}"))
    except StylekitError as exc:
        common.user_error(exc, "picking a model")  # logs one line
        gr.Warning(f"{model} could not be loaded; still using {loaded}.")
        line = models.describe_model(loaded, models.load(loaded))
        return gr.update(value=loaded), f"**Could not load {model}:** {exc}\n\nStill using {line}", loaded
    return gr.update(), models.describe_model(model, G), model


@common.user_errors
def clear_latent():
    """Returns ``(None latent, no image, the 'none yet' description)``."""
    return None, None, common.EMPTY_INFO


def build_app() -> gr.Blocks:
    """The gallery. Raises the stylekit error of a bad ``STYLEKIT_DEVICE`` or ``STYLEKIT_DEFAULT_MODEL``."""
    _, first = models.check_startup()
    common.quiet_input_checks()
    common.atomic_image_cache()
    # result images are files in Gradio's cache: every 10 minutes, those older than an hour are deleted
    with gr.Blocks(title="stylekit: StyleGAN inversion and editing", delete_cache=(600, 3600)) as demo:
        gr.Markdown("# stylekit\nExplore how StyleGAN's latent spaces work. The default model, *toyfaces*, "
                    "runs offline; Hub models are downloaded on first use (a file path or an hf://owner/repo/file "
                    "address works too).")
        with gr.Row():
            with gr.Column(scale=3):
                model = models.ModelPicker(models.model_choices(), value=first, label="Model",
                                           allow_custom_value=True, elem_id="model-picker")
                info = gr.Markdown(label="model info", elem_id="model-info")
                loaded = gr.Textbox(first, visible=False, label="loaded model")
            with gr.Column(scale=2):
                current_info = gr.Markdown(common.EMPTY_INFO, label="current latent info", elem_id="current-info")
                clear = gr.Button("Forget the current latent", size="sm")
            with gr.Column(scale=1, min_width=140):
                current_image = gr.Image(label="Current latent", type="pil", height=160, interactive=False,
                                         elem_id="current-image")
        ui = common.SharedUI(model=model, latent=common.session_state(), current_image=current_image,
                             current_info=current_info, loaded=loaded)
        for title, module in TABS:
            with gr.Tab(title):
                module.build(ui)
        # loading runs in its own concurrency group: a slow or failing Hub download never holds up the tabs
        load = {"concurrency_id": "model_load", "concurrency_limit": 4}
        demo.load(model_info, model, info, api_name="model_info", **load)
        model.input(pick_model, [model, loaded], [model, info, loaded], api_visibility="private", **load)
        models_list = gr.Textbox(visible=False, label="models")
        demo.load(models.list_models, None, models_list, api_name="models", queue=False)
        clear.click(clear_latent, None, ui.use_outputs, api_name="clear_latent")
    demo.queue(default_concurrency_limit=2, max_size=32)
    return demo


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas (``mallopt(M_ARENA_MAX)``, as ``MALLOC_ARENA_MAX`` would) before the server's
    threads start: each of Gradio's worker threads otherwise gets its own arena and the server's memory kept
    growing under a classroom's load (+21% in ten minutes of ``python -m demos.bench_soak``; +1.5% with two
    arenas). Returns False where there is no glibc (macOS, Windows, musl) or ``MALLOC_ARENA_MAX`` is set."""
    import ctypes
    import ctypes.util

    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(-8, int(arenas)))  # -8: M_ARENA_MAX
    except (OSError, AttributeError):
        return False


def _configure_logging() -> None:
    """The gallery's own log lines (one per user error, one per loaded model) on stderr."""
    for name in ("stylekit.gallery", "stylekit.hub"):  # the hub's: one line per download (file and size)
        log = logging.getLogger(name)
        if not log.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
            log.addHandler(handler)
            log.setLevel(logging.INFO)
            log.propagate = False
    # stylekit.images refuses images above its own pixel limit with a readable error; PIL's earlier
    # warning about the same image would only add two lines to the log
    from PIL import Image

    warnings.simplefilter("ignore", Image.DecompressionBombWarning)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Launch the stylekit gallery.")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--share", action="store_true")
    parser.add_argument("--state-ttl", type=float, default=common.STATE_TTL_S, metavar="SECONDS",
                        help="how long a session's latent and results are kept after they were last set "
                             f"(default {common.STATE_TTL_S:g})")
    args = parser.parse_args(argv)
    common.STATE_TTL_S = args.state_ttl
    os.environ.setdefault("STYLEKIT_HUB_TIMEOUT", GALLERY_HUB_TIMEOUT_S)
    limit_malloc_arenas()
    _configure_logging()
    try:
        where, first = models.check_startup()
    except StylekitError as exc:
        parser.error(str(exc))
    logging.getLogger("stylekit.gallery").info("computing on %s; first model %s", where, first)
    build_app().launch(server_name=args.host, server_port=args.port, share=args.share, max_file_size=MAX_UPLOAD,
                       css=CSS)


if __name__ == "__main__":
    main()
