"""Edit tab: move the current latent along InterFaceGAN, GANSpace or SeFa directions with sliders."""

from __future__ import annotations

import gradio as gr

from stylekit.edit.presets import INTERFACEGAN, SEFA
from stylekit.errors import InvalidArgumentError

from .common import (FIT_S, SharedUI, cached_fit, choice, current_latent, get_generator, gpu_task, integer, log,
                     number, render, row, session_state, teaching_note, use_result, user_errors)
from .readings import change_line, describe_group, describe_rows, predictor_for

SHORT = """**Linear edits in W.** Many attributes change along a straight line in W, so an edit is
*w' = w + strength x direction*. Three ways to find a direction: InterFaceGAN (with labels), GANSpace (PCA of
W) and SeFa (from the generator's weights alone)."""

MORE = f"""- **InterFaceGAN** (Shen et al. 2020, supervised): sample {INTERFACEGAN.n:,} codes, label their images with an
  attribute classifier (here the toyfaces attribute predictor), fit a linear SVM to the
  {INTERFACEGAN.keep_fraction:.0%} scored highest and the {INTERFACEGAN.keep_fraction:.0%} scored lowest; its unit
  normal is the direction and *strength* is the distance moved in W. The first edit of an attribute fits its
  boundary (about 20 s, with a progress bar); later ones are instant.
- **GANSpace** (Härkönen et al. 2020, unsupervised): PCA of many W samples; the first components are the
  main axes of variation (pose, hair, lighting). *Amount* is in standard deviations of the component.
- **SeFa** (Shen & Zhou 2021, closed form): eigenvectors of A^T A, where A stacks the convolution layers'
  affine weights: the directions those layers react to most. No sampling at all.

Each caption names the rows the edit moved and what the attribute predictor reads before and after."""
MEASURED = ("on 16 development seeds (`python -m demos.defaults_check`): InterFaceGAN glasses +3 reads glasses "
            "0.25 -> 1.00 (15 of 255 per pixel); GANSpace PC0 +3 changes 51 per pixel; SeFa direction 0 at strength 1 "
            "tilts the head (predicted 0.6 -> 15.6 degrees) with every face typical, while at the former default 5 the "
            "median face was less typical than 99% of samples by 2.9x: broken (edit/presets.py SEFA).")
LESSON = "03_editing.py"

LAYERS = ("all", "coarse", "middle", "fine")
PCA_COMPONENTS = 20
SEFA_DIRECTIONS = 10
SEFA_MAX = 5.0  # past about 2 the toyfaces faces break (edit/presets.py SEFA.tuned)


def _attributes() -> tuple[str, ...]:
    from stylekit.toyfaces.attributes import ATTRIBUTE_NAMES

    return ATTRIBUTE_NAMES


def predictor():
    """The toyfaces attribute predictor (loaded once)."""
    return predictor_for("toyfaces")


def _layers(G, layers: str):
    from stylekit.edit import layer_presets

    layers = choice(layers, "layers", LAYERS)
    if layers == "all":
        return None
    rows = layer_presets(G)[layers]
    if not rows:
        raise InvalidArgumentError(f"this {G.img_resolution}px generator has no {layers} layers; pick another group.")
    return rows


def boundary(model: str, G, attribute: str, progress=None):
    """The InterFaceGAN boundary of ``attribute`` for ``model`` (fitted once, then cached; ``progress``: a
    stylekit progress callback for the fit, which renders and scores :data:`INTERFACEGAN.n` samples)."""
    from stylekit.edit import interfacegan

    if model != "toyfaces":
        raise InvalidArgumentError("InterFaceGAN boundaries are fitted here with the toyfaces attribute predictor, so "
                                   "they exist for the toyfaces model only; use GANSpace or SeFa with this model.")
    attribute = choice(attribute, "attribute", _attributes())

    def fit():
        import time

        from stylekit.progress import no_progress

        t0 = time.perf_counter()
        scorer = interfacegan.predictor_scorer(attribute, predictor=predictor())
        # the library's preset, the protocol bench editing measures
        direction = interfacegan.find_boundary(G, scorer, n=INTERFACEGAN.n, keep_fraction=INTERFACEGAN.keep_fraction,
                                               method=INTERFACEGAN.method, regularization=INTERFACEGAN.regularization,
                                               name=attribute, progress=progress or no_progress)
        log.info("fitted the InterFaceGAN boundary of %s on %s in %.1f s", attribute, model, time.perf_counter() - t0)
        return direction

    return cached_fit((model, "interfacegan", attribute), fit)


def pca(model: str, G):
    from stylekit.edit import ganspace

    return cached_fit((model, "ganspace"), lambda: ganspace.fit_pca(G, n_samples=10000,
                                                                     n_components=PCA_COMPONENTS))


def sefa(model: str, G, layers: str):
    from stylekit.edit import sefa as sefa_mod

    return cached_fit((model, "sefa", layers), lambda: sefa_mod.sefa(G, layers=layers, k=SEFA_DIRECTIONS))


def _predicted(images, attribute: str) -> float:
    import torch

    with torch.no_grad():
        return float(predictor().predict(images)[attribute][0])


