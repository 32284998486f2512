"""StyleGAN3 tab: rotate and translate the picture through the generator's input transform; and the
texture-sticking view, for StyleGAN2 and StyleGAN3 alike: pan the input grid, watch what moves, measure EQ-T."""

from __future__ import annotations

import gradio as gr

from .common import (DEFAULT_PSI, DEFAULT_SEED, RENDER_S, SharedUI, current_latent, get_generator, gpu_task, number,
                     render, row, shrink, teaching_note, user_errors)
from .models import ModelPicker, default_model, model_choices
from .outputs import save_png

SHORT = """**StyleGAN3 rotate / translate** (Karras et al. 2021, *Alias-Free GAN*). StyleGAN3 draws its image from
Fourier features in an explicit coordinate frame, so the same face can be turned and shifted exactly. Only for
StyleGAN3 models (the *sg3...* entries in the picker, or a StyleGAN3 file)."""

MORE = """Every layer is designed to be equivariant to that frame, so details move with the face instead of sticking
to the pixel grid (StyleGAN2's "texture sticking"). Nothing in the latent code changes. Knobs: the angle in degrees
(counter-clockwise) and the shift in image widths."""
LESSON = "05_stylegan3.py"


def _is_sg3(model: str) -> bool:
    from stylekit.edit.sg3_pose import is_stylegan3

    try:
        return is_stylegan3(get_generator(model))
    except gr.Error:
        return False


def status_text(model: str) -> str:
    if _is_sg3(model):
        return f"**{model}** is a StyleGAN3: the controls are on."
    return (f"**Not available for {model!r}**: rotation and translation controls need a StyleGAN3 generator "
            "(pick one of the sg3... models in the model picker). The controls are disabled.")


def sg3_status(model: str):
    """Returns the tab's status line and the controls' enabled state for the picked model."""
    on = _is_sg3(model)
    return (status_text(model),) + tuple(gr.update(interactive=on) for _ in range(4))


@gpu_task(RENDER_S)
@user_errors
def sg3_pose(model: str, rotate, translate_x, translate_y, latent):
    """Returns ``(original | posed image at display size, text, the posed picture as a full-size PNG)``; raises a
    readable error for non-StyleGAN3 models."""
    from stylekit.edit.sg3_pose import render_pose

    G = get_generator(model)
    angle = number(rotate, "rotation", -180, 180)
    tx = number(translate_x, "translate x", -0.5, 0.5)
    ty = number(translate_y, "translate y", -0.5, 0.5)
    base = current_latent(G, latent)
    import torch

    with torch.no_grad():
        posed = render_pose(G, base, rotate=angle, translate=(tx, ty))
    info = f"Rotated {angle:+g} degrees, shifted ({tx:+g}, {ty:+g}) image widths."
    return row(render(G, base), posed), info, save_png(posed, "sg3-posed")


STICKING_NOTE = """**Texture sticking** (any StyleGAN2 or StyleGAN3). The input grid pans right by up to 1/8 of the
image. Top: the pan's frames. Bottom: their average, beside the average an ideal generator would give (the
unpanned picture shifted by the same amounts). StyleGAN2's fine detail stays where the pixel grid is, so its
average keeps sharp, misplaced detail; StyleGAN3's follows the face. EQ-T (the StyleGAN3 paper's metric, dB,
higher is better) compares "translate then generate" with "generate then translate" on this face. Name a second
model (a StyleGAN3 beside a StyleGAN2, or the other way round) to see both pans and the EQ-T difference together."""

#: Pan frames and EQ-T shifts: small models / large models (above demos.outputs.LARGE_MODEL_PX).
STICKING_FRAMES = (7, 3)
STICKING_SHIFTS = (8, 2)
STICKING_PX = 160  # display size of each picture in the view


def sticking_status(model: str):
    """The texture-sticking button is on for StyleGAN2 and StyleGAN3 models."""
    try:
        arch = getattr(get_generator(model), "arch", None)
    except gr.Error:
        arch = None
    return gr.update(interactive=arch in ("stylegan2", "stylegan3"))


def _sticking_view(gen, codes, label: str):
    """One model's view of ``codes`` (one face: ``ws [1, num_ws, w_dim]`` or a Latent of any space): ``(picture: pan
    frames over the two averages, EQ-T in dB, steps, shifts, pan in px)``."""
    import torch

    from stylekit.edit.equivariance import eq_t, random_shifts, shift_image, sticking_frames, translated

    from .outputs import sized_default

    steps, n_shifts = sized_default(gen, STICKING_FRAMES[0], STICKING_FRAMES[1]), sized_default(gen, *STICKING_SHIFTS)
    frames, average = sticking_frames(gen, codes, steps=steps)
    m = gen.img_resolution / 8
    with torch.no_grad():
        still = translated(gen, codes, (0, 0))
        ideal = torch.stack([shift_image(still, (int(round(x)), 0))[0]
                             for x in torch.linspace(-m, m, steps).tolist()]).mean(0)
        score = eq_t(gen, codes, random_shifts(gen.img_resolution, n_shifts, seed=0), base=still)
    small = [shrink(x.float().cpu(), STICKING_PX) for x in (*frames, average, ideal)]  # 1024 px shown at 160
    top = row(*small[:steps], size=STICKING_PX)
    bottom = row(*small[steps:], size=STICKING_PX)
    return _stack([top, bottom], label), score.eq_t_db, steps, n_shifts, m


