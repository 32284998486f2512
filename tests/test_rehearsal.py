"""The full-size rehearsal world (stylekit.rehearsal): real formats, real sizes, real lookup paths, offline.

The world is built once into a cache kept between runs (``rehearsal_world`` in conftest.py); each test asks
only for the parts it needs. Writers are also checked against the fixtures made with NVIDIA's own code.
"""

from __future__ import annotations

import io
import os
import pickletools
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import fixture_file
from stylekit import load_generator, registry
from stylekit.checkpoints.nvidia_pickle import PersistentObject, read_nvidia_pickle
from stylekit.errors import CheckpointError, InvalidArgumentError, OfflineError
from stylekit.rehearsal import PARTS, build_world, check_world, read_manifest
from stylekit.rehearsal.hubcache import rehearsal_commit, write_hub_file
from stylekit.rehearsal.nvidia_pickle import EasyDict, official_kwargs, write_nvidia_pickle


# ----------------------------------------------------------------------------------------------
# The NVIDIA pickle writer against files made with NVIDIA's code


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _record_differences(ref: PersistentObject, ours: PersistentObject, path: str = "G") -> list[str]:
    if ref.class_name != ours.class_name:
        return [f"{path}: class {ours.class_name!r}, NVIDIA {ref.class_name!r}"]
    out = []
    if list(ref.state) != list(ours.state):
        out.append(f"{path}: __dict__ keys {list(ours.state)} != NVIDIA's {list(ref.state)}")
    for key, value in ref.state.items():
        if key == "_modules":
            if list(ref.children) != list(ours.children):
                out.append(f"{path}: submodules {list(ours.children)} != {list(ref.children)}")
            for name, child in ref.children.items():
                if name in ours.children:
                    out += _record_differences(child, ours.children[name], f"{path}.{name}")
        elif key in ours.state and not _same(value, ours.state[key]):
            out.append(f"{path}.{key}: {ours.state[key]!r:.120} != NVIDIA's {value!r:.120}")
    return out


def _globals(data: bytes) -> set[str]:
    """``module name`` of every global a pickle references (STACK_GLOBAL after two strings)."""
    found, strings = set(), []
    for op, arg, _pos in pickletools.genops(data):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(arg)
        elif op.name == "STACK_GLOBAL":
            found.add(f"{strings[-2]} {strings[-1]}")
        elif op.name == "GLOBAL":
            found.add(arg)
    return found


@pytest.mark.parametrize("name", ["sg2_small", "sg3t_small", "sg3r_small"])
def test_nvidia_writer_reproduces_the_records_nvidia_code_wrote(name):
    """Same class names, __dict__ keys in order, attributes, constructor arguments and tensors as the fixture
    made by NVIDIA's persistence code; no global beyond the fixture's (plus dnnlib's EasyDict)."""
    path = fixture_file(f"nvidia/{name}.pkl")
    ref = read_nvidia_pickle(path)
    G = load_generator(path)
    config = dict(ref["G_ema"].init_kwargs)
    config["mapping_kwargs"] = EasyDict(config["mapping_kwargs"])
    buf = io.BytesIO()
    write_nvidia_pickle(G, config, buf)
    ours = read_nvidia_pickle(buf.getvalue())
    assert list(ours) == ["training_set_kwargs", "G", "D", "G_ema", "augment_pipe"]
    assert ours["D"] is None and ours["augment_pipe"] is None
    assert _record_differences(ref["G_ema"], ours["G_ema"]) == []
    assert _record_differences(ref["G_ema"], ours["G"]) == []  # G: a separate copy of the same tensors
    assert ours["G"].tensors()["mapping.w_avg"].data_ptr() != ours["G_ema"].tensors()["mapping.w_avg"].data_ptr()
    assert _globals(buf.getvalue()) <= _globals(path.read_bytes()) | {"dnnlib.util EasyDict"}
    assert ours["G_ema"].state["_init_kwargs"]["mapping_kwargs"].__class__.__name__ == "_AttrDict"  # an EasyDict


