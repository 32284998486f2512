"""Style mixing tab: row codes x column codes, taking the coarse, middle or fine W+ rows from the columns."""

from __future__ import annotations

import gradio as gr
import torch

from stylekit.errors import InvalidArgumentError

from .common import (RENDER_S, SharedUI, current_latent, describe, get_generator, gpu_task, number,
                     render_pil, seed_list, session_state, teaching_note, use_result, user_errors)
from .models import default_model
from .outputs import GRID_TILE, ZipOfPngs, default_for, render_chunks, sized_default

SHORT = """**Style mixing** (StyleGAN, Karras et al. 2019). The synthesis network reads one *w* per layer (the W+
rows), so two faces can be spliced: each cell keeps its row's face and takes one group of rows from its column's."""

MORE = """The rows of the **coarse** layers (4-8 px) carry pose and face shape, **middle** ones (16-32 px) features
and hair style, **fine** ones colours and texture. Knobs: the seeds of the rows and columns, which group of layers
the columns provide, and truncation psi. Tick *current latent as the first row* to mix your own inversion or edit.
The default grid is 3 x 4 on small models and 2 x 2 on models above 256 px (each 1024 px face takes about half a
second on a 2-core CPU); type more seeds for a larger one (up to 6 x 6)."""
MEASURED = ("on 300 report-seed pairs read by the held-out judge (`python -m stylekit.bench claims`), the coarse rows "
            "move 0.88 [0.87, 0.89] of the pose-and-shape difference (features 0.07, colours 0.07); the middle rows "
            "move features 0.91 but colours too, 0.52; the fine rows move colours 0.41 and almost nothing else "
            "(0.02).")
LESSON = "01_generator.py"

GROUPS = ("coarse", "middle", "fine")
#: the default grid, rows x columns: 3 x 4 (19 renders) on small models, 2 x 2 (8 renders, within the gallery's
#: 5 s on a 2-core CPU at 1024 px) on large ones (demos.outputs.sized_default)
GRID_SEEDS = {"small": ("1-3", "10-13"), "large": ("1-2", "10-11")}


def default_seeds(G) -> tuple[str, str]:
    """``(row seeds, column seeds)`` of the default grid for ``G`` (see :data:`GRID_SEEDS`)."""
    return sized_default(G, GRID_SEEDS["small"], GRID_SEEDS["large"])


def _grid_image(rows_img, cols_img, cells):
    """The figure from display-size tiles: a blank corner, the column faces on top, each row face followed by
    its mixes (``rows_img [R, 3, t, t]``, ``cols_img [C, 3, t, t]``, ``cells [R, C, 3, t, t]``)."""
    from stylekit.images import make_grid, tensor_to_pil

    r, c = cells.shape[:2]
    blank = torch.ones_like(cols_img[:1])
    tiles = [blank, cols_img]
    for i in range(r):
        tiles += [rows_img[i:i + 1], cells[i]]
    return tensor_to_pil(make_grid(torch.cat(tiles), ncols=c + 1))


def mix_codes(G, rows, cols, rows_idx):
    """W+ codes of the grid's cells ``[R * C, num_ws, w_dim]`` (row-major): row ``i``'s code with the rows
    ``rows_idx`` of column ``j``'s (the same cells as :func:`stylekit.edit.mixing_grid`)."""
    from stylekit.edit import style_mix

    return torch.cat([style_mix(G, r, c, rows_idx).tensor for r in rows for c in cols])


def tile_size(G) -> int:
    """Tiles of the figure: small generators enlarged to 128 px, large ones shrunk to ``GRID_TILE``."""
    return min(max(int(G.img_resolution), 128), GRID_TILE)