def _stack(pictures, label: str | None = None):
    """Pictures one above the other on white, left-aligned, under a one-line caption when ``label`` is given."""
    from PIL import Image, ImageDraw

    head = 18 if label else 0
    width = max(p.width for p in pictures)
    canvas = Image.new("RGB", (width, head + sum(p.height for p in pictures)), "white")
    if label:
        ImageDraw.Draw(canvas).text((4, 3), label, fill="black")
    y = head
    for p in pictures:
        canvas.paste(p, (0, y))
        y += p.height
    return canvas


def _kind(gen) -> str:
    return "StyleGAN3" if gen.arch == "stylegan3" else "StyleGAN2"


def _sticking_generator(model: str, latent=None):
    """``(generator to render with, its first face as a Latent)``: the session latent on ``model`` (W, W+ or
    StyleSpace; a PTI result with its tuned generator), or the default face."""
    G = get_generator(model)
    if getattr(G, "arch", None) not in ("stylegan2", "stylegan3"):
        raise gr.Error(f"{model!r} is neither a StyleGAN2 nor a StyleGAN3: texture sticking is shown for those.")
    base = current_latent(G, latent)
    gen = getattr(base, "generator", None) or G
    return gen, base.select(0)


@gpu_task(2 * RENDER_S)
@user_errors
def sg3_sticking(model: str, latent, compare: str | None = None):
    """Returns ``(picture, text with EQ-T)``: pan frames over the two averages, for ``model`` and, when
    ``compare`` names another StyleGAN2 or StyleGAN3, the same pan of that model's default face
    (:data:`demos.common.DEFAULT_SEED`, psi 0.7) below it; StyleGAN2 and StyleGAN3 only."""
    compare = (compare or "").strip()
    gen, face = _sticking_generator(model, latent)
    picture, score, steps, n_shifts, m = _sticking_view(gen, face, f"{model} ({_kind(gen)})" if compare else None)
    info = (f"**{_kind(gen)}**: EQ-T on this face {score:.1f} dB over {n_shifts} shifts (the paper: StyleGAN2 "
            f"about 15-20 dB, StyleGAN3 about 50-60 dB on FFHQ). Pan of {steps} frames up to {m:g} px; bottom row: "
            f"average of the frames | average an ideal generator would give.")
    if not compare:
        return picture, info
    other, other_face = _sticking_generator(compare)  # its own default face: a latent belongs to one generator
    second, other_score, _, other_shifts, other_m = _sticking_view(other, other_face, f"{compare} ({_kind(other)})")
    info += (f"\n\n**Side by side with {compare}** ({_kind(other)}, its default face: seed {DEFAULT_SEED}, psi "
             f"{DEFAULT_PSI}): EQ-T "
             f"{other_score:.1f} dB over {other_shifts} shifts, pan up to {other_m:g} px. "
             f"Difference ({compare} minus {model}): **{other_score - score:+.1f} dB**.")
    return _stack([picture, second]), info


def build(ui: SharedUI) -> None:
    teaching_note(SHORT, MORE, lesson=LESSON)
    on = _is_sg3(default_model())
    status = gr.Markdown(status_text(default_model()), label="status", elem_id="sg3-status")
    with gr.Row():
        rotate = gr.Slider(-180, 180, value=30, step=1, label="Rotate (degrees)", interactive=on)
        tx = gr.Slider(-0.5, 0.5, value=0, step=0.01, label="Translate x (image widths)", interactive=on)
        ty = gr.Slider(-0.5, 0.5, value=0, step=0.01, label="Translate y (image widths)", interactive=on)
    button = gr.Button("Render", variant="primary", interactive=on, elem_id="sg3-button")
    output = gr.Image(label="Original | posed", type="pil", elem_id="sg3-output")
    info = gr.Markdown(label="result", elem_id="sg3-info")
    full = gr.File(label="Posed picture, full size (PNG)", elem_id="sg3-download")
    gr.on([button.click, rotate.release, tx.release, ty.release], sg3_pose, [ui.model, rotate, tx, ty, ui.latent],
          [output, info, full], api_name="sg3_pose")
    ui.loaded.change(sg3_status, ui.model, [status, rotate, tx, ty, button], api_name="sg3_status")

    gr.Markdown(STICKING_NOTE, elem_classes=["teaching-note"])
    with gr.Row():
        compare = ModelPicker([""] + model_choices(), value="", allow_custom_value=True,
                              label="Side by side with (another StyleGAN2 or StyleGAN3: a name, file or hf:// "
                                    "address; blank: this model only)", elem_id="sg3-sticking-compare")
        stick = gr.Button("Show texture sticking", interactive=True, elem_id="sg3-sticking-button")
    stick_out = gr.Image(label="Pan frames (top) | averages: frames, ideal (bottom); a compared model below",
                         type="pil", elem_id="sg3-sticking-output")
    stick_info = gr.Markdown(label="EQ-T", elem_id="sg3-sticking-info")
    stick.click(sg3_sticking, [ui.model, ui.latent, compare], [stick_out, stick_info], api_name="sg3_sticking")
    ui.loaded.change(sticking_status, ui.model, stick, api_visibility="private", queue=False)
