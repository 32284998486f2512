"""Text tab (StyleCLIP): edit the current latent toward a prompt, by global directions or latent optimisation."""

from __future__ import annotations

import threading
from collections import OrderedDict

import gradio as gr

from stylekit.errors import InvalidArgumentError
from stylekit.text.presets import GLOBAL_DIRECTIONS, MAPPER, OPTIMIZE

from .common import (SharedUI, cached_fit, choice, current_latent, get_generator, integer, number, progress_callback,
                     render, request_stop, row, start_cancellable, teaching_note, use_result, user_errors)

NOTE = """**Text-guided editing** (StyleCLIP, Patashnik et al. 2021) uses CLIP, which embeds images and
sentences in one space, to steer the generator with words. **global** (global directions): once per
model, measure how every StyleSpace channel moves CLIP's image embedding; then the text change
*neutral -> target* picks the channels that move the image the same way, instantly, with *strength* as
the slider (negative removes the attribute); *channels* keeps only that many of the most relevant
ones and *beta* drops those below a relevance threshold, so fewer channels change fewer things.
*Whitened relevance* scores a channel by how it moves CLIP's embedding in ways other channels do not
(without it, StyleCLIP's plain cosine: many channels share a few big directions, such as overall
colour, and a prompt picks them all). **optimize** (latent optimisation): gradient descent on W+ so
that CLIP finds the image closer to the prompt and tells it from the neutral prompt, with an L2 pull
toward the start code; CLIP judges four randomly jittered copies of each step's image, so that pixel
patterns which fool it alone do not count; slower, per image, *steps* sets the effort. **mapper**
(latent mapper): train, once per prompt, a small network (coarse / medium / fine MLPs) that maps *any* code to its edited version; the first call trains it for *steps*
steps, after that the edit is instant and *strength* scales it (4, its default, = the trained edit; negative reverses).
Choosing a method sets *strength* and *steps* to that method's tuned defaults (the library's "toyfaces" presets,
the settings `bench text` measures). The offline model uses stylekit's small toyfaces CLIP."""

METHODS = ("global", "optimize", "mapper")
MAPPER_UNIT = 4.0  # the strength slider's value (the mapper's default) that applies a mapper as trained
CLIP = "toyfaces"
#: the library's presets (what bench text measures): the tab's defaults, and what its sliders override
GLOBAL, OPTIMISE, MAPPING = GLOBAL_DIRECTIONS["toyfaces"], OPTIMIZE["toyfaces"], MAPPER["toyfaces"]
WHITEN = GLOBAL.whiten  # the whitener's shrinkage when "whitened relevance" is on
MAX_CHANNELS = 500  # the channels slider's top


def method_defaults(method: str) -> dict[str, float]:
    """The strength / steps slider values a method starts from (only the sliders it uses)."""
    return {"global": {"strength": GLOBAL.alpha}, "optimize": {"steps": OPTIMISE.steps},
            "mapper": {"strength": MAPPER_UNIT, "steps": MAPPING.steps}}[method]


def _set_defaults(method: str):
    wanted = method_defaults(choice(method, "method", METHODS))
    return tuple(gr.update(value=wanted[k]) if k in wanted else gr.update() for k in ("strength", "steps"))


