"""Batch jobs (stylekit.jobs): folders of images, sharding over ranks, resuming, manifests and reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from stylekit.checkpoints.load import load_generator
from stylekit.cli import main
from stylekit.edit.direction import Direction, edit, save_direction
from stylekit.errors import InvalidArgumentError
from stylekit.jobs import Shard, edit_latents, fit_from_labels, invert_folder, label_samples, load_labels
from stylekit.jobs.files import load_latent_file
from stylekit.jobs.manifest import read_parts
from stylekit.latent import Latent

from conftest import untrained_clip

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def G():
    return load_generator("toyfaces")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Five rendered faces, one corrupt PNG and one text file."""
    from stylekit.toyfaces.attributes import sample_attributes
    from stylekit.toyfaces.renderer import render

    d = tmp_path_factory.mktemp("faces")
    attrs = sample_attributes(5, seed=3)
    for i in range(5):
        render({k: float(v[i]) for k, v in attrs.items()}, size=64, seed=i).save(d / f"face{i}.png")
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 4)
    (d / "notes.txt").write_text("not an image")
    return d


def _latents(out: Path) -> dict[str, torch.Tensor]:
    return {p.stem: load_latent_file(p)[0].tensor for p in sorted((out / "latents").glob("*.safetensors"))}


@pytest.fixture(scope="module")
def plain_run(G, folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("plain")
    summary = invert_folder(G, folder, out, method="encoder", batch_size=2, shard=Shard(0, 1), show_progress=False)
    return out, summary


def test_invert_folder_writes_latents_images_manifest_and_a_report(G, folder, plain_run):
    out, summary = plain_run
    assert (summary["processed"], summary["skipped"], summary["failed"]) == (5, 0, 2)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["count"] == 5 and manifest["complete"] and manifest["missing"] == 0
    assert manifest["processed"] == 5 and manifest["seconds"] > 0
    assert [it["name"] for it in manifest["items"]] == [f"face{i}" for i in range(5)]
    report = json.loads((out / "report.json").read_text())
    reasons = {r["source"]: r["reason"] for r in report["failed"]}
    assert set(reasons) == {"broken.png", "notes.txt"}
    assert "corrupt" in reasons["broken.png"] and "not an image" in reasons["notes.txt"]
    lat, meta = load_latent_file(out / "latents" / "face0.safetensors")
    assert lat.space == "w+" and lat.tensor.shape == (1, G.num_ws, G.w_dim)
    assert meta["record"]["source"] == "face0.png" and meta["record"]["psnr"] > 15
    # the stored latent is the library's inversion of the same file
    from stylekit.invert import invert

    ref = invert(G, folder / "face0.png", method="encoder")
    assert torch.allclose(lat.tensor, ref.latent.tensor, atol=1e-5)
    assert len(list((out / "images").glob("*.png"))) == 5


def test_a_rerun_skips_done_items_and_redoes_a_lost_one(G, folder, tmp_path):
    out = tmp_path / "out"
    invert_folder(G, folder, out, method="encoder", shard=Shard(0, 1), show_progress=False)
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "latents").iterdir()}
    (out / "latents" / "face3.safetensors").write_bytes(b"torn")  # a crash mid-write
    with open(out / "manifest.rank0.jsonl", "a") as fh:
        fh.write('{"kind": "item", "name": "fa')  # a torn manifest line is ignored
    again = invert_folder(G, folder, out, method="encoder", shard=Shard(0, 1), show_progress=False)
    assert (again["processed"], again["skipped"], again["failed"]) == (1, 4, 2)
    for p in (out / "latents").iterdir():
        if p.name != "face3.safetensors":
            assert p.stat().st_mtime_ns == stamps[p.name]
    assert load_latent_file(out / "latents" / "face3.safetensors")[0].tensor.shape[0] == 1
    assert again["manifest"]["count"] == 5 and again["manifest"]["complete"]


