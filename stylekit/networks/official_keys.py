"""One table of encoder tensor names: stylekit's :class:`~stylekit.networks.encoders.StyleEncoder` <-> the
official pSp / e4e / ReStyle checkpoints (their ``encoder.*`` keys, without the ``encoder.`` prefix).

Both directions read the same pairs (:data:`KEY_PAIRS`); the loader (:mod:`stylekit.invert.encoder`) maps
official -> stylekit, the rehearsal writer (:mod:`stylekit.rehearsal.encoders`) stylekit -> official.
``{k}``, ``{i}``, ``{j}`` are integers, ``{p}`` a parameter or buffer name; ``{2j}`` is twice ``{j}`` (the
official heads are ``Sequential(conv, LeakyReLU, conv, LeakyReLU, ...)``, so the convs sit at even indices).

Two bodies have their own names (the official networks, ``models/encoders/*.py`` of pSp / e4e / ReStyle):

- ``'ir'``: ArcFace's IR(-SE) 50 (``input_layer`` = Sequential(conv3x3, BN, PReLU); units
  ``body.{k}.res_layer`` = Sequential(BN, conv, PReLU, conv, BN[, SEModule]) and ``shortcut_layer``).
- ``'resnet'``: torchvision's ResNet-34 ``layer1..4`` flattened into ``body.{k}`` (BasicBlock: ``conv1``,
  ``bn1``, ``conv2``, ``bn2``, ``downsample`` = Sequential(conv1x1, BN)), after ReStyle's stem ``conv1``
  (7x7, stride 2), ``bn1``, ``relu`` (a PReLU).

The heads (``styles.{i}``, GradualStyleBlock) and pSp's laterals (``latlayer1`` / ``latlayer2``) are shared.
"""

from __future__ import annotations

import re

from ..errors import CheckpointError

_P = "weight|bias|running_mean|running_var|num_batches_tracked"

#: (body or None for both, stylekit template, official template).
KEY_PAIRS: tuple[tuple[str | None, str, str], ...] = (
    ("ir", "stem.conv.{p}", "input_layer.0.{p}"),
    ("ir", "stem.bn.{p}", "input_layer.1.{p}"),
    ("ir", "stem.act.{p}", "input_layer.2.{p}"),
    ("ir", "body.{k}.shortcut.conv.{p}", "body.{k}.shortcut_layer.0.{p}"),
    ("ir", "body.{k}.shortcut.bn.{p}", "body.{k}.shortcut_layer.1.{p}"),
    ("ir", "body.{k}.bn_in.{p}", "body.{k}.res_layer.0.{p}"),
    ("ir", "body.{k}.conv1.{p}", "body.{k}.res_layer.1.{p}"),
    ("ir", "body.{k}.act.{p}", "body.{k}.res_layer.2.{p}"),
    ("ir", "body.{k}.conv2.{p}", "body.{k}.res_layer.3.{p}"),
    ("ir", "body.{k}.bn_out.{p}", "body.{k}.res_layer.4.{p}"),
    ("ir", "body.{k}.se.fc1.{p}", "body.{k}.res_layer.5.fc1.{p}"),
    ("ir", "body.{k}.se.fc2.{p}", "body.{k}.res_layer.5.fc2.{p}"),
    ("resnet", "stem.conv.{p}", "conv1.{p}"),
    ("resnet", "stem.bn.{p}", "bn1.{p}"),
    ("resnet", "stem.act.{p}", "relu.{p}"),
    ("resnet", "body.{k}.conv1.{p}", "body.{k}.conv1.{p}"),
    ("resnet", "body.{k}.bn1.{p}", "body.{k}.bn1.{p}"),
    ("resnet", "body.{k}.conv2.{p}", "body.{k}.conv2.{p}"),
    ("resnet", "body.{k}.bn2.{p}", "body.{k}.bn2.{p}"),
    ("resnet", "body.{k}.shortcut.conv.{p}", "body.{k}.downsample.0.{p}"),
    ("resnet", "body.{k}.shortcut.bn.{p}", "body.{k}.downsample.1.{p}"),
    (None, "heads.{i}.convs.{j}.{p}", "styles.{i}.convs.{2j}.{p}"),
    (None, "heads.{i}.linear.{p}", "styles.{i}.linear.{p}"),
    (None, "lateral_mid.{p}", "latlayer1.{p}"),
    (None, "lateral_fine.{p}", "latlayer2.{p}"),
)

_FIELD = re.compile(r"\{(2?)([a-z])\}")


def _pattern(template: str) -> re.Pattern:
    out, pos = [], 0
    for m in _FIELD.finditer(template):
        out.append(re.escape(template[pos:m.start()]))
        name = m.group(2)
        out.append(f"(?P<{name}>{_P})" if name == "p" else rf"(?P<{name}>\d+)")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("".join(out))


def _doubled(template: str) -> set[str]:
    return {m.group(2) for m in _FIELD.finditer(template) if m.group(1)}


def _translate(key: str, src: str, dst: str) -> str | None:
    m = _pattern(src).fullmatch(key)
    if m is None:
        return None
    values = dict(m.groupdict())
    for name in _doubled(src):  # official index 2j -> j
        n = int(values[name])
        if n % 2:
            return None
        values[name] = str(n // 2)
    for name in _doubled(dst):  # j -> official index 2j
        values[name] = str(2 * int(values[name]))

    def fill(f: re.Match) -> str:
        return values[f.group(2)]

    return _FIELD.sub(fill, dst)


def stylekit_to_official_key(key: str, body: str = "ir") -> str:
    """stylekit's encoder tensor name (without ``encoder.``) -> the official name, for an encoder whose config
    has ``body`` ``'ir'`` or ``'resnet'``; KeyError for a name with no official counterpart."""
    for pair_body, ours, theirs in KEY_PAIRS:
        if pair_body in (None, body):
            found = _translate(key, ours, theirs)
            if found is not None:
                return found
    raise KeyError(f"no official name for encoder tensor {key!r} (body {body!r})")


def official_to_stylekit_key(key: str) -> str:
    """One official pSp / e4e / ReStyle encoder key (without ``encoder.``) -> stylekit's name.

    The two bodies' official names do not overlap, so no body is needed here; an unknown name raises
    :class:`~stylekit.errors.CheckpointError`.
    """
    for _, ours, theirs in KEY_PAIRS:
        found = _translate(key, theirs, ours)
        if found is not None:
            return found
    raise CheckpointError(f"unexpected encoder tensor {key!r}: not part of the pSp / e4e / ReStyle encoder "
                          "architectures stylekit reads (IR-SE-50 or ResNet-34 body, GradualStyleBlock heads).")