def test_official_kwargs_are_train_py_configs():
    sg2 = official_kwargs("stylegan2")
    assert (sg2["z_dim"], sg2["w_dim"], sg2["mapping_kwargs"]["num_layers"], sg2["channel_base"], sg2["channel_max"],
            sg2["num_fp16_res"], sg2["conv_clamp"], sg2["img_resolution"]) == (512, 512, 8, 32768, 512, 4, 256, 1024)
    t, r = official_kwargs("stylegan3-t"), official_kwargs("stylegan3-r")
    assert (t["channel_base"], t["channel_max"], t["mapping_kwargs"]["num_layers"]) == (32768, 512, 2)
    assert (r["channel_base"], r["channel_max"], r["conv_kernel"], r["use_radial_filters"]) == (65536, 1024, 1, True)
    assert "conv_kernel" not in t and t["magnitude_ema_beta"] == pytest.approx(0.5 ** (32 / 20000))


# ----------------------------------------------------------------------------------------------
# The world through stylekit's real lookup paths


def _render(G) -> torch.Tensor:
    with torch.no_grad():
        return G(torch.randn([1, G.z_dim], generator=torch.Generator().manual_seed(1)))


def test_ffhq_1024_loads_through_the_registry_offline(rehearsal_world, rehearsal_env):
    world = rehearsal_world("ffhq-1024")
    rehearsal_env(world)
    G = load_generator("ffhq-1024")
    assert (G.arch, G.num_ws, G.w_dim, G.img_resolution) == ("stylegan2", 18, 512, 1024)
    assert sum(p.numel() for p in G.parameters()) == 30_370_060  # StyleGAN2 config-f's generator
    img = _render(G)
    assert img.shape == (1, 3, 1024, 1024) and bool(torch.isfinite(img).all())
    data = read_nvidia_pickle(registry.artifact_path("ffhq-1024", "generator"))
    kwargs = data["G_ema"].init_kwargs
    assert {k: kwargs[k] for k in ("channel_base", "channel_max", "num_fp16_res", "conv_clamp")} == \
        {"channel_base": 32768, "channel_max": 512, "num_fp16_res": 4, "conv_clamp": 256}
    assert list(data) == ["training_set_kwargs", "G", "D", "G_ema", "augment_pipe"]
    D = data["D"].tensors()  # the training discriminator (residual, 1024 -> 4), as a snapshot holds it
    assert data["D"].class_name == "Discriminator" and list(data["D"].children)[0] == "b1024"
    assert tuple(D["b1024.fromrgb.weight"].shape) == (32, 3, 1, 1) and "b512.fromrgb.weight" not in D
    assert tuple(D["b8.skip.weight"].shape) == (512, 512, 1, 1) and tuple(D["b4.fc.weight"].shape) == (512, 8192)
    assert tuple(D["b4.conv.weight"].shape) == (512, 513, 3, 3) and tuple(D["b4.out.weight"].shape) == (1, 512)
    assert sum(v.numel() for k, v in D.items() if not k.endswith("resample_filter")) == 29_012_513


@pytest.mark.parametrize("name,arch_kwargs", [("sg3t-ffhq-1024", {"channel_base": 32768}),
                                              ("sg3r-ffhq-1024", {"channel_base": 65536, "conv_kernel": 1,
                                                                  "use_radial_filters": True})])
def test_stylegan3_ffhq_1024_loads_and_renders(rehearsal_world, rehearsal_env, name, arch_kwargs):
    rehearsal_env(rehearsal_world(name))
    G = load_generator(name)
    assert (G.arch, G.num_ws, G.img_resolution) == ("stylegan3", 16, 1024)
    assert {k: G.config[k] for k in arch_kwargs} == arch_kwargs
    img = _render(G)
    assert img.shape == (1, 3, 1024, 1024) and bool(torch.isfinite(img).all())


