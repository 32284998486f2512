"""Text tab (StyleCLIP): edit the current latent toward a prompt, by global directions or latent optimisation."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import gradio as gr
import torch

from stylekit import hub, settings
from stylekit.errors import InvalidArgumentError
from stylekit.text.presets import (GLOBAL_DIRECTIONS, MAPPER, OPTIMIZE, GlobalDirectionsPreset, MapperPreset,
                                   OptimizePreset)

from . import jobs
from .common import (DEFAULT_MODEL, OPTIMISE_S, SharedUI, cached_fit, choice, current_latent,
                     download_progress, get_generator, gpu_task, integer, is_cached, number, progress_callback, render,
                     request_stop, row, session_key, session_state, start_cancellable, teaching_note, use_result,
                     user_errors)
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
names (toyfaces: the "toyfaces" presets and stylekit's small toyfaces CLIP; the FFHQ models: CLIP ViT-B-32).

The relevance table (global) and the mapper are computed once, in the background: *Compute in background*
starts them (one at a time for the whole server, at batch sizes chosen from the memory available) and the
line below it says how far they are; a table shipped or computed before is used at once. On a real model on
a CPU a relevance table of 100 images takes hours, so start it with fewer images to try."""
MEASURED = ("on the five attribute prompts, judged by the attribute predictor (`python -m stylekit.bench text`): "
            "global directions succeed on 0.42-1.00 of the faces (beard the least), latent optimisation on "
            "0.78-1.00, the mapper on 0.84-1.00; the held-out judge, which also asks that nothing else moves, "
            "passes 0.41 of the global edits, 0.04 of the optimised ones and 0.07 of the mapper's.")
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

    return cached_fit(("clip", name), lambda: load_clip(name, device=device(), precision=settings.precision()))


RELEVANCE_IMAGES = 100  # StyleCLIP's sample for a relevance table (the Compute button's default)
RELEVANCE_RANK = 32  # probes per image of the 'lowrank' method (stylekit.text.LowRankOptions' default)
MAX_RELEVANCE_IMAGES = 1000


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_") or "x"


def _find_table(G, clip):
    """The relevance table of ``(G, clip)`` already on this machine (the cache :func:`stylekit.text.relevance_for`
    reads, or a registered one such as toyfaces'), or None; never computes."""
    from stylekit.text.cache import cache_path, registered_table
    from stylekit.text.relevance_table import load_relevance

    path = cache_path(G, clip)
    if path.is_file():
        return load_relevance(path, G=G, clip=clip)
    return registered_table(G, clip)


def relevance(model: str, G, clip_name: str):
    """The relevance table of ``model`` with its CLIP when one exists (kept in memory after the first read),
    else None: computing one is the background job :func:`start_relevance`, never part of a callback."""
    key = (model, "clip-relevance", clip_name)
    if is_cached(key):
        return cached_fit(key, None)
    table = _find_table(G, clip_model(clip_name))
    return None if table is None else cached_fit(key, lambda: table)


