"""The stylekit gallery: one gr.Blocks with a model picker and one tab per technique.

Run ``python app.py`` (serves on http://127.0.0.1:7860 with the offline ``toyfaces`` model).
"""

from __future__ import annotations

import argparse
import os

import gradio as gr

from demos import common, generate

TABS = [("Generate", generate)]


def build_app() -> gr.Blocks:
    with gr.Blocks(title="stylekit: StyleGAN inversion and editing") as demo:
        gr.Markdown("# stylekit\nExplore how StyleGAN's latent spaces work. The default model, *toyfaces*, "
                    "runs offline; Hub models are downloaded on first use.")
        model = gr.Dropdown(common.model_choices(), value=common.DEFAULT_MODEL, label="Model", elem_id="model-picker")
        for title, module in TABS:
            with gr.Tab(title):
                module.build(model)
    demo.queue(default_concurrency_limit=2, max_size=32)
    return demo


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Launch the stylekit gallery.")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--share", action="store_true")
    args = parser.parse_args(argv)
    build_app().launch(server_name=args.host, server_port=args.port, share=args.share)


if __name__ == "__main__":
    main()
