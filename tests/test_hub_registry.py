"""Registry names and Hugging Face Hub fetching, against a real local Hub cache built by the test."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from stylekit import hub, registry
from stylekit.errors import ModelNotFoundError, OfflineError


def make_hub_cache(cache_dir: Path, repo_id: str, filename: str, content: bytes, revision: str = "main") -> Path:
    """Lay a file out exactly as huggingface_hub's cache stores a downloaded file (blobs/refs/snapshots)."""
    repo_dir = cache_dir / ("models--" + repo_id.replace("/", "--"))
    commit = hashlib.sha1(repo_id.encode() + content).hexdigest()
    blob = repo_dir / "blobs" / hashlib.sha256(content).hexdigest()
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(content)
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / revision).write_text(commit)
    snapshot_file = repo_dir / "snapshots" / commit / filename
    snapshot_file.parent.mkdir(parents=True, exist_ok=True)
    snapshot_file.symlink_to(Path("../" * (len(Path(filename).parts) + 1)) / "blobs" / blob.name)
    return snapshot_file


def test_parse_hf_uri():
    f = hub.parse_hf_uri("hf://owner/repo/models/net.pkl")
    assert (f.repo_id, f.filename, f.revision) == ("owner/repo", "models/net.pkl", "main")
    f = hub.parse_hf_uri("hf://owner/repo/net.safetensors@v1.0")
    assert (f.repo_id, f.filename, f.revision) == ("owner/repo", "net.safetensors", "v1.0")
    with pytest.raises(ModelNotFoundError):
        hub.parse_hf_uri("hf://owner/only-repo")


def test_fetch_finds_file_in_real_hub_cache(tmp_path):
    make_hub_cache(tmp_path, "someone/stylegans", "models/g.bin", b"weights!")
    path = hub.fetch(hub.HubFile("someone/stylegans", "models/g.bin"), cache_dir=tmp_path, local_files_only=True)
    assert path.read_bytes() == b"weights!"


def test_fetch_offline_without_cache_names_file_and_remedy(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEKIT_OFFLINE", "1")
    with pytest.raises(OfflineError) as info:
        hub.fetch(hub.HubFile("someone/stylegans", "models/missing.pkl"), cache_dir=tmp_path)
    message = str(info.value)
    assert "someone/stylegans/models/missing.pkl" in message
    assert "hf download someone/stylegans models/missing.pkl" in message
    assert "STYLEKIT_HUB_MIRROR" in message


def test_local_mirror_folder(tmp_path, monkeypatch):
    target = tmp_path / "mirror" / "someone" / "stylegans" / "models" / "g.bin"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"mirrored")
    monkeypatch.setenv("STYLEKIT_HUB_MIRROR", str(tmp_path / "mirror"))
    path = hub.fetch(hub.HubFile("someone/stylegans", "models/g.bin"), cache_dir=tmp_path / "empty-cache")
    assert path.read_bytes() == b"mirrored"


def test_registry_contents():
    names = {e.name for e in registry.list_artifacts("generator")}
    assert {"toyfaces", "ffhq-1024", "sg3r-ffhq-1024", "sg3t-ffhq-1024", "metfaces-1024", "afhqv2-512"} <= names
    toy = registry.resolve("toyfaces", "generator")
    assert toy.package_file and toy.verified
    for entry in registry.list_artifacts():
        assert (entry.hub is None) != (entry.package_file is None)
        if entry.hub is not None:
            assert not entry.verified, f"{entry.name}: hub entries cannot be verified offline"
    with pytest.raises(ModelNotFoundError) as info:
        registry.resolve("ffhq-9999", "generator")
    assert "ffhq-1024" in str(info.value)


