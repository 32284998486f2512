"""Edit tab, Rig section: StyleRig-style rig control. One slider per rig value (head yaw and roll, smile, mouth
and eyes open), set to what the attribute predictor reads of the current latent; Apply asks the rig network
(:mod:`stylekit.edit.rig`) for the values moved and says what was asked and what is read back.

Built into the Edit tab by :func:`demos.edit.build` (:func:`build` makes the widgets, :meth:`RigSection.wire`
connects them to the tab's shared output once that exists). Models without a registered rig network (every real-face
model: a rig for real faces needs a 3DMM fit) get a plain sentence saying so.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from .common import RENDER_S, SharedUI, cached_fit, current_latent, get_generator, gpu_task, render, row, user_errors
from .device import device
from .readings import predictor_for

#: The sliders: the shipped toyfaces rig's values, in its order (name, label, step).
SLIDERS = (("yaw", "Yaw (degrees, + turns right)", 0.5), ("rotation", "Roll (degrees, + counter-clockwise)", 0.5),
           ("smile", "Smile (-1 frown .. 1 big smile)", 0.05), ("mouth_open", "Mouth open (0 .. 1)", 0.05),
           ("eyes_open", "Eyes open (0 .. 1)", 0.05))
#: A slider counts as moved (its value is asked) when it differs from the current reading by more than this share
#: of its range (above half a slider step, so a reading snapped to the step is not asked).
MOVED = 0.04

NOTE = """**Rig control** (StyleRig, Tewari et al. 2020): a small network (RigNet) trained through the attribute
predictor maps the latent and the asked rig values to an edited latent; values you do not move stay as they are.
The sliders follow what the predictor reads of the current latent (set again whenever it changes, or with *Read
current values*); the caption gives asked and read-back values. Only the toyfaces world has a rig: real faces
would need a 3D morphable face model (3DMM) fitted to every render, as StyleRig does, which stylekit does not have,
so rig control for FFHQ and the other real-face models is not available."""


def _ranges() -> dict[str, tuple[float, float]]:
    from stylekit.toyfaces.attributes import attribute_spec

    return {name: (attribute_spec(name).low, attribute_spec(name).high) for name, _, _ in SLIDERS}


def rig_for(model: str, G):
    """The rig network registered for ``model`` (loaded once, checked against ``G``), or None when it has none."""
    from stylekit import registry

    name = registry.companion(model, "rig") if isinstance(model, str) else None
    if name is None:
        return None

    def load():
        from stylekit.edit.rig import load_rig

        return load_rig(name, G=G, generator_name=model, device=device())

    return cached_fit(("rig", model, name), load)


def _not_available(model: str) -> str:
    from stylekit.edit.rig import REAL_FACES_NOTE

    return f"**{model}** has no rig network. {REAL_FACES_NOTE}"


def _readings(G, rignet, predictor, latent) -> dict[str, float]:
    from stylekit.edit.rig import read_rig

    return {k: float(v[0]) for k, v in read_rig(G, rignet, latent, predictor).items()}


@gpu_task(RENDER_S)
@user_errors
def rig_read(model: str, latent):
    """Slider updates (one per :data:`SLIDERS` entry) set to the predictor's readings of the current latent, and a
    caption; a model without a rig leaves the sliders and says why."""
    G = get_generator(model)
    rignet, predictor = rig_for(model, G), predictor_for(model)
    if rignet is None or predictor is None:
        return (*[gr.update() for _ in SLIDERS], _not_available(model))
    values = _readings(G, rignet, predictor, current_latent(G, latent))
    updates = [gr.update(value=round(round(values[name] / step) * step, 4)) if name in values else gr.update()
               for name, _, step in SLIDERS]
    text = ", ".join(f"{k} {v:.2f}" for k, v in values.items())
    return (*updates, f"Rig values read from the current latent: {text}.")


@gpu_task(RENDER_S)
@user_errors
def rig_apply(model: str, yaw, rotation, smile, mouth_open, eyes_open, latent):
    """Returns ``(before | after image, caption with asked and read-back values, edited latent)``: the slider values
    that differ from the current reading are asked of the model's rig network."""
    from stylekit.edit.rig import apply_rig, rig_inputs

    G = get_generator(model)
    rignet, predictor = rig_for(model, G), predictor_for(model)
    if rignet is None or predictor is None:
        return None, _not_available(model), None
    sliders = {"yaw": yaw, "rotation": rotation, "smile": smile, "mouth_open": mouth_open, "eyes_open": eyes_open}
    asked_all = {k: v for k, v in sliders.items() if k in rignet.rig_names}
    rig_inputs(rignet, asked_all, 1)  # bad values (out of range, not numbers) fail here, naming the slider
    base = current_latent(G, latent)
    current = _readings(G, rignet, predictor, base)
    spans = {p.name: p.high - p.low for p in rignet.rig}
    asked = {k: float(v) for k, v in asked_all.items() if abs(float(v) - current[k]) > MOVED * spans[k]}
    before = render(G, base)
    if not asked:
        return (row(before, before), "Nothing asked: every slider is at the current reading. Move a slider, then "
                "Apply.", base)
    out = apply_rig(G, rignet, base, asked, generator_name=model)
    after = render(G, out)
    read = _readings(G, rignet, predictor, out)
    parts = [f"{k} asked {v:.2f}, read {read[k]:.2f} (was {current[k]:.2f})" for k, v in asked.items()]
    kept = [f"{k} {current[k]:.2f} -> {read[k]:.2f}" for k in rignet.rig_names if k not in asked]
    info = ("Rig **" + "; ".join(parts) + "**" + (f". Not asked: {', '.join(kept)}" if kept else "")
            + ". (Readings by the attribute predictor the rig network was trained with.)")
    return row(before, after), info, out


@dataclass
class RigSection:
    """The Rig section's widgets (see :func:`build`)."""

    sliders: list
    read_button: gr.Button
    apply_button: gr.Button
    status: gr.Markdown

    def wire(self, ui: SharedUI, outputs: list) -> None:
        """Connect the buttons: Apply writes the Edit tab's ``outputs`` (image, caption, result latent)."""
        self.read_button.click(rig_read, [ui.model, ui.latent], [*self.sliders, self.status], api_name="edit_rig_read")
        self.apply_button.click(rig_apply, [ui.model, *self.sliders, ui.latent], outputs, api_name="edit_rig")
        # a new current latent (any tab's "Use this result", a new model) sets the sliders to its readings
        ui.current_image.change(rig_read, [ui.model, ui.latent], [*self.sliders, self.status], api_visibility="private")


def build() -> RigSection:
    """The Rig group: the note, one slider per rig value (starting at the neutral face's values), *Read current
    values* and *Apply*."""
    from stylekit.toyfaces.attributes import default_attributes

    ranges, defaults = _ranges(), default_attributes()
    with gr.Group():
        gr.Markdown(NOTE)
        with gr.Row():
            sliders = [gr.Slider(ranges[name][0], ranges[name][1], value=defaults[name], step=step, label=label,
                                 elem_id=f"edit-rig-{name}") for name, label, step in SLIDERS]
        with gr.Row():
            read_button = gr.Button("Read current values", elem_id="edit-rig-read")
            apply_button = gr.Button("Apply rig values", elem_id="edit-rig-button")
        status = gr.Markdown(label="rig readings", elem_id="edit-rig-status")
    return RigSection(sliders, read_button, apply_button, status)
