"""Video: clips made here with PyAV through the CLI and the clip API (seeded weights)."""

from __future__ import annotations

import sys

import av
import numpy as np
import pytest
from PIL import Image

from adain.pipelines import video as clip_api
from adain.errors import AdainError, VideoError
from adain.media import images, video_io as video
from adain.commands.stylize import main
from adain.models.adain.codes import StyleCode
from adain.inference.stylizer import Stylizer
from clips import frame_images, read_clip, write_clip
from conftest import write_image

H, W = 40, 54  # every clip here: one compiled shape


@pytest.fixture(scope="module")
def style_png(tmp_path_factory):
  return write_image(tmp_path_factory.mktemp("style") / "paint.png", 48, 48, seed=3)


@pytest.fixture(scope="module")
def stylizer(weights):
  return Stylizer.from_files(*weights)


def cli(weights, *args) -> int:
  return main(["--vgg", str(weights[0]), "--decoder", str(weights[1]), *map(str, args)])


@pytest.mark.slow  # a clip encoded, stylized frame by frame and decoded
def test_vfr_timestamps_audio_and_still_image_equality(tmp_path, weights, style_png, capsys):
  """--stabilize 0 --crf 0: every frame is the still-image CLI's output of that frame, at the
  source's (variable) timestamps, with the sound; odd sizes are padded by repeating the edge."""
  frames = frame_images(7, H, W)
  pts = [0, 40, 80, 200, 210, 333, 601]  # milliseconds: no constant rate
  src = write_clip(tmp_path / "clip.mp4", frames, pts, audio="aac")
  out = tmp_path / "out"
  assert cli(weights, "--content", src, "--style", style_png, "--output", out, "--content-size", 33,
             "--stabilize", 0, "--crf", 0, "--batch", 3) == 0
  assert "1 video(s) (7 frames" in capsys.readouterr().err
  got, times, audio = read_clip(out / "clip_stylized_paint.mp4")
  assert times == pytest.approx([p / 1000 for p in pts], abs=1e-6)
  assert audio == ["aac"]
  # The same frames as still images through the image CLI.
  stills = tmp_path / "stills"
  stills.mkdir()
  for i, (img, _) in enumerate(video.VideoReader(src)):
    Image.fromarray(images.to_uint8(img)).save(stills / f"f{i}.png")
  assert cli(weights, "--content-dir", stills, "--style", style_png, "--output", tmp_path / "s",
             "--content-size", 33, "--ext", "png") == 0
  for i, frame in enumerate(got):
    still = np.asarray(Image.open(tmp_path / "s" / f"f{i}_stylized_paint.png"))
    assert still.shape == (33, 44, 3) and frame.shape == (34, 44, 3)
    np.testing.assert_array_equal(frame[:33], still)
    np.testing.assert_array_equal(frame[33], still[32])  # the padded row repeats the last


def test_audio_reencoded_when_mp4_cannot_hold_it(tmp_path, stylizer, style_png):
  src = write_clip(tmp_path / "pcm.mov", frame_images(3, H, W), audio="pcm_s16le", container="mov")
  code = stylizer.encode_style(images.load_image(style_png))
  summary = clip_api.stylize_clip(stylizer, src, tmp_path / "o.mp4", code, content_size=0, batch=3)
  assert summary.frames == 3 and summary.audio_streams == 1
  assert (summary.width, summary.height) == (W, H)
  _, _, audio = read_clip(tmp_path / "o.mp4")
  assert audio == ["aac"]


@pytest.mark.parametrize("codec,kept", [("libmp3lame", "mp3"), ("libopus", "opus"), ("flac", "flac")])
def test_audio_copied_when_mp4_holds_it(tmp_path, codec, kept):
  src = write_clip(tmp_path / "a.mkv", frame_images(2, H, W), audio=codec, container="matroska")
  with av.open(str(src)) as c:
    packets = [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]
  with video.VideoReader(src) as reader:
    video.write_video(tmp_path / "o.mp4", [video.Frame(i, p) for i, p in reader], reader.time_base,
                      reader.fps, audio_from=src)
  with av.open(str(tmp_path / "o.mp4")) as c:
    assert c.streams.audio[0].codec_context.codec.canonical_name == kept
    assert [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size] == packets  # not re-encoded


def test_rotation_applied(tmp_path, stylizer):
  frames = frame_images(2, H, W)
  src = write_clip(tmp_path / "rot.mp4", frames, rotation=90, codec="libx264rgb", pix_fmt="rgb24")
  reader = video.VideoReader(src)
  upright = [img for img, _ in reader]
  assert upright[0].shape == (W, H, 3)  # 90 degrees: sides swapped
  np.testing.assert_array_equal(images.to_uint8(upright[1]), np.rot90(frames[1], 1))


