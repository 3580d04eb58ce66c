"""python -m adain.export: the ONNX pair run by ONNX Runtime (CPU) against adain's own pixels.

The model is exported once (seeded weights); the references are `python -m adain.stylize
--content-size 0 --style-size 0 --ext png` on the parity fixtures, whose styles are encoded at
their own size as the torch-written expectations are, and those expectations themselves.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image

import seeded_weights
from adain.commands import encode_style, stylize
from adain.commands.export import main as export_main
from adain.media import images
from adain.models.adain.architecture import Variant
from adain.models.adain.codes import StyleCode
from adain.models.adain.weights import model_from_state_dicts, save_native

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "parity")
LEVELS = 1  # of 255, as tests/test_parity.py
ODD_WH = (333, 251)  # an odd size: every pooling level is ceil-mode on both axes


def fixture(name: str) -> str:
  return os.path.join(FIXTURES, f"{name}.png")


@pytest.fixture(scope="session")
def exported(weights, tmp_path_factory):
  out = tmp_path_factory.mktemp("onnx")
  vgg, dec = weights
  assert export_main(["--vgg", str(vgg), "--decoder", str(dec), "--output", str(out)]) == 0
  return out


@pytest.fixture(scope="session")
def sessions(exported):
  return tuple(ort.InferenceSession(str(exported / f"{name}.onnx"), providers=["CPUExecutionProvider"])
               for name in ("encoder", "generator"))


@pytest.fixture(scope="session")
def odd_content(tmp_path_factory):
  """content_a scaled to an odd size (Pillow bicubic), as a PNG."""
  path = tmp_path_factory.mktemp("odd") / "content_odd.png"
  with Image.open(fixture("content_a")) as im:
    im.convert("RGB").resize(ODD_WH, Image.Resampling.BICUBIC).save(path)
  return str(path)


@pytest.fixture(scope="session")
def cli(weights, tmp_path_factory):
  """The stylize CLI's PNG as uint8, per (content, styles, alpha, weights), run once each."""
  done = {}

  def run(content: str, styles: list[str], alpha: float, style_weights: str | None = None):
    key = (content, tuple(styles), alpha, style_weights)
    if key not in done:
      out = tmp_path_factory.mktemp("cli")
      argv = ["--content", content, "--style", ",".join(styles), "--alpha", str(alpha),
              "--content-size", "0", "--style-size", "0", "--ext", "png", "--output", str(out),
              "--vgg", str(weights[0]), "--decoder", str(weights[1])]
      assert stylize.main(argv + (["--style-weights", style_weights] if style_weights else [])) == 0
      (png,) = out.glob("*.png")
      done[key] = np.asarray(Image.open(png))
    return done[key]

  return run


def encode(sessions, img_hw3: np.ndarray) -> tuple[np.ndarray, StyleCode]:
  """encoder.onnx on one image: its content code and its style code."""
  content, mean, std = sessions[0].run(["content", "style_mean", "style_std"], {"image": img_hw3[None]})
  return content, StyleCode(mean, std)


def generate(sessions, content, style: StyleCode, alpha: float) -> np.ndarray:
  return sessions[1].run(["image"], {"content": content, "style_mean": np.asarray(style.mean),
                                     "style_std": np.asarray(style.std),
                                     "alpha": np.array(alpha, np.float32)})[0]


