"""The gallery through a real launched Gradio server: gradio_client and a real Chromium."""

from __future__ import annotations

import threading
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import fixture_file
from gallery_helpers import launch, stop

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "demos" / "examples"
ENCODER = ROOT / "stylekit" / "toyfaces" / "weights" / "encoder.safetensors"
CLIP_WEIGHTS = ROOT / "stylekit" / "toyfaces" / "weights" / "clip.safetensors"
RESTYLE = ROOT / "stylekit" / "toyfaces" / "weights" / "restyle_encoder.safetensors"


@pytest.fixture(scope="module")
def server_and_log():
    proc, url, log_path = launch(ROOT)
    yield url, log_path
    stop(proc)


@pytest.fixture(scope="module")
def server(server_and_log):
    return server_and_log[0]


def test_generate_endpoint_and_bad_input(server):
    from gradio_client import Client
    from PIL import Image

    client = Client(server, verbose=False)
    path, full = client.predict("toyfaces", "0-3", 0.7, "const", api_name="/generate")
    img = Image.open(path)
    assert img.size[0] > 128 and img.size[1] >= 128
    import zipfile

    with zipfile.ZipFile(full) as archive:  # the full-size samples, one PNG per seed
        assert archive.namelist() == [f"seed{s:04d}.png" for s in range(4)]
    with pytest.raises(Exception, match="seeds"):
        client.predict("toyfaces", "banana", 0.7, "const", api_name="/generate")
    with pytest.raises(Exception, match="psi|maximum value 1.5"):  # Gradio checks slider ranges itself
        client.predict("toyfaces", "0", 7.0, "const", api_name="/generate")
    # the server is still up and answering
    assert Image.open(client.predict("toyfaces", "5", 1.0, "none", api_name="/generate")[0]).size[1] >= 128




# ----------------------------------------------------------------------------------------------
# helpers


def _client(url):
    from gradio_client import Client

    return Client(url, verbose=False)


def _image(path):
    from PIL import Image

    img = Image.open(path)
    img.load()
    return img.convert("RGB")


def _pixels(path):
    import numpy as np

    return np.asarray(_image(path), dtype=np.float32)


def _example(name="toyface-beard.png"):
    from gradio_client import handle_file

    return handle_file(str(EXAMPLES / name))


def _editor_value(tmp_path, box=(8, 8, 40, 40), size=64):
    """An ImageEditor payload: an example face as background and one layer with a painted square."""
    from gradio_client import handle_file
    from PIL import Image, ImageDraw

    background = tmp_path / "canvas.png"
    Image.open(EXAMPLES / "toyface-neutral.png").resize((size, size)).save(background)
    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    ImageDraw.Draw(layer).rectangle(box, fill=(255, 0, 0, 255))
    layer_path = tmp_path / "layer.png"
    layer.save(layer_path)
    return {"background": handle_file(str(background)), "layers": [handle_file(str(layer_path))],
            "composite": handle_file(str(background)), "id": None}


def _wide(path, factor=3):
    """True when the image at ``path`` is a row of about ``factor`` square panels."""
    w, h = _image(path).size
    return h >= 128 and abs(w / h - factor) < 0.2


# ----------------------------------------------------------------------------------------------
# every endpoint, through gradio_client


def test_model_info_and_current_latent(server):
    c = _client(server)
    assert "64x64" in c.predict("toyfaces", api_name="/model_info")
    from stylekit import registry

    hub_models = [a.name for a in registry.list_artifacts("generator") if not a.shipped]
    assert hub_models, "the picker should list Hub models"
    with pytest.raises(Exception, match="cannot be downloaded now.*STYLEKIT_HUB_MIRROR"):
        c.predict(hub_models[0], api_name="/model_info")  # the server runs offline with an empty cache
    assert "64x64" in c.predict("toyfaces", api_name="/model_info")
    image, info = c.predict("toyfaces", "3", 0.7, api_name="/generate_use")
    assert _image(image).size == (256, 256) and "seed 3" in info
    image, info = c.predict(api_name="/clear_latent")
    assert image is None and "none yet" in info


def test_style_mixing_endpoints(server):
    c = _client(server)
    grid = _image(c.predict("toyfaces", "1-2", "10-12", "middle", 0.7, False, api_name="/style_mix")[0])
    # a blank corner plus 3 columns, a header row plus 2 rows of 128 px tiles
    assert grid.size[0] > 4 * 128 and 3 * 128 < grid.size[1] < 4 * 128
    image, info = c.predict("toyfaces", api_name="/style_mix_use")
    assert "Style mixing" in info and "W+" in info
    # with the current latent as the first row, the grid still has the same shape
    assert _image(c.predict("toyfaces", "1", "10", "coarse", 0.7, True, api_name="/style_mix")[0]).size[1] > 256


