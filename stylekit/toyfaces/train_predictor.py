"""Train the toyfaces attribute predictor on renders made on the fly.

    python -m stylekit.toyfaces.train_predictor --steps 3000 --out stylekit/toyfaces/weights/predictor.safetensors

Every step samples fresh random attributes, renders them (three quarters at 64x64, one quarter at
32x32 and upsampled, like a low-resolution generator), mixes them with as many renders drawn from
a replay pool of recent renders (so each render serves about two steps) and degrades about half
of the batch the way GAN
samples and re-encoded images are degraded: slight blur, a down/up resampling, sensor-like noise,
JPEG-like 8x8 block-DCT quantisation and a tiny gain/offset change. The loss is binary
cross-entropy on the binary attributes plus a weighted mean squared error on the unit-scale
continuous ones.

Training is resumable: ``--state`` (default next to the output) holds the model, optimiser, step
and random-generator states and is rewritten every ``--ckpt-every`` steps; ``--resume`` continues
from it. At the end a held-out set of fresh renders (clean and degraded) is scored: accuracy per
binary attribute and R² per continuous one; the weights are written as float16 safetensors with
the metrics in the metadata, and the model card (``predictor.md`` beside the weights) is rewritten
with the metrics and the exact command.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from stylekit.errors import InvalidArgumentError

from .attributes import ATTRIBUTES, BINARY_ATTRIBUTES, CONTINUOUS_ATTRIBUTES, attributes_to_unit, \
    sample_attributes
from .predictor import INPUT_SIZE, AttributePredictor, default_weights_path, save_predictor
from .renderer import render_batch

__all__ = ["degrade", "make_batch", "evaluate", "train", "main"]

_BINARY_MASK = torch.tensor([a.kind == "binary" for a in ATTRIBUTES])
_REG_WEIGHT = 20.0


# ----------------------------------------------------------------------------------------------
# Degradations (all vectorised over the batch; images [N, 3, H, W] in [-1, 1]).


def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-image Gaussian blur. sigma: [N] pixels (0 leaves the image unchanged)."""
    n, c, h, w = x.shape
    r = 3
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    s = sigma.clamp(min=1e-3).view(n, 1)
    k = torch.exp(-0.5 * (t[None] / s) ** 2)
    k = k / k.sum(1, keepdim=True)                                    # [N, 7]
    k = k.repeat_interleave(c, 0)                                      # [N*C, 7]
    y = x.reshape(1, n * c, h, w)
    y = F.pad(y, (r, r, r, r), mode="replicate")
    y = F.conv2d(y, k.view(n * c, 1, 1, 2 * r + 1), groups=n * c)
    y = F.conv2d(y, k.view(n * c, 1, 2 * r + 1, 1), groups=n * c)
    return y.view(n, c, h, w)


def _dct_matrix(n: int, dtype, device) -> torch.Tensor:
    i = torch.arange(n, dtype=dtype, device=device)
    m = torch.cos(math.pi * (2 * i[None, :] + 1) * i[:, None] / (2 * n)) * math.sqrt(2.0 / n)
    m[0] /= math.sqrt(2.0)
    return m  # orthonormal: m @ m.T = I


