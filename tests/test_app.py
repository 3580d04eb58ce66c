"""The web app's handlers in process: the same pixels as the CLI, codes reused, errors as messages."""

from __future__ import annotations

import socket
import sys

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from adain import stylize
from adain.app import __main__ as app_main
from adain.app import studio as studio_module
from adain.app import ui
from adain.app.studio import Studio
from adain.errors import AdainError
from adain.media import images
from adain.models import StyleCode
from adain.stylizer import Stylizer
from clips import frame_images, read_clip, write_clip
from conftest import write_image

SIZES = dict(content_size=0, style_size=0)  # tiny images at their own size: fast
CLI_SIZES = ("--content-size", "0", "--style-size", "0")


@pytest.fixture(scope="module")
def stylizer(weights):
  return Stylizer.from_files(*weights)


@pytest.fixture
def studio(stylizer, tmp_path):
  return Studio(stylizer, tmp_path / "results")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
  d = tmp_path_factory.mktemp("inputs")
  return {"content": str(write_image(d / "photo.png", 40, 56, 1)),
          "a": str(write_image(d / "a.png", 48, 40, 2)),
          "b": str(write_image(d / "b.png", 36, 52, 3))}


def cli(weights, out, content, styles, *extra) -> np.ndarray:
  """The one PNG that python -m adain.stylize writes for these inputs into ``out``, as uint8."""
  rc = stylize.main(["--content", content, "--style", ",".join(styles), "--ext", "png",
                     "--output", str(out), "--vgg", str(weights[0]), "--decoder", str(weights[1]), *extra])
  assert rc == 0
  (png,) = out.glob("*.png")
  return np.asarray(Image.open(png))


def pixels(path) -> np.ndarray:
  return np.asarray(Image.open(path))


def test_one_style_is_the_cli_png(studio, weights, files, tmp_path):
  got = studio.stylize(files["content"], [files["a"]], alpha=0.6, **SIZES)
  assert got.path.name == "photo_stylized_a.png"  # named as the CLI names it
  want = cli(weights, tmp_path / "cli", files["content"], [files["a"]], "--alpha", "0.6", *CLI_SIZES)
  np.testing.assert_array_equal(pixels(got.path), want)


@pytest.mark.parametrize("method", ["coral", "luminance"])
def test_preserve_color_is_the_cli_png(studio, weights, files, tmp_path, method):
  got = studio.stylize(files["content"], [files["a"]], alpha=0.8, preserve_color=method, **SIZES)
  want = cli(weights, tmp_path / "cli", files["content"], [files["a"]], "--alpha", "0.8",
             "--preserve-color", method, *CLI_SIZES)
  np.testing.assert_array_equal(pixels(got.path), want)


def test_weights_mix_as_the_cli_interpolation(studio, weights, files, tmp_path):
  got = studio.stylize(files["content"], [files["a"], files["b"]], [1.0, 3.0], **SIZES)
  assert got.path.name == "photo_interpolation.png"
  want = cli(weights, tmp_path / "cli", files["content"], [files["a"], files["b"]], "--style-weights", "1,3",
             *CLI_SIZES)
  np.testing.assert_array_equal(pixels(got.path), want)


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
    Studio(studio.stylizer, tmp_path / "fresh").stylize(c, [a], **SIZES)
  monkeypatch.undo()
  assert studio.stylize(c, [a], **SIZES).path.exists()  # and the next call works


def endpoint(app, name: str):
  return next(f.fn for f in app.fns.values() if f.api_name == name)