def test_invert_endpoints(server):
    c = _client(server)
    comparison, psnr, loss, = c.predict("toyfaces", _example(), "optimize", "w+", 5, api_name="/invert")
    assert _wide(comparison, 2) and "PSNR" in psnr and "5 steps" in psnr
    assert len(loss["data"]) == 5 and loss["columns"][:2] == ["step", "loss"]
    image, info = c.predict("toyfaces", api_name="/invert_use")
    assert "from Invert" in info and "W+" in info
    comparison, psnr, loss = c.predict("toyfaces", _example(), "pti", "w", 2, api_name="/invert")
    assert "generator tuned" in psnr and _wide(comparison, 2)
    status = c.predict("toyfaces", api_name="/invert_methods")
    for method, weights in (("encoder", ENCODER), ("restyle", RESTYLE)):
        if weights.is_file():
            assert "PSNR" in c.predict("toyfaces", _example(), method, "w+", 2, api_name="/invert")[1]
        else:
            assert "not available" in status and method in status
            with pytest.raises(Exception, match="not installed"):
                c.predict("toyfaces", _example(), method, "w+", 2, api_name="/invert")
    assert "Stopping" in c.predict(api_name="/invert_stop")


def test_invert_streams_the_loss_while_it_runs(server):
    c = _client(server)
    job = c.submit("toyfaces", _example(), "optimize", "w+", 400, api_name="/invert")
    final = job.result(timeout=300)
    outputs = job.outputs()
    assert len(outputs) >= 2, "no intermediate output was streamed"
    partial = outputs[0]
    assert "step" in partial[1] and 0 < len(partial[2]["data"]) < 400
    assert len(final[2]["data"]) == 400 and "PSNR" in final[1]


def test_invert_can_be_stopped(server):
    from gradio_client import Client  # noqa: F401

    c = _client(server)
    job = c.submit("toyfaces", _example(), "optimize", "w+", 1000, api_name="/invert")
    deadline = time.time() + 120
    while not job.done() and time.time() < deadline:
        c.predict(api_name="/invert_stop")  # repeat: the flag is cleared when the inversion starts
        time.sleep(0.5)
    with pytest.raises(Exception, match="stopped at step"):
        job.result()
    assert "PSNR" in c.predict("toyfaces", _example(), "optimize", "w", 2, api_name="/invert")[1]


def test_edit_endpoints(server):
    c = _client(server)
    image, info = c.predict("toyfaces", "glasses", 3.0, "all", api_name="/edit_interfacegan")
    assert _wide(image, 2) and "glasses" in info and "->" in info
    image, info = c.predict("toyfaces", 1, 2.0, "coarse", api_name="/edit_ganspace")
    assert _wide(image, 2) and "PC1" in info
    image, info = c.predict("toyfaces", 0, 5.0, "coarse", api_name="/edit_sefa")
    assert _wide(image, 2) and "SeFa direction 0" in info
    before_after = _pixels(image)
    half = before_after.shape[1] // 2
    assert abs(before_after[:, :half] - before_after[:, half:]).mean() > 1  # the edit changed the picture
    image, info = c.predict("toyfaces", api_name="/edit_use")
    assert "from Edit" in info


def test_stylespace_endpoints(server):
    c = _client(server)
    from stylekit.edit.presets import STYLESPACE

    table, layer, channel, amount = c.predict("toyfaces", "smile", 4, api_name="/stylespace_find")
    assert len(table.strip().splitlines()) == 5 and layer in table and abs(amount) == abs(STYLESPACE.amount)
    image, info = c.predict("toyfaces", layer, channel, amount, api_name="/stylespace_edit")
    assert _wide(image, 2) and f"channel {int(channel)}" in info
    before = _pixels(c.predict("toyfaces", "", api_name="/sg3_sticking")[0])
    assert "S latent" in c.predict("toyfaces", api_name="/stylespace_use")[1]
    # the texture-sticking view pans the S face itself (it needs no W+ code)
    after = _pixels(c.predict("toyfaces", "", api_name="/sg3_sticking")[0])
    assert after.shape == before.shape and abs(after - before).mean() > 1.0
    # an S latent cannot go back to W: the W edits say so and the server keeps going
    with pytest.raises(Exception, match="StyleSpace"):
        c.predict("toyfaces", 0, 1.0, "all", api_name="/edit_ganspace")
    assert c.predict("toyfaces", api_name="/stylespace_layers")