def test_two_ranks_by_env_then_merge_equal_the_one_process_run(G, folder, plain_run, tmp_path, monkeypatch):
    out = tmp_path / "sharded"
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    first = invert_folder(G, folder, out, method="encoder", batch_size=3, show_progress=False)
    assert first["world_size"] == 2 and first["rank"] == 0
    # sorted files: broken, face0..face4, notes -> rank 0 has broken, face1, face3, notes
    assert (first["processed"], first["failed"]) == (2, 2)
    assert not first["manifest"]["complete"] and first["manifest"]["missing"] == 3
    monkeypatch.setenv("RANK", "1")
    second = invert_folder(G, folder, out, method="encoder", batch_size=3, show_progress=False)
    assert second["processed"] == 3 and second["manifest"]["complete"]
    ours, theirs = _latents(out), _latents(plain_run[0])
    assert set(ours) == set(theirs) == {f"face{i}" for i in range(5)}
    for name in ours:
        assert torch.allclose(ours[name], theirs[name], atol=1e-5), name
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(r["rank"] for r in manifest["runs"]) == [0, 1]
    assert len(json.loads((out / "report.json").read_text())["failed"]) == 2


def test_cli_invert_prints_counts(folder, tmp_path, capsys):
    assert main(["invert", str(folder), str(tmp_path / "o"), "--method", "encoder", "--batch-size", "4"]) == 0
    printed = capsys.readouterr()
    assert "5 images done, 2 listed in the report" in printed.out
    assert "rank 0/1: 5 images done" in printed.err


def test_invert_folder_refuses_a_missing_folder_and_bad_batch(G, tmp_path):
    with pytest.raises(InvalidArgumentError, match="no such folder"):
        invert_folder(G, tmp_path / "nope", tmp_path / "o", show_progress=False)
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        invert_folder(G, tmp_path, tmp_path / "o", batch_size=0, show_progress=False)


# ----------------------------------------------------------------------------------------------
# label and fit-boundary


def test_label_chunks_resume_and_two_ranks_agree(G, tmp_path):
    out = tmp_path / "labels.safetensors"
    s = label_samples(G, out, scorer="predictor:smile,glasses", n=90, chunk_size=40, batch_size=32,
                      shard=Shard(0, 1), show_progress=False)
    assert (s["processed"], s["codes"]) == (3, 90) and s["labels"] == str(out)
    data = load_labels(out)
    assert data.columns == ["smile", "glasses"] and data.w.shape == (90, G.w_dim) and data.scores.shape == (90, 2)
    assert data.seeds.tolist() == list(range(90))
    # code j is seed j's W code, as `generate --seeds` draws it
    assert torch.allclose(data.w[[0, 41, 89]], Latent.from_seed(G, [0, 41, 89]).tensor[:, 0], atol=1e-5)
    from stylekit.checkpoints.predictor import load_predictor

    with torch.no_grad():
        smile = load_predictor("toyfaces").predict(Latent.from_seed(G, [41]).render(G))["smile"]
    assert torch.allclose(data.column("smile")[41:42], smile, atol=1e-4)
    # resume: a deleted chunk is recomputed, the others are not
    (out.parent / "labels.safetensors.parts" / "chunk_00001.safetensors").unlink()
    stamp = (out.parent / "labels.safetensors.parts" / "chunk_00000.safetensors").stat().st_mtime_ns
    again = label_samples(G, out, scorer="predictor:smile,glasses", n=90, chunk_size=40, batch_size=32,
                          shard=Shard(0, 1), show_progress=False)
    assert (again["processed"], again["skipped"], again["codes"]) == (1, 2, 40)
    assert (out.parent / "labels.safetensors.parts" / "chunk_00000.safetensors").stat().st_mtime_ns == stamp
    assert torch.allclose(load_labels(out).scores, data.scores, atol=1e-6)
    # two ranks into another file: the union is the same labels file
    other = tmp_path / "two.safetensors"
    r0 = label_samples(G, other, scorer="predictor:smile,glasses", n=90, chunk_size=40, batch_size=32,
                       shard=Shard(0, 2), show_progress=False)
    assert r0["labels"] is None and r0["manifest"]["missing"] == 1
    r1 = label_samples(G, other, scorer="predictor:smile,glasses", n=90, chunk_size=40, batch_size=32,
                       shard=Shard(1, 2), show_progress=False)
    assert r1["labels"] == str(other)
    assert torch.allclose(load_labels(other).w, data.w) and torch.allclose(load_labels(other).scores, data.scores,
                                                                            atol=1e-6)
    # the same chunks folder with another scorer is refused rather than mixed
    with pytest.raises(InvalidArgumentError, match="another labelling job"):
        label_samples(G, out, scorer="predictor:beard", n=90, chunk_size=40, shard=Shard(0, 1), show_progress=False)


