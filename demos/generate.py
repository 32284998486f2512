"""Generate tab: seeds, truncation psi and noise mode -> a grid of samples."""

from __future__ import annotations

import gradio as gr
import torch

from stylekit.cli import parse_seeds, z_from_seeds
from stylekit.errors import InvalidArgumentError
from stylekit.images import make_grid, tensor_to_pil

from .common import get_generator, teaching_note, user_errors

NOTE = """**Generate.** A StyleGAN maps a random vector *z* through an 8-layer MLP to *w*, and *w* steers
every layer of the synthesis network. *Truncation* (psi < 1) pulls *w* toward the average face: less
variety, fewer artefacts. *Noise* adds per-pixel detail (hair strands, pores); 'const' keeps it fixed."""

MAX_SEEDS = 16


@user_errors
def generate(model: str, seeds: str, psi: float, noise_mode: str):
    """Returns a PIL grid image for the given seeds."""
    seed_list = parse_seeds(seeds)
    if len(seed_list) > MAX_SEEDS:
        raise InvalidArgumentError(f"at most {MAX_SEEDS} seeds at a time, got {len(seed_list)}.")
    if psi is None or not 0.0 <= float(psi) <= 1.5:
        raise InvalidArgumentError("truncation psi must be between 0 and 1.5.")
    if noise_mode not in ("const", "random", "none"):
        raise InvalidArgumentError("noise mode must be const, random or none.")
    G = get_generator(model)
    z = z_from_seeds(seed_list, G.z_dim, G.device)
    with torch.no_grad():
        ws = G.mapping(z, None, truncation_psi=float(psi))
        images = G.synthesis(ws, noise_mode=noise_mode)
    if images.shape[-1] < 128:
        images = torch.nn.functional.interpolate(images, size=128, mode="nearest")
    return tensor_to_pil(make_grid(images, ncols=min(len(seed_list), 8)))


def build(model: gr.Dropdown) -> None:
    """Add the tab's widgets inside the current ``gr.Tab``."""
    teaching_note(NOTE)
    with gr.Row():
        seeds = gr.Textbox(value="0-7", label="Seeds (e.g. 0-7 or 1,5,9)")
        psi = gr.Slider(0.0, 1.5, value=0.7, step=0.05, label="Truncation psi")
        noise_mode = gr.Radio(["const", "random", "none"], value="const", label="Noise")
    button = gr.Button("Generate", variant="primary", elem_id="generate-button")
    output = gr.Image(label="Samples", type="pil", elem_id="generate-output")
    button.click(generate, [model, seeds, psi, noise_mode], output, api_name="generate")
