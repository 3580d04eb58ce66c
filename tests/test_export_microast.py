"""python -m adain.export --model microast: the ONNX pair run by ONNX Runtime (CPU) against MicroAST's
PyTorch outputs (tests/fixtures/microast, seeded weights) and python -m adain.stylize --model microast."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import cli

from adain.commands.export import main as export_main
from adain.export import onnx_builder as ob
from adain.export.onnx_microast import OWN, upsample_bilinear2x
from adain.media import images
from adain.models.microast import architecture as arch
from adain.models.microast import weights as mw
from adain.models.microast.codes import FIELDS, MicroASTCode
from adain.models.microast.network import upsample_bilinear2x as flax_upsample

FIXTURES = Path(__file__).parent / "fixtures" / "microast"
LEVELS = 1  # of 255, as tests/test_microast.py


@pytest.fixture(scope="module")
def exported(microast_weights, tmp_path_factory):
  out = tmp_path_factory.mktemp("onnx-microast")
  assert export_main(["--model", "microast", "--weights", str(microast_weights), "--output", str(out)]) == 0
  return out


@pytest.fixture(scope="module")
def sessions(exported):
  return tuple(ort.InferenceSession(str(exported / f"{name}.onnx"), providers=["CPUExecutionProvider"])
               for name in ("encoder", "generator"))


@pytest.fixture(scope="module")
def model(microast_weights):
  return mw.model_from_state_dicts(mw.state_dicts(microast_weights, download=False))


def encode(sessions, images_bhw3: np.ndarray) -> tuple[np.ndarray, MicroASTCode]:
  """encoder.onnx: the content code and the code of each image."""
  content, *fields = sessions[0].run(["content", *FIELDS], {"image": images_bhw3})
  return content, MicroASTCode(*fields)


def generate(sessions, content, style: MicroASTCode, own: MicroASTCode, alpha: float) -> np.ndarray:
  feeds = {"content": content, **dict(zip(FIELDS, map(np.asarray, style.fields()))),
           **dict(zip(OWN, map(np.asarray, own.fields()))), "alpha": np.array(alpha, np.float32)}
  return sessions[1].run(["image"], feeds)[0]


def fixture_image(microast_expected, name) -> np.ndarray:
  return microast_expected[f"image/{name}"].astype(np.float32)[None] / 255


def case_code(sessions, microast_expected, case: str) -> tuple[MicroASTCode, float]:
  """The style code and alpha of a fixture case: style_a at 1 or 0.6, or styles a and b mixed."""
  a = encode(sessions, fixture_image(microast_expected, "style_a"))[1]
  if case == "mixed":
    b = encode(sessions, fixture_image(microast_expected, "style_b"))[1]
    return MicroASTCode.concat([a, b]).mix(microast_expected["mix_weights"]), 1.0
  return a, float(microast_expected["alpha"]) if case == "alpha" else 1.0


def onnx_picture(sessions, content_b1hw3, style: MicroASTCode, alpha: float) -> np.ndarray:
  """The ONNX pair's picture: generated with the content's own code, cropped to its size."""
  content, own = encode(sessions, content_b1hw3)
  out = generate(sessions, content, style, own, alpha)
  h, w = content_b1hw3.shape[1:3]
  assert out.shape == (1, arch.output_size(h), arch.output_size(w), 3)
  return out[:, :h, :w]


def assert_levels(got, want, what: str) -> None:
  """Within LEVELS of 255, as saved: both clipped to [0, 1] and scaled."""
  assert got.shape == want.shape, (what, got.shape, want.shape)
  diff = np.abs(np.clip(got, 0, 1) * 255 - np.clip(np.asarray(want, np.float64), 0, 1) * 255)
  assert diff.max() <= LEVELS, f"{what}: {diff.max():.3f} levels off"


def test_codes_match_pytorch(sessions, microast_expected):
  for name in ("style_a", "style_b", "content_even", "content_odd"):
    _, code = encode(sessions, fixture_image(microast_expected, name))
    for f, got in zip(FIELDS, code.fields()):
      np.testing.assert_allclose(got, microast_expected[f"code/{name}/{f}"], rtol=1e-4, atol=1e-5, err_msg=f"{name} {f}")


@pytest.mark.parametrize("content", ["content_even", "content_odd"])  # 48x64, 45x37
@pytest.mark.parametrize("case", ["alpha1", "alpha", "mixed"])
def test_pixels_match_pytorch(sessions, microast_expected, content, case):
  style, alpha = case_code(sessions, microast_expected, case)
  got = onnx_picture(sessions, fixture_image(microast_expected, content), style, alpha)
  key = f"out/{content}/alpha{float(microast_expected['alpha']):g}" if case == "alpha" else f"out/{content}/{case}"
  assert_levels(got, microast_expected[key], f"{content} {case}")


@pytest.mark.parametrize("content", ["content_even", "content_odd"])
@pytest.mark.parametrize("case", ["alpha1", "alpha", "mixed"])
def test_pixels_match_the_cli(sessions, microast_weights, microast_expected, microast_pngs, tmp_path, content, case):
  """python -m adain.stylize --model microast's PNG: the same saved pixels, within 1 level."""
  style, alpha = case_code(sessions, microast_expected, case)
  got = images.to_uint8(onnx_picture(sessions, fixture_image(microast_expected, content), style, alpha)[0])
  styles = [microast_pngs["style_a"]]
  extra = ["--alpha", str(alpha), "--content-size", "0", "--style-size", "0"]
  if case == "mixed":
    styles.append(microast_pngs["style_b"])
    extra += ["--style-weights", ",".join(str(float(w)) for w in microast_expected["mix_weights"])]
  want = cli(microast_weights, tmp_path, microast_pngs[content], styles, *extra)
  assert np.abs(got.astype(int) - want).max() <= LEVELS


