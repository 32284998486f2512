"""StyleGAN3 tab: rotate and translate the picture through the generator's input transform."""

from __future__ import annotations

import gradio as gr

from .common import (RENDER_S, SharedUI, current_latent, get_generator, gpu_task, number, render, row, teaching_note,
                     user_errors)
from .models import default_model
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
