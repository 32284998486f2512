"""InterFaceGAN (Shen et al., CVPR 2020): a linear boundary per attribute, editing along its normal.

Recipe:

1. Sample many codes, render them, and score each image for the attribute with any *scorer*
   (:func:`predictor_scorer` for the toyfaces attribute predictor, :func:`clip_scorer` for CLIP
   zero-shot labels, or any function ``images [N, 3, R, R] in [-1, 1] -> scores [N]``).
2. Keep the most confident ends (top and bottom ``keep_fraction``) as positives / negatives
   (:func:`sample_and_label`).
3. Fit a linear classifier ``f(w) = w . n + b`` on the codes (:func:`fit_boundary`: an L2-SVM or a
   logistic regression, both solved with Newton's method in torch). The unit normal ``n`` is the edit
   direction and ``w . n + b`` the signed distance to the boundary.
4. Edit: ``w' = w + strength * n`` (:func:`edit`, shared with every linear method).

Conditional editing (:func:`condition`) removes from ``n`` its components along other attributes'
normals, ``n' = n - B (B^T B)^{-1} B^T n`` renormalised, so that moving along ``n'`` leaves those
attributes' signed distances unchanged.

Boundaries are :class:`~stylekit.edit.direction.Direction` objects with ``method='interfacegan'``
and an ``offset``; :func:`save_boundary` / :func:`load_boundary` read and write ``.npy``, ``.pt``
(including the direction files e4e and PTI publish) and ``.safetensors``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from ..errors import InvalidArgumentError
from ..latent import Latent
from ..progress import no_progress
from .direction import Direction, as_latent, edit, load_direction, save_direction, signed_distance
from .presets import INTERFACEGAN

__all__ = ["fit_boundary", "sample_and_label", "LabelledSamples", "find_boundary", "condition", "edit",
           "signed_distance", "predictor_scorer", "clip_scorer", "save_boundary", "load_boundary", "Scorer"]

Scorer = Callable[[torch.Tensor], torch.Tensor]
"""``images [N, 3, R, R] in [-1, 1] -> scores [N]`` (probabilities or any monotone score)."""


# ----------------------------------------------------------------------------------------------
# Fitting


def _as_labels(labels, n: int) -> torch.Tensor:
    if isinstance(labels, np.ndarray):
        labels = torch.from_numpy(labels)
    if isinstance(labels, (list, tuple)):
        labels = torch.tensor(labels)
    if not isinstance(labels, torch.Tensor) or labels.ndim != 1 or labels.shape[0] != n:
        got = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise InvalidArgumentError(f"labels must be a 1-D array of {n} values (one per code), got {got}.")
    y = labels.detach().cpu().to(torch.float64)
    if not torch.isfinite(y).all() or not torch.all((y == 0) | (y == 1)):
        raise InvalidArgumentError("labels must be 0/1 (or booleans); threshold the scores first, or let "
                                   "sample_and_label pick the confident ends.")
    pos = int(y.sum())
    if pos < 2 or n - pos < 2:
        raise InvalidArgumentError(f"need at least 2 positive and 2 negative examples, got {pos} positive and "
                                   f"{n - pos} negative; sample more codes or change the threshold.")
    return y


def _codes(latents, per_layer):
    """``[N, L, D]`` float64 from a Latent or tensor, and whether to fit per layer."""
    if isinstance(latents, Latent):
        if latents.space == "s":
            raise InvalidArgumentError("InterFaceGAN fits boundaries in W/W+; pass W/W+ codes, not StyleSpace.")
        if latents.space == "z":
            raise InvalidArgumentError("pass W codes (lat.to_w(G)); boundaries are fitted in W, where attributes "
                                       "are close to linearly separable.")
        x = latents.tensor
        is_w = latents.space == "w" or latents.rows_equal()
    elif isinstance(latents, torch.Tensor) and latents.ndim in (2, 3):
        x = latents if latents.ndim == 3 else latents.unsqueeze(1)
        is_w = latents.ndim == 2 or bool(torch.all(x == x[:, :1]))
    else:
        raise InvalidArgumentError("latents must be a W/W+ Latent, a [N, w_dim] tensor or a [N, num_ws, w_dim] tensor.")
    if per_layer is None:
        per_layer = not is_w
    if not per_layer and not is_w:
        raise InvalidArgumentError("these W+ codes differ per layer; fit one boundary per layer with per_layer=True.")
    x = x.detach().cpu().to(torch.float64)  # fitting is small: always on the CPU, in float64
    if not per_layer:
        x = x[:, :1]
    return x, per_layer


def _losses(f: torch.Tensor, y: torch.Tensor, method: str):
    """Per-sample loss, and its first and second derivatives in ``f`` (all ``[N, L]``)."""
    m = y.unsqueeze(1) * f
    if method == "svm":  # squared hinge
        slack = torch.clamp(1 - m, min=0)
        return slack.square(), -2 * slack * y.unsqueeze(1), 2 * (m < 1).to(f.dtype)
    p = torch.sigmoid(-m)  # logistic
    return torch.nn.functional.softplus(-m), -p * y.unsqueeze(1), p * (1 - p)


def _solve(x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor, *, method: str, regularization: float,
           max_iter: int, tol: float = 1e-7) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit ``L`` independent linear classifiers ``x[:, l] . w_l + b_l`` by damped Newton steps (float64).

    Minimises ``sum_n weights_n * loss(y_n f_n) + regularization / 2 * |w|^2`` per layer, where the loss
    is the squared hinge (``'svm'``) or the logistic loss. Both objectives are convex with a cheap
    exact Hessian (``[D+1, D+1]`` per layer), so a few Newton iterations reach the optimum.

    ``x [N, L, D]``, ``y [N]`` in {-1, +1}, ``weights [N]`` summing to 1. Returns ``w [L, D]``, ``b [L]``.
    """
    n, num, dim = x.shape
    xb = torch.cat([x, torch.ones(n, num, 1, dtype=x.dtype)], dim=2)  # [N, L, D+1]
    reg = torch.full((dim + 1,), float(regularization), dtype=x.dtype)
    reg[-1] = 0.0  # the bias is not penalised
    theta = torch.zeros(num, dim + 1, dtype=x.dtype)
    eye = torch.eye(dim + 1, dtype=x.dtype) * 1e-10

    def objective(th):
        f = torch.bmm(xl, th.unsqueeze(2)).squeeze(2).t()  # [N, L]
        loss, d1, d2 = _losses(f, y, method)
        return (weights.unsqueeze(1) * loss).sum(0) + 0.5 * (reg * th.square()).sum(-1), d1, d2

    xl = xb.transpose(0, 1).contiguous()  # [L, N, D+1]
    del xb
    xl32 = xl.to(torch.float32)
    value, d1, d2 = objective(theta)
    for _ in range(max_iter):
        coef = (weights.unsqueeze(1) * d1).t().unsqueeze(1)  # [L, 1, N]
        grad = torch.bmm(coef, xl).squeeze(1) + reg * theta
        if float(grad.abs().max()) < 1e-10:
            break
        # The Hessian only steers the step (the gradient is exact in float64), so float32 is enough.
        c = (weights.unsqueeze(1) * d2).t().unsqueeze(2).to(torch.float32)  # [L, N, 1]
        hess = ((xl32 * c).transpose(1, 2) @ xl32).to(x.dtype) + torch.diag_embed(reg) + eye
        chol, info = torch.linalg.cholesky_ex(hess)
        if bool(info.any()):
            step = torch.linalg.solve(hess, grad.unsqueeze(-1)).squeeze(-1)
        else:
            step = torch.cholesky_solve(grad.unsqueeze(-1), chol).squeeze(-1)
        decrease = (grad * step).sum(-1)  # > 0 for a descent step
        t = torch.ones(num, dtype=x.dtype)
        for _ in range(30):  # backtracking (Armijo), per layer
            cand = theta - t.unsqueeze(1) * step
            new_value, nd1, nd2 = objective(cand)
            bad = new_value > value - 1e-4 * t * decrease
            if not bool(bad.any()):
                break
            t = torch.where(bad, t / 2, t)
        theta, value, d1, d2 = cand, new_value, nd1, nd2
        if float((t * decrease / value.clamp_min(1e-30)).abs().max()) < tol:
            break  # relative Newton decrement: the objective cannot improve meaningfully
    return theta[:, :dim], theta[:, dim]


