"""The web app's handlers in process: the same pixels as the CLI, codes reused, errors as messages."""

from __future__ import annotations

import io
import socket
import sys
import threading
import time

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from adain.commands import stylize
from adain.commands import app as app_main
from adain.app import studio as studio_module
from adain.app import ui
from adain.app.studio import LiveStream, Studio
from adain.errors import AdainError
from adain.media import images
from adain.models import NETWORKS
from adain.models.adain.codes import StyleCode
from adain.inference.stylizer import Stylizer
from clips import frame_images, read_clip, write_clip
from conftest import cli, write_image

SIZES = dict(content_size=0, style_size=0)  # tiny images at their own size: fast
CLI_SIZES = ("--content-size", "0", "--style-size", "0")


@pytest.fixture(scope="module")
def stylizers(stylizer, microast_weights):
  """Both networks on their seeded weights, by name: a Studio's load."""
  return {"adain": stylizer, "microast": Stylizer.from_files(model="microast", weights=microast_weights)}


@pytest.fixture
def studio(stylizers, tmp_path):
  """A Studio whose initial model is adain."""
  return Studio(stylizers.__getitem__, tmp_path / "results")


@pytest.fixture(params=NETWORKS)
def model(request) -> str:
  return request.param


@pytest.fixture
def model_weights(model, weights, microast_weights):
  """``model``'s weights as conftest.cli takes them."""
  return weights if model == "adain" else microast_weights


def pixels(path) -> np.ndarray:
  return np.asarray(Image.open(path))


def test_one_style_is_the_cli_png(studio, model, model_weights, files, tmp_path):
  got = studio.stylize(files["content"], [files["a"]], alpha=0.6, model=model, **SIZES)
  assert got.path.name == "photo_stylized_a.png"  # named as the CLI names it
  want = cli(model_weights, tmp_path / "cli", files["content"], [files["a"]], "--alpha", "0.6", *CLI_SIZES)
  np.testing.assert_array_equal(pixels(got.path), want)


@pytest.mark.parametrize("method", ["coral", "luminance"])
def test_preserve_color_is_the_cli_png(studio, model, model_weights, files, tmp_path, method):
  got = studio.stylize(files["content"], [files["a"]], alpha=0.8, preserve_color=method, model=model, **SIZES)
  want = cli(model_weights, tmp_path / "cli", files["content"], [files["a"]], "--alpha", "0.8",
             "--preserve-color", method, *CLI_SIZES)
  np.testing.assert_array_equal(pixels(got.path), want)


def test_weights_mix_as_the_cli_interpolation(studio, model, model_weights, files, tmp_path):
  got = studio.stylize(files["content"], [files["a"], files["b"]], [1.0, 3.0], model=model, **SIZES)
  assert got.path.name == "photo_interpolation.png"
  want = cli(model_weights, tmp_path / "cli", files["content"], [files["a"], files["b"]], "--style-weights", "1,3",
             *CLI_SIZES)
  np.testing.assert_array_equal(pixels(got.path), want)


@pytest.mark.slow  # compiles the masked network twice (app and CLI)
def test_painted_mask_is_the_cli_mask(studio, weights, files, tmp_path):
  painted = np.zeros((40, 56), np.float32)  # at the content's size; strokes on the left half
  painted[:, :28] = 0.8
  mask_png = tmp_path / "mask.png"
  Image.fromarray((painted * 255).astype(np.uint8)).save(mask_png)
  got = studio.stylize(files["content"], [files["a"], files["b"]], [0.5, 0.5], mask_grey=painted, **SIZES)
  want = cli(weights, tmp_path / "cli", files["content"], [files["a"], files["b"]], "--mask", str(mask_png),
             *CLI_SIZES)
  np.testing.assert_array_equal(pixels(got.path), want)
  plain = studio.stylize(files["content"], [files["a"]], **SIZES)
  assert not np.array_equal(pixels(got.path), pixels(plain.path))