def test_sizes_and_batch_are_symbolic(exported, sessions, model):
  """One file: two sizes, a batch of 2 (per-image codes), a code broadcast over it; and
  models.json says the graphs' real inputs and outputs."""
  spec = json.loads((exported / "models.json").read_text())
  assert spec["network"] == "microast" and spec["min_side"] == 5 and spec["opset"] == ob.OPSET
  for name, graph in (("encoder", sessions[0]), ("generator", sessions[1])):
    dims = {t.name: [d if isinstance(d, int) else str(d) for d in t.shape]
            for t in graph.get_inputs() + graph.get_outputs()}
    assert dims == {**spec[name]["inputs"], **spec[name]["outputs"]}
    assert onnx.load(exported / spec[name]["file"]).graph.name == f"microast_{name}"
  feeds = spec["generator"]["feeds"]
  assert set(feeds) | {"alpha"} == set(spec["generator"]["inputs"])
  assert all(out in spec["encoder"]["outputs"] for _, out in feeds.values())

  rng = np.random.default_rng(0)
  for shape in [(2, 24, 32, 3), (1, 37, 45, 3), (1, 5, 6, 3)]:
    x = rng.random(shape, dtype=np.float32)
    content, code = encode(sessions, x)
    want = np.asarray(model.encode_content(x))
    assert content.shape == want.shape
    np.testing.assert_allclose(content, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    for f, got, w in zip(FIELDS, code.fields(), model.encode_style(x).fields()):
      np.testing.assert_allclose(got, np.asarray(w), rtol=1e-4, atol=1e-5, err_msg=f)
  batch = rng.random((2, 24, 32, 3), dtype=np.float32)
  content, own = encode(sessions, batch)
  second = encode(sessions, batch[1:])  # each image's codes are its own
  np.testing.assert_allclose(content[1:], second[0], rtol=1e-5, atol=1e-6)
  for got, want in zip(own[1:].fields(), second[1].fields()):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  style = own[:1]
  out = generate(sessions, content, style, own, 0.6)  # one style code for both images
  assert out.shape == (2, 24, 32, 3) and 0 <= out.min() and out.max() <= 1
  np.testing.assert_allclose(out[1:], generate(sessions, content[1:], style, own[1:], 0.6), atol=1e-5)
  each = generate(sessions, content, own, own, 0.6)  # or one per image
  np.testing.assert_allclose(each[1:], generate(sessions, content[1:], own[1:], own[1:], 0.6), atol=1e-5)
  assert np.max(np.abs(each[1] - out[1])) > 1e-3


def test_resize_is_torch_bilinear():
  """The generator's Resize (half_pixel) against network.upsample_bilinear2x, odd sizes too."""
  g = ob.Graph()
  ob.nchw_to_nhwc(g, upsample_bilinear2x(g, ob.nhwc_to_nchw(g, "x")), "y")
  io = {"inputs": {"x": ["N", "H", "W", 3]}, "outputs": {"y": ["N", "2H", "2W", 3]}}
  graph = ort.InferenceSession(g.model("resize", io, "", {}).SerializeToString(),
                               providers=["CPUExecutionProvider"])
  x = np.random.default_rng(2).standard_normal((2, 5, 4, 3)).astype(np.float32)
  np.testing.assert_allclose(graph.run(None, {"x": x})[0], np.asarray(flax_upsample(x)), atol=1e-6)


def test_missing_weight_file_is_one_line(microast_weights, tmp_path, capsys):
  folder = tmp_path / "weights"
  folder.mkdir()
  for name in list(mw.FILENAMES.values())[1:]:
    (folder / name).write_bytes((microast_weights / name).read_bytes())
  out = tmp_path / "out"
  assert export_main(["--model", "microast", "--weights", str(folder), "--output", str(out)]) == 1
  err = capsys.readouterr().err
  missing = folder / mw.FILENAMES["content_encoder"]
  assert err.count("\n") == 1 and err.startswith(f"error: {missing}: missing"), err
  assert not out.exists()
