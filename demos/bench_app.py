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

Background jobs a tab starts (Text's relevance table, the InterFaceGAN fit from CLIP labels; kept tiny, see
:data:`ALWAYS`) are started and waited for first (``<api_name>_background_s``).

``--world rehearsal`` runs the same on the full-size FFHQ stand-ins of :mod:`stylekit.rehearsal` (random weights
in the real formats and places: ffhq-1024, e4e, ViT-B-32, VGG16, the directions), built in ``--world-dir``
(default ``$STYLEKIT_REHEARSAL_DIR`` or ``~/.cache/stylekit-rehearsal``) and served offline with
``STYLEKIT_DEFAULT_MODEL=--model`` (default ``ffhq-1024``); each endpoint is called once as its first call and
``--repeats`` (default 1 there) more times warm. Then ``--sessions`` (default 2) clients do every tab's default
action at once (optimisations with ``--steps`` steps), and the server's resident memory (its process and
children, sampled every 0.25 s over the whole run) is reported as ``server_peak_rss_mb``. The bar there:
``server_peak_rss_mb <= 12288``, ``failed_endpoints == 0``, ``max_interactive_latency_s <= 5``. A failing call is
counted (``<api_name>_failed``, ``failed_endpoints``, ``concurrent_errors``) and its message printed, not fatal.
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
#: long jobs with progress and Stop, excluded from the interactive bar: optimisations, and video_edit (it inverts and
#: renders every frame of a clip, so its time grows with the clip: 8 frames in this bench)
OPTIMISATIONS = ("invert", "local_crossover", "video_edit")
#: Endpoints of the app that are not timed, and why.
NOT_TIMED = {
    "sg3_pose": "needs a StyleGAN3 model; the offline toyfaces generator is a StyleGAN2",
    "load_example": "Gradio's own endpoint behind gr.Examples (it only fills an input)",
    "edit_published": "needs a model with published directions (FFHQ: e4e's); toyfaces has none",
}
WORLDS = ("none", "rehearsal")
#: the rehearsal parts the gallery reads with ffhq-1024 (generator, encoder, CLIP, perceptual loss, directions)
REHEARSAL_PARTS = ("ffhq-1024", "e4e-ffhq", "clip-vit-b-32", "vgg16-torch", "vgg16-timm", "directions")
RSS_INTERVAL_S = 0.25


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--app-dir", type=Path, default=ROOT, help="folder holding app.py (default: the repository)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed calls per endpoint, median reported (default 5; 1 with --world rehearsal)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls per endpoint first")
    parser.add_argument("--steps", type=int, default=None,
                        help="optimisation steps for invert / crossover (default 10; 2 with --world rehearsal)")
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for the app (default: inherit)")
    parser.add_argument("--world", choices=WORLDS, default="none",
                        help="'rehearsal': serve the full-size FFHQ stand-ins of stylekit.rehearsal (see above)")
    parser.add_argument("--world-dir", type=Path, default=None,
                        help="the rehearsal world's folder (default $STYLEKIT_REHEARSAL_DIR or ~/.cache/stylekit-rehearsal)")
    parser.add_argument("--model", default=None, help="the model every call uses (default toyfaces; ffhq-1024 with "
                                                      "--world rehearsal)")
    parser.add_argument("--sessions", type=int, default=None,
                        help="clients doing every tab's default action at once after the timing (default 0; 2 with "
                             "--world rehearsal)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rehearsal_env(world_dir: Path | None = None, model: str = "ffhq-1024", parts=REHEARSAL_PARTS) -> dict:
    """The environment that serves the rehearsal world (built first where missing; idempotent) offline with
    ``STYLEKIT_DEFAULT_MODEL=model``."""
    from stylekit.rehearsal import build_world, world_env

    folder = Path(world_dir or os.environ.get("STYLEKIT_REHEARSAL_DIR")
                  or Path.home() / ".cache" / "stylekit-rehearsal")
    build_world(folder, parts=list(parts) + ([model] if model.endswith("-1024") and model not in parts else []))
    env = world_env(folder)
    env["STYLEKIT_DEFAULT_MODEL"] = model
    return env


def _launch(app_dir: Path, threads: int | None, extra_args: list[str] | None = None, log: Path | None = None,
            env_extra: dict | None = None, start_timeout_s: float = 180.0):
    """Start ``app.py`` (with ``extra_args``, and ``env_extra`` in its environment) on a free loopback port, its
    output to ``log`` (default: discarded); returns ``(process, url)``."""
    port = _free_port()
    env = dict(os.environ, STYLEKIT_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
    for key in ("STYLEKIT_HUB_MIRROR", "HF_HOME") if env_extra else ():
        env.pop(key, None)
    env.update(env_extra or {})
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    out = subprocess.DEVNULL if log is None else open(log, "w")  # noqa: SIM115 - the server writes to it
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), *(extra_args or [])], cwd=app_dir,
                            env=env, stdout=out, stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL)
    deadline = time.time() + start_timeout_s
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app in {app_dir} exited early (status {proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, f"http://127.0.0.1:{port}/"
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"the app did not start within {start_timeout_s:g} s")


#: values the calls use instead of the widgets' defaults, by parameter name. Always: the background jobs stay tiny
#: (Text's relevance table from 2 images x 2 probes, the InterFaceGAN fit from 20 CLIP-labelled samples), else they
#: would compute on the server's cores through the whole run (at 1024 px the defaults take hours on a CPU).
ALWAYS = {"images": 2, "rank": 2, "samples": 20}
CLIP_FRAMES = 8  # frames of the clip the Video tab's edit gets
#: with ``small=True`` (the rehearsal test): few seeds and frames, so a 1024 px generator answers in seconds; Text's
#: global directions take the 8 most relevant channels whatever their relevance (beta 0: a table from 2 images of
#: a random-weight generator has no channel above the FFHQ preset's beta)
SMALL = {"seeds": "0-1", "row_seeds": "1", "col_seeds": "10-11", "frames": 3, "top_k": 3, "channels": 8, "beta": 0.0}
#: with ``--world rehearsal``: random weights give CLIP relevances far below the FFHQ preset's beta (0.05 against
#: 0.1 measured), so Text's global directions would refuse every prompt; beta 0 keeps its channel count
REHEARSAL_FILL = {"beta": 0.0}
STEP_PARAMS = ("steps",)  # optimisation steps: --steps (the mapper and optimize methods of Text are not run)


def endpoint_calls(api: dict, files: dict, model: str, steps: int, *, small: bool = False,
                   skip=tuple(NOT_TIMED), extra: dict | None = None) -> list[tuple[str, tuple]]:
    """(api_name, arguments) for every named endpoint of ``api`` (``Blocks.get_api_info()`` or
    ``Client.view_api(return_format='dict')``), in the app's order (each *use* button after its tab's action):
    every widget's default value, ``model`` for the model, the example photo and a painted canvas for the
    inputs that have no default, ``steps`` for optimisation steps, :data:`ALWAYS`, with ``small`` :data:`SMALL`,
    and ``extra`` last. Raises ValueError naming an input it cannot fill (a new endpoint must be taught here)."""
    from gradio_client import handle_file

    photo = handle_file(str(files["photo"]))
    editor = {"background": handle_file(str(files["canvas"])), "layers": [handle_file(str(files["layer"]))],
              "composite": handle_file(str(files["canvas"])), "id": None}
    fill = {"model": model, "image": photo, "editor": editor, **ALWAYS, **(SMALL if small else {})}
    if "video" in files:
        fill["video"] = handle_file(str(files["video"]))
    fill.update({name: steps for name in STEP_PARAMS})
    fill.update(extra or {})
    calls = []
    for name, info in api["named_endpoints"].items():
        name = name.lstrip("/")
        if name in skip:
            continue
        args = []
        for param in info["parameters"]:
            key = param["parameter_name"]
            if key in fill:
                args.append(fill[key])
            elif param.get("parameter_has_default"):
                args.append(param.get("parameter_default"))
            else:
                raise ValueError(f"endpoint /{name}: no value for its input {key!r}; add one to bench_app's fill")
        calls.append((name, tuple(args)))
    return calls


def not_timed(api: dict, model: str) -> dict[str, str]:
    """The endpoints of :data:`NOT_TIMED` that cannot run with ``model``: ``sg3_pose`` unless it is a StyleGAN3
    (an ``sg3...`` name), ``edit_published`` unless the model has published directions (its direction input has
    a default then), and Gradio's own ``load_example``."""
    skip = {"load_example": NOT_TIMED["load_example"]}
    if not model.startswith("sg3"):
        skip["sg3_pose"] = (NOT_TIMED["sg3_pose"] if model == "toyfaces"
                            else f"needs a StyleGAN3 model (an sg3... name); {model} is not one")
    published = api["named_endpoints"].get("/edit_published", {}).get("parameters", [])
    if any(p["parameter_name"] == "direction" and not p.get("parameter_default") for p in published):
        skip["edit_published"] = NOT_TIMED["edit_published"]
    return skip


def _calls(files: dict, steps: int, model: str = "toyfaces", *, small: bool = False) -> list[tuple[str, tuple]]:
    """(api_name, arguments) for every endpoint of the gallery built in this process (see :func:`endpoint_calls`)."""
    import app

    api = app.build_app().get_api_info()
    return endpoint_calls(api, files, model, steps, small=small, skip=tuple(not_timed(api, model)))


def _inputs(folder: Path) -> dict:
    from PIL import Image, ImageDraw

    examples = ROOT / "demos" / "examples"
    canvas = folder / "canvas.png"
    Image.open(examples / "toyface-neutral.png").resize((64, 64)).save(canvas)
    layer = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(layer).rectangle((8, 8, 40, 40), fill=(255, 0, 0, 255))
    layer.save(folder / "layer.png")
    from stylekit.toyfaces.clips import make_clip
    from stylekit.video import write_video
    from stylekit.images import to_uint8

    clip = write_video(folder / "clip.mp4", to_uint8(make_clip("turn", frames=CLIP_FRAMES, seed=5)[0]), fps=12)
    return {"photo": examples / "toyface-beard.png", "canvas": canvas, "layer": folder / "layer.png", "video": clip}


class RssPeak:
    """The largest resident memory (MB) of a process and its children, sampled every :data:`RSS_INTERVAL_S`."""

    def __init__(self, pid: int):
        import threading

        self.pid, self.peak_mb, self.samples = pid, 0.0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        try:
            proc = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop.is_set():
            try:
                rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
            except psutil.Error:
                return
            self.peak_mb = max(self.peak_mb, rss / 2 ** 20)
            self.samples += 1
            self._stop.wait(RSS_INTERVAL_S)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)


