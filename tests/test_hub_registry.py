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
    registry.list_artifacts()  # the worlds are loaded into the real registry first; the test registers into a copy
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    registry.register(entry, overwrite=True)
    G2 = stylekit.load_generator("test-tiny-sg2", cache_dir=tmp_path)
    z = torch.randn(2, G1.z_dim)
    with torch.no_grad():
        assert torch.equal(G1(z), G2(z))


# ----------------------------------------------------------------------------------------------
# Hub behaviour: progress, one request with our timeout, and every Hub artifact kind offline


def serve_hub(files: dict[str, bytes], *, stall: bool = False):
    """A local stand-in for the Hub on 127.0.0.1 (tests never touch the network): answers HEAD/GET of
    ``/owner/repo/resolve/main/file`` as the Hub does (commit, ETag and size headers), 404 for anything
    else, or never answers at all (``stall``). Returns ``(server, requests)``; ``requests`` lists
    ``(method, path)`` as they arrive."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    requests = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _head(self):
            requests.append((self.command, self.path))
            if stall:
                threading.Event().wait(30)
                return None
            data = files.get(self.path.lstrip("/"))
            if data is None:
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            self.send_response(200)
            self.send_header("X-Repo-Commit", "a" * 40)
            self.send_header("ETag", '"' + hashlib.sha256(data).hexdigest() + '"')
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            return data

        def do_HEAD(self):
            self._head()

        def do_GET(self):
            data = self._head()
            if data is not None:
                self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, requests


@pytest.fixture
def local_hub(monkeypatch):
    """Point huggingface_hub at :func:`serve_hub`'s server; yields a function that starts one."""
    from huggingface_hub import constants

    servers = []

    def start(files, *, stall=False):
        server, requests = serve_hub(files, stall=stall)
        servers.append(server)
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        monkeypatch.setattr(constants, "ENDPOINT", endpoint)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                            endpoint + "/{repo_id}/resolve/{revision}/{filename}")
        return requests

    monkeypatch.delenv("STYLEKIT_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("STYLEKIT_HUB_MIRROR", raising=False)
    yield start
    for server in servers:
        server.shutdown()


def test_download_reports_progress_and_logs_the_file_and_size(tmp_path, local_hub, caplog):
    import logging

    content = bytes(range(256)) * 8000  # 2,048,000 bytes
    local_hub({"someone/stylegans/resolve/main/models/g.bin": content})
    seen = []
    with caplog.at_level(logging.INFO, logger="stylekit.hub"):
        path = hub.fetch(hub.HubFile("someone/stylegans", "models/g.bin"), cache_dir=tmp_path,
                         progress=lambda done, total, message: seen.append((done, total, message)))
    assert path.read_bytes() == content
    assert seen[0] == (0, len(content), "downloading someone/stylegans/models/g.bin")
    assert seen[-1][:2] == (len(content), len(content))
    assert "downloading someone/stylegans/models/g.bin (2.0 MB)" in caplog.text
    # a second fetch finds it in the cache: no download, no progress
    seen.clear()
    assert hub.fetch(hub.HubFile("someone/stylegans", "models/g.bin"), cache_dir=tmp_path,
                     progress=lambda *a: seen.append(a)) == path
    assert seen == []


def test_report_downloads_reaches_fetches_made_deep_inside_other_calls(tmp_path, local_hub):
    local_hub({"someone/stylegans/resolve/main/e4e.pt": b"x" * 1000})
    seen = []
    with hub.report_downloads(lambda done, total, message: seen.append(done)):
        hub.fetch(hub.HubFile("someone/stylegans", "e4e.pt"), cache_dir=tmp_path)
    assert seen[0] == 0 and seen[-1] == 1000
    seen.clear()
    hub.fetch(hub.HubFile("someone/stylegans", "e4e.pt"), cache_dir=tmp_path / "other")  # outside: nobody hears
    assert seen == []


def test_a_hub_that_does_not_answer_fails_after_one_request_naming_the_file(tmp_path, local_hub, monkeypatch):
    requests = local_hub({}, stall=True)
    monkeypatch.setenv("STYLEKIT_HUB_TIMEOUT", "0.3")
    with pytest.raises(OfflineError) as info:
        hub.fetch(hub.HubFile("someone/stylegans", "models/g.pkl"), cache_dir=tmp_path)
    message = str(info.value)
    assert "someone/stylegans/models/g.pkl" in message and "did not answer within 0.3 s" in message
    assert "hf download someone/stylegans models/g.pkl" in message
    file_requests = [r for r in requests if r[1].endswith("/models/g.pkl")]
    assert file_requests == [("HEAD", "/someone/stylegans/resolve/main/models/g.pkl")]  # asked once, no retry


def test_a_cached_file_is_used_when_the_hub_does_not_answer(tmp_path, local_hub, monkeypatch):
    requests = local_hub({}, stall=True)
    monkeypatch.setenv("STYLEKIT_HUB_TIMEOUT", "0.3")
    make_hub_cache(tmp_path, "someone/stylegans", "models/g.bin", b"cached!")
    path = hub.fetch(hub.HubFile("someone/stylegans", "models/g.bin"), cache_dir=tmp_path)
    assert path.read_bytes() == b"cached!"
    assert len([r for r in requests if r[1].endswith("/models/g.bin")]) <= 1  # one look for a newer file at most


def test_a_missing_hub_file_is_a_model_not_found_error(tmp_path, local_hub):
    local_hub({})
    with pytest.raises(ModelNotFoundError) as info:
        hub.fetch(hub.HubFile("someone/stylegans", "nope.pkl"), cache_dir=tmp_path)
    assert "nope.pkl" in str(info.value) and "someone/stylegans" in str(info.value)


def test_hub_timeout_setting(monkeypatch):
    from stylekit import settings
    from stylekit.errors import InvalidArgumentError

    monkeypatch.delenv("STYLEKIT_HUB_TIMEOUT", raising=False)
    assert settings.hub_timeout() == settings.DEFAULT_HUB_TIMEOUT_S
    monkeypatch.setenv("STYLEKIT_HUB_TIMEOUT", "2.5")
    assert settings.hub_timeout() == 2.5
    for bad in ("0", "-1", "soon", "nan", "inf"):
        monkeypatch.setenv("STYLEKIT_HUB_TIMEOUT", bad)
        with pytest.raises(InvalidArgumentError, match="STYLEKIT_HUB_TIMEOUT"):
            settings.hub_timeout()


HUB_ARTIFACTS = [a for a in registry.list_artifacts() if a.hub is not None]


def test_every_kind_with_a_hub_location_is_covered():
    kinds = {a.kind for a in HUB_ARTIFACTS}
    assert {"generator", "perceptual"} <= kinds, kinds


@pytest.mark.parametrize("artifact", HUB_ARTIFACTS, ids=lambda a: f"{a.kind}-{a.name}")
def test_every_hub_artifact_offline_names_its_file_and_how_to_supply_it(artifact, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("STYLEKIT_HUB_MIRROR", raising=False)
    with pytest.raises(OfflineError) as info:
        registry.artifact_path(artifact, cache_dir=tmp_path)
    message = str(info.value)
    assert f"{artifact.hub.repo_id}/{artifact.hub.filename}" in message
    assert f"hf download {artifact.hub.repo_id} {artifact.hub.filename}" in message
    assert "STYLEKIT_HUB_MIRROR" in message


@pytest.mark.parametrize("kind", registry.KINDS)
def test_a_shipped_file_that_is_missing_names_the_file_and_the_package(kind):
    """The kinds that come inside a Python package (toyfaces' files, dlib's landmarks) say what to install."""
    from stylekit.errors import CheckpointError

    gone = registry.Artifact(name="gone", kind=kind, format="safetensors", description="test",
                             package_file="weights/gone.safetensors", package="stylekit")
    with pytest.raises(CheckpointError) as info:
        registry.artifact_path(gone)
    assert "gone.safetensors" in str(info.value) and "reinstall stylekit" in str(info.value)
    absent = registry.Artifact(name="absent", kind=kind, format="dlib", description="test",
                               package_file="models/landmarks.dat", package="no_such_package_for_tests")
    with pytest.raises(ModelNotFoundError) as info:
        registry.artifact_path(absent)
    assert "models/landmarks.dat" in str(info.value) and "pip install no-such-package-for-tests" in str(info.value)
