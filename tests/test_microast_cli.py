"""The commands with --model microast: the CLI's pixels against MicroAST's PyTorch outputs
(tests/fixtures/microast), style codes, masks, colour, tiles, video and datasets, and the
refusals (a code or flag of the other model, one line naming it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from clips import frame_images, read_clip, write_clip
from conftest import cli, weight_flags
from dataset_tree import STYLES, flags, make_tree
from PIL import Image

from adain.commands import encode_style, stylize, stylize_dataset
from adain.inference.stylizer import Stylizer
from adain.media import images

SIZES = ["--content-size", "0", "--style-size", "0"]


@pytest.fixture(scope="module")
def microast(microast_weights):
  return Stylizer.from_files(model="microast", weights=microast_weights, download=False)


def levels_off(got_u8, want_float) -> float:
  return float(np.abs(got_u8.astype(np.float64) - np.clip(want_float, 0, 1) * 255).max())


@pytest.mark.parametrize("content", ["content_even", "content_odd"])  # 48x64, 45x37
@pytest.mark.parametrize("case", ["alpha1", "alpha", "mixed"])
def test_cli_pixels_match_pytorch(microast_weights, microast_expected, microast_pngs, tmp_path, content, case):
  """Within 1 level of 255 of MicroAST's PyTorch code, at alpha 1, alpha 0.6 (the content's own
  code blended in) and two styles mixed."""
  styles, extra = [microast_pngs["style_a"]], list(SIZES)
  if case == "alpha":
    extra += ["--alpha", str(float(microast_expected["alpha"]))]
  if case == "mixed":
    styles.append(microast_pngs["style_b"])
    extra += ["--style-weights", ",".join(map(str, microast_expected["mix_weights"]))]
  got = cli(microast_weights, tmp_path, microast_pngs[content], styles, *extra)
  key = f"out/{content}/alpha{float(microast_expected['alpha']):g}" if case == "alpha" else f"out/{content}/{case}"
  assert levels_off(got, microast_expected[key][0]) <= 1.0


def test_style_code_file_gives_the_same_pixels(microast_weights, microast_expected, microast_pngs, tmp_path, capsys):
  code = tmp_path / "a.npz"
  assert encode_style.main([microast_pngs["style_a"], "--output", str(code), "--style-size", "0",
                            *weight_flags(microast_weights)]) == 0
  with np.load(code) as z:
    for f in ("mean1", "std1", "w1", "b1", "mean2", "std2", "w2", "b2"):
      np.testing.assert_allclose(z[f], microast_expected[f"code/style_a/{f}"], rtol=1e-4, atol=1e-5)
  from_code = cli(microast_weights, tmp_path / "code", microast_pngs["content_odd"], [str(code)], *SIZES, "--alpha", "0.6")
  from_image = cli(microast_weights, tmp_path / "image", microast_pngs["content_odd"], [microast_pngs["style_a"]], *SIZES,
                   "--alpha", "0.6")
  np.testing.assert_array_equal(from_code, from_image)


def test_a_code_of_the_other_model_is_one_line(microast_weights, weights, microast_pngs, tmp_path, capsys):
  codes = {}
  for name, w in (("microast", weight_flags(microast_weights)), ("adain", ["--vgg", str(weights[0])])):
    codes[name] = tmp_path / f"{name}.npz"
    assert encode_style.main([microast_pngs["style_a"], "--output", str(codes[name]), *w]) == 0
  capsys.readouterr()
  for name, w, other in (("adain", weights, "microast"), ("microast", microast_weights, "adain")):
    rc = stylize.main(["--content", microast_pngs["content_even"], "--style", str(codes[other]),
                       "--output", str(tmp_path / "out"), *weight_flags(w)])
    err = capsys.readouterr().err
    assert rc == 1 and f"error: {codes[other]}: is a style code of the {other} model, not of {name}" in err
    assert "Traceback" not in err and len([l for l in err.splitlines() if l.startswith("error")]) == 2
  assert not list((tmp_path / "out").glob("*.jpg"))


@pytest.mark.parametrize("argv, message", [
    (["--model", "microast", "--vgg", "v.pth"], "is for the adain model"),
    (["--weights", "somewhere"], "the adain model takes --vgg and --decoder"),
    (["--model", "microast", "--weights", "nowhere"], "not a folder"),
])
def test_weight_flags_of_the_other_model_are_one_line(microast_pngs, tmp_path, capsys, argv, message):
  rc = stylize.main(["--content", microast_pngs["content_even"], "--style", microast_pngs["style_a"], "--output",
                     str(tmp_path), *argv])
  err = capsys.readouterr().err
  assert rc == 1 and message in err and err.count("\n") == 1, err


def test_mask_regions_and_colour_preservation(microast, microast_weights, microast_pngs, tmp_path):
  """--mask takes each style in its region, at both levels; --preserve-color keeps the content's
  colours: the CLI's PNGs are the Stylizer's."""
  mask = np.zeros((48, 64), np.uint8)
  mask[:, :32] = 255
  Image.fromarray(mask).save(tmp_path / "mask.png")
  content, a, b = (images.load_image(microast_pngs[n]) for n in ("content_even", "style_a", "style_b"))
  got = cli(microast_weights, tmp_path / "mask", microast_pngs["content_even"], [microast_pngs["style_a"], microast_pngs["style_b"]],
            *SIZES, "--mask", str(tmp_path / "mask.png"), "--alpha", "0.8")
  codes = microast.concat_codes([microast.encode_style(a), microast.encode_style(b)])
  want = microast.stylize(content, codes, 0.8, mask_hw=microast.code_mask(mask / 255.0, content.shape[:2]))
  assert np.abs(got.astype(int) - images.to_uint8(want)).max() <= 1
  left, right = (images.to_uint8(microast.stylize(content, s)) for s in (a, b))
  assert np.abs(got[:, :8].astype(int) - left[:, :8]).mean() < np.abs(got[:, :8].astype(int) - right[:, :8]).mean()
  for method in ("coral", "luminance"):
    got = cli(microast_weights, tmp_path / method, microast_pngs["content_even"], [microast_pngs["style_a"]], *SIZES,
              "--preserve-color", method)
    want = microast.stylize(content, a, preserve_color=method)
    assert np.abs(got.astype(int) - images.to_uint8(want)).max() <= 1


def test_tiles_give_the_untiled_pixels(microast_weights, microast_pngs, tmp_path):
  whole = cli(microast_weights, tmp_path / "whole", microast_pngs["content_even"], [microast_pngs["style_a"]], *SIZES,
              "--alpha", "0.7", "--tile", "0")
  tiled = cli(microast_weights, tmp_path / "tiled", microast_pngs["content_even"], [microast_pngs["style_a"]], *SIZES,
              "--alpha", "0.7", "--tile", "16")
  assert np.abs(whole.astype(int) - tiled).max() <= 1


@pytest.mark.slow  # a clip encoded and stylized twice
def test_video_with_stabilize(microast, microast_weights, microast_pngs, tmp_path):
  """Frames of a clip are the still images' (--stabilize 0), and smoothing writes every frame."""
  frames = frame_images(4, 40, 48)
  src = write_clip(tmp_path / "clip.mp4", frames, codec="libx264rgb", pix_fmt="rgb24")
  for s in ("0", "0.8"):
    assert stylize.main(["--content", str(src), "--style", microast_pngs["style_a"], *SIZES, "--crf", "0",
                         "--stabilize", s, "--output", str(tmp_path / s), *weight_flags(microast_weights)]) == 0
  out0 = read_clip(tmp_path / "0" / "clip_stylized_style_a.mp4")[0]
  out8 = read_clip(tmp_path / "0.8" / "clip_stylized_style_a.mp4")[0]
  assert len(out0) == len(out8) == 4
  code = microast.encode_style(images.load_image(microast_pngs["style_a"]))
  still = images.to_uint8(microast.generate(frames[2].astype(np.float32) / 255, code))
  assert np.abs(out0[2].astype(int) - still).max() <= 1


def test_dataset_gives_the_stylize_commands_pixels(microast_weights, tmp_path):
  tree = make_tree(tmp_path)
  out = tmp_path / "out"
  assert stylize_dataset.main(flags(tree, out, microast_weights, "--ext", "png", "--alpha", "0.7")) == 1
  outputs = sorted(p for p in out.rglob("*.png"))
  assert len(outputs) == 6  # seven contents, one broken
  for path in outputs[:2]:
    rel = path.relative_to(out)
    stem, style = rel.stem.split("-stylized-")
    (content,) = (tree[0] / rel.parent).glob(f"{stem}.*")
    (style_file,) = [tree[1] / s for s in STYLES if Path(s).stem == style]
    want = cli(microast_weights, tmp_path / "ref" / stem, str(content), [str(style_file)], "--content-size", "0",
               "--style-size", "32", "--alpha", "0.7")
    np.testing.assert_array_equal(np.asarray(Image.open(path)), want)
