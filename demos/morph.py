"""Morph and expression transfer tab: interpolation frames (gallery + animated GIF) and latent analogies."""

from __future__ import annotations

import gradio as gr

from stylekit.edit.presets import ANALOGY
from stylekit.errors import InvalidArgumentError

from .common import (OPTIMISE_S, RENDER_S, SharedUI, cached_fit, choice, current_latent, get_generator, gpu_task,
                     integer, number, one_seed, render, row, session_state, teaching_note, to_pils, use_result,
                     user_errors)
from .invert import EXAMPLES, encoders_for, is_cartoon
from .models import default_model
from .outputs import GRID_TILE, ZipOfPngs, default_for, new_download, render_chunks, sized_default
from .readings import change_line, describe_group

SHORT = """**Morphing.** Codes close in W give similar faces, so a straight walk from one code to another morphs one
face into the other. **Analogy**: the change *from -> to* is a vector; adding it to another face (*target +
strength x (to - from)*) gives that face the same change: neutral -> smiling makes anyone smile."""

MORE = """In Z, whose samples lie near a sphere, the walk follows the great circle instead (*slerp*). Knobs: the other
face's seed, the number of frames, the path. The analogy's pair is either two seeds or an example photo pair
(the same toyface neutral and smiling, inverted once by the e4e encoder and cached; toyfaces only: the cartoons do
not fit a photo model, so other models start from two seeds). e4e's codes stay where the generator's edits behave
(its paper's point): two codes optimised into W from the same photos differ along directions that change nothing
in those two pictures but flip other faces' eyes, hair or glasses. Limiting the change to some layers
keeps the rest of the target (the middle rows: its pose and colours)."""
MEASURED = ("neutral -> smiling at strength 2 on all rows: predicted smile -0.09 -> 0.83 on 16 development seeds, "
            "the mouth opening as in the example, every other attribute within 0.05 of its range (5.0 of 255 per "
            "pixel); the pair inverted into W by optimisation instead flipped other faces' eyes or hair "
            "(edit/presets.py ANALOGY).")
LESSON = "03_editing.py"

PATHS = ("lerp", "slerp")
#: the morph's default other face: unlike the tabs' start (demos.common.DEFAULT_SEED, neutral), the attribute
#: predictor reads seed 2 with glasses, a beard, red hair, a frown and an open mouth, so every frame changes
OTHER_SEED = 2
PAIRS = ("example: neutral -> smiling", "seeds")
LAYERS = ("all", "coarse", "middle", "fine")
MAX_FRAMES = 24
GIF_SIZE = 256  # side of the animation's frames in pixels
DEFAULT_FRAMES = (8, 6)  # on small models, on large ones (demos.outputs.sized_default: 6 frames at 1024 px fit 5 s)
GIF_MAX_FRAMES = 12  # frames of the animation each way (evenly spaced from the morph's frames)


def gif_frames(images: list, cap: int = GIF_MAX_FRAMES) -> list:
    """The animation's frames: at most ``cap`` of ``images``, evenly spaced (first and last kept), there and back."""
    n = len(images)
    if n > cap:
        images = [images[round(i * (n - 1) / (cap - 1))] for i in range(cap)]
    return images + images[-2:0:-1]