def fit_boundary(latents, labels, *, per_layer: bool | None = None, method: str = INTERFACEGAN.method,
                 regularization: float = INTERFACEGAN.regularization, balanced: bool = True,
                 validation_fraction: float = 0.0, max_iter: int = 50, seed: int = 0, name: str = "") -> Direction:
    """Fit a linear boundary separating ``labels`` in W (or per layer in W+).

    Args:
        latents: ``N`` codes: a W/W+ :class:`Latent`, or a tensor ``[N, w_dim]`` / ``[N, num_ws, w_dim]``.
        labels: ``[N]`` 0/1 (bool, int or float).
        per_layer: one boundary per W+ row (``[num_ws, w_dim]`` normals) instead of one W boundary.
            Default: per layer exactly when the codes' rows differ (e.g. inverted images).
        method: ``'svm'`` (L2-loss linear SVM, like scikit-learn's LinearSVC that InterFaceGAN uses) or
            ``'logistic'`` (logistic regression); both solved exactly by Newton's method.
        regularization: L2 penalty on the weights of the standardised problem.
        balanced: weight both classes equally (matters when they differ in size).
        validation_fraction: hold out this fraction (0-0.5) to report ``meta['val_accuracy']``.
        max_iter: Newton iterations (rarely more than 20 are needed).
        seed: for the validation split.
        name: the attribute name stored on the boundary.

    Returns: a :class:`Direction` with a unit-norm ``vector`` (``[w_dim]``, or ``[num_ws, w_dim]``
    with unit rows), ``offset`` (float, or ``[num_ws]``) so that the signed distance is
    ``w . vector + offset`` (positive on the label-1 side), and ``meta`` with accuracies, counts and
    the fitting time in seconds.
    """
    if method not in ("svm", "logistic"):
        raise InvalidArgumentError(f"unknown boundary method {method!r}; use 'svm' or 'logistic'.")
    if not 0.0 <= float(validation_fraction) <= 0.5:
        raise InvalidArgumentError(f"validation_fraction must be in [0, 0.5], got {validation_fraction!r}.")
    if not (isinstance(regularization, (int, float)) and np.isfinite(regularization) and regularization >= 0):
        raise InvalidArgumentError(f"regularization must be a finite number >= 0, got {regularization!r}.")
    t0 = time.perf_counter()
    x, per_layer = _codes(latents, per_layer)
    n = x.shape[0]
    y01 = _as_labels(labels, n)
    idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = int(round(n * float(validation_fraction)))
    val_idx, train_idx = idx[:n_val], idx[n_val:]
    _as_labels(y01[train_idx], len(train_idx))  # both classes must survive the split

    xt, yt = x[train_idx], y01[train_idx] * 2 - 1
    mu = xt.mean(dim=0)  # [L, D]
    sigma = (xt - mu).square().mean().sqrt().clamp_min(1e-12)  # one scalar: directions are kept
    xs = (xt - mu) / sigma
    if balanced:
        pos = (yt > 0).to(torch.float64)
        weights = pos / (2 * pos.sum()) + (1 - pos) / (2 * (1 - pos).sum())
    else:
        weights = torch.full((len(yt),), 1.0 / len(yt), dtype=torch.float64)
    w, b = _solve(xs, yt, weights, method=method, regularization=float(regularization), max_iter=max_iter)
    # back to raw coordinates: f(x) = x . (w / sigma) + b - mu . w / sigma
    w_raw = w / sigma
    b_raw = b - (mu * w_raw).sum(-1)
    norm = w_raw.norm(dim=-1).clamp_min(1e-30)
    normal = (w_raw / norm.unsqueeze(1)).to(torch.float32)
    offset = (b_raw / norm).to(torch.float32)

    def accuracy(sel):
        f = torch.einsum("nld,ld->nl", x[sel], normal.double()) + offset.double()
        return ((f > 0).double() == y01[sel].unsqueeze(1)).double().mean(dim=0)

    meta = {"n_train": int(len(train_idx)), "n_positive": int(y01[train_idx].sum()), "method": method,
            "train_accuracy": float(accuracy(train_idx).mean()), "fit_seconds": time.perf_counter() - t0}
    if n_val:
        meta["val_accuracy"] = float(accuracy(val_idx).mean())
        meta["n_val"] = n_val
    if per_layer:
        return Direction(normal, None, name, "interfacegan", 1.0, offset, meta)
    return Direction(normal[0], None, name, "interfacegan", 1.0, float(offset[0]), meta)


