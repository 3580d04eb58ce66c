"""MicroAST: parity with its PyTorch code (tests/fixtures/microast, written by
tools/make_microast_fixtures.py from seeded weights), its style codes, and its weight files."""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import threading
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from adain.errors import AdainError, WeightsError
from adain.models.interface import arrays_of
from adain.models.microast import architecture as arch
from adain.models.microast import weights as mw
from adain.models.microast.codes import FIELDS, MicroASTCode
from adain.models.microast.network import MicroAST, blocked_conv, upsample_bilinear2x
from adain.weights import write_native

FIXTURES = Path(__file__).parent / "fixtures" / "microast"


@pytest.fixture
def weights_dir(tmp_path):
  """A copy of the seeded weights (loading converts each file to .npz beside it)."""
  return Path(shutil.copytree(FIXTURES / "weights", tmp_path / "weights"))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
  folder = shutil.copytree(FIXTURES / "weights", tmp_path_factory.mktemp("microast") / "w")
  return mw.model_from_state_dicts(mw.state_dicts(folder, download=False))


def image(microast_expected, name):
  return jnp.asarray(microast_expected[f"image/{name}"].astype(np.float32) / 255.0)[None]


def code(microast_expected, name) -> MicroASTCode:
  return MicroASTCode(*(jnp.asarray(microast_expected[f"code/{name}/{f}"]) for f in FIELDS))


def stylize(model, content_bhwc, style: MicroASTCode, alpha=1.0, **kw):
  """The network's picture of ``content`` cropped to its size, alpha as the interface defines it."""
  own = None if alpha == 1 else model.encode_style(content_bhwc)
  out = model.generate(model.encode_content(content_bhwc), style, alpha, own_code=own, **kw)
  return out[:, :content_bhwc.shape[1], :content_bhwc.shape[2]]


def levels(x):
  return np.clip(np.asarray(x, np.float64), 0, 1) * 255


def assert_codes_close(a: MicroASTCode, b: MicroASTCode, tol=1e-4):
  for f, x, y in zip(FIELDS, a.fields(), b.fields()):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol, err_msg=f)


# --- Parity with MicroAST's PyTorch code. ---

def test_style_codes_match_torch(model, microast_expected):
  for name in ("style_a", "style_b", "content_even", "content_odd"):
    assert_codes_close(model.encode_style(image(microast_expected, name)), code(microast_expected, name))


@pytest.mark.parametrize("content", ["content_even", "content_odd"])
@pytest.mark.parametrize("case", ["alpha1", "alpha", "mixed"])
def test_pixels_match_torch_within_one_level(model, microast_expected, content, case):
  c = image(microast_expected, content)
  style_a = model.encode_style(image(microast_expected, "style_a"))
  if case == "mixed":
    styles = MicroASTCode.concat([style_a, model.encode_style(image(microast_expected, "style_b"))])
    out = stylize(model, c, styles.mix(microast_expected["mix_weights"]))
  else:
    alpha = float(microast_expected["alpha"]) if case == "alpha" else 1.0
    out = stylize(model, c, style_a, alpha)
  key = f"out/{content}/alpha{float(microast_expected['alpha']):g}" if case == "alpha" else f"out/{content}/{case}"
  want = microast_expected[key]
  assert out.shape == want.shape == (1, *microast_expected[f"image/{content}"].shape)
  diff = np.abs(levels(out) - levels(want))
  assert diff.max() <= 1.0, f"max {diff.max():.3f} levels, mean {diff.mean():.4f}"


def test_odd_size_rule(model, microast_expected):
  """The stride-2 convs round up; the decoder's output is 4x the features, cropped top-left."""
  c = image(microast_expected, "content_odd")  # 45 x 37
  features = model.encode_content(c)
  assert features.shape[1:3] == (arch.feature_size(45), arch.feature_size(37)) == (12, 10)
  full = model.generate(features, model.encode_style(c))
  assert full.shape[1:3] == (arch.output_size(45), arch.output_size(37)) == (48, 40)
  np.testing.assert_array_equal(np.asarray(stylize(model, c, model.encode_style(c))),
                                np.asarray(full[:, :45, :37]))
  assert arch.feature_size(arch.MIN_SIDE) == 2


