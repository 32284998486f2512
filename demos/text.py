"""Text tab (StyleCLIP): edit the current latent toward a prompt, by global directions or latent optimisation."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import gradio as gr
import torch

from stylekit import hub
from stylekit.errors import InvalidArgumentError
from stylekit.text.presets import (GLOBAL_DIRECTIONS, MAPPER, OPTIMIZE, GlobalDirectionsPreset, MapperPreset,
                                   OptimizePreset)

from .common import (DEFAULT_MODEL, OPTIMISE_S, SharedUI, cached_fit, choice, current_latent, download_progress,
                     get_generator, gpu_task, integer, number, progress_callback, render, request_stop, row,
                     session_state, start_cancellable, teaching_note, use_result, user_errors)
from .device import device
from .models import default_model
from .readings import change_line

SHORT = """**Text-guided editing** (StyleCLIP, Patashnik et al. 2021) steers the generator with words through CLIP,
which embeds images and sentences in one space. **global** directions are instant; **optimize** runs gradient
descent per image; the **mapper** trains once per prompt, then edits any face instantly."""

MORE = """**global**: once per model, measure how every StyleSpace channel moves CLIP's image embedding; the text
change *neutral -> target* then picks the channels that move the image the same way, with *strength* as the
slider (negative removes the attribute); *channels* keeps that many of the most relevant and *beta* drops those
below a relevance threshold. *Whitened relevance* scores a channel by how it moves CLIP's embedding in ways other
channels do not (without it, StyleCLIP's plain cosine picks every channel of a few big shared directions, such as
overall colour). **optimize**: gradient descent on W+ so that CLIP finds the image closer to the prompt and tells
it from the neutral prompt, with an L2 pull toward the start; CLIP judges four jittered copies per step, so pixel
patterns that fool it alone do not count. **mapper**: a small network (coarse / medium / fine MLPs) trained for
*steps* steps to map any code to its edited version; *strength* 4 = the trained edit. Choosing a method sets its
tuned defaults and greys out the controls it ignores; each model uses the presets and CLIP its registry entry
names (toyfaces: the "toyfaces" presets and stylekit's small toyfaces CLIP)."""
MEASURED = ("on the five attribute prompts, judged by the attribute predictor (`python -m stylekit.bench text`): "
            "global directions succeed on 0.88-1.00 of the faces at mean leakage 0.09, latent optimisation on "
            "0.94-1.00, the mapper on 0.90-1.00.")
LESSON = "04_text.py"

METHODS = ("global", "optimize", "mapper")
MAPPER_UNIT = 4.0  # the strength slider's value (the mapper's default) that applies a mapper as trained
MAX_CHANNELS = 500  # the channels slider's top
#: the default model's presets (toyfaces, what bench text measures); other models use their companions' presets
GLOBAL, OPTIMISE, MAPPING = GLOBAL_DIRECTIONS["toyfaces"], OPTIMIZE["toyfaces"], MAPPER["toyfaces"]
WHITEN = GLOBAL.whiten  # the whitener's shrinkage when "whitened relevance" is on (and the preset has none)


@dataclass(frozen=True)
class TextSettings:
    """What the Text tab uses for a model: its registry companions (the preset names and the CLIP),
    falling back to the toyfaces ones (``GLOBAL_DIRECTIONS``/``OPTIMIZE``/``MAPPER`` of text/presets.py)."""

    preset: str
    clip: str
    global_: GlobalDirectionsPreset
    optimise: OptimizePreset
    mapping: MapperPreset


def settings_for(model: str) -> TextSettings:
    """The text presets and CLIP of ``model``: ``companion(model, 'preset')`` / ``companion(model, 'clip')``,
    else ``'toyfaces'`` (a preset table without that name, e.g. the mapper's, falls back to toyfaces)."""
    from stylekit import registry

    preset = (registry.companion(model, "preset") if isinstance(model, str) else None) or "toyfaces"
    clip = (registry.companion(model, "clip") if isinstance(model, str) else None) or "toyfaces"
    pick = lambda table: table[preset] if preset in table else table["toyfaces"]  # noqa: E731
    return TextSettings(preset, clip, pick(GLOBAL_DIRECTIONS), pick(OPTIMIZE), pick(MAPPER))


def method_defaults(method: str, model: str = DEFAULT_MODEL) -> dict[str, float]:
    """The strength / steps slider values a method starts from (only the sliders it uses)."""
    st = settings_for(model)
    return {"global": {"strength": st.global_.alpha}, "optimize": {"steps": st.optimise.steps},
            "mapper": {"strength": MAPPER_UNIT, "steps": st.mapping.steps}}[method]


def _set_defaults(method: str, model: str = DEFAULT_MODEL):
    wanted = method_defaults(choice(method, "method", METHODS), model)
    return tuple(gr.update(value=wanted[k]) if k in wanted else gr.update() for k in ("strength", "steps"))


def model_defaults(model: str, method: str):
    """The sliders of the picked model's presets: ``(strength, steps, channels, beta, whitened)``."""
    st = settings_for(model)
    strength, steps = _set_defaults(method if method in METHODS else "global", model)
    return (strength, steps, gr.update(value=st.global_.top_k or 0), gr.update(value=st.global_.beta),
            gr.update(value=st.global_.whiten is not None))


def _prompt(text, name: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgumentError(f"the {name} prompt is empty; describe the face you want, e.g. 'a face with glasses'.")
    return text.strip()


def clip_model(name: str):
    """The CLIP called ``name``, loaded once per process on the gallery's device, in precision ``auto``."""
    from stylekit.clip_backend import load_clip

    return cached_fit(("clip", name), lambda: load_clip(name, device=device(), precision="auto"))


def relevance(model: str, G, clip_name: str):
    from stylekit.text import relevance_for

    return cached_fit((model, "clip-relevance", clip_name),
                      lambda: relevance_for(G, clip_model(clip_name), n_images=32))


_MAPPERS: OrderedDict = OrderedDict()  # (model, clip, prompt, steps) -> trained mapper, most recent last
MAX_MAPPERS = 16
_MAPPER_LOCK = threading.Lock()


def _mapper(key: tuple, train):
    """The mapper for ``key`` = (model, clip, prompt, steps), trained on first use; the least recently used
    of more than :data:`MAX_MAPPERS` is dropped (prompts are free text, so the cache must stay bounded)."""
    with _MAPPER_LOCK:
        if key in _MAPPERS:
            _MAPPERS.move_to_end(key)
            return _MAPPERS[key]
    mapper = train()
    with _MAPPER_LOCK:
        _MAPPERS[key] = mapper
        while len(_MAPPERS) > MAX_MAPPERS:
            _MAPPERS.popitem(last=False)
    return mapper


def _global(model, G, base, prompt, neutral, st, clip, strength, beta, channels, whitened, progress):
    from stylekit.text import global_direction, global_edit

    alpha = number(strength, "strength", -10, 10)
    beta = number(beta, "disentanglement threshold", 0, 1)
    top_k = integer(channels, "channels", 0, MAX_CHANNELS) or None
    if not isinstance(whitened, bool):
        raise InvalidArgumentError(f"whitened relevance is a yes/no choice, got {whitened!r}.")
    progress((0, 1), desc="Channel relevance (computed once per model)")
    table = relevance(model, G, st.clip)
    whiten = (st.global_.whiten or WHITEN) if whitened else None
    direction = global_direction(table, prompt, neutral, clip=clip, preset=st.global_, beta=beta, top_k=top_k,
                                 whiten=whiten)
    out = global_edit(G, base, table, prompt, neutral, clip=clip, preset=st.global_, alpha=alpha, direction=direction)
    return out, (f"Global direction '{neutral}' -> '{prompt}' at strength {alpha:+g}: {direction.n_channels} channels "
                 f"({'whitened' if whitened else 'plain'} relevance, threshold {beta:g})")


def _mapped(model, G, base, prompt, st, clip, strength, steps, request, progress):
    from stylekit.text import apply_mapper, train_mapper

    alpha = number(strength, "strength", -10, 10)
    n = integer(steps, "steps", 1, 300)
    flag = start_cancellable(request)
    callback = progress_callback(progress, flag, "Training the mapper (once per prompt)")
    mapper = _mapper((model, st.clip, prompt, n), lambda: train_mapper(G, prompt, clip=clip, preset=st.mapping,
                                                                        steps=n, progress=callback)[0])
    out = apply_mapper(mapper, base, G=G, strength=alpha / MAPPER_UNIT)
    return out, (f"Mapper for '{prompt}' ({n} training steps) at strength {alpha:+g} "
                 f"({alpha / MAPPER_UNIT:+g}x the trained edit)")


@gpu_task(OPTIMISE_S)
@user_errors
def text_edit(model: str, prompt: str, neutral: str, method: str, strength, steps, beta, channels, whitened,
              latent, request: gr.Request = None, progress=gr.Progress()):
    """Returns ``(before | after image, text with CLIP similarity before -> after, edited latent)`` (S for
    'global', W+ otherwise)."""
    from stylekit.text import optimize_latent

    prompt = _prompt(prompt, "target")
    neutral = _prompt(neutral, "neutral")
    method = choice(method, "method", METHODS)
    G = get_generator(model)
    st = settings_for(model)
    with hub.report_downloads(download_progress(progress, f"CLIP {st.clip}")):
        clip = clip_model(st.clip)
    base = current_latent(G, latent)
    if method == "global":
        out, what = _global(model, G, base, prompt, neutral, st, clip, strength, beta, channels, whitened, progress)
    elif method == "mapper":
        out, what = _mapped(model, G, base, prompt, st, clip, strength, steps, request, progress)
    else:
        n = integer(steps, "steps", 1, 300)
        flag = start_cancellable(request)
        out = optimize_latent(G, base, prompt, clip=clip, preset=st.optimise, neutral=neutral, steps=n,
                              progress=progress_callback(progress, flag, "Text optimisation")).latent
        what = f"Optimised {n} steps toward '{prompt}'"
    before, after = render(G, base), render(G, out)
    with torch.no_grad():
        sims = [float(clip.similarity(x, prompt)[0]) for x in (before, after)]
    reading = change_line(model, before, after)
    info = (f"{what}; CLIP similarity to the prompt **{sims[0]:.3f} -> {sims[1]:.3f}** ({st.clip} CLIP)"
            + (f"; {reading}." if reading else "."))
    return row(before, after), info, out


@user_errors
def use_text(model: str, result):
    return use_result(model, result, "Text")


USES = {"global": {"strength", "channels", "beta", "whitened", "neutral"},
        "optimize": {"steps", "neutral"},
        "mapper": {"strength", "steps"}}


def method_controls(method: str, model: str = DEFAULT_MODEL):
    """Updates of ``(strength, steps, channels, beta, whitened, neutral)`` for ``method``: the method's default
    values, and the controls it ignores greyed out."""
    method = choice(method, "method", METHODS)
    strength, steps = _set_defaults(method, model)
    used = USES[method]
    out = []
    for name, update in zip(("strength", "steps", "channels", "beta", "whitened", "neutral"),
                            (strength, steps, gr.update(), gr.update(), gr.update(), gr.update())):
        update["interactive"] = name in used
        out.append(update)
    return tuple(out)


def build(ui: SharedUI) -> None:
    teaching_note(SHORT, MORE, lesson=LESSON, measured=MEASURED)
    result = session_state()
    st = settings_for(default_model())
    with gr.Row():
        prompt = gr.Textbox(value="a face with glasses", label="Target prompt")
        neutral = gr.Textbox(value="a face", label="Neutral prompt (global, optimize)")
    with gr.Row():
        method = gr.Radio(list(METHODS), value="global", label="Method")
        strength = gr.Slider(-10, 10, value=st.global_.alpha, step=0.5, label="Strength (global, mapper)")
        steps = gr.Slider(1, 300, value=st.optimise.steps, step=1, label="Steps (optimize; mapper training)",
                          interactive=False)
    with gr.Row():
        channels = gr.Slider(0, MAX_CHANNELS, value=st.global_.top_k or 0, step=1,
                             label="Channels (global; the most relevant, 0 = all above beta)")
        beta = gr.Slider(0.0, 0.6, value=st.global_.beta, step=0.01, label="Disentanglement threshold beta (global)")
        whitened = gr.Checkbox(value=st.global_.whiten is not None, label="Whitened relevance (global)")
    with gr.Row():
        button = gr.Button("Edit with text", variant="primary", elem_id="text-button")
        stop_button = gr.Button("Stop", variant="stop")
    stop_info = gr.Markdown(label="stop message")
    output = gr.Image(label="Before | after", type="pil", elem_id="text-output")
    info = gr.Markdown(label="result", elem_id="text-info")
    use = gr.Button("Use this result", elem_id="text-use")
    # its own queue: a mapper's first training never waits for someone's inversion (and the reverse)
    button.click(text_edit, [ui.model, prompt, neutral, method, strength, steps, beta, channels, whitened, ui.latent],
                 [output, info, result], api_name="text_edit", concurrency_limit=1, concurrency_id="text")
    stop_button.click(request_stop, None, stop_info, api_name="text_stop", queue=False)
    controls = [strength, steps, channels, beta, whitened, neutral]
    method.change(method_controls, [method, ui.model], controls, api_visibility="private", queue=False)
    ui.loaded.change(model_defaults, [ui.model, method], [strength, steps, channels, beta, whitened],
                     api_visibility="private", queue=False)
    use.click(use_text, [ui.model, result], ui.use_outputs, api_name="text_use")
