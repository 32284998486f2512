"""Video: PyAV reading and writing with limits, temporal smoothing, the per-frame pipeline, toyfaces clips, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from stylekit.errors import ImageInputError, InvalidArgumentError
from stylekit.toyfaces.clips import make_clip
from stylekit.video import edit_video, flicker, read_video, smooth_latents, write_video
from stylekit.images import to_uint8
from stylekit.video.pipeline import frames_to_tensor


def _moving_square(t=10, h=64, w=64):
    f = np.zeros((t, h, w, 3), np.uint8)
    f[:, 16:48, 16:48] = (200, 60, 30)
    for i in range(t):
        f[i, :, 4 * i:4 * i + 4] = 255
    return f


@pytest.mark.parametrize("suffix,tolerance", [(".mp4", 3.0), (".webm", 3.0), (".gif", 12.0)])
def test_write_then_read_keeps_the_clip(tmp_path, suffix, tolerance):
    frames = _moving_square()
    path = write_video(tmp_path / f"clip{suffix}", frames, fps=12)
    back, fps = read_video(path)
    assert back.shape == frames.shape and back.dtype == np.uint8
    assert abs(fps - 12) < 0.6  # gif stores delays in centiseconds
    assert np.abs(back.astype(int) - frames).mean() < tolerance


def test_odd_sides_are_padded_for_yuv420(tmp_path):
    back, _ = read_video(write_video(tmp_path / "odd.mp4", _moving_square(h=63, w=65), fps=10))
    assert back.shape == (10, 64, 66, 3)


def test_bad_video_input_is_refused_with_what_to_do(tmp_path):
    with pytest.raises(ImageInputError, match="no such video"):
        read_video(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 10)
    with pytest.raises(ImageInputError, match="not a readable video"):
        read_video(junk)
    path = write_video(tmp_path / "clip.mp4", _moving_square(t=12), fps=12)
    with pytest.raises(ImageInputError, match="more than 5 frames; trim it"):
        read_video(path, max_frames=5)
    with pytest.raises(ImageInputError, match="larger than 32 on a side; shrink"):
        read_video(path, max_side=32)
    with pytest.raises(InvalidArgumentError, match="cannot write '.avi2'"):
        write_video(tmp_path / "x.avi2", _moving_square(), 10)
    with pytest.raises(InvalidArgumentError, match="uint8"):
        write_video(tmp_path / "x.mp4", _moving_square().astype(np.float32), 10)
    with pytest.raises(InvalidArgumentError, match="fps"):
        write_video(tmp_path / "x.mp4", _moving_square(), 0)


def test_smoothing_keeps_still_clips_and_calms_jitter():
    torch.manual_seed(0)
    still = torch.randn(1, 4, 8).expand(9, 4, 8).contiguous()
    torch.testing.assert_close(smooth_latents(still, 2.0), still)
    jitter = still + 0.3 * torch.randn(9, 4, 8)
    assert torch.equal(smooth_latents(jitter, 0.0), jitter)
    steps = lambda x: (x[1:] - x[:-1]).abs().mean()  # noqa: E731
    assert steps(smooth_latents(jitter, 1.5)) < 0.5 * steps(jitter)
    with pytest.raises(InvalidArgumentError, match="sigma"):
        smooth_latents(jitter, -1.0)


def test_toyfaces_clips_carry_their_ground_truth():
    frames, attrs = make_clip("turn", frames=9, seed=3)
    assert frames.shape == (9, 3, 64, 64) and -1 <= float(frames.min()) and float(frames.max()) <= 1
    assert attrs["yaw"][0] == -25 and attrs["yaw"][-1] == 25 and np.all(np.diff(attrs["yaw"]) > 0)
    assert np.all(attrs["smile"] == attrs["smile"][0])  # only the animated attribute moves
    assert flicker(frames) > 0.5
    _, blink = make_clip("blink", frames=9, seed=3)
    assert blink["eyes_open"][0] == 1 and blink["eyes_open"][4] == 0 and blink["eyes_open"][-1] == 1
    with pytest.raises(InvalidArgumentError, match="unknown clip kind"):
        make_clip("dance")
    with pytest.raises(InvalidArgumentError, match="frames"):
        make_clip("turn", frames=1)


@pytest.fixture(scope="module")
def toyfaces():
    import stylekit

    return stylekit.load_generator("toyfaces")


def test_the_pipeline_rebuilds_smooths_and_edits_a_clip(toyfaces):
    from stylekit.edit import Direction

    G = toyfaces
    frames, _ = make_clip("turn", frames=10, seed=5)
    rough = edit_video(G, frames, sigma=0.0, batch_size=4)
    smooth = edit_video(G, frames, sigma=1.0, batch_size=4)
    assert rough.complete and rough.frames_done == 10 and rough.psnr.shape == (10,)
    assert float(rough.psnr.mean()) > 20.0  # measured 24.1 dB on seed 5
    assert flicker(smooth.reconstruction) < flicker(rough.reconstruction)  # measured 1.63 vs 2.20
    assert torch.equal(smooth.edited, smooth.reconstruction)  # no direction: the reconstruction
    vector = torch.nn.functional.normalize(torch.randn(G.w_dim, generator=torch.Generator().manual_seed(1)), dim=0)
    edited = edit_video(G, frames, direction=Direction(vector, name="random"), strength=3.0, sigma=1.0, batch_size=4)
    torch.testing.assert_close(edited.latents.tensor, smooth.latents.tensor)  # the edit moves the render only
    change = (edited.edited - edited.reconstruction).abs().flatten(1).mean(1)
    assert bool((change > 0.01).all())  # every frame edited
    calls = []
    stopped = edit_video(G, frames, batch_size=4, should_stop=lambda: len(calls) >= 1,
                         progress=lambda done, total, what: calls.append(done))
    assert not stopped.complete and stopped.frames_done == 4  # the finished batch is kept
    assert to_uint8(stopped.edited).shape == (4, 64, 64, 3)
    with pytest.raises(InvalidArgumentError, match="direction must be"):
        edit_video(G, frames, direction="smile")
    with pytest.raises(ImageInputError, match="frame tensors"):
        edit_video(G, frames[:, :, :32, :32])


def test_frames_are_centre_cropped_and_resized():
    x = frames_to_tensor(np.zeros((2, 48, 80, 3), np.uint8), 32)
    assert x.shape == (2, 3, 32, 32) and float(x.max()) == -1.0
    with pytest.raises(ImageInputError, match="uint8"):
        frames_to_tensor(np.zeros((2, 48, 80), np.uint8), 32)


def test_the_video_command_writes_the_edited_clip(tmp_path, capsys):
    from stylekit.cli import main

    frames, _ = make_clip("smile", frames=6, seed=2)
    source = write_video(tmp_path / "in.mp4", to_uint8(frames), fps=8)
    out = tmp_path / "out.webm"
    assert main(["video", str(source), str(out), "--sigma", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 6 and summary["psnr_mean_db"] > 15 and out.is_file()
    assert read_video(out)[0].shape == (6, 64, 64, 3)
    assert main(["video", str(source), str(tmp_path / "o.mp4"), "--strength", "2"]) == 2
    assert "--strength needs --direction" in capsys.readouterr().err


def test_the_video_tab_makes_a_clip_and_edits_it(tmp_path):
    from demos import video

    clip = video.video_clip("toyfaces", "blink", 3, 8)
    frames, fps = read_video(clip)
    assert frames.shape == (8, 64, 64, 3) and fps == 12
    out, info = video.video_edit("toyfaces", clip, "glasses", 1.0, 1.0, progress=lambda *a, **k: None)
    shown, _ = read_video(out)
    assert shown.shape == (8, 64, 128, 3)  # source | edited, side by side
    assert "8 frames, glasses at strength +1" in info and "PSNR" in info and "Stopped" not in info, info
    left, right = shown[:, :, :64].astype(int), shown[:, :, 64:].astype(int)
    assert np.abs(left - frames).mean() < 8 and np.abs(right - left).mean() > 2  # the edit shows
    assert video.direction_choices("toyfaces")[0] == video.NONE and "glasses" in video.direction_choices("toyfaces")
    with pytest.raises(Exception, match="no clip"):
        video.video_edit("toyfaces", None, "glasses", 1.0, 1.0, progress=lambda *a, **k: None)
    with pytest.raises(Exception, match="edit must be one of"):
        video.video_edit("toyfaces", clip, "wings", 1.0, 1.0, progress=lambda *a, **k: None)
    with pytest.raises(Exception, match="smoothing"):
        video.video_edit("toyfaces", clip, "glasses", 1.0, 9.0, progress=lambda *a, **k: None)


def test_the_video_tab_tunes_and_aligns(tmp_path):
    from demos import video
    from stylekit.toyfaces.attributes import sample_attributes

    assert float(sample_attributes(1, seed=video.DEFAULT_SEED)["glasses"][0]) == 0  # the default edit adds glasses
    clip = video.video_clip("toyfaces", "turn", video.DEFAULT_SEED, 4)
    out, info = video.video_edit("toyfaces", clip, "glasses", 1.0, 1.0, False, 2, progress=lambda *a, **k: None)
    assert "PTI 2 tuning steps" in info and read_video(out)[0].shape == (4, 64, 128, 3), info
    with pytest.raises(Exception, match="no face was found in any frame"):  # dlib finds no real face in toyfaces
        video.video_edit("toyfaces", clip, "glasses", 1.0, 1.0, True, 0, progress=lambda *a, **k: None)
    with pytest.raises(Exception, match="PTI fits per frame"):
        video.video_edit("toyfaces", clip, "glasses", 1.0, 1.0, False, 99, progress=lambda *a, **k: None)
    frames = np.zeros((3, 90, 120, 3), np.uint8)
    from stylekit.video.pipeline import VideoResult

    pasted = VideoResult(source=torch.zeros(3, 3, 64, 64), reconstruction=torch.zeros(3, 3, 64, 64),
                         edited=torch.zeros(3, 3, 64, 64), latents=None, psnr=torch.zeros(3),
                         full_frames=np.full((3, 90, 120, 3), 200, np.uint8))
    shown = video._side_by_side(pasted, frames, 64)
    assert shown.shape == (3, 90, 240, 3) and shown[:, :, :120].max() == 0 and shown[:, :, 120:].min() == 200


def test_pti_over_the_clip_raises_the_reconstruction(toyfaces):
    G = toyfaces
    before = {k: v.clone() for k, v in G.state_dict().items()}
    frames, _ = make_clip("turn", frames=6, seed=5)
    plain = edit_video(G, frames, sigma=1.0, batch_size=4)
    tuned = edit_video(G, frames, sigma=1.0, batch_size=4, pti_steps=4)
    assert tuned.meta["pti_steps"] == tuned.meta["pti_steps_done"] == 4 * 2  # 4 fits of each frame, 4 frames a step
    assert float(tuned.psnr.mean()) > float(plain.psnr.mean()) + 0.3  # measured 23.0 -> 23.9 dB on seed 5
    torch.testing.assert_close(tuned.latents.tensor, plain.latents.tensor)  # PTI moves the generator, not the codes
    assert tuned.latents.generator is not None and plain.latents.generator is None
    assert all(torch.equal(v, before[k]) for k, v in G.state_dict().items())  # the shared generator is untouched
    calls = []
    stopped = edit_video(G, frames, batch_size=4, pti_steps=4, should_stop=lambda: len(calls) >= 4,
                         progress=lambda done, total, what: calls.append(what))
    assert stopped.meta["pti_stopped"] and 0 < stopped.meta["pti_steps_done"] < 8
    assert not stopped.complete and stopped.frames_done == 4  # the render keeps its first batch
    with pytest.raises(InvalidArgumentError, match="pti_steps"):
        edit_video(G, frames, pti_steps=-1)


def _tiny_stylegan3():
    from test_stylegan3 import tiny_generator

    return tiny_generator(seed=3)


def test_a_stylegan3_clip_is_inverted_by_warm_started_optimisation():
    from stylekit.edit import Direction

    G = _tiny_stylegan3()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        w0, w1 = G.mapping(torch.randn(2, G.z_dim, generator=gen), None).chunk(2)
        path = torch.stack([w0[0] + (w1[0] - w0[0]) * s for s in torch.linspace(0, 0.3, 4)])  # [4, num_ws, w_dim]
        frames = G.synthesis(path, noise_mode="const").clamp(-1, 1)
        mean_face = G.synthesis(G.w_avg.reshape(1, 1, -1).expand(1, G.num_ws, -1), noise_mode="const")
    result = edit_video(G, frames, encoder=None, sigma=0.0, perceptual="none")
    assert result.complete and result.meta["inversion"] == "optimize" and result.latents.tensor.shape == path.shape
    baseline = torch.tensor([float(10 * torch.log10(4 / (mean_face.clamp(-1, 1) - f).square().mean()))
                             for f in frames])
    assert bool((result.psnr > baseline + 8).all())  # measured 40-41 dB against 22-28 for the average face
    steps = (result.latents.tensor[1:] - result.latents.tensor[:-1]).norm(dim=-1).mean()
    # warm starts follow the path (measured 0.21 between frames, the path's 0.23)
    assert float(steps) < float((path[1:] - path[:-1]).norm(dim=-1).mean()) * 2
    d = Direction(torch.nn.functional.normalize(torch.randn(G.w_dim, generator=gen), dim=0), name="random")
    edited = edit_video(G, frames, encoder=None, direction=d, strength=2.0, perceptual="none",
                        should_stop=lambda: True)
    assert not edited.complete and edited.frames_done == 1  # the first frame is always finished
    assert float((edited.edited - edited.reconstruction).abs().mean()) > 0.01


def test_toyfaces_can_take_the_optimisation_route(toyfaces):
    frames, _ = make_clip("smile", frames=3, seed=5)
    result = edit_video(toyfaces, frames, encoder=None, sigma=0.0)
    assert float(result.psnr.mean()) > 20.0  # measured 24.4-25.0 dB


def test_the_video_command_aligns_with_given_landmarks_and_tunes(tmp_path, capsys):
    from stylekit.cli import main
    from test_video_align import _toyfaces_in_a_frame

    clip, _ = make_clip("turn", frames=4, seed=2)
    frames, lms = _toyfaces_in_a_frame(clip)
    lms = np.stack(lms)
    lms[1] = np.nan  # no face in frame 1
    source = write_video(tmp_path / "in.mp4", frames, fps=8)
    np.save(tmp_path / "lm.npy", lms)
    out = tmp_path / "out.mp4"
    assert main(["video", str(source), str(out), "--align", "--landmarks", str(tmp_path / "lm.npy"),
                 "--pti-steps", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames_without_face"] == [1] and summary["pti_steps"] == 1 and summary["psnr_mean_db"] > 15
    written, _ = read_video(out)
    assert written.shape == frames.shape  # the full frames, the face pasted back
    assert main(["video", str(source), str(out), "--landmarks", str(tmp_path / "lm.npy")]) == 2
    assert "--landmarks needs --align" in capsys.readouterr().err
    (tmp_path / "bad.npy").write_bytes(b"junk")
    assert main(["video", str(source), str(out), "--align", "--landmarks", str(tmp_path / "bad.npy")]) == 2
    assert "not a readable .npy" in capsys.readouterr().err