def test_fit_boundary_from_a_labels_file_separates_the_attribute(G, tmp_path, capsys):
    out = tmp_path / "labels.safetensors"
    label_samples(G, out, scorer="predictor:smile", n=400, chunk_size=200, batch_size=100, shard=Shard(0, 1),
                  show_progress=False)
    boundary = fit_from_labels(out)  # one column: no attribute needed
    assert boundary.name == "smile" and boundary.meta["n_sampled"] == 400
    data = load_labels(out)
    d = data.w @ boundary.vector + boundary.offset
    s = data.column("smile")
    top, bottom = s >= s.quantile(0.9), s <= s.quantile(0.1)
    assert (d[top] > 0).float().mean() > 0.9 and (d[bottom] < 0).float().mean() > 0.9
    assert main(["fit-boundary", str(out), str(tmp_path / "smile.safetensors"), "--attribute", "smile"]) == 0
    assert "boundary 'smile' from 400 codes" in capsys.readouterr().out
    with pytest.raises(InvalidArgumentError, match="no column 'beard'"):
        fit_from_labels(out, "beard")


def test_label_scorer_specs_are_checked(G, tmp_path):
    for bad, match in (("predictor:wings", "unknown attribute"), ("clip:a face", "POSITIVE|NEUTRAL"),
                       ("judge", "unknown scorer")):
        with pytest.raises(InvalidArgumentError, match=match):
            label_samples(G, tmp_path / "x.safetensors", scorer=bad, n=4, show_progress=False)


def test_label_with_a_clip_scorer(G, tmp_path):
    clip = untrained_clip()
    out = tmp_path / "clip.safetensors"
    label_samples(G, out, scorer="clip:a smiling face|a face", n=6, chunk_size=3, clip=clip, shard=Shard(0, 1),
                  show_progress=False)
    data = load_labels(out)
    assert data.columns == ["a smiling face"] and data.scores.shape == (6, 1)
    assert bool(((data.scores > 0) & (data.scores < 1)).all())


# ----------------------------------------------------------------------------------------------
# edit


def test_edit_latents_applies_each_strength_shards_and_resumes(G, plain_run, tmp_path):
    src = plain_run[0]
    torch.manual_seed(0)
    direction = Direction(torch.nn.functional.normalize(torch.randn(G.w_dim), dim=0), name="rand")
    path = save_direction(direction, tmp_path / "rand.safetensors")
    out = tmp_path / "edited"
    s0 = edit_latents(G, src, out, direction=path, strengths=[-2.0, 1.5], shard=Shard(0, 2), show_progress=False)
    s1 = edit_latents(G, src, out, direction=path, strengths=[-2.0, 1.5], shard=Shard(1, 2), show_progress=False)
    assert s0["processed"] + s1["processed"] == 5 and s1["manifest"]["complete"]
    original = load_latent_file(src / "latents" / "face2.safetensors")[0]
    for s, tag in ((-2.0, "-2"), (1.5, "+1.5")):
        got = load_latent_file(out / "latents" / f"face2_s{tag}.safetensors")[0]
        want = edit(original, direction, s, G=G)
        assert torch.allclose(got.tensor, want.tensor, atol=1e-6)
        assert (out / "images" / f"face2_s{tag}.png").is_file()
    again = edit_latents(G, src, out, direction=path, strengths=[-2.0, 1.5], shard=Shard(0, 1), show_progress=False)
    assert (again["processed"], again["skipped"]) == (0, 5)
    # one file holding several codes: each row is an item
    from stylekit.jobs.files import save_latent_file

    many = save_latent_file(tmp_path / "many.safetensors", Latent.from_seed(G, [1, 2, 3]))
    r = edit_latents(G, many, tmp_path / "rows", direction=path, strengths=[1.0], shard=Shard(0, 1),
                     show_progress=False)
    assert r["processed"] == 3 and (tmp_path / "rows" / "latents" / "many_00002_s+1.safetensors").is_file()
    with pytest.raises(InvalidArgumentError, match="neither a direction file"):
        edit_latents(G, src, out, direction="no-such-direction", show_progress=False)


# ----------------------------------------------------------------------------------------------
# relevance


