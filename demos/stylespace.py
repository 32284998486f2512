"""StyleSpace tab: nudge one style channel, or list the channels that drive an attribute."""

from __future__ import annotations

import gradio as gr

from stylekit.edit.presets import STYLESPACE
from stylekit.errors import InvalidArgumentError

from .common import (FIT_S, SharedUI, cached_fit, choice, current_latent, get_generator, gpu_task, integer, number,
                     render, row, session_state, teaching_note, use_result, user_errors)
from .edit import CLIP_ATTRIBUTES, _attributes
from .models import default_model
from .readings import change_line, predictor_for

SHORT = """**StyleSpace** (Wu et al. 2021). Each synthesis layer turns its W row into a *style* vector, one scale per
feature channel. One channel can carry a whole feature: the default moves one channel that grows a beard (though, judged on report seeds, a single channel leaks into other attributes a little more than a W direction at equal success).
**Find channels** lists the channels that drive an attribute and applies the strongest."""

MORE = """An edit moves one channel by *amount* standard deviations (measured over random samples). **Find channels**
differentiates the attribute predictor's score (a yes/no attribute's logit) with respect to every channel, at the
current latent and fifteen random faces, tries the twelve with the largest gradient for real and lists them by the change the predictor
reads; the best one is applied at once, and you can pick another from the list. Models without a predictor (FFHQ)
are read by CLIP zero-shot with the model's CLIP instead (the log-odds of a *positive* over a *neutral* prompt;
an attribute from the list or your own 'positive | neutral'). Above 256 px it uses three random faces (their
gradients are computed once per attribute) and tries the three strongest channels for real. Results live
in S, so after *Use this result* only StyleSpace, local and display tabs can continue from them (S cannot be mapped
back to W)."""
MEASURED = ("channel 66 of b32.conv0 at -8 std: predicted glasses 0.31 -> 1.00 on 16 development seeds, every face "
            "typical, the next attribute (eyes open) moving 0.18 of its range (`python -m demos.defaults_check "
            "--sweep`, edit/presets.py STYLESPACE). The paper's claim that S is more disentangled than W holds here "
            "(`python -m stylekit.bench claims`, 200 report seeds, held-out judge): one channel per binary attribute "
            "reaches 62% edit success (the InterFaceGAN normal in W: 63%) and at 50% success moves the other "
            "attributes less, 0.026 [0.024, 0.028] against 0.030 [0.027, 0.033]. (With the 312-kimg generator "
            "before 2026-12-04 it did not: 21% at most, and more leakage.)")
LESSON = "03_editing.py"


def stats(model: str, G):
    from stylekit.edit.stylespace import style_statistics

    return cached_fit((model, "stylespace-stats"), lambda: style_statistics(G, n_samples=2000))


def layer_choices(G) -> list[str]:
    return [sl.name for sl in G.style_layers]


