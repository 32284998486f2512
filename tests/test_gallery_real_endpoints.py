"""Every gallery endpoint on a real-size model (issue 15): app.py in a subprocess on the rehearsal world (full-size
random-weight FFHQ files in their real formats and places, offline) with ``STYLEKIT_DEFAULT_MODEL=ffhq-1024``,
driven by ``gradio_client`` with small settings; each output's size is checked and no call may fail. A second
server opens on ``sg3r-ffhq-1024`` for the Generate and StyleGAN3 tabs.

The calls come from the app's own API description (``demos.bench_app.endpoint_calls``: each widget's default,
the example photo, a painted canvas, one optimisation step, few seeds and frames), so a new endpoint is called
here without editing this file. Pictures come back at display size (at most :data:`demos.common.DISPLAY_MAX` a
side, grid tiles :data:`demos.outputs.GRID_TILE`), the full-size ones as zip downloads of 1024 px PNGs.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import pytest

from gallery_helpers import ROOT, launch, stop

pytest.importorskip("gradio_client")
pytest.importorskip("open_clip")

pytestmark = pytest.mark.slow

WORLD_PARTS = ("ffhq-1024", "e4e-ffhq", "clip-vit-b-32", "vgg16-torch", "vgg16-timm", "directions")
STEPS = 1  # optimisation steps of every call (invert, crossover)
PAD = 2  # make_grid's padding
#: endpoints of tabs whose FFHQ work was not finished when this test was written, with why; a failure of one of
#: these (and only of these) makes the test xfail with its message, any other failure fails it
UNFINISHED: dict[str, str] = {}


def _bounds():
    sys.path.insert(0, str(ROOT))
    try:
        from demos.common import DISPLAY_MAX
        from demos.outputs import GRID_TILE
        from demos.morph import GIF_SIZE
    finally:
        sys.path.remove(str(ROOT))
    return DISPLAY_MAX, GRID_TILE, GIF_SIZE


def _server(rehearsal_world, tmp_path, model: str, parts):
    from stylekit.rehearsal import world_env

    world = rehearsal_world(*parts)
    env = dict(world_env(world), STYLEKIT_DEFAULT_MODEL=model, STYLEKIT_CACHE=str(tmp_path / "cache"),
               HOME=str(Path.home()), OMP_NUM_THREADS="2")
    del env["STYLEKIT_OFFLINE"]  # launch() sets it
    return launch(env=env)


def _files(value) -> list[str]:
    """Every existing file path in a returned value (images, galleries, downloads, editor layers)."""
    if isinstance(value, str):
        try:
            return [value] if value.startswith("/") and "\n" not in value and Path(value).is_file() else []
        except OSError:  # a caption, not a path
            return []
    if isinstance(value, dict):
        return [f for v in value.values() for f in _files(v)]
    if isinstance(value, (list, tuple)):
        return [f for v in value for f in _files(v)]
    return []


def _size(path: str) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as img:
        return img.size


def _zip_sizes(path: str) -> dict[str, tuple[int, int]]:
    import io

    from PIL import Image

    with zipfile.ZipFile(path) as archive:
        return {name: Image.open(io.BytesIO(archive.read(name))).size for name in archive.namelist()}


def _check_display_sizes(name: str, result, components: list[str], display_max: int, grid_tile: int) -> list[str]:
    """Problems with the pictures one call returned: a shown picture (Image, Gallery, ImageEditor) may be no wider
    than a row of four display-size pictures and no taller than one (or two rows of grid tiles), padding
    included; a download (File) is a 1024 px PNG or a zip of them."""
    wide = 4 * (display_max + PAD) + PAD
    tall = max(display_max, 2 * grid_tile + PAD) + 2 * PAD
    problems = []
    values = result if isinstance(result, (list, tuple)) and len(components) > 1 else [result]
    for component, value in zip(components, values):
        for path in _files(value):
            if component == "File":
                sizes = _zip_sizes(path) if path.endswith(".zip") else {Path(path).name: _size(path)}
                bad = {n: sz for n, sz in sizes.items() if sz != (1024, 1024) or not n.endswith(".png")}
                if bad or not sizes:
                    problems.append(f"/{name}: the full-size download holds {bad or 'nothing'}")
            elif Path(path).suffix.lower() in (".png", ".webp", ".jpg", ".jpeg", ".gif"):
                w, h = _size(path)
                if h > tall or w > wide:
                    problems.append(f"/{name}: a {w}x{h} {component} (display size is at most {display_max} a side)")
    return problems


def _expected_sizes(outputs: dict, grid_tile: int, gif_size: int) -> list[str]:
    """The batch tabs' exact figures at the small settings: 2 seeds, 1 row x 2 columns, 3 morph frames."""
    t = grid_tile + PAD
    problems = []

    def expect(what, got, want):
        if got != want:
            problems.append(f"{what}: {got}, expected {want}")

    if "generate" in outputs:
        grid, full = outputs["generate"]
        expect("/generate grid", _size(grid), (2 * t + PAD, t + PAD))
        expect("/generate download", _zip_sizes(full), {f"seed{s:04d}.png": (1024, 1024) for s in (0, 1)})
    if "style_mix" in outputs:
        grid, full = outputs["style_mix"]
        expect("/style_mix grid", _size(grid), (3 * t + PAD, 2 * t + PAD))  # corner + 2 columns; header + 1 row
        expect("/style_mix download", _zip_sizes(full),
               {f"{n}.png": (1024, 1024) for n in ("row0-col0", "row0-col1")})  # the cells only at 1024 px
    if "morph" in outputs:
        frames, gif, full = outputs["morph"]
        expect("/morph frames", [_size(f["image"]) for f in frames], [(grid_tile, grid_tile)] * 3)
        from PIL import Image

        with Image.open(gif) as anim:
            expect("/morph animation", (anim.size, anim.n_frames), ((gif_size, gif_size), 4))  # 3 there, 1 back
        expect("/morph download", _zip_sizes(full), {f"frame{i:02d}.png": (1024, 1024) for i in range(3)})
    return problems


