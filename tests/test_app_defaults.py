"""Every tab's default action on the default model shows a visible change and keeps the face (issue 22,
item 1), and its caption states what was done (item 2): run through the tabs' own callbacks in-process,
from the tabs' start (demos.common.DEFAULT_SEED, psi 0.7), measured as demos/defaults_check.py measures the presets."""

from __future__ import annotations

import sys

import pytest
import torch

from gallery_helpers import ROOT

sys.path.insert(0, str(ROOT))
pytest.importorskip("gradio")

#: action (a substring of demos.defaults_check.actions' names) -> the attribute change it must show, in
#: units of the attribute's range (None: the picture must change, whatever the predictor reads)
ACTIONS = {
    "interfacegan": 0.5,   # glasses appear
    "ganspace": None,
    "sefa": None,
    "stylespace": 0.5,     # glasses appear
    "local part transfer": 0.5,  # the hair turns red
    "analogy": 0.25,       # a smile appears (seed 0, the former start, already smiled: 0.94 of 1)
    "text global": 0.5,    # glasses appear
}


@pytest.fixture(scope="module")
def world():
    from demos.common import get_generator
    from demos.defaults_check import Judge, actions

    G = get_generator("toyfaces")
    return G, Judge(G), actions(G)


@pytest.mark.parametrize("action", list(ACTIONS))
def test_the_default_action_changes_the_picture_and_keeps_the_face(world, action):
    from demos.common import DEFAULT_SEED
    from demos.defaults_check import FLOOR, TYPICAL, _measure, _seed_latent

    G, judge, actions = world
    (name, (run, attribute)), = [(k, v) for k, v in actions.items() if action in k]
    before, after = run(_seed_latent(G, DEFAULT_SEED))
    m = _measure(judge, before, after, attribute)
    assert m["change"] > FLOOR, (name, m)
    assert m["typicality"] < TYPICAL, (name, m)
    wanted = ACTIONS[action]
    if wanted is not None:  # that share of the attribute's range, or half the way to its top when less is left
        j = list(judge.predictor.attribute_names).index(attribute)
        headroom = float(judge.predictor.high[j]) - m["before"]
        assert m["after"] - m["before"] > min(wanted * judge.span(attribute), 0.5 * headroom), (name, m)
        assert m["largest"] == attribute or (attribute, m["largest"]) == ("smile", "mouth_open"), (name, m)


def test_the_start_face_is_neutral(world):
    """The tabs start from a face the default edits change visibly: eyes open, no glasses, beard or red hair, the
    mouth closed and no smile (seed 0, the former start, smiled with closed eyes, so the glasses defaults mostly
    opened its eyes and the analogy's smile had nothing to add)."""
    from demos.common import DEFAULT_SEED
    from demos.defaults_check import _seed_latent

    G, judge, _ = world
    r = {k: float(v[0]) for k, v in judge.read(_seed_latent(G, DEFAULT_SEED).render(G)).items()}
    assert r["eyes_open"] > 0.9 and r["mouth_open"] < 0.1 and abs(r["smile"]) < 0.1, r
    assert max(r["glasses"], r["beard"], r["red_hair"]) < 0.1, r


def test_the_analogy_pair_adds_a_smile_and_nothing_else(world):
    """The example pair's change, on development faces that do not smile yet: the smile rises (the mouth may
    open: the example smiles with an open mouth) and no other attribute moves more than a quarter of its range.
    A pair inverted by W optimisation failed this on the 2026-12-05 generator (eyes, hair or glasses flipped)."""
    from demos import morph
    from demos.defaults_check import _seed_latent
    from stylekit.edit import analogy
    from stylekit.edit.presets import ANALOGY

    G, judge, _ = world
    a, b = morph.example_pair("toyfaces", G)
    seeds = [1001, 1003, 1004, 1005]  # development seeds whose predicted smile is below 0.3
    targets = [_seed_latent(G, s) for s in seeds]
    before = judge.read(torch.cat([t.render(G) for t in targets]))
    after = judge.read(torch.cat([analogy(G, t, a, b, strength=ANALOGY.strength).render(G) for t in targets]))
    assert (before["smile"] < 0.3).all(), before["smile"]
    assert float((after["smile"] - before["smile"]).mean()) > 0.3 * judge.span("smile"), (before["smile"], after["smile"])
    for name in judge.predictor.attribute_names:
        if name not in ("smile", "mouth_open"):
            moved = (after[name] - before[name]).abs().max() / judge.span(name)
            assert moved < 0.25, (name, float(moved))


