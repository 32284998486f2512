"""The gallery's model loading (demos/models.py, issue 22 item 4): no user waits for another's download or
failure; the picker reverts to the last working model; an unreachable Hub fails at once."""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from gallery_helpers import ROOT, launch, stop

sys.path.insert(0, str(ROOT))


@pytest.fixture
def models(monkeypatch):
    from demos import models as m

    monkeypatch.setattr(m, "_MODELS", type(m._MODELS)())
    monkeypatch.setattr(m, "_FAILURES", {})
    monkeypatch.setattr(m, "_NAME_LOCKS", {})
    monkeypatch.setattr(m, "_PROBE", {})
    return m


def _slow_failing_loader(models, monkeypatch, seconds=2.0):
    from stylekit.errors import OfflineError

    real = models._load
    calls = []

    def fake(name, device):
        if name == "slow-hub-model":
            calls.append(name)
            time.sleep(seconds)
            raise OfflineError("slow-hub-model cannot be downloaded now.")
        return real(name, device)

    monkeypatch.setattr(models, "_load", fake)
    return calls


def test_a_slow_failing_load_does_not_hold_up_another_model(models, monkeypatch):
    from stylekit.errors import OfflineError

    calls = _slow_failing_loader(models, monkeypatch)
    models.load("toyfaces")  # loaded once, before the race
    errors = []
    thread = threading.Thread(target=lambda: errors.append(pytest.raises(OfflineError, models.load, "slow-hub-model")))
    thread.start()
    time.sleep(0.2)  # the slow load holds its own lock now
    t0 = time.perf_counter()
    assert models.load("toyfaces").img_resolution == 64
    assert time.perf_counter() - t0 < 0.1
    thread.join()
    assert errors and calls == ["slow-hub-model"]
    # the failure is remembered: a second user gets the same message at once, without a second attempt
    t0 = time.perf_counter()
    with pytest.raises(OfflineError, match="cannot be downloaded now"):
        models.load("slow-hub-model")
    assert time.perf_counter() - t0 < 0.1 and calls == ["slow-hub-model"]