def _prompt(text, name: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgumentError(f"the {name} prompt is empty; describe the face you want, e.g. 'a face with glasses'.")
    return text.strip()


def relevance(model: str, G):
    from stylekit.text import relevance_for

    return cached_fit((model, "clip-relevance"), lambda: relevance_for(G, CLIP, n_images=32))


_MAPPERS: OrderedDict = OrderedDict()  # (model, prompt, steps) -> trained mapper, most recent last
MAX_MAPPERS = 16
_MAPPER_LOCK = threading.Lock()


def _mapper(model: str, prompt: str, steps: int, train):
    """The mapper for (model, prompt, steps), trained on first use; the least recently used of more than
    :data:`MAX_MAPPERS` is dropped (prompts are free text, so the cache must stay bounded)."""
    key = (model, prompt, steps)
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


@user_errors
def text_edit(model: str, prompt: str, neutral: str, method: str, strength, steps, beta, channels, whitened,
              latent, request: gr.Request = None, progress=gr.Progress()):
    """Returns ``(before | after image, text, edited latent)`` (S for 'global', W+ otherwise)."""
    from stylekit.text import apply_mapper, global_direction, global_edit, optimize_latent, train_mapper

    prompt = _prompt(prompt, "target")
    neutral = _prompt(neutral, "neutral")
    method = choice(method, "method", METHODS)
    G = get_generator(model)
    base = current_latent(G, latent)
    if method == "global":
        alpha = number(strength, "strength", -10, 10)
        progress((0, 1), desc="Channel relevance (computed once per model)")
        beta = number(beta, "disentanglement threshold", 0, 1)
        top_k = integer(channels, "channels", 0, MAX_CHANNELS) or None
        if not isinstance(whitened, bool):
            raise InvalidArgumentError(f"whitened relevance is a yes/no choice, got {whitened!r}.")
        table = relevance(model, G)
        direction = global_direction(table, prompt, neutral, clip=CLIP, preset=GLOBAL, beta=beta, top_k=top_k,
                                     whiten=WHITEN if whitened else None)
        out = global_edit(G, base, table, prompt, neutral, clip=CLIP, preset=GLOBAL, alpha=alpha, direction=direction)
        info = (f"Global direction '{neutral}' -> '{prompt}' at strength {alpha:+g}: {direction.n_channels} channels "
                f"({'whitened' if whitened else 'plain'} relevance, threshold {beta:g}).")
    elif method == "mapper":
        alpha = number(strength, "strength", -10, 10)
        n = integer(steps, "steps", 1, 300)
        flag = start_cancellable(request)
        callback = progress_callback(progress, flag, "Training the mapper (once per prompt)")
        mapper = _mapper(model, prompt, n, lambda: train_mapper(G, prompt, clip=CLIP, preset=MAPPING, steps=n,
                                                                progress=callback)[0])
        out = apply_mapper(mapper, base, G=G, strength=alpha / MAPPER_UNIT)
        info = f"Mapper for '{prompt}' ({n} training steps) at strength {alpha / MAPPER_UNIT:+g}."
    else:
        n = integer(steps, "steps", 1, 300)
        flag = start_cancellable(request)
        result = optimize_latent(G, base, prompt, clip=CLIP, preset=OPTIMISE, neutral=neutral, steps=n,
                                 progress=progress_callback(progress, flag, "Text optimisation"))
        out = result.latent
        sim = float(result.similarity[0]) if result.similarity is not None else float("nan")
        info = f"Optimised {n} steps toward '{prompt}'; CLIP similarity {sim:.3f}."
    return row(render(G, base), render(G, out)), info, out


@user_errors
def use_text(model: str, result):
    return use_result(model, result, "Text")


def build(ui: SharedUI) -> None:
    teaching_note(NOTE)
    result = gr.State(None)
    with gr.Row():
        prompt = gr.Textbox(value="a face with glasses", label="Target prompt")
        neutral = gr.Textbox(value="a face", label="Neutral prompt (global, optimize)")
    with gr.Row():
        method = gr.Radio(list(METHODS), value="global", label="Method")
        strength = gr.Slider(-10, 10, value=GLOBAL.alpha, step=0.5, label="Strength (global, mapper)")
        steps = gr.Slider(1, 300, value=OPTIMISE.steps, step=1, label="Steps (optimize; mapper training)")
    with gr.Row():
        channels = gr.Slider(0, MAX_CHANNELS, value=GLOBAL.top_k or 0, step=1,
                             label="Channels (global; the most relevant, 0 = all above beta)")
        beta = gr.Slider(0.0, 0.6, value=GLOBAL.beta, step=0.01, label="Disentanglement threshold beta (global)")
        whitened = gr.Checkbox(value=GLOBAL.whiten is not None, label="Whitened relevance (global)")
    with gr.Row():
        button = gr.Button("Edit with text", variant="primary", elem_id="text-button")
        stop_button = gr.Button("Stop", variant="stop")
    stop_info = gr.Markdown(label="stop message")
    output = gr.Image(label="Before | after", type="pil", elem_id="text-output")
    info = gr.Markdown(label="result", elem_id="text-info")
    use = gr.Button("Use this result", elem_id="text-use")
    button.click(text_edit, [ui.model, prompt, neutral, method, strength, steps, beta, channels, whitened, ui.latent],
                 [output, info, result],
                 api_name="text_edit", concurrency_limit=1, concurrency_id="optimisation")
    stop_button.click(request_stop, None, stop_info, api_name="text_stop", queue=False)
    method.change(_set_defaults, method, [strength, steps], api_visibility="private", queue=False)
    use.click(use_text, [ui.model, result], ui.use_outputs, api_name="text_use")