def relevance_plan(G) -> tuple[int, int]:
    """``(images per pass, cotangents per backward)`` of a relevance job on ``G`` (:mod:`demos.jobs`' rule):
    images from half the job's budget (at most 16), cotangents from the rest (at most 32). FFHQ-1024 with the
    3 GB budget: 1 image and 8 cotangents (the library's defaults, 16 and 32, passed 23 GB)."""
    budget = jobs.job_budget(device())
    r = G.img_resolution
    images = jobs.batch_for("grad_image", r, cap=16, budget=budget // 2)
    left = budget - images * jobs.item_bytes("grad_image", r)
    return images, max(1, jobs.batch_for("cotangent", r, cap=32, budget=left) // images)


def _relevance_key(model: str, clip_name: str) -> tuple:
    return ("relevance", model, clip_name)


def _parts_done(parts) -> int:
    """Images whose sums the library's relevance job has written to ``parts`` (``images_<start>-<stop>`` files)."""
    total = 0
    for p in parts.glob("images_*.safetensors") if parts.is_dir() else ():
        start, _, stop = p.stem[len("images_"):].partition("-")
        total += int(stop) - int(start)
    return total


def start_relevance(model: str, n_images: int = RELEVANCE_IMAGES, rank: int = RELEVANCE_RANK, *, session: str = ""):
    """Start (or find) the background job that computes ``model``'s relevance table with its CLIP.

    It is :func:`stylekit.jobs.relevance_sharded` on one rank: the partial sums of each chunk of images are
    written under ``$STYLEKIT_CACHE/gallery/relevance`` (a restarted job skips the chunks done), at
    :func:`relevance_plan`'s sizes; the table is then copied where :func:`relevance` (and
    :func:`stylekit.text.relevance_for`) look. Returns the :class:`demos.jobs.Job`."""
    import shutil

    from stylekit.jobs import relevance_sharded
    from stylekit.jobs.shard import Shard
    from stylekit.text import LowRankOptions, cache_path
    from stylekit.text.keys import generator_fingerprint

    n_images = integer(n_images, "images", 1, MAX_RELEVANCE_IMAGES)
    rank = integer(rank, "probes per image", 1, 512)
    G = get_generator(model)
    st = settings_for(model)
    clip = clip_model(st.clip)
    images, chunk = relevance_plan(G)
    method = LowRankOptions(rank=rank, grad_chunk=chunk)
    final = cache_path(G, clip)
    work = jobs.cache_dir() / "relevance" / (f"{generator_fingerprint(G)[:20]}-{_slug(st.clip)}-n{n_images}-r{rank}"
                                             ".safetensors")
    parts = work.with_name(work.name + ".parts")

    def compute(report):
        work.parent.mkdir(parents=True, exist_ok=True)
        def tick():
            n = _parts_done(parts)
            report(n, n_images, f"{n} of {n_images} images; {images} per pass, {chunk} cotangents per backward")

        with jobs.reporting_every(tick, name="stylekit-relevance-progress"):
            summary = relevance_sharded(G, clip, work, method=method, n_images=n_images, batch_size=images,
                                        chunk_images=images, device=str(G.device), shard=Shard(0, 1),
                                        show_progress=False)
        if summary.get("table") is None:
            raise RuntimeError(f"the relevance job ended without a table ({summary.get('manifest')})")
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{final.name}.tmp")
        shutil.copyfile(summary["table"], tmp)
        tmp.replace(final)
        return str(final)

    label = f"the relevance table of {model} with CLIP {st.clip} ({n_images} images, {rank} probes each)"
    return jobs.start(_relevance_key(model, st.clip), label, compute, session=session)


def _no_table(model: str, st, session: str) -> str:
    job = jobs.get(_relevance_key(model, st.clip))
    if job is not None and job.state != "failed":
        return (f"Global directions need the relevance table of {model} with CLIP {st.clip}: {job.describe(session)} "
                "Press *Edit with text* again when it is done; *optimize* works meanwhile.")
    failed = f" (the last try: {job.describe(session)})" if job is not None else ""
    return (f"Global directions need a relevance table of {model} with CLIP {st.clip}, and none is on this machine "
            f"yet{failed}. Press **Compute in background** to start computing it: once per model and CLIP, in the "
            "background (other methods and tabs keep working), resuming where it stopped if the server restarts.")


_MAPPERS: OrderedDict = OrderedDict()  # mapper file -> loaded mapper, most recent last
MAX_MAPPERS = 16
_MAPPER_LOCK = threading.Lock()


def mapper_batch(G, st) -> int:
    """Codes per mapper training step: the preset's (8), or fewer when memory says so (:mod:`demos.jobs`; FFHQ-1024
    with the 3 GB budget: 2)."""
    return jobs.batch_for("grad_image", G.img_resolution, cap=st.mapping.batch_size, device=device())


def _mapper_file(G, st, prompt: str, steps: int):
    import hashlib

    from stylekit.text.keys import generator_fingerprint

    digest = hashlib.sha1(prompt.encode()).hexdigest()[:12]
    return jobs.cache_dir() / "mappers" / f"{generator_fingerprint(G)[:20]}-{_slug(st.clip)}-{digest}-s{steps}.safetensors"


def _mapper_key(model: str, st, prompt: str, steps: int) -> tuple:
    return ("mapper", model, st.clip, prompt, steps)


def trained_mapper(G, path):
    """The mapper saved at ``path`` (loaded once; at most :data:`MAX_MAPPERS` kept), or None when not trained yet."""
    from stylekit.text import load_mapper

    with _MAPPER_LOCK:
        if path in _MAPPERS:
            _MAPPERS.move_to_end(path)
            return _MAPPERS[path]
    if not path.is_file():
        return None
    mapper = load_mapper(path, G=G, device=G.device)
    with _MAPPER_LOCK:
        _MAPPERS[path] = mapper
        while len(_MAPPERS) > MAX_MAPPERS:
            _MAPPERS.popitem(last=False)
    return mapper


def start_mapper(model: str, prompt: str, steps: int, *, session: str = ""):
    """Start (or find) the background job that trains the mapper of ``prompt`` for ``model`` (``steps`` steps of
    :func:`mapper_batch` codes) and saves it under ``$STYLEKIT_CACHE/gallery/mappers``. Returns the Job."""
    from stylekit.text import save_mapper, train_mapper

    prompt = _prompt(prompt, "target")
    steps = integer(steps, "steps", 1, 300)
    G = get_generator(model)
    st = settings_for(model)
    clip = clip_model(st.clip)
    batch = mapper_batch(G, st)
    path = _mapper_file(G, st, prompt, steps)

    def compute(report):
        if path.is_file():
            return str(path)
        mapper, _ = train_mapper(G, prompt, clip=clip, preset=st.mapping, steps=steps, batch_size=batch,
                                 progress=report)
        return str(save_mapper(mapper, path))

    label = f"the mapper for '{prompt}' ({steps} steps of {batch} codes)"
    return jobs.start(_mapper_key(model, st, prompt, steps), label, compute, session=session)


def _global(model, G, base, prompt, neutral, st, clip, strength, beta, channels, whitened, session, request=None,
            progress=None):
    from stylekit.text import global_direction, global_edit

    alpha = number(strength, "strength", -10, 10)
    beta = number(beta, "disentanglement threshold", 0, 1)
    top_k = integer(channels, "channels", 0, MAX_CHANNELS) or None
    if not isinstance(whitened, bool):
        raise InvalidArgumentError(f"whitened relevance is a yes/no choice, got {whitened!r}.")
    table = relevance(model, G, st.clip)
    if table is None and jobs.follows_in_call(G):  # a small model: compute it now (once, under its job) and wait
        job = jobs.follow(start_relevance(model, session=session), progress, session, start_cancellable(request))
        table = relevance(model, G, st.clip) if job.state == "done" else None
    if table is None:
        return None, _no_table(model, st, session)
    whiten = (st.global_.whiten or WHITEN) if whitened else None
    direction = global_direction(table, prompt, neutral, clip=clip, preset=st.global_, beta=beta, top_k=top_k,
                                 whiten=whiten)
    out = global_edit(G, base, table, prompt, neutral, clip=clip, preset=st.global_, alpha=alpha, direction=direction)
    images = table.meta.get("n_images")
    return out, (f"Global direction '{neutral}' -> '{prompt}' at strength {alpha:+g}: {direction.n_channels} channels "
                 f"({'whitened' if whitened else 'plain'} relevance, threshold {beta:g}"
                 + (f"; table of {images} images" if images else "") + ")")


def _mapped(model, G, base, prompt, st, strength, steps, session, request=None, progress=None):
    from stylekit.text import apply_mapper

    alpha = number(strength, "strength", -10, 10)
    n = integer(steps, "steps", 1, 300)
    mapper = trained_mapper(G, _mapper_file(G, st, prompt, n))
    if mapper is None and jobs.follows_in_call(G):  # a small model: train it now (once, under its job) and wait
        job = jobs.follow(start_mapper(model, prompt, n, session=session), progress, session, start_cancellable(request))
        mapper = trained_mapper(G, _mapper_file(G, st, prompt, n)) if job.state == "done" else None
    if mapper is None:
        job = jobs.get(_mapper_key(model, st, prompt, n))
        if job is not None and job.state != "failed":
            return None, f"The mapper for '{prompt}' is not trained yet: {job.describe(session)}"
        return None, (f"No mapper for '{prompt}' ({n} steps) yet. Press **Compute in background** to train it (once "
                      "per prompt, in the background; then every face edits instantly).")
    out = apply_mapper(mapper, base, G=G, strength=alpha / MAPPER_UNIT)
    return out, (f"Mapper for '{prompt}' ({n} training steps) at strength {alpha:+g} "
                 f"({alpha / MAPPER_UNIT:+g}x the trained edit)")


@gpu_task(OPTIMISE_S)
@user_errors
def text_edit(model: str, prompt: str, neutral: str, method: str, strength, steps, beta, channels, whitened,
              latent, request: gr.Request = None, progress=gr.Progress()):
    """Returns ``(before | after image, text with CLIP similarity before -> after, edited latent)`` (S for
    'global', W+ otherwise). When 'global' has no relevance table yet, or 'mapper' no trained mapper, the background
    job of :func:`text_prepare` computes it: on a small model (toyfaces) the call starts it and follows it with its
    progress bar; on a larger one the call returns at once ``(None, what to press or how far the job is, None)``."""
    from stylekit.text import optimize_latent

    prompt = _prompt(prompt, "target")
    neutral = _prompt(neutral, "neutral")
    method = choice(method, "method", METHODS)
    G = get_generator(model)
    st = settings_for(model)
    with hub.report_downloads(download_progress(progress, f"CLIP {st.clip}")):
        clip = clip_model(st.clip)
    base = current_latent(G, latent)
    session = session_key(request)
    if method == "global":
        out, what = _global(model, G, base, prompt, neutral, st, clip, strength, beta, channels, whitened, session,
                            request, progress)
    elif method == "mapper":
        out, what = _mapped(model, G, base, prompt, st, strength, steps, session, request, progress)
    else:
        n = integer(steps, "steps", 1, 300)
        flag = start_cancellable(request)
        out = optimize_latent(G, base, prompt, clip=clip, preset=st.optimise, neutral=neutral, steps=n,
                              progress=progress_callback(progress, flag, "Text optimisation")).latent
        what = f"Optimised {n} steps toward '{prompt}' (one image, {st.optimise.augmentations} jittered copies)"
    if out is None:
        return None, what, None
    before, after = render(G, base), render(G, out)
    with torch.no_grad():
        sims = [float(clip.similarity(x, prompt)[0]) for x in (before, after)]
    reading = change_line(model, before, after)
    info = (f"{what}; CLIP similarity to the prompt **{sims[0]:.3f} -> {sims[1]:.3f}** ({st.clip} CLIP)"
            + (f"; {reading}." if reading else "."))
    return row(before, after), info, out


@user_errors
def text_prepare(model: str, prompt: str, method: str, steps, images=RELEVANCE_IMAGES, rank=RELEVANCE_RANK,
                 request: gr.Request = None) -> str:
    """Start what ``method`` needs in the background and return at once with a line saying so: 'global' the
    relevance table of the model with its CLIP (``images`` codes, ``rank`` probes each), 'mapper' the mapper of
    ``prompt`` (``steps`` training steps). 'optimize' needs nothing."""
    method = choice(method, "method", METHODS)
    session = session_key(request)
    if method == "optimize":
        return "*optimize* needs nothing computed beforehand: press *Edit with text*."
    if method == "global":
        G = get_generator(model)
        st = settings_for(model)
        if relevance(model, G, st.clip) is not None:
            return f"The relevance table of {model} with CLIP {st.clip} is ready: press *Edit with text*."
        job = start_relevance(model, images, rank, session=session)
    else:
        job = start_mapper(model, prompt, steps, session=session)
    return job.describe(session)


@user_errors
def text_status(model: str, prompt: str, method: str, steps, request: gr.Request = None) -> str:
    """Where the background job of ``method`` stands (relevance table or mapper), without starting anything."""
    method = choice(method, "method", METHODS)
    session = session_key(request)
    st = settings_for(model)
    if method == "global":
        job = jobs.get(_relevance_key(model, st.clip))
    elif method == "mapper":
        job = jobs.get(_mapper_key(model, st, _prompt(prompt, "target"), integer(steps, "steps", 1, 300)))
    else:
        return "*optimize* runs in the call itself."
    return job.describe(session) if job is not None else "No background job for this method and model yet."


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
    with gr.Accordion("Background computations (relevance table for global, mapper training)", open=False):
        with gr.Row():
            images = gr.Slider(1, MAX_RELEVANCE_IMAGES, value=RELEVANCE_IMAGES, step=1,
                               label="Relevance table: images (StyleCLIP: 100)")
            rank = gr.Slider(1, 128, value=RELEVANCE_RANK, step=1, label="Relevance table: probes per image")
        with gr.Row():
            prepare = gr.Button("Compute in background", elem_id="text-prepare")
            refresh = gr.Button("Refresh progress", size="sm", elem_id="text-status")
        job_info = gr.Markdown(label="background job", elem_id="text-job-info")
    output = gr.Image(label="Before | after", type="pil", elem_id="text-output")
    info = gr.Markdown(label="result", elem_id="text-info")
    use = gr.Button("Use this result", elem_id="text-use")
    # its own queue: a mapper's first training never waits for someone's inversion (and the reverse)
    button.click(text_edit, [ui.model, prompt, neutral, method, strength, steps, beta, channels, whitened, ui.latent],
                 [output, info, result], api_name="text_edit", concurrency_limit=1, concurrency_id="text")
    prepare.click(text_prepare, [ui.model, prompt, method, steps, images, rank], job_info, api_name="text_prepare",
                  concurrency_id="text_jobs", concurrency_limit=4)
    refresh.click(text_status, [ui.model, prompt, method, steps], job_info, api_name="text_status", queue=False)
    stop_button.click(request_stop, None, stop_info, api_name="text_stop", queue=False)
    controls = [strength, steps, channels, beta, whitened, neutral]
    method.change(method_controls, [method, ui.model], controls, api_visibility="private", queue=False)
    ui.loaded.change(model_defaults, [ui.model, method], [strength, steps, channels, beta, whitened],
                     api_visibility="private", queue=False)
    use.click(use_text, [ui.model, result], ui.use_outputs, api_name="text_use")
