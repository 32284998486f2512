"""Natural-language captions of toyfaces, and prompt pairs for text-guided editing.

``caption(attrs, rng)`` describes one face with varied templates and synonyms ("a smiling man
with glasses and a beard, red hair", "cartoon face, long blond hair, frowning", ...). Captions
only ever say what the attributes say: a CLIP model trained on (render, caption) pairs learns the
words of this world and nothing spurious. Gendered words are avoided except "man" for a bearded
face.

``attribute_prompts()`` gives, for each binary attribute, a (positive, neutral) prompt pair such
as ``("a face with glasses", "a face")``: the direction a text-guided edit should follow.
``direction_prompts()`` does the same for the continuous attributes that have words ("a smiling
face" vs "a frowning face").
"""

from __future__ import annotations

import random
from typing import Mapping

import numpy as np

from stylekit.errors import InvalidArgumentError

from .attributes import BINARY_ATTRIBUTES, default_attributes, validate_attributes

__all__ = ["caption", "attribute_prompts", "direction_prompts", "hair_color_name",
           "background_color_name", "CALM_SMILE"]

#: Expressions with ``|smile| <= CALM_SMILE`` are captioned "calm"; above it "smiling", below its
#: negative "frowning" (the words that training, evaluation and the text bench rely on).
CALM_SMILE = 0.15


class _Chooser:
    """Uniform choices and coin flips from a numpy Generator or a ``random.Random``."""

    def __init__(self, rng):
        if rng is None or isinstance(rng, (int, np.integer)):
            rng = np.random.default_rng(rng)
        if isinstance(rng, np.random.Generator):
            self._random = lambda: float(rng.random())
        elif isinstance(rng, random.Random):
            self._random = rng.random
        else:
            raise InvalidArgumentError(
                f"caption() needs a numpy Generator, a random.Random, an int seed or None as rng, "
                f"got {type(rng).__name__}."
            )

    def pick(self, options):
        return options[min(int(self._random() * len(options)), len(options) - 1)]

    def coin(self, p: float) -> bool:
        return self._random() < p

    def shuffle(self, items: list) -> list:
        items = list(items)
        for i in range(len(items) - 1, 0, -1):
            j = min(int(self._random() * (i + 1)), i)
            items[i], items[j] = items[j], items[i]
        return items


def hair_color_name(hair_color: float, red_hair: float) -> tuple[str, ...]:
    """Words for a hair colour (synonyms; the first is the plainest)."""
    if red_hair >= 0.5:
        if hair_color < 0.3:
            return ("auburn", "dark red", "red")
        if hair_color < 0.7:
            return ("red", "copper", "ginger")
        return ("ginger", "bright red", "red", "strawberry")
    if hair_color < 0.15:
        return ("black", "jet-black", "dark")
    if hair_color < 0.42:
        return ("dark brown", "brunette", "brown")
    if hair_color < 0.66:
        return ("brown", "light brown", "chestnut")
    if hair_color < 0.88:
        return ("blond", "golden", "blonde")
    return ("platinum blond", "white-blond", "very light blond")


def background_color_name(background_hue: float) -> tuple[str, ...]:
    """Words for a background hue in [0, 1] (which spans 0..288 degrees of the colour wheel)."""
    deg = 288.0 * background_hue
    for limit, names in ((18, ("red", "salmon")), (45, ("orange", "peach")), (72, ("yellow",)),
                         (160, ("green", "lime")), (205, ("cyan", "teal", "turquoise")),
                         (255, ("blue", "sky blue")), (400, ("purple", "violet", "lilac"))):
        if deg < limit:
            return names
    return ("purple",)  # pragma: no cover


def _hair_length_words(length: float) -> tuple[str, ...]:
    if length < 0.2:
        return ("very short", "cropped", "close-cropped")
    if length < 0.45:
        return ("short", "short", "bobbed")
    if length < 0.7:
        return ("medium-length", "shoulder-length", "chin-length")
    return ("long", "long flowing", "very long")


def _skin_words(tone: float) -> tuple[str, ...]:
    if tone < 0.2:
        return ("pale skin", "fair skin", "very light skin")
    if tone < 0.45:
        return ("light skin", "fair skin", "peachy skin")
    if tone < 0.75:
        return ("tan skin", "brown skin", "olive skin")
    return ("dark skin", "dark brown skin", "deep brown skin")


