"""The model card the StyleFlow trainer writes beside a flow (``styleflow.md``)."""

from __future__ import annotations

__all__ = ["LIBRARY_CHOICE", "model_card"]

#: Which flow library the flow uses and why (the card repeats it).
LIBRARY_CHOICE = (
    "The flow is built on **zuko** (MIT, pure PyTorch, maintained; `zuko.flows.continuous.FFJTransform`): its "
    "free-form Jacobian transform takes a context (the attributes) beside the time embedding, and zuko brings the "
    "adaptive Dormand-Prince ODE solver with an adjoint for gradients, the inverse (integrating backwards) and the "
    "exact log-density by the Jacobian trace, so stylekit writes no ODE solver. `torchdiffeq` is a solver only "
    "(the CNF, its trace and the conditioning would be ours); `normflows` has no continuous flows.")


def model_card(flow, metrics: dict, cfg, *, weights_file: str, labeller: str) -> str:
    """Markdown model card: what it is, the library, the recipe, the command and the development-seed scores."""
    n_params = sum(p.numel() for p in flow.parameters())
    attrs = ", ".join(f"{p.name} ({p.kind}, {p.low:g}..{p.high:g})" for p in flow.attributes)
    objective = ("conditional flow matching on straight paths (x_t = (1 - t) x + t eps, target velocity eps - x; "
                 "no ODE solve while training)" if cfg.objective == "flow_matching" else
                 "maximum likelihood through the ODE (StyleFlow's objective; Hutchinson trace estimate)")
    lines = [
        f"# {cfg.generator} StyleFlow flow (attribute-conditioned continuous normalizing flow)",
        "",
        f"`{weights_file}`: an AttributeFlow ({n_params / 1e3:.1f} k parameters, float32 safetensors; config, "
        "generator name and fingerprint, labeller in the metadata): a conditional continuous normalizing flow "
        f"between the generator's W ({flow.w_dim} dimensions) and a Gaussian, conditioned on {len(flow.attributes)} "
        f"attributes: {attrs}. Load it with `stylekit.edit.styleflow.load_flow(\"{cfg.generator}\", G=G)`; edit with "
        "`styleflow_edit(G, flow, latent, {\"smile\": 0.8}, predictor=predictor)`. It is refused for any other "
        "generator.",
        "",
        f"- Vector field (`stylekit/networks/flow.py`): an MLP of the standardised code, the attributes (unit scale "
        f"mapped to [-1, 1]) and {flow.freqs} sine / cosine time frequencies, hidden widths "
        f"{', '.join(str(h) for h in flow.hidden)} (ELU); t from 0 (W) to 1 (noise).",
        "",
        "## Library",
        "",
        LIBRARY_CHOICE,
        "",
        "## Training",
        "",
        f"Labeller `{labeller}`" + (": the ground-truth attributes of each latent (`z_to_attributes`), in unit "
                                    "scale; no network, and never the held-out judge." if labeller == "truth" else
                                    ".")
        + (f" Batches drawn from a pool of {cfg.pool} codes z ~ N(0, I) (psi 1), rendered and labelled once"
           if cfg.pool else " Fresh codes z ~ N(0, I) every step (psi 1; W from the mapping network, nothing rendered)")
        + f". Objective: {objective}. "
        f"AdamW, warm-up {cfg.warmup} steps, cosine to {cfg.lr_floor:g} x.",
        "",
        f"Steps: {metrics['steps']}, batch {metrics['batch']}, learning rate {metrics['lr']}, seed {metrics['seed']}; "
        f"{metrics['train_seconds_this_process'] / 60:.1f} min of training on {metrics['threads']} CPU thread(s).",
        "",
        "## Command",
        "",
        "```",
        cfg.command or "python -m stylekit.train styleflow --out runs/styleflow",
        "```",
        "",
        f"## Development scores ({metrics['n']} codes, Latent.from_seed {metrics['seed_start']}.., psi 1)",
        "",
        f"- Round trip w -> eps -> w: mean error {metrics['roundtrip_w_error']:.2e} standard deviations of W; "
        f"eps mean {metrics['noise_mean']:.3f}, std {metrics['noise_std']:.3f}; negative log-likelihood "
        f"{metrics['nll_per_dim']:.3f} nats per dimension (standardised W, 50 codes).",
    ]
    if any(k.startswith("error_") for k in metrics):
        lines += [
            "",
            f"Edits read by the attribute predictor (`{cfg.eval_predictor}`; the methods' reader, not the held-out "
            "judge), source attributes read by it too: continuous attributes moved 0.4 of their range the way there "
            "is room, binary ones switched. The flow never saw the predictor while training, but these are development "
            "readings, not the measurement: `python -m stylekit.bench styleflow` reads edits with the held-out judge "
            "on report seeds, against InterFaceGAN.",
            "",
            "| attribute | mean abs error, asked vs read (unit scale) | mean abs change of the other attributes |",
            "|---|---|---|",
        ]
        for p in flow.attributes:
            if f"error_{p.name}" in metrics:
                lines.append(f"| {p.name} | {metrics[f'error_{p.name}']:.4f} | {metrics[f'keep_{p.name}']:.4f} |")
    lines += [
        "",
        "## Limitations",
        "",
        "Only for the generator it was trained for (fingerprint checked). The flow models single W vectors; W+ "
        "codes of inverted images are mapped row by row with the same attributes, and rows far from W are edited "
        "with the round trip's residual added back. Attributes the generator renders poorly, and targets at the ends "
        "of a range, are met less well.",
        "",
    ]
    return "\n".join(lines)
