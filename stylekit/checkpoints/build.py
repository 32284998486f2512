"""Building networks from a config and loading a state dict into them, strictly (shared by every loader)."""

from __future__ import annotations

import importlib

from ..errors import CheckpointError, StylekitError

# arch name -> (module, class) of the Generator subclass implementing it
ARCHITECTURES = {
    "stylegan2": ("stylekit.networks.stylegan2", "StyleGAN2Generator"),
    "stylegan3": ("stylekit.networks.stylegan3", "StyleGAN3Generator"),
}

def build_generator(arch: str, config: dict, *, source: str = "<config>"):
    """Construct an (untrained) generator of architecture ``arch`` from its constructor ``config``."""
    if arch not in ARCHITECTURES:
        raise CheckpointError(f"{source}: unknown architecture {arch!r}; stylekit knows {sorted(ARCHITECTURES)}.")
    module_name, class_name = ARCHITECTURES[arch]
    cls = getattr(importlib.import_module(module_name), class_name)
    try:
        return cls(dict(config))
    except StylekitError:
        raise
    except (TypeError, ValueError, KeyError, AssertionError, RuntimeError) as exc:
        raise CheckpointError(f"{source}: cannot build a {arch} generator from its config ({exc}).") from exc


def load_state_checked(G, state: dict, *, source: str, what: str | None = None) -> None:
    """Load ``state`` into the module ``G`` requiring every name and shape to fit; says which tensor did not.

    ``what`` names the architecture in messages (default ``G.arch``, e.g. "stylegan2"); floating-point
    tensors are loaded as float32.
    """
    what = what or getattr(G, "arch", type(G).__name__)
    expected = G.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        raise CheckpointError(f"{source}: tensor {unexpected[0]!r} (shape {tuple(state[unexpected[0]].shape)}) does "
                              f"not fit the {what} architecture read from the file"
                              + (f" ({len(unexpected)} such tensors)" if len(unexpected) > 1 else "") + ".")
    if missing:
        raise CheckpointError(f"{source}: the checkpoint lacks tensor {missing[0]!r} (expected shape "
                              f"{tuple(expected[missing[0]].shape)}) that the {what} architecture needs"
                              + (f" ({len(missing)} missing)" if len(missing) > 1 else "") + ".")
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise CheckpointError(f"{source}: tensor {key!r} has shape {tuple(value.shape)}, but the architecture "
                                  f"read from the file expects {tuple(expected[key].shape)}.")
    G.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=True)
