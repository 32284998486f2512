"""Local edits tab: part transfer in StyleSpace (Editing in Style) and masked crossover / inpainting
by optimisation (Image2StyleGAN++), with the mask drawn in an image editor."""

from __future__ import annotations

import copy
import math
import threading

import gradio as gr
import numpy as np

from stylekit.edit.presets import PART_TRANSFER
from stylekit.errors import InvalidArgumentError

from .common import (DEFAULT_MODEL, DISPLAY_MAX, DISPLAY_SIZE, FIT_S, OPTIMISE_S, RENDER_S, SharedUI, cached_fit,
                     choice, current_latent, get_generator, gpu_task, integer, number, one_seed, progress_callback,
                     render, render_pil, request_stop, row, session_state, shrink, start_cancellable, teaching_note,
                     to_pil, use_result, user_errors)
from .outputs import GRID_TILE, save_png
from .readings import change_line

SHORT = """**Local edits.** *Part transfer* (Editing in Style, Collins et al. 2020) copies one part of a reference
face (the default: the hair of a red-haired seed) by moving only the style channels that act inside it. *Crossover / inpainting*
(Image2StyleGAN++, Abdal et al. 2020) optimises a latent against a mask you paint. *Retrieve by part* (Retrieve in
Style, Chong et al. 2021) finds the seeds closest to the current face in one part and transfers it from one."""

MORE = """Part transfer: cluster one layer's feature vectors over many samples (spherical k-means) and the clusters
turn out to be object parts, the same for every face; *Show parts* colours them and names each by the toyfaces
feature it covers. Knobs: the part, the reference seed, the blend strength. The first use finds the parts once
per model: 64 samples for small generators, 16 (one at a time) for 512-1024 px ones, which takes about a minute
on a CPU.

Masked crossover and inpainting: **crossover** takes the painted region from the canvas image and the rest from
the reference seed, and the generator blends the seam into one face; **inpainting** treats the painted region as
unknown and matches only the rest, so the generator fills the hole. *Load current image*, paint with the brush
(it is active when the canvas loads), then *Run*; *steps* trades time for quality.

Retrieve by part (Retrieve in Style, Chong et al. 2021): a face's descriptor for one part is its style vector
(minus the average face's) with each channel weighted by the share of its energy inside that part, squared;
faces are compared by cosine distance. *Retrieve by part* ranks the faces of seeds 0-499 (psi 0.7; 200 at 512 px,
100 at 1024 px) by it, and *Transfer from the retrieved face* is the part transfer above with the picked face as
the reference. Measured on toyfaces with the tab's 8 parts (`python -m stylekit.bench retrieval --n-parts 8`: 1,000
report-seed queries against 5,000 faces, scored by the attributes each latent is drawn with): of the 5 faces
closest in the hair, 0.62 [0.61, 0.64] share the query's hair colour, redness and length, against 0.30 [0.29, 0.31]
for the 5 closest whole faces in W+ and 0.08 by chance; skin 0.85 against 0.62; background 0.90 against 0.82. The
other parts' attributes still agree more often than by chance (0.63 for hair retrieval, 0.68 for the whole face,
0.47 by chance): on this small generator a part's channels are not cleanly its own."""
MEASURED = ("the hair part of seed 9 turns the hair red: predicted red hair 0.38 -> 0.99 on 16 development seeds "
            "(0.00 -> 1.00 on seed 11, the tabs' start), 6.7 of 255 per pixel (edit/presets.py PART_TRANSFER).")
LESSON = "03_editing.py"