def test_the_cache_is_huggingface_hubs_own_layout(rehearsal_world, rehearsal_env):
    from huggingface_hub import hf_hub_download

    world = rehearsal_world("ffhq-1024", "directions")
    rehearsal_env(world)
    hub = registry.resolve("ffhq-1024").hub
    path = Path(hf_hub_download(hub.repo_id, hub.filename, revision="main", local_files_only=True))
    folder = world.resolve() / "hub" / f"models--{hub.repo_id.replace('/', '--')}"
    commit = (folder / "refs" / "main").read_text()
    assert commit == rehearsal_commit(hub.repo_id) and len(commit) == 40
    assert path == folder / "snapshots" / commit / hub.filename and path.is_symlink()
    blob = Path(os.path.realpath(path))
    assert blob.parent == folder / "blobs"
    entry = read_manifest(world)["files"][str(path.relative_to(world.resolve()))]
    assert blob.name == entry["sha256"] and blob.stat().st_size == entry["size"]
    small = registry.resolve("e4e-ffhq-age", "directions").hub  # a small file: hash it
    import hashlib

    small_path = hf_hub_download(small.repo_id, small.filename, local_files_only=True)
    assert Path(os.path.realpath(small_path)).name == hashlib.sha256(Path(small_path).read_bytes()).hexdigest()


