"""Invert tab: put a photo into the generator's latent space (optimisation, encoder, ReStyle or PTI)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from pathlib import Path

import gradio as gr

from stylekit import hub, settings
from stylekit.errors import ImageInputError, InvalidArgumentError, ModelNotFoundError

from . import models, pti_state
from .common import (OPTIMISE_S, PhotoInput, SharedUI, cached_fit, cancellable, choice, get_generator, gpu_task,
                     image_path, integer, request_stop, row, session_state, start_cancellable, teaching_note,
                     use_result, user_errors)
from .models import default_model

SHORT = """**Inversion** finds the latent code whose image matches your photo, so that any edit can then be applied
to *your* picture. Pick an example, press *Invert*; PSNR says how close the reconstruction is (30 dB looks identical)."""

MORE = """**optimize** (Image2StyleGAN, Abdal et al. 2019) runs gradient descent on the code against a pixel +
perceptual loss: slow, accurate, works in **W** (one vector, most editable) or **W+** (one per layer, closer
reconstruction). **encoder** (e4e, Tov et al. 2021) predicts W+ in one forward pass; **restyle** (Alaluf et al.
2021) runs that encoder a few times, each pass correcting the last one's error; **pti** (Roich et al. 2022) finds
a W pivot, then fine-tunes the generator around it: near-perfect reconstruction that stays editable. *Steps* are
optimisation steps (restyle: passes; pti: pivot and tuning steps each).