# ----------------------------------------------------------------------------------------------
# Sampling and labelling


@dataclass
class LabelledSamples:
    """Result of :func:`sample_and_label`.

    latent:     the kept codes, a W Latent ``[M, num_ws, w_dim]``.
    labels:     ``[M]`` 1.0 (high score end) / 0.0 (low score end).
    scores:     ``[M]`` the scores of the kept codes.
    all_latent: all ``n`` sampled codes (W).
    all_scores: ``[n]`` the scores of all of them.
    """

    latent: Latent
    labels: torch.Tensor
    scores: torch.Tensor
    all_latent: Latent
    all_scores: torch.Tensor


@torch.no_grad()
def score_latents(G, latent, scorer: Scorer, *, batch_size: int = 32, noise_mode: str = "const",
                  progress=no_progress) -> torch.Tensor:
    """Render ``latent`` in batches and score every image: returns ``[N]`` float32 on the CPU."""
    lat = as_latent(latent, G)
    out = []
    n = lat.batch_size
    for i in range(0, n, batch_size):
        images = lat.select(slice(i, i + batch_size)).render(G, noise_mode=noise_mode)
        s = scorer(images)
        s = s.detach().cpu() if isinstance(s, torch.Tensor) else torch.as_tensor(np.asarray(s, dtype=np.float32))
        if s.ndim != 1 or s.shape[0] != images.shape[0]:
            raise InvalidArgumentError(f"the scorer must return one number per image ([{images.shape[0]}]), got "
                                       f"shape {tuple(s.shape)}.")
        out.append(s.to(torch.float32))
        progress(min(i + batch_size, n), n, "scoring")
    scores = torch.cat(out)
    if not torch.isfinite(scores).all():
        raise InvalidArgumentError("the scorer returned NaN or infinite scores; check it on a few images.")
    return scores