def _jpeg_like(x: torch.Tensor, quality_step: torch.Tensor) -> torch.Tensor:
    """Quantise 8x8 block DCT coefficients (coarser at high frequencies), like JPEG.

    quality_step: [N] base quantisation step in [0, 1] units (0 leaves the image unchanged).
    """
    n, c, h, w = x.shape
    if h % 8 or w % 8:
        return x
    d = _dct_matrix(8, x.dtype, x.device)
    blocks = x.reshape(n, c, h // 8, 8, w // 8, 8).permute(0, 1, 2, 4, 3, 5)  # [N,C,hb,wb,8,8]
    coef = d @ blocks @ d.T
    f = torch.arange(8, dtype=x.dtype, device=x.device)
    weight = 1.0 + (f[:, None] + f[None, :]) * 0.5                    # coarser high frequencies
    step = (quality_step.view(n, 1, 1, 1, 1, 1) * weight).clamp(min=1e-6)
    q = torch.round(coef / step) * step
    q = torch.where(quality_step.view(n, 1, 1, 1, 1, 1) > 0, q, coef)
    out = d.T @ q @ d
    return out.permute(0, 1, 2, 4, 3, 5).reshape(n, c, h, w)


def degrade(images: torch.Tensor, generator: torch.Generator, *, p: float = 0.5) -> torch.Tensor:
    """Randomly degrade about a fraction ``p`` of a batch (each degradation independently).

    images: [N, 3, H, W] in [-1, 1]; returns the same shape, clamped to [-1, 1]. Degradations:
    blur (sigma up to 0.8 px), down/up resampling (to 60-90% size), Gaussian noise (std up to
    0.05), JPEG-like block-DCT quantisation, gain in [0.96, 1.04] and offset in [-0.03, 0.03].
    """
    n = images.shape[0]
    dev = images.device

    def rand(*shape):
        return torch.rand(*shape, generator=generator).to(dev)

    chosen = rand(n) < p
    x = images
    # 1. blur
    use = chosen & (rand(n) < 0.5)
    sigma = torch.where(use, 0.3 + 0.5 * rand(n), torch.zeros(n, device=dev))
    if bool(use.any()):
        x = torch.where(use.view(n, 1, 1, 1), _gaussian_blur(x, sigma), x)
    # 2. down/up resampling (one factor for the chosen subset)
    use = chosen & (rand(n) < 0.35)
    if bool(use.any()):
        h, w = x.shape[-2:]
        factor = float(0.6 + 0.3 * rand(1))
        small = F.interpolate(x, size=(max(8, int(h * factor)), max(8, int(w * factor))),
                              mode="bilinear", align_corners=False, antialias=True)
        back = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
        x = torch.where(use.view(n, 1, 1, 1), back, x)
    # 3. JPEG-like quantisation
    use = chosen & (rand(n) < 0.4)
    if bool(use.any()):
        step = torch.where(use, 0.02 + 0.08 * rand(n), torch.zeros(n, device=dev))
        x = _jpeg_like(x, step)
    # 4. noise
    use = chosen & (rand(n) < 0.5)
    std = torch.where(use, 0.05 * rand(n), torch.zeros(n, device=dev)).view(n, 1, 1, 1)
    x = x + std * torch.randn(x.shape, generator=generator).to(dev)
    # 5. gain / offset
    use = (chosen & (rand(n) < 0.5)).view(n, 1, 1, 1)
    gain = 0.96 + 0.08 * rand(n, 1, 1, 1)
    offset = 0.06 * rand(n, 1, 1, 1) - 0.03
    x = torch.where(use, x * gain + offset, x)
    return x.clamp(-1.0, 1.0)


# ----------------------------------------------------------------------------------------------
# Data and evaluation.


def make_batch(n: int, rng: np.random.Generator, generator: torch.Generator, *,
               device="cpu", degrade_p: float = 0.5, low_res_fraction: float = 0.25
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Fresh random renders and their unit-scale targets.

    Returns images [n, 3, 64, 64] in [-1, 1] and targets [n, A] in [0, 1] (ATTRIBUTES order).
    """
    attrs = sample_attributes(n, rng=rng)
    seeds = rng.integers(0, 2 ** 31 - 1, size=n)
    n_low = int(round(n * low_res_fraction))
    parts = []
    if n_low:
        low = render_batch({k: v[:n_low] for k, v in attrs.items()}, size=INPUT_SIZE // 2,
                           seeds=seeds[:n_low], device=device)
        parts.append(F.interpolate(low, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear",
                                   align_corners=False))
    if n - n_low:
        parts.append(render_batch({k: v[n_low:] for k, v in attrs.items()}, size=INPUT_SIZE,
                                  seeds=seeds[n_low:], device=device))
    images = torch.cat(parts)
    if degrade_p > 0:
        images = degrade(images, generator, p=degrade_p)
    targets = torch.from_numpy(attributes_to_unit(attrs)).to(device)
    return images, targets


class RenderPool:
    """A pool of clean renders refreshed a little every step, so each render serves ~2 steps.

    ``fresh`` new renders replace random pool entries every step; a batch is the fresh renders
    plus random pool entries, then degraded independently. Images are kept as float16.
    """

    def __init__(self, size: int, rng: np.random.Generator, generator: torch.Generator, *,
                 device="cpu", chunk: int = 64):
        self.rng, self.generator, self.device = rng, generator, device
        images, targets = [], []
        for start in range(0, size, chunk):
            x, t = make_batch(min(chunk, size - start), rng, generator, device=device, degrade_p=0)
            images.append(x.half())
            targets.append(t)
        self.images, self.targets = torch.cat(images), torch.cat(targets)

    def batch(self, n: int, fresh: int, degrade_p: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
        """n images [n, 3, 64, 64] in [-1, 1] (``fresh`` of them new) and targets [n, A]."""
        x_new, t_new = make_batch(fresh, self.rng, self.generator, device=self.device, degrade_p=0)
        size = self.images.shape[0]
        old = torch.from_numpy(self.rng.choice(size, size=n - fresh, replace=False)).to(self.device)
        x = torch.cat([x_new, self.images[old].float()])
        t = torch.cat([t_new, self.targets[old]])
        slots = torch.from_numpy(self.rng.choice(size, size=fresh, replace=False)).to(self.device)
        self.images[slots] = x_new.half()
        self.targets[slots] = t_new
        return degrade(x, self.generator, p=degrade_p), t


def _loss(raw: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    mask = _BINARY_MASK.to(raw.device)
    bce = F.binary_cross_entropy_with_logits(raw[:, mask], target[:, mask])
    mse = F.mse_loss(raw[:, ~mask], target[:, ~mask])
    return bce + _REG_WEIGHT * mse


@torch.no_grad()
def evaluate(model: AttributePredictor, *, samples: int = 2000, seed: int = 1_000_003,
             degraded: bool = False, batch_size: int = 100, device="cpu") -> dict:
    """Score a model on fresh held-out renders.

    Returns {"accuracy": {binary: acc}, "r2": {continuous: R²}, "samples": n, "degraded": bool}.
    R² is 1 - SSE/SST over the held-out set, in attribute units.
    """
    was_training = model.training
    model.eval()
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    preds, targets = [], []
    for start in range(0, samples, batch_size):
        n = min(batch_size, samples - start)
        images, target = make_batch(n, rng, gen, device=device,
                                    degrade_p=1.0 if degraded else 0.0,
                                    low_res_fraction=0.25 if degraded else 0.0)
        preds.append(model.predict_unit(images).cpu())
        targets.append(target.cpu())
    model.train(was_training)
    p, t = torch.cat(preds), torch.cat(targets)
    out = {"accuracy": {}, "r2": {}, "samples": samples, "degraded": degraded}
    for j, spec in enumerate(ATTRIBUTES):
        if spec.kind == "binary":
            out["accuracy"][spec.name] = float(((p[:, j] >= 0.5) == (t[:, j] >= 0.5)).float().mean())
        else:
            sse = float(((p[:, j] - t[:, j]) ** 2).sum())
            sst = float(((t[:, j] - t[:, j].mean()) ** 2).sum())
            out["r2"][spec.name] = 1.0 - sse / max(sst, 1e-12)
    return out


# ----------------------------------------------------------------------------------------------
# Training.


def _lr_at(step: int, total: int, base: float, warmup: int = 150) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * (0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0))))


def train(*, steps: int = 3000, batch_size: int = 64, lr: float = 2e-3, seed: int = 0,
          out: str | Path | None = None, state: str | Path | None = None, resume: bool = False,
          eval_samples: int = 2000, log_every: int = 50, ckpt_every: int = 250,
          pool_size: int = 4096, fresh_per_step: int | None = None,
          device: str = "cpu", command: str | None = None, log=print) -> dict:
    """Train (or resume) and save the predictor; returns the evaluation metrics."""
    if steps < 1 or batch_size < 2:
        raise InvalidArgumentError("train_predictor needs --steps >= 1 and --batch-size >= 2.")
    out = Path(out) if out is not None else default_weights_path()
    state_path = Path(state) if state is not None else out.with_suffix(".state.pt")
    torch.manual_seed(seed)
    model = AttributePredictor().to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    start = 0
    if resume:
        if not state_path.is_file():
            raise InvalidArgumentError(f"--resume was given but there is no state file at {state_path}.")
        saved = torch.load(state_path, map_location=device, weights_only=True)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        rng.bit_generator.state = saved["numpy_rng"]
        gen.set_state(saved["torch_gen"])
        start = int(saved["step"])
        log(f"resumed from {state_path} at step {start}")

    def save_state(step: int) -> None:
        state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = state_path.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                    "numpy_rng": rng.bit_generator.state, "torch_gen": gen.get_state()}, tmp)
        tmp.replace(state_path)

    fresh = batch_size // 2 if fresh_per_step is None else int(fresh_per_step)
    if not 1 <= fresh <= batch_size or pool_size < batch_size - fresh:
        raise InvalidArgumentError("--fresh-per-step must be in [1, batch size] and --pool at "
                                   "least batch size minus fresh renders.")
    use_pool = fresh < batch_size
    if use_pool and start < steps:
        log(f"filling a pool of {pool_size} renders ...")
        pool = RenderPool(pool_size, rng, gen, device=device)
    model.train()
    t0, running = time.time(), None
    for step in range(start, steps):
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, steps, lr)
        if use_pool:
            images, target = pool.batch(batch_size, fresh)
        else:
            images, target = make_batch(batch_size, rng, gen, device=device)
        raw = model(images.contiguous(memory_format=torch.channels_last))
        loss = _loss(raw, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = float(loss.detach())
        running = value if running is None else 0.95 * running + 0.05 * value
        done = step + 1
        if done % log_every == 0 or done == steps:
            rate = (done - start) / (time.time() - t0)
            eta = (steps - done) / max(rate, 1e-9)
            log(f"step {done}/{steps}  loss {running:.4f}  lr {opt.param_groups[0]['lr']:.2e}  "
                f"{rate:.2f} it/s  eta {eta / 60:.1f} min")
        if done % ckpt_every == 0 and done < steps:
            save_state(done)
    save_state(steps)

    model.eval()
    clean = evaluate(model, samples=eval_samples, device=device)
    degraded = evaluate(model, samples=eval_samples, degraded=True, device=device)
    metrics = {"clean": clean, "degraded": degraded, "steps": steps, "batch_size": batch_size,
               "lr": lr, "seed": seed}
    for name in BINARY_ATTRIBUTES:
        log(f"  {name:16s} accuracy {clean['accuracy'][name]:.4f}  "
            f"(degraded {degraded['accuracy'][name]:.4f})")
    for name in CONTINUOUS_ATTRIBUTES:
        log(f"  {name:16s} R2       {clean['r2'][name]:.4f}  (degraded {degraded['r2'][name]:.4f})")
    model = model.to(memory_format=torch.contiguous_format)
    save_predictor(model.cpu(), out, metrics=metrics)
    card = out.with_name(out.stem + ".md") if out.suffix == ".safetensors" else out.with_suffix(".md")
    card.write_text(model_card(model, metrics, command=command, weights_file=out.name))
    log(f"saved {out} ({out.stat().st_size / 1e6:.2f} MB) and {card}")
    return metrics


def model_card(model: AttributePredictor, metrics: dict, *, command: str | None,
               weights_file: str) -> str:
    """Markdown model card with the architecture, training recipe, metrics and command."""
    n_params = sum(p.numel() for p in model.parameters())
    clean, degraded = metrics["clean"], metrics["degraded"]
    lines = [
        "# toyfaces attribute predictor",
        "",
        f"`{weights_file}`: a small CNN ({n_params / 1e6:.2f} M parameters, float16 safetensors, "
        "config in the metadata) that reads every toyfaces attribute back from an image "
        "`[N, 3, H, W]` in `[-1, 1]` (resized to 64x64 inside). Load it with "
        "`stylekit.toyfaces.load_predictor()`.",
        "",
        "- Outputs: one logit per binary attribute (`predict` gives probabilities) and one "
        "unit-scale regression per continuous attribute (`predict` gives attribute units).",
        "- `features(images)`: the 128-d penultimate layer, an offline perceptual feature space "
        "(Fréchet distances, feature matching).",
        "- Architecture: 7 conv layers (BN, SiLU; four stride-2), flatten 4x4x64, linear 128, "
        "linear to the attributes. See `stylekit/toyfaces/predictor.py`.",
        "",
        "## Training data",
        "",
        "Renders of `stylekit.toyfaces.render_batch` made on the fly from independent random "
        "attributes (`sample_attributes`): three quarters at 64x64, one quarter at 32x32 and "
        "upsampled. About half of each batch is degraded like GAN samples: blur (sigma <= 0.8 px), "
        "down/up resampling, Gaussian noise (std <= 0.05), JPEG-like 8x8 block-DCT quantisation, "
        "gain/offset within 4%. Loss: BCE on binaries + 20 x MSE on unit-scale continuous "
        "attributes; AdamW, cosine learning rate.",
        "",
        f"Steps: {metrics['steps']}, batch size {metrics['batch_size']}, learning rate "
        f"{metrics['lr']}, seed {metrics['seed']} (CPU).",
        "",
        "## Command",
        "",
        "```",
        command or "python -m stylekit.toyfaces.train_predictor",
        "```",
        "",
        f"## Held-out metrics ({clean['samples']} fresh renders each)",
        "",
        "Clean: 64x64 renders. Degraded: every image degraded as in training, a quarter rendered "
        "at 32x32.",
        "",
        "| attribute | kind | metric | clean | degraded |",
        "|---|---|---|---|---|",
    ]
    for name in BINARY_ATTRIBUTES:
        lines.append(f"| {name} | binary | accuracy | {clean['accuracy'][name]:.4f} | "
                     f"{degraded['accuracy'][name]:.4f} |")
    for name in CONTINUOUS_ATTRIBUTES:
        lines.append(f"| {name} | continuous | R² | {clean['r2'][name]:.4f} | "
                     f"{degraded['r2'][name]:.4f} |")
    lines += [
        "",
        "Targets: accuracy >= 0.95 on every binary attribute and R² >= 0.9 on every continuous "
        "one (clean renders).",
        "",
        "## Limitations",
        "",
        "It has only ever seen toyfaces: on photographs or other drawings its outputs mean "
        "nothing. GAN samples far from the renders (strong artefacts, mixed features) can "
        "confuse it; a fractional binary attribute (a half-faded pair of glasses) gives an "
        "in-between probability.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stylekit.toyfaces.train_predictor",
        description="Train the toyfaces attribute predictor on renders made on the fly.")
    parser.add_argument("--steps", type=int, default=3000, help="optimisation steps")
    parser.add_argument("--batch-size", type=int, default=64, help="renders per step")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (AdamW)")
    parser.add_argument("--seed", type=int, default=0, help="seed of attributes, noise and init")
    parser.add_argument("--out", default=None,
                        help="output .safetensors (default: the shipped weights file); the model "
                             "card is written beside it with the .md suffix")
    parser.add_argument("--state", default=None,
                        help="resumable training state (default: <out>.state.pt)")
    parser.add_argument("--resume", action="store_true", help="continue from --state")
    parser.add_argument("--eval-samples", type=int, default=2000, help="held-out renders to score")
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--ckpt-every", type=int, default=250)
    parser.add_argument("--pool", type=int, default=4096,
                        help="renders kept in the replay pool")
    parser.add_argument("--fresh-per-step", type=int, default=None,
                        help="new renders per step (default half the batch; equal to the batch "
                             "size disables the pool)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    raw = sys.argv[1:] if argv is None else argv
    command = "python -m stylekit.toyfaces.train_predictor " + " ".join(shlex.quote(a) for a in raw)
    metrics = train(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                    out=args.out, state=args.state, resume=args.resume,
                    eval_samples=args.eval_samples, log_every=args.log_every,
                    ckpt_every=args.ckpt_every, pool_size=args.pool,
                    fresh_per_step=args.fresh_per_step, device=args.device,
                    command=command.strip(),
                    log=lambda s: print(s, flush=True))
    print(json.dumps({"clean": metrics["clean"]["accuracy"] | metrics["clean"]["r2"]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