@gpu_task(FIT_S)
@user_errors
def edit_interfacegan(model: str, attribute: str, strength, layers: str, latent, progress=gr.Progress()):
    """Returns ``(before | after image, text with the predicted attribute before/after, edited latent)``.
    The first call per attribute fits the boundary (about 20 s on one thread), with a progress bar."""
    from stylekit.edit import edit

    G = get_generator(model)
    strength = number(strength, "strength", -10, 10)
    rows = _layers(G, layers)
    base = current_latent(G, latent)

    def fit_progress(step, total, message=""):
        progress((step, total), desc=f"Fitting the {attribute} boundary once ({message} {step}/{total} samples)")

    direction = boundary(model, G, attribute, progress=fit_progress)
    out = edit(base, direction, strength, layers=rows, G=G)
    before, after = render(G, base), render(G, out)
    accuracy = direction.meta.get("train_accuracy", direction.meta.get("accuracy", float("nan")))
    info = (f"InterFaceGAN **{attribute}**: moved {strength:+g} in W on {describe_group(G, layers, rows)}; "
            f"{change_line(model, before, after, attribute)} (boundary accuracy {accuracy:.2f}).")
    return row(before, after), info, out


@gpu_task(FIT_S)
@user_errors
def edit_ganspace(model: str, component, amount, layers: str, latent):
    """Returns ``(before | after image, text, edited latent)``; ``amount`` in standard deviations."""
    from stylekit.edit import ganspace

    G = get_generator(model)
    index = integer(component, "component", 0, PCA_COMPONENTS - 1)
    amount = number(amount, "amount", -10, 10)
    rows = _layers(G, layers)
    base = current_latent(G, latent)
    comps = pca(model, G)
    out = ganspace.edit_components(base, comps, {index: amount}, layers=rows, G=G)
    ratio = comps.explained_variance_ratio
    share = f" ({100 * float(ratio[index]):.1f}% of the variance of W)" if ratio is not None else ""
    before, after = render(G, base), render(G, out)
    reading = change_line(model, before, after)
    info = (f"GANSpace **PC{index}**{share}: moved {amount:+g} standard deviations on {describe_group(G, layers, rows)}"
            + (f"; {reading}." if reading else "."))
    return row(before, after), info, out


@gpu_task(FIT_S)
@user_errors
def edit_sefa(model: str, index, strength, layers: str, latent):
    """Returns ``(before | after image, text, edited latent)``; the direction edits the rows it was factorised on."""
    from stylekit.edit import edit
    from stylekit.edit.sefa import sefa_direction

    G = get_generator(model)
    i = integer(index, "direction", 0, SEFA_DIRECTIONS - 1)
    strength = number(strength, "strength", -SEFA_MAX, SEFA_MAX)
    _layers(G, layers)
    base = current_latent(G, latent)
    factors = sefa(model, G, layers)
    out = edit(base, sefa_direction(factors, i), strength, G=G)
    before, after = render(G, base), render(G, out)
    reading = change_line(model, before, after)
    info = (f"**SeFa direction {i}** (eigenvalue {float(factors.eigenvalues[i]):.2f}, factorised on the {layers} "
            f"layers): moved {strength:+g} in W on {describe_rows(G, factors.layers, kinds=('conv',))}"
            + (f"; {reading}." if reading else "."))
    return row(before, after), info, out


@user_errors
def use_edit(model: str, result):
    return use_result(model, result, "Edit")


def build(ui: SharedUI) -> None:
    teaching_note(SHORT, MORE, lesson=LESSON, measured=MEASURED)
    result = session_state()
    with gr.Group():
        gr.Markdown("**InterFaceGAN** (toyfaces attribute predictor)")
        with gr.Row():
            attribute = gr.Dropdown(list(_attributes()), value="glasses", label="Attribute")
            ifg_strength = gr.Slider(-10, 10, value=3, step=0.1, label="Strength (W distance)")
            ifg_layers = gr.Dropdown(list(LAYERS), value="all", label="Layers")
            ifg_button = gr.Button("Apply", variant="primary", elem_id="edit-ifg-button")
    with gr.Group():
        gr.Markdown("**GANSpace** (PCA of W)")
        with gr.Row():
            component = gr.Slider(0, PCA_COMPONENTS - 1, value=0, step=1, label="Component")
            amount = gr.Slider(-10, 10, value=3, step=0.1, label="Amount (standard deviations)")
            pca_layers = gr.Dropdown(list(LAYERS), value="all", label="Layers")
            pca_button = gr.Button("Apply", elem_id="edit-pca-button")
    with gr.Group():
        gr.Markdown("**SeFa** (closed-form factorisation)")
        with gr.Row():
            sefa_index = gr.Slider(0, SEFA_DIRECTIONS - 1, value=SEFA.direction, step=1, label="Direction")
            sefa_strength = gr.Slider(-SEFA_MAX, SEFA_MAX, value=SEFA.strength, step=0.1,
                                      label="Strength (W distance)")
            sefa_layers = gr.Dropdown(list(LAYERS), value=SEFA.layers, label="Factorise layers")
            sefa_button = gr.Button("Apply", elem_id="edit-sefa-button")
    output = gr.Image(label="Before | after", type="pil", elem_id="edit-output")
    info = gr.Markdown(label="result", elem_id="edit-info")
    use = gr.Button("Use this result", elem_id="edit-use")
    outputs = [output, info, result]
    gr.on([ifg_button.click, ifg_strength.release], edit_interfacegan,
          [ui.model, attribute, ifg_strength, ifg_layers, ui.latent], outputs, api_name="edit_interfacegan",
          concurrency_id="interfacegan", concurrency_limit=2)  # a first fit never holds up the other edits
    gr.on([pca_button.click, amount.release, component.release], edit_ganspace,
          [ui.model, component, amount, pca_layers, ui.latent], outputs, api_name="edit_ganspace")
    gr.on([sefa_button.click, sefa_strength.release, sefa_index.release], edit_sefa,
          [ui.model, sefa_index, sefa_strength, sefa_layers, ui.latent], outputs, api_name="edit_sefa")
    use.click(use_edit, [ui.model, result], ui.use_outputs, api_name="edit_use")