def test_moving_alpha_or_weights_reuses_the_codes(studio, stylizer, files, monkeypatch):
  calls = []
  for name in ("encode_content", "encode_style"):
    method = getattr(stylizer, name)
    monkeypatch.setattr(stylizer, name, lambda *a, _m=method, _n=name, **k: calls.append(_n) or _m(*a, **k))
  styles = [files["a"], files["b"]]
  first = studio.stylize(files["content"], styles, [1.0, 1.0], alpha=1.0, **SIZES)
  assert sorted(calls) == ["encode_content", "encode_style", "encode_style"]
  calls.clear()
  second = studio.stylize(files["content"], styles, [1.0, 3.0], alpha=0.3, **SIZES)
  assert calls == [] and "3 of 3 codes reused" in second.summary
  assert not np.array_equal(pixels(first.path), pixels(second.path))
  studio.stylize(files["content"], styles, [1.0, 3.0], alpha=0.3, content_size=32, style_size=0)
  assert calls == ["encode_content"]  # another size is another code; the styles are kept
  calls.clear()
  studio.stylize(files["content"], styles, alpha=0.3, preserve_color="coral", **SIZES)
  assert calls == ["encode_style", "encode_style"]  # coral styles depend on the content


def test_old_results_are_removed(studio, files, monkeypatch):
  monkeypatch.setattr(studio_module, "KEEP_RESULTS", 2)
  paths = [studio.stylize(files["content"], [files["a"]], alpha=a, **SIZES).path for a in (0.1, 0.2, 0.3)]
  assert [p.exists() for p in paths] == [False, True, True]


def test_bad_inputs_are_one_line_naming_the_upload(studio, files, tmp_path, monkeypatch):
  text = tmp_path / "notes.png"
  text.write_text("not an image")
  tiny = write_image(tmp_path / "tiny.png", 8, 8)
  code = tmp_path / "code.npz"
  np.savez(code, mean=np.zeros((1, 512)))
  good = StyleCode.concat([StyleCode(np.ones((1, 512), np.float32), np.ones((1, 512), np.float32))] * 2)
  two = tmp_path / "two.npz"
  good.save(two)
  c, a, b = files["content"], files["a"], files["b"]
  cases = [
      (dict(content=str(text), styles=[a]), "notes.png: not an image file"),
      (dict(content=c, styles=[str(text)]), "notes.png: not an image file"),
      (dict(content=str(tiny), styles=[a]), "content image is 8x8 pixels"),
      (dict(content=c, styles=[str(tiny)]), "style image is 8x8 pixels"),
      (dict(content=c, styles=[str(code)]), "code.npz: not an adain style-code file"),
      (dict(content=c, styles=[str(two)]), "two.npz: holds 2 style codes"),
      (dict(content=c, styles=[str(two)], preserve_color="coral"), "needs the style image"),
      (dict(content=c, styles=[a, b, a], mask_grey=np.ones((4, 4))), "needs exactly two styles"),
      (dict(content=c, styles=[a, b], weights=[0.0, 0.0]), "not all 0"),
      (dict(content=c, styles=[]), "add at least one style"),
  ]
  for kwargs, message in cases:
    with pytest.raises(AdainError, match=message) as e:
      studio.stylize(**{**SIZES, **kwargs})
    assert str(tmp_path) not in str(e.value) and "\n" not in str(e.value)
  monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
  with pytest.raises(AdainError, match="photo.png: image too large"):
    Studio(studio.load_stylizer, tmp_path / "fresh").stylize(c, [a], **SIZES)
  monkeypatch.undo()
  assert studio.stylize(c, [a], **SIZES).path.exists()  # and the next call works


def endpoint(app, name: str):
  return next(f.fn for f in app.fns.values() if f.api_name == name)


def test_api_handler_gives_messages_not_tracebacks(studio, files, tmp_path, monkeypatch):
  api = endpoint(ui.build(studio), "stylize")
  text = tmp_path / "notes.txt"
  text.write_text("hello")
  with pytest.raises(gr.Error, match="notes.txt: not an image file") as e:
    api(str(text), files["a"], 0.5, "adain")
  assert e.value.print_exception is False
  with pytest.raises(gr.Error, match="alpha must be in"):
    api(files["content"], files["a"], 1.5, "adain")
  with pytest.raises(gr.Error, match="unknown model 'vgg': one of adain, microast"):
    api(files["content"], files["a"], 0.5, "vgg")
  # A good call is the CLI's defaults (its pixels: test_app_browser.py, through the server).
  calls = []
  monkeypatch.setattr(studio, "stylize", lambda *a, **k: calls.append((a, k)) or studio_module.Result(
      tmp_path / "out.png", ""))
  assert api(files["content"], files["a"], 0.5, "microast") == str(tmp_path / "out.png")
  assert calls == [((files["content"], [files["a"]]), {"alpha": 0.5, "model": "microast"})]
  defaults = stylize.build_parser().parse_args([])
  assert studio_module.CLI_SIZE == defaults.content_size == defaults.style_size