@gpu_task(RENDER_S)
@user_errors
def style_mix(model: str, row_seeds: str, col_seeds: str, group: str, psi: float, use_current: bool, latent):
    """Returns ``(grid image, zip of the full-size cells, mixed latent)``: cell (i, j) is row i with the ``group``
    rows of column j; the mixed latent is the first row's mix with the first column (for *Use this result*).
    Rows, columns and cells are rendered a chunk at a time and shrunk to the figure's tile size as they come."""
    from stylekit.edit import layer_presets
    from stylekit.latent import Latent

    G = get_generator(model)
    if group not in GROUPS:
        raise InvalidArgumentError(f"the layer group must be one of {', '.join(GROUPS)}, got {group!r}.")
    rows_idx = layer_presets(G)[group]
    if not rows_idx:
        raise InvalidArgumentError(f"this {G.img_resolution}px generator has no {group} layers; pick another group.")
    psi = number(psi, "truncation psi", 0.0, 1.5)
    rows = [Latent.from_seed(G, s, psi=psi) for s in seed_list(row_seeds, "row seeds", max_count=6)]
    if use_current:
        rows = [current_latent(G, latent).select(0)] + rows[:5]
    cols = [Latent.from_seed(G, s, psi=psi) for s in seed_list(col_seeds, "column seeds", max_count=6)]
    if rows[0].generator is not None:
        raise InvalidArgumentError("the current latent uses a PTI-tuned generator, which cannot be mixed with plain "
                                   "seeds; untick 'current latent as the first row'.")
    cells = mix_codes(G, rows, cols, rows_idx)
    r, c, t = len(rows), len(cols), tile_size(G)
    names = [f"row{i}-col{j}" for i in range(r) for j in range(c)]
    archive = ZipOfPngs("mixing")
    small = sized_default(G, True, False)  # large models: the cells only (each full-size PNG costs about 0.05 s)
    try:
        cell_img = render_chunks(G, cells, size=t, names=names, archive=archive)
        row_img = render_chunks(G, torch.cat([x.ws(G) for x in rows]), size=t,
                                names=[f"row{i}" for i in range(r)], archive=archive if small else None)
        col_img = render_chunks(G, torch.cat([x.ws(G) for x in cols]), size=t,
                                names=[f"col{j}" for j in range(c)], archive=archive if small else None)
    finally:
        path = archive.close()
    first = Latent("w+", cells[:1].clone(), noise=rows[0].noise)
    return _grid_image(row_img, col_img, cell_img.reshape(r, c, *cell_img.shape[1:])), path, first


@user_errors
def use_mix(model: str, result):
    return use_result(model, result, "Style mixing")


@user_errors
def mix_defaults(model: str):
    """The row and column seeds of the picked model's default grid (:func:`default_seeds`)."""
    rows, cols = default_seeds(get_generator(model))
    return gr.update(value=rows), gr.update(value=cols)


def build(ui: SharedUI) -> None:
    teaching_note(SHORT, MORE, lesson=LESSON, measured=MEASURED)
    result = session_state()
    rows, cols = default_for(default_model(), *GRID_SEEDS.values())
    with gr.Row():
        row_seeds = gr.Textbox(value=rows, label="Row seeds (keep these faces)")
        col_seeds = gr.Textbox(value=cols, label="Column seeds (take their layers)")
    with gr.Row():
        group = gr.Radio(list(GROUPS), value="coarse", label="Layers taken from the columns")
        psi = gr.Slider(0.0, 1.5, value=0.7, step=0.05, label="Truncation psi")
        use_current = gr.Checkbox(False, label="Current latent as the first row")
    button = gr.Button("Mix", variant="primary", elem_id="mixing-button")
    output = gr.Image(label="Rows x columns (shown at most 256 px each)", type="pil", elem_id="mixing-output")
    full = gr.File(label="Full-size cells (and, on small models, rows and columns; zip of PNGs)",
                   elem_id="mixing-download")
    use = gr.Button("Use this result (first row x first column)", elem_id="mixing-use")
    gr.on([button.click, group.change], style_mix, [ui.model, row_seeds, col_seeds, group, psi, use_current, ui.latent],
          [output, full, result], api_name="style_mix")
    use.click(use_mix, [ui.model, result], ui.use_outputs, api_name="style_mix_use")
    ui.loaded.change(mix_defaults, ui.model, [row_seeds, col_seeds], api_visibility="private", queue=False)
