"""Shared fixtures and helpers: seeded model weights as native files, small images on disk, a
Stylizer on those weights, and the CLI's pixels for given inputs (the app and browser tests).

Test modules import helpers from here or from the helper modules beside it (seeded_weights,
seeded_variants, dataset_tree, clips, static_site), never from another test module."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import seeded_weights
from PIL import Image

from adain import runtime

# The suite never touches the user's weights cache or saved programs.
os.environ["ADAIN_HOME"] = tempfile.mkdtemp(prefix="adain-home-")
# As the commands run (adain.runtime.set_up, less the restart), subprocesses too.
runtime.use_xla_flag()
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session")
def weights(tmp_path_factory):
  """(vgg.npz, decoder.npz) made from a seed: outputs that vary with content and style."""
  return seeded_weights.save(tmp_path_factory.mktemp("weights"))


MICROAST_FIXTURES = Path(__file__).parent / "fixtures" / "microast"


@pytest.fixture(scope="session")
def microast_weights(tmp_path_factory) -> Path:
  """A copy of tests/fixtures/microast/weights (seeded, in the published layout), a --weights
  folder: loading converts each file to .npz beside it, so never the fixtures' own."""
  return Path(shutil.copytree(MICROAST_FIXTURES / "weights", tmp_path_factory.mktemp("microast") / "weights"))


@pytest.fixture(scope="session")
def microast_expected() -> dict:
  """What MicroAST's PyTorch code computed from the seeded weights (tools/make_microast_fixtures.py):
  images, codes and outputs."""
  with np.load(MICROAST_FIXTURES / "expected.npz") as z:
    return dict(z)


@pytest.fixture(scope="session")
def microast_pngs(microast_expected, tmp_path_factory) -> dict[str, str]:
  """The MicroAST fixtures' images as PNG files, by name, for the commands."""
  d = tmp_path_factory.mktemp("microast-images")
  names = [k.removeprefix("image/") for k in microast_expected if k.startswith("image/")]
  for name in names:
    Image.fromarray(microast_expected[f"image/{name}"]).save(d / f"{name}.png")
  return {name: str(d / f"{name}.png") for name in names}


def weight_flags(weights) -> list[str]:
  """The CLI's flags for ``weights``: AdaIN's (vgg, decoder) pair, or MicroAST's folder."""
  if isinstance(weights, (tuple, list)):
    return ["--vgg", str(weights[0]), "--decoder", str(weights[1])]
  return ["--model", "microast", "--weights", str(weights)]


@pytest.fixture(scope="module")
def stylizer(weights):
  """A Stylizer on the seeded weights, one per test module."""
  from adain.inference.stylizer import Stylizer

  return Stylizer.from_files(*weights)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
  """A content image and two styles of different sizes (as paths), one set per test module."""
  d = tmp_path_factory.mktemp("inputs")
  return {"content": str(write_image(d / "photo.png", 40, 56, 1)),
          "a": str(write_image(d / "a.png", 48, 40, 2)),
          "b": str(write_image(d / "b.png", 36, 52, 3))}


def cli(weights, out, content, styles, *extra) -> np.ndarray:
  """The one PNG that python -m adain.stylize writes for these inputs into ``out``, as uint8
  (``weights``: see weight_flags)."""
  from adain.commands import stylize

  rc = stylize.main(["--content", content, "--style", ",".join(styles), "--ext", "png",
                     "--output", str(out), *weight_flags(weights), *extra])
  assert rc == 0
  (png,) = out.glob("*.png")
  return np.asarray(Image.open(png))


def write_image(path, h, w, seed=0):
  """A smooth random RGB image (gradients plus noise), saved losslessly."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:h, 0:w]
  base = np.stack([xx / w, yy / h, (xx + yy) / (h + w)], -1)
  img = np.clip(base + 0.2 * rng.standard_normal((h, w, 3)), 0, 1)
  Image.fromarray((img * 255).astype(np.uint8)).save(path)
  return path


def weight_writers():
  """tools/make_weight_fixtures.py as a module: its byte-level writers import neither torch nor
  torchfile, so the reader tests build mutated files with them."""
  import importlib.util
  import sys
  from pathlib import Path

  if "make_weight_fixtures" not in sys.modules:
    path = Path(__file__).resolve().parents[1] / "tools" / "make_weight_fixtures.py"
    spec = importlib.util.spec_from_file_location("make_weight_fixtures", path)
    sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sys.modules[spec.name])
  return sys.modules["make_weight_fixtures"]