@gpu_task(RENDER_S)
@user_errors
def morph(model: str, other_seed, frames, path: str, latent):
    """Returns ``(list of frame images, animated GIF file, zip of the full-size frames, the frame latents)`` from
    the current latent to the seed. Frames are rendered a chunk at a time (2 at 1024 px) and shrunk to
    ``GRID_TILE`` as they come; the GIF is at ``GIF_SIZE`` with at most ``GIF_MAX_FRAMES`` frames each way."""
    from stylekit.edit import interpolation_frames
    from stylekit.latent import Latent

    G = get_generator(model)
    seed = one_seed(other_seed, "other seed")
    n = integer(frames, "number of frames", 2, MAX_FRAMES)
    path = choice(path, "path", PATHS)
    start = current_latent(G, latent)
    if start.space == "s":
        raise InvalidArgumentError("the current latent is in StyleSpace S; morph a W/W+ code (generate or invert one).")
    if start.generator is not None:
        raise InvalidArgumentError("the current latent has a PTI-tuned generator, which a seed does not share; "
                                   "morph an 'optimize' or encoder inversion instead.")
    end = Latent.from_seed(G, seed, psi=0.7)
    lats = interpolation_frames(start.replace(noise=None), end, n, G=G, method=path)
    codes = Latent.cat(lats)
    archive = ZipOfPngs("morph")
    try:
        shown = render_chunks(G, codes.ws(G), size=GRID_TILE,
                              names=[f"frame{i:02d}" for i in range(n)], archive=archive)
    finally:
        zip_path = archive.close()
    images = to_pils(shown)
    gif = new_download("morph", ".gif")
    loop = [im.resize((GIF_SIZE, GIF_SIZE)) if im.width != GIF_SIZE else im for im in gif_frames(images)]
    loop[0].save(gif, save_all=True, append_images=loop[1:], duration=80, loop=0)
    return images, str(gif), zip_path, lats


@user_errors
def use_frame(model: str, index, frames):
    """Returns ``(latent, image, description)`` for frame ``index`` of the last morph."""
    if not frames:
        raise InvalidArgumentError("nothing to use yet: press Morph first.")
    i = integer(index, "frame", 0, len(frames) - 1)
    return use_result(model, frames[i], f"Morph (frame {i})")


def pair_fits(model: str) -> bool:
    """True when the example pair (two toyfaces cartoons) fits ``model``: the toyfaces world only."""
    return is_cartoon(model)


def default_pair(model: str) -> str:
    """The analogy's change shown first for ``model``: the example pair where it fits, else two seeds."""
    return PAIRS[0] if pair_fits(model) else "seeds"


def example_pair(model: str, G):
    """W+ codes of the example photos (neutral, smiling) by the model's registered e4e encoder in one batched pass,
    once per model and cached (toyfaces only)."""
    import stylekit

    if not pair_fits(model):
        raise InvalidArgumentError(f"the example pair is two toyfaces cartoons; they fit only toyfaces, and inverting "
                                   f"them into {model!r} would take minutes to give no real expression. Choose "
                                   "'seeds' (two seeds' faces give the change), or invert your own neutral and "
                                   "smiling photos in the Invert tab.")

    def fit():
        photos = [EXAMPLES / f"toyface-{name}.png" for name in ("neutral", "smiling")]
        results = stylekit.invert.invert(G, photos, method="encoder", encoder=encoders_for(model)["encoder"])
        return [result.latent.replace(noise=None) for result in results]

    return cached_fit((model, "analogy-pair"), fit)


@gpu_task(OPTIMISE_S)
@user_errors
def analogy(model: str, pair: str, from_seed, to_seed, strength, layers: str, latent):
    """Returns ``(from | to | target | result image, text, result latent)``."""
    from stylekit.edit import analogy as analogy_fn
    from stylekit.edit import layer_presets
    from stylekit.latent import Latent

    G = get_generator(model)
    pair = choice(pair, "pair", PAIRS)
    strength = number(strength, "strength", -3, 3)
    layers = choice(layers, "layers", LAYERS)
    rows = None if layers == "all" else layer_presets(G)[layers]
    if rows is not None and not rows:
        raise InvalidArgumentError(f"this generator has no {layers} layers; pick another group.")
    if pair == "seeds":
        seeds = one_seed(from_seed, "'from' seed"), one_seed(to_seed, "'to' seed")
        a, b = (Latent.from_seed(G, s, psi=0.7) for s in seeds)
        change = f"(seed {seeds[1]} - seed {seeds[0]})"
    else:
        a, b = example_pair(model, G)
        change = "(smiling - neutral example)"
    target = current_latent(G, latent)
    out = analogy_fn(G, target, a, b, strength=strength, layers=rows)
    before, after = render(G, target), render(G, out)
    reading = change_line(model, before, after, "smile" if pair != "seeds" else None)
    info = (f"Result = target + {strength:g} x {change} on {describe_group(G, layers, rows)}"
            + (f"; {reading}." if reading else "."))
    return row(render(G, a), render(G, b), before, after), info, out