@pytest.mark.parametrize("name", ["content_even", "content_odd"])
def test_an_image_in_a_larger_array_is_its_own(model, microast_expected, name):
  """valid_hw: an image in the top-left of a zero array (a size bucket) gives its own code and
  picture, its edges mirrored where the image ends, not where the array does."""
  c = image(microast_expected, name)
  h, w = c.shape[1:3]
  padded = jnp.zeros((1, h + 11, w + 6, 3)).at[:, :h, :w].set(c)
  valid = jnp.array([h, w])
  assert_codes_close(model.encode_style(padded, valid_hw=valid), model.encode_style(c), 1e-5)
  style = model.encode_style(image(microast_expected, "style_a"))
  hc, wc = arch.feature_size(h), arch.feature_size(w)
  code = model.encode_content(padded, valid)
  np.testing.assert_allclose(np.asarray(code[:, :hc, :wc]), np.asarray(model.encode_content(c)), atol=1e-5)
  out = model.generate(code, style, valid_hw=jnp.array([hc, wc]))[:, :h, :w]
  np.testing.assert_allclose(np.asarray(out), np.asarray(stylize(model, c, style)), atol=1e-5)


def test_mask_regions_at_both_levels(model, microast_expected):
  """A mask takes the first style where it is 1, the second where it is 0: all ones is the first
  style alone; a split mask gives each region its own statistics and filter scales."""
  c = image(microast_expected, "content_even")
  a, b = (model.encode_style(image(microast_expected, s)) for s in ("style_a", "style_b"))
  both = MicroASTCode.concat([a, b])
  features = model.encode_content(c)
  ones = jnp.ones(features.shape[:3])
  np.testing.assert_allclose(np.asarray(model.generate(features, both, mask_bhw=ones)),
                             np.asarray(model.generate(features, a)), atol=1e-5)
  np.testing.assert_allclose(np.asarray(model.generate(features, both, mask_bhw=0 * ones)),
                             np.asarray(model.generate(features, b)), atol=1e-5)
  half = ones.at[:, :, features.shape[2] // 2:].set(0.0)
  out = np.asarray(model.generate(features, both, mask_bhw=half))
  left, right = (np.asarray(model.generate(features, s)) for s in (a, b))
  # Far from the seam each side is close to its own style (statistics of its half only).
  assert np.abs(out[:, :, :8] - left[:, :, :8]).mean() < np.abs(out[:, :, :8] - right[:, :, :8]).mean()
  assert np.abs(out[:, :, -8:] - right[:, :, -8:]).mean() < np.abs(out[:, :, -8:] - left[:, :, -8:]).mean()


def test_upsampling_is_torch_bilinear_align_corners_false():
  """Against torch's formula: source (i + 0.5) / 2 - 0.5, clamped at 0, linear weights."""
  x = np.random.default_rng(0).standard_normal((1, 5, 4, 2)).astype(np.float32)

  def torch_1d(a, axis):
    n = a.shape[axis]
    src = np.maximum((np.arange(2 * n) + 0.5) / 2 - 0.5, 0)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, n - 1)
    lam = (src - i0).reshape([-1 if d == axis else 1 for d in range(a.ndim)])
    return np.take(a, i0, axis) * (1 - lam) + np.take(a, i1, axis) * lam

  want = torch_1d(torch_1d(x, 1), 2)
  np.testing.assert_allclose(np.asarray(upsample_bilinear2x(jnp.asarray(x))), want, atol=1e-6)


@pytest.mark.parametrize("block", [(2, 2), (2, 4), (3, 1)])
def test_blocked_conv_is_the_conv(block):
  """Tiles of pixels as channels, odd sizes (the input's end zero-filled to whole tiles)."""
  rng = np.random.default_rng(2)
  x = jnp.asarray(rng.standard_normal((2, 17, 14, 3)).astype(np.float32))
  k = jnp.asarray(rng.standard_normal((9, 9, 3, 5)).astype(np.float32))
  want = jax.lax.conv_general_dilated(x, k, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                      precision=jax.lax.Precision.HIGHEST)
  np.testing.assert_allclose(np.asarray(blocked_conv(x, k, block)), np.asarray(want), rtol=1e-5, atol=1e-5)


def test_alpha_one_is_the_network_and_alpha_needs_the_own_code(model, microast_expected):
  c = image(microast_expected, "content_even")
  style = model.encode_style(image(microast_expected, "style_a"))
  features = model.encode_content(c)
  plain = model.generate(features, style)
  with_own = model.generate(features, style, 1.0, own_code=model.encode_style(c))
  np.testing.assert_allclose(np.asarray(plain), np.asarray(with_own), atol=1e-6)
  with pytest.raises(AdainError, match="own code"):
    model.generate(features, style, 0.5)
  np.testing.assert_allclose(np.asarray(model.generate(features, style, 0.0, own_code=model.encode_style(c))),
                             np.asarray(model.generate(features, model.encode_style(c))), atol=1e-6)