def test_relevance_over_two_ranks_equals_the_unsharded_table(tmp_path):
    from conftest import tiny_stylegan2
    from stylekit.jobs import relevance_sharded
    from stylekit.text import compute_relevance
    from stylekit.text.relevance_table import load_relevance

    G = tiny_stylegan2(seed=0)
    clip = untrained_clip()
    ref = compute_relevance(G, clip, n_images=5, batch_size=2)
    out = tmp_path / "table.safetensors"
    r0 = relevance_sharded(G, clip, out, n_images=5, batch_size=2, shard=Shard(0, 2), show_progress=False)
    assert r0["table"] is None and r0["processed"] == 2  # chunks [0,2) and [4,5)
    r1 = relevance_sharded(G, clip, out, n_images=5, batch_size=2, shard=Shard(1, 2), show_progress=False)
    assert r1["table"] == str(out)
    table = load_relevance(out)
    for a, b in zip(table.relevance, ref.relevance):
        assert torch.allclose(a, b, atol=1e-5)
    assert table.meta["captured_energy"] == pytest.approx(ref.meta["captured_energy"], abs=1e-6)
    parts = tmp_path / "table.safetensors.parts"
    (parts / "images_000002-000004.safetensors").unlink()
    again = relevance_sharded(G, clip, out, n_images=5, batch_size=2, shard=Shard(0, 1), show_progress=False)
    assert (again["processed"], again["skipped"]) == (1, 2)
    for a, b in zip(load_relevance(out).relevance, ref.relevance):
        assert torch.allclose(a, b, atol=1e-5)
    items, _, _ = read_parts(parts)
    assert len(items) == 3


