"""Numerical parity with pytorch-AdaIN, against fixtures from tools/make_parity_fixtures.py.

Both sides use the seeded weights of tests/seeded_weights.py. Tolerances (float32 on both sides;
only the order of summation differs): encoder taps, AdaIN and decoder within 1e-4 of the tensor's
largest magnitude; saved images within 1 level of 255 (the acceptance bound is 2).
"""

from __future__ import annotations

import os

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from PIL import Image

from adain.inference import color
from adain.models import ops
from adain.models.adain.codes import StyleCode
from adain.models.adain.weights import model_from_state_dicts
from seeded_weights import checksum, decoder_state_dict, vgg_state_dict

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "parity")
FLOAT_RTOL = 1e-4  # of max |expected|
UINT8_LEVELS = 1
ALPHA = 0.6
INTERPOLATION_WEIGHTS = (1, 3)


@pytest.fixture(scope="module")
def expected():
  with np.load(os.path.join(FIXTURES, "expected.npz")) as z:
    ex = {k: z[k] for k in z.files}
  want = checksum(vgg_state_dict(), decoder_state_dict())
  np.testing.assert_allclose(ex["weights_checksum"], want, rtol=1e-12,
                             err_msg="seeded weights changed: rerun tools/make_parity_fixtures.py")
  return ex


@pytest.fixture(scope="module")
def model():
  return model_from_state_dicts(vgg_state_dict(), decoder_state_dict())


# One compiled program per input shape (4 for the encoder, 2 for generate) keeps the tests fast.
_features = nnx.jit(lambda m, x: m.encoder.features(x))
_generate = nnx.jit(lambda m, content_code, style, alpha: m.generate(content_code, style, alpha))


def encode_content(model, x) -> jnp.ndarray:
  """model.encode_content, through the compiled encoder."""
  return _features(model, x)["relu4_1"]


def encode_style(model, x) -> StyleCode:
  """model.encode_style, through the compiled encoder."""
  return StyleCode(*ops.mean_std(encode_content(model, x)))


def image(name: str) -> np.ndarray:
  """HWC float32 in [0, 1], as torchvision's ToTensor reads it."""
  with Image.open(os.path.join(FIXTURES, f"{name}.png")) as im:
    return np.asarray(im.convert("RGB"), np.float32) / np.float32(255)


def batch(*names: str) -> jnp.ndarray:
  return jnp.asarray(np.stack([image(n) for n in names]))


def assert_close(got, want, what: str) -> None:
  got = np.asarray(got)
  assert got.shape == want.shape, (what, got.shape, want.shape)
  scale = float(np.max(np.abs(want)))
  err = float(np.max(np.abs(got - want)))
  assert err <= FLOAT_RTOL * scale, f"{what}: max |diff| {err:.3g} > {FLOAT_RTOL} * {scale:.3g}"


def saved_uint8(decoded_bhwc, h: int, w: int) -> np.ndarray:
  """torchvision's save_image rounding, after the Stylizer's top-left crop to the content size."""
  x = np.asarray(decoded_bhwc[0, :h, :w], np.float32)
  return np.clip(x * np.float32(255) + np.float32(0.5), 0, 255).astype(np.uint8)


def assert_image_close(got, want, what: str) -> None:
  assert got.shape == want.shape, (what, got.shape, want.shape)
  err = int(np.max(np.abs(got.astype(int) - want.astype(int))))
  assert err <= UINT8_LEVELS, f"{what}: {err} levels off"


def test_encoder_taps(model, expected):
  feats = _features(model, batch("content_b"))  # 37x45: ceil-mode pooling at every level
  for tap in ("relu1_1", "relu2_1", "relu3_1", "relu4_1"):
    assert_close(feats[tap], expected[f"content_b_{tap}"], tap)


@pytest.mark.parametrize("name", ["content_a", "style_a", "style_c"])
def test_encode_content_is_vgg31(model, expected, name):
  assert_close(encode_content(model, batch(name)), expected[f"{name}_relu4_1"], name)


@pytest.mark.parametrize("content,style", [("content_a", "style_c"), ("content_b", "style_a")])
def test_adain_and_decoder(model, expected, content, style):
  """Both on the reference's relu4_1 features, so encoder errors do not compound."""
  c_f = jnp.asarray(expected[f"{content}_relu4_1"])
  code = StyleCode(*ops.mean_std(jnp.asarray(expected[f"{style}_relu4_1"])))
  assert_close(ops.adain(c_f, code.mean, code.std), expected[f"{content}_{style}_adain"], "adain")
  decoded = _generate(model, c_f, code, 1.0)
  assert_close(decoded, expected[f"{content}_{style}_decoded"], "decoder")


def stylize(model, content: str, code: StyleCode, alpha: float = 1.0) -> np.ndarray:
  x = batch(content)
  decoded = _generate(model, encode_content(model, x), code, alpha)
  return saved_uint8(decoded, *x.shape[1:3])


@pytest.mark.parametrize("content,alpha,key", [
    ("content_a", 1.0, "stylized_a_c_alpha1"),
    ("content_b", 1.0, "stylized_b_c_alpha1"),  # output 40x48, cropped to 37x45
    ("content_a", ALPHA, f"stylized_a_c_alpha{ALPHA}"),
])
def test_stylize(model, expected, content, alpha, key):
  got = stylize(model, content, encode_style(model, batch("style_c")), alpha)
  assert_image_close(got, expected[key], key)


def test_interpolation(model, expected):
  """StyleCode.mix of two styles == test.py's weighted sum of per-style AdaIN outputs."""
  codes = StyleCode.concat([encode_style(model, batch(s)) for s in ("style_a", "style_b")])
  got = stylize(model, "content_a", codes.mix(INTERPOLATION_WEIGHTS))
  assert_image_close(got, expected["stylized_a_interp_ab"], "interpolation")

  c_f = encode_content(model, batch("content_a"))
  w = np.array(INTERPOLATION_WEIGHTS) / sum(INTERPOLATION_WEIGHTS)
  summed = sum(w[i] * ops.adain(c_f, codes.mean[i:i + 1], codes.std[i:i + 1]) for i in range(2))
  mixed = codes.mix(INTERPOLATION_WEIGHTS)
  np.testing.assert_allclose(ops.adain(c_f, mixed.mean, mixed.std), summed, atol=1e-5)


def test_coral_preserve_color(model, expected):
  styled = color.coral(image("style_c"), image("content_b"))
  assert_close(styled, expected["coral_c_to_b"], "coral")
  got = stylize(model, "content_b", encode_style(model, jnp.asarray(styled)[None]))
  assert_image_close(got, expected["stylized_b_coral_c"], "coral stylization")