Photos for face models (FFHQ, MetFaces) are **aligned** first, as FFHQ was built: dlib finds 68 landmarks and
the face is cropped, rotated and scaled so the eyes and mouth land where the model expects them (the *aligned
crop* shows it). Without a face the photo is used centre-cropped, and the result says so. The perceptual loss
of optimize / pti is LPIPS-VGG when its VGG16 weights are here; otherwise the result names the fallback."""
MEASURED = ("on report-seed renders, with 95% intervals (`python -m stylekit.bench claims`): e4e reaches 25.38 dB in "
            "one pass and ReStyle adds 4.19 dB [3.94, 4.42] in three (200 renders); W+ optimisation beats W by 2.04 dB "
            "[0.48, 3.95] (10 renders) and PTI beats W+ by 3.21 dB [2.35, 4.02] (6 renders), while the noise stage adds "
            "nothing: this generator learned almost no noise. pSp, e4e without its delta penalty, reconstructs 0.65 dB "
            "better, and e4e's inversions edit a little better in return (judged success 0.50 against 0.47, "
            "+0.03 [+0.00, +0.06]). In lesson 2's two renders W+ codes need 0.5x the glasses edit strength of W "
            "codes (1.7x on the 312-kimg generator): the editability half of the trade-off depends on the generator.")
LESSON = "02_inversion.py"

METHODS = ("optimize", "encoder", "restyle", "pti")
SPACES = ("w", "w+")
MAX_STEPS = {"optimize": 1000, "restyle": 20, "pti": 500}
EXAMPLES = Path(__file__).resolve().parent / "examples"
log = logging.getLogger("stylekit.gallery")
ENCODERS = {"encoder": "e4e-toyfaces", "restyle": "restyle-toyfaces"}  # toyfaces' (its registry companions)


CARTOON_NOTE = ("**toyfaces can only rebuild cartoon faces** like the examples: it has never seen a photo, so a "
                "photo comes back as a blurred toy face whatever the method. Pick an FFHQ model for photos.")
ALIGN_LABEL = "Align the face (dlib 68 landmarks, FFHQ crop)"


def is_cartoon(model: str) -> bool:
    """True for the toyfaces world (its generator only draws cartoon faces, framed by its own renderer)."""
    from stylekit import registry

    return isinstance(model, str) and (model == "toyfaces" or registry.companion(model, "predictor") == "toyfaces")


def is_face_model(model: str) -> bool:
    """True for photo face models: their registry entry names the ``landmarks`` companion (FFHQ, MetFaces), i.e.
    they were trained on FFHQ-aligned faces, so uploads are aligned the same way."""
    from stylekit import registry

    return isinstance(model, str) and registry.companion(model, "landmarks") is not None


# ----------------------------------------------------------------------------------------------
# alignment of uploads

_ALIGNED: OrderedDict = OrderedDict()  # (path, mtime, size) -> (PIL image or None, note)
_ALIGN_LOCK = threading.Lock()
MAX_ALIGNED = 8
ALIGN_SIZE = 1024  # the crop is made at FFHQ's size (as FFHQ's smaller versions were) and resized to the model's


def prepare_photo(model: str, path: str, align: bool):
    """``(image to invert, note, aligned)``: the FFHQ-aligned crop (PIL, :data:`ALIGN_SIZE` square; the inversion
    resizes it to the model's resolution) when ``model`` is a face model and ``align`` is on and dlib finds a face;
    else the photo itself (the inversion centre-crops it) with a note saying why. A photo that cannot be read
    raises stylekit's image error."""
    from stylekit.images import open_image
    from stylekit.invert import align as face_align

    if is_cartoon(model):
        return path, "No alignment: toyfaces uses its own renderer's framing. " + CARTOON_NOTE, False
    if not is_face_model(model):
        return path, ("No alignment: it is for face models (FFHQ, MetFaces) and this model is not registered as one; "
                      "the photo is centre-cropped."), False
    if not align:
        return path, ("Alignment is off: the photo is centre-cropped as it is. FFHQ models expect an aligned face "
                      "(eyes level, face centred), so turn it on for a photo."), False
    stat = Path(path).stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    with _ALIGN_LOCK:
        if key in _ALIGNED:
            _ALIGNED.move_to_end(key)
            image, note = _ALIGNED[key]
            return (image if image is not None else path), note, image is not None
        photo = open_image(path)  # a corrupt or huge file fails here with its own message
        try:
            image = face_align.align_face(photo, size=ALIGN_SIZE)
            note = "**Aligned:** dlib found a face; it was cropped and rotated the FFHQ way (the crop is shown)."
        except ImageInputError:  # no face, or degenerate landmarks
            image, note = None, ("**No face found:** dlib found no clearly visible, roughly frontal face in this photo. "
                                 "It is used **unaligned, centre-cropped**: expect a poor reconstruction, since FFHQ "
                                 "models only know aligned faces.")
        except ModelNotFoundError as exc:
            image, note = None, (f"**Alignment is not available here** ({exc}) The photo is used unaligned, "
                                 "centre-cropped.")
        _ALIGNED[key] = (image, note)
        while len(_ALIGNED) > MAX_ALIGNED:
            _ALIGNED.popitem(last=False)
    return (image if image is not None else path), note, image is not None


@user_errors
def align_preview(model: str, image, align=True):
    """Returns ``(the crop the inversion will use, a note)``: the aligned face, or the centre-cropped photo and
    why it was not aligned (no face found, alignment off, not a face model)."""
    from stylekit.images import center_crop_square, open_image

    if image is None or (isinstance(image, str) and not image.strip()):
        return None, ""
    picture, note, aligned = prepare_photo(model, image_path(image), bool(align))
    crop = picture if aligned else center_crop_square(open_image(picture))
    return crop.resize((256, 256)), note


def align_controls(model: str):
    """The align box: on and usable for face models; greyed out (and not applied) for the others."""
    face = is_face_model(model)
    return gr.update(value=face, interactive=face)


# ----------------------------------------------------------------------------------------------
# perceptual loss and encoders


def perceptual_for(model: str, device, *, fetch: bool = False) -> tuple[str, str]:
    """``(perceptual kind, note)`` for an optimisation on ``model``: toyfaces keeps the library's ``auto``; any other
    model gets LPIPS-VGG when its VGG16 weights are here (with ``fetch``, the model's registered ``perceptual``
    companion is first downloaded into the Hub cache when missing), else a fixed random CNN, with a note saying so."""
    from stylekit import registry
    from stylekit.errors import StylekitError
    from stylekit.invert.losses import build_perceptual, find_vgg16_weights

    if is_cartoon(model):
        return "auto", ""
    companion = registry.companion(model, "perceptual")
    if fetch and companion and find_vgg16_weights() is None:
        try:
            registry.artifact_path(companion, "perceptual")  # reports to hub.report_downloads' callback
        except StylekitError as exc:
            log.warning("could not fetch %s for LPIPS: %s", companion, exc)
    try:
        build_perceptual("lpips-vgg", device=device)
    except InvalidArgumentError as exc:
        return "random-cnn", (f"**LPIPS-VGG is not available, so the perceptual loss falls back to a fixed random CNN** "
                              f"(generic features, weaker than LPIPS: expect a blurrier result). Why: {exc} Provide "
                              "torchvision's VGG16 weights (STYLEKIT_VGG16, or vgg16-397923af.pth in torch hub's "
                              "checkpoints) for LPIPS.")
    return "lpips-vgg", ""


def _encoder(name: str, device):
    """The encoder ``name`` on ``device`` (compute precision auto), loaded once per process."""
    from stylekit.invert.encoder import load_encoder

    return cached_fit(("encoder", name, str(device)), lambda: load_encoder(name, device=device, precision=settings.precision()))


def missing_encoder(model: str, method: str) -> str:
    """Why ``method`` ('encoder' or 'restyle') cannot run on ``model``, and what to use instead."""
    encoders = encoders_for(model)
    if method == "restyle" and "encoder" in encoders:
        return (f"no ReStyle encoder is registered for {model!r}: ReStyle's network reads the photo and the current "
                f"reconstruction (6 channels), and {encoders['encoder']!r} is a one-pass e4e encoder (3 channels), so "
                "it cannot iterate. Use method 'encoder' (one e4e pass), 'optimize' or 'pti'.")
    return f"no {method} encoder is registered for {model!r}; use method 'optimize' or 'pti'."


def encoders_for(model: str) -> dict[str, str]:
    """method -> the encoder registered with ``model`` (its ``encoder`` / ``restyle`` companions); may be empty."""
    from stylekit import registry

    if not isinstance(model, str):
        return {}
    found = {"encoder": registry.companion(model, "encoder"), "restyle": registry.companion(model, "restyle")}
    return {method: name for method, name in found.items() if name}


def _encoder_installed(name: str) -> bool:
    from stylekit import registry

    artifact = registry.resolve(name, "encoder")
    return not artifact.shipped or registry.package_path(artifact.package_file, artifact.package).is_file()


def _encoder_cached(name: str) -> bool:
    from stylekit import registry
    from stylekit.errors import StylekitError

    try:
        registry.artifact_path(name, "encoder", local_files_only=True)
    except StylekitError:
        return False
    return True


def methods_status(model: str) -> str:
    """A line saying which inversion methods this model can use right now (encoders may be missing), plus what
    toyfaces can and cannot rebuild."""
    encoders = encoders_for(model)
    cartoon = f" {CARTOON_NOTE}" if is_cartoon(model) else ""
    if not encoders:
        return ("**Methods for this model:** optimize and pti. No encoder is registered for it, so "
                f"'encoder' and 'restyle' are not available.{cartoon}")
    missing = [f"'{m}' ({n})" for m, n in encoders.items() if not _encoder_installed(n)]
    if missing:
        return (f"**Encoder not available:** {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not "
                f"installed yet (not trained, or this copy was installed without it). Use **optimize** or **pti**."
                f"{cartoon}")
    if "restyle" not in encoders:
        first = "" if _encoder_cached(encoders["encoder"]) else " (fetched from the Hub on first use)"
        return (f"**Methods for this model:** optimize, pti and encoder ({encoders['encoder']}{first}). **restyle is "
                f"not available:** {missing_encoder(model, 'restyle')}")
    return f"**Methods for this model:** all four (optimize, encoder, restyle, pti).{cartoon}"


STREAM_EVERY_S = 0.5  # how often the loss plot is refreshed while an inversion runs


def _run_streaming(run, flag, progress, what: str):
    """Run ``run(callback)`` in a worker thread; yield the loss rows seen so far while it runs.

    Yields ``(rows, desc)`` at most every :data:`STREAM_EVERY_S` seconds (``rows``: one dict per
    step with ``step``, ``loss``, ``stage``) and finally ``(rows, result)`` with ``result`` the
    return value of ``run``; an exception of ``run`` (a stylekit error, or Cancelled after Stop) is
    re-raised here. ``gr.Progress`` is driven from this (the event's) thread.
    """
    events: queue.Queue = queue.Queue()
    callback = cancellable(flag, what, lambda *event: events.put(event))
    box: dict = {}

    def work() -> None:
        try:
            box["result"] = run(callback)
        except BaseException as exc:  # handed to the event thread below
            box["error"] = exc
        finally:
            events.put(None)

    worker = threading.Thread(target=work, name="stylekit-invert", daemon=True)
    worker.start()
    rows: list[dict] = []
    last = time.monotonic()
    finished = False
    try:
        while True:
            event = events.get()
            if event is None:
                finished = True
                break
            step, total, desc, loss, message = event
            progress((step, total), desc=desc)
            if loss is not None:
                rows.append({"step": int(step), "loss": float(loss), "stage": message or "loss"})
            if time.monotonic() - last >= STREAM_EVERY_S:
                last = time.monotonic()
                yield rows, desc
    finally:
        if not finished:  # the event was closed (client gone): stop the work at its next step
            flag.set()
    worker.join()
    if "error" in box:
        raise box["error"]
    yield rows, box["result"]


def _start_psnr(G, target) -> float:
    """PSNR of the average face (w_avg, where the optimisation starts) against the target."""
    import torch

    from stylekit.invert.result import psnr

    with torch.no_grad():
        ws = G.w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1)
        start = G.synthesis(ws, noise_mode="const")
    return psnr(start, target.to(start.device))