def test_page_handler_reads_the_painted_strokes(studio, files):
  page = endpoint(ui.build(studio), "stylize_page")
  strokes = np.zeros((20, 28, 4), np.uint8)
  strokes[:, :14, 3] = 255
  editor = {"background": None, "layers": [strokes], "composite": None}
  args = ("adain", files["content"], editor, [files["a"], files["b"]], 1.0, 0, 0, "none", 1.0, 1.0, 1.0, 1.0)
  masked, summary = page(*args)
  assert "px in" in summary
  unpainted = page("adain", files["content"], {"layers": [np.zeros_like(strokes)]}, *args[3:])[0]
  assert not np.array_equal(pixels(masked), pixels(unpainted))  # no strokes: mixed, not masked
  assert page("adain", None, None, [files["a"]], *args[4:]) == (
      None, "Add a content image and at least one style to begin.")
  with pytest.raises(gr.Error, match="needs exactly two styles"):
    page("adain", files["content"], editor, [files["a"]], *args[4:])


def test_mask_editor_shows_only_readable_content(studio, files, tmp_path):
  shown = endpoint(ui.build(studio), "content_changed")
  assert shown(files["content"])["value"]["background"] == files["content"]
  broken = tmp_path / "broken.png"
  broken.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
  assert shown(str(broken))["value"] is None and shown(None)["value"] is None


@pytest.fixture
def offline(tmp_path, monkeypatch):
  """No weights but the ones given: downloads fail, an empty cache, no checkpoints/ here."""
  from adain.hub import download

  def fetch(urls, *args, **kwargs):
    raise download.DownloadError(None, f"download failed from every source: {urls[0]}: offline")

  monkeypatch.setattr(download, "fetch", fetch)
  monkeypatch.setenv("ADAIN_HOME", str(tmp_path / "home"))
  monkeypatch.chdir(tmp_path)


def test_missing_weights_give_the_cli_message(offline, capsys):
  assert app_main.main([]) == 1
  app_err = capsys.readouterr().err
  assert stylize.main([]) == 1
  assert app_err.startswith("error: no vgg weights found") and app_err in capsys.readouterr().err


def test_clip_is_stylized_with_its_sound(studio, files, tmp_path):
  src = write_clip(tmp_path / "walk.mp4", frame_images(6, 40, 54), audio="aac")
  seen = []
  result = studio.stylize_clip(str(src), [files["a"], files["b"]], [1.0, 2.0], alpha=0.8,
                               content_size=0, style_size=0, progress=lambda *p: seen.append(p))
  frames, _, audio = read_clip(result.path)
  assert len(frames) == 6 and audio == ["aac"] and seen[-1] == (6, 6)
  assert result.path.name == "walk_interpolation.mp4" and result.summary.startswith("6 frames")
  page = endpoint(ui.build(studio), "stylize_video")
  path, summary = page("microast", str(src), [files["a"]], 1.0, 0, 0, "coral", 1.0, 1.0, 1.0, 1.0)
  assert path.endswith("walk_stylized_a.mp4") and len(read_clip(path)[0]) == 6
  with pytest.raises(gr.Error, match="one style at a time"):
    page("adain", str(src), [files["a"], files["b"]], 1.0, 0, 0, "coral", 1.0, 1.0, 1.0, 1.0)


def test_clip_without_the_video_extra_is_one_line(studio, files, monkeypatch):
  import adain.pipelines

  monkeypatch.delattr(adain.pipelines, "video", raising=False)
  monkeypatch.setitem(sys.modules, "adain.pipelines.video", None)
  with pytest.raises(AdainError, match=r"pip install 'adain\[video\]'"):
    studio.stylize_clip("clip.mp4", [files["a"]])


def test_missing_gradio_is_one_line(monkeypatch, capsys):
  monkeypatch.setitem(sys.modules, "gradio", None)
  monkeypatch.delitem(sys.modules, "adain.app.ui")
  monkeypatch.delattr(sys.modules["adain.app"], "ui")
  assert app_main.main([]) == 1
  assert capsys.readouterr().err == "error: the app needs Gradio: pip install 'adain[app]'\n"