def test_two_sessions_waiting_for_the_same_model_load_it_once(models, monkeypatch):
    loads = []
    real = models._load

    def counting(name, device):
        loads.append(name)
        time.sleep(0.3)
        return real(name, device)

    monkeypatch.setattr(models, "_load", counting)
    threads = [threading.Thread(target=models.load, args=("toyfaces",)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loads == ["toyfaces"]


def test_offline_mode_skips_the_probe_and_an_unreachable_hub_is_found_fast(models, monkeypatch):
    monkeypatch.setenv("STYLEKIT_OFFLINE", "1")
    assert models.hub_offline() and models._PROBE == {}
    monkeypatch.setenv("STYLEKIT_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    from huggingface_hub import constants

    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    t0 = time.perf_counter()
    assert models.hub_offline()
    assert time.perf_counter() - t0 < models.PROBE_TIMEOUT_S + 1


def test_a_failed_pick_reverts_to_the_last_working_model(models, monkeypatch):
    import app

    _slow_failing_loader(models, monkeypatch, seconds=0.0)
    monkeypatch.setattr(app.gr, "Warning", lambda *a, **k: None)  # no request context here
    picker, info, loaded = app.pick_model("slow-hub-model", "toyfaces", progress=lambda *a, **k: None)
    assert picker["value"] == "toyfaces" and loaded == "toyfaces"
    assert "Could not load slow-hub-model" in info and "cannot be downloaded now" in info
    assert "Still using **toyfaces**" in info and "64x64" in info
    picker, info, loaded = app.pick_model("toyfaces", "toyfaces", progress=lambda *a, **k: None)
    assert loaded == "toyfaces" and "64x64" in info and "computes in" in info
    assert "offline default" in info  # the registry's description, on a second line
    G = models.load("toyfaces")
    assert models.describe_model("toyfaces", G).count("\n") == 2  # the line, a blank line, the description
    assert models.describe_model("/some/file.pkl", G).count("\n") == 0  # an unregistered path: one line


def _blackhole():
    """A local 'Hub' that accepts connections and never answers (a hung network)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held = []

    def accept():
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return server, held


def test_a_hung_hub_is_found_in_seconds(models, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setenv("STYLEKIT_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    hub, held = _blackhole()
    try:
        monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{hub.getsockname()[1]}")
        t0 = time.perf_counter()
        assert models.hub_offline()
        assert time.perf_counter() - t0 < models.PROBE_TIMEOUT_S + 1
    finally:
        hub.close()
        for conn in held:
            conn.close()


def _slow_hub(delay_s: float):
    """A local 'Hub' that answers its front page at once and every file request after ``delay_s`` with 404."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            if self.path.strip("/"):
                time.sleep(delay_s)
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("X-Error-Message", "Entry not found")
            else:
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_HEAD = do_GET = _answer

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_generate_stays_fast_while_another_client_hub_load_fails(tmp_path):
    """Two clients: A picks a Hub model that takes seconds to fail; B's Generate keeps answering in well
    under 2 s meanwhile (it took 30 s when loads shared one lock); the server log holds no traceback."""
    from gradio_client import Client

    hub = _slow_hub(delay_s=6.0)
    env = {"HF_ENDPOINT": f"http://127.0.0.1:{hub.server_address[1]}", "HF_HOME": str(tmp_path / "hf")}
    proc, url, log_path = launch(env=env, offline=False)
    try:
        a, b = Client(url, verbose=False), Client(url, verbose=False)
        b.predict("toyfaces", "0", 0.7, "const", api_name="/generate")  # warm
        t0 = time.perf_counter()
        job = a.submit("ffhq-256", api_name="/model_info")
        times = []
        while not job.done() and time.perf_counter() - t0 < 90:
            t1 = time.perf_counter()
            b.predict("toyfaces", "0-3", 0.7, "const", api_name="/generate")
            times.append(time.perf_counter() - t1)
        with pytest.raises(Exception, match="ffhq|Hub|download"):
            job.result(timeout=30)
        failed_after = time.perf_counter() - t0
        assert failed_after > 5, "the Hub load should have taken a while (the test needs an overlap)"
        assert len(times) >= 3 and max(times) < 2.0, (times, failed_after)
        print(f"\nHub load failed after {failed_after:.1f} s; meanwhile {len(times)} Generates, slowest "
              f"{max(times):.2f} s, median {sorted(times)[len(times) // 2]:.2f} s")
        # a second client asking for the same model gets the remembered failure at once
        t1 = time.perf_counter()
        with pytest.raises(Exception, match="ffhq|Hub|download"):
            b.predict("ffhq-256", api_name="/model_info")
        assert time.perf_counter() - t1 < 2.0
        log = log_path.read_text()
        assert "Traceback" not in log, log
        assert log.count("user error in loading a model") == 2, log  # one line per failure
    finally:
        stop(proc)
        hub.shutdown()


def test_result_images_are_written_atomically_and_once(tmp_path):
    from PIL import Image

    from demos import common
    from gradio import processing_utils as pu

    common.atomic_image_cache()
    common.atomic_image_cache()  # idempotent
    assert pu.save_pil_to_cache.stylekit_atomic
    img = Image.new("RGB", (32, 32), (200, 30, 30))
    first = pu.save_pil_to_cache(img, str(tmp_path))
    mtime = Path(first).stat().st_mtime_ns
    time.sleep(0.01)
    assert pu.save_pil_to_cache(img, str(tmp_path)) == first
    assert Path(first).stat().st_mtime_ns == mtime  # the complete file is not rewritten under a reader
    assert Image.open(first).size == (32, 32)
    assert not list(tmp_path.rglob("*.tmp"))


def test_session_state_expires_and_stop_flags_stay_bounded():
    from demos import common

    assert common.session_state().time_to_live == common.STATE_TTL_S
    for i in range(common.MAX_CANCEL_FLAGS + 50):
        common.cancel_flag(type("R", (), {"session_hash": f"s{i}"})())
    assert len(common._CANCEL) == common.MAX_CANCEL_FLAGS
