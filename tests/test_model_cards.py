"""Every shipped weights file has its model card beside it."""

from __future__ import annotations

from pathlib import Path

WEIGHTS = Path(__file__).resolve().parents[1] / "stylekit" / "toyfaces" / "weights"


def test_every_shipped_weights_file_has_a_card_with_the_same_stem():
    files = sorted(WEIGHTS.glob("*.safetensors"))
    assert len(files) >= 6, f"expected the shipped toyfaces weights in {WEIGHTS}, found {[f.name for f in files]}"
    missing = [f.name for f in files if not f.with_suffix(".md").is_file()]
    assert missing == [], f"weights files without a model card (<stem>.md) beside them: {missing}"
    for f in files:
        card = f.with_suffix(".md").read_text(encoding="utf-8")
        assert card.startswith("# ") and f.name in card, f"{f.with_suffix('.md').name} does not describe {f.name}"