def test_readme_batch_job_lines_run(folder, tmp_path):
    """The README's "Batch jobs over a folder" commands run as written in a folder holding ``photos/``, except
    that ``--samples 500000`` and ``--n-images 100`` shrink to 200 and 4 codes. The torchrun line is a real
    two-process launch (gloo group: rank 0 waits for rank 1, then merges)."""
    import shutil

    text = (ROOT / "README.md").read_text()
    block = text.split("## Batch jobs over a folder", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    lines = [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]
    assert len(lines) == 6 and any(line.startswith("torchrun") for line in lines)
    shutil.copytree(folder, tmp_path / "photos")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    for line in lines:
        args = line.replace("--samples 500000", "--samples 200").replace("--n-images 100", "--n-images 4").split()
        if args[0] == "torchrun":
            shutil.rmtree(tmp_path / "out")
            args = [sys.executable, "-m", "torch.distributed.run", "--standalone", *args[1:]]
        else:
            args = [sys.executable, *args[1:]]
        proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{line}: {proc.stderr[-2000:]}"
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["complete"] and manifest["count"] == 5 and manifest["failed"] == 2
    assert sorted((r["rank"], r["world_size"]) for r in manifest["runs"]) == [(0, 2), (1, 2)]
    assert "5 images done" in proc.stdout
    assert len(list((tmp_path / "edited" / "images").glob("*.png"))) == 10
    assert load_labels(tmp_path / "labels.safetensors").w.shape[0] == 200
    assert (tmp_path / "table.safetensors").is_file() and (tmp_path / "smile.safetensors").is_file()


def test_align_sends_faceless_images_to_the_report(G, tmp_path, monkeypatch):
    """With ``align=True`` an image where dlib finds no face goes to the report; a face is aligned and inverted
    (its landmarks come from the synthetic face of tests/test_invert_align.py, dlib would not see a drawing)."""
    from PIL import Image

    import stylekit.invert.align as align
    from test_invert_align import _face

    d = tmp_path / "in"
    d.mkdir()
    face, landmarks = _face()
    face.save(d / "a_face.png")
    Image.new("RGB", (200, 200), (128, 128, 128)).save(d / "b_flat.png")
    real = align.detect_landmarks
    monkeypatch.setattr(align, "detect_landmarks",
                        lambda image: landmarks if getattr(image, "size", None) == (400, 300) else real(image))
    s = invert_folder(G, d, tmp_path / "out", method="encoder", align=True, shard=Shard(0, 1), show_progress=False)
    assert (s["processed"], s["failed"]) == (1, 1)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [r["source"] for r in report["failed"]] == ["b_flat.png"]
    assert "no face was found" in report["failed"][0]["reason"]
    assert (tmp_path / "out" / "latents" / "a_face.safetensors").is_file()


def test_pti_items_keep_their_tuned_generator_for_editing(G, folder, tmp_path):
    from stylekit.invert.pti import apply_delta
    from stylekit.jobs.files import load_delta_file

    out = tmp_path / "pti"
    s = invert_folder(G, folder, out, method="pti", steps=2, pivot_steps=2, perceptual="none", shard=Shard(0, 1),
                      show_progress=False)
    assert s["processed"] == 5
    lat = load_latent_file(out / "latents" / "face1.safetensors")[0]
    tuned = apply_delta(G, load_delta_file(out / "deltas" / "face1.safetensors"))
    torch.manual_seed(0)
    direction = Direction(torch.nn.functional.normalize(torch.randn(G.w_dim), dim=0), name="d")
    edit_latents(G, out, tmp_path / "edited", direction=direction, strengths=[0.0], shard=Shard(0, 1),
                 show_progress=False)
    from PIL import Image
    import numpy as np

    png = np.asarray(Image.open(tmp_path / "edited" / "images" / "face1_s+0.png"), dtype=np.float32)
    with torch.no_grad():
        want = ((lat.render(tuned)[0].clamp(-1, 1) + 1) * 127.5).permute(1, 2, 0).numpy()
        plain = ((lat.render(G)[0].clamp(-1, 1) + 1) * 127.5).permute(1, 2, 0).numpy()
    assert np.abs(png - want).max() <= 1.0  # rendered with the tuned generator (PNG rounding)
    assert np.abs(png - plain).max() > 1.0


def test_shards_take_every_world_size_th_item_and_read_the_launcher(monkeypatch):
    items = list(range(7))
    assert [Shard(r, 3).take(items) for r in range(3)] == [[0, 3, 6], [1, 4], [2, 5]]
    assert Shard(0, 1).take(items) == items and Shard(2, 3).owns(5) and not Shard(2, 3).owns(4)
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    from stylekit.jobs import current_shard

    assert current_shard() == Shard(3, 4, 1)
    assert current_shard().device("cpu") == "cpu" and current_shard().device("cuda:0") == "cuda:0"
    assert Shard(0, 1).device("cuda") == "cuda"
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(InvalidArgumentError, match="not a valid shard"):
        current_shard()
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(InvalidArgumentError, match="not integers"):
        current_shard()


def test_edit_takes_a_registered_direction_by_name(G, plain_run, tmp_path, monkeypatch):
    """A ``directions`` artifact (here: registered for this test, served from a Hub mirror folder) by name."""
    import numpy as np

    from stylekit import registry

    vec = torch.nn.functional.normalize(torch.arange(G.w_dim, dtype=torch.float32) - 20.0, dim=0)
    (tmp_path / "mirror" / "someone" / "dirs").mkdir(parents=True)
    np.save(tmp_path / "mirror" / "someone" / "dirs" / "tilt.npy", vec[None].numpy())
    monkeypatch.setenv("STYLEKIT_HUB_MIRROR", str(tmp_path / "mirror"))
    monkeypatch.setenv("STYLEKIT_OFFLINE", "1")
    registry.list_artifacts()  # the worlds are loaded into the real registry first; the test registers into a copy
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    registry.register(registry.Artifact(name="test-jobs-tilt", kind="directions", format="interfacegan-npy",
                                        description="a test direction", hub=registry.HubFile("someone/dirs",
                                                                                             "tilt.npy", "main")),
                      overwrite=True)
    out = tmp_path / "edited"
    s = edit_latents(G, plain_run[0], out, direction="test-jobs-tilt", strengths=[3.0], shard=Shard(0, 1),
                     show_progress=False)
    assert s["processed"] == 5
    got = load_latent_file(out / "latents" / "face0_s+3.safetensors")[0].tensor
    original = load_latent_file(plain_run[0] / "latents" / "face0.safetensors")[0].tensor
    assert torch.allclose(got - original, 3.0 * vec.expand_as(got), atol=1e-5)
    assert json.loads((out / "manifest.json").read_text())["items"][0]["direction"] == "test-jobs-tilt"


def test_a_too_large_image_goes_to_the_report_without_being_decoded(G, tmp_path):
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    # a 20000 x 20000 RGB header (400 megapixels) with a few bytes of pixel data: only the header is read
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "huge.png").write_bytes(png)
    s = invert_folder(G, tmp_path / "in", tmp_path / "out", shard=Shard(0, 1), show_progress=False)
    assert (s["processed"], s["failed"]) == (0, 1)
    reason = json.loads((tmp_path / "out" / "report.json").read_text())["failed"][0]["reason"]
    assert "too large" in reason and "resize" in reason