def test_random_init_and_placeholders():
  """Seeded init draws every array; init=False leaves shapes for a loader (0.47 M parameters)."""
  model = MicroAST(rngs=nnx.Rngs(3))
  arrays = arrays_of(model)
  assert sum(np.size(a) for a in arrays.values()) == 471_987
  assert len({float(np.asarray(a).ravel()[0]) for a in arrays.values()}) == len(arrays) == 62
  shapes = {k: tuple(v.shape) for k, v in arrays_of(MicroAST(init=False)).items()}
  assert shapes == {k: tuple(v.shape) for k, v in arrays.items()}
  sds = mw.state_dicts_of(model)
  assert {p: {k: v.shape for k, v in sd.items()} for p, sd in sds.items()} == mw.SHAPES


# --- Codes. ---

def test_code_round_trips_through_npz(tmp_path, microast_expected):
  c = MicroASTCode.concat([code(microast_expected, "style_a"), code(microast_expected, "style_b")])
  c.save(tmp_path / "code.npz")
  back = MicroASTCode.load(tmp_path / "code.npz")
  assert len(back) == 2
  for x, y in zip(c.fields(), back.fields()):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_code_load_refuses_wrong_shapes_and_nan(tmp_path, microast_expected):
  good = {f: microast_expected[f"code/style_a/{f}"] for f in FIELDS}
  cases = {"short": {**good, "w2": good["w2"][:, :32]}, "missing": {k: v for k, v in good.items() if k != "b1"},
           "nan": {**good, "mean1": np.full_like(good["mean1"], np.nan)},
           "zero_std": {**good, "std2": np.zeros_like(good["std2"])}}
  from adain.weights.npz import write_npz
  for name, arrays in cases.items():
    path = tmp_path / f"{name}.npz"
    write_npz(path, {"__format__": np.asarray("adain-microast-code/1"), **arrays})
    with pytest.raises(AdainError) as e:
      MicroASTCode.load(path)
    assert str(path) in str(e.value)
  other = tmp_path / "adain_code.npz"
  write_npz(other, {"__format__": np.asarray("adain-style-code/1"), "mean": np.zeros((1, 512)),
                    "std": np.ones((1, 512))})
  with pytest.raises(AdainError, match="adain-microast-code/1"):
    MicroASTCode.load(other)


def test_mix_and_interpolate_are_linear(microast_expected):
  a, b = code(microast_expected, "style_a"), code(microast_expected, "style_b")
  mixed = MicroASTCode.concat([a, b]).mix([1.0, 3.0])
  half = a.interpolate(b, 0.25)
  for x, y, m, h in zip(a.fields(), b.fields(), mixed.fields(), half.fields()):
    np.testing.assert_allclose(np.asarray(m), 0.25 * np.asarray(x) + 0.75 * np.asarray(y), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(h), np.asarray(m), rtol=1e-6, atol=1e-7)
  assert_codes_close(mixed, code(microast_expected, "mixed"), 1e-6)
  assert_codes_close(a.interpolate(b, 1.0), a, 0)
  assert_codes_close(a.interpolate(b, 0.0), b, 0)


# --- Weight files. ---

def test_state_dicts_convert_once_to_native(weights_dir):
  first = mw.state_dicts(weights_dir, download=False)
  for name in mw.FILENAMES.values():
    assert (weights_dir / (name + ".adain.npz")).is_file()
  again = mw.state_dicts(weights_dir, download=False)
  for part in arch.PARTS:
    assert all(np.array_equal(first[part][k], again[part][k]) for k in first[part])


def test_missing_file_is_one_error_naming_it(weights_dir):
  gone = weights_dir / mw.FILENAMES["modulator"]
  gone.unlink()
  with pytest.raises(WeightsError) as e:
    mw.state_dicts(weights_dir, download=False)
  assert str(gone) in str(e.value) and mw.PUBLISHED["modulator"].url in str(e.value)
  assert "\n" not in str(e.value)
  (weights_dir / mw.FILENAMES["decoder"]).unlink()
  with pytest.raises(WeightsError) as e:
    mw.state_dicts(weights_dir, download=False)
  assert str(gone) in str(e.value) and mw.FILENAMES["decoder"] in str(e.value)