def test_e4e_ffhq_encoder_loads_by_its_registered_name(rehearsal_world, rehearsal_env):
    from stylekit.invert.encoder import load_encoder, load_official_checkpoint

    rehearsal_env(rehearsal_world("e4e-ffhq"))
    assert registry.companion("ffhq-1024", "encoder") == "e4e-ffhq"
    enc = load_encoder("e4e-ffhq")
    cfg = enc.config
    assert (cfg["mode"], cfg["num_ws"], cfg["w_dim"], cfg["input_size"], cfg["se"]) == ("e4e", 18, 512, 256, True)
    assert cfg["stages"] == [[64, 3], [128, 4], [256, 14], [512, 3]]  # IR-SE-50
    x = torch.rand([1, 3, 256, 256], generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        w = enc(x)
    assert w.shape == (1, 18, 512) and bool(torch.isfinite(w).all())
    path = registry.artifact_path("e4e-ffhq", "encoder")
    ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    assert sorted(ckpt) == ["latent_avg", "opts", "state_dict"] and tuple(ckpt["latent_avg"].shape) == (18, 512)
    assert ckpt["opts"]["encoder_type"] == "Encoder4Editing" and ckpt["opts"]["stylegan_size"] == 1024
    assert "encoder.body.23.res_layer.5.fc2.weight" in ckpt["state_dict"]
    _, decoder = load_official_checkpoint(path)
    assert (decoder.num_ws, decoder.img_resolution) == (18, 1024)


def test_open_clip_vit_b_32_openai_loads_from_the_cache(rehearsal_world, rehearsal_env):
    from safetensors import safe_open

    from stylekit.clip_backend import load_clip

    world = rehearsal_world("clip-vit-b-32")
    rehearsal_env(world)
    clip = load_clip(registry.companion("ffhq-1024", "clip"))
    assert (clip.name, clip.pretrained) == ("ViT-B-32", "openai")
    weights = next((world / "hub" / "models--timm--vit_base_patch32_clip_224.openai" / "snapshots").glob(
        "*/open_clip_model.safetensors"))
    with safe_open(str(weights), "pt") as f:
        stored = f.get_tensor("visual.conv1.weight")
    assert torch.equal(clip.model.visual.conv1.weight.detach().cpu(), stored)  # the file's weights, not an init
    import open_clip
    from open_clip.pretrained import download_pretrained

    found = download_pretrained(open_clip.get_pretrained_cfg("ViT-B-32", "openai"))  # open_clip's own lookup
    assert Path(found).resolve() == weights.resolve()
    with torch.no_grad():
        image = clip.encode_image(torch.rand([1, 3, 224, 224]) * 2 - 1)
        text = clip.encode_text(["a face with a smile"])
    assert image.shape == (1, 512) and text.shape == (1, 512)
    assert bool(torch.isfinite(image).all() and torch.isfinite(text).all())


def test_lpips_vgg_finds_vgg16_in_torch_hub_and_the_registry_file(rehearsal_world, rehearsal_env, monkeypatch):
    from stylekit.invert import losses

    world = rehearsal_world("vgg16-torch", "vgg16-timm")
    rehearsal_env(world)
    monkeypatch.setattr(losses, "_CACHE", {})
    torch_file = world.resolve() / "torch" / "hub" / "checkpoints" / losses.VGG16_FILENAME
    assert losses.find_vgg16_weights() == torch_file
    extractor, name = losses.build_perceptual("lpips-vgg")  # explicit: no fallback to another network
    assert name == "lpips-vgg"
    stored = torch.load(torch_file, map_location="cpu", weights_only=True)
    conv = extractor.model.net.slice1._modules["0"]
    assert torch.equal(conv.weight.detach().cpu(), stored["features.0.weight"])
    timm_file = registry.artifact_path("vgg16", "perceptual", local_files_only=True)
    lpips_timm = losses.LPIPSVGG(timm_file)
    assert torch.equal(lpips_timm.model.net.slice5._modules["28"].weight.detach().cpu(),
                       losses._read_vgg16(timm_file)["features.28.weight"])


def test_directions_and_components_load_through_stylekits_readers(rehearsal_world, rehearsal_env):
    from stylekit.catalog import INTERFACEGAN_BOUNDARIES
    from stylekit.edit.direction import load_direction
    from stylekit.edit.ganspace import load_components

    rehearsal_env(rehearsal_world("directions"))
    for attr in ("age", "smile", "pose"):
        name = registry.companion("ffhq-1024", f"direction:{attr}")
        path = registry.artifact_path(name, "directions")
        assert tuple(torch.load(path, weights_only=True).shape) == (1, 512)
        d = load_direction(path)
        assert d.w_dim == 512 and not d.per_layer and float(d.vector.norm()) == pytest.approx(6.0, rel=1e-5)
    for attr in INTERFACEGAN_BOUNDARIES:
        path = registry.artifact_path(f"interfacegan-ffhq-{attr}", "directions")
        assert np.load(path).shape == (1, 512)
        assert float(load_direction(path).vector.norm()) == pytest.approx(1.0, rel=1e-5)
    for name in ("ganspace-ffhq", "ganspace-ffhq-ipca"):
        pca = load_components(registry.artifact_path(name, "directions"))
        assert (pca.n_components, pca.w_dim) == (80, 512)
    with np.load(registry.artifact_path("ganspace-ffhq-ipca", "directions")) as npz:
        assert set(npz.files) == {"act_comp", "act_mean", "act_stdev", "lat_comp", "lat_mean", "lat_stdev", "var_ratio"}


def test_ffhq_companions_name_registered_artifacts():
    ffhq = registry.resolve("ffhq-1024")
    kinds = {"encoder": "encoder", "restyle": "encoder", "perceptual": "perceptual", "landmarks": "landmarks",
             "ganspace": "directions"}
    for role, name in ffhq.companions.items():
        kind = "directions" if role.startswith("direction:") else kinds.get(role)
        if kind is not None:
            assert registry.resolve(name, kind).name == name
    assert {"encoder", "clip", "perceptual", "direction:age", "direction:smile", "direction:pose"} <= set(ffhq.companions)
    import open_clip

    assert ffhq.companions["clip"] in open_clip.list_models()
    assert "openai" in open_clip.list_pretrained_tags_by_model(ffhq.companions["clip"])
    for name in ("sg3r-ffhq-1024", "ffhq-512"):  # W+ files of the 1024 StyleGAN2 do not fit these
        assert "encoder" not in registry.resolve(name).companions and registry.companion(name, "clip") == "ViT-B-32"
    for artifact in registry.list_artifacts():
        if not artifact.shipped and not artifact.verified:
            assert artifact.note, f"{artifact.name} is unverified and says nothing about where it comes from"
    assert registry.companion("toyfaces", "encoder") == "e4e-toyfaces"  # toyfaces keeps its own


# ----------------------------------------------------------------------------------------------
# Building, checking, damaged worlds


def test_build_is_idempotent_deterministic_and_repairs_a_truncated_file(tmp_path):
    lines = []
    manifest = build_world(tmp_path, parts=["directions"], log=lines.append)
    assert len(manifest["files"]) == 10 and all(line.startswith("wrote") for line in lines)
    assert check_world(tmp_path, parts="directions", verify=True) == {}
    rel = next(r for r in manifest["files"] if r.endswith("ffhq_pca.pt"))
    original = (tmp_path / rel).read_bytes()
    lines.clear()
    build_world(tmp_path, parts=["directions"], log=lines.append)
    assert all(line.startswith("kept") for line in lines)
    blob = Path(os.path.realpath(tmp_path / rel))
    blob.write_bytes(original[:1000])  # truncated in place, as an interrupted copy leaves it
    assert "size 1000 bytes" in check_world(tmp_path, parts=["directions"])[rel]
    lines.clear()
    build_world(tmp_path, parts=["directions"], log=lines.append)
    assert [line.split()[0] for line in lines].count("wrote") == 1
    assert (tmp_path / rel).read_bytes() == original  # deterministic: the same bytes again
    import json

    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["files"][rel]["revision"] = 0  # as if an older writer had made it
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert "revision 0" in check_world(tmp_path)[rel]
    lines.clear()
    build_world(tmp_path, parts=["directions"], log=lines.append)
    assert [line.split()[0] for line in lines].count("wrote") == 1 and check_world(tmp_path, parts="directions") == {}
    assert len(list(Path(os.path.realpath(tmp_path / rel)).parent.iterdir())) == 10  # no stale blob left behind
    with pytest.raises(InvalidArgumentError, match="unknown rehearsal part"):
        build_world(tmp_path, parts=["no-such-part"])
    assert set(PARTS) >= {"ffhq-1024", "sg3t-ffhq-1024", "sg3r-ffhq-1024", "e4e-ffhq", "clip-vit-b-32", "directions"}


def test_truncated_blobs_give_clear_errors(tmp_path, rehearsal_world, rehearsal_env):
    from stylekit.invert.encoder import load_encoder

    world = rehearsal_world("ffhq-1024", "e4e-ffhq")
    hub = registry.resolve("ffhq-1024").hub
    rehearsal_env(world)
    broken = tmp_path / "broken"
    for name, kind in (("ffhq-1024", "generator"), ("e4e-ffhq", "encoder")):
        with open(registry.artifact_path(name, kind), "rb") as fh:
            head = fh.read(4 << 20)  # the first 4 MB: an interrupted download
        where = registry.resolve(name, kind).hub
        write_hub_file(broken / "hub", where.repo_id, where.filename, lambda f, head=head: f.write(head))
    rehearsal_env(broken)
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_generator("ffhq-1024")
    with pytest.raises(CheckpointError, match="truncated"):
        load_encoder("e4e-ffhq")
    rehearsal_env(tmp_path / "empty")
    with pytest.raises(OfflineError, match=f"hf download {hub.repo_id}"):
        load_generator("ffhq-1024")


def test_command_line_builds_checks_and_prints_the_environment(tmp_path, capsys):
    from stylekit.cli import main as stylekit_main
    from stylekit.rehearsal.__main__ import main

    assert stylekit_main(["rehearsal", str(tmp_path), "--parts", "directions"]) == 0  # python -m stylekit rehearsal
    assert "export HF_HUB_OFFLINE=1" in capsys.readouterr().out
    assert main([str(tmp_path), "--parts", "directions"]) == 0
    out = capsys.readouterr().out
    assert f"export HF_HUB_CACHE={tmp_path.resolve() / 'hub'}" in out and "export HF_HUB_OFFLINE=1" in out
    assert main([str(tmp_path), "--parts", "directions", "--check", "--verify"]) == 0
    assert main([str(tmp_path), "--parts", "ffhq-1024", "--check"]) == 1
    assert "not in the manifest" in capsys.readouterr().out