def onnx_pixels(sessions, content_path: str, style: StyleCode, alpha: float) -> np.ndarray:
  """The picture the ONNX pair gives: generated, cropped to the input's size, rounded as adain."""
  img = images.load_image(content_path)
  out = generate(sessions, encode(sessions, img)[0], style, alpha)
  h, w = img.shape[:2]
  assert out.shape == (1, -(-h // 8) * 8, -(-w // 8) * 8, 3)
  return images.to_uint8(out[0, :h, :w])


def style_code(sessions, name: str) -> StyleCode:
  return encode(sessions, images.load_image(fixture(name)))[1]


def assert_pixels(got: np.ndarray, want: np.ndarray, what: str) -> None:
  assert got.shape == want.shape, (what, got.shape, want.shape)
  err = int(np.max(np.abs(got.astype(int) - want.astype(int))))
  assert err <= LEVELS, f"{what}: {err} levels off"


@pytest.mark.parametrize("alpha", [1.0, 0.6])
@pytest.mark.parametrize("size", ["even", "odd"])
def test_pixels_match_the_cli(sessions, cli, odd_content, size, alpha):
  content = fixture("content_a") if size == "even" else odd_content  # 56x40, 333x251
  got = onnx_pixels(sessions, content, style_code(sessions, "style_c"), alpha)
  assert_pixels(got, cli(content, [fixture("style_c")], alpha), f"{size} size, alpha {alpha}")


def test_mixed_styles_match_the_cli(sessions, cli):
  """Two styles mixed through their codes, as --style-weights, on an odd (45x37) content."""
  codes = StyleCode.concat([style_code(sessions, s) for s in ("style_a", "style_b")])
  got = onnx_pixels(sessions, fixture("content_b"), codes.mix([1, 3]), 0.6)
  want = cli(fixture("content_b"), [fixture("style_a"), fixture("style_b")], 0.6, "1,3")
  assert_pixels(got, want, "mixed styles")


@pytest.mark.parametrize("content,styles,alpha,key", [
    ("content_a", ["style_c"], 1.0, "stylized_a_c_alpha1"),
    ("content_b", ["style_c"], 1.0, "stylized_b_c_alpha1"),
    ("content_a", ["style_c"], 0.6, "stylized_a_c_alpha0.6"),
    ("content_a", ["style_a", "style_b"], 1.0, "stylized_a_interp_ab"),  # weights 1, 3
])
def test_pixels_match_pytorch(sessions, content, styles, alpha, key):
  with np.load(os.path.join(FIXTURES, "expected.npz")) as z:
    want = z[key]
  codes = StyleCode.concat([style_code(sessions, s) for s in styles])
  got = onnx_pixels(sessions, fixture(content), codes.mix([1, 3][:len(styles)]), alpha)
  assert_pixels(got, want, key)


@pytest.mark.slow  # exports and runs the ONNX graph at several shapes
def test_sizes_and_batch_are_symbolic(exported, sessions, weights):
  """One file: two sizes, a batch of 2 (per-image statistics), a code broadcast over it; and
  models.json says the graphs' real inputs and outputs."""
  spec = json.loads((exported / "models.json").read_text())
  for name, graph in (("encoder", sessions[0]), ("generator", sessions[1])):
    dims = {t.name: [d if isinstance(d, int) else str(d) for d in t.shape]
            for t in graph.get_inputs() + graph.get_outputs()}
    assert dims == {**spec[name]["inputs"], **spec[name]["outputs"]}
    assert onnx.load(exported / spec[name]["file"]).graph.name == f"adain_{name}"
  assert spec["encoder"]["inputs"]["image"] == ["N", "H", "W", 3]

  rng = np.random.default_rng(0)
  model = model_from_state_dicts(seeded_weights.vgg_state_dict(), seeded_weights.decoder_state_dict())
  for shape in [(2, 24, 32, 3), (1, 37, 45, 3)]:
    x = rng.random(shape, dtype=np.float32)
    content, mean, std = sessions[0].run(None, {"image": x})
    assert content.shape == (shape[0], -(-shape[1] // 8), -(-shape[2] // 8), 512)
    want = np.asarray(model.encode_content(x))
    assert np.max(np.abs(content - want)) <= 1e-4 * np.max(np.abs(want))
    code = model.encode_style(x)
    np.testing.assert_allclose(mean, code.mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(std, code.std, rtol=1e-4, atol=1e-5)
  batch = rng.random((2, 24, 32, 3), dtype=np.float32)
  content, mean, std = sessions[0].run(None, {"image": batch})
  second = sessions[0].run(None, {"image": batch[1:]})  # each image's code is its own
  for got, want in zip((content[1:], mean[1:], std[1:]), second):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  code = StyleCode(mean[:1], std[:1])
  out = generate(sessions, content, code, 0.6)  # one code styles both images
  assert out.shape == (2, 24, 32, 3) and 0 <= out.min() and out.max() <= 1
  np.testing.assert_allclose(out[1:], generate(sessions, content[1:], code, 0.6), atol=1e-5)
  own = generate(sessions, content, StyleCode(mean, std), 0.6)  # or one code per image
  np.testing.assert_allclose(own[1:], generate(sessions, content[1:], StyleCode(mean[1:], std[1:]), 0.6),
                             atol=1e-5)
  assert np.max(np.abs(own[1] - out[1])) > 1e-3


def test_pooling_has_no_ceil_mode_and_gives_ceil_modes_outputs(exported):
  """No node has ceil_mode=1 (onnxruntime-web's WebGPU MaxPool cannot run it), and the padded
  floor-mode pooling gives exactly what ceil-mode MaxPools give, at odd and even sizes."""
  encoder = onnx.load(exported / "encoder.onnx")
  for graph in (encoder.graph, onnx.load(exported / "generator.onnx").graph):
    assert not [n.op_type for n in graph.node for a in n.attribute if a.name == "ceil_mode" and a.i]
  pools = [n for n in encoder.graph.node if n.op_type == "MaxPool"]
  assert len(pools) == 3
  for node in pools:  # the encoder as it was exported before: ceil mode, no pads
    del node.attribute[:]
    node.attribute.extend([onnx.helper.make_attribute("kernel_shape", [2, 2]),
                           onnx.helper.make_attribute("strides", [2, 2]),
                           onnx.helper.make_attribute("ceil_mode", 1)])
  ceil = ort.InferenceSession(encoder.SerializeToString(), providers=["CPUExecutionProvider"])
  floor = ort.InferenceSession(str(exported / "encoder.onnx"), providers=["CPUExecutionProvider"])
  rng = np.random.default_rng(1)
  for h, w in [(37, 45), (17, 63), (36, 48), (24, 32)]:
    x = rng.random((1, h, w, 3), dtype=np.float32)
    got, want = floor.run(None, {"image": x}), ceil.run(None, {"image": x})
    assert got[0].shape == (1, -(-h // 8), -(-w // 8), 512)
    for g, c in zip(got, want):
      np.testing.assert_array_equal(g, c)


@pytest.mark.parametrize("fusion,norm", [("concat", "none"), ("adain", "batch"), ("adain", "instance")])
def test_ablation_decoder_is_refused(weights, tmp_path, capsys, fusion, norm):
  dec = tmp_path / "ablation.npz"
  save_native(dec, seeded_weights.variant_decoder_state_dict(fusion, norm), "decoder")
  out = tmp_path / "out"
  assert export_main(["--vgg", str(weights[0]), "--decoder", str(dec), "--output", str(out)]) == 1
  stderr = capsys.readouterr().err
  assert stderr.count("\n") == 1 and str(dec) in stderr, stderr
  assert f"is a {Variant(fusion, norm).name} ablation decoder" in stderr
  assert "only the paper's decoder (variant adain) exports" in stderr
  assert not out.exists() or not any(out.iterdir())


def test_missing_onnx_is_one_line(tmp_path, monkeypatch, capsys):
  monkeypatch.setitem(sys.modules, "onnx", None)
  monkeypatch.delitem(sys.modules, "adain.export.onnx_graph", raising=False)
  monkeypatch.delattr(sys.modules["adain.export"], "onnx_graph", raising=False)
  assert export_main(["--output", str(tmp_path / "out")]) == 1
  assert capsys.readouterr().err == "error: exporting needs onnx: pip install 'adain[export]'\n"


def test_npz_style_code_is_fed_directly(sessions, cli, weights, tmp_path):
  npz = tmp_path / "style_c.npz"
  assert encode_style.main([fixture("style_c"), "--output", str(npz), "--style-size", "0",
                            "--vgg", str(weights[0])]) == 0
  with np.load(npz) as z:
    code = StyleCode(z["mean"], z["std"])
  assert code.mean.shape == (1, 512)
  got = onnx_pixels(sessions, fixture("content_a"), code, 1.0)
  assert_pixels(got, cli(fixture("content_a"), [fixture("style_c")], 1.0), ".npz style code")
