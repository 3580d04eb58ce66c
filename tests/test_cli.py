"""The stylize and encode_style command lines: outputs, names, pytorch-AdaIN flags, bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adain.commands import encode_style, stylize
from conftest import write_image

H, W = 40, 48  # one image size for most tests: one compilation


@pytest.fixture
def images(tmp_path):
  c, s = tmp_path / "content", tmp_path / "style"
  c.mkdir(), s.mkdir()
  write_image(c / "a.png", H, W, 1)
  write_image(c / "b.png", H, W, 2)
  write_image(s / "x.png", H, W, 3)
  write_image(s / "y.png", H, W, 4)
  return c, s


def run(argv, weights):
  vgg, dec = weights
  return stylize.main([*argv, "--vgg", str(vgg), "--decoder", str(dec)])


def pixels(path):
  return np.asarray(Image.open(path))


def test_every_pair_is_written_with_reference_names(images, weights, tmp_path, capsys):
  c, s = images
  out = tmp_path / "out"
  rc = run(["--content-dir", str(c), "--style-dir", str(s), "--output", str(out), "--ext", "png",
            "--content-size", "0", "--style-size", "0"], weights)
  assert rc == 0
  names = sorted(p.name for p in out.iterdir())
  assert names == ["a_stylized_x.png", "a_stylized_y.png", "b_stylized_x.png", "b_stylized_y.png"]
  stdout, stderr = capsys.readouterr()
  assert sorted(Path(line).name for line in stdout.split()) == names
  assert "wrote 4 image(s)" in stderr
  img = pixels(out / "a_stylized_x.png")
  assert img.shape == (H, W, 3) and img.std() > 0
  assert not np.array_equal(img, pixels(out / "a_stylized_y.png"))


def test_pytorch_adain_spellings_and_alpha(images, weights, tmp_path):
  c, s = images
  out = tmp_path / "out"
  common = ["--content_size", "0", "--style_size", "0", "--save_ext", ".png", "--output", str(out)]
  assert run(["--content_dir", str(c), "--style_dir", str(s), *common], weights) == 0
  full = pixels(out / "a_stylized_x.png")
  assert run(["--content", str(c / "a.png"), "--style", str(s / "x.png"), "--alpha", "0", *common],
             weights) == 0
  none = pixels(out / "a_stylized_x.png")
  assert not np.array_equal(full, none)


def test_output_keeps_any_input_size(tmp_path, weights):
  content = write_image(tmp_path / "odd.png", 37, 53, 5)
  style = write_image(tmp_path / "s.png", H, W, 6)
  assert run(["--content", str(content), "--style", str(style), "--output", str(tmp_path),
              "--ext", "png", "--content-size", "0", "--style-size", "0"], weights) == 0
  assert pixels(tmp_path / "odd_stylized_s.png").shape == (37, 53, 3)


def test_interpolation_is_one_image_named_like_the_reference(images, weights, tmp_path):
  c, s = images
  out = tmp_path / "out"
  argv = ["--content", str(c / "a.png"), "--style", f"{s / 'x.png'},{s / 'y.png'}",
          "--content-size", "0", "--style-size", "0", "--ext", "png", "--output", str(out)]
  assert run([*argv, "--style_interpolation_weights", "1,3"], weights) == 0
  assert [p.name for p in out.iterdir()] == ["a_interpolation.png"]
  mixed = pixels(out / "a_interpolation.png")
  assert run([*argv, "--style-weights", "0,1"], weights) == 0
  only_y = pixels(out / "a_interpolation.png")
  assert run(["--content", str(c / "a.png"), "--style", str(s / "y.png"), "--content-size", "0",
              "--style-size", "0", "--ext", "png", "--output", str(out)], weights) == 0
  np.testing.assert_allclose(only_y, pixels(out / "a_stylized_y.png"), atol=1)
  assert np.abs(mixed.astype(int) - only_y).max() > 2


def test_style_code_gives_the_same_pixels_as_its_image(images, weights, tmp_path):
  c, s = images
  vgg, _ = weights
  code = tmp_path / "x.npz"
  assert encode_style.main([str(s / "x.png"), "--output", str(code), "--vgg", str(vgg),
                            "--style-size", "0"]) == 0
  common = ["--content", str(c / "a.png"), "--content-size", "0", "--style-size", "0", "--ext", "png"]
  assert run([*common, "--style", str(s / "x.png"), "--output", str(tmp_path / "img")], weights) == 0
  assert run([*common, "--style", str(code), "--output", str(tmp_path / "code")], weights) == 0
  np.testing.assert_array_equal(pixels(tmp_path / "img/a_stylized_x.png"),
                                pixels(tmp_path / "code/a_stylized_x.png"))


def test_encode_style_folder_output(images, weights, tmp_path):
  _, s = images
  out = tmp_path / "codes"
  assert encode_style.main([str(s / "x.png"), str(s / "y.png"), "--output", str(out),
                            "--vgg", str(weights[0]), "--style-size", "0"]) == 0
  assert sorted(p.name for p in out.iterdir()) == ["x.npz", "y.npz"]


@pytest.mark.slow  # compiles the masked network
def test_mask_and_preserve_color(images, weights, tmp_path):
  c, s = images
  mask = tmp_path / "mask.png"
  m = np.zeros((H, W), np.uint8)
  m[:, : W // 2] = 255
  Image.fromarray(m).save(mask)
  common = ["--content", str(c / "a.png"), "--content-size", "0", "--style-size", "0", "--ext", "png"]
  assert run([*common, "--style", f"{s / 'x.png'},{s / 'y.png'}", "--mask", str(mask),
              "--output", str(tmp_path / "m")], weights) == 0
  masked = pixels(tmp_path / "m/a_stylized_x_y.png")
  for mode in ("coral", "luminance"):
    assert run([*common, "--style", str(s / "x.png"), "--preserve-color", mode,
                "--output", str(tmp_path / mode)], weights) == 0
    assert pixels(tmp_path / mode / "a_stylized_x.png").shape == (H, W, 3)
  assert masked.shape == (H, W, 3)


def test_decoder_from_a_training_workdir(images, weights, tmp_path):
  c, s = images
  vgg, dec = weights
  workdir = tmp_path / "run"
  workdir.mkdir()
  (workdir / "decoder.npz").write_bytes(Path(dec).read_bytes())
  assert stylize.main(["--content", str(c / "a.png"), "--style", str(s / "x.png"), "--vgg", str(vgg),
                       "--decoder", str(workdir), "--output", str(tmp_path / "o"),
                       "--content-size", "0", "--style-size", "0"]) == 0
  assert (tmp_path / "o/a_stylized_x.jpg").is_file()


def test_a_batch_goes_on_past_bad_files(images, weights, tmp_path, capsys):
  c, s = images
  (c / "empty.jpg").write_bytes(b"")
  (c / "notes.png").write_text("not an image")
  out = tmp_path / "out"
  rc = run(["--content-dir", str(c), "--style", str(s / "x.png"), "--output", str(out),
            "--content-size", "0", "--style-size", "0"], weights)
  assert rc == 1
  assert sorted(p.name for p in out.iterdir()) == ["a_stylized_x.jpg", "b_stylized_x.jpg"]
  err = capsys.readouterr().err
  assert "empty.jpg" in err and "notes.png" in err and "2 failed" in err


@pytest.mark.parametrize("argv, message", [
    (["--alpha", "1.5"], "--alpha"),
    (["--alpha", "nan"], "--alpha"),
    (["--style-weights", "1,2,3"], "3 weights for 2 styles"),
    (["--style-weights", "1,x"], "--style-weights"),
    (["--content-size", "-3"], "--content-size"),
])
def test_bad_arguments_are_one_line_and_exit_2(images, weights, tmp_path, capsys, argv, message):
  c, s = images
  with pytest.raises(SystemExit) as e:
    run(["--content", str(c / "a.png"), "--style", f"{s / 'x.png'},{s / 'y.png'}",
         "--output", str(tmp_path / "o"), *argv], weights)
  assert e.value.code == 2
  err = capsys.readouterr().err
  assert message in err and err.count("\n") == 1


def test_output_path_that_is_a_file(images, weights, tmp_path, capsys):
  c, s = images
  f = tmp_path / "taken"
  f.write_text("x")
  with pytest.raises(SystemExit) as e:
    run(["--content", str(c / "a.png"), "--style", str(s / "x.png"), "--output", str(f)], weights)
  assert e.value.code == 2 and "taken" in capsys.readouterr().err


def test_wrong_weights_are_one_line_without_traceback(images, weights, tmp_path):
  """A subprocess, as a user runs it: the decoder file given as the encoder."""
  c, s = images
  vgg, dec = weights
  proc = subprocess.run(
      [sys.executable, "-m", "adain.stylize", "--content", str(c / "a.png"), "--style",
       str(s / "x.png"), "--vgg", str(dec), "--decoder", str(dec), "--output", str(tmp_path / "o")],
      capture_output=True, text=True, timeout=300, env={**os.environ, "JAX_PLATFORMS": "cpu"})
  assert proc.returncode == 1
  assert "Traceback" not in proc.stderr
  assert proc.stderr.strip().count("\n") == 0
  assert str(dec) in proc.stderr and "'decoder' weights, expected 'vgg'" in proc.stderr
  assert not (tmp_path / "o").exists()


def test_missing_content_file(images, weights, tmp_path, capsys):
  _, s = images
  rc = run(["--content", str(tmp_path / "nope.jpg"), "--style", str(s / "x.png"),
            "--output", str(tmp_path / "o")], weights)
  assert rc == 1
  assert "nope.jpg" in capsys.readouterr().err


@pytest.mark.slow  # the demo pair: its own sizes compiled
def test_demo_pair_without_content_or_style(weights, tmp_path):
  out = tmp_path / "demo"
  assert run(["--alpha", "0.8", "--output", str(out), "--content-size", "64", "--style-size", "64"],
             weights) == 0
  assert [p.name for p in out.iterdir()] == ["content_stylized_style.jpg"]


def test_huge_page_restart_only_for_several_images(images, tmp_path):
  c, s = images
  one = ["--content", str(c / "a.png"), "--style", str(s / "x.png")]
  assert not stylize.several_images(one)
  assert not stylize.several_images(["--content", str(c / "a.png"), "--style", f"{s / 'x.png'},{s / 'y.png'}",
                                     "--style-weights", "1,1"])
  assert not stylize.several_images([])  # the demo pair
  assert stylize.several_images(["--content-dir", str(c), "--style", str(s / "x.png")])
  assert stylize.several_images(["--content", str(c / "a.png"), "--style-dir", str(s)])
  clip = tmp_path / "clip.avi"
  clip.write_bytes(b"RIFF\0\0\0\0AVI LIST" + bytes(200))
  assert stylize.several_images(["--content", str(clip), "--style", str(s / "x.png")])


@pytest.mark.parametrize("name", ["evil_reduce_system_zip.pth", "evil_newobj_legacy.pth",
                                  "evil_function.t7"])
def test_crafted_weights_are_refused(images, weights, tmp_path, capsys, monkeypatch, name):
  c, s = images
  monkeypatch.chdir(tmp_path)  # where the payloads would create their marker file
  evil = Path(__file__).parent / "fixtures" / "weights" / name
  rc = stylize.main(["--content", str(c / "a.png"), "--style", str(s / "x.png"), "--vgg", str(evil),
                     "--decoder", str(weights[1]), "--output", str(tmp_path / "o")])
  err = capsys.readouterr().err
  assert rc == 1 and err.startswith(f"error: {evil}: ") and err.count("\n") == 1
  assert not (tmp_path / "adain_pwned").exists()
