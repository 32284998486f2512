"""The Edit, StyleSpace and Text tabs on a real-size model (issue 15): ffhq-1024 with its companions (CLIP ViT-B-32,
e4e's published directions) from the rehearsal world, at tiny settings. Long fits run as background jobs
(demos.jobs): a callback never computes them, a job runs once per key, and its result is cached on disk."""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("gradio")
pytest.importorskip("open_clip")

MODEL = "ffhq-1024"


@pytest.fixture
def ffhq(rehearsal_world, rehearsal_env, monkeypatch, tmp_path):
    """The rehearsal FFHQ world (generator, ViT-B-32, directions), a fresh STYLEKIT_CACHE, no jobs, and the
    gallery's in-memory fits of ffhq-1024 forgotten; yields the loaded generator."""
    from demos import common, jobs, text

    rehearsal_env(rehearsal_world("ffhq-1024", "clip-vit-b-32", "directions"))
    monkeypatch.setenv("STYLEKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(jobs, "_JOBS", {})
    monkeypatch.setattr(text, "_MAPPERS", type(text._MAPPERS)())
    with common._FIT_LOCK:
        for key in [k for k in common._FITS if k and k[0] == MODEL]:
            del common._FITS[key]
    return common.get_generator(MODEL)


def _before_after(image) -> bool:
    """A before | after row of two display-size panels."""
    w, h = image.size
    return h >= 256 and abs(w - 2 * h) <= 8


def _wait(job, timeout: float = 600.0):
    from demos import jobs

    done = jobs.wait(job.key, timeout)
    assert done is not None and done.state == "done", done.describe() if done else "no job"
    return done


# ------------------------------------------------------------------------------------------------
# demos.jobs: once per key, sized to memory


def test_job_runs_once_for_two_threads_and_reports_progress(monkeypatch):
    from demos import jobs

    monkeypatch.setattr(jobs, "_JOBS", {})
    calls = []
    gate = threading.Event()

    def compute(report):
        calls.append(1)
        report(1, 4, "one of four")
        gate.wait(10)
        return "result"

    found = []
    threads = [threading.Thread(target=lambda s=s: found.append(jobs.start(("k",), "a test fit", compute, session=s)))
               for s in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert found[0] is found[1]
    deadline = time.monotonic() + 10
    while found[0].state != "running" or found[0].done < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    line = found[0].describe("someone else")
    assert "25%" in line and "started by another session" in line, line
    gate.set()
    assert _wait(found[0]).result == "result"
    assert jobs.start(("k",), "a test fit", compute).result == "result"  # done: not computed again
    assert calls == [1]


def test_failed_job_says_why_and_may_be_started_again(monkeypatch):
    from demos import jobs
    from stylekit.errors import InvalidArgumentError

    monkeypatch.setattr(jobs, "_JOBS", {})

    def bad(report):
        raise InvalidArgumentError("no such thing; do this instead.")

    job = jobs.start(("bad",), "a failing fit", bad)
    jobs.wait(job.key, 10)
    assert job.state == "failed" and "no such thing" in job.describe()
    again = jobs.start(("bad",), "a failing fit", lambda report: 3)
    assert again is not job and _wait(again).result == 3


def test_cached_fit_computes_once_under_two_threads():
    from demos import common

    key = ("test-model", "cached-fit-twice", time.monotonic())
    calls = []

    def compute():
        calls.append(1)
        time.sleep(0.3)
        return object()

    out = []
    threads = [threading.Thread(target=lambda: out.append(common.cached_fit(key, compute))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and out[0] is out[1]


def test_batches_follow_the_memory_budget():
    from demos import jobs

    gb = 10 ** 9
    assert jobs.batch_for("grad_image", 1024, cap=16, budget=3 * gb) == 2
    assert jobs.batch_for("grad_image", 1024, cap=16, budget=gb) == 1  # never below one
    assert jobs.batch_for("grad_image", 64, cap=16, budget=gb) == 16  # small images: the cap
    assert jobs.batch_for("cotangent", 1024, cap=32, budget=3 * gb, fixed=int(1.3 * gb)) == 8
    assert 0 < jobs.job_budget() <= jobs.JOB_MEMORY_GB * gb
    assert jobs.batch_for("grad_image", 1024, cap=8, budget=jobs.call_budget()) == 1  # a call: one 1024 px image
    assert jobs.available_bytes() > 0


# ------------------------------------------------------------------------------------------------
# Text tab on ffhq-1024 with ViT-B-32


def _text(method, steps=1, latent=None, prompt="a face with glasses"):
    from demos import text

    return text.text_edit(MODEL, prompt, "a face", method, 2.0, steps, 0.0, 20, False, latent)


def test_text_uses_the_models_clip(ffhq):
    from demos import text

    st = text.settings_for(MODEL)
    assert st.clip == "ViT-B-32" and st.preset == "styleclip"
    clip = text.clip_model(st.clip)
    assert clip.embed_dim == 512


def test_global_without_a_table_answers_at_once_then_the_background_job_makes_one(ffhq, monkeypatch):
    from demos import jobs, text
    from stylekit.text import cache_path

    calls = []
    real = __import__("stylekit.text.relevance", fromlist=["relevance_part"]).relevance_part
    import stylekit.text.relevance as rel

    def counted(*args, **kwargs):
        calls.append(kwargs.get("batch_size"))
        return real(*args, **kwargs)

    monkeypatch.setattr(rel, "relevance_part", counted)
    image, info, result = _text("global")
    assert image is None and result is None
    assert "Compute in background" in info and "ViT-B-32" in info, info
    assert calls == []  # nothing computed inside the call
    assert "No background job" in text.text_status(MODEL, "a face with glasses", "global", 1)

    line = text.text_prepare(MODEL, "a face with glasses", "global", 1, images=1, rank=2)
    job = jobs.get(("relevance", MODEL, "ViT-B-32"))
    assert job is not None and job.label in line
    image, info, _ = _text("global")  # while it computes (or queues), the call still answers at once
    assert image is None or "Global direction" in info
    _wait(job)
    images, chunk = text.relevance_plan(ffhq)
    assert calls == [images] and images <= 2 and chunk <= 32
    assert cache_path(ffhq, text.clip_model("ViT-B-32")).is_file()
    image, info, result = _text("global")
    assert image is not None and _before_after(image) and "Global direction" in info, info
    assert "table of 1 images" in info
    assert "ready" in text.text_prepare(MODEL, "a face with glasses", "global", 1, images=1, rank=2)


def test_optimize_tiny_steps_on_ffhq(ffhq):
    image, info, result = _text("optimize", steps=1)
    assert _before_after(image), image.size
    assert "Optimised 1 steps" in info and "ViT-B-32" in info
    assert result is not None and result.space == "w+"


def test_mapper_is_a_background_job_with_a_bounded_batch(ffhq):
    from demos import jobs, text

    image, info, _ = _text("mapper", steps=1)
    assert image is None and "Compute in background" in info, info
    st = text.settings_for(MODEL)
    assert text.mapper_batch(ffhq, st) <= 2  # 1024 px: at most two codes per step within the 3 GB budget
    text.text_prepare(MODEL, "a face with glasses", "mapper", 1)
    job = _wait(jobs.get(text._mapper_key(MODEL, st, "a face with glasses", 1)))
    assert job.result.endswith(".safetensors")
    image, info, result = _text("mapper", steps=1)
    assert image is not None and _before_after(image) and "Mapper for" in info and result is not None


# ------------------------------------------------------------------------------------------------
# Edit tab on ffhq-1024: published directions, InterFaceGAN from CLIP zero-shot labels


def test_published_directions_are_offered_and_edit_at_full_size(ffhq):
    from demos import edit

    attributes, directions = edit.edit_model_choices(MODEL)
    assert set(directions.constructor_args["choices"]) >= {("age", "age"), ("smile", "smile"), ("pose", "pose")} or \
        {"age", "smile", "pose"} <= {c[0] if isinstance(c, tuple) else c for c in directions.choices}
    assert "smile" in [c[0] if isinstance(c, tuple) else c for c in attributes.choices]
    image, info, out = edit.edit_published(MODEL, "age", 2.0, "all", None)
    assert _before_after(image) and "Published direction **age**" in info and "e4e-ffhq-age" in info, info
    base = edit.current_latent(ffhq, None)
    assert float((out.tensor - base.tensor.cpu()).abs().max()) > 0
    with pytest.raises(Exception, match="published direction must be one of"):
        edit.edit_published(MODEL, "wings", 2.0, "all", None)


def test_interfacegan_from_clip_labels_is_a_cached_background_job(ffhq):
    from demos import common, edit, jobs

    image, info, out = edit.edit_interfacegan(MODEL, "smile", 3.0, "all", None, samples=20)
    assert image is None and out is None and "Fit in background" in info, info
    line = edit.edit_interfacegan_fit(MODEL, "smile", 20)
    key = edit._fit_key(MODEL, "smile", 20)
    job = _wait(jobs.get(key))
    assert "InterFaceGAN boundary of 'smile'" in line and job.result.endswith(".pt")
    assert edit.label_batch(ffhq) <= 32
    image, info, out = edit.edit_interfacegan(MODEL, "smile", 3.0, "all", None, samples=20)
    assert _before_after(image) and "fitted on 20 CLIP-labelled samples" in info and "CLIP ViT-B-32 reads" in info, info
    # a new process (no job record, nothing in memory) finds the boundary on disk and computes nothing
    jobs.forget(key)
    with common._FIT_LOCK:
        for k in [k for k in common._FITS if k[0] == MODEL and k[1] == "interfacegan-clip"]:
            del common._FITS[k]
    assert "ready" in edit.edit_interfacegan_fit(MODEL, "smile", 20)
    assert jobs.get(key) is None
    with pytest.raises(Exception, match="unknown attribute 'wings'"):
        edit.edit_interfacegan(MODEL, "wings", 3.0, "all", None, samples=20)


def test_stylespace_find_channels_with_clip_on_ffhq(ffhq, monkeypatch):
    from demos import stylespace

    from demos import common
    from stylekit.edit import stylespace as library

    monkeypatch.setattr(stylespace, "LARGE_CANDIDATES", 2)  # small: two channels tried, a random face beside the start
    monkeypatch.setattr(stylespace, "LARGE_GRADIENT_SAMPLES", 1)
    with common._FIT_LOCK:
        for k in [k for k in common._FITS if k[1] == "stylespace-sample-gradients"]:
            del common._FITS[k]
    calls = []
    original = library.gradient_scores
    monkeypatch.setattr(library, "gradient_scores", lambda *a, **kw: calls.append(1) or original(*a, **kw))
    table, layer, channel, amount = stylespace.stylespace_find(MODEL, "smile", 3, None)
    lines = table.splitlines()
    assert len(lines) == 4 and "CLIP p('a photo of a smiling face')" in lines[0], table
    assert sum("->" in line for line in lines[1:]) == 2 and "not tried" in lines[3], table  # 2 tried, 1 by gradient
    assert len(calls) == 2  # the current face, then the random face
    stylespace.stylespace_find(MODEL, "smile", 3, None)
    assert len(calls) == 3  # the random face's gradients were kept
    assert layer in stylespace.layer_choices(ffhq) and abs(amount) == abs(stylespace.STYLESPACE.amount)
    image, info, out = stylespace.stylespace_edit(MODEL, layer, channel, amount, "smile", None)
    assert _before_after(image) and f"channel {channel}" in info


def test_batch_defaults_are_sized_to_the_model(ffhq):
    """Generate's seeds, Style mixing's grid and Morph's frames default to fewer pictures on a 1024 px model."""
    import zipfile

    from demos import generate, mixing, morph
    from demos.common import get_generator

    assert mixing.default_seeds(get_generator("toyfaces")) == ("1-3", "10-13")  # 3 x 4 on small models
    assert generate.generate_defaults("toyfaces")["value"] == "0-7" and morph.morph_defaults("toyfaces")["value"] == 8
    assert generate.generate_defaults(MODEL)["value"] == "0-5" and morph.morph_defaults(MODEL)["value"] == 6
    rows, cols = mixing.mix_defaults(MODEL)
    assert (rows["value"], cols["value"]) == ("1-2", "10-11")  # 2 x 2 at 1024 px
    grid, archive, first = mixing.style_mix(MODEL, rows["value"], cols["value"], "coarse", 0.7, False, None)
    tile = mixing.tile_size(ffhq)
    w, h = grid.size  # a corner + 2 columns by a header row + 2 rows (tiles with a thin padding)
    assert 3 * tile <= w < 3 * tile + 16 and 3 * tile <= h < 3 * tile + 16, grid.size
    assert sorted(zipfile.ZipFile(archive).namelist()) == [f"row{i}-col{j}.png" for i in range(2) for j in range(2)]


def test_ganspace_uses_the_published_components_and_says_when_it_fits_its_own(ffhq, monkeypatch):
    import torch

    from demos import common, edit
    from stylekit import registry
    from stylekit.edit import ganspace

    image, info, out = edit.edit_ganspace(MODEL, 1, 2.0, "all", None)
    assert _before_after(image) and "from published components ganspace-ffhq" in info, info
    path = registry.artifact_path(registry.resolve("ganspace-ffhq", "directions"), local_files_only=True)
    torch.testing.assert_close(edit.pca(MODEL, ffhq).components, ganspace.load_components(path).components)
    with common._FIT_LOCK:
        common._FITS.pop((MODEL, "ganspace"), None)
    monkeypatch.setattr(edit, "PCA_SAMPLES", 500)
    companion = registry.companion
    monkeypatch.setattr(registry, "companion", lambda model, role, kind="generator":
                        "no-such-components" if role == "ganspace" else companion(model, role, kind))
    image, info, out = edit.edit_ganspace(MODEL, 1, 2.0, "all", None)
    assert "from a PCA of 500 samples fitted here" in info, info
    with common._FIT_LOCK:
        common._FITS.pop((MODEL, "ganspace"), None)