def test_local_edit_endpoints(server, tmp_path):
    c = _client(server)
    current, parts, key = c.predict("toyfaces", api_name="/local_parts")
    assert _image(current).size == _image(parts).size == (256, 256)
    assert "2 skin" in key and "hair" in key  # the key names the parts, not only their colours
    image, info, full = c.predict("toyfaces", 9, 2, 1.0, api_name="/local_transfer")
    assert _wide(image, 3) and "Part 2 (skin)" in info
    assert _image(full).size == (64, 64)  # the result at the generator's own size
    assert "S latent" in c.predict("toyfaces", api_name="/local_use")[1]
    # Retrieve by part, from that S latent: the current face and 3 faces closest in the hair, then a transfer
    tiles, info = c.predict("toyfaces", 5, 3, api_name="/local_retrieve")
    assert _wide(tiles, 4) and "Closest in part 5 (hair)" in info
    image, info, full = c.predict("toyfaces", 5, 2, 1.0, api_name="/local_retrieve_transfer")
    assert _wide(image, 3) and "(retrieved face 2," in info and _image(full).size == (64, 64)
    c.predict(api_name="/clear_latent")
    canvas = c.predict("toyfaces", api_name="/local_canvas")
    assert canvas["background"] and _image(canvas["background"]).size == (256, 256)
    for mode in ("crossover", "inpainting"):
        image, info, full = c.predict("toyfaces", _editor_value(tmp_path), mode, 7, 4, api_name="/local_crossover")
        assert _wide(image, 4) and mode.capitalize() in info and _image(full).size == (64, 64)
    assert "W+ latent" in c.predict("toyfaces", api_name="/local_use")[1]


def test_morph_and_analogy_endpoints(server):
    from PIL import Image

    from demos.morph import OTHER_SEED  # a face unlike the tabs' start (a morph to the start face shows nothing)

    c = _client(server)
    frames, gif, full = c.predict("toyfaces", OTHER_SEED, 5, "lerp", api_name="/morph")
    assert len(frames) == 5 and all(_image(f["image"]).size == (256, 256) for f in frames)
    with Image.open(gif) as anim:
        assert anim.format == "GIF" and anim.n_frames == 8  # there and back: 5 + 3
    assert "frame 4" in c.predict("toyfaces", 4, api_name="/morph_use")[1]
    assert len(c.predict("toyfaces", OTHER_SEED, 3, "slerp", api_name="/morph")[0]) == 3
    image, info = c.predict("toyfaces", "seeds", 3, 4, 1.0, "middle", api_name="/analogy")
    assert _wide(image, 4) and "middle" in info
    image, info = c.predict("toyfaces", "example: neutral -> smiling", 0, 0, 1.0, "all", api_name="/analogy")
    assert _wide(image, 4)
    assert "Analogy" in c.predict("toyfaces", api_name="/analogy_use")[1]


def test_text_endpoint(server):
    c = _client(server)
    with pytest.raises(Exception, match="prompt is empty"):
        c.predict("toyfaces", "  ", "a face", "global", 4, 5, 0.1, 40, True, api_name="/text_edit")
    for method in ("global", "optimize", "mapper"):
        args = ("toyfaces", "a face with glasses", "a face", method, 4, 3, 0.0, 40, True)
        if CLIP_WEIGHTS.is_file():
            image, info = c.predict(*args, api_name="/text_edit")
            assert _wide(image, 2) and "glasses" in info
            if method == "global":
                assert "40 channels" in info and "whitened" in info, info
        else:  # the toyfaces CLIP is not installed: the tab says so
            with pytest.raises(Exception, match="CLIP weights"):
                c.predict(*args, api_name="/text_edit")
    if CLIP_WEIGHTS.is_file():  # StyleCLIP's plain rule: every channel above beta
        image, info = c.predict("toyfaces", "a face with glasses", "a face", "global", 4, 3, 0.45, 0, False,
                                api_name="/text_edit")
        assert "plain" in info and "40 channels" not in info, info
    if CLIP_WEIGHTS.is_file():  # the mapper trained above is reused: opposite strength, same mapper
        image, info = c.predict("toyfaces", "a face with glasses", "a face", "mapper", -4, 3, 0.1, 40, True,
                                api_name="/text_edit")
        assert "Mapper" in info and "-1" in info
    assert "Stopping" in c.predict(api_name="/text_stop")