def test_taken_port_is_one_line(weights, capsys):
  with socket.socket() as taken:
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    assert app_main.main(["--port", str(port), "--vgg", str(weights[0]), "--decoder", str(weights[1])]) == 1
  err = capsys.readouterr().err
  assert err.startswith(f"error: cannot serve on 127.0.0.1:{port}: ") and err.count("\n") == 1


@pytest.mark.slow  # compiles the concat variant
def test_concat_decoder_takes_one_style_at_alpha_1(files, tmp_path):
  from seeded_variants import variant_model

  concat = Stylizer(variant_model("concat"))
  studio = Studio(lambda model: concat, tmp_path / "results")
  got = studio.stylize(files["content"], [files["a"]], **SIZES)
  want = concat.stylize(images.load_image(files["content"]), images.load_image(files["a"]))
  np.testing.assert_array_equal(pixels(got.path), images.to_uint8(want))
  with pytest.raises(AdainError, match="takes one style at a time"):
    studio.stylize(files["content"], [files["a"], files["b"]], **SIZES)
  with pytest.raises(AdainError, match="alpha 1 only"):
    studio.stylize(files["content"], [files["a"]], alpha=0.5, **SIZES)


def live_frames(n=3, h=36, w=48):
  """Webcam frames as Gradio gives them to the live handler (type="pil")."""
  return [Image.fromarray(f) for f in frame_images(n, h, w)]


def test_live_frame_is_generate_on_that_frame_with_the_stills_codes(studio, stylizers, model, files,
                                                                    monkeypatch):
  stylizer = stylizers[model]
  studio.model = model  # the page's initial model: frames and stills without a model of their own
  studio.stylize(files["content"], [files["a"]], **SIZES)  # a still: the style's code is kept
  calls = []
  encode = stylizer.encode_style
  monkeypatch.setattr(stylizer, "encode_style", lambda *a, **k: calls.append(1) or encode(*a, **k))
  stream = LiveStream(target_ms=1e9)
  frames = live_frames()
  outs = [studio.live_frame(stream, f, [files["a"]], alpha=0.7, style_size=0) for f in frames]
  assert calls == []  # every frame reuses the upload's style code
  style = stylizer.encode_style(images.load_image(files["a"]))
  for frame, out in zip(frames, outs):
    want = images.to_uint8(stylizer.generate(images.from_pil(frame), style, 0.7))
    assert out.dtype == np.uint8 and out.shape == want.shape == (36, 48, 3)  # auto's 128, capped
    assert np.abs(out.astype(int) - want).max() <= 2
  assert not np.array_equal(outs[0], outs[1])
  assert stream.frames == 3 and stream.dropped == 0 and stream.ms > 0 and stream.fps > 0
  half = studio.live_frame(stream, frames[0], [files["a"]], size=128, style_size=0)
  assert half.shape == (36, 48, 3)  # never more than the frame's own size
  small = studio.live_frame(stream, frames[0], [files["a"], files["b"]], [1.0, 2.0], size=24, style_size=0)
  mixed = stylizer.concat_codes([stylizer.encode_style(images.load_image(files[k])) for k in "ab"]).mix([1.0, 2.0])
  want = images.to_uint8(stylizer.generate(images.from_pil(frames[0], 24), mixed))
  assert small.shape == (24, 32, 3) and np.abs(small.astype(int) - want).max() <= 2  # scaled, mixed


def test_live_frames_are_dropped_while_the_model_is_busy(studio, files):
  stream = LiveStream(target_ms=1e9)
  frame = live_frames(1)[0]
  with studio.turns.still():  # a still is running: the frame is dropped at once, not queued
    assert studio.live_frame(stream, frame, [files["a"]], style_size=0) is None
  with stream.busy:  # this stream's previous frame is running (two streams of one page session)
    assert studio.live_frame(stream, frame, [files["a"]], style_size=0) is None
  assert stream.dropped == 2 and stream.frames == 0
  assert studio.live_frame(stream, frame, [files["a"]], style_size=0) is not None
  assert stream.frames == 1