def test_registry_knows_every_kind_and_the_toyfaces_companions():
    """One registry for every kind of file; every shipped file exists, has its card, and its companions resolve."""
    kinds = {a.kind for a in registry.list_artifacts()}
    assert set(registry.KINDS) - kinds <= {"directions"}, "every kind but direction sets has a registered artifact"
    for artifact in registry.list_artifacts():
        if artifact.shipped and artifact.package == "stylekit":
            assert registry.artifact_path(artifact).is_file(), artifact.name
            assert artifact.card and registry.package_path(artifact.card).is_file(), f"{artifact.name} has no card"
    toy = registry.resolve("toyfaces", "generator")
    for role, name in toy.companions.items():
        if role != "preset":
            kind = {"restyle": "encoder"}.get(role, role)
            assert registry.resolve(name, kind).name == name
    assert registry.companion("toyfaces", "encoder") == "e4e-toyfaces"
    assert registry.companion("no-such-model", "encoder") is None
    with pytest.raises(ModelNotFoundError, match="registered as a generator"):
        registry.resolve("ffhq-1024", "encoder")
    with pytest.raises(ModelNotFoundError, match="kinds are"):
        registry.list_artifacts("checkpoint")


def test_a_world_registers_through_an_entry_point(monkeypatch):
    """Third-party worlds plug in through the stylekit.worlds entry-point group, with no import in the core."""
    import importlib.metadata as md
    import sys
    import types

    module = types.ModuleType("fake_world_for_test")

    def register():
        registry.register(registry.Artifact(name="fake-gen", kind="generator", format="safetensors",
                                            description="test", hub=hub.HubFile("o/r", "g.safetensors")))

    module.register = register
    monkeypatch.setitem(sys.modules, "fake_world_for_test", module)
    ep = md.EntryPoint(name="fake", value="fake_world_for_test:register", group=registry.ENTRY_POINT_GROUP)
    real = md.entry_points
    monkeypatch.setattr(md, "entry_points", lambda **kw: [ep] if kw.get("group") == registry.ENTRY_POINT_GROUP
                        else real(**kw))
    monkeypatch.setattr(registry, "_WORLDS_LOADED", False)
    assert registry.resolve("fake-gen", "generator").hub.repo_id == "o/r"
    registry._REGISTRY.pop(("generator", "fake-gen"))


def test_settings_are_read_at_call_time(monkeypatch, tmp_path):
    from stylekit import settings

    monkeypatch.setenv("STYLEKIT_CACHE", str(tmp_path))
    assert settings.cache_dir() == tmp_path
    monkeypatch.delenv("STYLEKIT_CACHE")
    assert settings.cache_dir().name == "stylekit"
    monkeypatch.setenv("STYLEKIT_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "yes")
    assert settings.offline()
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for name in settings.VARIABLES:
        assert name in readme, f"{name} is not documented in the README"


def test_registered_hub_model_offline_error(tmp_path, monkeypatch):
    import stylekit

    monkeypatch.setenv("STYLEKIT_OFFLINE", "1")
    with pytest.raises(OfflineError) as info:
        stylekit.load_generator("ffhq-1024", cache_dir=tmp_path)
    assert "stylegan2-ffhq-1024x1024.pkl" in str(info.value)


def test_load_generator_through_hub_cache_and_registry(tmp_path, fixtures_dir, monkeypatch):
    """Both the hf:// form and a registered name resolve through the real Hub cache and load."""
    import stylekit
    import torch

    content = (fixtures_dir / "nvidia" / "sg2_small.pkl").read_bytes()
    make_hub_cache(tmp_path, "stylekit-test/tiny", "nets/sg2_small.pkl", content)
    monkeypatch.setenv("STYLEKIT_OFFLINE", "1")
    G1 = stylekit.load_generator("hf://stylekit-test/tiny/nets/sg2_small.pkl", cache_dir=tmp_path)
    entry = registry.Artifact(name="test-tiny-sg2", kind="generator", format="nvidia-pkl", description="test",
                              hub=hub.HubFile("stylekit-test/tiny", "nets/sg2_small.pkl"))
    registry.register(entry, overwrite=True)
    G2 = stylekit.load_generator("test-tiny-sg2", cache_dir=tmp_path)
    z = torch.randn(2, G1.z_dim)
    with torch.no_grad():
        assert torch.equal(G1(z), G2(z))