#: a tab's main action that answers at once while a background job computes what it needs on a large model
#: (``(None, what to press / how far the job is)``), the endpoint that reports the job, and the tab's *use* button
DEFERRED = {"text_edit": ("text_status", "text_use"),
            "edit_interfacegan": ("edit_interfacegan_status", "edit_use")}
BACKGROUND_TIMEOUT_S = 600.0


def _call_all(url: str, model: str, only=None) -> tuple[dict, dict, dict, dict]:
    """``(outputs, errors, not called, return components)`` of every endpoint (or those in ``only``), in the app's
    order; then, for a main action of :data:`DEFERRED` that answered without a picture, its background job is
    followed until done and the action and its *use* button are called again."""
    import tempfile
    import time

    from gradio_client import Client

    sys.path.insert(0, str(ROOT))
    try:
        from demos.bench_app import _inputs, endpoint_calls, not_timed
    finally:
        sys.path.remove(str(ROOT))

    client = Client(url, verbose=False)
    api = client.view_api(return_format="dict", print_info=False)
    components = {k.lstrip("/"): [r.get("component") for r in v["returns"]] for k, v in api["named_endpoints"].items()}
    skipped = not_timed(api, model)
    outputs, errors, seconds = {}, {}, {}

    def call(name, args, label=None):
        t0 = time.perf_counter()
        errors.pop(name, None)
        try:
            outputs[name] = client.predict(*args, api_name=f"/{name}")
        except Exception as exc:  # noqa: BLE001 - every failure is collected and reported together
            errors[name] = f"{type(exc).__name__}: {str(exc)[:400]}"
        seconds[label or name] = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        calls = dict(endpoint_calls(api, _inputs(Path(tmp)), model, STEPS, small=True, skip=tuple(skipped)))
        for name, args in calls.items():
            if only is None or name in only:
                call(name, args)
        for action, (status, use) in DEFERRED.items():
            first = outputs.get(action)
            if first is None or first[0] is not None or status not in calls:
                continue
            t0, line = time.perf_counter(), ""
            while time.perf_counter() - t0 < BACKGROUND_TIMEOUT_S:  # the job the first call (or prepare) started
                line = str(client.predict(*calls[status], api_name=f"/{status}"))
                if ": done in" in line or " failed:" in line or "No background job" in line:
                    break
                time.sleep(2.0)
            seconds[f"{action} background job"] = time.perf_counter() - t0
            if "clear_latent" in calls:  # start from the default latent (an S result of another tab is not W/W+)
                client.predict(api_name="/clear_latent")
            call(action, calls[action], f"{action} (job done: {line[:80]})")
            if use in calls:
                call(use, calls[use], f"{use} (again)")
    # for the reader of a slow run (pytest -s); never asserted
    print("\n" + "\n".join(f"{model} /{name}: {t:.1f} s{' FAILED' if name in errors else ''}"
                            for name, t in seconds.items()))
    return outputs, errors, skipped, components


