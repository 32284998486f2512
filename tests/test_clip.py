"""The CLIP backend: the toyfaces CLIP through open_clip, preprocessing, prompts, zero-shot, errors."""

from __future__ import annotations

import json
import math
import re
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from stylekit.clip_backend import ClipModel, load_clip
from stylekit.errors import InvalidArgumentError, ModelNotFoundError, OfflineError


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("test tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def clip() -> ClipModel:
    torch.set_num_threads(1)
    return load_clip("toyfaces")


def test_import_does_no_work():
    code = "import sys, stylekit.clip_backend, stylekit.toyfaces.clip_model; print('open_clip' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_toyfaces_is_built_by_open_clip_create_model(monkeypatch):
    import open_clip

    from stylekit.registry import artifact_path
    from stylekit.toyfaces.clip_model import MODEL_CONFIG, OPEN_CLIP_NAME, config_path

    calls = []
    real_create = open_clip.create_model

    def spy(name, *args, **kwargs):
        calls.append((name, kwargs.get("pretrained", args[0] if args else None)))
        return real_create(name, *args, **kwargs)

    monkeypatch.setattr(open_clip, "create_model", spy)
    model = load_clip("toyfaces")
    assert calls == [(OPEN_CLIP_NAME, str(artifact_path("toyfaces", "clip")))]
    assert OPEN_CLIP_NAME in open_clip.list_models()
    assert isinstance(model.model, open_clip.CLIP)
    assert json.loads(config_path().read_text()) == MODEL_CONFIG
    assert model.image_size == (128, 128)  # 64 px renders are upsampled 2x, so eyes and mouths survive the stem
    assert model.context_length == MODEL_CONFIG["text_cfg"]["context_length"]
    assert not any(p.requires_grad for p in model.model.parameters())
    assert not model.model.training


def test_shipped_weights_are_small_safetensors_with_config():
    from safetensors import safe_open

    from stylekit.registry import artifact_path
    from stylekit.toyfaces.clip_model import MODEL_CONFIG

    path = artifact_path("toyfaces", "clip")
    assert path.stat().st_size < 15 * 2**20
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        assert json.loads(meta["open_clip_config"]) == MODEL_CONFIG
        assert "train_config" in meta and "summary" in meta


def test_tokenise_and_encode_text(clip):
    tokens = clip.tokenize(["a face with glasses", "a bearded man"])
    assert tokens.shape == (2, clip.context_length) and tokens.dtype == torch.long
    emb = clip.encode_text(["a face with glasses", "a bearded man", "a face"])
    assert emb.shape == (3, clip.embed_dim)
    assert torch.allclose(emb.norm(dim=-1), torch.ones(3), atol=1e-5)
    avg = clip.text_embedding("a face with glasses")
    assert avg.shape == (clip.embed_dim,) and abs(float(avg.norm()) - 1) < 1e-5
    # Same meaning in other words is closer than a different attribute.
    e = clip.encode_text(["a face with glasses", "a person with eyeglasses", "a face with red hair"])
    assert float(e[0] @ e[1]) > float(e[0] @ e[2])


def test_zero_shot_clearly_above_chance_on_fresh_renders(clip):
    from stylekit.toyfaces.clip_model import zero_shot_accuracy

    acc = zero_shot_accuracy(clip, per_class=16, seed=777, attributes=["glasses", "beard", "red_hair"])
    # The shipped weights (weights/clip.md) reach 0.96 / 0.99 on glasses / beard and 0.76 on red hair
    # over 400 held-out faces; chance is 0.5.
    bars = {"glasses": 0.85, "beard": 0.85, "red_hair": 0.6}
    for name, value in acc.items():
        assert value >= bars[name], f"zero-shot accuracy for {name} is only {value:.2f}"


def test_a_class_of_prompts_is_the_mean_of_its_phrasings(clip):
    import torch.nn.functional as F

    phrasings = ("a face with black hair", "a face with blond hair")
    cls = clip.text_embedding(phrasings)
    every = clip.encode_text([t.format(p) for p in phrasings for t in clip.templates])
    assert torch.allclose(cls, F.normalize(every.mean(0), dim=0), atol=1e-5)
    assert not torch.allclose(cls, clip.text_embedding(phrasings[0]), atol=1e-3)
    with pytest.raises(InvalidArgumentError, match="empty"):
        clip.text_embedding(("a face", " "))


def test_a_frozen_model_remembers_text_embeddings_and_a_trainable_one_does_not(monkeypatch):
    model = load_clip("toyfaces")
    calls = []
    encode = type(model).encode_text
    monkeypatch.setattr(type(model), "encode_text", lambda self, prompts: calls.append(1) or encode(self, prompts))
    first = model.text_embedding("a face with glasses")
    first.add_(1.0)  # a caller changing its copy must not change the remembered one
    again = model.text_embedding("a face with glasses")
    assert len(calls) == 1
    assert torch.allclose(again, model.text_embedding("a face with glasses"))
    assert torch.allclose(again.norm(), torch.tensor(1.0))
    model.text_embedding("a face with glasses", templates=("{}",))  # other templates: computed
    assert len(calls) == 2
    live = ClipModel(model.model.train().requires_grad_(True), model.tokenizer, name="live", pretrained=None,
                     freeze=False)
    live.text_embedding("a face with glasses")
    live.text_embedding("a face with glasses")
    assert len(calls) == 4


def test_bf16_model_keeps_its_text_tower_in_float32():
    fp32, bf16 = load_clip("toyfaces", precision="fp32"), load_clip("toyfaces", precision="bf16")
    prompts = ["a face with glasses", "a smiling face"]
    assert torch.equal(fp32.encode_text(prompts), bf16.encode_text(prompts))


def test_red_hair_against_the_other_hair_colours(clip):
    from stylekit.toyfaces.clip_model import NEGATED_PROMPTS, zero_shot_accuracy

    assert isinstance(NEGATED_PROMPTS["red_hair"], tuple)
    acc = zero_shot_accuracy(clip, per_class=24, seed=778, prompts="negated", attributes=["red_hair"])
    # weights/clip.md: 1.00 over 400 held-out faces (0.87 against the bare "a face")
    assert acc["red_hair"] >= 0.9


def test_interfacegan_clip_scorer_takes_a_class_of_prompts(clip):
    from stylekit.edit.interfacegan import clip_scorer
    from stylekit.toyfaces import render_batch, sample_attributes

    images = render_batch(sample_attributes(4, seed=9), size=64)
    others = ("a face with black hair", "a face with blond hair")
    scorer = clip_scorer("a face with red hair", others, clip=clip)
    assert torch.allclose(scorer(images), clip.zero_shot_scores(images, "a face with red hair", others))
    with pytest.raises(InvalidArgumentError, match="non-empty"):
        clip_scorer("a face with red hair", (), clip=clip)
    with pytest.raises(InvalidArgumentError, match="same"):
        clip_scorer("a face with red hair", others + ("a face with red hair",), clip=clip)


def test_zero_shot_scores_are_probabilities(clip):
    from stylekit.toyfaces import render_batch, sample_attributes

    attrs = sample_attributes(6, seed=3)
    attrs["glasses"] = np.array([1, 1, 1, 0, 0, 0], dtype=np.float32)
    images = render_batch(attrs, size=64)
    p = clip.zero_shot_scores(images, "a face with glasses", "a face")
    assert p.shape == (6,) and bool(((p >= 0) & (p <= 1)).all())
    assert float(p[:3].mean()) > float(p[3:].mean())


@pytest.mark.parametrize("size", [64, 128])
def test_gradients_reach_the_image(clip, size):
    from stylekit.toyfaces import render_batch, sample_attributes

    images = render_batch(sample_attributes(2, seed=1), size=size).requires_grad_(True)
    sim = clip.similarity(images, "a face with glasses")
    assert sim.shape == (2,) and sim.requires_grad
    (1 - sim).sum().backward()
    assert images.grad is not None and images.grad.shape == images.shape
    assert torch.isfinite(images.grad).all() and float(images.grad.abs().sum()) > 0


def test_preprocess_matches_model_normalisation(clip):
    size = clip.image_size[0]
    x = torch.rand(2, 3, size, size) * 2 - 1
    mean = torch.tensor(clip.model.visual.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(clip.model.visual.image_std).view(1, 3, 1, 1)
    assert torch.allclose(clip.preprocess(x), ((x + 1) / 2 - mean) / std, atol=1e-6)
    assert clip.preprocess(torch.zeros(1, 3, 256, 200)).shape == (1, 3, size, size)
    # a 64 px generator output is enlarged to the model's input (bilinear), as a constant stays constant
    small = torch.full([1, 3, 64, 64], 0.5)
    assert torch.allclose(clip.preprocess(small), torch.full([1, 3, size, size], 0.75).sub(mean).div(std), atol=1e-5)
    with pytest.raises(InvalidArgumentError):
        clip.preprocess(torch.zeros(3, 64, 64))


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t "])
def test_empty_prompts_raise(clip, prompt):
    with pytest.raises(InvalidArgumentError, match="empty"):
        clip.encode_text([prompt])
    with pytest.raises(InvalidArgumentError):
        clip.zero_shot_scores(torch.zeros(1, 3, 64, 64), prompt, "a face")


def test_prompt_length_limit_is_the_context_length(clip):
    n = clip.context_length
    assert len(clip.tokenizer.encode("face")) == 1
    fits = " ".join(["face"] * (n - 2))          # + start and end markers = n tokens
    clip.encode_text([fits])
    with pytest.raises(InvalidArgumentError, match=str(n)):
        clip.encode_text([fits + " face"])
    with pytest.raises(InvalidArgumentError, match="shorten"):
        clip.text_embedding("a face with glasses and " * 20)


def test_unknown_model_names_raise():
    with pytest.raises(ModelNotFoundError, match="ViT-B-32"):
        load_clip("ViT-Nope-99")
    with pytest.raises(ModelNotFoundError, match="openai"):
        load_clip("ViT-B-32", "no-such-tag")
    with pytest.raises(ModelNotFoundError):
        load_clip("")


def test_real_open_clip_model_offline_without_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("STYLEKIT_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("STYLEKIT_HUB_MIRROR", raising=False)
    with pytest.raises(OfflineError, match="ViT-B-32") as info:
        load_clip("ViT-B-32", "openai", cache_dir=tmp_path)
    assert "hf download" in str(info.value) and "toyfaces" in str(info.value)
    with pytest.raises(OfflineError, match="ViT-B-16"):
        load_clip("ViT-B-16", cache_dir=tmp_path)  # default tag
    with pytest.raises(OfflineError, match="laion/CLIP-ViT-B-32-laion2B-s34B-b79K"):
        load_clip("hf://laion/CLIP-ViT-B-32-laion2B-s34B-b79K", cache_dir=tmp_path)
    with pytest.warns(DeprecationWarning, match="write 'hf://laion/"):  # the old form still resolves, with a word
        with pytest.raises(OfflineError, match="laion/CLIP-ViT-B-32-laion2B-s34B-b79K"):
            load_clip("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K", cache_dir=tmp_path)
    with pytest.raises(ModelNotFoundError, match="hf://owner/repo"):
        load_clip("hf://only-an-owner", cache_dir=tmp_path)


def test_toyfaces_with_missing_weights_file(tmp_path):
    from stylekit.errors import CheckpointError

    with pytest.raises(CheckpointError, match="train new ones.*clip.md"):
        load_clip("toyfaces", pretrained=tmp_path / "nothing.safetensors")


def test_augment_keeps_shape_range_and_is_seeded():
    from stylekit.toyfaces import render_batch, sample_attributes
    from stylekit.augment import augment

    x = render_batch(sample_attributes(4, seed=5), size=32)
    a = augment(x, torch.Generator().manual_seed(1))
    b = augment(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and float(a.min()) >= -1 and float(a.max()) <= 1
    assert torch.equal(a, b) and not torch.equal(a, x)
    assert augment(x, torch.Generator(), strength=0) is x


def test_hard_negative_captions_differ_from_the_true_caption():
    from stylekit.toyfaces import sample_attributes
    from stylekit.train.clip_data import captions_with_negatives, face_at

    def has_glasses(text: str) -> bool:
        text = text.replace("no glasses", "").replace("without glasses", "")
        return "glasses" in text or "spectacles" in text

    attrs = sample_attributes(30, seed=2)
    faces = [face_at(attrs, i) for i in range(30)]
    pos, neg = captions_with_negatives(faces, np.random.default_rng(0), 0.0, ("a photo of {}.",), 5)
    assert len(pos) == len(neg) == 30
    for face, p, group in zip(faces, pos, neg):
        assert 1 <= len(group) <= 5 and p not in group and len(set(group)) == len(group)
        # glasses are always named when present, so the glasses-flipped negative is always there
        assert has_glasses(p) == (face["glasses"] >= 0.5)
        assert any(has_glasses(g) != has_glasses(p) for g in group)
    _, none = captions_with_negatives(faces[:3], np.random.default_rng(0), 0.5, ("{}",), 0)
    assert none == [[], [], []]


def test_smile_negative_mirrors_the_expression():
    from stylekit.toyfaces import sample_attributes
    from stylekit.train.clip_data import captions_with_negatives, face_at, mirrored_smile

    rng = np.random.default_rng(1)
    assert mirrored_smile(0.8, rng) == pytest.approx(-0.8) and mirrored_smile(-0.2, rng) == pytest.approx(0.4)
    assert abs(mirrored_smile(0.05, rng)) == pytest.approx(0.7)
    attrs = sample_attributes(20, seed=4)
    faces = [face_at(attrs, i) for i in range(20)]
    pos, neg = captions_with_negatives(faces, np.random.default_rng(0), 0.0, ("{}",), 0, smile_negative=True)
    moods = {"smile": ("smiling", "happy", "beaming", "laughing", "grinning", "friendly", "cheerful", "smile", "grin"),
             "frown": ("unhappy", "frowning", "glum", "sad", "grumpy", "frown")}

    def mood(text):
        said = set(re.findall(r"[a-z-]+", text))
        return {m for m, words in moods.items() if said & set(words)}

    for face, p, group in zip(faces, pos, neg):
        assert len(group) == 1 and group[0] != p
        if face["smile"] > 0.15:          # a smiling face's negative frowns, and a frowning face's smiles
            assert mood(p) == {"smile"} and mood(group[0]) == {"frown"}, (p, group[0])
        elif face["smile"] < -0.15:
            assert mood(p) == {"frown"} and mood(group[0]) == {"smile"}, (p, group[0])
        else:                              # a calm face's negative is clearly one or the other
            assert not mood(p) and len(mood(group[0])) == 1, (p, group[0])


class _PromptSpy:
    """A stand-in CLIP that records the prompt pairs it is asked about and calls every face positive."""

    def __init__(self):
        self.pairs = []

    def zero_shot_scores(self, images, positive, other):
        self.pairs.append((positive, other))
        return torch.ones(len(images))


def test_zero_shot_accuracy_knows_smiles_and_refuses_other_continuous_attributes():
    from stylekit.toyfaces.clip_model import HELDOUT_PROMPTS, zero_shot_accuracy

    for prompts, pair in (("negated", ("a smiling face", "a frowning face")), ("neutral", ("a smiling face", "a face")),
                          ("heldout", HELDOUT_PROMPTS["smile"])):
        spy = _PromptSpy()
        acc = zero_shot_accuracy(spy, per_class=4, seed=5, prompts=prompts, attributes=["smile"])
        assert set(acc) == {"smile"} and set(spy.pairs) == {pair}
        assert acc["smile"] == 0.5        # "always positive" is right on the smiles only: the classes are balanced
    with pytest.raises(InvalidArgumentError, match="smile"):
        zero_shot_accuracy(_PromptSpy(), per_class=2, attributes=["yaw"])
    with pytest.raises(InvalidArgumentError, match="heldout"):
        zero_shot_accuracy(_PromptSpy(), per_class=2, prompts="other")


def _training_vocabulary() -> set[str]:
    """Every word of every string in the caption generator's source (templates, word lists, and, to err on the
    safe side, its docstrings) and of the training / prompt templates."""
    import ast
    from pathlib import Path

    import stylekit.toyfaces.captions as captions
    from stylekit.clip_backend import DEFAULT_TEMPLATES
    from stylekit.train.clip import ClipConfig

    words: set[str] = set()
    for node in ast.walk(ast.parse(Path(captions.__file__).read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            words |= set(re.findall(r"[a-z]+", node.value.lower()))
    for template in DEFAULT_TEMPLATES + tuple(ClipConfig().templates):
        words |= set(re.findall(r"[a-z]+", template.lower()))
    return words


def test_training_vocabulary_covers_every_training_caption():
    """The vocabulary read from the source really holds every word training sees (so the check below means it)."""
    from stylekit.toyfaces import sample_attributes
    from stylekit.train.clip import ClipConfig
    from stylekit.train.clip_data import captions_with_negatives, face_at

    vocab = _training_vocabulary()
    attrs = sample_attributes(1500, seed=11)
    faces = [face_at(attrs, i) for i in range(1500)]
    pos, neg = captions_with_negatives(faces, np.random.default_rng(3), 0.5, ClipConfig().templates, 5,
                                       smile_negative=True)
    said = {w for text in pos + [n for group in neg for n in group] for w in re.findall(r"[a-z]+", text)}
    assert said <= vocab, sorted(said - vocab)
    assert {"glasses", "beard", "red", "smiling", "frowning", "eyes", "mouth", "photo"} <= said


def test_heldout_phrasings_use_no_training_words():
    from stylekit.toyfaces.attributes import BINARY_ATTRIBUTES
    from stylekit.toyfaces.clip_model import FUNCTION_WORDS, HELDOUT_PROMPTS

    vocab = _training_vocabulary()
    assert set(HELDOUT_PROMPTS) == set(BINARY_ATTRIBUTES) | {"smile"}
    for name, (positive, other) in HELDOUT_PROMPTS.items():
        others = (other,) if isinstance(other, str) else other
        assert positive not in others
        for phrase in (positive,) + others:
            words = re.findall(r"[a-z]+", phrase.lower())
            content = [w for w in words if w not in FUNCTION_WORDS]
            assert content, phrase
            assert not set(content) & vocab, (name, phrase, set(content) & vocab)
            inside = [(v, w) for w in content for v in vocab if len(v) >= 4 and v in w]
            assert not inside, (name, phrase, inside)


def test_zero_shot_accuracy_heldout_asks_the_heldout_pairs():
    from stylekit.toyfaces.clip_model import HELDOUT_PROMPTS, zero_shot_accuracy

    spy = _PromptSpy()
    acc = zero_shot_accuracy(spy, per_class=2, prompts="heldout", attributes=list(HELDOUT_PROMPTS))
    assert set(spy.pairs) == set(HELDOUT_PROMPTS.values()) and set(acc.values()) == {0.5}


def test_shipped_clip_tells_a_smile_from_a_frown(clip):
    from stylekit.toyfaces.clip_model import zero_shot_accuracy

    # held-out renders (seed stream training never uses); the shipped weights read 0.96 on 400
    acc = zero_shot_accuracy(clip, per_class=24, seed=779, prompts="negated", attributes=["smile"])
    assert acc["smile"] >= 0.8


def test_smile_weight_adds_a_smile_vs_frown_term_to_the_auxiliary_loss():
    from stylekit.toyfaces.attributes import ATTRIBUTES, default_attributes
    from stylekit.train.clip import attribute_loss

    faces = [dict(default_attributes(), smile=s) for s in (0.8, -0.7, 0.05)]
    pred = torch.zeros(3, len(ATTRIBUTES) + 1, requires_grad=True)
    base = attribute_loss(pred, faces)
    weighted = attribute_loss(pred, faces, smile_weight=2.0)
    assert float(weighted - base) == pytest.approx(2.0 * math.log(2.0), rel=1e-5)  # logit 0 on two worded faces
    weighted.backward()
    grad = pred.grad[:, len(ATTRIBUTES)]
    assert grad[0] < 0 < grad[1] and grad[2] == 0   # pushes the smile up, the frown down, ignores "calm"
    assert float(attribute_loss(pred.detach()[2:], faces[2:], smile_weight=2.0)) == pytest.approx(
        float(attribute_loss(pred.detach()[2:], faces[2:])))


def test_fresh_images_mix_renders_and_labelled_generator_samples():
    from conftest import tiny_stylegan2
    from stylekit.toyfaces.attributes import BINARY_ATTRIBUTES
    from stylekit.train.clip_data import fresh_images

    G = tiny_stylegan2()                              # 16x16 samples, enlarged to the requested 64
    imgs, faces = fresh_images(6, np.random.default_rng(0), 64, True, generator=G, generator_fraction=0.5)
    assert imgs.shape == (6, 3, 64, 64) and len(faces) == 6 and float(imgs.abs().max()) <= 1.0
    assert all(set(f) == set(faces[0]) for f in faces)
    assert all(f[b] in (0.0, 1.0) for f in faces for b in BINARY_ATTRIBUTES)
    renders, _ = fresh_images(4, np.random.default_rng(1), 64, True)
    same, _ = fresh_images(4, np.random.default_rng(1), 64, True, generator=G, generator_fraction=0.0)
    assert torch.equal(same, renders)
    samples, _ = fresh_images(4, np.random.default_rng(1), 64, True, generator=G, generator_fraction=1.0)
    with torch.no_grad():   # a random-weight G draws nothing like a face: every image is G's
        assert all(float((a - b).abs().mean()) > 0.05 for a, b in zip(samples, renders))


def test_training_loop_runs_writes_and_resumes(tmp_path):
    from stylekit.train.clip import ClipConfig, train_clip

    run = tmp_path / "run"
    out = run / "clip.safetensors"
    cfg = ClipConfig(steps=2, batch=6, fresh_per_step=3, buffer_size=8, eval_every=0, snapshot_every=1, out=str(run))
    lines: list[str] = []
    summary = train_clip(cfg, log=lines.append)
    assert summary["steps"] == 2 and np.isfinite(summary["final_loss"])
    trained = load_clip("toyfaces", pretrained=out)
    assert trained.encode_text(["a face"]).shape == (1, 128)
    cfg3 = ClipConfig(steps=3, batch=6, fresh_per_step=3, buffer_size=8, eval_every=0, snapshot_every=1, out=str(run))
    with pytest.raises(InvalidArgumentError, match="other settings"):
        train_clip(cfg3)
    lines.clear()
    train_clip(ClipConfig(**{**cfg.__dict__, "steps": 2}), log=lines.append)
    assert any("resumed" in line and "step 2" in line for line in lines)


def test_fine_tune_init_resizes_only_the_positional_grid(tmp_path):
    from safetensors.torch import load_file, save_file

    from stylekit.toyfaces.clip_model import create_untrained
    from stylekit.train.clip_weights import load_init_weights, save_clip_weights

    src = create_untrained(seed=1)
    path = save_clip_weights(src, tmp_path / "src.safetensors", dtype=torch.float32)
    state = load_file(str(path))
    key = "visual.attnpool.positional_embedding"
    width = state[key].shape[1]
    small = torch.cat([torch.full([1, width], 7.0), torch.full([4, width], 2.0)])  # a 2x2 grid, as at 64 px
    save_file({**state, key: small}, str(tmp_path / "grid2.safetensors"))
    model = create_untrained(seed=2)
    grid = round((model.state_dict()[key].shape[0] - 1) ** 0.5)
    assert load_init_weights(model, tmp_path / "grid2.safetensors") == [key]
    after = model.state_dict()
    assert after[key].shape == (1 + grid * grid, width)
    assert torch.all(after[key][0] == 7.0) and torch.allclose(after[key][1:], torch.full_like(after[key][1:], 2.0))
    assert torch.equal(after["text_projection"], state["text_projection"])
    bad = {**state, "text_projection": state["text_projection"][:, :3].contiguous()}
    save_file(bad, str(tmp_path / "bad.safetensors"))
    with pytest.raises(InvalidArgumentError, match="text_projection"):
        load_init_weights(model, tmp_path / "bad.safetensors")
    with pytest.raises(InvalidArgumentError, match="not found"):
        load_init_weights(model, tmp_path / "missing.safetensors")


def test_clip_precision_bf16_agrees_with_fp32():
    """The towers can compute in bfloat16 (autocast; weights stay float32): embeddings stay float32 and close."""
    from stylekit.errors import InvalidArgumentError
    from stylekit.toyfaces import render_batch, sample_attributes

    fp32 = load_clip("toyfaces")
    bf16 = load_clip("toyfaces", precision="bf16")
    assert fp32.precision == "fp32" and bf16.precision == "bf16"
    assert next(bf16.model.parameters()).dtype == torch.float32
    images = render_batch(sample_attributes(6, seed=3), size=64)
    a, b = fp32.encode_image(images), bf16.encode_image(images)
    assert b.dtype == torch.float32
    assert float((a * b).sum(-1).min()) > 0.99  # cosine of the unit embeddings
    ta, tb = fp32.encode_text(["a face with glasses"]), bf16.encode_text(["a face with glasses"])
    assert float((ta * tb).sum()) > 0.99
    assert load_clip("toyfaces", precision="auto").precision in ("fp32", "bf16")
    with pytest.raises(InvalidArgumentError, match="precision"):
        load_clip("toyfaces", precision="int8")