N_PARTS = 8
PALETTE = np.array([[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
                    [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128],
                    [170, 110, 40]], dtype=np.uint8)
MODES = ("crossover", "inpainting")
SELECT_BRUSH = """() => {
  let tries = 0;
  const pick = () => {
    const b = document.querySelector('#local-editor button[aria-label="Brush"], #local-editor button[title="Brush"]');
    if (b) { b.click(); } else if (tries++ < 30) { setTimeout(pick, 100); }
  };
  pick();
}"""
DEFAULT_PART = 5  # the part slider's start: the preset's part ('hair' in the toyfaces clusters; see default_part)
_HOOK_LOCK = threading.Lock()


#: part finding's ``(samples, codes per synthesis call)`` by generator size, so the first *Show parts* /
#: *Transfer* on a large generator is bounded: up to 256 px 64 samples in batches of 8; a 512 or 1024 px one
#: clusters the 32 px features of 16 samples, one code at a time (on a 2-core CPU with ffhq-1024: 64 samples in
#: batches of 8 took 292 s and 13.3 GB; see :func:`part_settings`)
PART_SAMPLES = {256: (64, 8), 512: (16, 2), 1024: (16, 1)}


def part_settings(G) -> tuple[int, int]:
    """``(n_samples, batch_size)`` for finding ``G``'s parts: the row of :data:`PART_SAMPLES` for the smallest
    size at or above ``G.img_resolution`` (the 1024 row above that)."""
    res = int(G.img_resolution)
    return next((PART_SAMPLES[k] for k in sorted(PART_SAMPLES) if res <= k), PART_SAMPLES[max(PART_SAMPLES)])


def parts(model: str, G):
    """The part segmentation of ``model`` (found once, cached; :func:`part_settings` samples)."""
    from stylekit.edit.local import find_parts

    def fit():
        n_samples, batch = part_settings(G)
        with _HOOK_LOCK:
            return find_parts(_hook_copy(model, G), n_parts=N_PARTS, n_samples=n_samples, batch_size=batch)

    return cached_fit((model, "parts"), fit)


def default_part(model: str, G) -> int:
    """The number of the preset's part (``PART_TRANSFER.part``, 'skin') in this model's clusters, else DEFAULT_PART."""
    names = part_names(model, G)
    return names.index(PART_TRANSFER.part) if PART_TRANSFER.part in names else DEFAULT_PART


def part_names(model: str, G) -> list[str]:
    """A name per part: the toyfaces region it covers (``'hair'``, ``'skin'``...) or ``'part k'``."""
    def fit():
        if model != DEFAULT_MODEL:
            return [f"part {k}" for k in range(N_PARTS)]
        from .part_names import name_parts

        seg = parts(model, G)
        with _HOOK_LOCK:
            return name_parts(_hook_copy(model, G), seg, N_PARTS)

    return cached_fit((model, "part-names"), fit)


def _hook_copy(model: str, G):
    # part finding records activations with forward hooks; a private copy of the generator keeps other
    # sessions' renders (which run on other threads) out of the recording
    return cached_fit((model, "hook-copy"), lambda: copy.deepcopy(G))


def _segmentation(model: str, G, latent):
    from PIL import Image

    from stylekit.edit.local import part_masks

    seg = parts(model, G)
    with _HOOK_LOCK:
        labels = part_masks(_hook_copy(model, G), seg, latent.replace(generator=None), size=DISPLAY_SIZE)[0]
    colours = PALETTE[labels.cpu().numpy() % len(PALETTE)]
    return Image.fromarray(colours)


def legend(names: list[str], seg=None) -> str:
    """The colour key of the segmentation: a coloured square, the part's number and its name (and, with the
    segmentation ``seg``, the samples and layer its parts were found from)."""
    items = []
    for i, name in enumerate(names):
        r, g, b = (int(v) for v in PALETTE[i % len(PALETTE)])
        items.append(f'<span style="color:rgb({r},{g},{b})">&#9632;</span> {i} {name}')
    found = "" if seg is None else (f" &nbsp; (clusters of layer {seg.layer}'s features over "
                                    f"{seg.meta.get('n_samples', '?')} random samples)")
    return "**Parts:** " + " &nbsp; ".join(items) + found


@gpu_task(FIT_S)
@user_errors
def local_parts(model: str, latent):
    """Returns ``(current image, its part segmentation as a colour map, the colour key with the part names)``."""
    G = get_generator(model)
    base = current_latent(G, latent)
    return render_pil(G, base), _segmentation(model, G, base), legend(part_names(model, G), parts(model, G))


@gpu_task(FIT_S)
@user_errors
def local_transfer(model: str, reference_seed, part, strength, latent):
    """Returns ``(target | reference | result image, text, the result as a full-size PNG, edited S latent)``."""
    from stylekit.edit.local import part_channels, transfer_part
    from stylekit.latent import Latent

    G = get_generator(model)
    seed = one_seed(reference_seed, "reference seed")
    k = integer(part, "part", 0, N_PARTS - 1)
    strength = number(strength, "strength", 0, 2)
    base = current_latent(G, latent)
    reference = Latent.from_seed(G, seed, psi=0.7)
    seg = parts(model, G)
    out = transfer_part(G, base, reference, seg, k, strength=strength)
    before, after = render(G, base), render(G, out)
    n_channels = sum(int(q.sum()) for q in part_channels(seg, k) if q is not None)
    reading = change_line(model, before, after)
    info = (f"Part {k} ({part_names(model, G)[k]}) of seed {seed} blended in at strength {strength:g}: "
            f"{n_channels} style channels changed, the rest kept" + (f"; {reading}." if reading else "."))
    return row(before, render(G, reference), after), info, save_png(after, "part-transfer"), out


#: Retrieve by part's database: seeds 0..N-1 at psi 0.7, N by generator size (only the codes are kept, once per
#: model; the retrieved faces are rendered per call)
RETRIEVAL_DATABASE = {256: 500, 512: 200, 1024: 100}
RETRIEVAL_TOP_K = 4  # faces shown by default
MAX_TOP_K = 8


def retrieval_database(model: str, G):
    """The W+ codes of seeds ``0 .. N-1`` (psi 0.7) that *Retrieve by part* searches (row ``i`` is seed ``i``;
    ``N`` from :data:`RETRIEVAL_DATABASE` for the smallest size at or above ``G.img_resolution``), cached per model."""
    from stylekit.latent import Latent

    def fit():
        res = int(G.img_resolution)
        n = next((RETRIEVAL_DATABASE[k] for k in sorted(RETRIEVAL_DATABASE) if res <= k),
                 RETRIEVAL_DATABASE[max(RETRIEVAL_DATABASE)])
        return Latent.from_seed(G, list(range(n)), psi=0.7, space="w+")

    return cached_fit((model, "retrieval-database"), fit)


@gpu_task(FIT_S)
@user_errors
def local_retrieve(model: str, part, top_k, latent):
    """Returns ``(current face | the top_k database faces closest in the part, text)``."""
    from stylekit.edit.retrieval import retrieve

    G = get_generator(model)
    k = integer(part, "part", 0, N_PARTS - 1)
    top = integer(top_k, "faces to retrieve", 1, MAX_TOP_K)
    base = current_latent(G, latent)
    database = retrieval_database(model, G)
    found = retrieve(G, parts(model, G), base, database, k, top, skip_identical=True)
    seeds = found.indices[0].tolist()
    faces = [render(G, database.select([s])) for s in seeds]  # one at a time: bounded memory at 1024 px
    tile = min(GRID_TILE, 4 * DISPLAY_MAX // (len(faces) + 1) - 4)  # the row (padding too) fits four display pictures
    listing = ", ".join(f"{i + 1}. seed {s} ({float(d):.3f})"
                        for i, (s, d) in enumerate(zip(seeds, found.distances[0])))
    info = (f"Closest in part {k} ({part_names(model, G)[k]}) among {len(database)} faces "
            f"(seeds 0-{len(database) - 1}, psi 0.7), by cosine distance of the part's style descriptor: {listing}. "
            "*Transfer from the retrieved face* copies the part of the one picked below.")
    return row(*[shrink(x, tile) for x in [render(G, base), *faces]], size=tile), info


@gpu_task(FIT_S)
@user_errors
def local_retrieve_transfer(model: str, part, pick, strength, latent):
    """Returns ``(target | retrieved face | result image, text, the result as a full-size PNG, edited S latent)``."""
    from stylekit.edit.retrieval import retrieve_and_transfer

    G = get_generator(model)
    k = integer(part, "part", 0, N_PARTS - 1)
    rank = integer(pick, "retrieved face", 1, MAX_TOP_K)
    strength = number(strength, "strength", 0, 2)
    base = current_latent(G, latent)
    database = retrieval_database(model, G)
    out, found = retrieve_and_transfer(G, base, database, parts(model, G), k, rank=rank, strength=strength)
    seed = int(found.indices[0, -1])
    before, after = render(G, base), render(G, out)
    reading = change_line(model, before, after)
    info = (f"Part {k} ({part_names(model, G)[k]}) of seed {seed} (retrieved face {rank}, distance "
            f"{float(found.distances[0, -1]):.3f}) blended in at strength {strength:g}"
            + (f"; {reading}." if reading else "."))
    return row(before, render(G, database.select([seed])), after), info, save_png(after, "retrieved-part"), out


@gpu_task(RENDER_S)
@user_errors
def local_canvas(model: str, latent):
    """Returns the editor's starting value: the current latent's image as the background, no strokes."""
    G = get_generator(model)
    img = render_pil(G, current_latent(G, latent))
    return {"background": img, "layers": [], "composite": img}


def _editor_parts(value):
    """``(background RGB PIL image, painted mask [H, W] float in {0, 1})`` from an ImageEditor value."""
    from PIL import Image

    from stylekit.images import open_image

    if not isinstance(value, dict) or value.get("background") is None:
        raise InvalidArgumentError("the canvas is empty: press 'Load current image' (or upload one), then paint a mask.")
    background = value["background"]
    background = open_image(background if isinstance(background, Image.Image) else np.asarray(background))
    mask = np.zeros((background.height, background.width), dtype=np.float32)
    for layer in value.get("layers") or []:
        if layer is None:
            continue
        layer = layer if isinstance(layer, Image.Image) else Image.fromarray(np.asarray(layer))
        alpha = np.asarray(layer.convert("RGBA").resize(background.size, Image.NEAREST))[:, :, 3]
        mask = np.maximum(mask, (alpha > 0).astype(np.float32))
    if mask.sum() == 0:
        raise InvalidArgumentError("no mask painted: draw over the region with the brush first.")
    if mask.min() == 1:
        raise InvalidArgumentError("the mask covers the whole image; leave some of it unpainted.")
    return background, mask


@gpu_task(OPTIMISE_S)
@user_errors
def local_crossover(model: str, editor, mode: str, reference_seed, steps, request: gr.Request = None,
                    progress=gr.Progress()):
    """Returns ``(canvas | mask | target | result image, text, the result as a full-size PNG, result latent)``."""
    import torch

    import stylekit
    from stylekit.latent import Latent

    G = get_generator(model)
    mode = choice(mode, "mode", MODES)
    n_steps = integer(steps, "steps", 1, 1000)
    seed = one_seed(reference_seed, "reference seed")
    background, mask = _editor_parts(editor)
    flag = start_cancellable(request)
    callback = progress_callback(progress, flag, mode.capitalize())
    if mode == "crossover":
        other = render(G, Latent.from_seed(G, seed, psi=0.7))
        result = stylekit.invert.invert_composite(G, background, other, mask, space="w+", steps=n_steps,
                                                  progress=callback)
    else:
        result = stylekit.invert.invert(G, background, method="optimize", space="w+", steps=n_steps, mask=1.0 - mask,
                                        progress=callback)
    from stylekit.images import image_to_tensor

    canvas = image_to_tensor(background, size=G.img_resolution)  # the figure is put together on the CPU
    m01 = torch.nn.functional.interpolate(torch.from_numpy(mask)[None, None], size=G.img_resolution, mode="nearest")
    image = result.image.detach().float().cpu()
    target = result.target.cpu() if mode == "crossover" else canvas * (1 - m01) + m01  # the hole shown white
    share = f"{100 * float(mask.mean()):.0f}% of the image"
    if mode == "crossover":
        info = (f"Crossover with {n_steps} steps: the painted region ({share}) from the canvas, the rest from seed "
                f"{seed}; PSNR against that composite target {result.psnr():.2f} dB.")
    else:
        keep = (1 - m01).expand_as(canvas)
        err = float(((image - canvas) ** 2 * keep).sum() / keep.sum().clamp(min=1))
        info = (f"Inpainting with {n_steps} steps: only the unpainted pixels were matched (PSNR there "
                f"{10 * math.log10(4 / max(err, 1e-10)):.2f} dB); the generator filled the hole ({share}).")
    figure = row(canvas, (m01 * 2 - 1).expand(-1, 3, -1, -1), target, image)
    return figure, info, save_png(image, mode), result.latent


@user_errors
def use_local(model: str, result):
    return use_result(model, result, "Local edits")


def stop(request: gr.Request = None) -> str:
    return request_stop(request)


def build(ui: SharedUI) -> None:
    teaching_note(SHORT, MORE, lesson=LESSON, measured=MEASURED)
    result = session_state()
    gr.Markdown("### Part transfer (Editing in Style)")
    with gr.Row():
        current = gr.Image(label="Current image", type="pil", elem_id="local-current")
        segmentation = gr.Image(label="Its parts", type="pil", elem_id="local-parts")
    parts_key = gr.Markdown("**Parts:** press *Show parts* to see them, coloured and named.", label="parts",
                            elem_id="local-parts-legend")
    show = gr.Button("Show parts", elem_id="local-parts-button")
    with gr.Row():
        reference = gr.Number(value=PART_TRANSFER.reference_seed, precision=0, label="Reference seed")
        part = gr.Slider(0, N_PARTS - 1, value=DEFAULT_PART, step=1, label="Part (its number in the key above)")
        strength = gr.Slider(0, 2, value=PART_TRANSFER.strength, step=0.05, label="Strength")
    transfer = gr.Button("Transfer the part", variant="primary", elem_id="local-transfer-button")
    transfer_out = gr.Image(label="Target | reference | result", type="pil", elem_id="local-transfer-output")
    transfer_info = gr.Markdown(label="transfer result", elem_id="local-transfer-info")
    transfer_full = gr.File(label="Result, full size (PNG)", elem_id="local-transfer-download")

    gr.Markdown("### Retrieve by part (Retrieve in Style)")
    with gr.Row():
        top_k = gr.Slider(1, MAX_TOP_K, value=RETRIEVAL_TOP_K, step=1,
                          label="Faces to retrieve (closest in the part chosen above)")
        pick = gr.Slider(1, MAX_TOP_K, value=1, step=1, label="Retrieved face to take the part from (its place)")
    with gr.Row():
        retrieve_button = gr.Button("Retrieve by part", elem_id="local-retrieve-button")
        take = gr.Button("Transfer from the retrieved face", elem_id="local-retrieve-transfer-button")
    retrieve_out = gr.Image(label="Current | closest faces in the part", type="pil", elem_id="local-retrieve-output")
    retrieve_info = gr.Markdown(label="retrieval result", elem_id="local-retrieve-info")
    take_out = gr.Image(label="Target | retrieved | result", type="pil", elem_id="local-retrieve-transfer-output")
    take_info = gr.Markdown(label="retrieved part transfer result", elem_id="local-retrieve-transfer-info")
    take_full = gr.File(label="Result, full size (PNG)", elem_id="local-retrieve-transfer-download")

    gr.Markdown("### Masked crossover / inpainting (Image2StyleGAN++)")
    with gr.Row():
        editor = gr.ImageEditor(label="Paint the mask", type="pil", image_mode="RGBA", sources=["upload"],
                                brush=gr.Brush(default_size=24, colors=["#ff0000"], color_mode="fixed"),
                                canvas_size=(DISPLAY_SIZE, DISPLAY_SIZE), elem_id="local-editor")
        with gr.Column():
            load = gr.Button("Load current image", elem_id="local-load")
            mode = gr.Radio(list(MODES), value="crossover", label="Mode")
            cross_seed = gr.Number(value=7, precision=0, label="Reference seed (crossover: outside the mask)")
            steps = gr.Slider(1, 1000, value=100, step=1, label="Steps", elem_id="local-steps")
            with gr.Row():
                run = gr.Button("Run", variant="primary", elem_id="local-run")
                stop_button = gr.Button("Stop", variant="stop")
            stop_info = gr.Markdown(label="stop message")
    cross_out = gr.Image(label="Canvas | mask | target | result", type="pil", elem_id="local-crossover-output")
    cross_info = gr.Markdown(label="crossover result", elem_id="local-crossover-info")
    cross_full = gr.File(label="Result, full size (PNG)", elem_id="local-crossover-download")
    use = gr.Button("Use the last result (part transfer or crossover)", elem_id="local-use")

    show.click(local_parts, [ui.model, ui.latent], [current, segmentation, parts_key], api_name="local_parts")
    mode.change(lambda m: gr.update(visible=m == "crossover"), mode, cross_seed, api_visibility="private",
                queue=False)  # inpainting has no reference face
    transfer.click(local_transfer, [ui.model, reference, part, strength, ui.latent],
                   [transfer_out, transfer_info, transfer_full, result], api_name="local_transfer")
    retrieve_button.click(local_retrieve, [ui.model, part, top_k, ui.latent], [retrieve_out, retrieve_info],
                          api_name="local_retrieve")
    take.click(local_retrieve_transfer, [ui.model, part, pick, strength, ui.latent],
               [take_out, take_info, take_full, result], api_name="local_retrieve_transfer")
    # select the brush once the picture is in, so the first drag paints (Gradio may start on another tool)
    load.click(local_canvas, [ui.model, ui.latent], editor, api_name="local_canvas").then(
        None, None, None, js=SELECT_BRUSH)
    run.click(local_crossover, [ui.model, editor, mode, cross_seed, steps], [cross_out, cross_info, cross_full, result],
              api_name="local_crossover", concurrency_limit=1, concurrency_id="optimisation")
    stop_button.click(stop, None, stop_info, api_name="local_stop", queue=False)
    use.click(use_local, [ui.model, result], ui.use_outputs, api_name="local_use")