def test_stylegan3_tab(server):
    c = _client(server)
    status = c.predict("toyfaces", api_name="/sg3_status")
    assert "Not available" in status[0]
    with pytest.raises(Exception, match="StyleGAN3"):
        c.predict("toyfaces", 30, 0, 0, api_name="/sg3_pose")
    sg3 = fixture_file("nvidia/sg3t_small.pkl")
    status = c.predict(str(sg3), api_name="/sg3_status")
    assert "is a StyleGAN3" in status[0]
    image, info, full = c.predict(str(sg3), 45, 0.1, 0, api_name="/sg3_pose")
    assert _wide(image, 2) and "+45 degrees" in info
    w, h = _image(full).size
    assert w == h and w < _image(image).size[0]  # the posed picture alone, at the generator's size
    # the texture-sticking view works for StyleGAN2 and StyleGAN3, and its EQ-T tells them apart
    import re

    readings = {}
    for model in ("toyfaces", str(sg3)):
        image, info = c.predict(model, "", api_name="/sg3_sticking")  # (the session latent is state, not an argument)
        readings[model] = float(re.search(r"EQ-T on this face ([0-9.]+) dB", info).group(1))
        w, h = _image(image).size
        assert w > 3 * h > 0  # a row of seven frames over a row of two averages
        alone = h
    assert readings["toyfaces"] < 30 < 40 < readings[str(sg3)], readings
    # side by side: the StyleGAN2's view over the StyleGAN3's, and both EQ-T figures with their difference
    image, info = c.predict("toyfaces", str(sg3), api_name="/sg3_sticking")
    assert "Side by side" in info and float(re.search(r"EQ-T on this face ([0-9.]+) dB", info).group(1)) == \
        readings["toyfaces"], info
    assert float(re.search(r"\*\*([+-][0-9.]+) dB\*\*", info).group(1)) > 10, info
    assert _image(image).size[1] > 2 * alone  # two views, each with its caption
    with pytest.raises(Exception, match="neither a StyleGAN2 nor a StyleGAN3|no such|not"):
        c.predict("toyfaces", "no-such-model", api_name="/sg3_sticking")


# ----------------------------------------------------------------------------------------------
# bad input


def test_bad_inputs_give_readable_errors_and_the_server_stays_up(server, tmp_path):
    from gradio_client import handle_file
    from PIL import Image

    c = _client(server)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10)
    huge = tmp_path / "huge.png"
    Image.new("L", (7000, 7000)).save(huge)  # 49 Mpx compresses to a small file
    cases = [
        (("toyfaces", handle_file(str(corrupt)), "optimize", "w+", 5), "/invert", "corrupt|not an image"),
        (("toyfaces", handle_file(str(huge)), "optimize", "w+", 5), "/invert", "pixels"),
        (("toyfaces", None, "optimize", "w+", 5), "/invert", "no image given"),
        (("toyfaces", _example(), "optimize", "w+", 0), "/invert", "steps must be|minimum value 1"),
        (("toyfaces", _example(), "encoder", "w", 1), "/invert", "w\\+"),
        (("toyfaces", "", 0.7, "const"), "/generate", "seeds"),
        (("toyfaces", " , ", 0.7, False), "/generate_use", "no seeds"),
        (("toyfaces", "1", "", "coarse", 0.7, False), "/style_mix", "no column seeds"),
        (("toyfaces", "1", "2", "toes", 0.7, False), "/style_mix", "layer group|not in the list of choices"),
        (("toyfaces", "glasses", 1e6, "all"), "/edit_interfacegan", "strength must be between|maximum value 10"),
        (("toyfaces", "wings", 1.0, "all"), "/edit_interfacegan", "attribute|not in the list of choices"),
        (("toyfaces", 99, 1.0, "all"), "/edit_ganspace", "component must be between|maximum value 19"),
        (("toyfaces", 2.5, 1.0, "all"), "/edit_sefa", "whole number"),
        (("toyfaces", "b16.conv0", 100000, 1.0), "/stylespace_edit", "channel must be between"),
        (("toyfaces", 7, 2, 5.0), "/local_transfer", "strength must be between|maximum value 2"),
        (("toyfaces", {"background": None, "layers": [], "composite": None, "id": None}, "crossover", 7, 5),
         "/local_crossover", "canvas is empty"),
        (("toyfaces", 11, 1, "lerp"), "/morph", "number of frames|minimum value 2"),
        (("toyfaces", 3, 2.5), "/morph_use", "nothing to use yet"),
        (("toyfaces",), "/edit_use", "nothing to use yet"),
        (("no-such-model", "1", 0.7, "const"), "/generate", "Unknown model"),
        (("toyfaces", 400, 0, 0), "/sg3_pose", "rotation must be between|maximum value 180"),
        (("toyfaces", "a face with glasses", "a face", "global", 4, 3, 0.9, 40, True), "/text_edit",
         "threshold must be between|maximum value 0.6"),
        (("toyfaces", "a face with glasses", "a face", "global", 4, 3, 0.1, 900, True), "/text_edit",
         "channels must be between|maximum value 500"),
        (("toyfaces", "x " * 200, "a face", "global", 4, 3, 0.1, 40, True), "/text_edit", "too long|tokens"),
    ]
    for args, api, message in cases:
        with pytest.raises(Exception, match=message):
            c.predict(*args, api_name=api)
    # a canvas with nothing painted
    value = _editor_value(tmp_path)
    value["layers"] = []
    with pytest.raises(Exception, match="no mask painted"):
        c.predict("toyfaces", value, "inpainting", 7, 5, api_name="/local_crossover")
    assert _image(c.predict("toyfaces", "5", 1.0, "none", api_name="/generate")[0]).size[1] >= 128