def test_turns_a_still_waits_one_frame_and_frames_never_queue_behind_stills():
  turns = studio_module.Turns()
  events = []
  running, go_on = threading.Event(), threading.Event()

  def frame(name="frame", hold=True):
    with turns.frame() as got:
      events.append((name, got))
      if hold:  # the frame runs until the test says
        running.set()
        go_on.wait(10)
    events.append((f"{name} done", got))

  def still():
    with turns.still():
      events.append(("still", True))

  def run(*threads):
    for t in threads:
      t.start()
    return threads

  first = run(threading.Thread(target=frame))
  running.wait(10)
  waiting = run(threading.Thread(target=still))
  while not turns.stills_waiting:
    time.sleep(0.001)
  frame("other viewer's frame", hold=False)  # a still waits: dropped at once
  go_on.set()
  for t in first + waiting:
    t.join(10)
  assert events == [("frame", True), ("other viewer's frame", False), ("other viewer's frame done", False),
                    ("frame done", True), ("still", True)]

  events.clear(), running.clear(), go_on.clear()
  first = run(threading.Thread(target=frame))
  running.wait(10)
  second = run(threading.Thread(target=frame, args=("other viewer's frame", False)))
  time.sleep(0.05)
  assert events == [("frame", True)]  # it waits for the running frame (no still is waiting)
  go_on.set()
  for t in first + second:
    t.join(10)
  assert events == [("frame", True), ("frame done", True), ("other viewer's frame", True),
                    ("other viewer's frame done", True)]


def test_live_fps_and_auto_size(monkeypatch):
  clock = iter([10.0, 10.25, 10.5, 10.75, 11.0, 20.0, 20.5])
  monkeypatch.setattr(studio_module.time, "perf_counter", lambda: next(clock))
  stream = LiveStream(target_ms=100)
  assert stream.fps == 0.0
  for ms in (900.0, 20.0, 20.0, 20.0):  # the first frame at a size (compiling) is left out
    stream.record(ms, auto=True)
  assert stream.ms == 20.0 and stream.fps == 4.0 and stream.frames == 4
  assert stream.size == 192  # 20 ms at 128 px predicts 45 ms at 192: up
  stream.record(5.0, auto=False)  # a chosen size: auto does not move
  assert stream.size == 192 and stream.fps == 4.0
  stream.record(5.0, auto=False)  # 9 s later (the stream started again): counted afresh
  assert stream.fps == 0.0
  stream.record(5.0, auto=False)
  assert stream.fps == 2.0
  next_size = studio_module.next_size
  assert next_size(192, 120.0, 100, 1 << 30) == (128, 192)  # over the target: down, and 192 is too slow
  assert next_size(128, 20.0, 100, 192) == (128, 192)  # does not climb back to a size that was too slow
  assert next_size(256, 60.0, 100, 1 << 30) == (256, 1 << 30)  # 384 px would take 135 ms: stays
  assert next_size(128, 500.0, 100, 1 << 30) == (128, 128)  # the smallest size stays
  assert next_size(512, 10.0, 100, 1 << 30) == (512, 1 << 30)  # the largest too


def test_live_handler_keeps_one_stream_per_session(studio, files, tmp_path):
  live = endpoint(ui.build(studio), "live_frame")
  frame = live_frames(1)[0]
  weights = (1.0, 1.0, 1.0, 1.0)
  path, line, mine = live("adain", frame, None, [files["a"]], 1.0, 0, "none", "auto", *weights)
  out = pixels(path)
  assert isinstance(mine, LiveStream) and out.shape == (36, 48, 3) and path.endswith(".jpg")
  assert line.startswith("**0.0** frames/s") and "48×36 px (auto)" in line
  out, line, again = live("adain", frame, mine, [files["a"]], 1.0, 0, "none", "auto", *weights)
  assert again is mine and mine.frames == 2 and float(line.split("**")[1]) > 0
  _, _, theirs = live("adain", frame, None, [files["a"]], 1.0, 0, "none", "128", *weights)
  assert theirs is not mine and theirs.frames == 1 and mine.frames == 2
  with studio.turns.still():
    skipped, line, _ = live("adain", frame, mine, [files["a"]], 1.0, 0, "none", "auto", *weights)
  assert skipped == gr.skip() and line.endswith("48×36 px (auto) · paused while a still runs")
  assert mine.dropped == 1
  assert live("adain", frame, mine, [], 1.0, 0, "none", "auto", *weights)[:2] == (
      gr.skip(), "Add at least one style, then start the webcam.")
  text = tmp_path / "notes.png"
  text.write_text("not an image")
  skipped, line, _ = live("adain", frame, mine, [str(text)], 1.0, 0, "none", "auto", *weights)
  assert skipped == gr.skip() and line.startswith("notes.png: not an image file")  # the stream goes on
  coral = pixels(live("adain", frame, mine, [files["a"]], 1.0, 0, "coral", "auto", *weights)[0])
  assert coral.shape == (36, 48, 3) and not np.array_equal(coral, out)
  # Frames are files the page fetches; a stream keeps its last few.
  for _ in range(studio_module.KEEP_LIVE + 2):
    live("adain", frame, mine, [files["a"]], 1.0, 0, "none", "auto", *weights)
  assert len(list(studio.live_dir.glob(f"{id(mine):x}-*.jpg"))) == studio_module.KEEP_LIVE