def test_api_handler_gives_messages_not_tracebacks(studio, files, tmp_path, monkeypatch):
  api = endpoint(ui.build(studio), "stylize")
  text = tmp_path / "notes.txt"
  text.write_text("hello")
  with pytest.raises(gr.Error, match="notes.txt: not an image file") as e:
    api(str(text), files["a"], 0.5)
  assert e.value.print_exception is False
  with pytest.raises(gr.Error, match="alpha must be in"):
    api(files["content"], files["a"], 1.5)
  # A good call is the CLI's defaults (its pixels: test_app_browser.py, through the server).
  calls = []
  monkeypatch.setattr(studio, "stylize", lambda *a, **k: calls.append((a, k)) or studio_module.Result(
      tmp_path / "out.png", ""))
  assert api(files["content"], files["a"], 0.5) == str(tmp_path / "out.png")
  assert calls == [((files["content"], [files["a"]]), {"alpha": 0.5})]
  defaults = stylize.build_parser().parse_args([])
  assert studio_module.CLI_SIZE == defaults.content_size == defaults.style_size


def test_page_handler_reads_the_painted_strokes(studio, files):
  page = endpoint(ui.build(studio), "stylize_page")
  strokes = np.zeros((20, 28, 4), np.uint8)
  strokes[:, :14, 3] = 255
  editor = {"background": None, "layers": [strokes], "composite": None}
  args = (files["content"], editor, [files["a"], files["b"]], 1.0, 0, 0, "none", 1.0, 1.0, 1.0, 1.0)
  masked, summary = page(*args)
  assert "px in" in summary
  unpainted = page(files["content"], {"layers": [np.zeros_like(strokes)]}, *args[2:])[0]
  assert not np.array_equal(pixels(masked), pixels(unpainted))  # no strokes: mixed, not masked
  assert page(None, None, [files["a"]], *args[3:]) == (
      None, "Add a content image and at least one style to begin.")
  with pytest.raises(gr.Error, match="needs exactly two styles"):
    page(files["content"], editor, [files["a"]], *args[3:])


def test_mask_editor_shows_only_readable_content(studio, files, tmp_path):
  shown = endpoint(ui.build(studio), "content_changed")
  assert shown(files["content"])["value"]["background"] == files["content"]
  broken = tmp_path / "broken.png"
  broken.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
  assert shown(str(broken))["value"] is None and shown(None)["value"] is None


def test_missing_weights_give_the_cli_message(tmp_path, monkeypatch, capsys):
  from adain.weights import download

  def offline(urls, *args, **kwargs):
    raise download.DownloadError(None, f"download failed from every source: {urls[0]}: offline")

  monkeypatch.setattr(download, "fetch", offline)
  monkeypatch.setenv("ADAIN_HOME", str(tmp_path / "home"))
  monkeypatch.chdir(tmp_path)
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
  path, summary = page(str(src), [files["a"]], 1.0, 0, 0, "coral", 1.0, 1.0, 1.0, 1.0)
  assert path.endswith("walk_stylized_a.mp4") and len(read_clip(path)[0]) == 6
  with pytest.raises(gr.Error, match="one style at a time"):
    page(str(src), [files["a"], files["b"]], 1.0, 0, 0, "coral", 1.0, 1.0, 1.0, 1.0)


def test_clip_without_the_video_extra_is_one_line(studio, files, monkeypatch):
  import adain

  monkeypatch.delattr(adain, "video", raising=False)
  monkeypatch.setitem(sys.modules, "adain.video", None)
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


def test_concat_decoder_takes_one_style_at_alpha_1(files, tmp_path):
  from test_variants import variant_model

  concat = Stylizer(variant_model("concat"))
  studio = Studio(concat, tmp_path / "results")
  got = studio.stylize(files["content"], [files["a"]], **SIZES)
  want = concat.stylize(images.load_image(files["content"]), images.load_image(files["a"]))
  np.testing.assert_array_equal(pixels(got.path), images.to_uint8(want))
  with pytest.raises(AdainError, match="takes one style at a time"):
    studio.stylize(files["content"], [files["a"], files["b"]], **SIZES)
  with pytest.raises(AdainError, match="alpha 1 only"):
    studio.stylize(files["content"], [files["a"]], alpha=0.5, **SIZES)
