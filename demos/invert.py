"""Invert tab: put a photo into the generator's latent space (optimisation, encoder, ReStyle or PTI)."""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

import gradio as gr

from stylekit import hub
from stylekit.errors import InvalidArgumentError

from .common import (OPTIMISE_S, PhotoInput, SharedUI, cancellable, choice, get_generator, gpu_task, image_path,
                     integer, request_stop, row, session_state, start_cancellable, teaching_note, use_result,
                     user_errors)
from .models import default_model

SHORT = """**Inversion** finds the latent code whose image matches your photo, so that any edit can then be applied
to *your* picture. Pick an example, press *Invert*; PSNR says how close the reconstruction is (30 dB looks identical)."""

MORE = """**optimize** (Image2StyleGAN, Abdal et al. 2019) runs gradient descent on the code against a pixel +
perceptual loss: slow, accurate, works in **W** (one vector, most editable) or **W+** (one per layer, closer
reconstruction). **encoder** (e4e, Tov et al. 2021) predicts W+ in one forward pass; **restyle** (Alaluf et al.
2021) runs that encoder a few times, each pass correcting the last one's error; **pti** (Roich et al. 2022) finds
a W pivot, then fine-tunes the generator around it: near-perfect reconstruction that stays editable. *Steps* are
optimisation steps (restyle: passes; pti: pivot and tuning steps each)."""
MEASURED = ("on report-seed renders, with 95% intervals (`python -m stylekit.bench claims`): e4e reaches 23.06 dB in "
            "one pass and ReStyle adds 1.27 dB [1.15, 1.39] in three (200 renders); W+ optimisation beats W by 1.03 dB "
            "[0.88, 1.17] (10 renders) and PTI beats W+ by 2.50 dB [2.01, 3.00] (6 renders), while the noise stage adds "
            "nothing: this generator learned almost no noise. pSp, e4e without its delta penalty, reconstructs 0.78 dB "
            "better, and its inversions edit no worse (judged success 0.60 vs e4e's 0.55). W+ codes need 1.7x the "
            "glasses edit strength of W codes (lesson 2).")
LESSON = "02_inversion.py"

METHODS = ("optimize", "encoder", "restyle", "pti")
SPACES = ("w", "w+")
MAX_STEPS = {"optimize": 1000, "restyle": 20, "pti": 500}
EXAMPLES = Path(__file__).resolve().parent / "examples"
ENCODERS = {"encoder": "e4e-toyfaces", "restyle": "restyle-toyfaces"}  # toyfaces' (its registry companions)


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


def methods_status(model: str) -> str:
    """A line saying which inversion methods this model can use right now (encoders may be missing)."""
    encoders = encoders_for(model)
    if not encoders:
        return ("**Methods for this model:** optimize and pti. No encoder is registered for it, so "
                "'encoder' and 'restyle' are not available.")
    missing = [f"'{m}' ({n})" for m, n in encoders.items() if not _encoder_installed(n)]
    missing += [f"'{m}'" for m in ENCODERS if m not in encoders]
    if not missing:
        return "**Methods for this model:** all four (optimize, encoder, restyle, pti)."
    return (f"**Encoder not available:** {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed "
            "yet (not trained, or this copy was installed without it). Use **optimize** or **pti**.")


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
def invert(model: str, image, method: str, space: str, steps, request: gr.Request = None,
           progress=gr.Progress()):
    """Streams ``(original | reconstruction image, PSNR text, loss table, result latent)``.

    While an optimisation runs, the loss table (columns ``step``, ``loss``, ``stage``, one row per
    step so far) and a progress line are streamed about twice a second; the last output has the
    reconstruction, its PSNR and the full table (the result's own loss history).
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
    if method in ENCODERS:
        if space != "w+":
            raise InvalidArgumentError(f"'{method}' predicts W+ codes; choose space w+ (or method 'optimize' for W).")
        encoders = encoders_for(model)
        if method not in encoders:
            raise InvalidArgumentError(f"no {method} encoder is registered for {model!r}; use method 'optimize' or "
                                       "'pti'.")
        options.update(encoder=encoders[method], precision="auto")  # as the generator: interactive, so auto
    if method == "pti":
        options.update(pivot_steps=n_steps, pivot_space=space)
    flag = start_cancellable(request)
    progress((0, 1), desc=f"Inversion ({method}): starting")

    def run(callback):
        def downloads(done, total, message=""):  # an encoder fetched from the Hub, in MB
            callback(done // 1_000_000, max(total // 1_000_000, 1), f"{message} (MB)")

        with hub.report_downloads(downloads):  # run() works in a thread of its own, so the report is set there
            return stylekit.invert.invert(G, path, method=method, space=space, steps=n_steps, progress=callback,
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
    extra = f", generator tuned ({result.generator_delta_bytes / 1e6:.1f} MB delta)" if method == "pti" else ""
    info = (f"**PSNR {_start_psnr(G, result.target):.2f} -> {result.psnr():.2f} dB** (the average face -> the "
            f"reconstruction; {method}, {space.upper()}, {len(result.loss_history)} steps, {result.seconds:.1f} s, "
            f"perceptual loss: {result.perceptual}{extra}).")
    yield row(result.target, result.image), info, history, result.latent


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
    with gr.Row():
        with gr.Column():
            image = PhotoInput(type="filepath", label="Photo (upload, webcam or an example)", height=288,
                               sources=["upload", "webcam", "clipboard"], elem_id="invert-input")
            gr.Examples([[str(p)] for p in sorted(EXAMPLES.glob("*.png"))], inputs=[image], label="Examples")
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
    button.click(invert, [ui.model, image, method, space, steps], [comparison, psnr, loss, result],
                         api_name="invert", concurrency_limit=1, concurrency_id="optimisation")
    stop_button.click(stop, None, stop_info, api_name="invert_stop", queue=False)
    use.click(use_inversion, [ui.model, result], ui.use_outputs, api_name="invert_use")
    ui.loaded.change(methods_status, ui.model, status, api_name="invert_methods")