@pytest.mark.slow  # a clip stylized twice, frame by frame
def test_stabilize_steadier_than_per_frame(tmp_path, stylizer, style_png):
  """On a still scene with sensor noise, smoothing lowers the output's frame-to-frame change."""
  rng = np.random.default_rng(0)
  base = frame_images(1, H, W)[0].astype(np.float32)
  frames = [np.clip(base + rng.normal(0, 5, base.shape), 0, 255).astype(np.uint8) for _ in range(8)]
  src = write_clip(tmp_path / "noisy.mp4", frames, codec="libx264rgb", pix_fmt="rgb24")
  code = stylizer.encode_style(images.load_image(style_png))
  flicker = {}
  for s in (0.0, 0.8):
    clip_api.stylize_clip(stylizer, src, tmp_path / f"{s}.mp4", code, content_size=0, stabilize=s,
                          crf=0, batch=4)
    out = np.stack(read_clip(tmp_path / f"{s}.mp4")[0]).astype(np.float32)
    flicker[s] = clip_api.flicker(out)
  assert flicker[0.8] < 0.6 * flicker[0.0]


def test_steady_follows_motion_and_cuts():
  """Where the input changes, the output is the frame's own; where it does not, it is pulled."""
  rng = np.random.default_rng(0)
  prev_in = rng.random((24, 24, 3)).astype(np.float32)
  cur_in = prev_in.copy()
  cur_in[:, 12:] = rng.random((24, 12, 3))  # the right half changes (motion, or a cut)
  prev_out, out = np.zeros((24, 24, 3), np.float32), np.ones((24, 24, 3), np.float32)
  got = clip_api.steady(prev_out, out, prev_in, cur_in, 0.8)
  np.testing.assert_allclose(got[:, :9], 0.2, atol=1e-6)  # unchanged: 0.8 of the way back
  np.testing.assert_allclose(got[:, 15:], 1.0, atol=1e-6)  # changed: its own output


def test_frame_iterator_api(stylizer, style_png):
  frames = [f.astype(np.float32) / 255 for f in frame_images(3, H, W)]
  code = stylizer.encode_style(images.load_image(style_png))
  out = list(clip_api.stylize_frames(stylizer, iter(frames), code, stabilize=0, batch=2))
  assert len(out) == 3
  np.testing.assert_allclose(out[2], stylizer.generate(frames[2], code), atol=1e-5)


def test_frames_with_mask_and_colour_preservation(stylizer, style_png):
  """Every style option of the still-image path works on frames, with the same result."""
  frames = [f.astype(np.float32) / 255 for f in frame_images(2, H, W)]
  style = images.load_image(style_png)
  codes = StyleCode.concat([stylizer.encode_style(style), stylizer.encode_style(style[::-1] * 0.5)])
  mask = np.zeros((100, 100), np.float32)
  mask[:, :50] = 0.9  # any resolution, values in [0, 1]
  out = list(clip_api.stylize_frames(stylizer, frames, codes, mask=mask, stabilize=0, batch=2))
  mask_code = stylizer.code_mask(mask, (H, W))
  np.testing.assert_allclose(out[1], stylizer.generate(frames[1], codes, mask_hw=mask_code), atol=1e-5)
  out = list(clip_api.stylize_frames(stylizer, frames, style, preserve_color="luminance", stabilize=0))
  np.testing.assert_allclose(out[1], stylizer.stylize(frames[1], style, preserve_color="luminance"),
                             atol=1e-5)