def test_user_errors_log_one_line_each(server_and_log):
    url, log_path = server_and_log
    c = _client(url)
    before = log_path.read_text().count("\n")
    for seeds in ("banana", "", "0-99"):
        with pytest.raises(Exception, match="seeds"):
            c.predict("toyfaces", seeds, 0.7, "const", api_name="/generate")
    time.sleep(0.5)
    new = log_path.read_text().splitlines()[before:]
    errors = [line for line in new if "user error in generate" in line]
    assert len(errors) == 3, new
    assert "Traceback" not in log_path.read_text()


def test_api_names_every_input_and_output_and_lists_the_models_once(server):
    import json

    c = _client(server)
    info = c.view_api(print_info=False, return_format="dict")
    endpoints = info["named_endpoints"]
    assert len(endpoints) >= 30
    for name, endpoint in endpoints.items():
        for item in endpoint["parameters"] + endpoint["returns"]:
            assert not item["label"].startswith(("parameter_", "value_")), (name, item["label"])
    assert json.dumps(info).count("metfaces-1024") == 0  # the model list is not in any signature
    names = c.predict(api_name="/models").splitlines()
    assert names[0] == "toyfaces" and "metfaces-1024" in names


def test_two_clients_keep_separate_state(server):
    from demos.morph import OTHER_SEED

    a, b = _client(server), _client(server)
    seeds = {"a": 3, "b": 5}
    results: dict = {}

    def pick(name, client):
        results[name] = client.predict("toyfaces", str(seeds[name]), 0.7, api_name="/generate_use")

    threads = [threading.Thread(target=pick, args=item) for item in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert "seed 3" in results["a"][1] and "seed 5" in results["b"][1]
    # each client's morph starts from its own current latent
    first = {name: c.predict("toyfaces", OTHER_SEED, 2, "lerp", api_name="/morph")[0][0]["image"]
             for name, c in (("a", a), ("b", b))}
    for name, other in (("a", "b"), ("b", "a")):
        own = abs(_pixels(first[name]) - _pixels(results[name][0])).mean()
        theirs = abs(_pixels(first[name]) - _pixels(results[other][0])).mean()
        assert own < 3 < theirs, (name, own, theirs)


# the browser test of every tab lives in test_app_browser.py


def test_space_folder_assembles_and_launches(tmp_path):
    space = tmp_path / "space"
    result = subprocess.run([sys.executable, str(ROOT / "hf_space" / "assemble.py"), str(space)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    proc, url, _ = launch(space)
    try:
        from gradio_client import Client
        from PIL import Image

        path = Client(url, verbose=False).predict("toyfaces", "1", 0.7, "const", api_name="/generate")[0]
        assert Image.open(path).size[1] >= 128
    finally:
        stop(proc)
    (space / "app.py").unlink()
    check = subprocess.run([sys.executable, str(ROOT / "hf_space" / "assemble.py"), str(space), "--check"],
                           capture_output=True, text=True)
    assert check.returncode == 1 and "app file" in check.stderr