def sample_and_label(G, scorer: Scorer, n: int = INTERFACEGAN.n, *,
                     keep_fraction: float = INTERFACEGAN.keep_fraction,
                     threshold: float | None = None, psi: float = 1.0, seed: int = 0, batch_size: int = 32,
                     noise_mode: str = "const", progress=no_progress) -> LabelledSamples:
    """Sample ``n`` W codes, score their images, and label the confident ones.

    Args:
        G: the generator.
        scorer: ``images [B, 3, R, R] in [-1, 1] -> [B]`` (e.g. :func:`predictor_scorer`).
        n: number of codes to sample.
        keep_fraction: as InterFaceGAN, keep the top and the bottom ``keep_fraction`` of codes by score
            (label 1 and 0); in ``(0, 0.5]`` (0.5 keeps everything, split at the median). Default
            (and ``n``'s): :data:`stylekit.edit.presets.INTERFACEGAN`.
        threshold: instead, label every code ``score > threshold`` (e.g. 0.5 for probabilities);
            ``keep_fraction`` is then ignored.
        psi: truncation of the samples (1 = none).
        seed: sampling seed.
        batch_size: images rendered per call.
        noise_mode: synthesis noise mode.
        progress: progress callback ``(step, total, message)``.

    Returns: :class:`LabelledSamples`.
    """
    if threshold is None and not (isinstance(keep_fraction, (int, float)) and 0 < keep_fraction <= 0.5):
        raise InvalidArgumentError(f"keep_fraction must be in (0, 0.5], got {keep_fraction!r}.")
    if threshold is not None and not np.isfinite(float(threshold)):
        raise InvalidArgumentError(f"threshold must be a finite number, got {threshold!r}.")
    lat = Latent.sample(G, n, seed=seed, psi=psi, space="w")
    scores = score_latents(G, lat, scorer, batch_size=batch_size, noise_mode=noise_mode, progress=progress)
    if threshold is not None:
        keep = torch.arange(n)
        labels = (scores > float(threshold)).to(torch.float32)
    else:
        k = min(max(1, int(round(n * float(keep_fraction)))), n // 2)
        order = torch.argsort(scores, descending=True, stable=True)
        top, bottom = order[:k], order[n - k:]
        keep = torch.cat([top, bottom])
        labels = torch.cat([torch.ones(len(top)), torch.zeros(len(bottom))])
    return LabelledSamples(lat.select(keep.tolist()), labels, scores[keep], lat, scores)


def find_boundary(G, scorer: Scorer, *, n: int = INTERFACEGAN.n, keep_fraction: float = INTERFACEGAN.keep_fraction,
                  threshold: float | None = None, psi: float = 1.0, seed: int = 0, method: str = INTERFACEGAN.method,
                  regularization: float = INTERFACEGAN.regularization, validation_fraction: float = 0.0,
                  name: str | None = None, batch_size: int = 32,
                  progress=no_progress) -> Direction:
    """:func:`sample_and_label` then :func:`fit_boundary`: a W boundary for whatever ``scorer`` measures.

    The defaults (4,000 codes, the extreme 10% at each end, an L2-SVM) are the preset
    :data:`stylekit.edit.presets.INTERFACEGAN`, the protocol ``bench editing`` measures.

    ``meta['fit_seconds']`` includes sampling and scoring; ``meta['label_seconds']`` is that part alone.
    """
    t0 = time.perf_counter()
    data = sample_and_label(G, scorer, n, keep_fraction=keep_fraction, threshold=threshold, psi=psi, seed=seed,
                            batch_size=batch_size, progress=progress)
    t1 = time.perf_counter()
    boundary = fit_boundary(data.latent, data.labels, per_layer=False, method=method, regularization=regularization,
                            validation_fraction=validation_fraction, seed=seed,
                            name=name if name is not None else getattr(scorer, "name", ""))
    boundary.meta["label_seconds"] = t1 - t0
    boundary.meta["fit_seconds"] = time.perf_counter() - t0
    boundary.meta["n_sampled"] = int(n)
    return boundary


# ----------------------------------------------------------------------------------------------
# Conditional editing


def condition(primary: Direction, others: Sequence[Direction] | Direction) -> Direction:
    """Project out other attributes: the part of ``primary`` orthogonal to every ``others`` normal.

    ``n' = n - B (B^T B)^{-1} B^T n`` with ``B = [n_1 ... n_k]``, then renormalised (row by row for
    per-layer boundaries). Editing along ``n'`` keeps the signed distances to the other boundaries
    unchanged, so those attributes stay as they were (as far as they are linear in W).

    Returns: a new Direction named ``"<primary> | <others>"`` with unit norm and no offset.
    """
    if isinstance(others, Direction):
        others = [others]
    others = list(others)
    if not isinstance(primary, Direction) or not all(isinstance(o, Direction) for o in others):
        raise InvalidArgumentError("condition(primary, others) takes Direction objects (e.g. from fit_boundary).")
    if not others:
        return primary.unit()
    for o in others:
        if o.vector.shape[-1] != primary.vector.shape[-1]:
            raise InvalidArgumentError(f"boundary {o.name!r} has {o.vector.shape[-1]} dimensions but {primary.name!r} "
                                       f"has {primary.vector.shape[-1]}; they come from different models.")
    p = primary.vector.to(torch.float64)
    per_layer = p.ndim == 2 or any(o.vector.ndim == 2 for o in others)
    if per_layer:
        num = max(v.vector.shape[0] for v in [primary, *others] if v.vector.ndim == 2)
        rows = []
        for v in [primary, *others]:
            t = v.vector.to(torch.float64)
            if t.ndim == 2 and t.shape[0] != num:
                raise InvalidArgumentError(f"per-layer boundaries with {t.shape[0]} and {num} rows cannot be combined.")
            rows.append(t.expand(num, -1) if t.ndim == 1 else t)
        p_rows, o_rows = rows[0], torch.stack(rows[1:], dim=1)  # [L, D], [L, k, D]
        out = torch.stack([_project_out(p_rows[i], o_rows[i], primary.name) for i in range(num)])
    else:
        out = _project_out(p, torch.stack([o.vector.to(torch.float64) for o in others]), primary.name)
    meta = dict(primary.meta)
    meta["conditioned_on"] = [o.name for o in others]
    name = f"{primary.name} | {', '.join(o.name for o in others)}"
    return Direction(out.to(torch.float32), primary.layers, name, primary.method or "interfacegan", 1.0, None, meta)


def _project_out(n: torch.Tensor, others: torch.Tensor, name: str) -> torch.Tensor:
    """``n [D]`` minus its projection on the span of the rows of ``others [k, D]``, unit-normed."""
    b = others.t()  # [D, k]
    coef = torch.linalg.lstsq(b, n.unsqueeze(1)).solution  # least squares copes with dependent rows
    r = n - (b @ coef).squeeze(1)
    norm = r.norm()
    if norm < 1e-6 * max(float(n.norm()), 1e-12):
        raise InvalidArgumentError(f"direction {name!r} lies in the span of the boundaries to condition on; nothing "
                                   "is left after projecting them out. Condition on fewer attributes.")
    return r / norm


# ----------------------------------------------------------------------------------------------
# Scorers


class _PredictorScorer:
    def __init__(self, attribute: str, predictor):
        self.name = attribute
        self.attribute = attribute
        self.predictor = predictor
        self.threshold = 0.5

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.predictor.predict(images)[self.attribute]

    def __repr__(self) -> str:
        return f"predictor_scorer({self.attribute!r})"


def predictor_scorer(attribute: str, *, predictor="toyfaces", device=None) -> Scorer:
    """A scorer from an attribute predictor: images -> ``[N]`` probability of ``attribute`` (binary
    attributes) or its value in attribute units (continuous ones). Differentiable.

    Args:
        attribute: one of the predictor's attribute names (toyfaces: ``'glasses'``, ``'beard'``, ...).
        predictor: a loaded :class:`~stylekit.networks.predictor.AttributePredictor`, or a registered
            predictor name / file path for :func:`stylekit.checkpoints.predictor.load_predictor`.
        device: where to load it.
    """
    if not isinstance(predictor, torch.nn.Module):
        from ..checkpoints.predictor import load_predictor

        predictor = load_predictor(predictor, device=device if device is not None else "cpu")
    names = tuple(predictor.attribute_names)
    if attribute not in names:
        binary = tuple(predictor.binary_attributes)
        raise InvalidArgumentError(f"unknown attribute {attribute!r} for this predictor; valid names are: "
                                   f"{', '.join(names)} (binary ones: {', '.join(binary)}).")
    return _PredictorScorer(attribute, predictor)


class _ClipScorer:
    def __init__(self, clip, positive: str, neutral: str):
        self.clip = clip
        self.positive, self.neutral = positive, neutral
        self.name = positive
        self.threshold = 0.5

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.clip.zero_shot_scores(images, self.positive, self.neutral)

    def __repr__(self) -> str:
        return f"clip_scorer({self.positive!r}, {self.neutral!r})"


def clip_scorer(positive: str | Sequence[str], neutral: str | Sequence[str], *, clip=None, model: str = "toyfaces",
                device=None) -> Scorer:
    """A scorer from CLIP zero-shot: probability ``[N]`` that ``positive`` rather than ``neutral`` describes
    each image (e.g. ``clip_scorer("a face with glasses", "a face")``). Differentiable.

    Args:
        positive, neutral: the two prompts (validated by the CLIP backend); either may be a tuple of
            phrasings of one class, whose embeddings are averaged (``("a face with black hair",
            "a face with blond hair")`` for "not red").
        clip: a loaded ``stylekit.clip_backend.ClipModel`` (default: ``load_clip(model, device=device)``).
        model: CLIP name for :func:`stylekit.clip_backend.load_clip` (default the offline ``'toyfaces'``).
    """
    classes = []
    for label, p in (("positive", positive), ("neutral", neutral)):
        phrasings = (p,) if isinstance(p, str) else tuple(p) if isinstance(p, (tuple, list)) else None
        if not phrasings or any(not isinstance(x, str) or not x.strip() for x in phrasings):
            raise InvalidArgumentError(f"the {label} prompt must be a non-empty string (or a tuple of them), "
                                       f"got {p!r}.")
        classes.append(tuple(x.strip() for x in phrasings))
    if set(classes[0]) & set(classes[1]):
        raise InvalidArgumentError("the positive and neutral prompts are the same; describe the attribute in the "
                                   "positive one (e.g. 'a face with glasses' vs 'a face').")
    if clip is None:
        from ..clip_backend import load_clip

        clip = load_clip(model, device=device if device is not None else "cpu")
    clip.validate_prompts(list(classes[0] + classes[1]))
    return _ClipScorer(clip, positive if isinstance(positive, str) else classes[0],
                       neutral if isinstance(neutral, str) else classes[1])


# ----------------------------------------------------------------------------------------------
# Files


def save_boundary(boundary: Direction, path):
    """Write a boundary (``.npy`` InterFaceGAN layout, ``.pt`` or ``.safetensors``); see
    :func:`stylekit.edit.direction.save_direction`."""
    return save_direction(boundary, path)


def load_boundary(path, *, G=None, name: str | None = None) -> Direction:
    """Read a boundary or a published direction file (InterFaceGAN ``.npy``, e4e / PTI ``.pt`` tensors
    ``[1, 512]`` / ``[512]`` / ``[18, 512]``, stylekit ``.pt`` / ``.safetensors``); see
    :func:`stylekit.edit.direction.load_direction`. Checked against ``G`` when given."""
    return load_direction(path, G=G, name=name)
