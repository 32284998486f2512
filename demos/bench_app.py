"""Gallery interaction speed: every endpoint's latency through ``gradio_client`` against a launched app.

Run from the repository root: ``python -m demos.bench_app --json out.json [options]`` (it lives beside
the gallery, not in the installable package, because it launches ``app.py``). It writes one flat JSON
object ``metric name -> number``, as the ``python -m stylekit.bench`` benchmarks do.

The app (``app.py`` at the repository root) is started as a subprocess on a free port with the
offline model; each endpoint is called ``--warmup`` times first (per-model fits such as the
InterFaceGAN boundary, the GANSpace PCA, style statistics, part clusters and the CLIP channel
relevance of global directions are computed and cached then), and the median of ``--repeats`` timed calls is reported as ``<api_name>_latency_s``.
``max_interactive_latency_s`` is the largest of those over the endpoints that are not optimisations
(``invert`` and ``local_crossover`` are optimisations, run with ``--steps`` steps; they are reported
but excluded). The first call of each endpoint, which includes those one-time fits (and, for
``analogy``, inverting the example photo pair once), is reported as ``<api_name>_first_latency_s``.
``text_edit`` is timed with StyleCLIP global directions (its optimisation and mapper methods are
optimisations and are not timed here; ``python -m stylekit.bench text`` measures them). The bar is ``max_interactive_latency_s <= 1``.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPTIMISATIONS = ("invert", "local_crossover")
#: Endpoints of the app that are not timed, and why.
NOT_TIMED = {
    "sg3_pose": "needs a StyleGAN3 model; the offline toyfaces generator is a StyleGAN2",
    "load_example": "Gradio's own endpoint behind gr.Examples (it only fills an input)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--app-dir", type=Path, default=ROOT, help="folder holding app.py (default: the repository)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per endpoint (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls per endpoint first")
    parser.add_argument("--steps", type=int, default=10, help="optimisation steps for invert / crossover")
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for the app (default: inherit)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(app_dir: Path, threads: int | None, extra_args: list[str] | None = None, log: Path | None = None):
    """Start ``app.py`` (with ``extra_args``) on a free loopback port, its output to ``log`` (default: discarded);
    returns ``(process, url)``."""
    port = _free_port()
    env = dict(os.environ, STYLEKIT_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    out = subprocess.DEVNULL if log is None else open(log, "w")  # noqa: SIM115 - the server writes to it
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), *(extra_args or [])], cwd=app_dir,
                            env=env, stdout=out, stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app in {app_dir} exited early (status {proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, f"http://127.0.0.1:{port}/"
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("the app did not start within 180 s")


def _calls(files: dict, steps: int) -> list[tuple[str, tuple]]:
    """(api_name, arguments) for every endpoint, in an order where 'use' buttons have a result."""
    from gradio_client import handle_file

    photo = handle_file(str(files["photo"]))
    editor = {"background": handle_file(str(files["canvas"])), "layers": [handle_file(str(files["layer"]))],
              "composite": handle_file(str(files["canvas"])), "id": None}
    m = "toyfaces"
    return [
        ("model_info", (m,)), ("models", ()), ("generate", (m, "0-7", 0.7, "const")), ("generate_use", (m, "3", 0.7)),
        ("style_mix", (m, "1-3", "10-13", "coarse", 0.7, False)), ("style_mix_use", (m,)),
        ("invert_methods", (m,)), ("invert", (m, photo, "optimize", "w+", steps)), ("invert_use", (m,)),
        ("invert_stop", ()),
        ("edit_interfacegan", (m, "glasses", 3.0, "all")), ("edit_ganspace", (m, 1, 3.0, "all")),
        ("edit_sefa", (m, 0, 5.0, "coarse")), ("edit_use", (m,)),
        ("stylespace_find", (m, "smile", 10)), ("stylespace_edit", (m, "b16.conv0", 5, 5.0)),
        ("stylespace_use", (m,)), ("stylespace_layers", (m,)), ("clear_latent", ()),
        ("local_parts", (m,)), ("local_transfer", (m, 7, 2, 1.0)), ("local_canvas", (m,)),
        ("local_crossover", (m, editor, "crossover", 7, steps)), ("local_use", (m,)), ("local_stop", ()),
        ("morph", (m, 11, 8, "lerp")), ("morph_use", (m, 3)),
        ("analogy", (m, "example: neutral -> smiling", 0, 0, 1.0, "all")), ("analogy_use", (m,)),
        ("text_edit", (m, "a face with glasses", "a face", "global", 4.0, 3, 0.45)), ("text_use", (m,)), ("text_stop", ()),
        ("sg3_status", (m,)),
    ]


def _inputs(folder: Path) -> dict:
    from PIL import Image, ImageDraw

    examples = ROOT / "demos" / "examples"
    canvas = folder / "canvas.png"
    Image.open(examples / "toyface-neutral.png").resize((64, 64)).save(canvas)
    layer = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(layer).rectangle((8, 8, 40, 40), fill=(255, 0, 0, 255))
    layer.save(folder / "layer.png")
    return {"photo": examples / "toyface-beard.png", "canvas": canvas, "layer": folder / "layer.png"}


def run(args) -> dict[str, float]:
    from gradio_client import Client

    proc, url = _launch(args.app_dir, args.threads)
    out: dict[str, float] = {}
    try:
        client = Client(url, verbose=False)
        with tempfile.TemporaryDirectory() as tmp:
            calls = _calls(_inputs(Path(tmp)), args.steps)
            for name, call_args in calls:
                times = []
                for i in range(max(args.warmup, 0) + max(args.repeats, 1)):
                    t0 = time.perf_counter()
                    client.predict(*call_args, api_name=f"/{name}")
                    times.append(time.perf_counter() - t0)
                out[f"{name}_first_latency_s"] = times[0]
                timed = times[max(args.warmup, 0):] or times
                out[f"{name}_latency_s"] = statistics.median(timed)
        interactive = [v for k, v in out.items() if k.endswith("_latency_s") and not k.endswith("_first_latency_s")
                       and k[:-len("_latency_s")] not in OPTIMISATIONS]
        out["max_interactive_latency_s"] = max(interactive)
        out["endpoints"] = float(len(calls))
        out["optimisation_steps"] = float(args.steps)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    return out


def build_parser() -> argparse.ArgumentParser:
    """The command line: ``--json PATH`` plus the options of :func:`add_arguments`."""
    parser = argparse.ArgumentParser(prog="python -m demos.bench_app", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write the metrics to this JSON file")
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Launch the app, time every endpoint, print the metrics as JSON (and write them to ``--json``)."""
    from stylekit.bench import write_metrics

    args = build_parser().parse_args(argv)
    write_metrics(run(args), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