def default_layer(names: list[str]) -> str | None:
    """The preset's style layer when the model has it, else one a third of the way down."""
    if not names:
        return None
    return STYLESPACE.layer if STYLESPACE.layer in names else names[len(names) // 3]


@gpu_task(FIT_S)
@user_errors
def stylespace_edit(model: str, layer: str, channel, amount, attribute: str = STYLESPACE.attribute, latent=None):
    """Returns ``(before | after image, text with the predicted ``attribute`` before/after, edited S latent)``."""
    from stylekit.edit.stylespace import edit_channel

    G = get_generator(model)
    names = layer_choices(G)
    layer = choice(layer, "style layer", names)
    li = names.index(layer)
    c = integer(channel, "channel", 0, G.style_layers[li].channels - 1)
    amount = number(amount, "amount", -20, 20)
    base = current_latent(G, latent)
    out = edit_channel(G, base, li, c, amount, stats=stats(model, G))
    before, after = render(G, base), render(G, out)
    reading = change_line(model, before, after, attribute if attribute in _attributes() else None)
    info = (f"StyleSpace **{layer} channel {c}** (style layer {li} of {len(names)}, fed by W+ row "
            f"{G.style_layers[li].ws_index}): moved {amount:+g} std" + (f"; {reading}." if reading else "."))
    return row(before, after), info, out


class LogitScorer:
    """``images [N, 3, R, R] -> [N]``: the predictor's raw output for ``attribute``, the logit of a yes/no
    attribute (its probability sits at 0 or 1 on most faces, where every gradient vanishes and the channel
    list would be noise), the unit-scale value of a continuous one. Differentiable."""

    def __init__(self, attribute: str, predictor):
        self.name = attribute
        self.predictor = predictor
        self.index = list(predictor.attribute_names).index(attribute)

    def __call__(self, images):
        return self.predictor(images)[:, self.index]


class ClipLogitScorer:
    """``images [N, 3, R, R] -> [N]``: the log-odds that the ``positive`` prompt rather than the ``neutral`` one
    describes each image (CLIP zero-shot with the model's CLIP), the differentiable reading of models that have
    no attribute predictor."""

    def __init__(self, clip, positive: str, neutral: str):
        self.clip, self.positive, self.neutral = clip, positive, neutral

    def __call__(self, images):
        p = self.clip.zero_shot_scores(images, self.positive, self.neutral).float().clamp(1e-6, 1 - 1e-6)
        return p.log() - (1 - p).log()

    def probability(self, images) -> float:
        return float(self.clip.zero_shot_scores(images, self.positive, self.neutral)[0])


CANDIDATES = 12  # channels ranked by gradient, then tried for real, for Find channels
LARGE_CANDIDATES = 3  # the same on models above 256 px (each try renders and reads a 1024 px face: about 0.5 s)
GRADIENT_SAMPLES = 15  # random faces whose gradients join the current one's (one face's can all but vanish)
LARGE_GRADIENT_SAMPLES = 3  # the same on models above 256 px (each backward at 1024 px costs about a second and 1.3 GB)
SAMPLE_SEED = 100  # the random faces are seeds 100, 101, ... at psi 0.7


def gradient_samples(G) -> int:
    return GRADIENT_SAMPLES if G.img_resolution <= 256 else LARGE_GRADIENT_SAMPLES


def candidates_to_try(G, k: int) -> int:
    """How many channels Find renders and reads: all ``k`` listed (at least :data:`CANDIDATES`) on small models,
    :data:`LARGE_CANDIDATES` above 256 px (the rest of the list is ranked by gradient only)."""
    return max(k, CANDIDATES) if G.img_resolution <= 256 else LARGE_CANDIDATES


def _sample_scores(model: str, G, attribute: str, scorer, st, batch: int):
    """Gradient scores (``stylekit.edit.stylespace.gradient_scores``) of :func:`gradient_samples` fixed random
    faces: the same for every face, so computed once per model and listed attribute (a written prompt is
    computed each time, which keeps the cache bounded)."""
    from stylekit.edit.stylespace import gradient_scores
    from stylekit.latent import Latent

    def compute():
        samples = Latent.cat([Latent.from_seed(G, SAMPLE_SEED + i, psi=0.7).to_styles(G)
                              for i in range(gradient_samples(G))])
        return gradient_scores(G, scorer, samples, stats=st, batch_size=batch)

    if attribute in _attributes() or attribute in CLIP_ATTRIBUTES:
        return cached_fit((model, "stylespace-sample-gradients", attribute, gradient_samples(G)), compute)
    return compute()


def _reader(model: str, attribute: str):
    """``(differentiable scorer, reading(images) -> float, what the reading is)`` of ``attribute`` for ``model``: its
    attribute predictor (toyfaces) or CLIP zero-shot with the model's CLIP (see demos.edit.clip_prompts)."""
    import torch

    from .edit import _model_clip, clip_model, clip_prompts

    if predictor_for(model) is not None and attribute in predictor_for(model).attribute_names:
        net = predictor_for(model)

        def read(images):
            with torch.no_grad():
                return float(net.predict(images)[attribute][0])

        return LogitScorer(attribute, net), read, attribute
    positive, neutral = clip_prompts(attribute)
    scorer = ClipLogitScorer(clip_model(_model_clip(model)), positive, neutral)

    def read(images):
        with torch.no_grad():
            return scorer.probability(images)

    return scorer, read, f"CLIP p('{positive}')"


@gpu_task(FIT_S)
@user_errors
def stylespace_find(model: str, attribute: str, top_k, latent):
    """Returns ``(table of the top channels, layer of the best one, its channel, the signed amount to apply)``.

    The :data:`CANDIDATES` channels with the largest gradient of the attribute's logit (over the current face and
    :func:`gradient_samples` random ones, in backward passes of as many codes as memory allows, demos.jobs) are
    each moved ``|STYLESPACE.amount|`` std (the sign the gradient says raises the attribute) and ranked by the
    change then read: a gradient is a first-order guess, and at that size the best guess is often not the
    best channel. The reading is the model's attribute predictor (toyfaces) or, for other models, CLIP zero-shot
    with the model's CLIP (an attribute of demos.edit.CLIP_ATTRIBUTES, or 'positive | neutral' prompts)."""
    import torch

    from stylekit.edit.stylespace import edit_channel, gradient_scores, top_channels

    from . import jobs
    from .device import device

    G = get_generator(model)
    if not isinstance(attribute, str) or not attribute.strip():
        raise InvalidArgumentError("pick an attribute (or write a prompt such as 'a photo of a face with a hat').")
    attribute = attribute.strip()
    k = integer(top_k, "number of channels", 1, 30)
    scorer, read, what = _reader(model, attribute)
    base = current_latent(G, latent)
    st = stats(model, G)
    batch = jobs.batch_for("grad_image", G.img_resolution, cap=8, budget=jobs.call_budget(device()))
    if base.generator is not None:  # a PTI-tuned face has its own generator: its gradient alone
        scores = gradient_scores(G, scorer, base.to_styles(G), stats=st, batch_size=batch)
    else:
        current = gradient_scores(G, scorer, base.to_styles(G).replace(noise=None), stats=st, batch_size=batch)
        n = gradient_samples(G)
        samples = _sample_scores(model, G, attribute, scorer, st, batch)
        scores = [(n * a + c) / (n + 1) for a, c in zip(samples, current)]
    n_try = candidates_to_try(G, k)
    candidates = top_channels(G, scores, top_k=max(k, n_try))
    step = abs(STYLESPACE.amount)
    with torch.no_grad():
        start = read(render(G, base))
        tried = []
        for cs in candidates[:n_try]:
            amount = step if cs.score > 0 else -step
            out = edit_channel(G, base, cs.layer_index, cs.channel, amount, stats=st)
            tried.append((read(render(G, out)) - start, amount, cs))
    tried.sort(key=lambda t: (-round(t[0], 2), -abs(t[2].score)))  # ties: the larger gradient first
    lines = [f"{'layer':<12}{'idx':>4}{'channel':>8}{'gradient':>10}  {what} at +-{step:g} std"]
    lines += [f"{cs.layer:<12}{cs.layer_index:>4}{cs.channel:>8}{cs.score:>+10.3f}  {start:.2f} -> {start + d:.2f} "
              f"({amount:+g})" for d, amount, cs in tried[:k]]
    lines += [f"{cs.layer:<12}{cs.layer_index:>4}{cs.channel:>8}{cs.score:>+10.3f}  (not tried; ranked by gradient)"
              for cs in candidates[n_try:k]]
    _, amount, best = tried[0]
    return "\n".join(lines), best.layer, best.channel, amount


@user_errors
def use_stylespace(model: str, result):
    return use_result(model, result, "StyleSpace")


def build(ui: SharedUI) -> None:
    teaching_note(SHORT, MORE, lesson=LESSON, measured=MEASURED)
    result = session_state()
    try:
        names = layer_choices(get_generator(default_model()))
    except gr.Error:  # the default model is not installed; the list fills in when a model is picked
        names = []
    with gr.Row():
        layer = gr.Dropdown(names, value=default_layer(names), label="Style layer")
        channel = gr.Number(value=STYLESPACE.channel, precision=0, label="Channel")
        amount = gr.Slider(-20, 20, value=STYLESPACE.amount, step=0.5, label="Amount (standard deviations)")
    button = gr.Button("Apply", variant="primary", elem_id="stylespace-button")
    output = gr.Image(label="Before | after", type="pil", elem_id="stylespace-output")
    info = gr.Markdown(label="result", elem_id="stylespace-info")
    with gr.Row():
        attribute = gr.Dropdown(list(_attributes()) + [a for a in CLIP_ATTRIBUTES if a not in _attributes()],
                                value=STYLESPACE.attribute, label="Attribute to explain (or a prompt: positive | neutral)",
                                allow_custom_value=True)
        top_k = gr.Slider(1, 30, value=10, step=1, label="Channels to list")
        find = gr.Button("Find channels (and apply the strongest)", elem_id="stylespace-find")
    table = gr.Code(label="Channels by measured effect on the attribute (gradient: of its logit, per +1 std)",
                    language=None)
    use = gr.Button("Use this result", elem_id="stylespace-use")
    edit_inputs = [ui.model, layer, channel, amount, attribute, ui.latent]
    gr.on([button.click, amount.release], stylespace_edit, edit_inputs, [output, info, result],
          api_name="stylespace_edit")
    # after finding, the strongest channel is applied at once, so the caption always describes the picture
    find.click(stylespace_find, [ui.model, attribute, top_k, ui.latent], [table, layer, channel, amount],
               api_name="stylespace_find").success(stylespace_edit, edit_inputs, [output, info, result],
                                                   api_visibility="private")
    use.click(use_stylespace, [ui.model, result], ui.use_outputs, api_name="stylespace_use")
    ui.loaded.change(stylespace_layers, ui.model, layer, api_name="stylespace_layers")


@user_errors
def stylespace_layers(model: str):
    """Returns the style-layer dropdown for the picked model."""
    G = get_generator(model)
    names = layer_choices(G)
    return gr.Dropdown(choices=names, value=default_layer(names))