def test_captions_state_the_applied_values_and_the_readings(world):
    from demos import edit, local, morph, stylespace
    from stylekit.edit.presets import ANALOGY, PART_TRANSFER, SEFA, STYLESPACE

    _, info, _ = edit.edit_sefa("toyfaces", SEFA.direction, SEFA.strength, SEFA.layers, None)
    assert f"{SEFA.strength:+g} in W" in info and "W+ rows 0-8 of 10" in info and "9 convolution style layers" in info
    assert "predicted" in info and "->" in info
    _, info, _ = edit.edit_ganspace("toyfaces", 0, 3, "coarse", None)
    assert "the coarse layers, W+ rows 0-3 of 10" in info and "+3 standard deviations" in info
    _, info, _ = stylespace.stylespace_edit("toyfaces", STYLESPACE.layer, STYLESPACE.channel, STYLESPACE.amount,
                                            STYLESPACE.attribute, None)
    assert f"{STYLESPACE.layer} channel {STYLESPACE.channel}" in info and f"{STYLESPACE.amount:+g} std" in info
    assert f"{STYLESPACE.attribute} 0.00 -> 1.00" in info  # the start face has no glasses; the channel puts them on
    _, info, _ = morph.analogy("toyfaces", morph.PAIRS[0], 3, 4, ANALOGY.strength, ANALOGY.layers, None)
    assert f"{ANALOGY.strength:g} x (smiling - neutral example)" in info and "all 10 W+ rows" in info
    assert "predicted: **smile" in info
    _, info, _, _ = local.local_transfer("toyfaces", PART_TRANSFER.reference_seed, local.DEFAULT_PART,
                                         PART_TRANSFER.strength, None)
    assert f"Part {local.DEFAULT_PART} ({PART_TRANSFER.part}) of seed {PART_TRANSFER.reference_seed}" in info
    assert "style channels changed" in info and "->" in info


def test_the_parts_are_named_and_the_default_part_is_the_presets(world):
    from demos import local
    from stylekit.edit.presets import PART_TRANSFER

    G = world[0]
    names = local.part_names("toyfaces", G)
    assert names[local.DEFAULT_PART] == PART_TRANSFER.part == "hair" and names[2] == "skin"
    assert {"background", "hair", "skin"} <= set(names)
    assert local.default_part("toyfaces", G) == local.DEFAULT_PART
    key = local.legend(names)
    assert all(f"{i} {name}" in key for i, name in enumerate(names))


def test_the_text_tab_takes_its_presets_and_clip_from_the_model(world):
    from demos import text
    from stylekit.text.presets import GLOBAL_DIRECTIONS, MAPPER, OPTIMIZE

    toy = text.settings_for("toyfaces")
    assert (toy.preset, toy.clip) == ("toyfaces", "toyfaces") and toy.global_ is GLOBAL_DIRECTIONS["toyfaces"]
    ffhq = text.settings_for("ffhq-1024")
    assert (ffhq.preset, ffhq.clip) == ("styleclip", "ViT-B-32")
    assert ffhq.global_ is GLOBAL_DIRECTIONS["styleclip"] and ffhq.optimise is OPTIMIZE["styleclip"]
    assert ffhq.mapping is MAPPER["toyfaces"]  # no styleclip mapper preset: the toyfaces one
    assert text.settings_for("/some/file.pkl").preset == "toyfaces"
    strength, steps, channels, beta, whitened = text.model_defaults("ffhq-1024", "global")
    assert strength["value"] == GLOBAL_DIRECTIONS["styleclip"].alpha and beta["value"] == 0.1
    assert whitened["value"] is False and channels["value"] == 0


def test_controls_a_mode_ignores_are_greyed_out_or_hidden():
    from demos import morph, text

    strength, steps, channels, beta, whitened, neutral = text.method_controls("optimize")
    assert not strength["interactive"] and steps["interactive"] and not channels["interactive"]
    assert neutral["interactive"]
    strength, steps, channels, beta, whitened, neutral = text.method_controls("mapper")
    assert strength["interactive"] and steps["interactive"] and not neutral["interactive"]
    assert all(u["visible"] is False for u in morph.pair_controls(morph.PAIRS[0]))
    assert all(u["visible"] is True for u in morph.pair_controls("seeds"))


@pytest.mark.parametrize("attribute,seed", [("beard", None), ("glasses", None), ("smile", 8)])
def test_find_channels_applies_a_channel_that_moves_the_attribute(world, attribute, seed):
    """The channels are tried, not only ranked by gradient: on the start face (seed None) a beard's or glasses'
    probability sits at 0, where the gradient of the probability vanishes (on seed 0, the former start, the plain
    ranking applied a channel that moved beard 0.00 -> 0.06); the strongest tried channel moves the reading to the
    top. The smile is found on seed 8, which frowns (-0.77)."""
    from demos import stylespace
    from demos.defaults_check import _seed_latent
    from stylekit.edit.presets import STYLESPACE

    latent = None if seed is None else _seed_latent(world[0], seed)
    table, layer, channel, amount = stylespace.stylespace_find("toyfaces", attribute, 4, latent)
    assert len(table.splitlines()) == 5 and f"{attribute} at +-{abs(STYLESPACE.amount):g} std" in table
    _, info, _ = stylespace.stylespace_edit("toyfaces", layer, channel, amount, attribute, latent)
    reading = info.split(f"predicted: **{attribute} ")[1].split("**")[0]
    before, after = (float(v) for v in reading.split(" -> "))
    top = 0.7 if attribute == "smile" else 0.9  # smile runs from -1 (frown) to 1, the binaries from 0 to 1
    assert after > before + 0.3 and after > top, info
