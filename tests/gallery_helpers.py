"""Launching the gallery (app.py) as a real server for the gallery's tests, and reading its images."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
BASE_ENV = {"GRADIO_ANALYTICS_ENABLED": "False", "PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(app_dir: Path = ROOT, env: dict | None = None, *, offline: bool = True):
    """Start ``app.py`` in ``app_dir`` on a free port; returns ``(process, url, log path)``.

    The server's output goes to ``artifacts/app-server-<port>.log`` (a pipe nobody reads would fill up
    and block the server). ``env`` adds to a minimal environment; ``offline`` sets STYLEKIT_OFFLINE=1.
    """
    port = free_port()
    full_env = dict(BASE_ENV, **({"STYLEKIT_OFFLINE": "1"} if offline else {}), **(env or {}))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_path = ARTIFACTS / f"app-server-{port}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=app_dir, env=full_env,
                                stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app exited early:\n{log_path.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, url, log_path
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("app did not start within 120 s")


def stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def image(path):
    from PIL import Image

    img = Image.open(path)
    img.load()
    return img.convert("RGB")


def pixels(path):
    import numpy as np

    return np.asarray(image(path), dtype=np.float32)


def panel_change(path, panels: int, first: int = 0, second: int = -1) -> float:
    """Mean absolute difference (0-255) between panel ``first`` and panel ``second`` of a row of
    ``panels`` equal panels (before | after images; make_grid's padding is cropped away)."""
    import numpy as np

    x = pixels(path)
    w = x.shape[1] // panels
    pad = max(1, w // 64)
    cells = [x[pad:-pad, i * w + pad:(i + 1) * w - pad] for i in range(panels)]
    return float(np.abs(cells[first] - cells[second]).mean())