def test_switching_the_model_switches_stills_frames_and_codes(studio, stylizers, files, tmp_path):
  """The page's model choice reaches stills and a running stream; each network keeps codes of its
  own, and a style code file of one is refused by the other."""
  app = ui.build(studio)
  page, live = endpoint(app, "stylize_page"), endpoint(app, "live_frame")
  rest = (files["content"], None, [files["a"]], 1.0, 0, 0, "none", 1.0, 1.0, 1.0, 1.0)
  shown = {model: pixels(page(model, *rest)[0]) for model in ("adain", "microast")}
  assert not np.array_equal(shown["adain"], shown["microast"])
  np.testing.assert_array_equal(pixels(page("adain", *rest)[0]), shown["adain"])  # codes kept per model
  frame, weights = live_frames(1)[0], (1.0, 1.0, 1.0, 1.0)
  stream = None
  for model in ("adain", "microast"):  # mid-stream
    path, _, stream = live(model, frame, stream, [files["a"]], 1.0, 0, "none", "auto", *weights)
    style = stylizers[model].encode_style(images.load_image(files["a"]))
    want = jpeg(images.to_uint8(stylizers[model].generate(images.from_pil(frame), style)))
    assert np.abs(pixels(path).astype(int) - want).max() <= 4  # the JPEG of generate on the frame
  assert stream.frames == 2 and stream.model == "microast"
  code = tmp_path / "adain_code.npz"
  studio.style_code(studio.network("adain"), files["a"], 0, None, None).save(code)
  assert np.array_equal(pixels(page("adain", files["content"], None, [str(code)], *rest[3:])[0]),
                        shown["adain"])
  with pytest.raises(gr.Error, match="adain_code.npz: is a style code of the adain model, not of microast"):
    page("microast", files["content"], None, [str(code)], *rest[3:])


def jpeg(img_u8: np.ndarray) -> np.ndarray:
  """``img_u8`` as the Live tab's JPEG shows it."""
  data = io.BytesIO()
  Image.fromarray(img_u8).save(data, "jpeg", quality=studio_module.LIVE_QUALITY)
  return np.asarray(Image.open(data))


def test_missing_model_is_one_message_and_the_other_works(offline, weights, files, tmp_path, capsys):
  """The app's own loading: microast's weights are nowhere, adain's are given."""
  args = app_main.build_parser().parse_args(["--vgg", str(weights[0]), "--decoder", str(weights[1])])
  studio = Studio(app_main.loader(args), tmp_path / "results", args.model)
  app = ui.build(studio)
  changed, page, live = (endpoint(app, name) for name in ("model_changed", "stylize_page", "live_frame"))
  assert stylize.main(["--model", "microast", "--content", files["content"], "--style", files["a"]]) == 1
  message = capsys.readouterr().err.removeprefix("error: ").strip()
  assert message.startswith("MicroAST's weights were not found") and "\n" not in message
  with pytest.raises(gr.Error) as e:
    changed("microast")
  assert e.value.message == message
  rest = (files["content"], None, [files["a"]], 1.0, 0, 0, "none", 1.0, 1.0, 1.0, 1.0)
  with pytest.raises(gr.Error) as e:
    page("microast", *rest)
  assert e.value.message == message
  line = live("microast", live_frames(1)[0], None, [files["a"]], 1.0, 0, "none", "auto", 1.0, 1.0, 1.0, 1.0)[1]
  assert line == message
  changed("adain")
  assert page("adain", *rest)[0].endswith("photo_stylized_a.png")
