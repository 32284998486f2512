"""Edit tab: move the current latent along InterFaceGAN, GANSpace, SeFa or published directions with sliders."""

from __future__ import annotations


import gradio as gr

from stylekit.edit.presets import INTERFACEGAN, SEFA
from stylekit.errors import InvalidArgumentError, StylekitError

from . import common, jobs, rig, styleflow
from .common import (FIT_S, RENDER_S, SharedUI, cached_fit, choice, current_latent, get_generator, gpu_task, integer,
                     is_cached, log, number, render, row, session_key, session_state, teaching_note, use_result,
                     user_errors)
from .device import device
from .readings import change_line, describe_group, describe_rows, predictor_for

SHORT = """**Linear edits in W.** Many attributes change along a straight line in W, so an edit is
*w' = w + strength x direction*. Three ways to find a direction: InterFaceGAN (with labels), GANSpace (PCA of
W) and SeFa (from the generator's weights alone); models with published directions (FFHQ: e4e's age, smile, pose)
offer those too."""

MORE = f"""- **InterFaceGAN** (Shen et al. 2020, supervised): sample {INTERFACEGAN.n:,} codes, label their images with an
  attribute classifier (toyfaces: its attribute predictor; other models: CLIP zero-shot with the model's CLIP,
  *positive* against *neutral* prompt), fit a linear SVM to the
  {INTERFACEGAN.keep_fraction:.0%} scored highest and the {INTERFACEGAN.keep_fraction:.0%} scored lowest; its unit
  normal is the direction and *strength* is the distance moved in W. On toyfaces the first edit of an
  attribute fits its boundary (about 20 s, with a progress bar); on a real model, labelling thousands of
  1024 px images takes long, so *Fit in background* starts it as a background job (progress below it, the
  boundary kept on disk, resumed where it stopped) and the edit works once it is done. An attribute is a name
  from the list or your own prompts (``positive | neutral``).
- **Published directions** (the model's registry companions, e.g. e4e's InterFaceGAN directions for StyleGAN2
  FFHQ): *strength* multiplies the vector as published, as in the projects that published it.
- **GANSpace** (Härkönen et al. 2020, unsupervised): PCA of many W samples; the first components are the
  main axes of variation (pose, hair, lighting). *Amount* is in standard deviations of the component. Models
  with published components (e4e's ``ffhq_pca.pt`` for ffhq-1024) use those; the caption names the source.
- **SeFa** (Shen & Zhou 2021, closed form): eigenvectors of A^T A, where A stacks the convolution layers'
  affine weights: the directions those layers react to most. No sampling at all.

Each caption names the rows the edit moved and what the attribute predictor reads before and after."""
MEASURED = ("on 16 development seeds (`python -m demos.defaults_check`): InterFaceGAN glasses +3 reads glasses "
            "0.31 -> 1.00 (17 of 255 per pixel); GANSpace PC0 +3 changes 30 per pixel; SeFa direction 0 at strength 1 "
            "changes 11 per pixel with every face typical, mixing a smile, glasses and a tilt (direction 1 tilts the "
            "head), while the former default 5 made faces less typical than 99% of samples: broken (edit/presets.py "
            "SEFA).")
LESSON = "03_editing.py"

LAYERS = ("all", "coarse", "middle", "fine")
PCA_COMPONENTS = 20
PCA_SAMPLES = 10000  # codes of the PCA fitted for models without published components
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


#: attributes for models without an attribute predictor: name -> (positive, neutral) prompts for CLIP zero-shot
CLIP_ATTRIBUTES = {
    "smile": ("a photo of a smiling face", "a photo of a face"),
    "glasses": ("a photo of a face with glasses", "a photo of a face"),
    "beard": ("a photo of a face with a beard", "a photo of a face"),
    "old": ("a photo of an old person's face", "a photo of a young person's face"),
    "blond hair": ("a photo of a face with blond hair", "a photo of a face with dark hair"),
    "open mouth": ("a photo of a face with an open mouth", "a photo of a face with a closed mouth"),
}
DEFAULT_CLIP_ATTRIBUTE = "smile"
MAX_SAMPLES = 100_000
#: the fewest samples that leave two positives and two negatives at the preset's 10% ends (what the SVM needs)
MIN_SAMPLES = 20