def _expression(smile: float, mouth_open: float) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(adjectives, phrases) describing the mouth."""
    is_open = mouth_open >= 0.5
    if smile > 0.55:
        if is_open:
            return (("laughing", "grinning", "beaming"), ("a big open smile", "a wide grin"))
        return (("smiling", "happy", "beaming"), ("a big smile", "a broad smile"))
    if smile > CALM_SMILE:
        return (("smiling", "friendly", "cheerful"), ("a gentle smile", "a slight smile"))
    if smile >= -CALM_SMILE:
        return (("calm", "neutral", "straight-faced"), ("a neutral expression", "a straight face"))
    if smile >= -0.55:
        return (("unhappy", "frowning", "glum"), ("a slight frown", "a frown"))
    return (("frowning", "sad", "grumpy"), ("a deep frown", "a sad frown"))


def caption(attrs_one: Mapping[str, float], rng=None) -> str:
    """Describe one toyface in words.

    Args:
        attrs_one: attribute name -> float for one face (missing names take the neutral defaults
            of :func:`default_attributes`; unknown names raise InvalidArgumentError).
        rng: ``numpy.random.Generator``, ``random.Random``, an int seed or None; it picks the
            template, the synonyms and which optional details are mentioned.

    Returns:
        A lower-case English caption, e.g. ``"a smiling man with glasses and a beard, red hair"``.
    """
    v = _one_face(attrs_one)
    c = _Chooser(rng)
    # The parts draw from ``c`` in this order; any change of order changes every caption.
    adjs, phrases = _expression(v["smile"], v["mouth_open"])
    hair = _hair_phrase(c, v)
    template = c.pick(("with", "with", "list", "portrait", "hair_first"))
    noun = _noun(c, v, template)
    withs, descr = _features(c, v, noun)
    extras = c.shuffle(_extras(c, v, hair))
    use_phrase = c.coin(0.35)
    adj = c.pick(adjs)
    if template == "list":
        return _list_caption(c, withs + extras + descr, phrases if use_phrase else None, adj)
    if template == "hair_first":
        lead = f"{_article(adj)} {adj} {noun} with {hair}"
        tail = withs + [e for e in extras if e != hair] + descr
        return lead + (", " + ", ".join(tail) if tail else "")
    subject = f"{_article(adj)} {adj} {noun}" if not use_phrase else f"{_article(noun)} {noun}"
    if use_phrase:
        withs = [c.pick(phrases)] + withs
    sentence = subject + (" with " + _join_and(withs) if withs else "")
    tail = extras + descr
    if template == "portrait":
        sentence = "portrait of " + sentence
    return sentence + (", " + ", ".join(tail) if tail else "")


def _one_face(attrs_one: Mapping[str, float]) -> dict[str, float]:
    """Validated attribute values of one face, defaults filled in: name -> float."""
    checked = validate_attributes(attrs_one)
    values = default_attributes()
    for name, arr in checked.items():
        if arr.ndim != 0 and arr.size != 1:
            raise InvalidArgumentError(
                f"caption() describes one face, so attribute {name!r} must be a single number."
            )
        values[name] = float(np.asarray(arr).reshape(()))
    return values


def _hair_phrase(c: _Chooser, v: Mapping[str, float]) -> str:
    """"long blond hair", "blond hair" or, for very short hair sometimes, "a blond buzz cut"."""
    hair_col = c.pick(hair_color_name(v["hair_color"], v["red_hair"]))
    hair_len = c.pick(_hair_length_words(v["hair_length"]))
    hair = f"{hair_len} {hair_col} hair" if c.coin(0.7) else f"{hair_col} hair"
    if v["hair_length"] < 0.2 and c.coin(0.3):
        hair = f"a {hair_col} buzz cut"
    return hair


def _noun(c: _Chooser, v: Mapping[str, float], template: str) -> str:
    """The subject: a man for some bearded faces, otherwise a neutral word for a face."""
    if template != "list" and v["beard"] >= 0.5 and c.coin(0.6):
        return c.pick(("man", "bearded man", "guy"))
    # the list template names no subject, so the beard must be said among the features
    return c.pick(("person", "face", "character", "cartoon person", "toy face", "cartoon character"))


def _features(c: _Chooser, v: Mapping[str, float], noun: str) -> tuple[list[str], list[str]]:
    """``(withs, descr)``: features said as "with X" (glasses, beard, eyes, mouth), and free-standing
    descriptors of what is absent ("no glasses", "clean-shaven")."""
    bearded = v["beard"] >= 0.5
    withs: list[str] = []
    descr: list[str] = []
    if v["glasses"] >= 0.5:
        withs.append(c.pick(("glasses", "eyeglasses", "round glasses", "spectacles")))
    elif c.coin(0.15):
        descr.append(c.pick(("no glasses", "without glasses")))
    if bearded and "beard" not in noun:
        withs.append(c.pick(("a beard", "a full beard", "a thick beard")))
    elif not bearded and c.coin(0.15):
        descr.append(c.pick(("clean-shaven", "no beard")))
    if v["eyes_open"] < 0.5:
        withs.append(c.pick(("closed eyes", "eyes closed", "shut eyes")))
    elif c.coin(0.4):
        withs.append(c.pick(("eyes open", "open eyes", "wide-open eyes")))
    if v["mouth_open"] >= 0.5:
        if c.coin(0.8):
            withs.append(c.pick(("an open mouth", "mouth open", "a wide-open mouth")))
    elif c.coin(0.4):
        withs.append(c.pick(("a closed mouth", "mouth closed")))
    return withs, descr


def _extras(c: _Chooser, v: Mapping[str, float], hair: str) -> list[str]:
    """Optional details, each mentioned by chance: hair, skin, background, tilt, turn, light."""
    extras: list[str] = []
    if c.coin(0.8):
        extras.append(hair)
    if c.coin(0.4):
        extras.append(c.pick(_skin_words(v["skin_tone"])))
    if c.coin(0.35):
        extras.append(f"{c.pick(background_color_name(v['background_hue']))} background")
    if abs(v["rotation"]) > 12 and c.coin(0.4):
        side = "left" if v["rotation"] > 0 else "right"
        extras.append(c.pick((f"head tilted to the {side}", "tilted head")))
    if abs(v["yaw"]) > 12 and c.coin(0.4):
        side = "right" if v["yaw"] > 0 else "left"
        extras.append(c.pick((f"turned to the {side}", f"looking to the {side}")))
    if abs(v["light_direction"]) > 50 and c.coin(0.25):
        side = "right" if v["light_direction"] > 0 else "left"
        extras.append(f"lit from the {side}")
    return extras


def _list_caption(c: _Chooser, details: list[str], phrases: tuple[str, ...] | None, adj: str) -> str:
    """"cartoon face, <the details and the expression, in a random order>"; the expression is one of
    ``phrases`` (picked after the head word) or, when ``phrases`` is None, the adjective ``adj``."""
    head = c.pick(("cartoon face", "toy face", "drawing of a face", "cartoon portrait"))
    expression = c.pick(phrases) if phrases is not None else adj
    return ", ".join([head] + c.shuffle(details + [expression]))


def _join_and(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def attribute_prompts() -> dict[str, tuple[str, str]]:
    """For each binary attribute, a (positive, neutral) prompt pair.

    The positive prompt describes the attribute at 1.0; the neutral one is the same sentence
    without it. A text-guided edit toward ``positive - neutral`` should switch the attribute on.
    """
    prompts = {
        "red_hair": ("a face with red hair", "a face"),
        "mouth_open": ("a face with an open mouth", "a face"),
        "eyes_open": ("a face with open eyes", "a face"),
        "glasses": ("a face with glasses", "a face"),
        "beard": ("a face with a beard", "a face"),
    }
    return {name: prompts[name] for name in BINARY_ATTRIBUTES}


def direction_prompts() -> dict[str, tuple[str, str]]:
    """For continuous attributes that have words: (prompt for the high end, prompt for the low end)."""
    return {
        "smile": ("a smiling face", "a frowning face"),
        "hair_length": ("a face with long hair", "a face with short hair"),
        "hair_color": ("a face with blond hair", "a face with black hair"),
        "skin_tone": ("a face with dark skin", "a face with pale skin"),
    }
