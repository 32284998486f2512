"""Edit tab, StyleFlow section: set one attribute with the model's StyleFlow flow (:mod:`stylekit.edit.styleflow`) and
keep the others; edits chain, as in the paper.

Pick an attribute (the slider takes its range and the predictor's reading of the current latent), set a value and
Apply. With *Continue from the last StyleFlow edit* on, the next edit starts from the last StyleFlow result and keeps
every value set so far (the attribute vector travels in session state); off, it starts from the current latent, whose
attributes the predictor reads. Built into the Edit tab by :func:`demos.edit.build` (:func:`build` makes the
widgets, :meth:`StyleFlowSection.wire` connects them once the tab's shared output exists). Models without a flow
get a sentence saying so.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from .common import (RENDER_S, SharedUI, cached_fit, current_latent, get_generator, gpu_task, render, row,
                     session_state, user_errors)
from .device import device
from .readings import predictor_for

#: The attribute the section starts on.
DEFAULT_ATTRIBUTE = "smile"

NOTE = """**StyleFlow** (Abdal et al. 2021): a conditional continuous normalizing flow maps the latent to Gaussian
noise given its attributes; the edit maps it back with one attribute changed, so the others stay. Pick an attribute
(the slider starts at what the attribute predictor reads of the current latent), set a value, Apply; further edits
continue from the last one and keep what you set. Only models with a trained flow (the toyfaces world) have this;
others can train one with `python -m stylekit.train styleflow` and any attribute scorer (e.g. CLIP zero-shot)."""


def flow_for(model: str, G):
    """The StyleFlow flow registered for ``model`` (loaded once, checked against ``G``), or None when it has none."""
    from stylekit import registry

    name = registry.companion(model, "styleflow") if isinstance(model, str) else None
    if name is None:
        return None

    def load():
        from stylekit.edit.styleflow import load_flow

        return load_flow(name, G=G, generator_name=model, device=device())

    return cached_fit(("styleflow", model, name), load)


def _not_available(model: str) -> str:
    from stylekit.edit.styleflow import NO_FLOW_NOTE

    return f"**{model}** has no StyleFlow flow. {NO_FLOW_NOTE}"


def _param(flow, attribute: str):
    from stylekit.edit.styleflow import _unknown

    if attribute not in flow.attribute_names:
        raise _unknown(flow, [attribute])
    return flow.attributes[flow.attribute_names.index(attribute)]


def _step(param) -> float:
    return 1.0 if param.kind == "binary" else round((param.high - param.low) / 100, 6)


def _same(start, current) -> bool:
    import torch

    t = getattr(current, "tensor", None)
    return (isinstance(start, torch.Tensor) and isinstance(t, torch.Tensor) and start.shape == t.shape
            and bool(torch.equal(start, t.detach().to("cpu"))))


@gpu_task(RENDER_S)
@user_errors
def styleflow_read(model: str, attribute: str, latent):
    """The slider set to ``attribute``'s range and the predictor's reading of the current latent, and a caption; a
    model without a flow leaves the slider and says why."""
    from stylekit.edit.styleflow import read_attributes

    G = get_generator(model)
    flow, predictor = flow_for(model, G), predictor_for(model)
    if flow is None or predictor is None:
        return gr.update(), _not_available(model)
    p = _param(flow, attribute)
    value = float(read_attributes(G, flow, current_latent(G, latent), predictor)[attribute][0])
    update = gr.update(minimum=p.low, maximum=p.high, step=_step(p), value=round(value, 4))
    return update, f"{attribute} reads {value:.2f} on the current latent (range {p.low:g} .. {p.high:g})."


@gpu_task(RENDER_S)
@user_errors
def styleflow_apply(model: str, attribute: str, value, chain: bool, latent, state):
    """Returns ``(before | after image, caption, edited latent, new section state)``: ``attribute`` set to ``value``,
    every other attribute kept (the last StyleFlow edit's values when chaining, else the predictor's readings)."""
    from stylekit.edit.styleflow import attribute_units, read_attributes, styleflow_edit

    G = get_generator(model)
    flow, predictor = flow_for(model, G), predictor_for(model)
    if flow is None or predictor is None:
        return None, _not_available(model), None, state
    _param(flow, attribute)
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = float("nan")
    attribute_units(flow, {attribute: value}, 1)  # out of range or not a number: a clear error naming the range
    current = current_latent(G, latent)
    # chain only while the session latent is the one the chain started from (a new face starts afresh)
    chained = (bool(chain) and isinstance(state, dict) and state.get("model") == model
               and _same(state.get("start"), current))
    if chained:
        base, source = state["latent"].to(G.device), dict(state["values"])
    else:
        base = current
        source = {k: float(v[0]) for k, v in read_attributes(G, flow, base, predictor).items()}
    out = styleflow_edit(G, flow, base, {attribute: value}, source=source, generator_name=model)
    values = {**source, attribute: value}
    read = {k: float(v[0]) for k, v in read_attributes(G, flow, out, predictor, snap_binary=False).items()}
    was = source[attribute]
    info = (f"StyleFlow **{attribute} asked {value:.2f}, read {read[attribute]:.2f} (was {was:.2f})**"
            + ("; continuing from the last StyleFlow edit" if chained else "; from the current latent")
            + ". Other attributes as read now: " + ", ".join(f"{k} {v:.2f}" for k, v in read.items() if k != attribute)
            + ". (Readings by the attribute predictor; binary ones as probabilities.)")
    new_state = {"model": model, "latent": out.detach().to("cpu"), "values": values,
                 "start": current.tensor.detach().to("cpu")}
    return row(render(G, base), render(G, out)), info, out, new_state


@dataclass
class StyleFlowSection:
    """The StyleFlow section's widgets (see :func:`build`)."""

    attribute: gr.Dropdown
    value: gr.Slider
    chain: gr.Checkbox
    apply_button: gr.Button
    status: gr.Markdown
    state: gr.State

    def wire(self, ui: SharedUI, outputs: list) -> None:
        """Connect the widgets: Apply writes the Edit tab's ``outputs`` (image, caption, result latent)."""
        self.attribute.change(styleflow_read, [ui.model, self.attribute, ui.latent], [self.value, self.status],
                              api_name="edit_styleflow_read")
        self.apply_button.click(styleflow_apply, [ui.model, self.attribute, self.value, self.chain, ui.latent,
                                                  self.state], [*outputs, self.state], api_name="edit_styleflow")


def build() -> StyleFlowSection:
    """The StyleFlow group: the note, the attribute, its target value, *Continue from the last StyleFlow edit* and
    *Apply*."""
    from stylekit.toyfaces.attributes import ATTRIBUTE_NAMES, attribute_spec, default_attributes

    spec = attribute_spec(DEFAULT_ATTRIBUTE)
    with gr.Group():
        gr.Markdown(NOTE)
        with gr.Row():
            attribute = gr.Dropdown(list(ATTRIBUTE_NAMES), value=DEFAULT_ATTRIBUTE, label="Attribute",
                                    elem_id="edit-styleflow-attribute")
            value = gr.Slider(spec.low, spec.high, value=default_attributes()[DEFAULT_ATTRIBUTE], step=0.02,
                              label="Target value (in the attribute's unit)", elem_id="edit-styleflow-value")
            chain = gr.Checkbox(value=True, label="Continue from the last StyleFlow edit",
                                elem_id="edit-styleflow-chain")
            apply_button = gr.Button("Apply StyleFlow edit", elem_id="edit-styleflow-button")
        status = gr.Markdown(label="StyleFlow reading", elem_id="edit-styleflow-status")
    return StyleFlowSection(attribute, value, chain, apply_button, status, session_state())