def test_bad_videos_in_a_batch(tmp_path, weights, style_png, capsys):
  """Each bad file gets one line naming it; the good clip is written; nothing else is left."""
  d = tmp_path / "in"
  d.mkdir()
  good = write_clip(d / "good.mp4", frame_images(3, H, W))
  write_clip(d / "full.mp4", frame_images(12, H, W))
  (d / "empty.mp4").write_bytes(b"")
  data = (d / "full.mp4").read_bytes()
  (d / "cut.mp4").write_bytes(data[:len(data) // 2])
  (d / "full.mp4").unlink()
  (d / "text.mp4").write_text("not a video at all\n")
  write_clip(d / "sound.m4a", [], audio="aac", container="mp4")
  out = tmp_path / "out"
  assert cli(weights, "--content-dir", d, "--style", style_png, "--output", out, "--content-size", 0,
             "--batch", 3) == 1
  err = capsys.readouterr().err
  lines = [line for line in err.splitlines() if line.startswith("error:")]
  assert len(lines) == 4, err
  for name in ("empty.mp4", "cut.mp4", "text.mp4", "sound.m4a"):
    assert sum(name in line for line in lines) == 1, err
  assert "has no video stream (audio only)" in err
  assert sorted(p.name for p in out.iterdir()) == ["good_stylized_paint.mp4"]
  assert len(read_clip(out / "good_stylized_paint.mp4")[0]) == 3
  assert good.exists()


def test_stream_cut_mid_way_writes_nothing(tmp_path, stylizer, style_png):
  """A clip whose header is whole but whose data ends early (faststart, then cut): an error
  naming it, after stylizing what was there; nothing kept."""
  src = tmp_path / "src.mp4"
  video.write_video(src, [video.Frame(f, 40 * i) for i, f in enumerate(frame_images(12, H, W))],
                    time_base=__import__("fractions").Fraction(1, 1000), fps=25)
  data = src.read_bytes()
  (tmp_path / "cut.mp4").write_bytes(data[:len(data) * 2 // 3])
  code = stylizer.encode_style(images.load_image(style_png))
  dst = tmp_path / "out" / "o.mp4"
  dst.parent.mkdir()
  with pytest.raises(VideoError, match=r"cut\.mp4: truncated or broken: only \d+ of its 12 frames"):
    clip_api.stylize_clip(stylizer, tmp_path / "cut.mp4", dst, code, content_size=0, batch=3)
  assert list(dst.parent.iterdir()) == []


def test_interrupted_run_leaves_nothing(tmp_path, stylizer, style_png):
  src = write_clip(tmp_path / "c.mp4", frame_images(9, H, W))
  code = stylizer.encode_style(images.load_image(style_png))
  dst = tmp_path / "out" / "o.mp4"
  dst.parent.mkdir()

  def progress(done, total):
    assert total == 9
    if done == 4:
      raise KeyboardInterrupt

  with pytest.raises(KeyboardInterrupt):
    clip_api.stylize_clip(stylizer, src, dst, code, content_size=0, batch=3, progress=progress)
  assert list(dst.parent.iterdir()) == []


def test_too_small_frames_name_the_file(tmp_path, weights, style_png, capsys):
  small = write_clip(tmp_path / "thin.mp4", frame_images(2, 8, 64))
  still = write_image(tmp_path / "thin.png", 8, 300)
  assert cli(weights, "--content", small, "--style", style_png, "--output", tmp_path / "o",
             "--content-size", 0) == 1
  assert cli(weights, "--content", still, "--style", style_png, "--output", tmp_path / "o",
             "--content-size", 0) == 1
  err = capsys.readouterr().err
  assert f"error: {small}: content image is 64x8 pixels" in err
  assert f"error: {still}: content image is 300x8 pixels" in err
  assert list((tmp_path / "o").iterdir()) == []


def test_video_recognised_by_content(tmp_path):
  clip = write_clip(tmp_path / "holiday.jpg", frame_images(2, H, W))
  assert video.is_video(clip)
  assert not video.is_video(write_image(tmp_path / "x.png", 20, 20).rename(tmp_path / "x.mp4"))
  (tmp_path / "empty").write_bytes(b"")
  assert not video.is_video(tmp_path / "empty")


def test_too_large_frames_refused_before_decoding(tmp_path, monkeypatch):
  src = write_clip(tmp_path / "big.mp4", frame_images(1, H, W))
  monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", H * W - 1)
  with pytest.raises(VideoError, match=r"big\.mp4: frames too large \(54x40"):
    video.VideoReader(src)


def test_missing_pyav_is_one_line(monkeypatch, tmp_path):
  monkeypatch.setitem(sys.modules, "av", None)
  with pytest.raises(AdainError, match=r"pip install 'adain\[video\]'"):
    video.VideoReader(tmp_path / "x.mp4")


def test_cover_art_is_not_a_video(tmp_path):
  """An audio file with a picture (a one-frame 'attached picture' stream) is audio only."""
  path = tmp_path / "song.m4a"
  with av.open(str(path), "w", format="mp4") as out:
    a = out.add_stream("aac", rate=16000, layout="mono")
    v = out.add_stream("mjpeg", rate=1)
    v.width, v.height, v.pix_fmt = 32, 32, "yuvj420p"
    v.disposition = av.stream.Disposition.attached_pic
    out.mux(v.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")))
    out.mux(v.encode())
    tone = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
    tone.sample_rate, tone.pts = 16000, 0
    out.mux(a.encode(tone))
    out.mux(a.encode())
  with pytest.raises(VideoError, match=r"song\.m4a: has no video stream \(audio only\)"):
    video.VideoReader(path)