def attribute_choices(model: str) -> list[str]:
    """The attributes offered for ``model``: its predictor's (toyfaces) and the CLIP zero-shot ones."""
    names = list(predictor_for(model).attribute_names) if predictor_for(model) is not None else []
    return names + [a for a in CLIP_ATTRIBUTES if a not in names]


def clip_prompts(attribute: str) -> tuple[str, str]:
    """``(positive, neutral)`` CLIP prompts of ``attribute``: a name of :data:`CLIP_ATTRIBUTES` or ``'positive |
    neutral'``."""
    if not isinstance(attribute, str) or not attribute.strip():
        raise InvalidArgumentError("the attribute is empty: pick one from the list or write a prompt such as "
                                   "'a photo of a face with a hat | a photo of a face'.")
    attribute = attribute.strip()
    if attribute in CLIP_ATTRIBUTES:
        return CLIP_ATTRIBUTES[attribute]
    positive, sep, neutral = attribute.partition("|")
    positive, neutral = positive.strip(), neutral.strip()
    if not sep:
        raise InvalidArgumentError(f"unknown attribute {attribute!r}: pick one from the list ({', '.join(CLIP_ATTRIBUTES)} "
                                   "or the model's predictor attributes) or write two prompts, 'positive | neutral', "
                                   "e.g. 'a photo of a face with a hat | a photo of a face'.")
    if not positive or not neutral or positive == neutral:
        raise InvalidArgumentError(f"write the attribute as 'positive prompt | neutral prompt' with two different "
                                   f"prompts, got {attribute!r}.")
    return positive, neutral


def _uses_predictor(model: str, attribute: str) -> bool:
    p = predictor_for(model)
    return p is not None and attribute in p.attribute_names


def _model_clip(model: str) -> str:
    from stylekit import registry

    return registry.companion(model, "clip") or "toyfaces"


def clip_model(name: str):
    """The CLIP called ``name``, loaded once per process on the gallery's device (shared with the Text tab)."""
    from .text import clip_model as load

    return load(name)


def _boundary_file(G, clip_name: str, attribute: str, n: int):
    import hashlib

    from stylekit.text.keys import generator_fingerprint

    digest = hashlib.sha1("|".join(clip_prompts(attribute)).encode()).hexdigest()[:12]
    return jobs.cache_dir() / "interfacegan" / f"{generator_fingerprint(G)[:20]}-{clip_name}-{digest}-n{n}.pt"


def _fit_key(model: str, attribute: str, n: int) -> tuple:
    return ("interfacegan", model, _model_clip(model), clip_prompts(attribute), n)


def clip_boundary(model: str, G, attribute: str, n: int):
    """The InterFaceGAN boundary of ``attribute`` fitted from ``n`` CLIP-labelled samples when it exists (in
    memory, or on disk from an earlier job), else None: fitting it is :func:`start_clip_fit`'s background job."""
    from stylekit.edit.interfacegan import load_boundary

    key = (model, "interfacegan-clip", clip_prompts(attribute), n)
    if is_cached(key):
        return cached_fit(key, None)
    path = _boundary_file(G, _model_clip(model), attribute, n)
    if not path.is_file():
        return None
    return cached_fit(key, lambda: load_boundary(path, G=G, name=attribute))


def label_batch(G) -> int:
    """Images rendered and CLIP-scored per pass when labelling: from the job's memory budget (demos.jobs), at
    most 32 (FFHQ-1024 with the 3 GB budget: 12)."""
    return jobs.batch_for("render", G.img_resolution, cap=32, device=device())