def pair_controls(pair: str):
    """The 'from' / 'to' seed boxes are used (and shown) only when the change is given by two seeds."""
    on = pair == "seeds"
    return gr.update(visible=on), gr.update(visible=on)


def pair_for_model(model: str):
    """Updates of ``(pair, 'from' seed, 'to' seed)`` when the model changes: :func:`default_pair`, boxes to match."""
    pair = default_pair(model)
    return (gr.update(value=pair), *pair_controls(pair))


@user_errors
def use_analogy(model: str, result):
    return use_result(model, result, "Analogy")


@user_errors
def morph_defaults(model: str):
    """The frames slider for the picked model: 8 on small models, 6 on large ones (:data:`DEFAULT_FRAMES`)."""
    return gr.update(value=sized_default(get_generator(model), *DEFAULT_FRAMES))


def build(ui: SharedUI) -> None:
    teaching_note(SHORT, MORE, lesson=LESSON, measured=MEASURED)
    frames_state = session_state()
    result = session_state()
    gr.Markdown("### Morph: current latent -> another face")
    with gr.Row():
        other = gr.Number(value=OTHER_SEED, precision=0, label="Other face's seed")
        frames = gr.Slider(2, MAX_FRAMES, value=default_for(default_model(), *DEFAULT_FRAMES), step=1, label="Frames")
        path = gr.Radio(list(PATHS), value="lerp", label="Path")
    button = gr.Button("Morph", variant="primary", elem_id="morph-button")
    # the frames get the full width (8 to a row, none cut off); the animation sits below at a fixed size
    gallery = gr.Gallery(label="Frames", columns=8, rows=1, object_fit="contain", allow_preview=False,
                         elem_id="morph-gallery")
    with gr.Row():
        gif = gr.Image(label=f"Animation ({GIF_SIZE} px, at most {GIF_MAX_FRAMES} frames each way)", type="filepath",
                       height=256, width=256, elem_id="morph-gif")
        with gr.Column():
            full = gr.File(label="Full-size frames (zip of PNGs)", elem_id="morph-download")
            frame_index = gr.Number(value=0, precision=0, label="Frame to use")
            use_morph = gr.Button("Use this frame", elem_id="morph-use")

    gr.Markdown("### Expression transfer by analogy")
    with gr.Row():
        first = default_pair(default_model())
        pair = gr.Radio(list(PAIRS), value=first, label="The change (the example pair fits toyfaces only)")
        from_seed = gr.Number(value=3, precision=0, label="'from' seed", visible=first == "seeds")
        to_seed = gr.Number(value=4, precision=0, label="'to' seed", visible=first == "seeds")
        strength = gr.Slider(-3, 3, value=ANALOGY.strength, step=0.05, label="Strength")
        layers = gr.Dropdown(list(LAYERS), value=ANALOGY.layers, label="Layers")
    apply = gr.Button("Transfer", variant="primary", elem_id="analogy-button")
    analogy_out = gr.Image(label="from | to | target | result", type="pil", elem_id="analogy-output")
    analogy_info = gr.Markdown(label="analogy result", elem_id="analogy-info")
    use = gr.Button("Use this result", elem_id="analogy-use")

    button.click(morph, [ui.model, other, frames, path, ui.latent], [gallery, gif, full, frames_state], api_name="morph")
    use_morph.click(use_frame, [ui.model, frame_index, frames_state], ui.use_outputs, api_name="morph_use")
    ui.loaded.change(morph_defaults, ui.model, frames, api_visibility="private", queue=False)
    pair.change(pair_controls, pair, [from_seed, to_seed], api_visibility="private", queue=False)
    if ui.loaded is not None:
        ui.loaded.change(pair_for_model, ui.model, [pair, from_seed, to_seed], api_visibility="private", queue=False)
    gr.on([apply.click, strength.release], analogy, [ui.model, pair, from_seed, to_seed, strength, layers, ui.latent],
          [analogy_out, analogy_info, result], api_name="analogy")
    use.click(use_analogy, [ui.model, result], ui.use_outputs, api_name="analogy_use")