@gpu_task(OPTIMISE_S)
@user_errors
def invert(model: str, image, method: str, space: str, steps, align=True, request: gr.Request = None,
           progress=gr.Progress()):
    """Streams ``(original | reconstruction image, result text, loss table, result latent)``.

    ``align`` (default on): FFHQ-align a face model's photo first (dlib); when no face is found the photo is
    used unaligned, centre-cropped, and the text says so. The "original" panel is the crop that was inverted.
    While an optimisation runs, the loss table (columns ``step``, ``loss``, ``stage``, one row per
    step so far) and a progress line are streamed about twice a second; the last output has the
    reconstruction, its PSNR and the full table (the result's own loss history). A PTI result's latent is a
    :class:`demos.pti_state.TunedLatent` (the code and a float16 weight delta, not a generator).
    """
    import pandas as pd

    import stylekit

    path = image_path(image)
    method = choice(method, "method", METHODS)
    space = choice(space, "space", SPACES)
    G = get_generator(model)
    options = {}
    if method == "encoder":
        n_steps = None
    else:
        n_steps = integer(steps, "steps" if method != "restyle" else "ReStyle passes", 1, MAX_STEPS[method])
    encoder_name = None
    if method in ENCODERS:
        if space != "w+":
            raise InvalidArgumentError(f"'{method}' predicts W+ codes; choose space w+ (or method 'optimize' for W).")
        encoders = encoders_for(model)
        if method not in encoders:
            raise InvalidArgumentError(missing_encoder(model, method))
        encoder_name = encoders[method]
        options.update(precision="auto")  # as the generator: interactive, so auto
    notes: list[str] = []
    if method == "pti":
        options.update(pivot_steps=n_steps, pivot_space=space)
    picture, align_note, _ = prepare_photo(model, path, bool(align))
    flag = start_cancellable(request)
    progress((0, 1), desc=f"Inversion ({method}): starting")

    def run(callback):
        def downloads(done, total, message=""):  # an encoder fetched from the Hub, in MB
            callback(done // 1_000_000, max(total // 1_000_000, 1), f"{message} (MB)")

        with hub.report_downloads(downloads):  # run() works in a thread of its own, so the report is set there
            if method in ("optimize", "pti"):  # VGG16 for LPIPS may be fetched here, on first use
                kind, note = perceptual_for(model, G.w_avg.device, fetch=not models.hub_offline())
                options.update(perceptual=kind)
                notes.extend([note] if note else [])
            if encoder_name is not None:
                options["encoder"] = _encoder(encoder_name, G.w_avg.device)
            return stylekit.invert.invert(G, picture, method=method, space=space, steps=n_steps, progress=callback,
                                          **options)

    columns = ["step", "loss", "stage"]
    result = None
    for rows, item in _run_streaming(run, flag, progress, f"Inversion ({method})"):
        if isinstance(item, str):
            yield gr.skip(), f"*{item}*", pd.DataFrame(rows, columns=columns), gr.skip()
        else:
            result = item
    history = pd.DataFrame([{"step": int(h["step"]), "loss": float(h["loss"]), "stage": str(h.get("stage", method))}
                            for h in result.loss_history], columns=columns)
    latent, extra = result.latent, ""
    if method == "pti":
        latent = pti_state.keep(model, G, result)
        extra = (f", generator tuned: kept as a {latent.weights.nbytes / 1e6:.0f} MB float16 delta for "
                 f"{pti_state.DELTA_TTL_S / 60:.0f} min after its last use, {pti_state.MAX_DELTAS} per server")
    elif method in ENCODERS:
        extra = f", encoder {encoder_name}"
    info = (f"**PSNR {_start_psnr(G, result.target):.2f} -> {result.psnr():.2f} dB** (the average face -> the "
            f"reconstruction; {method}, {space.upper()}, {len(result.loss_history)} steps, {result.seconds:.1f} s, "
            f"perceptual loss: {result.perceptual}{extra}).")
    info = "\n\n".join([info, align_note, *notes])
    yield row(result.target, result.image), info, history, latent


@user_errors
def use_inversion(model: str, result):
    return use_result(model, result, "Invert")


def stop(request: gr.Request = None) -> str:
    """Returns a short message; the running inversion of this session stops after its current step."""
    return request_stop(request)


def build(ui: SharedUI) -> None:
    teaching_note(SHORT, MORE, lesson=LESSON, measured=MEASURED)
    result = session_state()
    status = gr.Markdown(methods_status(default_model()), label="methods", elem_id="invert-status")
    face = is_face_model(default_model())
    with gr.Row():
        with gr.Column():
            image = PhotoInput(type="filepath", label="Photo (upload, webcam or an example)", height=288,
                               sources=["upload", "webcam", "clipboard"], elem_id="invert-input")
            gr.Examples([[str(p)] for p in sorted(EXAMPLES.glob("*.png"))], inputs=[image], label="Examples")
        with gr.Column():
            align = gr.Checkbox(value=face, interactive=face, label=ALIGN_LABEL, elem_id="invert-align")
            aligned = gr.Image(label="Aligned crop (what is inverted)", type="pil", height=160, interactive=False,
                               elem_id="invert-aligned")
            align_note = gr.Markdown(label="alignment", elem_id="invert-align-note")
        with gr.Column():
            method = gr.Radio(list(METHODS), value="optimize", label="Method")
            space = gr.Radio(list(SPACES), value="w+", label="Space (encoders: w+)")
            steps = gr.Slider(1, 1000, value=100, step=1, label="Steps (restyle: passes, at most 20)", elem_id="invert-steps")
            with gr.Row():
                button = gr.Button("Invert", variant="primary", elem_id="invert-button")
                stop_button = gr.Button("Stop", variant="stop", elem_id="invert-stop")
            stop_info = gr.Markdown(label="stop message")
    comparison = gr.Image(label="Original | reconstruction", type="pil", elem_id="invert-output")
    psnr = gr.Markdown(label="result", elem_id="invert-psnr")
    loss = gr.LinePlot(x="step", y="loss", color="stage", title="Loss per step", label="loss per step",
                       elem_id="invert-loss")
    use = gr.Button("Use this result", elem_id="invert-use")
    button.click(invert, [ui.model, image, method, space, steps, align], [comparison, psnr, loss, result],
                 api_name="invert", concurrency_limit=1, concurrency_id="optimisation")
    gr.on([image.change, align.input], align_preview, [ui.model, image, align], [aligned, align_note],
          api_name="invert_align")
    stop_button.click(stop, None, stop_info, api_name="invert_stop", queue=False)
    use.click(use_inversion, [ui.model, result], ui.use_outputs, api_name="invert_use")
    ui.loaded.change(methods_status, ui.model, status, api_name="invert_methods")
    ui.loaded.change(align_controls, ui.model, align, api_visibility="private", queue=False).then(
        align_preview, [ui.model, image, align], [aligned, align_note], api_visibility="private")