def _resolve(args) -> None:
    """Fill the options whose defaults depend on ``--world``."""
    rehearsal = args.world == "rehearsal"
    args.model = args.model or ("ffhq-1024" if rehearsal else "toyfaces")
    args.repeats = args.repeats if args.repeats is not None else (1 if rehearsal else 5)
    args.steps = args.steps if args.steps is not None else (2 if rehearsal else 10)
    args.sessions = args.sessions if args.sessions is not None else (2 if rehearsal else 0)


def _call(client, name: str, call_args: tuple) -> tuple[float, str | None]:
    t0 = time.perf_counter()
    try:
        client.predict(*call_args, api_name=f"/{name}")
        error = None
    except Exception as exc:  # noqa: BLE001 - a failing endpoint is counted and reported, the run goes on
        error = f"{type(exc).__name__}: {str(exc)[:300]}"
    return time.perf_counter() - t0, error


#: background jobs a tab starts (endpoint that starts it -> endpoint that reports it): started and waited for
#: before the timing, so the timed calls do the interactive work (an action called while its job runs only answers
#: 'computing...', and its *use* button then has nothing to use); their time is ``<start>_background_s``
BACKGROUND = {"text_prepare": "text_status", "edit_interfacegan_fit": "edit_interfacegan_status"}
BACKGROUND_TIMEOUT_S = 1800.0