def start_clip_fit(model: str, attribute: str, n: int, *, session: str = ""):
    """Start (or find) the background job that fits ``attribute``'s boundary for ``model`` from ``n`` samples
    labelled by CLIP zero-shot with the model's CLIP: :func:`stylekit.jobs.label_samples` (chunks written to
    disk, so a restarted job resumes) then :func:`stylekit.jobs.fit_from_labels` with the preset's protocol
    (:data:`INTERFACEGAN`: the top and bottom 10%). The boundary is saved under ``$STYLEKIT_CACHE/gallery``."""
    import math

    from stylekit.edit.interfacegan import save_boundary
    from stylekit.jobs import fit_from_labels, label_samples
    from stylekit.jobs.shard import Shard

    n = integer(n, "samples", MIN_SAMPLES, MAX_SAMPLES)
    positive, neutral = clip_prompts(attribute)
    G = get_generator(model)
    clip_name = _model_clip(model)
    clip = clip_model(clip_name)
    batch = label_batch(G)
    chunk = max(batch, math.ceil(n / 20))  # about twenty steps of progress, each a resumable file
    path = _boundary_file(G, clip_name, attribute, n)
    labels = path.with_suffix(".labels.safetensors")

    def compute(report):
        if path.is_file():
            return str(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        parts = labels.with_name(labels.name + ".parts")
        def tick():
            done = min(n, chunk * len(list(parts.glob("chunk_*.safetensors")))) if parts.is_dir() else 0
            report(done, n, f"{done} of {n} samples labelled by CLIP {clip_name}, {batch} per pass")

        with jobs.reporting_every(tick, name="stylekit-label-progress"):
            summary = label_samples(G, labels, scorer=f"clip:{positive}|{neutral}", n=n, chunk_size=chunk,
                                    batch_size=batch, clip=clip, device=str(G.device), shard=Shard(0, 1),
                                    show_progress=False)
        if summary.get("labels") is None:
            raise RuntimeError(f"labelling ended without a labels file ({summary.get('manifest')})")
        direction = fit_from_labels(summary["labels"])
        direction.meta["clip"] = clip_name
        direction.name = attribute
        save_boundary(direction, path)
        return str(path)

    label = f"the InterFaceGAN boundary of '{attribute}' on {model} ({n} samples labelled by CLIP {clip_name})"
    return jobs.start(_fit_key(model, attribute, n), label, compute, session=session)


def boundary(model: str, G, attribute: str, progress=None):
    """The InterFaceGAN boundary of a predictor ``attribute`` for ``model`` (toyfaces), fitted once under the fit's
    lock, then cached (``progress``: a stylekit progress callback for the fit, which renders and scores
    :data:`INTERFACEGAN.n` samples). Other models' attributes come from :func:`clip_boundary`."""
    from stylekit.edit import interfacegan

    if not _uses_predictor(model, attribute):
        raise InvalidArgumentError(f"{model} has no attribute predictor for {attribute!r}; its boundaries are fitted "
                                   "from CLIP zero-shot labels (Fit in background).")

    def fit():
        import time

        from stylekit.progress import no_progress

        t0 = time.perf_counter()
        scorer = interfacegan.predictor_scorer(attribute, predictor=predictor_for(model))
        # the library's preset, the protocol bench editing measures
        direction = interfacegan.find_boundary(G, scorer, n=INTERFACEGAN.n, keep_fraction=INTERFACEGAN.keep_fraction,
                                               method=INTERFACEGAN.method, regularization=INTERFACEGAN.regularization,
                                               name=attribute, progress=progress or no_progress)
        log.info("fitted the InterFaceGAN boundary of %s on %s in %.1f s", attribute, model, time.perf_counter() - t0)
        return direction

    return cached_fit((model, "interfacegan", attribute), fit)


def published_directions(model: str) -> dict[str, str]:
    """The directions published for ``model`` (its ``direction:<name>`` registry companions): name -> artifact."""
    from stylekit import registry

    try:
        companions = registry.resolve(model, "generator").companions
    except StylekitError:
        return {}
    return {role.split(":", 1)[1]: name for role, name in companions.items() if role.startswith("direction:")}


def published(model: str, G, name: str):
    """The published direction ``name`` of ``model`` (read once; the file comes from the Hub cache or the Hub)."""
    from stylekit import registry
    from stylekit.edit.direction import load_direction

    table = published_directions(model)
    if not table:
        raise InvalidArgumentError(f"{model} has no published directions; use InterFaceGAN, GANSpace or SeFa.")
    name = choice(name, "published direction", list(table))

    def load():
        from .models import hub_offline

        artifact = registry.resolve(table[name], "directions")
        path = registry.artifact_path(artifact, local_files_only=True if hub_offline() else None)
        return load_direction(path, G=G, name=name)

    return cached_fit((model, "published", name), load)


def pca(model: str, G):
    """The model's GANSpace components: its published ones (the ``ganspace`` registry companion, e.g. e4e's
    ``ffhq_pca.pt`` for ffhq-1024) when the file is here or can be fetched, else a PCA of 10,000 samples fitted
    once. ``meta['source']`` says which (the caption repeats it)."""
    from stylekit import registry
    from stylekit.edit import ganspace

    def load():
        from .models import hub_offline

        name = registry.companion(model, "ganspace")
        if name is not None:
            try:
                artifact = registry.resolve(name, "directions")
                path = registry.artifact_path(artifact, local_files_only=True if hub_offline() else None)
                comps = ganspace.load_components(path, G=G)
            except StylekitError as exc:  # not downloaded (offline) or unreadable: say so, and fit our own
                common.log.info("GANSpace for %s: published components %s unavailable (%s); fitting a PCA", model,
                                name, exc)
            else:
                comps.meta["source"] = f"published components {name}"
                return comps
        comps = ganspace.fit_pca(G, n_samples=PCA_SAMPLES, n_components=PCA_COMPONENTS)
        comps.meta["source"] = f"a PCA of {PCA_SAMPLES:,} samples fitted here"
        return comps

    return cached_fit((model, "ganspace"), load)


def sefa(model: str, G, layers: str):
    from stylekit.edit import sefa as sefa_mod

    return cached_fit((model, "sefa", layers), lambda: sefa_mod.sefa(G, layers=layers, k=SEFA_DIRECTIONS))


def _predicted(images, attribute: str) -> float:
    import torch

    with torch.no_grad():
        return float(predictor().predict(images)[attribute][0])


def _clip_reading(model: str, before, after, attribute: str) -> str:
    """``"CLIP reads 'a photo of a smiling face' 0.41 -> 0.63"`` (zero-shot probability against the neutral prompt)."""
    import torch

    positive, neutral = clip_prompts(attribute)
    clip = clip_model(_model_clip(model))
    with torch.no_grad():
        p = [float(clip.zero_shot_scores(x, positive, neutral)[0]) for x in (before, after)]
    return f"CLIP {_model_clip(model)} reads '{positive}' **{p[0]:.2f} -> {p[1]:.2f}**"


@gpu_task(FIT_S)
@user_errors
def edit_interfacegan(model: str, attribute: str, strength, layers: str, latent, samples=INTERFACEGAN.n,
                      request: gr.Request = None, progress=gr.Progress()):
    """Returns ``(before | after image, text with the attribute's reading before/after, edited latent)``.

    A predictor attribute (toyfaces) fits its boundary on first use (about 20 s on one thread), with a progress
    bar. A CLIP attribute uses the boundary fitted from ``samples`` CLIP-labelled codes; while there is none it
    returns at once ``(None, what to press / how far the fit is, None)`` (the fit is :func:`edit_interfacegan_fit`'s
    background job)."""
    from stylekit.edit import edit

    G = get_generator(model)
    strength = number(strength, "strength", -10, 10)
    rows = _layers(G, layers)
    base = current_latent(G, latent)
    if not isinstance(attribute, str) or not attribute.strip():
        raise InvalidArgumentError("pick an attribute (or write a prompt such as 'a photo of a face with a hat').")
    attribute = attribute.strip()
    if _uses_predictor(model, attribute):
        def fit_progress(step, total, message=""):
            progress((step, total), desc=f"Fitting the {attribute} boundary once ({message} {step}/{total} samples)")

        direction = boundary(model, G, attribute, progress=fit_progress)
    else:
        n = integer(samples, "samples", MIN_SAMPLES, MAX_SAMPLES)
        direction = clip_boundary(model, G, attribute, n)
        if direction is None and jobs.follows_in_call(G):  # a small model: fit it now (once, under its job), wait
            job = jobs.follow(start_clip_fit(model, attribute, n, session=session_key(request)), progress,
                              session_key(request))
            direction = clip_boundary(model, G, attribute, n) if job.state == "done" else None
        if direction is None:
            job = jobs.get(_fit_key(model, attribute, n))
            session = session_key(request)
            if job is not None and job.state != "failed":
                return None, f"No boundary for '{attribute}' yet: {job.describe(session)}", None
            return None, (f"No boundary for '{attribute}' on {model} yet. Press **Fit in background** to fit it from "
                          f"{n:,} samples labelled by CLIP {_model_clip(model)} (a background job; the edit works "
                          "when it is done)."), None
    out = edit(base, direction, strength, layers=rows, G=G)
    before, after = render(G, base), render(G, out)
    accuracy = direction.meta.get("train_accuracy", direction.meta.get("accuracy", float("nan")))
    reading = (change_line(model, before, after, attribute) if _uses_predictor(model, attribute)
               else _clip_reading(model, before, after, attribute))
    fitted = "" if _uses_predictor(model, attribute) else f", fitted on {direction.meta.get('n_sampled', '?')} CLIP-labelled samples"
    info = (f"InterFaceGAN **{attribute}**: moved {strength:+g} in W on {describe_group(G, layers, rows)}; "
            f"{reading} (boundary accuracy {accuracy:.2f}{fitted}).")
    return row(before, after), info, out


@user_errors
def edit_interfacegan_fit(model: str, attribute: str, samples=INTERFACEGAN.n, request: gr.Request = None) -> str:
    """Start fitting ``attribute``'s boundary from ``samples`` CLIP-labelled codes in the background; returns at
    once with a line saying where the job stands (predictor attributes need no job)."""
    session = session_key(request)
    if isinstance(attribute, str) and _uses_predictor(model, attribute.strip()):
        return f"'{attribute}' is read by {model}'s attribute predictor: its boundary is fitted by the first edit."
    G = get_generator(model)
    n = integer(samples, "samples", MIN_SAMPLES, MAX_SAMPLES)
    if clip_boundary(model, G, attribute, n) is not None:
        return f"The boundary of '{attribute.strip()}' ({n:,} samples) is ready: press Apply."
    return start_clip_fit(model, attribute.strip(), n, session=session).describe(session)


@user_errors
def edit_interfacegan_status(model: str, attribute: str, samples=INTERFACEGAN.n, request: gr.Request = None) -> str:
    """Where the background fit of ``attribute`` stands, without starting anything."""
    n = integer(samples, "samples", MIN_SAMPLES, MAX_SAMPLES)
    job = jobs.get(_fit_key(model, attribute.strip() if isinstance(attribute, str) else attribute, n))
    return job.describe(session_key(request)) if job is not None else "No background fit of this attribute yet."


@gpu_task(RENDER_S)
@user_errors
def edit_published(model: str, direction: str, strength, layers: str, latent):
    """Returns ``(before | after image, text, edited latent)``: ``w + strength x`` the published vector."""
    from stylekit.edit import edit

    G = get_generator(model)
    strength = number(strength, "strength", -10, 10)
    rows = _layers(G, layers)
    base = current_latent(G, latent)
    d = published(model, G, direction)
    out = edit(base, d, strength, layers=rows, G=G)
    before, after = render(G, base), render(G, out)
    reading = change_line(model, before, after)
    norm = float(d.vector.norm())
    info = (f"Published direction **{direction}** ({published_directions(model)[direction]}, norm {norm:.2f}): "
            f"moved {strength:+g} x the vector on {describe_group(G, layers, rows)}" + (f"; {reading}." if reading else "."))
    return row(before, after), info, out


@user_errors
def edit_model_choices(model: str):
    """Updates of ``(attribute dropdown, published-direction dropdown)`` for the picked model."""
    names = attribute_choices(model)
    value = "glasses" if "glasses" in names and predictor_for(model) is not None else DEFAULT_CLIP_ATTRIBUTE
    directions = list(published_directions(model))
    return (gr.Dropdown(choices=names, value=value),
            gr.Dropdown(choices=directions, value=directions[0] if directions else None))


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
    share += f", from {comps.meta.get('source', 'a PCA fitted here')}"
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
    from .models import default_model

    teaching_note(SHORT, MORE, lesson=LESSON, measured=MEASURED)
    result = session_state()
    first = default_model()
    try:
        names, directions = attribute_choices(first), list(published_directions(first))
    except StylekitError:
        names, directions = list(_attributes()) + list(CLIP_ATTRIBUTES), []
    start = "glasses" if "glasses" in names and predictor_for(first) is not None else DEFAULT_CLIP_ATTRIBUTE
    with gr.Group():
        gr.Markdown("**InterFaceGAN** (toyfaces: its attribute predictor; other models: CLIP zero-shot labels)")
        with gr.Row():
            attribute = gr.Dropdown(names, value=start, label="Attribute (or a prompt: positive | neutral)",
                                    allow_custom_value=True)
            ifg_strength = gr.Slider(-10, 10, value=3, step=0.1, label="Strength (W distance)")
            ifg_layers = gr.Dropdown(list(LAYERS), value="all", label="Layers")
            ifg_button = gr.Button("Apply", variant="primary", elem_id="edit-ifg-button")
        with gr.Row():
            samples = gr.Slider(MIN_SAMPLES, 20000, value=INTERFACEGAN.n, step=1, label="Samples (CLIP-labelled fit)")
            fit = gr.Button("Fit in background", elem_id="edit-ifg-fit")
            fit_refresh = gr.Button("Refresh progress", size="sm", elem_id="edit-ifg-status")
        fit_info = gr.Markdown(label="background fit", elem_id="edit-ifg-job")
    with gr.Group():
        gr.Markdown("**Published directions** (the model's companions, e.g. e4e's for StyleGAN2 FFHQ)")
        with gr.Row():
            direction = gr.Dropdown(directions, value=directions[0] if directions else None, label="Direction",
                                    allow_custom_value=True)
            pub_strength = gr.Slider(-10, 10, value=3, step=0.1, label="Strength (x the published vector)")
            pub_layers = gr.Dropdown(list(LAYERS), value="all", label="Layers")
            pub_button = gr.Button("Apply", elem_id="edit-published-button")
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
    rig_section = rig.build()
    flow_section = styleflow.build()
    output = gr.Image(label="Before | after", type="pil", elem_id="edit-output")
    info = gr.Markdown(label="result", elem_id="edit-info")
    use = gr.Button("Use this result", elem_id="edit-use")
    outputs = [output, info, result]
    rig_section.wire(ui, outputs)
    flow_section.wire(ui, outputs)
    gr.on([ifg_button.click, ifg_strength.release], edit_interfacegan,
          [ui.model, attribute, ifg_strength, ifg_layers, ui.latent, samples], outputs, api_name="edit_interfacegan",
          concurrency_id="interfacegan", concurrency_limit=2)  # a first fit never holds up the other edits
    fit.click(edit_interfacegan_fit, [ui.model, attribute, samples], fit_info, api_name="edit_interfacegan_fit",
              concurrency_id="edit_jobs", concurrency_limit=4)
    fit_refresh.click(edit_interfacegan_status, [ui.model, attribute, samples], fit_info,
                      api_name="edit_interfacegan_status", queue=False)
    gr.on([pub_button.click, pub_strength.release], edit_published,
          [ui.model, direction, pub_strength, pub_layers, ui.latent], outputs, api_name="edit_published")
    gr.on([pca_button.click, amount.release, component.release], edit_ganspace,
          [ui.model, component, amount, pca_layers, ui.latent], outputs, api_name="edit_ganspace")
    gr.on([sefa_button.click, sefa_strength.release, sefa_index.release], edit_sefa,
          [ui.model, sefa_index, sefa_strength, sefa_layers, ui.latent], outputs, api_name="edit_sefa")
    use.click(use_edit, [ui.model, result], ui.use_outputs, api_name="edit_use")
    if ui.loaded is not None:
        ui.loaded.change(edit_model_choices, ui.model, [attribute, direction], api_name="edit_choices")
