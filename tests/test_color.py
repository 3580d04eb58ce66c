"""Colour preservation: coral's statistics, and luminance-only transfer (Gatys et al. 2016).

Exact agreement of coral with pytorch-AdaIN's is tested in test_parity.py; these are properties.
"""

from __future__ import annotations

import numpy as np
import pytest

from adain.inference import color


def random_image(h, w, seed):
  """Moderately correlated colour channels, so covariances are not diagonal."""
  rng = np.random.default_rng(seed)
  img = rng.uniform(0.0, 1.0, (h, w, 3)) @ (np.eye(3) + rng.uniform(0.0, 0.6, (3, 3))).T
  return (img / img.max()).astype(np.float32)


def stats(img):
  """Per-channel mean and unbiased covariance, as coral's reference uses them."""
  flat = np.asarray(img, np.float64).reshape(-1, 3)
  return flat.mean(axis=0), np.cov(flat, rowvar=False)


@pytest.mark.parametrize("src_hw", [(20, 25), (30, 40)])
def test_coral_matches_target_statistics(src_hw):
  src, tgt = random_image(*src_hw, 0), random_image(20, 25, 1)
  out = color.coral(src, tgt)
  assert out.shape == src.shape and out.dtype == np.float32
  (out_mean, out_cov), (tgt_mean, tgt_cov) = stats(out), stats(tgt)
  np.testing.assert_allclose(out_mean, tgt_mean, atol=1e-6)
  # The reference matches unnormalised covariances, so the output's (normalised) covariance is
  # the target's times (N_target - 1) / (N_source - 1): equal only for equal pixel counts. Not
  # exact either way: the "+ I" terms change it by O(1 / N).
  scale = (tgt.size // 3 - 1) / (src.size // 3 - 1)
  np.testing.assert_allclose(out_cov, tgt_cov * scale, atol=0.01 * np.abs(tgt_cov).max())
  assert not np.allclose(stats(src)[1], tgt_cov, atol=0.1 * np.abs(tgt_cov).max())


def test_coral_of_an_image_to_itself_is_the_identity():
  img = random_image(16, 16, 2)
  np.testing.assert_allclose(color.coral(img, img), img, atol=1e-6)


def test_coral_ignores_the_source_channel_scale_and_offset():
  """It standardises each channel first, so only the source's correlations matter."""
  src, tgt = random_image(16, 20, 3), random_image(16, 16, 4)
  np.testing.assert_allclose(color.coral(src, tgt), color.coral(src * 0.3 + 0.2, tgt), atol=1e-5)


def test_coral_does_not_clip_and_survives_flat_channels():
  src = random_image(16, 16, 5)
  tgt = random_image(16, 16, 6) * np.float32(3.0) - np.float32(1.0)  # outside [0, 1]
  out = color.coral(src, tgt)
  assert out.min() < 0 and out.max() > 1
  flat = tgt.copy()
  flat[..., 2] = 0.25
  out = color.coral(src, flat)
  assert np.all(np.isfinite(out))
  np.testing.assert_allclose(out[..., 2], 0.25, atol=1e-6)
  src[..., 0] = 0.5
  assert np.all(np.isfinite(color.coral(src, tgt)))


def test_yiq_round_trip_and_gray_has_no_chroma():
  img = random_image(8, 9, 7)
  np.testing.assert_allclose(color.yiq_to_rgb(color.rgb_to_yiq(img)), img, atol=1e-12)
  gray = np.repeat(img[..., :1], 3, axis=-1)
  yiq = color.rgb_to_yiq(gray)
  np.testing.assert_allclose(yiq[..., 0], img[..., 0], atol=1e-12)
  np.testing.assert_allclose(yiq[..., 1:], 0.0, atol=1e-12)


def test_luminance_inputs():
  content, style = random_image(20, 30, 8), random_image(25, 16, 9) * np.float32(0.5)
  c_in, s_in = color.content_input(content, "luminance"), color.style_input(style, content, "luminance")
  assert c_in.shape == content.shape and s_in.shape == style.shape
  assert c_in.dtype == s_in.dtype == np.float32
  for img in (c_in, s_in):  # gray: Y in all three channels
    np.testing.assert_array_equal(img[..., 0], img[..., 1])
    np.testing.assert_array_equal(img[..., 0], img[..., 2])
  y_c = color.luminance(content)
  np.testing.assert_allclose(c_in[..., 0], y_c, atol=1e-6)
  np.testing.assert_allclose(s_in[..., 0].mean(), y_c.mean(), atol=1e-5)
  np.testing.assert_allclose(s_in[..., 0].std(), y_c.std(), rtol=1e-4)
  # The style's pattern survives: an affine map of its own luminance.
  corr = np.corrcoef(s_in[..., 0].ravel(), color.luminance(style).ravel())[0, 1]
  assert corr > 0.9999


def test_luminance_style_input_flat_style():
  content = random_image(16, 16, 10)
  s_in = color.style_input(np.full((16, 16, 3), 0.8, np.float32), content, "luminance")
  np.testing.assert_allclose(s_in, color.luminance(content).mean(), atol=1e-6)


def test_merge_luminance_takes_y_from_output_and_chroma_from_content():
  content = random_image(16, 20, 11) * np.float32(0.6) + np.float32(0.2)  # room for chroma
  stylized = random_image(16, 20, 12) * np.float32(0.4) + np.float32(0.3)
  out = color.merge_luminance(stylized, content)
  assert out.shape == content.shape and out.dtype == np.float32
  assert out.min() >= 0.0 and out.max() <= 1.0
  inside = np.all((out > 0) & (out < 1), axis=-1)
  assert inside.mean() > 0.9
  yiq = color.rgb_to_yiq(out)
  np.testing.assert_allclose(yiq[inside, 0], color.luminance(stylized)[inside], atol=1e-6)
  np.testing.assert_allclose(yiq[inside, 1:], color.rgb_to_yiq(content)[inside, 1:], atol=1e-6)


def test_luminance_round_trip_with_an_identity_network():
  """Stylizing the content's own luminance gives back the content."""
  content, style = random_image(16, 16, 13), random_image(16, 16, 14)
  c_in = color.content_input(content, "luminance")
  np.testing.assert_allclose(color.merge_luminance(c_in, content), content, atol=1e-6)


def test_merge_luminance_clips_and_checks_shape():
  content = random_image(8, 8, 15)
  out = color.merge_luminance(np.full((8, 8, 3), 1.5, np.float32), content)
  assert out.min() >= 0.0 and out.max() == 1.0
  with pytest.raises(ValueError, match="crop"):
    color.merge_luminance(np.zeros((16, 8, 3), np.float32), content)
