"""The ``Latent`` type: a latent code that knows which space it lives in.

Every inversion returns one and every edit takes and returns one, so a code can flow from the
encoder, through any number of edits, to the renderer without anyone guessing its shape::

    lat = Latent.from_seed(G, 42, psi=0.7)            # space 'w', tensor [1, num_ws, w_dim]
    img = lat.render(G)                                # [1, 3, R, R] in about [-1, 1]

Spaces and tensor shapes (``N`` is the batch size):

- ``'z'``:  ``[N, z_dim]`` standard-normal inputs of the mapping network.
- ``'w'``:  ``[N, num_ws, w_dim]`` with every row equal (one W vector broadcast to all layers).
- ``'w+'``: ``[N, num_ws, w_dim]``, rows free (one W vector per synthesis layer).
- ``'s'``:  StyleSpace, a list with one ``[N, channels]`` tensor per entry of ``G.style_layers``
  (the outputs of the per-layer affine maps, see ``Generator.ws_to_styles``).

A latent may also carry ``noise`` (explicit per-layer noise maps, as inversion estimates them;
see ``Generator.noise_shapes``) and ``generator`` (a copy of the generator fine-tuned for this code,
as Pivotal Tuning Inversion produces); :meth:`Latent.render` uses both when present.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .errors import InvalidArgumentError

SPACES = ("z", "w", "w+", "s")

__all__ = ["Latent", "SPACES"]


def _shape(t) -> str:
    return str(tuple(t.shape)) if isinstance(t, torch.Tensor) else type(t).__name__


@dataclass(eq=False)
class Latent:
    """A latent code plus the space it lives in.

    Attributes:
        space: ``'z'``, ``'w'``, ``'w+'`` or ``'s'`` (see the module docstring for shapes).
        tensor: the code: ``[N, z_dim]`` (z), ``[N, num_ws, w_dim]`` (w, w+) or a list of
            ``[N, C_l]`` tensors, one per style layer (s).
        noise: optional explicit noise maps, one per ``G.noise_shapes()`` entry, each
            ``[N or 1, 1, H, W]``; None renders with the ``noise_mode`` asked for.
        generator: optional generator to render with instead of the one passed to
            :meth:`render` (a PTI-tuned copy); it must have the same sizes.
    """

    space: str
    tensor: torch.Tensor | list[torch.Tensor]
    noise: list[torch.Tensor] | None = None
    generator: torch.nn.Module | None = None

    def __post_init__(self) -> None:
        if self.space not in SPACES:
            raise InvalidArgumentError(f"unknown latent space {self.space!r}; use one of {', '.join(SPACES)}.")
        if self.space == "s":
            if isinstance(self.tensor, tuple):
                self.tensor = list(self.tensor)
            if (not isinstance(self.tensor, list) or not self.tensor
                    or not all(isinstance(s, torch.Tensor) and s.ndim == 2 for s in self.tensor)):
                raise InvalidArgumentError("an S latent needs a list of [N, C] tensors, one per style layer "
                                           "(as returned by G.ws_to_styles(ws)).")
            n = {s.shape[0] for s in self.tensor}
            if len(n) != 1:
                raise InvalidArgumentError(f"the style tensors of an S latent disagree on the batch size ({sorted(n)}); "
                                           "every layer needs the same N.")
            return
        if not isinstance(self.tensor, torch.Tensor):
            raise InvalidArgumentError(f"a {self.space!r} latent needs a torch.Tensor, got {type(self.tensor).__name__}.")
        want = 2 if self.space == "z" else 3
        if self.tensor.ndim != want:
            hint = "[N, z_dim]" if self.space == "z" else "[N, num_ws, w_dim]"
            raise InvalidArgumentError(f"a {self.space!r} latent must be {hint}, got shape {_shape(self.tensor)}; "
                                       + ("add the batch dimension with .unsqueeze(0)." if self.tensor.ndim == want - 1
                                          else "check which space the code lives in."))

    # --- sizes ---------------------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        """``N``, the number of codes held."""
        return self.tensor[0].shape[0] if self.space == "s" else self.tensor.shape[0]

    def __len__(self) -> int:
        return self.batch_size

    @property
    def device(self) -> torch.device:
        return self.tensor[0].device if self.space == "s" else self.tensor.device

    def describe(self) -> str:
        """A short human-readable description, e.g. ``"W+ latent: 2 codes x 18 layers x 512"``."""
        if self.space == "s":
            return f"S latent: {self.batch_size} codes x {len(self.tensor)} style layers"
        if self.space == "z":
            return f"Z latent: {self.batch_size} codes x {self.tensor.shape[1]}"
        name = "W" if self.space == "w" else "W+"
        return f"{name} latent: {self.batch_size} codes x {self.tensor.shape[1]} layers x {self.tensor.shape[2]}"

    # --- construction ----------------------------------------------------------------------------
    @staticmethod
    def seed_z(G, seed: int | Sequence[int], *, device=None) -> torch.Tensor:
        """``[N, z_dim]`` inputs for integer seeds, drawn as NVIDIA's ``gen_images.py`` does
        (``np.random.RandomState(seed).randn(1, z_dim)``), so seed 42 gives the same image here as there."""
        seeds = [seed] if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) else list(seed)
        if not seeds or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and 0 <= s < 2 ** 32
                                for s in seeds):
            raise InvalidArgumentError(f"seeds must be integers in [0, 2**32), got {seed!r}.")
        z = np.concatenate([np.random.RandomState(int(s)).randn(1, G.z_dim) for s in seeds])
        return torch.from_numpy(z).to(device=device or G.device, dtype=torch.float32)

    @classmethod
    def from_seed(cls, G, seed: int | Sequence[int], *, psi: float = 1.0, cutoff: int | None = None,
                  space: str = "w", device=None) -> "Latent":
        """The code of one seed (or a list of seeds, one code each).

        Args:
            G: the generator.
            seed: an integer or a list of integers in ``[0, 2**32)``.
            psi: truncation toward ``G.w_avg`` (1 = none; 0.5-0.8 gives cleaner, less varied images).
            cutoff: truncate only the first ``cutoff`` W+ layers (None = all).
            space: ``'w'`` (default), ``'w+'``, ``'z'`` (then ``psi`` must be 1) or ``'s'``.
        """
        z = cls.seed_z(G, seed, device=device)
        return cls.from_z(G, z, psi=psi, cutoff=cutoff, space=space)

    @classmethod
    def from_z(cls, G, z: torch.Tensor, *, psi: float = 1.0, cutoff: int | None = None,
               space: str = "w") -> "Latent":
        """Map ``z [N, z_dim]`` into ``space`` (``'z'`` keeps it as is; truncation needs W)."""
        _check_psi(psi)
        if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[1] != G.z_dim:
            raise InvalidArgumentError(f"z must be [N, {G.z_dim}] for this generator, got {_shape(z)}.")
        if space == "z":
            if psi != 1:
                raise InvalidArgumentError("truncation (psi != 1) happens in W; ask for space='w' or 'w+', or use psi=1 "
                                           "with space='z'.")
            return cls("z", z)
        if space not in SPACES:
            raise InvalidArgumentError(f"unknown latent space {space!r}; use one of {', '.join(SPACES)}.")
        with torch.no_grad():
            ws = G.mapping(z.to(G.device), None, truncation_psi=psi, truncation_cutoff=cutoff)
        if cutoff is not None and psi != 1 and space == "w":
            space = "w+"  # rows now differ
        lat = cls("w+" if space == "s" else space, ws)
        return lat.to_styles(G) if space == "s" else lat

    @classmethod
    def from_w(cls, G, w: torch.Tensor) -> "Latent":
        """A W latent from one vector per code: ``w [N, w_dim]`` (or ``[w_dim]``) broadcast to all layers."""
        if isinstance(w, torch.Tensor) and w.ndim == 1:
            w = w.unsqueeze(0)
        if not isinstance(w, torch.Tensor) or w.ndim != 2 or w.shape[1] != G.w_dim:
            raise InvalidArgumentError(f"w must be [N, {G.w_dim}] for this generator, got {_shape(w)}.")
        return cls("w", w.unsqueeze(1).repeat(1, G.num_ws, 1))

    @classmethod
    def sample(cls, G, n: int, *, seed: int = 0, psi: float = 1.0, space: str = "w", device=None,
               batch_size: int = 4096) -> "Latent":
        """``n`` random codes drawn with ``torch.Generator().manual_seed(seed)`` (deterministic)."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise InvalidArgumentError(f"n must be a positive integer, got {n!r}.")
        device = torch.device(device) if device is not None else G.device
        gen = torch.Generator().manual_seed(int(seed))
        z = torch.randn([int(n), G.z_dim], generator=gen).to(device)
        if space == "z":
            return cls.from_z(G, z, psi=psi, space="z")
        parts = [cls.from_z(G, z[i:i + batch_size], psi=psi, space="w+").tensor for i in range(0, n, batch_size)]
        lat = cls("w" if space == "w" else "w+", torch.cat(parts))
        return lat.to_styles(G) if space == "s" else lat

    # --- conversion ----------------------------------------------------------------------------
    def replace(self, **changes) -> "Latent":
        """A copy with some fields changed (noise and generator are kept unless replaced)."""
        return dataclasses.replace(self, **changes)

    def to_wplus(self, G=None, *, psi: float = 1.0, cutoff: int | None = None) -> "Latent":
        """This code as W+ ``[N, num_ws, w_dim]`` (Z goes through ``G.mapping``; W is relabelled).

        S codes cannot go back (the affine maps are not invertible in general).
        """
        if self.space in ("w", "w+"):
            return self.replace(space="w+")
        if self.space == "z":
            G = self._renderer(G)
            ws = Latent.from_z(G, self.tensor, psi=psi, cutoff=cutoff, space="w+").tensor
            return self.replace(space="w+", tensor=ws)
        raise InvalidArgumentError("an S (StyleSpace) latent cannot be turned back into W+; keep the W/W+ code you "
                                   "converted from, or do the edit in S.")

    def to_w(self, G=None) -> "Latent":
        """This code as W (rows equal). Z is mapped; a W+ code must already have equal rows."""
        if self.space == "w":
            return self
        if self.space in ("z", "s"):
            return self.to_wplus(G).replace(space="w")  # S raises there
        if not self.rows_equal():
            raise InvalidArgumentError("this W+ code has different vectors per layer, so it is not in W; use it as W+ "
                                       "(edits accept both) or take one row, e.g. Latent.from_w(G, lat.tensor[:, 0]).")
        return self.replace(space="w")

    def rows_equal(self, atol: float = 0.0) -> bool:
        """True when every W+ row equals the first (the code is in W)."""
        if self.space not in ("w", "w+"):
            return False
        t = self.tensor
        return bool(torch.all((t - t[:, :1]).abs() <= atol))

    def to_styles(self, G=None) -> "Latent":
        """This code in StyleSpace: ``space='s'``, a list of ``[N, C]`` per entry of ``G.style_layers``."""
        if self.space == "s":
            return self
        G = self._renderer(G)
        lat = self.to_wplus(G)
        lat.check_compatible(G)
        return self.replace(space="s", tensor=G.ws_to_styles(lat.tensor))

    def ws(self, G=None) -> torch.Tensor:
        """The W+ tensor ``[N, num_ws, w_dim]`` of a z/w/w+ code (Z is mapped with ``G``)."""
        return self.to_wplus(G).tensor

    # --- rendering -----------------------------------------------------------------------------
    def _renderer(self, G):
        if self.generator is not None:
            return self.generator
        if G is None:
            raise InvalidArgumentError("pass the generator G (this latent carries no tuned generator of its own).")
        return G

    def render(self, G=None, noise_mode: str = "const", **synthesis_kwargs) -> torch.Tensor:
        """Synthesize ``[N, 3, R, R]`` float32 images in about ``[-1, 1]``.

        Uses the latent's own ``generator`` when set (a PTI-tuned copy), else ``G``; its ``noise``
        maps when set, else ``noise_mode`` (``'const'``, ``'random'`` or ``'none'``). Extra keyword
        arguments go to ``G.synthesis`` (e.g. ``rotate=``/``translate=`` on StyleGAN3).
        Gradients flow when enabled (wrap in ``torch.no_grad()`` for display).
        """
        G = self._renderer(G)
        self.check_compatible(G)
        if self.noise is not None:
            synthesis_kwargs["noise"] = self.noise
        if self.space == "s":
            return G.synthesis(None, noise_mode=noise_mode, styles=self.tensor, **synthesis_kwargs)
        return G.synthesis(self.ws(G), noise_mode=noise_mode, **synthesis_kwargs)

    # --- checks --------------------------------------------------------------------------------
    def check_compatible(self, G) -> None:
        """Raise InvalidArgumentError when this code was made for a generator of other sizes."""
        if self.space == "z":
            if self.tensor.shape[1] != G.z_dim:
                raise InvalidArgumentError(f"this Z code has {self.tensor.shape[1]} dimensions but the generator expects "
                                           f"{G.z_dim}; it was made for another model. Sample a new one for this model.")
            return
        if self.space == "s":
            layers = G.style_layers
            if len(self.tensor) != len(layers) or any(s.shape[1] != sl.channels for s, sl in zip(self.tensor, layers)):
                ours = [s.shape[1] for s in self.tensor]
                theirs = [sl.channels for sl in layers]
                raise InvalidArgumentError(f"this S code has {len(ours)} style layers with {ours[:4]}... channels but "
                                           f"the generator expects {len(theirs)} with {theirs[:4]}...; it was made for "
                                           "another model. Re-invert the image or load the generator it came from.")
            return
        num_ws, w_dim = self.tensor.shape[1], self.tensor.shape[2]
        if (num_ws, w_dim) != (G.num_ws, G.w_dim):
            name = "W" if self.space == "w" else "W+"
            raise InvalidArgumentError(f"this {name} has {num_ws} layers of {w_dim} but the generator expects "
                                       f"{G.num_ws} of {G.w_dim}; it was made for another model. Re-invert the image "
                                       "or load the generator it came from.")

    # --- tensor housekeeping -------------------------------------------------------------------
    def _map(self, fn) -> "Latent":
        tensor = [fn(s) for s in self.tensor] if self.space == "s" else fn(self.tensor)
        noise = None if self.noise is None else [fn(m) for m in self.noise]
        return self.replace(tensor=tensor, noise=noise)

    def detach(self) -> "Latent":
        return self._map(lambda t: t.detach())

    def clone(self) -> "Latent":
        return self._map(lambda t: t.clone())

    def to(self, device) -> "Latent":
        lat = self._map(lambda t: t.to(device))
        if lat.generator is not None:
            lat.generator = lat.generator.to(device)
        return lat

    def select(self, index) -> "Latent":
        """Codes ``index`` (an int, a slice or a list of ints) as a new Latent (batch dim kept)."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        fn = (lambda t: t[index])
        tensor = [fn(s) for s in self.tensor] if self.space == "s" else fn(self.tensor)
        noise = None
        if self.noise is not None:
            noise = [m if m.shape[0] == 1 else m[index] for m in self.noise]
        return self.replace(tensor=tensor, noise=noise)

    @staticmethod
    def cat(latents: Sequence["Latent"]) -> "Latent":
        """Concatenate codes of one space along the batch (noise and generator are dropped)."""
        latents = list(latents)
        if not latents:
            raise InvalidArgumentError("Latent.cat needs at least one latent.")
        spaces = {lat.space for lat in latents}
        if spaces <= {"w", "w+"}:
            space = "w" if spaces == {"w"} else "w+"
        elif len(spaces) == 1:
            space = spaces.pop()
        else:
            raise InvalidArgumentError(f"cannot concatenate latents of different spaces {sorted(spaces)}; convert them "
                                       "first (e.g. .to_wplus(G)).")
        try:
            if space == "s":
                tensor = [torch.cat(parts) for parts in zip(*[lat.tensor for lat in latents])]
            else:
                tensor = torch.cat([lat.tensor for lat in latents])
        except RuntimeError as exc:
            raise InvalidArgumentError(f"these latents have different shapes and cannot be concatenated ({exc}).") from None
        return Latent(space, tensor)


def _check_psi(psi) -> None:
    try:
        ok = np.isfinite(float(psi))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InvalidArgumentError(f"truncation psi must be a finite number (1 = none, 0.7 is typical), got {psi!r}.")


def as_latent(latent, G=None) -> Latent:
    """Accept a Latent, or a W+ tensor ``[N, num_ws, w_dim]`` for convenience."""
    if isinstance(latent, Latent):
        if G is not None:
            latent.check_compatible(latent.generator if latent.generator is not None else G)
        return latent
    if isinstance(latent, torch.Tensor) and latent.ndim == 3:
        lat = Latent("w+", latent)
        if G is not None:
            lat.check_compatible(G)
        return lat
    raise InvalidArgumentError("pass a stylekit.latent.Latent (e.g. Latent.from_seed(G, 0)) or a W+ tensor "
                               f"[N, num_ws, w_dim]; got {type(latent).__name__}"
                               + (f" of shape {tuple(latent.shape)}" if isinstance(latent, torch.Tensor) else "") + ".")
