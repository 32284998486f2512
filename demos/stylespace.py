"""StyleSpace tab: nudge one style channel, or list the channels that drive an attribute."""

from __future__ import annotations

import gradio as gr

from stylekit.errors import InvalidArgumentError

from .common import (SharedUI, cached_fit, choice, current_latent, get_generator, integer, number, render, row,
                     teaching_note, use_result, user_errors)
from .edit import _attributes, predictor

NOTE = """**StyleSpace** (Wu et al. 2021). Each synthesis layer turns its W row into a *style* vector
(one scale per feature channel) through an affine map; all these vectors together form S. Single S
channels are surprisingly disentangled: one channel may open the eyes, another redden the hair. An edit
moves one channel by *amount* standard deviations (measured over random samples). To find the channels
of an attribute, **Find channels** differentiates the attribute predictor's score with respect to every
channel at the current latent and lists the strongest; pick one and move its slider. Results live in S,
so after *Use this result* only StyleSpace, local and display tabs can continue from them (S cannot be
mapped back to W)."""


def stats(model: str, G):
    from stylekit.edit.stylespace import style_statistics

    return cached_fit((model, "stylespace-stats"), lambda: style_statistics(G, n_samples=2000))


def layer_choices(G) -> list[str]:
    return [sl.name for sl in G.style_layers]


@user_errors
def stylespace_edit(model: str, layer: str, channel, amount, latent):
    """Returns ``(before | after image, text, edited S latent)``."""
    from stylekit.edit.stylespace import edit_channel

    G = get_generator(model)
    names = layer_choices(G)
    layer = choice(layer, "style layer", names)
    li = names.index(layer)
    c = integer(channel, "channel", 0, G.style_layers[li].channels - 1)
    amount = number(amount, "amount", -20, 20)
    base = current_latent(G, latent)
    out = edit_channel(G, base, li, c, amount, stats=stats(model, G))
    info = f"**{layer}** (style layer {li}, W+ row {G.style_layers[li].ws_index}) channel {c}: {amount:+g} std."
    return row(render(G, base), render(G, out)), info, out


@user_errors
def stylespace_find(model: str, attribute: str, top_k, latent):
    """Returns ``(table of the top channels, layer of the best one, its channel, the sign of its score)``."""
    from stylekit.edit import interfacegan
    from stylekit.edit.stylespace import channels_from_gradients, format_channels

    G = get_generator(model)
    if model != "toyfaces":
        raise InvalidArgumentError("finding channels uses the toyfaces attribute predictor, so it works with the "
                                   "toyfaces model only; pick channels by hand for this model.")
    attribute = choice(attribute, "attribute", _attributes())
    k = integer(top_k, "number of channels", 1, 30)
    base = current_latent(G, latent)
    scorer = interfacegan.predictor_scorer(attribute, predictor=predictor())
    scores = channels_from_gradients(G, scorer, base, top_k=k, stats=stats(model, G))
    best = scores[0]
    return format_channels(scores), best.layer, best.channel, 5.0 if best.score > 0 else -5.0


@user_errors
def use_stylespace(model: str, result):
    return use_result(model, result, "StyleSpace")


def build(ui: SharedUI) -> None:
    teaching_note(NOTE)
    result = gr.State(None)
    try:
        names = layer_choices(get_generator("toyfaces"))
    except gr.Error:  # the default model is not installed; the list fills in when a model is picked
        names = []
    with gr.Row():
        layer = gr.Dropdown(names, value=names[len(names) // 3] if names else None, label="Style layer")
        channel = gr.Number(value=0, precision=0, label="Channel")
        amount = gr.Slider(-20, 20, value=5, step=0.5, label="Amount (standard deviations)")
    button = gr.Button("Apply", variant="primary", elem_id="stylespace-button")
    output = gr.Image(label="Before | after", type="pil", elem_id="stylespace-output")
    info = gr.Markdown(label="result", elem_id="stylespace-info")
    with gr.Row():
        attribute = gr.Dropdown(list(_attributes()), value="smile", label="Attribute to explain")
        top_k = gr.Slider(1, 30, value=10, step=1, label="Channels to list")
        find = gr.Button("Find channels", elem_id="stylespace-find")
    table = gr.Code(label="Channels by effect on the attribute (score per +1 std)", language=None)
    use = gr.Button("Use this result", elem_id="stylespace-use")
    gr.on([button.click, amount.release], stylespace_edit, [ui.model, layer, channel, amount, ui.latent],
          [output, info, result], api_name="stylespace_edit")
    find.click(stylespace_find, [ui.model, attribute, top_k, ui.latent], [table, layer, channel, amount],
               api_name="stylespace_find")
    use.click(use_stylespace, [ui.model, result], ui.use_outputs, api_name="stylespace_use")
    ui.loaded.change(stylespace_layers, ui.model, layer, api_name="stylespace_layers")


@user_errors
def stylespace_layers(model: str):
    """Returns the style-layer dropdown for the picked model."""
    G = get_generator(model)
    names = layer_choices(G)
    return gr.Dropdown(choices=names, value=names[len(names) // 3])
