"""The whole command line against PyTorch's pictures: fixture images in, PNGs out, within 1 level."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adain.commands import stylize

FIXTURES = Path(__file__).parent / "fixtures" / "parity"


@pytest.fixture(scope="module")
def expected():
  with np.load(FIXTURES / "expected.npz") as z:
    return {k: z[k] for k in z.files}


@pytest.mark.parametrize("content, styles, extra, key, name", [
    ("content_b", ["style_c"], [], "stylized_b_c_alpha1", "content_b_stylized_style_c.png"),
    ("content_a", ["style_c"], ["--alpha", "0.6"], "stylized_a_c_alpha0.6",
     "content_a_stylized_style_c.png"),
    ("content_a", ["style_a", "style_b"], ["--style_interpolation_weights", "1,3"],
     "stylized_a_interp_ab", "content_a_interpolation.png"),
    ("content_b", ["style_c"], ["--preserve_color"], "stylized_b_coral_c",
     "content_b_stylized_style_c.png"),
])
def test_cli_matches_pytorch(weights, expected, tmp_path, content, styles, extra, key, name):
  vgg, dec = weights
  rc = stylize.main([
      "--content", str(FIXTURES / f"{content}.png"),
      "--style", ",".join(str(FIXTURES / f"{s}.png") for s in styles),
      "--content-size", "0", "--style-size", "0", "--ext", "png", "--output", str(tmp_path),
      "--vgg", str(vgg), "--decoder", str(dec), *extra])
  assert rc == 0
  got = np.asarray(Image.open(tmp_path / name)).astype(int)
  want = expected[key].astype(int)
  assert got.shape == want.shape
  assert np.abs(got - want).max() <= 1
