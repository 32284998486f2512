"""The teaching lessons (docs/lessons/*.py, jupytext percent format) run top to bottom, offline.

Each lesson is read with jupytext into a notebook and executed with nbclient in a kernel of the
Python running pytest (ipykernel from the ``test`` extra; no kernel needs to be registered), with
``STYLEKIT_OFFLINE=1``, ``MPLBACKEND=Agg`` and two threads, as on a classroom laptop. A cell that
raises fails the test, and so does a lesson whose closing claim no longer holds (its last cell
asserts it). Select them with ``-m lessons``; they run in the default suite too.

Set ``STYLEKIT_LESSONS_OUT=<folder>`` to keep the executed notebooks (``<name>.ipynb``) and a
``times.json`` of the execution times there, e.g. to render one with ``jupyter nbconvert --to html``.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS_DIR = ROOT / "docs" / "lessons"
#: the lessons, in teaching order (demos/ links to these paths)
LESSONS = ("01_generator", "02_inversion", "03_editing", "04_text", "05_stylegan3")
#: seconds a single cell may take before the run is stopped: a guard against hangs, far above the few seconds
#: a cell takes on an idle 2-core machine (a machine busy with other work can be ten times slower)
CELL_TIMEOUT = 1800

pytestmark = pytest.mark.lessons


def _kernel_manager(spec_dir: Path):
    """A kernel manager that starts ipykernel with this very interpreter (sys.executable).

    A kernelspec written into ``spec_dir`` avoids depending on which ``python3`` kernel happens to be
    registered on the machine (a system-wide one may point to another Python without stylekit).
    """
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    name = "stylekit-lessons"
    folder = spec_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "stylekit lessons", "language": "python"}))
    return KernelManager(kernel_name=name, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec_dir)]))


def _kernel_env() -> dict:
    env = dict(os.environ)
    env.update({"STYLEKIT_OFFLINE": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2",
                "PYTHONHASHSEED": "0"})
    return env


def _markdown(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "markdown"]


def _read(name: str):
    import jupytext

    path = LESSONS_DIR / f"{name}.py"
    assert path.is_file(), f"lesson {path} is missing"
    return jupytext.read(path)


@pytest.mark.parametrize("name", LESSONS)
def test_lesson_has_the_teaching_shape(name):
    """Learning goal first, two or three exercises with hidden answers, the claim and its number last."""
    nb = _read(name)
    assert nb.cells[0].cell_type == "markdown" and "Learning goal" in nb.cells[0].source, \
        "the first cell must state the learning goal"
    markdown = "\n".join(_markdown(nb))
    exercises = re.findall(r"^#+ *Exercise", markdown, flags=re.MULTILINE)
    answers = re.findall(r"<details>", markdown)
    assert 2 <= len(exercises) <= 3, f"{len(exercises)} exercises; a lesson has two or three"
    assert len(answers) >= len(exercises), "every exercise needs a hidden answer (<details>)"
    headings = [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and "The claim and the number" in c.source]
    assert headings, "the lesson must end with 'The claim and the number'"
    tail = nb.cells[headings[-1] + 1:]
    assert any(c.cell_type == "code" and "assert" in c.source for c in tail), \
        "the closing section must compute, print and assert its number"


@pytest.mark.parametrize("name", LESSONS)
def test_lesson_runs_offline(name, tmp_path):
    """Execute the lesson top to bottom; any error (including its closing assert) fails."""
    import nbformat
    from nbclient import NotebookClient

    nb = _read(name)
    client = NotebookClient(nb, km=_kernel_manager(tmp_path / "kernels"), timeout=CELL_TIMEOUT,
                            resources={"metadata": {"path": str(LESSONS_DIR)}})
    start = time.perf_counter()
    client.execute(env=_kernel_env())
    seconds = time.perf_counter() - start

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the lesson showed no figure"
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "CLAIM" in text, "the closing cell must print its claim and number (a line starting 'CLAIM')"
    print(f"{name}: executed in {seconds:.1f} s")

    out = os.environ.get("STYLEKIT_LESSONS_OUT")
    if out:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, folder / f"{name}.ipynb")
        times = folder / "times.json"
        record = json.loads(times.read_text()) if times.is_file() else {}
        record[name] = round(seconds, 1)
        times.write_text(json.dumps(record, indent=1, sort_keys=True))