def test_file_of_another_part_or_model_is_refused_naming_it(weights_dir):
  decoder = weights_dir / mw.FILENAMES["decoder"]
  shutil.copy(weights_dir / mw.FILENAMES["modulator"], decoder)
  with pytest.raises(WeightsError, match="holds MicroAST's modulator, not MicroAST's decoder") as e:
    mw.state_dicts(weights_dir, download=False)
  assert str(decoder) in str(e.value)
  write_native(decoder, {"0.weight": np.zeros((3, 3, 1, 1), np.float32)}, "vgg", {})
  with pytest.raises(WeightsError, match="'vgg' weights, not MicroAST's decoder") as e:
    mw.state_dicts(weights_dir, download=False)
  assert str(decoder) in str(e.value)
  with pytest.raises(WeightsError, match="not MicroAST's decoder"):
    mw.check_state_dict({"0.weight": np.zeros((3, 3, 1, 1), np.float32)}, "decoder", decoder)


def test_wrong_shape_is_refused_naming_the_file(weights_dir):
  sd = mw.load_weights(weights_dir / mw.FILENAMES["decoder"], "decoder")
  sd["dec3.10.conv_layer.weight"] = sd["dec3.10.conv_layer.weight"][:, :8]
  bad = weights_dir / mw.FILENAMES["decoder"]
  write_native(bad, sd, "microast-decoder", {})
  with pytest.raises(WeightsError, match=r"dec3.10.conv_layer.weight has shape \(3, 8, 9, 9\)") as e:
    mw.state_dicts(weights_dir, download=False)
  assert str(bad) in str(e.value)


def test_search_folders_then_one_offline_message(tmp_path, monkeypatch, weights_dir):
  monkeypatch.chdir(tmp_path)
  monkeypatch.setenv("ADAIN_HOME", str(tmp_path / "home"))
  with pytest.raises(WeightsError) as e:
    mw.find_files(download=False)
  for source in mw.PUBLISHED.values():
    assert source.url in str(e.value)
  assert str(Path("checkpoints") / "microast") in str(e.value)
  shutil.copytree(weights_dir, tmp_path / "home" / "microast")
  found = mw.find_files(download=False)
  assert found["decoder"] == tmp_path / "home" / "microast" / mw.FILENAMES["decoder"]
  shutil.copytree(weights_dir, tmp_path / "checkpoints" / "microast")
  assert mw.find_files(download=False)["decoder"] == Path("checkpoints/microast") / mw.FILENAMES["decoder"]


def sha256_of(path: Path) -> str:
  return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def weights_server(monkeypatch):
  """The seeded weights served over HTTP as the published files, with their SHA-256s."""
  handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(FIXTURES / "weights"))
  handler.log_message = lambda *args: None
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
  threading.Thread(target=server.serve_forever, daemon=True).start()
  url = f"http://127.0.0.1:{server.server_address[1]}"
  monkeypatch.setattr(mw, "PUBLISHED", {p: mw.Source(f"{url}/{name}", name) for p, name in mw.FILENAMES.items()})
  monkeypatch.setattr(mw, "SHA256", {p: sha256_of(FIXTURES / "weights" / name)
                                     for p, name in mw.FILENAMES.items()})
  yield url
  server.shutdown()


def test_download_checks_sha256_then_converts(tmp_path, monkeypatch, weights_server):
  monkeypatch.chdir(tmp_path)
  monkeypatch.setenv("ADAIN_HOME", str(tmp_path / "home"))
  monkeypatch.setitem(mw.SHA256, "decoder", "0" * 64)
  with pytest.raises(WeightsError) as e:
    mw.state_dicts(progress=False)
  assert "SHA-256" in str(e.value) and mw.PUBLISHED["decoder"].url in str(e.value)
  home = tmp_path / "home" / "microast"
  assert not (home / mw.FILENAMES["decoder"]).exists() and (home / mw.FILENAMES["modulator"]).is_file()
  monkeypatch.setitem(mw.SHA256, "decoder", sha256_of(FIXTURES / "weights" / mw.FILENAMES["decoder"]))
  sds = mw.state_dicts(progress=False)
  assert set(sds) == set(arch.PARTS)
  assert (home / (mw.FILENAMES["decoder"] + ".adain.npz")).is_file()
