"""The public names mean one thing: every module imports, no lazily exported name is (or turns into) a
submodule, the entry points the README names are functions, and the README's Python snippets run."""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
import re
import types
from pathlib import Path

import pytest

import stylekit

ROOT = Path(__file__).resolve().parents[1]


def _all_module_names() -> list[str]:
    """Every module of stylekit except the ``__main__`` entry scripts (importing those runs a command)."""
    names = ["stylekit"]
    for info in pkgutil.walk_packages(stylekit.__path__, prefix="stylekit."):
        if info.name.rsplit(".", 1)[-1] != "__main__":
            names.append(info.name)
    return sorted(names)


@pytest.fixture(scope="module")
def modules() -> dict[str, types.ModuleType]:
    """Every module, imported; importing them all first is what used to turn lazy names into submodules."""
    return {name: importlib.import_module(name) for name in _all_module_names()}


def test_every_module_imports(modules):
    assert {"stylekit.invert.refine", "stylekit.toyfaces.renderer", "stylekit.networks.encoders",
            "stylekit.invert.presets", "stylekit.edit.presets"} <= set(modules)


def test_no_exported_name_is_a_submodule(modules):
    """A package's lazily exported names (``_LAZY``) and ``__all__`` resolve to objects, not modules
    (except the submodules a package lists on purpose in ``_SUBMODULES``), after every import."""
    checked = 0
    for name, module in modules.items():
        if not hasattr(module, "__path__"):
            continue
        submodules = set(getattr(module, "_SUBMODULES", ()))
        exported = set(getattr(module, "_LAZY", {})) | set(getattr(module, "__all__", ()))
        for attr in sorted(exported - submodules):
            value = getattr(module, attr)
            assert not isinstance(value, types.ModuleType), f"{name}.{attr} is the module {value.__name__}"
            checked += 1
        for attr in submodules:
            assert isinstance(getattr(module, attr), types.ModuleType), f"{name}.{attr} should be a submodule"
    assert checked > 40


@pytest.mark.parametrize("dotted", [
    "stylekit.toyfaces.render", "stylekit.toyfaces.render_batch", "stylekit.toyfaces.sample_attributes",
    "stylekit.invert.invert", "stylekit.invert.project", "stylekit.invert.invert_composite", "stylekit.invert.encode",
    "stylekit.invert.restyle", "stylekit.invert.pivotal_tuning", "stylekit.edit.edit", "stylekit.edit.crossover",
    "stylekit.edit.ganspace.component_coordinates", "stylekit.load_generator",
])
def test_readme_entry_points_are_functions(modules, dotted):
    package, name = dotted.rsplit(".", 1)
    assert inspect.isfunction(getattr(modules[package], name)), f"{dotted} is not a function"


def test_invert_is_a_plain_package(modules):
    assert isinstance(stylekit.invert, types.ModuleType) and not callable(stylekit.invert)
    assert stylekit.invert is modules["stylekit.invert"]


def test_toyfaces_render_works_after_every_import(modules):
    toyfaces = modules["stylekit.toyfaces"]
    image = toyfaces.render(toyfaces.default_attributes(), size=64, seed=0)
    assert image.size == (64, 64)


def _readme_python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)


def _two_steps(fn):
    @functools.wraps(fn)
    def quick(*args, **kwargs):
        if kwargs.get("method") != "encoder":  # one forward pass: it takes no steps
            kwargs["steps"] = 2
        return fn(*args, **kwargs)

    return quick


def test_readme_python_snippets_run(monkeypatch):
    """The README's ```python blocks run in order on the shipped toyfaces world (one namespace, as a reader
    would paste them). Every public function of stylekit.text / stylekit.invert that takes ``steps`` runs 2
    steps, so the test stays short; every call and name is the README's own."""
    import stylekit.invert
    import stylekit.text

    for package in (stylekit.text, stylekit.invert):
        for name in package.__all__:
            fn = getattr(package, name)
            if inspect.isfunction(fn) and "steps" in inspect.signature(fn).parameters:
                monkeypatch.setattr(package, name, _two_steps(fn))
    blocks = _readme_python_blocks()
    assert blocks, "the README has no ```python blocks"
    namespace: dict = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"README.md python block {i + 1}", "exec"), namespace)  # noqa: S102 - our own README


def _readme_cli_lines() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Command line", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_readme_command_line_examples_run(tmp_path):
    """The README's `python -m stylekit ...` lines run as written (network.pkl is a conformance checkpoint in
    NVIDIA's format); the relevance line names a Hub model, so offline it must fail with the supply advice."""
    import os
    import shutil
    import subprocess
    import sys

    shutil.copy(ROOT / "tests" / "fixtures" / "nvidia" / "sg2_small.pkl", tmp_path / "network.pkl")
    env = dict(os.environ, STYLEKIT_OFFLINE="1", HF_HUB_OFFLINE="1", STYLEKIT_CACHE=str(tmp_path / "cache"),
               HF_HOME=str(tmp_path / "hf"), OMP_NUM_THREADS="1")
    lines = [line for line in _readme_cli_lines() if line.startswith("python -m stylekit ")]
    assert len(lines) >= 5, lines
    for line in lines:
        args = line.split()[3:]
        out = subprocess.run([sys.executable, "-m", "stylekit", *args], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=300)
        if args[0] == "relevance":
            assert out.returncode != 0 and "ffhq-1024" in out.stderr and "STYLEKIT_HUB_MIRROR" in out.stderr, out.stderr
        else:
            assert out.returncode == 0, f"{line}: {out.stderr[-2000:]}"
    assert (tmp_path / "network.safetensors").is_file() and (tmp_path / "grid.png").is_file()
