"""The app benchmark calls every endpoint of the gallery (so a new tab cannot escape the latency bar)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_app_benchmark_covers_every_endpoint(tmp_path):
    sys.path.insert(0, str(ROOT))
    try:
        import app
    finally:
        sys.path.remove(str(ROOT))
    from stylekit.bench.app import NOT_TIMED, _calls, _inputs

    demo = app.build_app()
    names = {fn.api_name for fn in demo.fns.values() if fn.api_name and fn.api_visibility != "private"}
    called = [name for name, _ in _calls(_inputs(tmp_path), 2)]
    assert len(called) == len(set(called))
    missing = names - set(called) - set(NOT_TIMED)
    assert missing == set(), f"endpoints the app benchmark does not time: {sorted(missing)}"
    assert set(called) <= names and set(NOT_TIMED) <= names
