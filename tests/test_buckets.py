"""Size buckets: an image inside a larger array (valid_hw) stylizes as the image alone, and
each bucket compiles once; bfloat16 runs and stays near float32.

Tolerance: 1e-5 of the largest value (pixels span about [0, 1]); only summation order differs,
measured differences are about 2e-6.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import seeded_weights
from adain.inference import stylizer as stylizer_module
from adain.models.adain.codes import StyleCode
from adain.inference.stylizer import Stylizer, bucket
from adain.models.adain.weights import model_from_state_dicts


def assert_close(got, want, rel=1e-5):
  want = np.asarray(want)
  assert np.asarray(got).shape == want.shape
  assert np.max(np.abs(np.asarray(got) - want)) <= rel * np.max(np.abs(want))


@pytest.fixture(scope="module")
def model():
  return model_from_state_dicts(seeded_weights.vgg_state_dict(), seeded_weights.decoder_state_dict())


def _image(h, w, seed):
  return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


@pytest.mark.slow  # the network op by op at two sizes, unjitted
@pytest.mark.parametrize("hw, bucket_hw", [((45, 37), (64, 48))])
def test_valid_part_of_a_bucket_is_the_image_alone(model, hw, bucket_hw):
  (h, w), (bh, bw) = hw, bucket_hw
  img, sty = _image(h, w, 0), _image(w, h, 1)
  code = model.encode_content(jnp.asarray(img)[None])
  style = model.encode_style(jnp.asarray(sty)[None])
  want = model.generate(code, style, 0.8)[0, :h, :w]

  filled = np.zeros((1, bh, bw, 3), np.float32)
  filled[0, :h, :w] = img
  filled_style = np.ones((1, bw + 8, bh, 3), np.float32)  # the filler's values must not matter
  filled_style[0, :w, :h] = sty
  got_style = model.encode_style(jnp.asarray(filled_style), valid_hw=jnp.array([w, h]))
  assert_close(got_style.mean, style.mean)
  assert_close(got_style.std, style.std)
  valid = jnp.array([h, w])
  got_code = model.encode_content(jnp.asarray(filled), valid)
  assert_close(got_code[:, :code.shape[1], :code.shape[2]], code)
  got = model.generate(got_code, got_style, 0.8, valid_hw=-(-valid // 8))[0, :h, :w]
  assert_close(got, want)


def test_buckets_are_coarse_and_cover():
  assert bucket(512) == 512 and bucket(513) == 576 and bucket(683) == 704 and bucket(16) == 64
  for n in range(16, 5000, 7):
    assert n <= bucket(n) < n + max(64, n // 8 + 1) and bucket(n) % 64 == 0
  assert len({bucket(n) for n in range(512, 1024)}) == 9  # 512, 576, ..., 1024


@pytest.mark.slow  # compiles the network and runs it op by op at three sizes
def test_stylizer_compiles_once_per_bucket(model):
  s = Stylizer(model)
  style = s.encode_style(_image(40, 48, 2))
  programs = (stylizer_module._encode_content, stylizer_module._decode)
  sizes = []  # compiled programs after each image (another test may have compiled the first)
  for h, w in ((40, 56), (37, 45), (64, 64)):  # all in the 64 x 64 bucket
    img = _image(h, w, h)
    got = s.generate(img, style, 0.5)
    want = model.generate(model.encode_content(jnp.asarray(img)[None]), style, 0.5)[0, :h, :w]
    assert_close(got, want)
    sizes.append([len(f) for f in programs])
  assert sizes[0] == sizes[1] == sizes[2] and min(sizes[0]) > 0


@pytest.mark.slow  # compiles the network in float32 and bfloat16
def test_bfloat16_stays_close_to_float32(model):
  img = _image(40, 48, 7)
  s32, s16 = Stylizer(model), Stylizer(model, dtype=jnp.bfloat16)
  want = s32.generate(img, s32.encode_style(img), 1.0)
  got = s16.generate(img, s16.encode_style(img), 1.0)
  assert got.dtype == np.float32 and got.shape == want.shape
  err = np.max(np.abs(got - want))
  assert 0 < err < 0.1 * np.ptp(want)  # really bfloat16 (not float32), and still the same image


def test_a_batch_is_each_image_alone(model):
  s = Stylizer(model)
  styles = StyleCode.concat([s.encode_style(_image(40, 48, 3)), s.encode_style(_image(48, 40, 4))])
  frames = np.stack([_image(37, 45, seed) for seed in (5, 6, 7)])
  mask = (np.arange(5 * 6).reshape(5, 6) % 3 == 0).astype(np.float32)
  for style, m in ((styles[:1], None), (styles, mask)):
    got = s.generate(frames, style, 0.7, m)
    assert got.shape == frames.shape
    for frame, out in zip(frames, got):
      assert_close(out, s.generate(frame, style, 0.7, m))
