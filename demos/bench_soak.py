"""The load a classroom brings: concurrent gradio_client sessions doing the tabs' default actions.

Run from the repository root: ``python -m demos.bench_soak --json out.json [--sessions 8] [--minutes 10]``
(it lives beside the gallery, like bench_app, because it launches ``app.py``). The app is started on a
free loopback port with the offline toyfaces model and ``--state-ttl`` (default 60 s, so that the
sessions' state expires within the run); each session is one ``gradio_client.Client`` that, until the
time is up, picks a random default action of a random tab (weighted like a class: quick edits often,
inversions and crossovers now and then) and waits for it. Sessions start a second apart.

Reported (one flat JSON object, as the other benchmarks):

- per endpoint: calls, ``p50``/``p95`` latency and ``p50``/``p95`` queue wait (time from submit until
  the server started it, from the job's status) in seconds;
- ``errors`` (every action is valid, so each error is unexpected) with the first messages;
- the server log's tracebacks (goal: none) and one-line user errors (``--log``);
- server RSS (MB) sampled every 5 s: after warm-up (once every endpoint has answered, so its one-time
  fits are done; at least a minute), at the end of the load, its
  growth from warm-up to the end (goal: under 10%), and after the sessions ended and their state
  expired (``--cooldown`` seconds, default 90), with the whole series.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WARMUP_S = 60.0


def _actions(files: dict) -> list[tuple[str, tuple, float]]:
    """(api_name, arguments, weight) of every tab's default action (the tab's own default values)."""
    from gradio_client import handle_file

    from demos.local import DEFAULT_PART
    from demos.morph import OTHER_SEED
    from demos.text import GLOBAL, MAPPER_UNIT, MAPPING, OPTIMISE
    from stylekit.edit.presets import ANALOGY, PART_TRANSFER, SEFA, STYLESPACE

    m = "toyfaces"
    photo = handle_file(str(files["photo"]))
    editor = {"background": handle_file(str(files["canvas"])), "layers": [handle_file(str(files["layer"]))],
              "composite": handle_file(str(files["canvas"])), "id": None}
    return [
        ("generate", (m, "0-7", 0.7, "const"), 4), ("generate_use", (m, "0-7", 0.7), 1),
        ("style_mix", (m, "1-3", "10-13", "coarse", 0.7, False), 2),
        ("invert", (m, photo, "optimize", "w+", 100), 0.5), ("invert", (m, photo, "encoder", "w+", 100), 1),
        ("edit_interfacegan", (m, "glasses", 3.0, "all"), 2), ("edit_ganspace", (m, 0, 3.0, "all"), 2),
        ("edit_sefa", (m, SEFA.direction, SEFA.strength, SEFA.layers), 2),
        ("stylespace_edit", (m, STYLESPACE.layer, STYLESPACE.channel, STYLESPACE.amount, STYLESPACE.attribute), 2),
        ("stylespace_find", (m, STYLESPACE.attribute, 10), 1),
        ("local_parts", (m,), 1),
        ("local_transfer", (m, PART_TRANSFER.reference_seed, DEFAULT_PART, PART_TRANSFER.strength), 2),
        ("local_crossover", (m, editor, "crossover", 7, 100), 0.5),
        ("morph", (m, OTHER_SEED, 8, "lerp"), 2),
        ("analogy", (m, "example: neutral -> smiling", 3, 4, ANALOGY.strength, ANALOGY.layers), 2),
        ("text_edit", (m, "a face with glasses", "a face", "global", GLOBAL.alpha, OPTIMISE.steps, GLOBAL.beta,
                       GLOBAL.top_k, True), 2),
        ("text_edit", (m, "a face with glasses", "a face", "mapper", MAPPER_UNIT, MAPPING.steps, GLOBAL.beta,
                       GLOBAL.top_k, True), 0.5),
        ("model_info", (m,), 1), ("clear_latent", (), 0.5),
    ]


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.calls: list[dict] = []
        self.errors: list[str] = []

    def add(self, name: str, latency: float, wait: float | None, error: str | None, t: float) -> None:
        with self.lock:
            self.calls.append({"endpoint": name, "latency": latency, "wait": wait, "t": t})
            if error is not None:
                self.errors.append(f"{name}: {error}")


def _call(client, name: str, args: tuple) -> tuple[float, float | None, str | None]:
    """Submit, watch the status until the server starts the job, wait for the result."""
    from gradio_client.utils import Status

    t0 = time.perf_counter()
    job = client.submit(*args, api_name=f"/{name}")
    wait = None
    while not job.done():
        if wait is None and job.status().code in (Status.PROCESSING, Status.ITERATING, Status.PROGRESS):
            wait = time.perf_counter() - t0
        time.sleep(0.02)
    try:
        job.result()
        error = None
    except Exception as exc:  # noqa: BLE001 - every error is recorded, none is expected
        error = f"{type(exc).__name__}: {str(exc)[:200]}"
    latency = time.perf_counter() - t0
    return latency, wait if wait is not None else latency, error


def _session(url: str, actions, deadline: float, seed: int, rec: Recorder, start: float) -> None:
    from gradio_client import Client

    rng = random.Random(seed)
    client = Client(url, verbose=False)
    weights = [w for _, _, w in actions]
    while time.monotonic() < deadline:
        name, args, _ = rng.choices(actions, weights)[0]
        latency, wait, error = _call(client, name, args)
        rec.add(name, latency, wait, error, time.monotonic() - start)
    client.close()


def _rss_sampler(pid: int, stop: threading.Event, series: list, start: float) -> None:
    import psutil

    proc = psutil.Process(pid)
    while not stop.is_set():
        try:
            rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
        except psutil.Error:
            return
        series.append((round(time.monotonic() - start, 1), round(rss / 2 ** 20, 1)))
        stop.wait(5.0)


def _quantile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


def warmed_up_at(rec: Recorder) -> float:
    """When every endpoint had answered once (their one-time fits done), and at least :data:`WARMUP_S`."""
    first: dict[str, float] = {}
    for c in rec.calls:
        first.setdefault(c["endpoint"], c["t"])
    return max([WARMUP_S, *first.values()])


def summarise(rec: Recorder, series: list, load_end: float) -> dict:
    out: dict = {}
    by_endpoint: dict[str, list[dict]] = {}
    for c in rec.calls:
        by_endpoint.setdefault(c["endpoint"], []).append(c)
    for name, calls in sorted(by_endpoint.items()):
        lat = [c["latency"] for c in calls]
        waits = [c["wait"] for c in calls]
        out[f"{name}_calls"] = float(len(calls))
        out[f"{name}_p50_s"] = statistics.median(lat)
        out[f"{name}_p95_s"] = _quantile(lat, 0.95)
        out[f"{name}_wait_p50_s"] = statistics.median(waits)
        out[f"{name}_wait_p95_s"] = _quantile(waits, 0.95)
    out["calls"] = float(len(rec.calls))
    out["errors"] = float(len(rec.errors))
    warm_t = warmed_up_at(rec)
    out["warmed_up_at_s"] = warm_t
    warm = [rss for t, rss in series if warm_t <= t <= load_end]
    if warm:
        out["rss_after_warmup_mb"] = warm[0]
        out["rss_end_of_load_mb"] = warm[-1]
        out["rss_peak_mb"] = max(rss for _, rss in series)
        out["rss_growth_after_warmup"] = warm[-1] / warm[0] - 1.0
    if series:
        out["rss_after_cooldown_mb"] = series[-1][1]
    return out


def run(args) -> tuple[dict, dict]:
    from demos.bench_app import _inputs, _launch

    extra = ["--state-ttl", str(args.state_ttl)]
    if args.malloc_arenas:  # glibc's per-thread malloc arenas otherwise grow with Gradio's worker threads
        os.environ["MALLOC_ARENA_MAX"] = str(args.malloc_arenas)
    args.log.parent.mkdir(parents=True, exist_ok=True)
    proc, url = _launch(args.app_dir, args.threads, extra_args=extra, log=args.log)
    rec, series, stop = Recorder(), [], threading.Event()
    start = time.monotonic()
    sampler = threading.Thread(target=_rss_sampler, args=(proc.pid, stop, series, start), daemon=True)
    sampler.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            actions = _actions(_inputs(Path(tmp)))
            deadline = start + args.minutes * 60
            sessions = []
            for i in range(args.sessions):
                t = threading.Thread(target=_session, args=(url, actions, deadline, args.seed + i, rec, start))
                t.start()
                sessions.append(t)
                time.sleep(1.0)
            for t in sessions:
                t.join()
            load_end = time.monotonic() - start
            time.sleep(args.cooldown)  # the sessions' state expires (--state-ttl) and is deleted
    finally:
        stop.set()
        sampler.join(timeout=10)
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except Exception:  # noqa: BLE001
            proc.kill()
    metrics = summarise(rec, series, load_end)
    log = args.log.read_text(errors="replace")
    metrics.update(server_tracebacks=float(log.count("Traceback")), server_user_error_lines=float(log.count("user error")))
    metrics.update(sessions=float(args.sessions), minutes=float(args.minutes), state_ttl_s=float(args.state_ttl))
    details = {"rss_series_mb": series, "first_errors": rec.errors[:20]}
    return metrics, details


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m demos.bench_soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write the metrics (and the RSS "
                        "series and first errors under 'details') to this JSON file")
    parser.add_argument("--app-dir", type=Path, default=ROOT, help="folder holding app.py (default: the repository)")
    parser.add_argument("--sessions", type=int, default=8, help="concurrent gradio_client sessions (default 8)")
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the sessions act (default 10)")
    parser.add_argument("--cooldown", type=float, default=90.0, help="seconds to watch the memory after the load")
    parser.add_argument("--state-ttl", type=float, default=60.0, help="the app's --state-ttl (default 60 s)")
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for the app (default: inherit)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sessions' random choices")
    parser.add_argument("--malloc-arenas", type=int, default=0, help="MALLOC_ARENA_MAX for the app (0: inherit)")
    parser.add_argument("--log", type=Path, default=ROOT / "artifacts" / "soak-server.log",
                        help="where the server's output goes (default artifacts/soak-server.log)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    metrics, details = run(args)
    text = json.dumps(metrics, indent=2, sort_keys=True)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(dict(metrics, details=details), indent=2, sort_keys=True) + "\n")
    print(text)
    if details["first_errors"]:
        print("first errors:\n  " + "\n  ".join(details["first_errors"]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