def _running(line: str) -> bool:
    """Whether a job's status line (``demos.jobs.Job.describe``) says it is queued or computing."""
    return "computing " in line or ": queued" in line


def _background_jobs(client, calls: dict) -> dict[str, float]:
    """Start every :data:`BACKGROUND` job with its call's arguments and wait for each; returns the seconds."""
    out = {}
    for start, status in BACKGROUND.items():
        if start not in calls or status not in calls:
            continue
        t0 = time.perf_counter()
        _, error = _call(client, start, calls[start])
        line = error or ""
        while error is None and time.perf_counter() - t0 < BACKGROUND_TIMEOUT_S:
            line = str(client.predict(*calls[status], api_name=f"/{status}"))
            if not _running(line):  # done, failed, ready, or nothing to compute for this model
                break
            time.sleep(2.0)
        out[f"{start}_background_s"] = time.perf_counter() - t0
        if error is not None or " failed:" in line:
            print(f"background job of /{start}: {line}", file=sys.stderr)
    return out


def _concurrent(url: str, calls, sessions: int) -> list[str]:
    """``sessions`` clients each make every call of ``calls`` once, at the same time; returns the errors."""
    import threading

    from gradio_client import Client

    errors: list[str] = []

    def session(i: int) -> None:
        client = Client(url, verbose=False)
        for name, call_args in calls:
            _, error = _call(client, name, call_args)
            if error is not None:
                errors.append(f"session {i} /{name}: {error}")

    threads = [threading.Thread(target=session, args=(i,)) for i in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def run(args) -> dict[str, float]:
    from gradio_client import Client

    _resolve(args)
    rehearsal = args.world == "rehearsal"
    env = rehearsal_env(args.world_dir, args.model) if rehearsal else None
    cache = tempfile.TemporaryDirectory(prefix="stylekit-bench-cache-") if rehearsal else None
    if cache is not None:  # the background jobs' tiny tables of a random-weight world stay out of the user's cache
        env["STYLEKIT_CACHE"] = cache.name
    out: dict[str, float] = {}
    failed: dict[str, str] = {}
    t_start = time.perf_counter()
    proc, url = _launch(args.app_dir, args.threads, env_extra=env, start_timeout_s=600 if rehearsal else 180)
    out["server_start_s"] = time.perf_counter() - t_start
    try:
        with RssPeak(proc.pid) as rss, tempfile.TemporaryDirectory() as tmp:
            client = Client(url, verbose=False)
            files = _inputs(Path(tmp))
            api = client.view_api(return_format="dict", print_info=False)
            skip = not_timed(api, args.model)
            calls = endpoint_calls(api, files, args.model, args.steps, skip=tuple(skip),
                                   extra=REHEARSAL_FILL if rehearsal else None)
            for name, why in skip.items():
                print(f"/{name} not timed: {why}", file=sys.stderr)
            out.update(_background_jobs(client, dict(calls)))
            for name, call_args in calls:
                times = []
                for i in range(max(args.warmup, 0) + max(args.repeats, 1)):
                    seconds, error = _call(client, name, call_args)
                    if error is not None:
                        failed[name] = error
                        break
                    times.append(seconds)
                if name in failed:
                    out[f"{name}_failed"] = 1.0
                    print(f"/{name} failed: {failed[name]}", file=sys.stderr)
                    continue
                out[f"{name}_first_latency_s"] = times[0]
                timed = times[max(args.warmup, 0):] or times
                out[f"{name}_latency_s"] = statistics.median(timed)
            out["server_peak_rss_single_mb"] = rss.peak_mb
            if args.sessions > 0:  # every tab's default action by several sessions at once (optimisations: --steps)
                t0 = time.perf_counter()
                errors = _concurrent(url, calls, args.sessions)
                out["concurrent_s"] = time.perf_counter() - t0
                out["concurrent_errors"] = float(len(errors))
                for line in errors[:20]:
                    print(line, file=sys.stderr)
            out["server_peak_rss_mb"] = rss.peak_mb
            out["rss_samples"] = float(rss.samples)
        interactive = [v for k, v in out.items() if k.endswith("_latency_s") and not k.endswith("_first_latency_s")
                       and k[:-len("_latency_s")] not in OPTIMISATIONS]
        if interactive:
            out["max_interactive_latency_s"] = max(interactive)
        out["endpoints"] = float(len(calls))
        out["failed_endpoints"] = float(len(failed))
        out["optimisation_steps"] = float(args.steps)
        out["sessions"] = float(args.sessions)
        out["rehearsal"] = float(rehearsal)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        if cache is not None:
            cache.cleanup()
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
