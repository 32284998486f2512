"""The stylekit gallery: one gr.Blocks with a model picker and one tab per technique.

Run ``python app.py`` (serves on http://127.0.0.1:7860 with the offline ``toyfaces`` model).

Every callback has an ``api_name``, so ``gradio_client`` can drive the app (``Client(url).view_api()``
lists them). The session's current latent lives in a ``gr.State`` (one per browser session / client);
each tab's *Use this result* button makes its result the current latent for the other tabs.
"""

from __future__ import annotations

import argparse
import os

import gradio as gr

from demos import common, edit, generate, invert, local, mixing, morph, sg3, stylespace, text

MAX_UPLOAD = "25mb"  # larger uploads are refused by the server before any callback runs
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
]


@common.user_errors
def model_info(model: str, progress=gr.Progress(track_tqdm=True)) -> str:
    """Returns a line describing the picked model (loading it first; Hub models download with progress)."""
    from stylekit.edit import describe_layers

    progress(0, desc=f"Loading {model} (Hub models are downloaded on first use)")
    G = common.get_generator(model)
    arch = getattr(G, "arch", type(G).__name__)
    return (f"**{model}**: {arch}, {G.img_resolution}x{G.img_resolution}, {G.num_ws} W+ rows of {G.w_dim} "
            f"({describe_layers(G)}).")


@common.user_errors
def clear_latent():
    """Returns ``(None latent, no image, the 'none yet' description)``."""
    return None, None, common.EMPTY_INFO


def build_app() -> gr.Blocks:
    with gr.Blocks(title="stylekit: StyleGAN inversion and editing") as demo:
        gr.Markdown("# stylekit\nExplore how StyleGAN's latent spaces work. The default model, *toyfaces*, "
                    "runs offline; Hub models are downloaded on first use (a file path or an hf://owner/repo/file "
                    "address works too).")
        with gr.Row():
            with gr.Column(scale=3):
                model = gr.Dropdown(common.model_choices(), value=common.DEFAULT_MODEL, label="Model",
                                    allow_custom_value=True, elem_id="model-picker")
                info = gr.Markdown(elem_id="model-info")
            with gr.Column(scale=2):
                current_info = gr.Markdown(common.EMPTY_INFO, elem_id="current-info")
                clear = gr.Button("Forget the current latent", size="sm")
            with gr.Column(scale=1, min_width=140):
                current_image = gr.Image(label="Current latent", type="pil", height=160, interactive=False,
                                         elem_id="current-image")
        ui = common.SharedUI(model=model, latent=gr.State(None), current_image=current_image,
                             current_info=current_info)
        for title, module in TABS:
            with gr.Tab(title):
                module.build(ui)
        gr.on([demo.load, model.change], model_info, model, info, api_name="model_info")
        clear.click(clear_latent, None, ui.use_outputs, api_name="clear_latent")
    demo.queue(default_concurrency_limit=2, max_size=32)
    return demo


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Launch the stylekit gallery.")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--share", action="store_true")
    args = parser.parse_args(argv)
    build_app().launch(server_name=args.host, server_port=args.port, share=args.share, max_file_size=MAX_UPLOAD)


if __name__ == "__main__":
    main()
