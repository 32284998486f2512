"""Assemble (and validate) a deployable Hugging Face Space folder from this repository.

Usage: ``python hf_space/assemble.py OUT_DIR [--check]``

The Space gets: README.md with front matter (from this folder), requirements.txt, app.py, and the
``stylekit`` and ``demos`` packages (shipped weights included). ``--check`` only validates an
existing folder. Exit status 0 means the folder is deployable.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REQUIRED_FRONT_MATTER = ("title", "sdk", "sdk_version", "app_file")
#: what requirements.txt must install besides torch and gradio: face alignment (dlib-bin and its landmark model)
#: and ZeroGPU support (spaces)
REQUIRED_PACKAGES = ("torch", "gradio", "dlib-bin", "face-recognition-models", "spaces")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")


def read_front_matter(readme: Path) -> dict[str, str]:
    """Top-level ``key: value`` pairs of the YAML front matter between the first two ``---`` lines."""
    lines = readme.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].strip() != "---":
        raise ValueError(f"{readme} has no front matter (must start with a '---' line)")
    meta: dict[str, str] = {}
    for line in lines[1:]:
        if line.strip() == "---":
            return meta
        if line and not line.startswith((" ", "-", "#")) and ":" in line:
            key, value = line.split(":", 1)
            meta[key.strip()] = value.strip().strip('"')
    raise ValueError(f"{readme}: front matter is not closed by a '---' line")


def requirement_names(path: Path) -> set[str]:
    """The package names a requirements file installs (lower case, ``_`` read as ``-``)."""
    import re

    names = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(re.split(r"[\s\[<>=!~;@]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def validate(folder: Path) -> list[str]:
    """Problems that would stop the Space from starting (empty list: deployable)."""
    problems = []
    readme = folder / "README.md"
    if not readme.is_file():
        return [f"{readme} is missing"]
    try:
        meta = read_front_matter(readme)
    except ValueError as exc:
        return [str(exc)]
    for key in REQUIRED_FRONT_MATTER:
        if key not in meta:
            problems.append(f"front matter lacks {key!r}")
    if meta.get("sdk") != "gradio":
        problems.append("sdk must be gradio")
    if not (folder / meta.get("app_file", "app.py")).is_file():
        problems.append(f"app file {meta.get('app_file')!r} is missing")
    if not (folder / "requirements.txt").is_file():
        problems.append("requirements.txt is missing")
    else:
        missing = [p for p in REQUIRED_PACKAGES if p not in requirement_names(folder / "requirements.txt")]
        if missing:
            problems.append(f"requirements.txt does not install {', '.join(missing)}")
    for package in ("stylekit", "demos"):
        if not (folder / package / "__init__.py").is_file():
            problems.append(f"package {package}/ is missing")
    if not (folder / "stylekit" / "toyfaces" / "weights" / "generator.safetensors").is_file():
        problems.append("the offline default model stylekit/toyfaces/weights/generator.safetensors is missing")
    return problems


def assemble(out: Path) -> Path:
    """Copy everything a Space needs into ``out`` (replacing it) and return it."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copy2(HERE / "README.md", out / "README.md")
    shutil.copy2(HERE / "requirements.txt", out / "requirements.txt")
    shutil.copy2(ROOT / "app.py", out / "app.py")
    for package in ("stylekit", "demos"):
        shutil.copytree(ROOT / package, out / package, ignore=IGNORE)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the Space folder to write (or check)")
    parser.add_argument("--check", action="store_true", help="only validate an existing folder")
    args = parser.parse_args(argv)
    folder = args.out if args.check else assemble(args.out)
    problems = validate(folder)
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    if not problems:
        print(f"{folder} is a deployable Space (run: cd {folder} && python app.py)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
