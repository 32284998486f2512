"""Generate tab: seeds, truncation psi and noise mode -> a grid of samples."""

from __future__ import annotations

import gradio as gr
import torch

from stylekit.cli import parse_seeds
from stylekit.errors import InvalidArgumentError
from stylekit.images import make_grid, tensor_to_pil
from stylekit.latent import Latent

from .common import (RENDER_S, SharedUI, describe, get_generator, gpu_task, number, render_pil, seed_list,
                     teaching_note, user_errors)
from .models import default_model
from .outputs import GRID_TILE, ZipOfPngs, default_for, render_chunks, sized_default

SHORT = """**Generate.** A random vector *z* is mapped to a style code *w*, and *w* steers every layer of the
synthesis network. *Truncation* (psi < 1) pulls *w* toward the average face: less variety, fewer artefacts."""

MORE = """The mapping network's depth is in the model line at the top (toyfaces: 4 layers; the FFHQ StyleGANs: 8).
*Noise* adds per-pixel detail (hair strands, pores); 'const' keeps it fixed between runs. *Use the first seed*
makes that sample the session's current latent, to mix, morph or edit in the other tabs."""
MEASURED = ("the toyfaces generator's Fréchet distance in the held-out judge's features is 1.02x the "
            "render-to-render floor, and its face crops reach 27.8 dB against the renders of their latents, with "
            "0.83 of their finest-scale detail (`python -m stylekit.bench toyfaces`, 1,000 report seeds; the "
            "312-kimg generator of 2026-12-02: 1.66x, 19.4 dB, 0.15). Truncation on 400 report seeds (`python -m "
            "stylekit.bench claims`): from psi 1 to 0.5 the spread of the judged attributes falls from 1.83 to 1.57 "
            "while the judge's face score rises only from 0.9988 to 0.9998 (it accepts almost every sample "
            "already); the Fréchet distance to the renders grows from 22 to 63.")
LESSON = "01_generator.py"

MAX_SEEDS = 16


#: the default seeds: on small models, on large ones (demos.outputs.sized_default; 6 faces at 1024 px fit the
#: gallery's 5 s on a 2-core CPU)
DEFAULT_SEEDS = ("0-7", "0-5")


def grid_tile(G) -> int:
    """The side of one sample in the grid: small generators enlarged to 128 px, large ones shrunk to
    :data:`demos.outputs.GRID_TILE` (256), so 16 samples of a 1024 px generator make a 2 K grid, not 8 K."""
    return min(max(int(G.img_resolution), 128), GRID_TILE)


@gpu_task(RENDER_S)
@user_errors
def generate(model: str, seeds: str, psi: float, noise_mode: str):
    """Returns ``(PIL grid image at display size, zip of the full-size PNGs seed0000.png ...)``.

    The seeds are rendered :func:`demos.outputs.chunk_size` at a time (2 at 1024 px), each chunk shrunk for the
    grid and written to the zip before the next, so memory does not grow with the number of seeds."""
    seed_list = parse_seeds(seeds)
    if len(seed_list) > MAX_SEEDS:
        raise InvalidArgumentError(f"at most {MAX_SEEDS} seeds at a time, got {len(seed_list)}.")
    if psi is None or not 0.0 <= float(psi) <= 1.5:
        raise InvalidArgumentError("truncation psi must be between 0 and 1.5.")
    if noise_mode not in ("const", "random", "none"):
        raise InvalidArgumentError("noise mode must be const, random or none.")
    G = get_generator(model)
    z = Latent.seed_z(G, seed_list, device=G.device)
    archive = ZipOfPngs("samples")
    try:
        with torch.no_grad():
            ws = G.mapping(z, None, truncation_psi=float(psi))
        tiles = render_chunks(G, ws, size=grid_tile(G), names=[f"seed{s:04d}" for s in seed_list], archive=archive,
                              noise_mode=noise_mode)
    finally:
        path = archive.close()
    return tensor_to_pil(make_grid(tiles, ncols=min(len(seed_list), 8))), path


@gpu_task(RENDER_S)
@user_errors
def use_first_seed(model: str, seeds: str, psi: float):
    """Returns ``(latent, current image, description)``: the first seed's W code becomes the session latent."""
    first = seed_list(seeds, max_count=MAX_SEEDS)[0]
    psi = number(psi, "truncation psi", 0.0, 1.5)
    G = get_generator(model)
    latent = Latent.from_seed(G, first, psi=psi)
    return latent, render_pil(G, latent), describe(latent, f"Generate (seed {first}, psi {psi:g})")


@user_errors
def generate_defaults(model: str):
    """The seeds box for the picked model: 8 faces on small models, 6 on large ones (:data:`DEFAULT_SEEDS`)."""
    return gr.update(value=sized_default(get_generator(model), *DEFAULT_SEEDS))


def build(ui: SharedUI) -> None:
    """Add the tab's widgets inside the current ``gr.Tab``."""
    model = ui.model
    teaching_note(SHORT, MORE, lesson=LESSON, measured=MEASURED)
    with gr.Row():
        seeds = gr.Textbox(value=default_for(default_model(), *DEFAULT_SEEDS), label="Seeds (e.g. 0-7 or 1,5,9)")
        psi = gr.Slider(0.0, 1.5, value=0.7, step=0.05, label="Truncation psi")
        noise_mode = gr.Radio(["const", "random", "none"], value="const", label="Noise")
    button = gr.Button("Generate", variant="primary", elem_id="generate-button")
    output = gr.Image(label="Samples (shown at most 256 px each)", type="pil", elem_id="generate-output")
    full = gr.File(label="Full-size samples (zip of PNGs)", elem_id="generate-download")
    use = gr.Button("Use the first seed", elem_id="generate-use")
    button.click(generate, [model, seeds, psi, noise_mode], [output, full], api_name="generate")
    ui.loaded.change(generate_defaults, model, seeds, api_visibility="private", queue=False)
    use.click(use_first_seed, [model, seeds, psi], ui.use_outputs, api_name="generate_use")