def _report(outputs, errors, problems, log_path) -> str:
    lines = [f"/{name} failed: {message}" for name, message in errors.items()] + problems
    tail = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
    return "\n".join(lines) + f"\n--- server log (end) ---\n{tail}"


def test_every_endpoint_on_ffhq_1024(rehearsal_world, tmp_path):
    display_max, grid_tile, gif_size = _bounds()
    proc, url, log_path = _server(rehearsal_world, tmp_path, "ffhq-1024", WORLD_PARTS)
    try:
        outputs, errors, skipped, components = _call_all(url, "ffhq-1024")
    finally:
        stop(proc)
    assert set(skipped) == {"load_example", "sg3_pose"}, skipped  # ffhq-1024 has published directions
    problems = [p for name, result in outputs.items()
                for p in _check_display_sizes(name, result, components[name], display_max, grid_tile)]
    problems += _expected_sizes(outputs, grid_tile, gif_size)
    hard = {k: v for k, v in errors.items() if k not in UNFINISHED}
    assert not hard and not problems, _report(outputs, hard, problems, log_path)
    assert len(outputs) >= 30, sorted(outputs)  # every tab's endpoints answered
    for action in DEFERRED:  # a main action that waited for its background job gave a picture afterwards
        assert action in errors or outputs[action][0] is not None, (action, outputs[action])
    if errors:  # only endpoints of unfinished tabs failed
        pytest.xfail("; ".join(f"/{k} ({UNFINISHED[k]}): {v}" for k, v in errors.items()))


def test_generate_and_stylegan3_tabs_on_sg3r_ffhq_1024(rehearsal_world, tmp_path):
    display_max, grid_tile, gif_size = _bounds()
    proc, url, log_path = _server(rehearsal_world, tmp_path, "sg3r-ffhq-1024", ("sg3r-ffhq-1024",))
    try:
        outputs, errors, skipped, components = _call_all(url, "sg3r-ffhq-1024", only=(
            "model_info", "generate", "generate_use", "sg3_status", "sg3_pose"))
    finally:
        stop(proc)
    assert "sg3_pose" not in skipped
    problems = [p for name, result in outputs.items()
                for p in _check_display_sizes(name, result, components[name], display_max, grid_tile)]
    problems += _expected_sizes(outputs, grid_tile, gif_size)
    assert not errors and not problems, _report(outputs, errors, problems, log_path)
    status = outputs["sg3_status"]
    assert "is a StyleGAN3" in status[0] and all(u.get("interactive", True) for u in status[1:] if isinstance(u, dict))
    pose, info, full = outputs["sg3_pose"]
    assert _size(pose) == (2 * (display_max + PAD) + PAD, display_max + 2 * PAD)  # original | posed, 512 each
    assert _size(full) == (1024, 1024)  # the posed picture at full size
    assert "Rotated +30 degrees" in info
    assert "stylegan3" in outputs["model_info"].lower() and "1024x1024" in outputs["model_info"]
