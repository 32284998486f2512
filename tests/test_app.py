"""The gallery through a real launched Gradio server: gradio_client and a real Chromium."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(app_dir: Path):
    port = _free_port()
    env = {"STYLEKIT_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "PATH": "/usr/bin:/bin",
           "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=app_dir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app exited early:\n{proc.stdout.read()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("app did not start within 120 s")


@pytest.fixture(scope="module")
def server():
    proc, url = _launch(ROOT)
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def test_generate_endpoint_and_bad_input(server):
    from gradio_client import Client
    from PIL import Image

    client = Client(server, verbose=False)
    path = client.predict("toyfaces", "0-3", 0.7, "const", api_name="/generate")
    img = Image.open(path)
    assert img.size[0] > 128 and img.size[1] >= 128
    with pytest.raises(Exception, match="seeds"):
        client.predict("toyfaces", "banana", 0.7, "const", api_name="/generate")
    with pytest.raises(Exception, match="psi"):
        client.predict("toyfaces", "0", 7.0, "const", api_name="/generate")
    # the server is still up and answering
    assert Image.open(client.predict("toyfaces", "5", 1.0, "none", api_name="/generate")).size[1] >= 128


@pytest.mark.browser
def test_browser_generate_tab(server):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server, wait_until="networkidle")
        page.get_by_role("tab", name="Generate").click()
        page.locator("#generate-button").click()
        page.locator("#generate-output img").wait_for(state="visible", timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "generate.png"), full_page=True)
        assert page.locator(".toast-body.error").count() == 0
        browser.close()


def test_space_folder_assembles_and_launches(tmp_path):
    space = tmp_path / "space"
    result = subprocess.run([sys.executable, str(ROOT / "hf_space" / "assemble.py"), str(space)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    proc, url = _launch(space)
    try:
        from gradio_client import Client
        from PIL import Image

        path = Client(url, verbose=False).predict("toyfaces", "1", 0.7, "const", api_name="/generate")
        assert Image.open(path).size[1] >= 128
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    (space / "app.py").unlink()
    check = subprocess.run([sys.executable, str(ROOT / "hf_space" / "assemble.py"), str(space), "--check"],
                           capture_output=True, text=True)
    assert check.returncode == 1 and "app file" in check.stderr
